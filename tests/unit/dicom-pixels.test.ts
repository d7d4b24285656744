import { describe, expect, it } from 'vitest';
import {
  normalise,
  normaliseMinMax,
  normaliseWindow,
  pixelKernels,
  resampleStoredToGrid,
  resampleToGrid,
} from '../../site-agent/connectors/dicom/pixels.ts';
import { bandSums } from '../../site-agent/connectors/dicom/simd-sums.ts';
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

describe('resampleStoredToGrid (stored integers straight to the grid)', () => {
  /** Deterministic 32-bit generator (the test data only needs to be arbitrary). */
  function words(n: number, seed: number): Uint32Array {
    let x = seed >>> 0 || 1;
    return Uint32Array.from({ length: n }, () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0));
  }
  /** The value the standard assigns to a container: low bitsStored bits, sign-extended if signed. */
  const storedValue = (raw: number, bitsStored: number, signed: boolean): number => {
    const v = raw & (2 ** bitsStored - 1);
    return signed && v >= 2 ** (bitsStored - 1) ? v - 2 ** bitsStored : v;
  };
  const cases: { rows: number; cols: number; grid: { rows: number; cols: number }; container: 8 | 16; bits: number[] }[] = [
    { rows: 64, cols: 64, grid: { rows: 8, cols: 8 }, container: 16, bits: [8, 12, 15, 16] }, // SIMD (8 per cell), else lanes
    { rows: 64, cols: 128, grid: { rows: 4, cols: 8 }, container: 16, bits: [1, 12, 16] }, // SIMD, 2 chunks per cell
    { rows: 48, cols: 36, grid: { rows: 8, cols: 6 }, container: 16, bits: [12, 14] }, // lanes, 6 per cell; 14 bits → per-pixel (a lane could carry)
    { rows: 30, cols: 27, grid: { rows: 10, cols: 9 }, container: 16, bits: [12, 16] }, // 3 per cell: per-pixel bands
    { rows: 31, cols: 29, grid: { rows: 7, cols: 5 }, container: 16, bits: [12] }, // fractional overlaps both ways
    { rows: 40, cols: 40, grid: { rows: 8, cols: 8 }, container: 8, bits: [6, 8] },
  ];
  for (const c of cases) {
    for (const bits of c.bits) {
      it(`${c.rows}×${c.cols} → ${c.grid.rows}×${c.grid.cols}, ${bits} of ${c.container} bits: signed and unsigned, frame offsets 0/2/4, with and without trailing bytes, both byte orders, SIMD and JavaScript kernels`, () => {
        for (const [signed, simd] of [
          [false, true],
          [true, true],
          [false, false],
          [true, false],
        ] as const) {
          pixelKernels.simd = simd;
          for (const byteOffset of [0, 2, 4]) {
            for (const trailing of [0, 2]) {
              for (const swapped of c.container === 16 ? [false, true] : [false]) {
                const label = `${simd ? 'SIMD' : 'JS'}, ${signed ? 'signed' : 'unsigned'}, offset ${byteOffset}, trailing ${trailing}${swapped ? ', big endian' : ''}`;
                const n = c.rows * c.cols;
                const bytesPer = c.container / 8;
                // Random bits everywhere, also above bitsStored (overlay bits, garbage): they must be ignored.
                const buf = new ArrayBuffer(byteOffset + n * bytesPer + trailing);
                new Uint8Array(buf).set(
                  new Uint8Array(words(Math.ceil(buf.byteLength / 4), n + bits + byteOffset).buffer).subarray(0, buf.byteLength),
                );
                const before = new Uint8Array(buf).slice();
                const view =
                  c.container === 16
                    ? signed
                      ? new Int16Array(buf, byteOffset, n)
                      : new Uint16Array(buf, byteOffset, n)
                    : signed
                      ? new Int8Array(buf, byteOffset, n)
                      : new Uint8Array(buf, byteOffset, n);
                const bytes = new Uint8Array(buf, byteOffset, n * bytesPer);
                const pixels = Float64Array.from({ length: n }, (_, i) => {
                  const raw =
                    c.container === 8
                      ? bytes[i]!
                      : swapped
                        ? (bytes[2 * i]! << 8) | bytes[2 * i + 1]!
                        : bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
                  return storedValue(raw, bits, signed);
                });
                const expected = resampleToGrid(pixels, c.rows, c.cols, c.grid); // Float32: compare relatively
                const got = resampleStoredToGrid(view, c.rows, c.cols, c.grid, bits, signed, swapped);
                expect(got.length, label).toBe(expected.length);
                // Mismatches collected and compared once: an expect per cell and a deep toEqual of
                // the frame's bytes took most of this file's 45 s.
                const off: string[] = [];
                for (let i = 0; i < got.length; i++) {
                  if (!(Math.abs(got[i]! - expected[i]!) <= 1e-6 * Math.max(1, Math.abs(expected[i]!))))
                    off.push(`cell ${i}: ${got[i]} vs ${expected[i]}`);
                }
                expect(off, label).toEqual([]);
                // The frame is never modified (a big-endian frame is swapped in registers or in a copy).
                expect(Buffer.compare(new Uint8Array(buf), before), `${label}: the frame was modified`).toBe(0);
              }
            }
          }
        }
        pixelKernels.simd = true;
      });
    }
  }

  it('the SIMD kernel compiles here (so the cases above ran both kernels) and sums a hand-made band', () => {
    const k = bandSums();
    if (!k) throw new Error('WebAssembly SIMD unavailable: the SIMD cases above fell back to JavaScript');
    // Two rows of 16 pixels: 1..16 and 100·(1..16); two cells of 8 pixels; 12 bits, sign bit 0x800.
    const px = new Uint16Array(32);
    for (let i = 0; i < 16; i++) {
      px[i] = (i + 1) | 0xf000; // garbage above bit 11 must be masked away
      px[16 + i] = 100 * (i + 1);
    }
    const acc = 64;
    new Uint8Array(k.memory.buffer, 0, 64).set(new Uint8Array(px.buffer));
    k.sums(0, 32, 2, 2, 1, 0xfff, 0, acc);
    const lanes = new Int32Array(k.memory.buffer, acc, 8);
    const cell = (c: number) => lanes[4 * c]! + lanes[4 * c + 1]! + lanes[4 * c + 2]! + lanes[4 * c + 3]!;
    expect([cell(0), cell(1)]).toEqual([36 + 3600, 100 + 10000]);
  });

  it('rejects impossible bit depths and short input', () => {
    expect(() => resampleStoredToGrid(new Uint16Array(16), 4, 4, 2, 17, false)).toThrow(RangeError);
    expect(() => resampleStoredToGrid(new Uint8Array(16), 4, 4, 2, 9, false)).toThrow(RangeError);
    expect(() => resampleStoredToGrid(new Uint16Array(15), 4, 4, 2, 12, false)).toThrow(RangeError);
    expect(() => resampleStoredToGrid(new Uint16Array(16), 4, 4, 0, 12, false)).toThrow(RangeError);
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
    expect(planes.map((p) => Array.from(p))).toEqual([
      [1, 2, 3],
      [4, 4, 4],
    ]);
  });
  it('rejects a header shorter than 64 bytes', () => {
    expect(() => decodeRleFrame(new Uint8Array(10), 3, 1)).toThrow(/64-byte header/);
  });
});
