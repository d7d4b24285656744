// The synthetic radiograph's pixel pass: the noise stream is what radiograph-pixels.ts says it is
// and is not degenerate, a stored value follows the stated formula, the cell sums are the stored
// pixels', and the cohort path gives the same image in its own buffers or fresh ones.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rowShift, columnShift, type ComponentMove, type GridComponentPlan } from '../../modalities/image/components.ts';
import {
  finishDensity,
  noiseSums,
  pixelWorkspace,
  storePixels,
  type PixelWorkspace,
  type StoredAcquisition,
} from '../../modalities/image/radiograph-pixels.ts';
import { radiographBuffers, synthesiseRadiograph, synthStats } from '../../modalities/image/radiograph-synth.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';

const ADULT = { ageYears: 45, sex: 'male' };

const text = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');
const schema = parseSchema(text);

/** A move with random factors (only the fields the pixel pass reads). */
function move(size: number, rng: Rng, flatCols: boolean, flatRows: boolean): ComponentMove {
  const factor = () => Float64Array.from({ length: size }, () => rng.next() - 0.5);
  return { j: 0, g: new Float64Array(0), flatCols, flatRows, f: { row: factor(), col: factor() } } as unknown as ComponentMove;
}

/** Two ordered runs per row within the row, empty and whole-row runs included. */
function randomSpans(size: number, rng: Rng): Int32Array {
  const spans = new Int32Array(4 * size);
  for (let y = 0; y < size; y++) {
    if (y % 7 === 0) continue;
    if (y % 11 === 0) {
      spans[4 * y + 1] = size;
      continue;
    }
    const a = rng.int(size + 1);
    const b = a + rng.int(size - a + 1);
    const c = b + rng.int(size - b + 1);
    spans.set([a, b, c, c + rng.int(size - c + 1)], 4 * y);
  }
  return spans;
}

interface Pass {
  pixels: Uint16Array;
  cells: Float64Array;
  noise: Float64Array;
}

function runPass(ws: PixelWorkspace, plan: GridComponentPlan, spans: Int32Array, acq: StoredAcquisition): Pass {
  storePixels(ws, plan, spans, acq);
  const pixels = ws.pixels.slice();
  const cells = ws.cells.slice();
  noiseSums(ws);
  return { pixels, cells, noise: ws.cells.slice() };
}

function cellSums(px: Uint16Array, size: number, n: number): Float64Array {
  const f = size / n;
  const out = new Float64Array(n * n);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) out[Math.floor(y / f) * n + Math.floor(x / f)] += px[y * size + x];
  return out;
}

/** Lane l of the stream: plain sfc32 from (seed[l], seed[4 + l], seed[8 + l], seed[12 + l]). */
function referenceDraws(seed: Int32Array, size: number): Int32Array {
  const u = new Int32Array(size * size);
  const lanes = [0, 1, 2, 3].map((l) => [seed[l], seed[4 + l], seed[8 + l], seed[12 + l]]);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = lanes[x % 4];
      let [a, b, c, d] = s;
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (((c << 21) | (c >>> 11)) + t) | 0;
      lanes[x % 4] = [a, b, c, d];
      u[y * size + x] = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
    }
  }
  return u;
}

/** Draws alone: no gain, one stored unit per unit of u, so each stored pixel is its draw. */
const drawsOnly: StoredAcquisition = { base: 0, gain: 0, step: 1, max: 65535 };
const noMoves: GridComponentPlan = { moves: [], delta: new Float64Array(0) };

describe('radiograph pixel pass', () => {
  it('finishDensity clamps the density to [0, 1] and averages it per cell', () => {
    const ws = pixelWorkspace(12, 3);
    const rng = new Rng('clamp');
    for (let i = 0; i < ws.density.length; i++) ws.density[i] = 1.6 * rng.next() - 0.3;
    const want = new Float64Array(9);
    for (let y = 0; y < 12; y++)
      for (let x = 0; x < 12; x++) want[Math.floor(y / 4) * 3 + Math.floor(x / 4)] += Math.min(1, Math.max(0, ws.density[y * 12 + x])) / 16;
    finishDensity(ws);
    expect(ws.density.every((v) => v >= 0 && v <= 1)).toBe(true);
    ws.grid.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });

  it('rejects a workspace whose size is not a multiple of the grid', () => {
    expect(() => pixelWorkspace(70, 64)).toThrow(/not a multiple/);
  });

  it('the noise stream is four sfc32 lanes, lane l drawing the pixels x ≡ l (mod 4) of each row, rows in order; its cell sums are noiseSums', () => {
    for (const [size, n] of [
      [64, 16],
      [70, 10],
    ]) {
      const ws = pixelWorkspace(size, n);
      const rng = new Rng(`stream-${size}`);
      for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
      const ref = referenceDraws(ws.seed, size);
      const pass = runPass(ws, noMoves, new Int32Array(4 * size), drawsOnly);
      expect(Array.from(pass.pixels), `${size}`).toEqual(Array.from(ref));
      expect(Array.from(pass.noise)).toEqual(Array.from(cellSums(pass.pixels, size, n)));
      expect(Array.from(pass.cells)).toEqual(Array.from(pass.noise));
    }
  });

  it('the noise is not degenerate: each lane Irwin–Hall (mean 1534.5, variance 3·(1024² − 1)/12), lanes and rows distinct and uncorrelated', () => {
    const size = 256;
    const ws = pixelWorkspace(size, 64);
    const rng = new Rng('noise-stats');
    for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
    const u = runPass(ws, noMoves, new Int32Array(4 * size), drawsOnly).pixels;
    const lanes = [0, 1, 2, 3].map((l) => Float64Array.from({ length: (size * size) / 4 }, (_, i) => u[4 * i + l]));
    const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const variance = (3 * (1024 * 1024 - 1)) / 12;
    for (const [l, a] of lanes.entries()) {
      const m = mean(a);
      const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1);
      // 16,384 draws: the mean's sd is 4, the variance's about 1.1 %.
      expect(Math.abs(m - 1534.5), `lane ${l} mean ${m}`).toBeLessThan(20);
      expect(Math.abs(v / variance - 1), `lane ${l} variance ${v}`).toBeLessThan(0.06);
    }
    for (let l = 1; l < 4; l++) {
      const a = lanes[0];
      const b = lanes[l];
      expect(
        a.every((v, i) => v === b[i]),
        `lanes 0 and ${l}`,
      ).toBe(false);
      const ma = mean(a);
      const mb = mean(b);
      let r = 0;
      for (let i = 0; i < a.length; i++) r += (a[i] - ma) * (b[i] - mb);
      // Correlation's sd is 1/√16,384 ≈ 0.008.
      expect(Math.abs(r / (a.length - 1) / variance), `lanes 0 and ${l} correlated`).toBeLessThan(0.05);
    }
    expect(
      u.subarray(0, size).every((v, x) => v === u[size + x]),
      'row 1 repeats row 0',
    ).toBe(false);
  });

  it('synthesiseRadiograph seeds the four lanes apart, and each image anew', () => {
    const seeds: number[][] = [];
    const rng = new Rng('seeds');
    for (let i = 0; i < 2; i++) {
      synthesiseRadiograph(schema, 64, ADULT, { cardiomegaly: false, opacity: false, nodule: false }, [1, 1, 1], rng);
      const seed = pixelWorkspace(64, 64).seed;
      seeds.push(Array.from(seed));
      const lane = (l: number) => [seed[l], seed[4 + l], seed[8 + l], seed[12 + l]].join();
      expect(new Set([0, 1, 2, 3].map(lane)).size).toBe(4);
    }
    expect(seeds[0]).not.toEqual(seeds[1]);
  });

  // Sizes with and without a remainder of 4 pixels; cells of 1, 2, 3, 4, 6, 7, 8 pixels.
  const shapes: [number, number][] = [
    [256, 64],
    [128, 64],
    [64, 64],
    [512, 64],
    [64, 8],
    [36, 9],
    [60, 10],
    [70, 10],
    [33, 11],
    [15, 15],
  ];
  const acquisitions: [string, (max: number) => StoredAcquisition][] = [
    ['in range', (max) => ({ base: Math.round(0.05 * max), gain: 0.7 * max, step: ((2 * 0.02) / 1024) * max, max })],
    ['clamping at both ends', (max) => ({ base: Math.round(-0.3 * max), gain: 1.4 * max, step: ((2 * 0.035) / 1024) * max, max })],
  ];
  for (const [size, n] of shapes) {
    it(`${size}×${size} on a ${n}×${n} grid: the cells are the pixels' sums, the noise sums the draws', clamping only where the acquisition takes values out of range`, () => {
      const rng = new Rng(`shape-${size}-${n}`);
      const ws = pixelWorkspace(size, n);
      const spans = randomSpans(size, rng);
      const plans: [string, GridComponentPlan][] = [
        ['no components', noMoves],
        [
          'per-row and per-column moves',
          { moves: [move(size, rng, true, false), move(size, rng, false, true)], delta: Float64Array.of(0.4, -0.3) },
        ],
        [
          'moves varying both ways',
          {
            moves: [
              move(size, rng, false, true),
              move(size, rng, false, false),
              move(size, rng, true, false),
              move(size, rng, false, false),
            ],
            delta: Float64Array.of(0.2, 0.5, -0.25, -0.6),
          },
        ],
      ];
      for (const bits of [8, 12, 16]) {
        const max = 2 ** bits - 1;
        for (const [acqName, acqOf] of acquisitions) {
          const acq = acqOf(max);
          for (const [planName, plan] of plans) {
            const label = `${bits} bits, ${acqName}, ${planName}`;
            // Density in [0, 1] as the prior draws it; the shift takes it out of range.
            for (let i = 0; i < ws.density.length; i++) ws.density[i] = rng.next();
            for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
            const simd = runPass(ws, plan, spans, acq);
            const draws = referenceDraws(ws.seed, size);
            expect(Array.from(simd.noise), `${label}: noise sums`).toEqual(Array.from(cellSums(Uint16Array.from(draws), size, n)));
            expect(Array.from(simd.cells), `${label}: cells are the pixels' sums`).toEqual(Array.from(cellSums(simd.pixels, size, n)));
            let low = 0;
            let high = 0;
            for (const q of simd.pixels) {
              if (q === 0) low++;
              else if (q === max) high++;
            }
            if (acqName === 'in range') expect(low + high, label).toBe(0);
            else expect(low > 0 && high > 0, `${label}: clamps at 0 and max`).toBe(true);
          }
        }
      }
    });
  }

  it('a stored value is base + the rounded gain·clamp01(density + shift) + u·step, clamped to [0, max]', () => {
    const size = 64;
    const rng = new Rng('formula');
    const ws = pixelWorkspace(size, 16);
    const plan: GridComponentPlan = {
      moves: [move(size, rng, true, false), move(size, rng, false, false)],
      delta: Float64Array.of(0.5, 0.8),
    };
    const spans = randomSpans(size, rng);
    for (let i = 0; i < ws.density.length; i++) ws.density[i] = rng.next();
    for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
    const u = referenceDraws(ws.seed, size);
    const max = 4095;
    const acq: StoredAcquisition = { base: -200, gain: 1.3 * max, step: 0.17, max };
    const colShift = new Float64Array(size);
    const shift = new Float64Array(size);
    columnShift(plan.moves, plan.delta, size, colShift);
    {
      const px = runPass(ws, plan, spans, acq).pixels;
      for (let y = 0; y < size; y++) {
        rowShift(plan.moves, plan.delta, size, y, colShift, spans, shift);
        for (let x = 0; x < size; x++) {
          const i = y * size + x;
          const dd = Math.min(1, Math.max(0, ws.density[i] + shift[x]));
          const v = acq.base + acq.gain * dd + u[i] * acq.step;
          const want = Math.min(max, Math.max(0, v));
          expect(Math.abs(px[i] - want), `pixel (${x}, ${y}): ${px[i]} for ${v}`).toBeLessThanOrEqual(0.5 + 1e-9);
        }
      }
    }
  });

  it('synthesiseRadiograph: the same image in fresh or its own buffers, with and without enforcing the grid, at 8/12/16 bits, 64/128/256 pixels, a grid of 10 (rows of 70) and components varying both ways', () => {
    const grid10 = parseSchema(text.replace('grid: 64', 'grid: 10'));
    const bothWays = parseSchema(text.replace('basis: [0, 2]', 'basis: [1, 1]'));
    const cases: [string, typeof schema, number][] = [
      ['64', schema, 64],
      ['128', schema, 128],
      ['256', schema, 256],
      ['grid 10, 70', grid10, 70],
      ['basis [1, 1], 128', bothWays, 128],
    ];
    const enforcedBefore = synthStats.enforced;
    let enforcedCalls = 0;
    for (const [name, s, size] of cases) {
      for (const bitsStored of [8, 12, 16]) {
        for (const enforce of [false, true]) {
          const label = `${name}, ${bitsStored} bits${enforce ? ', enforced' : ''}`;
          const bins = [1, 2, 1];
          const findings = { cardiomegaly: bitsStored === 12, opacity: true, nodule: false };
          const a = synthesiseRadiograph(s, size, ADULT, findings, bins, new Rng(label), { bitsStored, enforce });
          const b = synthesiseRadiograph(s, size, ADULT, findings, bins, new Rng(label), { bitsStored, enforce });
          // The pixel pass's own buffers: the same image without the copy.
          const own = radiographBuffers(s, size);
          const c = synthesiseRadiograph(s, size, ADULT, findings, bins, new Rng(label), { bitsStored, enforce, ...own });
          expect(c.pixels, label).toBe(own.pixels);
          for (const other of [b, c]) {
            expect(
              Buffer.from(other.pixels.buffer, other.pixels.byteOffset, other.pixels.byteLength).equals(
                Buffer.from(a.pixels.buffer, a.pixels.byteOffset, a.pixels.byteLength),
              ),
              `${label}: pixels`,
            ).toBe(true);
            expect([other.windowCenter, other.windowWidth, other.components], label).toEqual([a.windowCenter, a.windowWidth, a.components]);
          }
          expect(Math.max(...a.pixels), label).toBeLessThanOrEqual(2 ** bitsStored - 1);
          if (enforce) enforcedCalls += 3;
        }
      }
    }
    // Every image took the grid path, the enforced ones its second pass.
    expect(synthStats.enforced - enforcedBefore).toBeGreaterThanOrEqual(enforcedCalls);
    expect(enforcedCalls).toBeGreaterThan(0);
  });
});
