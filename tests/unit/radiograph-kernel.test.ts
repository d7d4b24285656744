// The WebAssembly kernel of the synthetic radiographs (modalities/image/kernels/radiograph.wat)
// gives the same bits as the plain JavaScript it replaced, kept here as the reference: the 2×
// upsampling, the clamp and the grid averages; the stored pixels and their cell sums; the noise
// sums; and the half-size atlas warp, against the renderer's own JavaScript. Sizes with odd
// widths, widths that are not a multiple of 4, half-size drawings (one of odd side), moves of
// every kind and acquisitions that clamp at both ends.
import { describe, expect, it } from 'vitest';
import { columnShift, rowShift, type ComponentMove, type GridComponentPlan } from '../../modalities/image/components.ts';
import { finishDensity, noiseSums, pixelWorkspace, storePixels, type StoredAcquisition } from '../../modalities/image/radiograph-pixels.ts';
import { Rng } from '../../model/rng.ts';
import { chestWorkspace, drawChestAnatomy, drawsAtHalfSize } from '../../modalities/image/chest-radiograph.ts';

// ---- The JavaScript reference (the code the kernel replaced, unchanged) ----

function upsampleRef(src: Float32Array, h: number, out: Float32Array): void {
  const size = 2 * h;
  const across = new Float32Array(h * size);
  for (let y = 0; y < h; y++) {
    const o = y * h;
    const a = y * size;
    for (let x = 0; x < h; x++) {
      const v = 0.75 * src[o + x];
      across[a + 2 * x] = v + 0.25 * src[o + (x > 0 ? x - 1 : 0)];
      across[a + 2 * x + 1] = v + 0.25 * src[o + (x < h - 1 ? x + 1 : x)];
    }
  }
  for (let y = 0; y < h; y++) {
    const a = y * size;
    const up = (y > 0 ? y - 1 : 0) * size;
    const down = (y < h - 1 ? y + 1 : y) * size;
    const o0 = 2 * y * size;
    const o1 = o0 + size;
    for (let x = 0; x < size; x++) {
      const v = 0.75 * across[a + x];
      out[o0 + x] = v + 0.25 * across[up + x];
      out[o1 + x] = v + 0.25 * across[down + x];
    }
  }
}

function addCellRowRef(colSum: Float64Array, cells: Float64Array, gy: number, n: number, f: number): void {
  for (let gx = 0; gx < n; gx++) {
    let s = 0;
    for (let x = gx * f; x < gx * f + f; x++) s += colSum[x];
    cells[gy * n + gx] = s;
  }
  colSum.fill(0);
}

function clampIntoGridRef(density: Float32Array, size: number, n: number, grid: Float64Array): void {
  const f = size / n;
  const inv = 1 / (f * f);
  const colSum = new Float64Array(size);
  for (let y = 0; y < size; y++) {
    const o = y * size;
    for (let x = 0; x < size; x++) {
      let v = density[o + x];
      if (!(v > 0 && v < 1)) density[o + x] = v = v > 0 ? 1 : 0;
      colSum[x] += v;
    }
    if ((y + 1) % f === 0) {
      addCellRowRef(colSum, grid, (y + 1) / f - 1, n, f);
      const row = ((y + 1) / f - 1) * n;
      for (let gx = 0; gx < n; gx++) grid[row + gx] *= inv;
    }
  }
}

const ROUNDING = 6755399441055744;

/** Stored pixels and cell sums (`withPixels`), or the noise draws' cell sums. */
function storePixelsRef(
  density: Float32Array,
  size: number,
  n: number,
  seed: Int32Array,
  plan: GridComponentPlan,
  spans: Int32Array,
  acq: StoredAcquisition,
  withPixels: boolean,
): { pixels: Uint16Array; cells: Float64Array } {
  const f = size / n;
  const px = new Uint16Array(size * size);
  const cells = new Float64Array(n * n);
  const colSum = new Float64Array(size);
  const colShift = new Float64Array(size);
  const shift = new Float64Array(size);
  columnShift(plan.moves, plan.delta, size, colShift);
  const s = Int32Array.from(seed);
  const rounded = acq.base + ROUNDING;
  const { gain, step, max } = acq;
  for (let y = 0; y < size; y++) {
    rowShift(plan.moves, plan.delta, size, y, colShift, spans, shift);
    const o = y * size;
    for (let l = 0; l < 4; l++) {
      let a = s[l];
      let b = s[4 + l];
      let c = s[8 + l];
      let d = s[12 + l];
      for (let x = l; x < size; x += 4) {
        const t = (((a + b) | 0) + d) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = (((c << 21) | (c >>> 11)) + t) | 0;
        d = (d + 1) | 0;
        const u = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
        if (!withPixels) {
          colSum[x] += u;
          continue;
        }
        let g = gain * (density[o + x] + shift[x]);
        g = g < 0 ? 0 : g > gain ? gain : g;
        const v = g + u * step + rounded - ROUNDING;
        const q = v < 0 ? 0 : v > max ? max : v;
        px[o + x] = q;
        colSum[x] += q;
      }
      s[l] = a;
      s[4 + l] = b;
      s[8 + l] = c;
      s[12 + l] = d;
    }
    if ((y + 1) % f === 0) addCellRowRef(colSum, cells, (y + 1) / f - 1, n, f);
  }
  return { pixels: px, cells };
}

// ---- Inputs ----

function move(size: number, rng: Rng, flatCols: boolean, flatRows: boolean): ComponentMove {
  const factor = () => Float64Array.from({ length: size }, () => rng.next() - 0.5);
  return { j: 0, g: new Float64Array(0), flatCols, flatRows, f: { row: factor(), col: factor() } } as unknown as ComponentMove;
}

function randomSpans(size: number, rng: Rng): Int32Array {
  const spans = new Int32Array(4 * size);
  for (let y = 0; y < size; y++) {
    if (y % 5 === 0) continue;
    const a = rng.int(size + 1);
    const b = a + rng.int(size - a + 1);
    const c = b + rng.int(size - b + 1);
    spans.set([a, b, c, c + rng.int(size - c + 1)], 4 * y);
  }
  return spans;
}

const bitsEqual = (a: ArrayBufferView, b: ArrayBufferView): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// Half-size drawings (even sizes from 128), direct ones with odd widths and widths of 4k + 1…3.
const SHAPES: [number, number][] = [
  [256, 64],
  [192, 64],
  [128, 32],
  [512, 64],
  [64, 16],
  [70, 10],
  [33, 11],
  [15, 15],
  [18, 9],
];

describe('radiograph kernel = the JavaScript reference, bit for bit', () => {
  for (const [size, n] of SHAPES) {
    it(`${size}×${size} on ${n}×${n}: upsampled (from 128), clamped density and grid`, () => {
      const rng = new Rng(`density-${size}-${n}`);
      const ws = pixelWorkspace(size, n);
      const half = ws.chest.half;
      expect(Boolean(half), 'half-size drawing').toBe(size >= 128 && size % 2 === 0);
      const want = new Float32Array(size * size);
      // Values out of [0, 1] on both sides, and exact 0 and 1, as a drawing with findings gives.
      const draw = (): number => {
        const r = rng.next();
        return r < 0.05 ? 0 : r < 0.1 ? 1 : 1.6 * rng.next() - 0.3;
      };
      if (half) {
        for (let i = 0; i < half.density.length; i++) half.density[i] = draw();
        upsampleRef(half.density, size / 2, want);
      } else {
        for (let i = 0; i < ws.density.length; i++) ws.density[i] = draw();
        want.set(ws.density);
      }
      const grid = new Float64Array(n * n);
      clampIntoGridRef(want, size, n, grid);
      finishDensity(ws);
      expect(bitsEqual(ws.density, want), 'density').toBe(true);
      expect(bitsEqual(ws.grid, grid), 'grid').toBe(true);
    });

    it(`${size}×${size} on ${n}×${n}: stored pixels, their cell sums and the noise sums`, () => {
      const rng = new Rng(`pixels-${size}-${n}`);
      const ws = pixelWorkspace(size, n);
      const spans = randomSpans(size, rng);
      const plans: GridComponentPlan[] = [
        { moves: [], delta: new Float64Array(0) },
        {
          moves: [move(size, rng, true, false), move(size, rng, false, true), move(size, rng, false, false), move(size, rng, false, false)],
          delta: Float64Array.of(0.3, -0.4, 0.5, -0.2),
        },
      ];
      for (const bits of [8, 12, 16]) {
        const max = 2 ** bits - 1;
        const acquisitions: StoredAcquisition[] = [
          { base: Math.round(0.05 * max), gain: 0.7 * max, step: ((2 * 0.02) / 1024) * max, max },
          { base: Math.round(-0.3 * max), gain: 1.4 * max, step: ((2 * 0.035) / 1024) * max, max },
        ];
        for (const acq of acquisitions)
          for (const plan of plans) {
            const label = `${bits} bits, base ${acq.base}, ${plan.moves.length} moves`;
            for (let i = 0; i < ws.density.length; i++) ws.density[i] = rng.next();
            for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
            const ref = storePixelsRef(ws.density, size, n, ws.seed, plan, spans, acq, true);
            storePixels(ws, plan, spans, acq);
            expect(bitsEqual(ws.pixels, ref.pixels), `${label}: pixels`).toBe(true);
            expect(bitsEqual(ws.cells, ref.cells), `${label}: cells`).toBe(true);
            const noise = storePixelsRef(ws.density, size, n, ws.seed, plan, spans, acq, false);
            noiseSums(ws);
            expect(bitsEqual(ws.cells, noise.cells), `${label}: noise sums`).toBe(true);
          }
      }
    });
  }

  // The warp has no copy here: chestWorkspace's own (without a kernel) runs the JavaScript.
  for (const [size, n] of [...SHAPES.filter(([size]) => drawsAtHalfSize(size)), [130, 10]]) {
    it(`${size}×${size}: the half-size atlas warp, its lung codes and runs`, () => {
      const ws = pixelWorkspace(size, n);
      const js = chestWorkspace(size);
      const into = new Float32Array(size * size);
      const anatomies = [
        { ageYears: 0.4, sex: 'male' },
        { ageYears: 7, sex: 'female', habitus: -2 },
        { ageYears: 45, sex: 'female', habitus: 1.3, magnification: 1.04 },
        { ageYears: 80, sex: 'male', habitus: 2.5, magnification: 0.88 },
        // Framed so tightly, or so loosely, that the warp clamps at the atlas's edges.
        { ageYears: 30, magnification: 3.5 },
        { ageYears: 30, magnification: 0.3 },
      ];
      anatomies.forEach((anatomy, i) => {
        const findings = { cardiomegaly: i % 2 === 0, opacity: i % 3 === 1, nodule: i % 3 === 2 };
        const kernel = drawChestAnatomy(size, anatomy, findings, new Rng(`warp-${i}`), ws.density, ws.chest);
        const ref = drawChestAnatomy(size, anatomy, findings, new Rng(`warp-${i}`), into, js);
        expect(bitsEqual(ws.chest.half!.density, js.half!.density), `drawing ${i}`).toBe(true);
        expect(bitsEqual(ws.chest.half!.work.lungs, js.half!.work.lungs), `lung codes ${i}`).toBe(true);
        expect(bitsEqual(kernel.lungSpans, ref.lungSpans), `lung runs ${i}`).toBe(true);
        expect(kernel.lungSpans.some((v) => v > 0) || i >= 4, `lungs found ${i}`).toBe(true);
      });
    });
  }

  it('refuses an acquisition the 16-bit pixels cannot hold', () => {
    const ws = pixelWorkspace(64, 16);
    const plan = { moves: [], delta: new Float64Array(0) };
    const spans = new Int32Array(4 * 64);
    expect(() => storePixels(ws, plan, spans, { base: 0, gain: 1, step: 1, max: 65536 })).toThrow(/max 65536/);
    expect(() => storePixels(ws, plan, spans, { base: 0.5, gain: 1, step: 1, max: 255 })).toThrow(/base 0.5/);
  });
});
