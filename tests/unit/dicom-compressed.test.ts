import { describe, expect, it } from 'vitest';
import { parseDicomBytes, parseDicomFile, type DicomImage } from '../../site-agent/connectors/dicom/index.ts';
import { writeDicomFixture, type FixtureAttributes } from '../../site-agent/connectors/dicom/write.ts';
import { encodeJ2k, encodeJpeg8, encodeJpegLs } from '../support/codecs.ts';

const TS = {
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNear: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  explicitLE: '1.2.840.10008.1.2.1',
  implicitLE: '1.2.840.10008.1.2',
};

function attrs(rows: number, cols: number, bits: number, extra: FixtureAttributes = {}): FixtureAttributes {
  return {
    PatientID: 'P-CR',
    SOPInstanceUID: '1.2.3.9.1',
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
    Modality: 'CR',
    BodyPartExamined: 'CHEST',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: cols,
    BitsAllocated: bits > 8 ? 16 : 8,
    BitsStored: bits,
    HighBit: bits - 1,
    PixelRepresentation: 0,
    ...extra,
  };
}

/** A smooth gradient with a bright disc and a little deterministic texture: compresses like a radiograph. */
function radiograph(rows: number, cols: number, bits: number): Uint16Array {
  const v = new Uint16Array(rows * cols);
  const max = 2 ** bits - 1;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const d = Math.hypot(r - rows / 2, c - cols / 3) < rows / 5 ? 0.3 : 0;
      const x = (0.2 + 0.5 * (r / rows) + d + ((r * 7 + c * 13) % 17) / 400) * max;
      v[r * cols + c] = Math.min(max, Math.round(x));
    }
  return v;
}

async function decode(bytes: Uint8Array): Promise<DicomImage> {
  const res = await parseDicomFile(bytes, 'mem.dcm');
  if (!res.ok) throw new Error(`${res.record.reason}: ${res.record.detail ?? ''}`);
  return res.image;
}
async function reject(bytes: Uint8Array) {
  const res = await parseDicomFile(bytes, 'mem.dcm');
  expect(res.ok).toBe(false);
  return (res as { record: { reason: string; detail?: string } }).record;
}

describe('compressed DICOM: decoded with the codecs, pixels checked against the source', () => {
  it('a JPEG 2000 chest CR (1955×1841, 12 bits, MONOCHROME1) decodes losslessly', async () => {
    const rows = 1955;
    const cols = 1841;
    const px = radiograph(rows, cols, 12);
    const j2k = await encodeJ2k({ width: cols, height: rows, bitsPerSample: 12, values: px });
    const bytes = writeDicomFixture({
      transferSyntaxUid: TS.j2kLossless,
      attributes: attrs(rows, cols, 12, { PhotometricInterpretation: 'MONOCHROME1' }),
      fragments: [j2k],
    });
    const img = await decode(bytes);
    expect([img.rows, img.columns, img.modality, img.transferSyntaxName]).toEqual([
      rows,
      cols,
      'CR',
      'JPEG 2000 Image Compression (Lossless Only)',
    ]);
    expect(img.inverted).toBe(true);
    const out = img.pixels;
    for (const i of [0, 1, cols, 12345, 999_999, rows * cols - 1]) expect(out[i]).toBe(4095 - px[i]!);
    let diff = 0;
    for (let i = 0; i < px.length; i++) diff += Math.abs(out[i]! - (4095 - px[i]!));
    expect(diff).toBe(0);
  });

  it('JPEG-LS lossless (.80) is exact; near-lossless (.81) stays within NEAR', async () => {
    const px = radiograph(64, 80, 16).map((v) => v >> 4);
    const f = { width: 80, height: 64, bitsPerSample: 12, values: px };
    const exact = await decode(
      writeDicomFixture({ transferSyntaxUid: TS.jpegLsLossless, attributes: attrs(64, 80, 12), fragments: [await encodeJpegLs(f)] }),
    );
    expect(Array.from(exact.pixels)).toEqual(Array.from(px));
    const near = await decode(
      writeDicomFixture({ transferSyntaxUid: TS.jpegLsNear, attributes: attrs(64, 80, 12), fragments: [await encodeJpegLs(f, 3)] }),
    );
    let worst = 0;
    for (let i = 0; i < px.length; i++) worst = Math.max(worst, Math.abs(near.pixels[i]! - px[i]!));
    expect(worst).toBeLessThanOrEqual(3);
  });

  it('JPEG baseline (.50), 8-bit greyscale: lossy but close', async () => {
    const px = Uint8Array.from(radiograph(48, 64, 8));
    const jpg = await encodeJpeg8({ width: 64, height: 48, bitsPerSample: 8, values: px });
    const img = await decode(writeDicomFixture({ transferSyntaxUid: TS.jpegBaseline, attributes: attrs(48, 64, 8), fragments: [jpg] }));
    let err = 0;
    for (let i = 0; i < px.length; i++) err += Math.abs(img.pixels[i]! - px[i]!);
    expect(err / px.length).toBeLessThan(4);
  });

  it('JPEG baseline RGB (YBR_FULL_422 in the header): luminance of the decoded RGB', async () => {
    const w = 32;
    const h = 16;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb.set(i % w < 16 ? [200, 40, 40] : [40, 40, 200], i * 3);
    const jpg = await encodeJpeg8({ width: w, height: h, bitsPerSample: 8, components: 3, values: rgb });
    const img = await decode(
      writeDicomFixture({
        transferSyntaxUid: TS.jpegBaseline,
        attributes: attrs(h, w, 8, { SamplesPerPixel: 3, PhotometricInterpretation: 'YBR_FULL_422', PlanarConfiguration: 0 }),
        fragments: [jpg],
      }),
    );
    const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
    expect(Math.abs(img.pixels[8 * w + 4]! - luma(200, 40, 40))).toBeLessThan(6);
    expect(Math.abs(img.pixels[8 * w + 28]! - luma(40, 40, 200))).toBeLessThan(6);
  });

  it('multi-frame JPEG-LS with a basic offset table: the chosen frame', async () => {
    const a = radiograph(16, 16, 8).map((v) => v >> 0);
    const b = a.map((v) => 255 - v);
    const enc = async (v: Uint16Array) => encodeJpegLs({ width: 16, height: 16, bitsPerSample: 8, values: Uint8Array.from(v) });
    const bytes = writeDicomFixture({
      transferSyntaxUid: TS.jpegLsLossless,
      attributes: attrs(16, 16, 8, { NumberOfFrames: 2 }),
      fragments: [await enc(a), await enc(b)],
    });
    const res = await parseDicomFile(bytes, 'mf.dcm', { frame: 1 });
    expect(res.ok && Array.from(res.image.pixels)).toEqual(Array.from(b));
  });
});

describe('compressed DICOM: bad codestreams are quarantined with a reason, never thrown', () => {
  const px = radiograph(32, 32, 12);
  const f = { width: 32, height: 32, bitsPerSample: 12, values: px };

  it('corrupt JPEG 2000 codestream', async () => {
    const j2k = await encodeJ2k(f);
    const bad = j2k.slice();
    bad.fill(0x55, 2, 60); // destroys the main header (SIZ/COD)
    const rec = await reject(writeDicomFixture({ transferSyntaxUid: TS.j2k, attributes: attrs(32, 32, 12), fragments: [bad] }));
    expect(rec.reason).toBe('corrupt compressed pixel data');
  });

  it('truncated JPEG 2000 and JPEG-LS fragments', async () => {
    const j2k = await encodeJ2k(f);
    const ls = await encodeJpegLs(f);
    for (const [ts, cut] of [
      [TS.j2k, j2k.subarray(0, 40)],
      [TS.jpegLsLossless, ls.subarray(0, Math.floor(ls.length / 2))],
    ] as const) {
      const rec = await reject(writeDicomFixture({ transferSyntaxUid: ts, attributes: attrs(32, 32, 12), fragments: [cut] }));
      expect(rec.reason, ts).toBe('corrupt compressed pixel data');
    }
    expect(
      (
        await reject(
          writeDicomFixture({ transferSyntaxUid: TS.jpegLsLossless, attributes: attrs(32, 32, 12), fragments: [ls.subarray(0, 30)] }),
        )
      ).detail,
    ).toContain('truncated');
  });

  it('garbage in a JPEG baseline fragment, and a non-lossless JPEG under a lossless UID', async () => {
    const rec = await reject(
      writeDicomFixture({
        transferSyntaxUid: TS.jpegBaseline,
        attributes: attrs(8, 8, 8),
        fragments: [Uint8Array.from({ length: 64 }, (_, i) => i)],
      }),
    );
    expect(rec.reason).toBe('corrupt compressed pixel data');
    const jpg = await encodeJpeg8({ width: 32, height: 32, bitsPerSample: 8, values: Uint8Array.from(radiograph(32, 32, 8)) });
    const rec2 = await reject(
      writeDicomFixture({ transferSyntaxUid: '1.2.840.10008.1.2.4.70', attributes: attrs(32, 32, 8), fragments: [jpg] }),
    );
    expect(rec2.reason).toBe('corrupt compressed pixel data');
    expect(rec2.detail).toContain('not lossless');
  });

  it('a codestream whose size disagrees with Rows/Columns', async () => {
    const rec = await reject(
      writeDicomFixture({ transferSyntaxUid: TS.j2k, attributes: attrs(40, 32, 12), fragments: [await encodeJ2k(f)] }),
    );
    expect(rec.reason).toBe('compressed frame does not match the image header');
    expect(rec.detail).toContain('32x32');
  });

  it('an empty fragment list and a file cut inside the fragment', async () => {
    const j2k = await encodeJ2k(f);
    const full = writeDicomFixture({ transferSyntaxUid: TS.j2k, attributes: attrs(32, 32, 12), fragments: [j2k] });
    const rec = await reject(full.subarray(0, full.length - Math.floor(j2k.length / 2)));
    expect(['truncated file', 'cannot read encapsulated frame', 'corrupt compressed pixel data']).toContain(rec.reason);
  });

  it('the synchronous parser names the codec it would need instead of guessing', () => {
    // parseDicomBytes never loads WebAssembly itself; parseDicomFile does.
    const res = parseDicomBytes(
      writeDicomFixture({ transferSyntaxUid: '1.2.840.10008.1.2.4.51', attributes: attrs(8, 8, 8), fragments: [new Uint8Array(8)] }),
      'x',
    );
    if (!res.ok && res.needsCodec) expect(res.record.reason).toBe('codec jpeg-8bit not loaded');
  });
});

describe('DICOM without preamble or File Meta is sniffed', () => {
  const px = [1, 2, 3, 4, 5, 6];
  const a = attrs(2, 3, 16, { BitsStored: 16, HighBit: 15 });
  for (const ts of [TS.explicitLE, TS.implicitLE]) {
    it(`${ts}: File Meta at byte 0, and a bare data set`, async () => {
      for (const layout of ['no-preamble', 'bare'] as const) {
        const img = await decode(writeDicomFixture({ transferSyntaxUid: ts, attributes: a, pixelValues: px, layout }));
        expect(Array.from(img.pixels), layout).toEqual(px);
        expect(img.patientId).toBe('P-CR');
      }
    });
  }
  it('text and random bytes are still "not a DICOM file"', async () => {
    expect((await reject(new TextEncoder().encode('hello, this is not DICOM at all'))).reason).toBe('not a DICOM file');
    expect((await reject(Uint8Array.from({ length: 300 }, (_, i) => (i * 31) % 256))).reason).toBe('not a DICOM file');
  });
});
