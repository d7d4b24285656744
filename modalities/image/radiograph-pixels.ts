// The per-pixel passes of a synthetic radiograph (radiograph-synth.ts): the half-size drawing's
// atlas warp (chest-radiograph.ts `warpRow`, bit for bit); the density (upsampled
// from the half-size drawing) clamped and averaged on the model grid; stored pixels from density,
// component shift, acquisition and noise, summed per grid cell; and the noise alone summed per
// cell. The loops over pixels are the WebAssembly kernel kernels/radiograph.wat (SIMD: four
// noise lanes, two doubles at a time), compiled at build time; this file lays out its buffers
// and drives it row by row.
//
// The noise stream: four sfc32 generators (lanes); lane l draws the pixels x ≡ l (mod 4) of each
// row, in order, row after row. The seed is 16 words (lane l's a, b, c, d at l, 4 + l, 8 + l,
// 12 + l). A pixel's draw t gives u = the sum of t's three 10-bit fields (Irwin–Hall, 0…3069).
//
// The stored value of a pixel, in stored units: q = base + round(g + u·step), clamped to
// [0, max], where g = gain·(density + shift) clamped to [0, gain] (that is gain·clamp01(…)) and
// the rounding is to nearest, ties to even: (g + u·step) + (base + 1.5·2⁵²) − 1.5·2⁵², exact for
// a whole-number base.

import { readFileSync } from 'node:fs';
import { columnShift, rowConstant, variesBothWays, varyingRowShift, type GridComponentPlan } from './components.ts';
import {
  atlasLevel,
  chestWorkspace,
  drawsAtHalfSize,
  type ChestWorkspace,
  type DrawingBuffers,
  type WarpRowKernel,
} from './chest-radiograph.ts';
import { chestAtlas, MASK_SIDE } from './chest-atlas.ts';

/** An acquisition in stored units (see the header). */
export interface StoredAcquisition {
  /** A whole number. */
  base: number;
  gain: number;
  step: number;
  /** A whole number ≤ 65535 (16 bits stored at most). */
  max: number;
}

/** The exports of kernels/radiograph.wat. */
interface RadiographKernel {
  init(
    size: number,
    n: number,
    density: number,
    pixels: number,
    half: number,
    across: number,
    shift: number,
    colSum: number,
    cells: number,
    grid: number,
    seed: number,
    scratch: number,
  ): void;
  clamp_into_grid(fromHalf: number): void;
  start_stream(): void;
  set_acquisition(gain: number, step: number, rounded: number, max: number): void;
  draw_pixel_row(y: number, withPixels: number, varyingRow: number, perRow: number, k0: number, k1: number, k2: number, k3: number): void;
  init_warp(
    size: number,
    side: number,
    out: number,
    src: number,
    mask: number,
    maskSide: number,
    du: number,
    dcw: number,
    lungs: number,
    spans: number,
  ): void;
  warp_row: WarpRowKernel;
}

/** One thread's buffers for size×size images on an n×n grid (size a multiple of n). */
export interface PixelWorkspace {
  readonly size: number;
  readonly n: number;
  /** The density the pixel pass reads (size×size); drawn here directly below the half-size threshold. */
  readonly density: Float32Array;
  /** The stored pixels the pass writes (size×size). */
  readonly pixels: Uint16Array;
  /** The noise stream's seed, set by the caller before each image. */
  readonly seed: Int32Array;
  /** Per grid cell (row-major), the sum of the last pass: stored values, or noise draws. */
  readonly cells: Float64Array;
  /** n×n, row-major: each cell's area average of the clamped density (`finishDensity`). */
  readonly grid: Float64Array;
  /** The anatomy renderer's buffers (its half-size drawing in the kernel's memory). */
  readonly chest: ChestWorkspace;
  /**
   * The part of the component shift that varies along a row, for the current grid row's f pixel
   * rows (one view of size each; only the first when no move varies both ways), read by the kernel.
   */
  readonly shiftRows: readonly Float64Array[];
  readonly colShift: Float64Array;
  readonly kernel: RadiographKernel;
}

/** The parts of the WebAssembly API used here (the project compiles without the DOM typings). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const KERNEL_FILE = new URL('./kernels/radiograph.wasm', import.meta.url);
let kernelModule: object | undefined;

/** Workspaces kept per thread: one per (size, grid) in use, at most this many (the oldest is dropped). */
const MAX_WORKSPACES = 4;
const workspaces = new Map<string, PixelWorkspace>();

/**
 * Slack after every buffer: the kernel's last group of a row that is not a multiple of 4 loads a
 * whole vector (16 bytes of float32, 32 of doubles) and ignores the lanes past the row.
 */
const SLACK_BYTES = 32;
const PAGE_BYTES = 65536;

/** The workspace for size×size images on an n×n grid (size a multiple of n). */
export function pixelWorkspace(size: number, n: number): PixelWorkspace {
  const key = `${size},${n}`;
  const hit = workspaces.get(key);
  if (hit) return hit;
  if (!Number.isInteger(size) || !Number.isInteger(n) || n < 1 || size % n !== 0)
    throw new Error(`pixelWorkspace: ${size} is not a multiple of the grid ${n}`);
  const h = drawsAtHalfSize(size) ? size / 2 : 0;
  // The half-size drawing is warped in the kernel too, from its atlas level and lung mask.
  const level = h ? atlasLevel(h) : undefined;
  let end = 0;
  const take = (bytes: number): number => {
    const at = end;
    end = Math.ceil((at + bytes + SLACK_BYTES) / 16) * 16;
    return at;
  };
  const at = {
    density: take(4 * size * size),
    pixels: take(2 * size * size),
    half: take(4 * h * h),
    across: take(4 * h * size),
    shift: take(8 * (size / n) * size),
    colSum: take(8 * size),
    cells: take(8 * n * n),
    grid: take(8 * n * n),
    seed: take(4 * 16),
    scratch: take(16),
    atlas: take(4 * (level ? level.side * level.side : 0)),
    mask: take(h ? MASK_SIDE * MASK_SIDE : 0),
    colDelta: take(8 * h),
    colShift: take(8 * h),
    lungs: take(h * h),
    lungSpans: take(4 * 4 * h),
  };
  // A fixed size, never grown: the views below stay valid for the workspace's life.
  const memory = new wasm.Memory({ initial: Math.ceil(end / PAGE_BYTES) });
  kernelModule ??= new wasm.Module(readFileSync(KERNEL_FILE));
  const kernel = new wasm.Instance(kernelModule, { env: { memory } }).exports as unknown as RadiographKernel;
  kernel.init(size, n, at.density, at.pixels, at.half, at.across, at.shift, at.colSum, at.cells, at.grid, at.seed, at.scratch);
  const buf = memory.buffer;
  let drawing: DrawingBuffers | undefined;
  if (level) {
    new Float32Array(buf, at.atlas, level.side * level.side).set(level.density);
    new Uint8Array(buf, at.mask, MASK_SIDE * MASK_SIDE).set(chestAtlas().lungMask);
    kernel.init_warp(h, level.side, at.half, at.atlas, at.mask, MASK_SIDE, at.colDelta, at.colShift, at.lungs, at.lungSpans);
    drawing = {
      density: new Float32Array(buf, at.half, h * h),
      lungs: new Uint8Array(buf, at.lungs, h * h),
      lungSpans: new Int32Array(buf, at.lungSpans, 4 * h),
      colDelta: new Float64Array(buf, at.colDelta, h),
      colShift: new Float64Array(buf, at.colShift, h),
      warpRow: kernel.warp_row,
    };
  }
  const ws: PixelWorkspace = {
    size,
    n,
    density: new Float32Array(buf, at.density, size * size),
    pixels: new Uint16Array(buf, at.pixels, size * size),
    seed: new Int32Array(buf, at.seed, 16),
    cells: new Float64Array(buf, at.cells, n * n),
    grid: new Float64Array(buf, at.grid, n * n),
    chest: chestWorkspace(size, drawing),
    shiftRows: Array.from({ length: size / n }, (_, r) => new Float64Array(buf, at.shift + 8 * r * size, size)),
    colShift: new Float64Array(size),
    kernel,
  };
  if (workspaces.size >= MAX_WORKSPACES) workspaces.delete(workspaces.keys().next().value!);
  workspaces.set(key, ws);
  return ws;
}

/**
 * The drawing made the density the pixel pass reads: upsampled 2× from ws.chest's half-size
 * drawing when the workspace draws at half size (else ws.density as drawn), clamped to [0, 1] in
 * place, and each cell's average written into ws.grid.
 */
export function finishDensity(ws: PixelWorkspace): void {
  ws.kernel.clamp_into_grid(ws.chest.half ? 1 : 0);
}

/** 1.5·2⁵²: added to a double of magnitude below 2⁵¹, it rounds it to an integer (to even). */
const ROUNDING = 6755399441055744;

/**
 * The stored pixels of ws.density with the plan's shift (zero on the rows' kept runs `spans`)
 * into ws.pixels, and each grid cell's sum of stored values into ws.cells.
 */
export function storePixels(ws: PixelWorkspace, plan: GridComponentPlan, spans: Int32Array, acq: StoredAcquisition): void {
  if (!Number.isInteger(acq.base)) throw new Error(`storePixels: base ${acq.base} is not a whole number of stored units`);
  if (!Number.isInteger(acq.max) || acq.max < 0 || acq.max > 65535)
    throw new Error(`storePixels: max ${acq.max} is not a whole number of stored units in 0…65535`);
  const { size, n, shiftRows, colShift, kernel } = ws;
  const { moves, delta } = plan;
  const f = size / n;
  columnShift(moves, delta, size, colShift);
  // Without moves that vary both ways, every row's varying part is the per-column part.
  const perRowVarying = moves.some(variesBothWays);
  if (!perRowVarying) shiftRows[0].set(colShift);
  kernel.set_acquisition(acq.gain, acq.step, acq.base + ROUNDING, acq.max);
  kernel.start_stream();
  for (let y = 0; y < size; y++) {
    const r = perRowVarying ? y % f : 0;
    if (perRowVarying) varyingRowShift(moves, delta, size, y, colShift, shiftRows[r]);
    const o = 4 * y;
    kernel.draw_pixel_row(y, 1, r, rowConstant(moves, delta, y), spans[o], spans[o + 1], spans[o + 2], spans[o + 3]);
  }
}

/** Each grid cell's sum of the noise draws u of the stream storePixels draws, into ws.cells. */
export function noiseSums(ws: PixelWorkspace): void {
  const { size, kernel } = ws;
  kernel.start_stream();
  for (let y = 0; y < size; y++) kernel.draw_pixel_row(y, 0, 0, 0, 0, 0, 0, 0);
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
