// The per-pixel passes of a synthetic radiograph (radiograph-synth.ts): the density clamped and
// averaged on the model grid; stored pixels from density, component shift, acquisition and
// noise, summed per grid cell; and the noise alone summed per cell. Plain JavaScript: the cohort
// meets its throughput target without a hand-written kernel (docs/benchmarks.md).
//
// The noise stream: four sfc32 generators (lanes); lane l draws the pixels x ≡ l (mod 4) of each
// row, in order, row after row. The seed is 16 words (lane l's a, b, c, d at l, 4 + l, 8 + l,
// 12 + l). A pixel's draw t gives u = the sum of t's three 10-bit fields (Irwin–Hall, 0…3069).
//
// The stored value of a pixel, in stored units: q = base + round(g + u·step), clamped to
// [0, max], where g = gain·(density + shift) clamped to [0, gain] (that is gain·clamp01(…)) and
// the rounding is to nearest, ties to even: (g + u·step) + (base + 1.5·2⁵²) − 1.5·2⁵², exact for
// a whole-number base.

import { columnShift, rowShift, type GridComponentPlan } from './components.ts';
import { chestWorkspace, type ChestWorkspace } from './chest-radiograph.ts';

/** An acquisition in stored units (see the header). */
export interface StoredAcquisition {
  /** A whole number. */
  base: number;
  gain: number;
  step: number;
  max: number;
}

/** One thread's buffers for size×size images on an n×n grid (size a multiple of n). */
export interface PixelWorkspace {
  readonly size: number;
  readonly n: number;
  /** The density the pass reads (size×size). */
  readonly density: Float32Array;
  /** The stored pixels the pass writes (size×size). */
  readonly pixels: Uint16Array;
  /** The noise stream's seed, set by the caller before each image. */
  readonly seed: Int32Array;
  /** Per grid cell (row-major), the sum of the last pass: stored values, or noise draws. */
  readonly cells: Float64Array;
  /** n×n, row-major: each cell's area average of the clamped density (`clampIntoGrid`). */
  readonly grid: Float64Array;
  /** The anatomy renderer's buffers. */
  readonly chest: ChestWorkspace;
  readonly colShift: Float64Array;
  readonly shift: Float64Array;
  readonly colSum: Float64Array;
}

/** Workspaces kept per thread: one per (size, grid) in use, at most this many (the oldest is dropped). */
const MAX_WORKSPACES = 4;
const workspaces = new Map<string, PixelWorkspace>();

/** The workspace for size×size images on an n×n grid (size a multiple of n). */
export function pixelWorkspace(size: number, n: number): PixelWorkspace {
  const key = `${size},${n}`;
  const hit = workspaces.get(key);
  if (hit) return hit;
  if (!Number.isInteger(size) || !Number.isInteger(n) || n < 1 || size % n !== 0)
    throw new Error(`pixelWorkspace: ${size} is not a multiple of the grid ${n}`);
  const ws: PixelWorkspace = {
    size,
    n,
    density: new Float32Array(size * size),
    pixels: new Uint16Array(size * size),
    seed: new Int32Array(16),
    cells: new Float64Array(n * n),
    grid: new Float64Array(n * n),
    chest: chestWorkspace(size),
    colShift: new Float64Array(size),
    shift: new Float64Array(size),
    colSum: new Float64Array(size),
  };
  if (workspaces.size >= MAX_WORKSPACES) workspaces.delete(workspaces.keys().next().value!);
  workspaces.set(key, ws);
  return ws;
}

/** Clamps ws.density to [0, 1] in place and writes its cell averages into ws.grid. */
export function clampIntoGrid(ws: PixelWorkspace): void {
  const { size, n, density, grid, colSum } = ws;
  const f = size / n;
  const inv = 1 / (f * f);
  colSum.fill(0);
  for (let y = 0; y < size; y++) {
    const o = y * size;
    for (let x = 0; x < size; x++) {
      let v = density[o + x];
      if (!(v > 0 && v < 1)) density[o + x] = v = v > 0 ? 1 : 0;
      colSum[x] += v;
    }
    if ((y + 1) % f === 0) {
      addCellRow(colSum, grid, (y + 1) / f - 1, n, f);
      const row = ((y + 1) / f - 1) * n;
      for (let gx = 0; gx < n; gx++) grid[row + gx] *= inv;
    }
  }
}

/** 1.5·2⁵²: added to a double of magnitude below 2⁵¹, it rounds it to an integer (to even). */
const ROUNDING = 6755399441055744;

/** Grid row `gy`'s cell sums from the column sums of its pixel rows, which are then cleared. */
function addCellRow(colSum: Float64Array, cells: Float64Array, gy: number, n: number, f: number): void {
  for (let gx = 0; gx < n; gx++) {
    let s = 0;
    for (let x = gx * f; x < gx * f + f; x++) s += colSum[x];
    cells[gy * n + gx] = s;
  }
  colSum.fill(0);
}

/**
 * The stored pixels of ws.density with the plan's shift (zero on the rows' kept runs `spans`)
 * into ws.pixels, and each grid cell's sum of stored values into ws.cells.
 */
export function storePixels(ws: PixelWorkspace, plan: GridComponentPlan, spans: Int32Array, acq: StoredAcquisition): void {
  if (!Number.isInteger(acq.base)) throw new Error(`storePixels: base ${acq.base} is not a whole number of stored units`);
  const { size, n, density, pixels: px, shift, colShift, colSum, cells } = ws;
  const f = size / n;
  columnShift(plan.moves, plan.delta, size, colShift);
  const s = Int32Array.from(ws.seed);
  // Float64 and int32 locals: mixed with a parameter of unknown representation in the loop, a
  // double would be boxed on every pixel.
  const rounded = acq.base + ROUNDING;
  const gain = acq.gain + 0;
  const step = acq.step + 0;
  const max = acq.max | 0;
  colSum.fill(0);
  for (let y = 0; y < size; y++) {
    rowShift(plan.moves, plan.delta, size, y, colShift, spans, shift);
    const o = y * size;
    // Lane by lane: each lane's pixels of the row in order, its generator state in locals.
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
    if ((y + 1) % f === 0) addCellRow(colSum, cells, (y + 1) / f - 1, n, f);
  }
}

/** Each grid cell's sum of the noise draws u of the stream storePixels draws, into ws.cells. */
export function noiseSums(ws: PixelWorkspace): void {
  const { size, n, colSum, cells } = ws;
  const f = size / n;
  const s = Int32Array.from(ws.seed);
  colSum.fill(0);
  for (let y = 0; y < size; y++) {
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
        colSum[x] += (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
      }
      s[l] = a;
      s[4 + l] = b;
      s[8 + l] = c;
      s[12 + l] = d;
    }
    if ((y + 1) % f === 0) addCellRow(colSum, cells, (y + 1) / f - 1, n, f);
  }
}

/**
 * Density [0, 1] → MONOCHROME2 stored values, for images without components on the model grid.
 * The acquisition (offset, gain, noise) is drawn per image from a public range of generic
 * radiography settings (offset 0.02–0.2, gain 0.6–0.9, noise sd 0.01–0.035 of full scale) unless
 * given, so the synthetic images are not all from one idealised scanner. Returns the pixels (in
 * `into` when given) and a window covering the image.
 */
export function densityToStored(
  density: ArrayLike<number>,
  bitsStored: number,
  rng: { next(): number; nextU32(): number },
  acquisition: { offset?: number; gain?: number; noise?: number } = {},
  into?: Uint16Array,
): { pixels: Uint16Array; windowCenter: number; windowWidth: number } {
  if (into && into.length !== density.length) throw new Error(`densityToStored: buffer of ${into.length} for ${density.length} pixels`);
  const max = 2 ** bitsStored - 1;
  const out = into ?? new Uint16Array(density.length);
  const offset = acquisition.offset ?? 0.02 + 0.18 * rng.next();
  const gain = acquisition.gain ?? 0.6 + 0.3 * rng.next();
  const noise = acquisition.noise ?? 0.01 + 0.025 * rng.next();
  // Per-pixel noise: the sum of three 10-bit fields of one 32-bit draw of an inline sfc32 seeded
  // from `rng` (Irwin–Hall, sd 1/2 on [−1.5, 1.5]).
  let a = rng.nextU32();
  let b = rng.nextU32();
  let c = rng.nextU32();
  let d = rng.nextU32() | 1;
  const step = (2 * noise) / 1024;
  const base = offset - 1.5 * 2 * noise + 1.5 * step;
  for (let i = 0; i < out.length; i++) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
    const u = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
    let v = base + gain * density[i] + u * step;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    out[i] = (v * max + 0.5) | 0;
  }
  return { pixels: out, windowCenter: Math.round((offset + gain * 0.5) * max), windowWidth: Math.max(1, Math.round(gain * max)) };
}
