// Encoders for test fixtures: compressed frames made here so the decoders are checked against
// known pixels. OpenJPEG and libjpeg-turbo from the same packages the connector decodes with;
// JPEG-LS from an older CharLS build (the encoder of the current build fails to initialise).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const quiet = { print: () => {}, printErr: () => {} };

interface Encoder {
  getDecodedBuffer(info: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  setQuality?(lossless: boolean, quality: number): void;
  setNearLossless?(near: number): void;
  setInterleaveMode?(mode: number): void;
  delete(): void;
}
type Module = Record<string, new () => Encoder>;
const modules = new Map<string, Promise<Module>>();
function mod(pkg: string): Promise<Module> {
  let m = modules.get(pkg);
  if (!m) modules.set(pkg, (m = (require(pkg) as (o: object) => Promise<Module>)(quiet)));
  return m;
}

export interface RawFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  components?: number;
  signed?: boolean;
  /** Interleaved samples (8-bit when bitsPerSample ≤ 8, else 16-bit). */
  values: Uint8Array | Uint16Array | Int16Array;
}

async function encode(pkg: string, cls: string, f: RawFrame, configure?: (e: Encoder) => void): Promise<Uint8Array> {
  const m = await mod(pkg);
  const e = new m[cls]!();
  try {
    const info = {
      width: f.width,
      height: f.height,
      bitsPerSample: f.bitsPerSample,
      componentCount: f.components ?? 1,
      isSigned: f.signed ?? false,
      isUsingColorTransform: false,
    };
    const buf = e.getDecodedBuffer(info);
    buf.set(new Uint8Array(f.values.buffer, f.values.byteOffset, f.values.byteLength));
    configure?.(e);
    e.encode();
    return e.getEncodedBuffer().slice();
  } finally {
    e.delete();
  }
}

/** A JPEG 2000 codestream; lossless unless `compressionRatio` is given. */
export function encodeJ2k(f: RawFrame): Promise<Uint8Array> {
  return encode('@cornerstonejs/codec-openjpeg/wasmjs', 'J2KEncoder', f);
}
export function encodeJpegLs(f: RawFrame, nearLossless = 0): Promise<Uint8Array> {
  return encode('charls-encoder-1.2.3/wasmjs', 'JpegLSEncoder', f, (e) => e.setNearLossless?.(nearLossless));
}
/** An 8-bit baseline JPEG (lossy). */
export function encodeJpeg8(f: RawFrame): Promise<Uint8Array> {
  return encode('@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs', 'JPEGEncoder', f);
}
