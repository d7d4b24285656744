// A small DICOM Part 10 writer for test fixtures: implicit/explicit VR little endian, explicit VR
// big endian, RLE Lossless, and arbitrary encapsulated transfer syntaxes (to test rejection).
// It writes only the attributes it is given, sorted by tag; it is not a general DICOM toolkit.

import { deflateRawSync } from 'node:zlib';
import { encodeRleFrame } from './rle.ts';

type Vr = 'AE' | 'AS' | 'CS' | 'DA' | 'DS' | 'IS' | 'LO' | 'PN' | 'SH' | 'TM' | 'UI' | 'US' | 'UL' | 'OB' | 'OW';

const DICTIONARY: Record<string, [number, Vr]> = {
  SOPClassUID: [0x00080016, 'UI'],
  SOPInstanceUID: [0x00080018, 'UI'],
  StudyDate: [0x00080020, 'DA'],
  Modality: [0x00080060, 'CS'],
  PatientName: [0x00100010, 'PN'],
  PatientID: [0x00100020, 'LO'],
  PatientBirthDate: [0x00100030, 'DA'],
  PatientSex: [0x00100040, 'CS'],
  PatientAddress: [0x00101040, 'LO'],
  BodyPartExamined: [0x00180015, 'CS'],
  StudyInstanceUID: [0x0020000d, 'UI'],
  SeriesInstanceUID: [0x0020000e, 'UI'],
  SamplesPerPixel: [0x00280002, 'US'],
  PhotometricInterpretation: [0x00280004, 'CS'],
  PlanarConfiguration: [0x00280006, 'US'],
  NumberOfFrames: [0x00280008, 'IS'],
  Rows: [0x00280010, 'US'],
  Columns: [0x00280011, 'US'],
  BitsAllocated: [0x00280100, 'US'],
  BitsStored: [0x00280101, 'US'],
  HighBit: [0x00280102, 'US'],
  PixelRepresentation: [0x00280103, 'US'],
  WindowCenter: [0x00281050, 'DS'],
  WindowWidth: [0x00281051, 'DS'],
  RescaleIntercept: [0x00281052, 'DS'],
  RescaleSlope: [0x00281053, 'DS'],
};

export type FixtureAttributes = Partial<Record<keyof typeof DICTIONARY | string, string | number | number[]>>;

export interface DicomFixture {
  transferSyntaxUid: string;
  attributes: FixtureAttributes;
  /**
   * Stored pixel values in native order (frame by frame; samples interleaved unless
   * PlanarConfiguration = 1). Serialised per transfer syntax: native LE/BE, or RLE.
   */
  pixelValues?: ArrayLike<number>;
  /** Raw encapsulated fragments (one per frame), for transfer syntaxes the writer cannot encode. */
  fragments?: Uint8Array[];
  /** Cut the finished file to this many bytes (to make truncated fixtures). */
  truncateTo?: number;
}

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const RLE = '1.2.840.10008.1.2.5';
const DEFLATE = '1.2.840.10008.1.2.1.99';

class Writer {
  private chunks: number[] = [];
  constructor(
    private readonly littleEndian: boolean,
    private readonly explicit: boolean,
  ) {}
  u16(v: number): void {
    if (this.littleEndian) this.chunks.push(v & 0xff, (v >> 8) & 0xff);
    else this.chunks.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number): void {
    const b = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
    this.chunks.push(...(this.littleEndian ? b : b.reverse()));
  }
  bytes(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.chunks.push(b[i]!);
  }
  header(tag: number, vr: Vr | 'SQ' | 'UN', length: number): void {
    this.u16(tag >>> 16);
    this.u16(tag & 0xffff);
    if (!this.explicit) {
      this.u32(length);
      return;
    }
    this.bytes([vr.charCodeAt(0), vr.charCodeAt(1)]);
    if (vr === 'OB' || vr === 'OW' || vr === 'SQ' || vr === 'UN') {
      this.u16(0);
      this.u32(length);
    } else this.u16(length);
  }
  element(tag: number, vr: Vr, value: string | number | number[]): void {
    const payload = this.encodeValue(vr, value);
    this.header(tag, vr, payload.length);
    this.bytes(payload);
  }
  encodeValue(vr: Vr, value: string | number | number[]): number[] {
    if (vr === 'US' || vr === 'UL') {
      const values = Array.isArray(value) ? value : [Number(value)];
      const w = new Writer(this.littleEndian, this.explicit);
      for (const v of values) {
        if (vr === 'US') w.u16(v);
        else w.u32(v);
      }
      return w.chunks;
    }
    let s = Array.isArray(value) ? value.join('\\') : String(value);
    if (s.length % 2) s += vr === 'UI' ? '\0' : ' ';
    return Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  }
  get length(): number {
    return this.chunks.length;
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** Builds the bytes of a DICOM Part 10 file. */
export function writeDicomFixture(fixture: DicomFixture): Uint8Array {
  const ts = fixture.transferSyntaxUid;
  const attrs = fixture.attributes;
  // File meta group: always explicit VR little endian.
  const metaBody = new Writer(true, true);
  metaBody.header(0x00020001, 'OB', 2);
  metaBody.bytes([0, 1]);
  metaBody.element(0x00020002, 'UI', String(attrs.SOPClassUID ?? '1.2.840.10008.5.1.4.1.1.7'));
  metaBody.element(0x00020003, 'UI', String(attrs.SOPInstanceUID ?? '1.2.3.4.5.6.7'));
  metaBody.element(0x00020010, 'UI', ts);
  metaBody.element(0x00020012, 'UI', '1.2.3.4.5.99');
  const group = new Writer(true, true);
  group.element(0x00020000, 'UL', metaBody.length);

  const body = new Writer(ts !== EXPLICIT_BE, ts !== IMPLICIT_LE);
  const entries = Object.entries(attrs)
    .filter((e): e is [string, string | number | number[]] => e[1] !== undefined)
    .map(([name, value]) => {
      const def = DICTIONARY[name];
      if (!def) throw new Error(`writeDicomFixture: unknown attribute ${name}`);
      return { tag: def[0], vr: def[1], value };
    })
    .sort((a, b) => a.tag - b.tag);
  for (const e of entries) body.element(e.tag, e.vr, e.value);

  const bitsAllocated = Number(attrs.BitsAllocated ?? 16);
  if (fixture.pixelValues) {
    const values = fixture.pixelValues;
    if (ts === RLE) {
      const frames = Number(attrs.NumberOfFrames ?? 1);
      const spp = Number(attrs.SamplesPerPixel ?? 1);
      const pixelsPerFrame = Number(attrs.Rows) * Number(attrs.Columns);
      const bytesPerSample = bitsAllocated / 8;
      const encoded: Uint8Array[] = [];
      for (let f = 0; f < frames; f++) {
        const planes: Uint8Array[] = [];
        for (let s = 0; s < spp; s++) {
          for (let b = 0; b < bytesPerSample; b++) {
            const plane = new Uint8Array(pixelsPerFrame);
            const shift = 8 * (bytesPerSample - 1 - b);
            for (let p = 0; p < pixelsPerFrame; p++) {
              const v = values[f * pixelsPerFrame * spp + p * spp + s]!;
              plane[p] = Math.floor((v < 0 ? v + 2 ** bitsAllocated : v) / 2 ** shift) & 0xff;
            }
            planes.push(plane);
          }
        }
        encoded.push(encodeRleFrame(planes));
      }
      writeEncapsulated(body, encoded);
    } else {
      const w = new Writer(ts !== EXPLICIT_BE, true);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        const u = v < 0 ? v + 2 ** bitsAllocated : v;
        if (bitsAllocated === 8) w.bytes([u & 0xff]);
        else if (bitsAllocated === 16) w.u16(u);
        else w.u32(u);
      }
      if (w.length % 2) w.bytes([0]);
      body.header(0x7fe00010, bitsAllocated > 8 ? 'OW' : 'OB', w.length);
      body.bytes(w.toBytes());
    }
  } else if (fixture.fragments) {
    writeEncapsulated(body, fixture.fragments);
  }

  const preamble = new Uint8Array(128);
  const bodyBytes = ts === DEFLATE ? new Uint8Array(deflateRawSync(body.toBytes())) : body.toBytes();
  const parts = [preamble, Uint8Array.from([0x44, 0x49, 0x43, 0x4d]), group.toBytes(), metaBody.toBytes(), bodyBytes];
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return fixture.truncateTo !== undefined ? out.subarray(0, fixture.truncateTo) : out;
}

function writeEncapsulated(body: Writer, fragments: Uint8Array[]): void {
  body.header(0x7fe00010, 'OB', 0xffffffff);
  // Basic offset table with one entry per frame.
  body.u16(0xfffe);
  body.u16(0xe000);
  body.u32(4 * fragments.length);
  let offset = 0;
  for (const f of fragments) {
    body.u32(offset);
    offset += 8 + f.length + (f.length % 2);
  }
  for (const f of fragments) {
    body.u16(0xfffe);
    body.u16(0xe000);
    body.u32(f.length + (f.length % 2));
    body.bytes(f);
    if (f.length % 2) body.bytes([0]);
  }
  body.u16(0xfffe);
  body.u16(0xe0dd);
  body.u32(0);
}
