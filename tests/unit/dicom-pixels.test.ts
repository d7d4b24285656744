import { describe, expect, it } from 'vitest';
import {
  normalise,
  normaliseMinMax,
  normaliseWindow,
  resampleToGrid,
} from '../../site-agent/connectors/dicom/pixels.ts';
import { decodeRleFrame, encodeRleFrame, packBits, unpackBits } from '../../site-agent/connectors/dicom/rle.ts';

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

describe('resampleToGrid (area averaging)', () => {
  it('4×4 → 2×2 averages each 2×2 block', () => {
    const px = [1, 3, 10, 10, 5, 7, 10, 10, 0, 0, 2, 2, 0, 4, 2, 2];
    expect(Array.from(resampleToGrid(px, 4, 4, 2))).toEqual([4, 10, 1, 2]);
  });

  it('3×3 → 2×2 weights fractional overlaps and preserves the mean', () => {
    const px = [0, 0, 9, 0, 0, 9, 9, 9, 9];
    const out = resampleToGrid(px, 3, 3, 2);
    // top-left cell covers [0,1.5)² : 1 full zero, two halves of zero, a quarter of zero → 0
    expect(out[0]).toBeCloseTo(0, 6);
    // top-right covers x in [1.5,3), y in [0,1.5): half of column 1 (zeros, weight 1/3) and all of
    // column 2 (nines, weight 2/3) over rows 0 and 1 → 6
    expect(out[1]).toBeCloseTo(6, 5);
    // bottom-right covers x, y in [1.5,3): (1/3·0 + 2/3·9)·1/3 + 9·2/3 = 8
    expect(out[3]).toBeCloseTo(8, 5);
    expect(mean(out)).toBeCloseTo(mean(px), 5);
  });

  it('upsampling replicates (2×2 → 4×4)', () => {
    const out = resampleToGrid([1, 2, 3, 4], 2, 2, 4);
    expect(Array.from(out)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  it('non-square source and target', () => {
    const px = Array.from({ length: 6 * 10 }, (_, i) => i % 10);
    const out = resampleToGrid(px, 6, 10, { rows: 3, cols: 5 });
    expect(out.length).toBe(15);
    expect(Array.from(out.slice(0, 5))).toEqual([0.5, 2.5, 4.5, 6.5, 8.5]);
  });

  it('a constant image stays constant; identity size is exact', () => {
    expect(Array.from(resampleToGrid(new Float32Array(7 * 5).fill(3), 7, 5, 3)).every((v) => Math.abs(v - 3) < 1e-5)).toBe(true);
    const px = [1, 2, 3, 4, 5, 6];
    expect(Array.from(resampleToGrid(px, 2, 3, { rows: 2, cols: 3 }))).toEqual(px);
  });

  it('rejects bad sizes', () => {
    expect(() => resampleToGrid([1, 2], 2, 2, 1)).toThrow(RangeError);
    expect(() => resampleToGrid([1, 2, 3, 4], 2, 2, 0)).toThrow(RangeError);
  });
});

describe('normalisation to [0, 1]', () => {
  it('window clamps below and above', () => {
    const out = Array.from(normaliseWindow([-1000, 0, 40, 240, 1000], 40, 400));
    [0, 0.4, 0.5, 1, 1].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 6));
  });
  it('min/max; constant → zeros', () => {
    expect(Array.from(normaliseMinMax([2, 4, 6]))).toEqual([0, 0.5, 1]);
    expect(Array.from(normaliseMinMax([5, 5]))).toEqual([0, 0]);
  });
  it('auto uses the window when present, else min/max', () => {
    expect(Array.from(normalise([0, 100], { windowCenter: 50, windowWidth: 100 }))).toEqual([0, 1]);
    expect(Array.from(normalise([0, 50, 100], undefined))).toEqual([0, 0.5, 1]);
    expect(Array.from(normalise([0, 50, 100], { windowCenter: 0, windowWidth: 10 }, 'minmax'))).toEqual([0, 0.5, 1]);
    expect(() => normalise([0], undefined, 'window')).toThrow();
  });
});

describe('RLE PackBits', () => {
  it('round-trips runs, literals and long planes', () => {
    const planes = [
      Uint8Array.from([1, 1, 1, 1, 2, 3, 4, 4, 5]),
      new Uint8Array(1000).fill(7),
      Uint8Array.from({ length: 777 }, (_, i) => (i * 37) % 251),
    ];
    for (const p of planes) {
      const enc = packBits(p);
      expect(Array.from(unpackBits(enc, 0, enc.length, p.length))).toEqual(Array.from(p));
    }
  });
  it('decodes a hand-made segment with a replicate run, a literal and a no-op', () => {
    // -2 → repeat 3 times; 1 → 2 literals; 128 → no-op
    const seg = Uint8Array.from([0xfe, 9, 0x01, 4, 5, 0x80]);
    expect(Array.from(unpackBits(seg, 0, seg.length, 5))).toEqual([9, 9, 9, 4, 5]);
  });
  it('frame with two planes', () => {
    const a = Uint8Array.from([1, 2, 3]);
    const b = Uint8Array.from([4, 4, 4]);
    const planes = decodeRleFrame(encodeRleFrame([a, b]), 3, 2);
    expect(planes.map((p) => Array.from(p))).toEqual([[1, 2, 3], [4, 4, 4]]);
  });
  it('rejects a header shorter than 64 bytes', () => {
    expect(() => decodeRleFrame(new Uint8Array(10), 3, 1)).toThrow(/64-byte header/);
  });
});
