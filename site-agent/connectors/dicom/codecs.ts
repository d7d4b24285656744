// Decoders for compressed DICOM frames, from maintained npm packages whose WebAssembly ships
// inside the package (nothing is downloaded at run time): OpenJPEG for JPEG 2000, CharLS for
// JPEG-LS, libjpeg-turbo for 8-bit JPEG baseline/extended, and jpeg-lossless-decoder-js for
// JPEG lossless (process 14, up to 16 bits). WebAssembly instantiation is asynchronous, so each
// codec is loaded once per process on first need (`loadCodec`) and then used synchronously.

import { createRequire } from 'node:module';
import { Decoder as LosslessDecoder } from 'jpeg-lossless-decoder-js';

export type CodecName = 'jpeg2000' | 'jpeg-ls' | 'jpeg-8bit' | 'jpeg-lossless';

/** One decoded frame: samples in native byte order, pixel-interleaved unless `planar`. */
export interface DecodedFrame {
  width: number;
  height: number;
  components: number;
  /** Precision the codestream declares (bits per sample). */
  bitsPerSample: number;
  signed: boolean;
  /** Component planes one after the other (JPEG-LS without interleaving) instead of interleaved. */
  planar: boolean;
  values: Uint8Array | Uint16Array | Int16Array;
}

/** A codestream the codec refused or that does not describe an image. */
export class CodecError extends Error {}

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  getInterleaveMode?(): number;
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

const require = createRequire(import.meta.url);
const WASM: Record<Exclude<CodecName, 'jpeg-lossless'>, { pkg: string; cls: string }> = {
  jpeg2000: { pkg: '@cornerstonejs/codec-openjpeg/decodewasmjs', cls: 'J2KDecoder' },
  'jpeg-ls': { pkg: '@cornerstonejs/codec-charls/decodewasmjs', cls: 'JpegLSDecoder' },
  'jpeg-8bit': { pkg: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', cls: 'JPEGDecoder' },
};

const loaded = new Map<CodecName, WasmModule | null>();
const loading = new Map<CodecName, Promise<void>>();

/** True when `name` can decode synchronously now. */
export function codecLoaded(name: CodecName): boolean {
  return name === 'jpeg-lossless' || loaded.has(name);
}

/** Loads a codec's WebAssembly once; later calls return at once. Rejects if the package is broken. */
export function loadCodec(name: CodecName): Promise<void> {
  if (codecLoaded(name)) return Promise.resolve();
  let p = loading.get(name);
  if (!p) {
    const spec = WASM[name as keyof typeof WASM];
    const factory = require(spec.pkg) as (opts?: object) => Promise<WasmModule>;
    // The codecs print progress lines ([INFO] …) on stdout; failures come back as exceptions.
    p = factory({ print: () => {}, printErr: () => {} }).then((m) => {
      if (typeof m[spec.cls] !== 'function') throw new Error(`${spec.pkg} has no ${spec.cls}`);
      loaded.set(name, m);
    });
    loading.set(name, p);
    p.catch(() => loading.delete(name));
  }
  return p;
}

/** Decodes one frame's codestream. Throws CodecError on a corrupt or truncated codestream. */
export function decodeFrame(name: CodecName, encoded: Uint8Array): DecodedFrame {
  if (encoded.length < 4) throw new CodecError(`codestream of ${encoded.length} bytes`);
  if (name === 'jpeg-lossless') return decodeLossless(encoded);
  // CharLS spends tens of seconds on a codestream cut short (41 s for a 32×32 frame cut in half):
  // a JPEG-LS frame must end with its end-of-image marker (fragments may carry padding zeros).
  if (name === 'jpeg-ls' && !endsWithEoi(encoded)) throw new CodecError('JPEG-LS codestream truncated: no end-of-image marker');
  const mod = loaded.get(name);
  if (!mod) throw new Error(`codec ${name} is not loaded`);
  const decoder = new mod[WASM[name as keyof typeof WASM].cls]!();
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    try {
      decoder.decode();
    } catch (e) {
      throw new CodecError(wasmMessage(e));
    }
    const info = decoder.getFrameInfo();
    const { width, height, bitsPerSample, componentCount } = info;
    if (!(width > 0 && height > 0 && componentCount > 0 && bitsPerSample > 0 && bitsPerSample <= 16)) {
      throw new CodecError(`codestream describes ${width}x${height}, ${componentCount} components of ${bitsPerSample} bits`);
    }
    const wasm = decoder.getDecodedBuffer();
    const bytesPerSample = bitsPerSample > 8 ? 2 : 1;
    const need = width * height * componentCount * bytesPerSample;
    if (wasm.length < need) throw new CodecError(`decoder returned ${wasm.length} bytes, the frame needs ${need}`);
    // Copy out of the WebAssembly heap: the decoder's memory is freed below.
    const copy = wasm.slice(0, need);
    const signed = info.isSigned === true;
    const values =
      bytesPerSample === 1
        ? copy
        : signed
          ? new Int16Array(copy.buffer, copy.byteOffset, need / 2)
          : new Uint16Array(copy.buffer, copy.byteOffset, need / 2);
    // CharLS returns the codestream's own layout: interleave mode 0 keeps components as planes.
    const planar = name === 'jpeg-ls' && componentCount > 1 && decoder.getInterleaveMode?.() === 0;
    return { width, height, components: componentCount, bitsPerSample, signed, planar, values };
  } finally {
    decoder.delete();
  }
}

function endsWithEoi(b: Uint8Array): boolean {
  let end = b.length;
  while (end > 2 && b[end - 1] === 0 && b.length - end < 16) end--;
  return b[end - 2] === 0xff && b[end - 1] === 0xd9;
}

function wasmMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return `decoder aborted (WebAssembly exception ${e})`;
  return String(e);
}

/** The SOF3 header of a lossless JPEG: precision, rows, columns, components. */
function losslessHeader(b: Uint8Array): { precision: number; rows: number; cols: number; components: number } {
  if (b[0] !== 0xff || b[1] !== 0xd8) throw new CodecError('no JPEG start-of-image marker');
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) throw new CodecError(`expected a JPEG marker at byte ${at}`);
    const marker = b[at + 1]!;
    const len = (b[at + 2]! << 8) | b[at + 3]!;
    if (marker === 0xc3 || marker === 0xc7) {
      if (at + 10 > b.length) break;
      return { precision: b[at + 4]!, rows: (b[at + 5]! << 8) | b[at + 6]!, cols: (b[at + 7]! << 8) | b[at + 8]!, components: b[at + 9]! };
    }
    if ((marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xda) {
      throw new CodecError(`JPEG frame type 0x${marker.toString(16)} is not lossless (SOF3)`);
    }
    at += 2 + len;
  }
  throw new CodecError('no lossless JPEG frame header (SOF3) before the end of the codestream');
}

function decodeLossless(encoded: Uint8Array): DecodedFrame {
  const h = losslessHeader(encoded);
  if (!(h.rows > 0 && h.cols > 0 && (h.components === 1 || h.components === 3) && h.precision >= 2 && h.precision <= 16)) {
    throw new CodecError(`lossless JPEG header describes ${h.cols}x${h.rows}, ${h.components} components of ${h.precision} bits`);
  }
  const bytesPerSample = h.precision > 8 ? 2 : 1;
  let out: ArrayBufferLike;
  try {
    // The decoder reads through a DataView: give it a buffer that starts at the codestream.
    const own = encoded.byteOffset === 0 && encoded.byteLength === encoded.buffer.byteLength ? encoded : encoded.slice();
    out = new LosslessDecoder().decode(own.buffer, 0, own.byteLength, bytesPerSample).buffer;
  } catch (e) {
    throw new CodecError(e instanceof Error ? e.message : String(e));
  }
  const n = h.rows * h.cols * h.components;
  if (out.byteLength < n * bytesPerSample)
    throw new CodecError(`decoder returned ${out.byteLength} bytes, the frame needs ${n * bytesPerSample}`);
  const values = bytesPerSample === 1 ? new Uint8Array(out, 0, n) : new Uint16Array(out, 0, n);
  return { width: h.cols, height: h.rows, components: h.components, bitsPerSample: h.precision, signed: false, planar: false, values };
}
