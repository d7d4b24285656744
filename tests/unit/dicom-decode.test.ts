import { describe, expect, it } from 'vitest';
import { dicomGrid, parseDicomBytes, resampleToGrid, type DicomImage } from '../../site-agent/connectors/dicom/index.ts';
import { writeDicomFixture, type FixtureAttributes } from '../../site-agent/connectors/dicom/write.ts';

const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflate: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  rle: '1.2.840.10008.1.2.5',
};

const base: FixtureAttributes = {
  PatientID: 'PAT-001',
  PatientName: 'Doe^Jane',
  PatientBirthDate: '19700101',
  PatientAddress: '1 Secret Street',
  StudyInstanceUID: '1.2.3.100',
  SeriesInstanceUID: '1.2.3.100.1',
  SOPInstanceUID: '1.2.3.100.1.1',
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
  Modality: 'DX',
  BodyPartExamined: 'CHEST',
  SamplesPerPixel: 1,
  PhotometricInterpretation: 'MONOCHROME2',
  Rows: 3,
  Columns: 4,
  BitsAllocated: 16,
  BitsStored: 16,
  HighBit: 15,
  PixelRepresentation: 1,
  RescaleSlope: 2,
  RescaleIntercept: -100,
  WindowCenter: 40,
  WindowWidth: 400,
};
// 3×4 signed 16-bit values, including negatives and extremes.
const values16 = [0, 1, -1, 300, -32768, 32767, 1000, -1000, 7, 8, 9, 10];

function decode(bytes: Uint8Array, frame?: number | 'first' | 'middle'): DicomImage {
  const r = parseDicomBytes(bytes, 'mem.dcm', frame === undefined ? {} : { frame });
  if (!r.ok) throw new Error(`quarantined: ${r.record.reason} ${r.record.detail ?? ''}`);
  return r.image;
}

function reject(bytes: Uint8Array, frame?: number) {
  const r = parseDicomBytes(bytes, 'bad.dcm', frame === undefined ? {} : { frame });
  if (r.ok) throw new Error('expected a quarantine record');
  expect(r.record.modality).toBe('dicom');
  expect(r.record.source).toBe('bad.dcm');
  return r.record;
}

describe('DICOM decode: native and RLE transfer syntaxes agree', () => {
  const expected = values16.map((v) => v * 2 - 100);
  for (const [name, uid] of [
    ['explicit VR LE', TS.explicitLE],
    ['implicit VR LE', TS.implicitLE],
    ['explicit VR BE', TS.explicitBE],
    ['deflated explicit VR LE', TS.deflate],
    ['RLE Lossless', TS.rle],
  ] as const) {
    it(`${name}: 16-bit signed with rescale`, () => {
      const img = decode(writeDicomFixture({ transferSyntaxUid: uid, attributes: base, pixelValues: values16 }));
      expect(img.transferSyntaxUid).toBe(uid);
      expect(img.rows).toBe(3);
      expect(img.columns).toBe(4);
      expect(img.bitsAllocated).toBe(16);
      expect(img.pixelRepresentation).toBe(1);
      expect(img.rescaleSlope).toBe(2);
      expect(img.rescaleIntercept).toBe(-100);
      expect(Array.from(img.pixels)).toEqual(expected);
      expect(img.windowCenter).toBe(40);
      expect(img.windowWidth).toBe(400);
      expect(img.valueRange).toEqual([-32768 * 2 - 100, 32767 * 2 - 100]);
    });
  }

  it('8-bit unsigned, implicit VR', () => {
    const attrs = { ...base, BitsAllocated: 8, BitsStored: 8, HighBit: 7, PixelRepresentation: 0, RescaleSlope: 1, RescaleIntercept: 0 };
    const vals = [0, 1, 2, 3, 250, 251, 252, 253, 254, 255, 128, 64];
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.implicitLE, attributes: attrs, pixelValues: vals }));
    expect(Array.from(img.pixels)).toEqual(vals);
    expect(img.valueRange).toEqual([0, 255]);
  });

  it('bits stored 12 masks the unused high bits; 12-bit signed is sign-extended', () => {
    const unsigned = { ...base, BitsStored: 12, HighBit: 11, PixelRepresentation: 0, RescaleSlope: 1, RescaleIntercept: 0 };
    const vals = [0xf000 | 5, 4095, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: unsigned, pixelValues: vals }));
    expect(img.pixels[0]).toBe(5);
    expect(img.pixels[1]).toBe(4095);
    const signed = { ...unsigned, PixelRepresentation: 1 };
    const img2 = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: signed, pixelValues: vals }));
    expect(img2.pixels[1]).toBe(-1); // 0xFFF in 12-bit two's complement
    expect(img2.pixels[0]).toBe(5);
  });

  it('32-bit unsigned native', () => {
    const attrs = { ...base, BitsAllocated: 32, BitsStored: 32, HighBit: 31, PixelRepresentation: 0, RescaleSlope: 1, RescaleIntercept: 0 };
    const vals = [0, 1, 70000, 4026531840, 5, 6, 7, 8, 9, 10, 11, 12];
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitBE, attributes: attrs, pixelValues: vals }));
    expect(img.pixels[2]).toBe(70000);
    expect(img.pixels[3]).toBe(4026531840); // 0xF0000000, exact in float32
  });
});

describe('dicomGrid: the grid straight from the stored values', () => {
  // 16×12 pixels of 12 bits in 16 (garbage in the top nibble), to 4×3 (lanes) and 5×5 (fractional).
  const rows = 16;
  const cols = 12;
  const vals = Array.from({ length: rows * cols }, (_, i) => ((i * 2654435761) >>> 0) & 0xffff);
  const cases = [
    ['explicit VR LE', TS.explicitLE],
    ['implicit VR LE', TS.implicitLE],
    ['explicit VR BE', TS.explicitBE],
    ['deflated', TS.deflate],
    ['RLE', TS.rle],
  ] as const;
  for (const [name, uid] of cases) {
    for (const photometric of ['MONOCHROME2', 'MONOCHROME1']) {
      it(`${name}, ${photometric}, 12-bit signed with rescale: equals resampling the decoded frame`, () => {
        const attrs = {
          ...base,
          Rows: rows,
          Columns: cols,
          BitsStored: 12,
          HighBit: 11,
          PixelRepresentation: 1,
          RescaleSlope: 0.5,
          RescaleIntercept: 1000,
          PhotometricInterpretation: photometric,
        };
        const bytes = writeDicomFixture({ transferSyntaxUid: uid, attributes: attrs, pixelValues: vals });
        for (const target of [
          { rows: 4, cols: 3 },
          { rows: 5, cols: 5 },
        ]) {
          const fresh = decode(bytes);
          const grid = dicomGrid(fresh, target); // before anyone touched `pixels`
          const full = decode(bytes);
          const expected = resampleToGrid(full.pixels, rows, cols, target);
          expect(grid.length).toBe(expected.length);
          for (let i = 0; i < grid.length; i++) expect(grid[i]).toBeCloseTo(expected[i]!, 3);
          // Reading the pixels afterwards still gives the full frame, and the grid is unchanged by it.
          expect(Array.from(fresh.pixels)).toEqual(Array.from(full.pixels));
          expect(Array.from(dicomGrid(fresh, target))).toEqual(Array.from(expected));
        }
      });
    }
  }

  it('a truncated frame is still rejected at parse time, before any grid is asked for', () => {
    const attrs = { ...base, Rows: rows, Columns: cols, BitsStored: 12, HighBit: 11 };
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: attrs, pixelValues: vals });
    const rec = reject(bytes.subarray(0, bytes.length - 10));
    expect(rec.reason).toMatch(/truncated/);
  });
});

describe('DICOM decode: photometric interpretation and frames', () => {
  it('MONOCHROME1 is inverted so bright = dense, window centre reflected', () => {
    const attrs = {
      ...base,
      PhotometricInterpretation: 'MONOCHROME1',
      BitsStored: 8,
      HighBit: 7,
      BitsAllocated: 8,
      PixelRepresentation: 0,
      RescaleSlope: 1,
      RescaleIntercept: 0,
      WindowCenter: 100,
      WindowWidth: 50,
    };
    const vals = [0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: attrs, pixelValues: vals }));
    expect(img.inverted).toBe(true);
    expect(Array.from(img.pixels)).toEqual(vals.map((v) => 255 - v));
    expect(img.windowCenter).toBe(155);
    expect(img.windowWidth).toBe(50);
  });

  const rgbAttrs = {
    ...base,
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    Rows: 1,
    Columns: 2,
    NumberOfFrames: 3,
    RescaleSlope: undefined,
    RescaleIntercept: undefined,
  };
  // three frames of two RGB pixels each
  const rgb = [255, 0, 0, 0, 0, 255, 0, 255, 0, 10, 10, 10, 100, 100, 100, 0, 0, 0];
  const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

  it('RGB (interleaved, native) becomes luminance; frame 0 by default', () => {
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: rgbAttrs, pixelValues: rgb }));
    expect(img.numberOfFrames).toBe(3);
    expect(img.frameIndex).toBe(0);
    expect(img.pixels[0]).toBeCloseTo(luma(255, 0, 0), 4);
    expect(img.pixels[1]).toBeCloseTo(luma(0, 0, 255), 4);
  });

  it('RGB RLE multi-frame: frame by index and "middle"', () => {
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.rle, attributes: rgbAttrs, pixelValues: rgb });
    const f1 = decode(bytes, 1);
    expect(f1.frameIndex).toBe(1);
    expect(f1.pixels[0]).toBeCloseTo(luma(0, 255, 0), 4);
    expect(f1.pixels[1]).toBeCloseTo(10, 4);
    expect(decode(bytes, 'middle').frameIndex).toBe(1);
    const f2 = decode(bytes, 2);
    expect(Array.from(f2.pixels).map((v) => Math.round(v))).toEqual([100, 0]);
  });

  it('RGB with planar configuration 1', () => {
    const attrs = { ...rgbAttrs, PlanarConfiguration: 1, NumberOfFrames: 1 };
    // R plane, G plane, B plane
    const planar = [255, 0, 0, 0, 0, 255];
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: attrs, pixelValues: planar }));
    expect(img.pixels[0]).toBeCloseTo(luma(255, 0, 0), 4);
    expect(img.pixels[1]).toBeCloseTo(luma(0, 0, 255), 4);
  });

  it('a frame index beyond the object is quarantined', () => {
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.rle, attributes: rgbAttrs, pixelValues: rgb });
    const rec = reject(bytes, 7);
    expect(rec.reason).toBe('frame index out of range');
  });
});

describe('DICOM decode: only the linkage id and technical fields are exposed', () => {
  it('never returns names, birth dates or addresses', () => {
    const img = decode(writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: base, pixelValues: values16 }));
    expect(img.patientId).toBe('PAT-001');
    expect(img.studyInstanceUid).toBe('1.2.3.100');
    expect(img.seriesInstanceUid).toBe('1.2.3.100.1');
    expect(img.sopInstanceUid).toBe('1.2.3.100.1.1');
    expect(img.modality).toBe('DX');
    expect(img.bodyPart).toBe('CHEST');
    const { pixels: _p, ...meta } = img;
    const text = JSON.stringify(meta);
    expect(text).not.toMatch(/Doe|Jane|19700101|Secret/);
    const allowed = new Set([
      'source',
      'patientId',
      'studyInstanceUid',
      'seriesInstanceUid',
      'sopInstanceUid',
      'sopClassUid',
      'modality',
      'bodyPart',
      'transferSyntaxUid',
      'transferSyntaxName',
      'rows',
      'columns',
      'samplesPerPixel',
      'bitsAllocated',
      'bitsStored',
      'pixelRepresentation',
      'photometricInterpretation',
      'rescaleSlope',
      'rescaleIntercept',
      'windowCenter',
      'windowWidth',
      'numberOfFrames',
      'frameIndex',
      'inverted',
      'valueRange',
    ]);
    for (const k of Object.keys(meta)) expect(allowed.has(k), k).toBe(true);
  });
});

describe('DICOM decode: failures become quarantine records', () => {
  for (const [uid, name] of [
    ['1.2.840.10008.1.2.4.100', 'MPEG2'],
    ['1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000'],
  ] as const) {
    it(`unsupported transfer syntax ${uid} is named`, () => {
      const bytes = writeDicomFixture({
        transferSyntaxUid: uid,
        attributes: base,
        fragments: [Uint8Array.from([0xff, 0xd8, 0xff, 0xd9])],
      });
      const rec = reject(bytes);
      expect(rec.reason).toContain(uid);
      expect(rec.reason).toContain(name);
      expect(rec.offset).toBeGreaterThan(132);
    });
  }

  it('an unknown transfer syntax UID is rejected with the UID', () => {
    const bytes = writeDicomFixture({ transferSyntaxUid: '1.2.3.4.5.6.999', attributes: base, fragments: [new Uint8Array(4)] });
    expect(reject(bytes).reason).toContain('1.2.3.4.5.6.999');
  });

  it('a file truncated inside the pixel data: offset where the data stops', () => {
    const full = writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: base, pixelValues: values16 });
    const rec = reject(full.subarray(0, full.length - 6));
    expect(rec.reason).toBe('truncated file');
    expect(rec.offset).toBeGreaterThan(132);
    expect(rec.offset).toBeLessThan(full.length);
    expect(rec.detail).toContain(`${full.length - 6} bytes`);
  });

  it('a file truncated in the header', () => {
    const full = writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: base, pixelValues: values16 });
    const rec = reject(full.subarray(0, 200));
    expect(['truncated file', 'unparseable DICOM']).toContain(rec.reason);
  });

  it('a file truncated inside RLE fragments', () => {
    const full = writeDicomFixture({ transferSyntaxUid: TS.rle, attributes: base, pixelValues: values16 });
    const rec = reject(full.subarray(0, full.length - 20));
    expect(rec.reason).toMatch(/truncated|RLE|encapsulated/);
  });

  it('corrupt RLE data (bad segment count)', () => {
    const frame = new Uint8Array(80);
    frame[0] = 3; // three segments, but a 16-bit monochrome image needs two
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.rle, attributes: base, fragments: [frame] });
    const rec = reject(bytes);
    expect(rec.reason).toBe('corrupt RLE pixel data');
    expect(rec.detail).toMatch(/3 segments/);
  });

  it('RLE segment that ends early', () => {
    const frame = new Uint8Array(70);
    frame[0] = 2;
    frame[4] = 64;
    frame[8] = 66;
    frame[64] = 0; // literal run of 1 byte, then the segment ends
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.rle, attributes: base, fragments: [frame] });
    expect(reject(bytes).reason).toBe('corrupt RLE pixel data');
  });

  it('no pixel data', () => {
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: { PatientID: 'X', Modality: 'RTPLAN' } });
    expect(reject(bytes).reason).toBe('no pixel data');
  });

  it('neither Part 10 nor a bare data set', () => {
    const rec = reject(new TextEncoder().encode('hello, this is not DICOM at all'.repeat(10)));
    expect(rec.reason).toBe('not a DICOM file');
    expect(rec.offset).toBe(0);
  });

  it('pixel data shorter than rows × columns', () => {
    const bytes = writeDicomFixture({ transferSyntaxUid: TS.explicitLE, attributes: base, pixelValues: values16.slice(0, 6) });
    const rec = reject(bytes);
    expect(rec.reason).toBe('truncated pixel data');
    expect(rec.offset).toBeGreaterThan(132);
  });

  it('unsupported photometric interpretation', () => {
    const bytes = writeDicomFixture({
      transferSyntaxUid: TS.explicitLE,
      attributes: { ...base, PhotometricInterpretation: 'PALETTE COLOR' },
      pixelValues: values16,
    });
    expect(reject(bytes).reason).toBe('unsupported photometric interpretation PALETTE COLOR');
  });

  it('corrupt deflate stream', () => {
    const good = writeDicomFixture({ transferSyntaxUid: TS.deflate, attributes: base, pixelValues: values16 });
    const bad = good.slice();
    for (let i = bad.length - 30; i < bad.length; i++) bad[i] = 0xff;
    const r = parseDicomBytes(bad, 'bad.dcm');
    expect(r.ok).toBe(false);
  });
});
