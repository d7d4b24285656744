import dicomParser from 'dicom-parser';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import {
  decodeImage,
  isDicomUid,
  phantomImageModel,
  pngPreview,
  SOP_CLASS,
  uuidToDicomUid,
  validateDicom,
  windowTo8bit,
  writeDicom,
  writeDicomDcmjs,
  type DicomImageSpec,
} from '../../modalities/image/index.ts';
import { parseDicomBytes } from '../../site-agent/connectors/dicom/index.ts';

const model = phantomImageModel({ perClass: 16 });

function spec(overrides: Partial<DicomImageSpec> = {}): DicomImageSpec {
  const rng = new Rng('dicom-spec');
  const img = decodeImage(model, { findingClass: 'effusion' }, rng);
  return {
    pixels: img.pixels,
    rows: img.rows,
    cols: img.cols,
    studyInstanceUid: uuidToDicomUid(rng.uuid()),
    seriesInstanceUid: uuidToDicomUid(rng.uuid()),
    sopInstanceUid: uuidToDicomUid(rng.uuid()),
    patientId: rng.uuid(),
    patientBirthDate: '1961-07-14',
    patientSex: 'male',
    studyDate: '2024-11-02',
    studyTime: '09:41:07',
    pixelSpacing: [1.4, 1.4],
    windowCenter: img.windowCenter,
    windowWidth: img.windowWidth,
    ...overrides,
  };
}

describe('DICOM UIDs', () => {
  it('maps a UUID to a 2.25 UID as a decimal integer', () => {
    expect(uuidToDicomUid('00000000-0000-0000-0000-000000000001')).toBe('2.25.1');
    expect(uuidToDicomUid('ffffffff-ffff-ffff-ffff-ffffffffffff')).toBe(`2.25.${(2n ** 128n - 1n).toString()}`);
    const u = uuidToDicomUid(new Rng(1).uuid());
    expect(isDicomUid(u)).toBe(true);
    expect(u.length).toBeLessThanOrEqual(64);
    expect(() => uuidToDicomUid('not-a-uuid')).toThrow();
  });
});

describe('DICOM writer', () => {
  it('writes bytes identical to dcmjs for DX and CR', () => {
    for (const modality of ['DX', 'CR'] as const) {
      const s = spec({ modality, rows: 256, cols: 256 });
      const fast = writeDicom(s);
      const ref = writeDicomDcmjs(s);
      expect(Buffer.compare(Buffer.from(fast), Buffer.from(ref))).toBe(0);
    }
  });

  it('is read back by dicom-parser with exact pixels, UIDs, PatientID and image attributes', () => {
    const s = spec();
    const bytes = writeDicom(s);
    const check = validateDicom(bytes, s);
    expect(check.errors).toEqual([]);
    const ds = dicomParser.parseDicom(bytes);
    expect(ds.string('x00080016')).toBe(SOP_CLASS.DX);
    expect(ds.string('x00080068')).toBe('FOR PRESENTATION');
    expect(ds.string('x0020000d')).toBe(s.studyInstanceUid);
    expect(ds.string('x0020000e')).toBe(s.seriesInstanceUid);
    expect(ds.string('x00080018')).toBe(s.sopInstanceUid);
    expect(ds.string('x00100020')).toBe(s.patientId);
    expect(ds.string('x00100040')).toBe('M');
    expect(ds.string('x00100030')).toBe('19610714');
    expect(ds.string('x00280004')).toBe('MONOCHROME2');
    expect(ds.uint16('x00280100')).toBe(16);
    expect(ds.string('x00280030')).toBe('1.4\\1.4');
    expect(ds.string('x00181164')).toBe('1.4\\1.4');
    expect(ds.floatString('x00281050')).toBe(s.windowCenter);
    const el = ds.elements.x7fe00010;
    const px = new Uint16Array(bytes.buffer.slice(bytes.byteOffset + el.dataOffset, bytes.byteOffset + el.dataOffset + el.length));
    expect(px).toEqual(s.pixels);
  });

  it('is read by the site connector too (modality values equal stored values)', () => {
    const s = spec({
      rows: 64,
      cols: 64,
      pixels: decodeImage(model, { findingClass: 'normal' }, new Rng(9), { rows: 64, cols: 64 }).pixels,
    });
    const r = parseDicomBytes(writeDicom(s), 'mem');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.image.patientId).toBe(s.patientId);
    expect(r.image.studyInstanceUid).toBe(s.studyInstanceUid);
    expect(Array.from(r.image.pixels)).toEqual(Array.from(s.pixels));
  });

  it('the validator catches wrong UIDs, PatientID, truncation and pixel changes', () => {
    const s = spec();
    const bytes = writeDicom(s);
    expect(validateDicom(bytes, { ...s, patientId: 'other' }).errors.join()).toMatch(/PatientID/);
    expect(validateDicom(bytes, { ...s, studyInstanceUid: '2.25.9' }).errors.join()).toMatch(/StudyInstanceUID/);
    expect(validateDicom(bytes.subarray(0, bytes.length - 1000), s).ok).toBe(false);
    const px = Uint16Array.from(s.pixels);
    px[100] ^= 1;
    expect(validateDicom(bytes, { ...s, pixels: px }).errors.join()).toMatch(/PixelData differs/);
  });

  it('writes into a reused buffer when it fits, with the same bytes', () => {
    const a = spec();
    const b = spec({ patientId: 'another-patient-id-that-is-longer', sopInstanceUid: '2.25.42' });
    const into = Buffer.alloc(300_000, 0x5a);
    for (const s of [a, b, a]) {
      const bytes = writeDicom(s, into);
      expect(bytes.buffer).toBe(into.buffer);
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(writeDicom(s)))).toBe(0);
      expect(validateDicom(bytes, s).ok).toBe(true);
    }
    const small = Buffer.alloc(1000);
    expect(writeDicom(a, small).buffer).not.toBe(small.buffer);
  });

  it('rejects bad UIDs and pixel counts', () => {
    expect(() => writeDicom(spec({ sopInstanceUid: '2.25.01' }))).toThrow(/UID/);
    expect(() => writeDicom(spec({ rows: 10 }))).toThrow(/pixels/);
  });
});

describe('PNG preview', () => {
  it('decodes with pngjs to an 8-bit windowed grayscale image', () => {
    const s = spec();
    const png = pngPreview(s.pixels, s.rows, s.cols, s.windowCenter, s.windowWidth);
    const img = PNG.sync.read(Buffer.from(png));
    expect(img.width).toBe(256);
    expect(img.height).toBe(256);
    for (const i of [0, 1000, 40000, 65535]) {
      expect(img.data[i * 4]).toBe(windowTo8bit(s.pixels[i], s.windowCenter, s.windowWidth));
      expect(img.data[i * 4 + 1]).toBe(img.data[i * 4]);
    }
    const half = PNG.sync.read(Buffer.from(pngPreview(s.pixels, s.rows, s.cols, s.windowCenter, s.windowWidth, { downscale: 2 })));
    expect(half.width).toBe(128);
    // Box means through the window, and files of several stored deflate blocks (pngjs inflates
    // them and checks the Adler-32).
    for (const [rows, cols, f] of [
      [256, 256, 2],
      [300, 301, 1],
      [97, 64, 3],
    ]) {
      const px = new Uint16Array(rows * cols);
      for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) % 4096;
      const img = PNG.sync.read(Buffer.from(pngPreview(px, rows, cols, 2000, 3000, { downscale: f })));
      expect([img.width, img.height]).toEqual([Math.floor(cols / f), Math.floor(rows / f)]);
      for (const [y, x] of [
        [0, 0],
        [1, 5],
        [Math.floor(rows / f) - 1, Math.floor(cols / f) - 1],
      ]) {
        let sum = 0;
        for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) sum += px[(y * f + dy) * cols + x * f + dx];
        const want = Math.min(255, Math.max(0, Math.floor(((sum / (f * f) - (2000 - 0.5)) / 2999 + 0.5) * 255 + 0.5)));
        expect(Math.abs(img.data[(y * img.width + x) * 4] - want), `${rows}×${cols}/${f} at ${y},${x}`).toBeLessThanOrEqual(1);
      }
    }
    // Written into a reused buffer (garbage from an earlier file in it): the same bytes.
    const into = Buffer.alloc(200_000, 0xa5);
    for (const [rows, cols, f] of [
      [256, 256, 2],
      [300, 301, 1],
    ]) {
      const px = new Uint16Array(rows * cols);
      for (let i = 0; i < px.length; i++) px[i] = (i * 40503) % 65536;
      const fresh = pngPreview(px, rows, cols, 30000, 60000, { downscale: f });
      const reused = pngPreview(px, rows, cols, 30000, 60000, { downscale: f, into });
      expect(reused.buffer).toBe(into.buffer);
      expect(Buffer.compare(Buffer.from(reused), Buffer.from(fresh))).toBe(0);
    }
    // Too small: a buffer of its own.
    const small = Buffer.alloc(100);
    expect(pngPreview(s.pixels, s.rows, s.cols, s.windowCenter, s.windowWidth, { into: small }).buffer).not.toBe(small.buffer);
    expect(windowTo8bit(-1e9, 100, 50)).toBe(0);
    expect(windowTo8bit(1e9, 100, 50)).toBe(255);
  });
});
