/**
 * Image component bins (`kind: image-component`, schema/schema.ts): a public low-frequency
 * DCT-II basis image (u, v) on the schema's image grid and public bin edges of the coefficient of
 * the *normalised* grid image along it (the same normalisation as the image-finding extractors:
 * area-resampled to grid × grid, 1st percentile → 0, 99th → 1).
 *
 * - Site (`componentCodes`): the coefficient of the patient's normalised image, binned — one
 *   bounded code per attribute, so the bins join the joint model through the same secure
 *   marginals as everything else (no separate budget; the basis and edges are public).
 * - Coordinator (`addImageComponents`): after the findings are drawn into the anatomical prior,
 *   the image's normalised coefficient along each basis is moved to a value drawn uniformly in
 *   the sampled bin (a few fixed-point steps, since the percentile normalisation depends on the
 *   image), so what the sites' images look like along those directions — body habitus, exposure
 *   gradients, mediastinal width — is learned from the sites, and the sites' encoder reads the
 *   sampled bin back from the synthetic DICOM.
 * Pure functions of their arguments. Arrays that depend only on sizes and bases (basis images,
 * their factors, scratch grids) are memoised per thread in caches of a stated maximum size
 * (`memo`): a schema uses a handful of bases and one or two image sizes.
 */
import type { Rng } from '../../model/rng.ts';
import { componentMissingCode, type ImageComponentAttribute, type Schema } from '../../schema/schema.ts';

export type { ImageComponentAttribute };

export function imageComponentAttributes(schema: Schema): ImageComponentAttribute[] {
  return schema.attributes.filter((a): a is ImageComponentAttribute => a.kind === 'image-component');
}

/** Per-thread memo: the value for `key`, made once; at most `max` entries (the oldest is dropped). */
function memo<V>(cache: Map<string, V>, max: number, key: string, make: () => V): V {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const v = make();
  if (cache.size >= max) cache.delete(cache.keys().next().value!);
  cache.set(key, v);
  return v;
}

/** Basis images and basis factors: 8×8 bases at a few sizes. */
const MAX_BASES = 64;
/** Workspaces and scratch grids: one per (image size, grid side) in use. */
const MAX_SIZES = 4;

const basisCache = new Map<string, Float64Array>();

/** Orthonormal 2-D DCT-II basis image (u, v) of an n×n grid, sampled at size×size pixel centres (size = n: exact). */
export function dctBasisImage(u: number, v: number, n: number, size = n): Float64Array {
  return memo(basisCache, MAX_BASES, `${u},${v},${n},${size}`, () => makeBasisImage(u, v, n, size));
}

function makeBasisImage(u: number, v: number, n: number, size: number): Float64Array {
  const out = new Float64Array(size * size);
  const cu = u === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  const cv = v === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  for (let y = 0; y < size; y++) {
    const gy = ((y + 0.5) * n) / size - 0.5;
    const by = cu * Math.cos((Math.PI * (2 * gy + 1) * u) / (2 * n));
    for (let x = 0; x < size; x++) {
      const gx = ((x + 0.5) * n) / size - 0.5;
      out[y * size + x] = by * cv * Math.cos((Math.PI * (2 * gx + 1) * v) / (2 * n));
    }
  }
  return out;
}

/** Coefficient of an n×n grid image along basis (u, v). */
export function componentCoefficient(grid: ArrayLike<number>, n: number, basis: readonly [number, number]): number {
  const b = dctBasisImage(basis[0], basis[1], n);
  let s = 0;
  for (let i = 0; i < b.length; i++) s += grid[i] * b[i];
  return s;
}

/** Bin of a coefficient: 0 below edges[0], …, edges.length at or above the last edge. */
export function componentBin(attr: ImageComponentAttribute, value: number): number {
  let k = 0;
  while (k < attr.edges.length && value >= attr.edges[k]) k++;
  return k;
}

/** Site side: the codes of every component attribute for one normalised n×n grid image. */
export function componentCodes(attrs: readonly ImageComponentAttribute[], grid: ArrayLike<number>, n: number): number[] {
  return attrs.map((a) => componentBin(a, componentCoefficient(grid, n, a.basis)));
}

/** [lo, hi) of bin `code` (undefined for "no image"). */
export function componentBinRange(attr: ImageComponentAttribute, code: number): [number, number] | undefined {
  const e = attr.edges;
  if (code < 0 || code > e.length || code === componentMissingCode(attr)) return undefined;
  return [code === 0 ? attr.range[0] : e[code - 1], code === e.length ? attr.range[1] : e[code]];
}

/** Centre of bin `code` (undefined for "no image"). */
export function componentBinCentre(attr: ImageComponentAttribute, code: number): number | undefined {
  const r = componentBinRange(attr, code);
  return r && (r[0] + r[1]) / 2;
}

/** The k-th smallest of a[lo..hi] (k absolute), partially reordering a in place (Hoare quickselect, median of three). */
function select(a: Float64Array, k: number, lo: number, hi: number): number {
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    const x = a[lo];
    const y = a[mid];
    const z = a[hi];
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/** Grid cell of each pixel coordinate (area average when size is a multiple of n, else nearest cells). */
function gridIndex(size: number, n: number): Int32Array {
  const out = new Int32Array(size);
  for (let x = 0; x < size; x++) out[x] = Math.min(n - 1, Math.floor((x * n) / size));
  return out;
}

/** First pixel coordinate of each grid cell (cells are consecutive runs of `cell`), and size at the end. */
function cellStarts(cell: Int32Array, n: number): Int32Array {
  const out = new Int32Array(n + 1).fill(cell.length);
  for (let x = cell.length - 1; x >= 0; x--) out[cell[x]] = x;
  for (let c = n - 1; c >= 0; c--) if (out[c] > out[c + 1]) out[c] = out[c + 1];
  return out;
}

interface Factors {
  row: Float64Array;
  col: Float64Array;
  /** prefix[x] = col[0] + … + col[x − 1]. */
  prefix: Float64Array;
  /** Sum of col over each grid cell's pixels. */
  colCell: Float64Array;
  /** Sum of row over each grid cell's pixel rows. */
  rowCell: Float64Array;
}
const factorCache = new Map<string, Factors>();

/** The 1-D factors of the DCT-II basis (u, v) sampled at size pixel centres: image(y, x) = row[y]·col[x]. */
function basisFactors(u: number, v: number, n: number, size: number, starts: Int32Array): Factors {
  return memo(factorCache, MAX_BASES, `${u},${v},${n},${size}`, () => makeFactors(u, v, n, size, starts));
}

function makeFactors(u: number, v: number, n: number, size: number, starts: Int32Array): Factors {
  const row = new Float64Array(size);
  const col = new Float64Array(size);
  const cu = u === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  const cv = v === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  for (let i = 0; i < size; i++) {
    const g = ((i + 0.5) * n) / size - 0.5;
    row[i] = cu * Math.cos((Math.PI * (2 * g + 1) * u) / (2 * n));
    col[i] = cv * Math.cos((Math.PI * (2 * g + 1) * v) / (2 * n));
  }
  const prefix = new Float64Array(size + 1);
  for (let x = 0; x < size; x++) prefix[x + 1] = prefix[x] + col[x];
  const colCell = new Float64Array(n);
  for (let gx = 0; gx < n; gx++) colCell[gx] = prefix[starts[gx + 1]] - prefix[starts[gx]];
  const rowCell = new Float64Array(n);
  for (let y = 0; y < size; y++) rowCell[Math.min(n - 1, Math.floor((y * n) / size))] += row[y];
  return { row, col, prefix, colCell, rowCell };
}

/**
 * Adds one grid row's column sums into the grid (cells are runs of columns) and clears them.
 * Summing rows into per-column sums first keeps every add independent: adding pixel by pixel
 * into a cell chains each add on the previous one through memory.
 */
function addCellRow(grid: Float64Array, row: number, colSum: Float64Array, starts: Int32Array, n: number): void {
  for (let gx = 0; gx < n; gx++) {
    let s = 0;
    for (let x = starts[gx]; x < starts[gx + 1]; x++) s += colSum[x];
    grid[row + gx] += s;
  }
  colSum.fill(0);
}

/** Arrays reused from image to image (one image at a time per thread). */
interface Workspace {
  cell: Int32Array;
  starts: Int32Array;
  count: Float64Array;
  grid: Float64Array;
  scratch: Float64Array;
  trial: Float64Array;
  shift: Float64Array;
  colShift: Float64Array;
  /** Per pixel column, the sum over the rows of the current grid row. */
  colSum: Float64Array;
  moveGrids: Float64Array[];
}
const workspaces = new Map<string, Workspace>();

function workspace(size: number, n: number): Workspace {
  return memo(workspaces, MAX_SIZES, `${size},${n}`, () => {
    const cell = gridIndex(size, n);
    const starts = cellStarts(cell, n);
    const count = new Float64Array(n * n);
    for (let gy = 0; gy < n; gy++)
      for (let gx = 0; gx < n; gx++) count[gy * n + gx] = (starts[gy + 1] - starts[gy]) * (starts[gx + 1] - starts[gx]) || 1;
    return {
      cell,
      starts,
      count,
      grid: new Float64Array(n * n),
      scratch: new Float64Array(n * n),
      trial: new Float64Array(n * n),
      shift: new Float64Array(size),
      colShift: new Float64Array(size),
      colSum: new Float64Array(size),
      moveGrids: [],
    };
  });
}

/** One component's move: the separable full-size basis and the grid image of its part outside the kept runs. */
export interface ComponentMove {
  /** Index of the attribute among the schema's component attributes. */
  j: number;
  f: Factors;
  /** Area average (n×n) of the basis image with the kept runs zeroed. */
  g: Float64Array;
  /** A basis with v = 0 (u = 0) is constant along x (y): its shift is one number per row (column). */
  flatCols: boolean;
  flatRows: boolean;
}

/** The per-column part of the shift Σ δ·row(y)·col(x): the moves constant along y, into `colShift`. */
export function columnShift(moves: readonly ComponentMove[], delta: ArrayLike<number>, size: number, colShift: Float64Array): void {
  colShift.fill(0);
  for (let m = 0; m < moves.length; m++) {
    if (!moves[m].flatRows || moves[m].flatCols) continue;
    const r = delta[m] * moves[m].f.row[0];
    const c = moves[m].f.col;
    for (let x = 0; x < size; x++) colShift[x] += r * c[x];
  }
}

/** The per-row constant of the shift in row y: the moves constant along x. */
export function rowConstant(moves: readonly ComponentMove[], delta: ArrayLike<number>, y: number): number {
  let perRow = 0;
  for (let m = 0; m < moves.length; m++) if (moves[m].flatCols) perRow += delta[m] * moves[m].f.row[y] * moves[m].f.col[0];
  return perRow;
}

/** Row y's factor of a move that varies both ways: its shift in row y is this times its column factor. */
export const bothWaysRow = (moves: readonly ComponentMove[], delta: ArrayLike<number>, m: number, y: number): number =>
  delta[m] * moves[m].f.row[y];

/** Whether a move varies both ways (its shift is a row factor times a column vector, per row). */
export const variesBothWays = (move: ComponentMove): boolean => !move.flatCols && !move.flatRows;

/**
 * The part of row y's shift that varies along the row into `out`: the per-column part
 * (`columnShift`) plus the moves that vary both ways, in the order of `moves`.
 */
export function varyingRowShift(
  moves: readonly ComponentMove[],
  delta: ArrayLike<number>,
  size: number,
  y: number,
  colShift: Float64Array,
  out: Float64Array,
): void {
  out.set(colShift.subarray(0, size));
  for (let m = 0; m < moves.length; m++) {
    if (!variesBothWays(moves[m])) continue;
    const r = bothWaysRow(moves, delta, m, y);
    const c = moves[m].f.col;
    for (let x = 0; x < size; x++) out[x] += r * c[x];
  }
}

/**
 * Row y of the shift into `shift`: the part that varies along the row (`varyingRowShift`) plus
 * the row's constant, zeroed on the row's kept runs (`spans`). The stored-pixel kernel
 * (radiograph-pixels.ts) adds the same two in the same order.
 */
export function rowShift(
  moves: readonly ComponentMove[],
  delta: ArrayLike<number>,
  size: number,
  y: number,
  colShift: Float64Array,
  spans: Int32Array,
  shift: Float64Array,
): void {
  varyingRowShift(moves, delta, size, y, colShift, shift);
  const perRow = rowConstant(moves, delta, y);
  for (let x = 0; x < size; x++) shift[x] += perRow;
  shift.fill(0, spans[4 * y], spans[4 * y + 1]);
  shift.fill(0, spans[4 * y + 2], spans[4 * y + 3]);
}

/**
 * The move of attribute j: the whole basis's cell sums are separable, the kept runs' are taken
 * off with prefix sums of the column factor; divided by the cells' pixel counts.
 */
function moveOf(
  attr: ImageComponentAttribute,
  j: number,
  n: number,
  size: number,
  spans: Int32Array,
  ws: Workspace,
  slot: number,
): ComponentMove {
  const { cell, starts, count } = ws;
  const f = basisFactors(attr.basis[0], attr.basis[1], n, size, starts);
  const { prefix, colCell, rowCell } = f;
  const g = (ws.moveGrids[slot] ??= new Float64Array(n * n));
  // The whole basis: cell sums are products of the factors' cell sums; then the kept runs'
  // parts off; then per pixel (one factor when every cell has the same number of pixels).
  const uniform = size % n === 0;
  const inv = uniform ? 1 / count[0] : 1;
  for (let gy = 0; gy < n; gy++) {
    const r = rowCell[gy] * inv;
    const row = gy * n;
    for (let gx = 0; gx < n; gx++) g[row + gx] = r * colCell[gx];
  }
  // Consecutive rows of a cell with the same runs (the renderer draws at half size, so rows come
  // in pairs at least) take their runs off once, with the sum of their row factors.
  for (let y = 0, next = 1; y < size; y = next++) {
    let r = f.row[y];
    const o = 4 * y;
    while (
      next < size &&
      cell[next] === cell[y] &&
      spans[4 * next] === spans[o] &&
      spans[4 * next + 1] === spans[o + 1] &&
      spans[4 * next + 2] === spans[o + 2] &&
      spans[4 * next + 3] === spans[o + 3]
    )
      r += f.row[next++];
    r *= inv;
    const row = cell[y] * n;
    for (let run = 0; run < 2; run++) {
      const a = spans[o + 2 * run];
      const b = spans[o + 2 * run + 1];
      for (let gx = a < b ? cell[a] : n; gx < n && starts[gx] < b; gx++)
        g[row + gx] -= r * (prefix[Math.min(b, starts[gx + 1])] - prefix[Math.max(a, starts[gx])]);
    }
  }
  if (!uniform) for (let i = 0; i < g.length; i++) g[i] /= count[i];
  return { j, f, g, flatCols: attr.basis[1] === 0, flatRows: attr.basis[0] === 0 };
}

/**
 * The kLo-th and kHi-th smallest values of `a` (0-based, kLo ≤ kHi), exactly, using `scratch` (a.length). For the 1st/99th percentiles of a large grid: a sample of
 * every 13th value gives thresholds that a few times as many values as needed lie beyond, one
 * pass collects those values, and quickselect runs on them alone; when a threshold does not
 * hold enough values, quickselect on a copy of the whole.
 */
function percentilePair(a: Float64Array, kLo: number, kHi: number, scratch: Float64Array): [number, number] {
  const n = a.length;
  const stride = 13; // odd, and prime to grid sides: the sample runs across rows and columns
  const upper = n - 1 - kHi; // values above the kHi-th smallest
  if (n >= 64 * stride && kLo < n / 8 && upper < n / 8) {
    let m = 0;
    for (let i = 0; i < n; i += stride) scratch[m++] = a[i];
    // Sample ranks a few values beyond the expected ones (each sample stands for `stride` values).
    const rLo = Math.min(m - 1, Math.ceil(kLo / stride) + 8);
    const tLo = select(scratch, rLo, 0, m - 1);
    const rHi = Math.max(0, m - 1 - (Math.ceil(upper / stride) + 8));
    const tHi = select(scratch, rHi, 0, m - 1);
    // Values ≤ tLo from the front of scratch, values ≥ tHi from the back.
    let nl = 0;
    let nh = 0;
    const cap = n >> 2;
    for (let i = 0; i < n && nl < cap && nh < cap; i++) {
      const v = a[i];
      if (v <= tLo) scratch[nl++] = v;
      if (v >= tHi) scratch[n - 1 - nh++] = v;
    }
    if (nl > kLo && nh > upper && nl < cap && nh < cap) {
      const lo = select(scratch, kLo, 0, nl - 1);
      // The kHi-th smallest overall is the upper-th largest among the collected high values.
      return [lo, select(scratch, n - nh + (nh - 1 - upper), n - nh, n - 1)];
    }
  }
  scratch.set(a);
  const lo = select(scratch, kLo, 0, n - 1);
  return [lo, select(scratch, kHi, kLo, n - 1)];
}

/** The normalisation of a grid: its span (99th − 1st percentile) and the cells holding the two percentiles. */
interface Normalisation {
  span: number;
  loCell: number;
  hiCell: number;
}

/**
 * Normalised grid (the extractors' 1st/99th percentile scaling, clamped) and its coefficients
 * along `bases` into `out`; returns the span (99th − 1st percentile) and the percentile cells.
 */
function normalisedCoefficients(grid: Float64Array, bases: Float64Array[], scratch: Float64Array, out: number[]): Normalisation {
  const last = grid.length - 1;
  const kLo = Math.round(0.01 * last);
  const kHi = Math.round(0.99 * last);
  const [lo, hi] = percentilePair(grid, kLo, kHi, scratch);
  const span = Math.max(1e-6, hi - lo);
  const inv = 1 / span;
  // The normalised grid's dot products with up to three bases per pass.
  for (let j = 0; j < bases.length; j += 3) {
    const b0 = bases[j];
    const b1 = bases[j + 1] ?? zeros(grid.length);
    const b2 = bases[j + 2] ?? zeros(grid.length);
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < grid.length; i++) {
      let v = (grid[i] - lo) * inv;
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      s0 += v * b0[i];
      s1 += v * b1[i];
      s2 += v * b2[i];
    }
    out[j] = s0;
    if (j + 1 < bases.length) out[j + 1] = s1;
    if (j + 2 < bases.length) out[j + 2] = s2;
  }
  return { span, loCell: grid.indexOf(lo), hiCell: grid.indexOf(hi) };
}

const zeroArrays = new Map<string, Float64Array>();
function zeros(length: number): Float64Array {
  return memo(zeroArrays, MAX_SIZES, String(length), () => new Float64Array(length));
}

/** Solves the small system m·x = r in place of r (Gaussian elimination, partial pivoting); false when m is near singular. */
function solveSmall(m: number[][], r: number[]): boolean {
  const k = r.length;
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let i = c + 1; i < k; i++) if (Math.abs(m[i][c]) > Math.abs(m[p][c])) p = i;
    if (Math.abs(m[p][c]) < 1e-6) return false;
    [m[c], m[p]] = [m[p], m[c]];
    [r[c], r[p]] = [r[p], r[c]];
    for (let i = c + 1; i < k; i++) {
      const f = m[i][c] / m[c][c];
      for (let j = c; j < k; j++) m[i][j] -= f * m[c][j];
      r[i] -= f * r[c];
    }
  }
  for (let c = k - 1; c >= 0; c--) {
    for (let j = c + 1; j < k; j++) r[c] -= m[c][j] * r[j];
    r[c] /= m[c][c];
  }
  return true;
}

/**
 * Moves the size×size density image's normalised coefficient along each component basis to a
 * value drawn in its sampled bin (`bins[j]` for attribute j; "no image" leaves it alone). With
 * `keep` (pixels left alone, e.g. the lung fields where the findings are: per row y the runs
 * [keep[4y], keep[4y+1]) and [keep[4y+2], keep[4y+3]), as RenderedPrior.lungSpans), the change
 * is the basis image outside them. The density is clamped to [0, 1]. Returns the achieved
 * normalised coefficients.
 *
 * The search runs on the n×n grid: the area average is linear, so adding δ·(masked basis) to the
 * image adds δ·grid(masked basis) to the grid, and Newton steps on the grid (the Jacobian of the
 * coefficients in the shifts, ignoring how the percentiles move) find the shifts. The image is
 * touched once per round; the next round measures what clamping to [0, 1] really gave.
 */
export function addImageComponents(
  schema: Schema,
  density: Float32Array,
  size: number,
  bins: readonly number[],
  rng: Rng,
  keep?: Int32Array,
  steps = 6,
): number[] {
  const attrs = imageComponentAttributes(schema);
  const n = schema.image?.grid ?? 64;
  if (density.length !== size * size) throw new Error(`addImageComponents: ${density.length} pixels for ${size}×${size}`);
  const spans = checkKeep(keep, size, 'addImageComponents');
  const { targets, tolerance } = targetsOf(attrs, bins, rng, 'addImageComponents');
  const ws = workspace(size, n);
  const { cell, starts, count, grid, scratch, trial, shift, colShift } = ws;
  grid.fill(0);
  const colSum = ws.colSum;
  colSum.fill(0);
  for (let y = 0; y < size; y++) {
    const o = y * size;
    for (let x = 0; x < size; x++) {
      const v = density[o + x];
      const c = v < 0 ? 0 : v > 1 ? 1 : v;
      density[o + x] = c;
      colSum[x] += c;
    }
    if (y === size - 1 || cell[y + 1] !== cell[y]) addCellRow(grid, cell[y] * n, colSum, starts, n);
  }
  for (let i = 0; i < grid.length; i++) grid[i] /= count[i];
  const gridBases = attrs.map((a) => dctBasisImage(a.basis[0], a.basis[1], n));
  const active = attrs.map((_, j) => j).filter((j) => targets[j] !== undefined);
  const achieved = new Array<number>(attrs.length).fill(0);
  if (active.length === 0) {
    normalisedCoefficients(grid, gridBases, scratch, achieved);
    return achieved;
  }
  const moves = active.map((j, m) => moveOf(attrs[j], j, n, size, spans, ws, m));
  const k = moves.length;
  // Jacobian of the normalised coefficients in the shifts, up to the 1/span factor.
  const jac = moves.map((_, r) =>
    moves.map((m) => {
      const b = gridBases[moves[r].j];
      let s = 0;
      for (let i = 0; i < b.length; i++) s += m.g[i] * b[i];
      return s;
    }),
  );
  const delta = new Float64Array(k);
  for (let round = 0; round < steps; round++) {
    delta.fill(0);
    let converged = false;
    // Newton steps. The Jacobian of the normalised coefficients in the shifts (times the span):
    // the masked bases' projections, less how the span moves (the cells at the percentiles move
    // with the shifts, and every coefficient scales with 1/span).
    for (let step = 0; step < 2 * steps; step++) {
      trial.set(grid);
      for (let m = 0; m < k; m++) if (delta[m] !== 0) for (let i = 0; i < trial.length; i++) trial[i] += delta[m] * moves[m].g[i];
      // The image is clamped to [0, 1]; a cell's pixels are near equal where that bites (air,
      // dense mediastinum), so clamping the cell predicts it.
      if (delta.some((d) => d !== 0)) for (let i = 0; i < trial.length; i++) trial[i] = trial[i] < 0 ? 0 : trial[i] > 1 ? 1 : trial[i];
      const { span, loCell: lo, hiCell: hi } = normalisedCoefficients(trial, gridBases, scratch, achieved);
      const miss = moves.map((m) => targets[m.j]! - achieved[m.j]);
      if (moves.every((m, i) => Math.abs(miss[i]) < tolerance[m.j])) {
        converged = true;
        break;
      }
      const j = jac.map((row, r) => row.map((p, c) => p - (moves[c].g[hi] - moves[c].g[lo]) * achieved[moves[r].j]));
      const next = miss.slice();
      // The diagonal alone if the Jacobian is near singular.
      if (!solveSmall(j, next)) for (let m = 0; m < k; m++) next[m] = miss[m] / Math.max(0.05, jac[m][m]);
      for (let m = 0; m < k; m++) delta[m] += next[m] * span;
    }
    // Converged without a shift: `achieved` is the image's.
    if (delta.every((d) => d === 0)) return achieved;
    // Apply the shifts outside the kept runs (clamped) and measure the grid the image really has.
    // Shift(y, x) = Σ δ·row(y)·col(x), split into a per-row constant, a per-column vector and the
    // bases that vary both ways.
    columnShift(moves, delta, size, colShift);
    grid.fill(0);
    colSum.fill(0);
    let clamped = false;
    for (let y = 0; y < size; y++) {
      rowShift(moves, delta, size, y, colShift, spans, shift);
      const o = y * size;
      for (let x = 0; x < size; x++) {
        let v = density[o + x] + shift[x];
        if (v < 0 || v > 1) {
          v = v < 0 ? 0 : 1;
          clamped = true;
        }
        density[o + x] = v;
        colSum[x] += v;
      }
      if (y === size - 1 || cell[y + 1] !== cell[y]) addCellRow(grid, cell[y] * n, colSum, starts, n);
    }
    for (let i = 0; i < grid.length; i++) grid[i] /= count[i];
    // Unclamped, the image's grid is the one the Newton steps converged on (up to rounding).
    if (!clamped && converged) return achieved;
  }
  normalisedCoefficients(grid, gridBases, scratch, achieved);
  return achieved;
}

/** Per row, the two kept runs must be ordered runs within the row. */
function checkKeep(keep: Int32Array | undefined, size: number, who: string): Int32Array {
  if (keep && keep.length !== 4 * size) throw new Error(`${who}: ${keep.length} keep-span bounds for ${size} rows (4 per row)`);
  const spans = keep ?? new Int32Array(4 * size);
  const runOk = (lo: number, hi: number) => 0 <= lo && lo <= hi && hi <= size;
  for (let y = 0; y < size; y++) {
    const a = spans[4 * y];
    const b = spans[4 * y + 1];
    const c = spans[4 * y + 2];
    const d = spans[4 * y + 3];
    if (!runOk(a, b) || !runOk(c, d) || (a < b && c < d && b > c))
      throw new Error(`${who}: keep spans of row ${y} are not two ordered runs within the row`);
  }
  return spans;
}

/** The shifts found on the grid: the full-size shift is Σ delta[m]·(basis of moves[m]) outside the kept runs. */
export interface GridComponentPlan {
  moves: ComponentMove[];
  delta: Float64Array;
}

/** Targets of the component attributes inside each sampled bin, away from its edges (undefined for "no image"), and how close is close enough. */
export interface ComponentTargets {
  targets: (number | undefined)[];
  tolerance: number[];
}

function targetsOf(attrs: readonly ImageComponentAttribute[], bins: readonly number[], rng: Rng, caller: string): ComponentTargets {
  if (bins.length !== attrs.length) throw new Error(`${caller}: ${bins.length} bins for ${attrs.length} component attributes`);
  const tolerance: number[] = [];
  const targets = attrs.map((a, j) => {
    const r = componentBinRange(a, bins[j]);
    if (!r) return undefined;
    // Within 5 % of the bin's width of the target is close enough: the target is at least 20 %
    // of the width away from either edge (the encoder must read the same bin back).
    tolerance[j] = 0.05 * (r[1] - r[0]);
    return r[0] + (0.2 + 0.6 * rng.next()) * (r[1] - r[0]);
  });
  return { targets, tolerance };
}

/**
 * The grid-only search of the image components (modalities/image/radiograph-synth.ts builds the
 * full-size image from it and checks, or enforces, that its grid is the solved one). The model
 * of a cell, in density units, is
 *   q = clamp(clamp01(base + Σ δ_m g_m) + add, 0, upper)
 * (base: the cell's density average; g_m: the cell average of basis m outside the kept runs;
 * add: what the acquisition adds to the cell, offset and mean noise, over the gain, one number or
 * one per cell; upper: full scale over the gain). Newton steps on the shifts δ until every
 * targeted normalised coefficient is within tolerance; the solved q is left in `out`. The
 * normalisation is affine invariant, so q's normalised coefficients are the stored grid's.
 * `from` (a previous plan of the same image) starts from its shifts.
 */
export function solveComponentsOnGrid(
  schema: Schema,
  size: number,
  goal: ComponentTargets,
  keep: Int32Array | undefined,
  base: Float64Array,
  add: Float64Array | number,
  upper: number,
  out: Float64Array,
  from?: GridComponentPlan,
  steps = 12,
): GridComponentPlan {
  const { attrs, n, gridBases } = schemaBases(schema);
  const { targets, tolerance } = goal;
  if (targets.length !== attrs.length)
    throw new Error(`solveComponentsOnGrid: ${targets.length} targets for ${attrs.length} component attributes`);
  if (base.length !== n * n || out.length !== n * n || (typeof add !== 'number' && add.length !== n * n))
    throw new Error(`solveComponentsOnGrid: grids of ${n}×${n} expected`);
  const ws = workspace(size, n);
  const { scratch } = ws;
  let moves: ComponentMove[];
  if (from) moves = from.moves;
  else {
    const spans = checkKeep(keep, size, 'solveComponentsOnGrid');
    const active = attrs.map((_, j) => j).filter((j) => targets[j] !== undefined);
    moves = active.map((j, m) => moveOf(attrs[j], j, n, size, spans, ws, m));
  }
  const k = moves.length;
  const delta = from ? from.delta.slice() : new Float64Array(k);
  const trial = ws.trial;
  const gs = moves.map((m) => m.g);
  const model = (): void => modelGrid(base, gs, delta, add, upper, trial, out);
  model();
  if (k === 0) return { moves, delta };
  const jac = jacobian(
    gs,
    moves.map((m) => gridBases[m.j]),
  );
  const achieved = new Array<number>(attrs.length).fill(0);
  for (let step = 0; step < steps; step++) {
    const { span, loCell: lo, hiCell: hi } = normalisedCoefficients(out, gridBases, scratch, achieved);
    const miss = moves.map((m) => targets[m.j]! - achieved[m.j]);
    if (moves.every((m, i) => Math.abs(miss[i]) < tolerance[m.j])) break;
    // Newton step: the masked bases' projections, less how the span moves (the cells at the
    // percentiles move with the shifts, and every coefficient scales with 1/span).
    const j = jac.map((row, r) => row.map((p, c) => p - (moves[c].g[hi] - moves[c].g[lo]) * achieved[moves[r].j]));
    const next = miss.slice();
    // The diagonal alone if the Jacobian is near singular.
    if (!solveSmall(j, next)) for (let m = 0; m < k; m++) next[m] = miss[m] / Math.max(0.05, jac[m][m]);
    for (let m = 0; m < k; m++) delta[m] += next[m] * span;
    model();
  }
  return { moves, delta };
}

/** out = clamp(clamp01(base + Σ delta[m]·gs[m]) + add, 0, upper), cell by cell (trial: scratch). */
function modelGrid(
  base: Float64Array,
  gs: Float64Array[],
  delta: Float64Array,
  add: Float64Array | number,
  upper: number,
  trial: Float64Array,
  out: Float64Array,
): void {
  // Up to three shifts in the pass that clamps; any more are added beforehand.
  let src = base;
  if (gs.length > 3) {
    trial.set(base);
    for (let m = 3; m < gs.length; m++) {
      const dm = delta[m];
      const g = gs[m];
      for (let i = 0; i < trial.length; i++) trial[i] += dm * g[i];
    }
    src = trial;
  }
  const z = zeros(base.length);
  const g0 = gs[0] ?? z;
  const g1 = gs[1] ?? z;
  const g2 = gs[2] ?? z;
  const d0 = gs.length > 0 ? delta[0] : 0;
  const d1 = gs.length > 1 ? delta[1] : 0;
  const d2 = gs.length > 2 ? delta[2] : 0;
  const a = typeof add === 'number' ? add : 0;
  const perCell = typeof add === 'number' ? z : add;
  // `+ 0` makes the bound a float64 value: selected against one in the loop as a tagged
  // parameter, TurboFan boxes every cell's result (a heap number per cell, 6× slower).
  const up = upper + 0;
  for (let i = 0; i < out.length; i++) {
    const v = src[i] + d0 * g0[i] + d1 * g1[i] + d2 * g2[i];
    const w = (v < 0 ? 0 : v > 1 ? 1 : v) + a + perCell[i];
    out[i] = w < 0 ? 0 : w > up ? up : w;
  }
}

/**
 * jac[r][c] = gs[c] · bases[r], each product summed as `dot` sums it (even and odd cells apart,
 * then added), up to three bases per pass over gs[c]: the k² products were k² passes.
 */
function jacobian(gs: Float64Array[], bases: Float64Array[]): number[][] {
  const k = gs.length;
  const jac: number[][] = bases.map(() => new Array<number>(k).fill(0));
  for (let c = 0; c < k; c++) {
    const a = gs[c];
    for (let r = 0; r < k; r += 3) {
      if (r + 2 >= k) {
        for (let q = r; q < k; q++) jac[q][c] = dot(a, bases[q]);
        continue;
      }
      const b0 = bases[r];
      const b1 = bases[r + 1];
      const b2 = bases[r + 2];
      let e0 = 0;
      let o0 = 0;
      let e1 = 0;
      let o1 = 0;
      let e2 = 0;
      let o2 = 0;
      const len = a.length & ~1;
      for (let i = 0; i < len; i += 2) {
        const x = a[i];
        const y = a[i + 1];
        e0 += x * b0[i];
        o0 += y * b0[i + 1];
        e1 += x * b1[i];
        o1 += y * b1[i + 1];
        e2 += x * b2[i];
        o2 += y * b2[i + 1];
      }
      if (len < a.length) {
        e0 += a[len] * b0[len];
        e1 += a[len] * b1[len];
        e2 += a[len] * b2[len];
      }
      jac[r][c] = e0 + o0;
      jac[r + 1][c] = e1 + o1;
      jac[r + 2][c] = e2 + o2;
    }
  }
  return jac;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s0 = 0;
  let s1 = 0;
  const len = a.length & ~1;
  for (let i = 0; i < len; i += 2) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
  }
  if (len < a.length) s0 += a[len] * b[len];
  return s0 + s1;
}

const schemaBasesCache = new WeakMap<Schema, { attrs: ImageComponentAttribute[]; n: number; gridBases: Float64Array[] }>();

/** A schema's component attributes, grid side and grid bases (cached per schema object). */
function schemaBases(schema: Schema): { attrs: ImageComponentAttribute[]; n: number; gridBases: Float64Array[] } {
  let c = schemaBasesCache.get(schema);
  if (!c) {
    const attrs = imageComponentAttributes(schema);
    const n = schema.image?.grid ?? 64;
    c = { attrs, n, gridBases: attrs.map((a) => dctBasisImage(a.basis[0], a.basis[1], n)) };
    schemaBasesCache.set(schema, c);
  }
  return c;
}

/** Normalised coefficients (the sites' encoder: 1st/99th percentile scaling, clamped) of an n×n grid along every component attribute's basis. */
export function normalisedGridCoefficients(schema: Schema, grid: Float64Array): number[] {
  const { attrs, n, gridBases } = schemaBases(schema);
  if (grid.length !== n * n) throw new Error(`normalisedGridCoefficients: ${grid.length} cells for ${n}×${n}`);
  const out = new Array<number>(attrs.length).fill(0);
  normalisedCoefficients(
    grid,
    gridBases,
    memo(coefficientScratch, MAX_SIZES, String(n), () => new Float64Array(n * n)),
    out,
  );
  return out;
}
const coefficientScratch = new Map<string, Float64Array>();
