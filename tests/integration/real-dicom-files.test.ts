// Reads the real public DICOM samples in ../shared/data/dicom (or $FEDSYNTH_SAMPLE_DATA/dicom).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  parseDicomFile,
  readDicomFile,
  readDicomFolder,
  normalise,
  resampleToGrid,
  type DicomImage,
  type DicomScanStats,
} from '../../site-agent/connectors/dicom/index.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';

function sampleDir(sub: string): string | undefined {
  const root = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
  const dir = join(root, sub);
  if (!existsSync(dir)) {
    console.warn(`[skip] real DICOM samples not found at ${dir}; set FEDSYNTH_SAMPLE_DATA to run these tests`);
    return undefined;
  }
  return dir;
}
const dir = sampleDir('dicom');

async function load(name: string, frame?: number): Promise<{ image?: DicomImage; q: Quarantine }> {
  const q = new Quarantine();
  const image = await readDicomFile(join(dir!, name), q, frame === undefined ? {} : { frame });
  return { image, q };
}

describe.skipIf(!dir)('real DICOM samples (pydicom, dicomParser, NIH ChestX-ray14)', () => {
  it('MR_small is 64×64 16-bit signed and all four encodings decode to the same pixels', async () => {
    const names = ['MR_small.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm', 'MR_small_RLE.dcm'];
    const images = await Promise.all(names.map(async (n) => (await load(n)).image!));
    expect(images.map((i) => i.transferSyntaxUid)).toEqual([
      '1.2.840.10008.1.2.1',
      '1.2.840.10008.1.2',
      '1.2.840.10008.1.2.2',
      '1.2.840.10008.1.2.5',
    ]);
    for (const img of images) {
      expect(img.rows).toBe(64);
      expect(img.columns).toBe(64);
      expect(img.bitsAllocated).toBe(16);
      expect(img.bitsStored).toBe(16);
      expect(img.pixelRepresentation).toBe(1);
      expect(img.modality).toBe('MR');
      expect(img.patientId).toBe('4MR1');
      expect(img.windowCenter).toBe(600);
      expect(img.windowWidth).toBe(1600);
      expect(Array.from(img.pixels)).toEqual(Array.from(images[0]!.pixels));
    }
    // Values pydicom's own tests assert for this file.
    const px = images[0]!.pixels;
    expect([px[31], px[32], px[33]]).toEqual([422, 319, 361]);
    expect([px[31 * 64], px[31 * 64 + 1], px[31 * 64 + 2]]).toEqual([366, 363, 322]);
    expect(Array.from(px.slice(-3))).toEqual([1369, 1129, 862]);
  });

  it('CT_small applies the rescale intercept (-1024) to signed values', async () => {
    const { image } = await load('CT_small.dcm');
    expect(image!.rows).toBe(128);
    expect(image!.rescaleIntercept).toBe(-1024);
    expect(Array.from(image!.pixels.slice(0, 3))).toEqual([-849, -844, -858]);
  });

  it('JPEG Lossless CT (fragmented, no offset table) decodes to the same pixels as its RLE twin', async () => {
    const jl = (await load('CT0012.fragmented_no_bot_jpeg_lossless.70.dcm')).image!;
    const rle = (await load('CT0012.not_fragmented_bot_rle.dcm')).image!;
    expect(jl.transferSyntaxUid).toBe('1.2.840.10008.1.2.4.70');
    expect([jl.rows, jl.columns]).toEqual([512, 512]);
    expect(Array.from(jl.pixels)).toEqual(Array.from(rle.pixels));
  });

  it('JPEG 2000 (NM, 1024×256) and JPEG Baseline (US, YBR_FULL) decode', async () => {
    const j2k = await load('JPEG2000.dcm');
    expect(j2k.q.records).toEqual([]);
    expect([j2k.image!.transferSyntaxUid, j2k.image!.rows, j2k.image!.columns, j2k.image!.modality]).toEqual([
      '1.2.840.10008.1.2.4.91',
      1024,
      256,
      'NM',
    ]);
    const jpg = await load('IM00001.fragmented_no_bot_jpeg_baseline.50.dcm');
    expect(jpg.q.records).toEqual([]);
    expect([jpg.image!.rows, jpg.image!.columns, jpg.image!.samplesPerPixel]).toEqual([240, 320, 3]);
  });

  it('a real JPEG Lossless file cut inside its fragments is quarantined quickly', async () => {
    const bytes = readFileSync(join(dir!, 'CT0012.fragmented_no_bot_jpeg_lossless.70.dcm'));
    const t0 = performance.now();
    const res = await parseDicomFile(bytes.subarray(0, Math.floor(bytes.length * 0.6)), 'cut.dcm');
    expect(res.ok).toBe(false);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('MR_truncated is quarantined as truncated with the byte offset where data stops', async () => {
    const { image, q } = await load('MR_truncated.dcm');
    expect(image).toBeUndefined();
    const rec = q.records[0]!;
    expect(rec.reason).toBe('truncated file');
    expect(rec.offset).toBeGreaterThan(132);
    expect(rec.offset).toBeLessThan(statSync(join(dir!, 'MR_truncated.dcm')).size);
  });

  it('rtplan has no pixel data', async () => {
    const { q } = await load('rtplan.dcm');
    expect(q.records[0]!.reason).toBe('no pixel data');
  });

  it('SC_rgb_rle_2frame: RGB RLE, 100×100, two frames, luminance of the colour bars', async () => {
    const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
    const f0 = (await load('SC_rgb_rle_2frame.dcm', 0)).image!;
    const f1 = (await load('SC_rgb_rle_2frame.dcm', 1)).image!;
    expect(f0.numberOfFrames).toBe(2);
    expect(f0.photometricInterpretation).toBe('RGB');
    expect(f0.samplesPerPixel).toBe(3);
    const at = (img: DicomImage, r: number) => img.pixels[r * 100 + 50]!;
    expect(at(f0, 5)).toBeCloseTo(luma(255, 0, 0), 3);
    expect(at(f0, 25)).toBeCloseTo(luma(0, 255, 0), 3);
    expect(at(f0, 45)).toBeCloseTo(luma(0, 0, 255), 3);
    expect(at(f0, 95)).toBeCloseTo(255, 3);
    // The second frame is the first inverted.
    expect(at(f1, 5)).toBeCloseTo(luma(0, 255, 255), 3);
    expect(at(f1, 95)).toBeCloseTo(0, 3);
  });

  it('CT0012 RLE with a basic offset table: enhanced CT, rescale from the functional groups', async () => {
    const f0 = (await load('CT0012.not_fragmented_bot_rle.dcm', 0)).image!;
    const f1 = (await load('CT0012.not_fragmented_bot_rle.dcm', 1)).image!;
    expect(f0.rows).toBe(512);
    expect(f0.numberOfFrames).toBe(2);
    expect(f0.rescaleIntercept).toBe(-1024);
    expect(f0.pixels[0]).toBe(-1024); // air outside the field of view
    expect(f1.frameIndex).toBe(1);
    expect(Array.from(f0.pixels)).not.toEqual(Array.from(f1.pixels));
  });

  it('CR1_6154 is MONOCHROME1, inverted so that bright = dense', async () => {
    const img = (await load('CR1_6154.dcm')).image!;
    expect(img.photometricInterpretation).toBe('MONOCHROME1');
    expect(img.inverted).toBe(true);
    expect(img.bitsStored).toBe(12);
    expect(img.bodyPart).toBe('CSPINE');
  });

  it('deflated explicit VR LE (image_dfl) is inflated and decoded', async () => {
    const img = (await load('image_dfl.dcm')).image!;
    expect(img.transferSyntaxName).toBe('Deflated Explicit VR Little Endian');
    expect(img.rows * img.columns).toBe(512 * 512);
  });

  it('the NIH chest radiograph: DX 1024×1024 8-bit, linkage id only, resampled and normalised', async () => {
    const img = (await load('nih_chest_xray_dx.dcm')).image!;
    expect(img.modality).toBe('DX');
    expect([img.rows, img.columns, img.bitsAllocated]).toEqual([1024, 1024, 8]);
    expect(img.photometricInterpretation).toBe('MONOCHROME2');
    expect(img.patientId).toBe('Covid0000');
    const small = resampleToGrid(img.pixels, img.rows, img.columns, 64);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(small)).toBeCloseTo(mean(img.pixels), 1);
    const unit = normalise(small, img);
    expect(Math.min(...unit)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...unit)).toBe(1);
  });

  it('the whole folder: 14 images (the 3 compressed ones included), 2 quarantined, README skipped', async () => {
    const q = new Quarantine();
    const stats: DicomScanStats = { filesSeen: 0, images: 0, quarantined: 0, skipped: 0 };
    const ids: string[] = [];
    for await (const img of readDicomFolder(dir!, q, {}, stats)) ids.push(img.sopInstanceUid ?? '');
    expect(stats.images).toBe(14);
    expect(stats.quarantined).toBe(2);
    expect(stats.skipped).toBe(1);
    expect(q.records).toHaveLength(2);
    expect(q.countsByReason()['dicom: truncated file']).toBe(1);
    expect(q.countsByReason()['dicom: no pixel data']).toBe(1);
  });
});
