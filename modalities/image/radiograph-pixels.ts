// The per-pixel pass of a synthetic radiograph (radiograph-synth.ts): stored pixels from density,
// component shift, acquisition and noise, summed per grid cell; and the noise alone summed per
// cell. It is the largest cost of writing a cohort, so it runs in WebAssembly SIMD (written out
// instruction by instruction with wasm-emit.ts), one call per image, on buffers that live in the
// kernel's memory, with a JavaScript path of the same arithmetic where SIMD is unavailable.
//
// The noise stream: four sfc32 generators (lanes); lane l draws the pixels x ≡ l (mod 4) of each
// row, in order, row after row. So four pixels in a row take one step of all four lanes in one
// i32x4 register, and a row whose length is not a multiple of 4 steps only its first lanes on its
// last pixels. The seed is 16 words (lane l's a, b, c, d at l, 4 + l, 8 + l, 12 + l). A pixel's
// draw t gives u = the sum of t's three 10-bit fields (Irwin–Hall, 0…3069).
//
// The stored value of a pixel, in stored units: q = base + round(g + u·step), clamped to
// [0, max], where g = gain·(density + shift) clamped to [0, gain] (that is gain·clamp01(…)) and
// the rounding is to nearest, ties to even: the low 32 bits of (g + u·step) + (base + 1.5·2⁵²),
// exact for a whole-number base. Both paths compute it in f64 in this order (f64x2 here: no fused
// multiply-add, and pmin/pmax are exactly JavaScript's comparisons), so they give the same bits.

import { bothWaysRow, columnShift, rowConstant, rowShift, type GridComponentPlan } from './components.ts';
import { priorBytes, priorWorkspaceIn, type PriorWorkspace } from './radiograph-prior-pixels.ts';
import { compileSimd, countedLoop, F64, fixedMemory, funcBody, I32, instantiate, memoryModule, op, V128 } from './wasm-emit.ts';

/** Tests set `simd` to false to run the JavaScript path. */
export const radiographKernels = { simd: true };

/** An acquisition in stored units (see the header). */
export interface StoredAcquisition {
  /** A whole number. */
  base: number;
  gain: number;
  step: number;
  max: number;
}

type PixelsFn = (
  size: number,
  n: number,
  f: number,
  seed: number,
  colSum: number,
  cells: number,
  moves: number,
  base: number,
  gain: number,
  step: number,
  max: number,
  colShift: number,
  shift: number,
  perRow: number,
  spans: number,
  rowF: number,
  colF: number,
  density: number,
  pixels: number,
) => void;
type NoiseFn = (size: number, n: number, f: number, seed: number, colSum: number, cells: number) => void;

/** Byte offsets of the buffers in the workspace's memory. */
interface Layout {
  seed: number;
  colShift: number;
  shift: number;
  perRow: number;
  spans: number;
  colSum: number;
  cells: number;
  rowF: number;
  colF: number;
  density: number;
  pixels: number;
  prior: number;
  bytes: number;
}

/**
 * One thread's buffers for size×size images on an n×n grid with up to `moves` components that
 * vary both ways: in the kernel's memory (which never grows, so the views stay valid) when SIMD is
 * available. The prior is drawn into `density` and its passes (radiograph-prior-pixels.ts) run
 * on the same memory (`priorWorkspace`).
 */
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
}

/**
 * The pass's own buffers besides. Rows are padded to a multiple of 4 pixels, and the last row's
 * four-pixel step may read and write up to 3 pixels past it.
 */
interface Workspace extends PixelWorkspace {
  readonly colShift: Float64Array;
  readonly shift: Float64Array;
  readonly perRow: Float64Array;
  readonly spans: Int32Array;
  readonly colSum: Int32Array;
  readonly rowF: Float64Array;
  readonly colF: Float64Array;
  readonly moves: number;
  readonly padded: number;
  readonly layout: Layout;
  readonly kernel?: { pixels: PixelsFn; noise: NoiseFn };
  /** The prior's buffers, with and without its kernel. */
  readonly prior: PriorWorkspace;
  readonly priorJs: PriorWorkspace;
}

function layoutOf(size: number, n: number, moves: number): Layout {
  const padded = (size + 3) & ~3;
  let at = 0;
  const take = (bytes: number): number => {
    const o = at;
    at = (at + bytes + 15) & ~15;
    return o;
  };
  return {
    seed: take(64),
    colShift: take(8 * padded),
    shift: take(8 * padded),
    perRow: take(8 * size),
    spans: take(16 * size),
    colSum: take(4 * padded),
    cells: take(8 * n * n),
    rowF: take(8 * moves * size),
    colF: take(8 * moves * padded),
    density: take(4 * size * size + 16),
    pixels: take(2 * size * size + 8),
    prior: take(priorBytes(size, n)),
    bytes: at,
  };
}

let compiled: object | null | undefined;
const workspaces = new Map<string, Workspace>();

/** The workspace for size×size images on an n×n grid (size a multiple of n) with up to `moves` both-ways components. */
export function pixelWorkspace(size: number, n: number, moves: number): PixelWorkspace {
  const key = `${size},${n},${moves}`;
  const hit = workspaces.get(key);
  if (hit) return hit;
  if (size % n !== 0) throw new Error(`pixelWorkspace: ${size} is not a multiple of the grid ${n}`);
  if (compiled === undefined) compiled = compileSimd(moduleBytes()) ?? null;
  const L = layoutOf(size, n, moves);
  const memory = compiled ? fixedMemory(Math.ceil(L.bytes / 65536)) : undefined;
  const buf = memory ? memory.buffer : new ArrayBuffer(L.bytes);
  const padded = (size + 3) & ~3;
  const density = new Float32Array(buf, L.density, size * size);
  const prior = priorWorkspaceIn(buf, L.prior, size, n, density, memory);
  const ws: Workspace = {
    size,
    n,
    density,
    pixels: new Uint16Array(buf, L.pixels, size * size),
    seed: new Int32Array(buf, L.seed, 16),
    cells: new Float64Array(buf, L.cells, n * n),
    colShift: new Float64Array(buf, L.colShift, size),
    shift: new Float64Array(buf, L.shift, size),
    perRow: new Float64Array(buf, L.perRow, size),
    spans: new Int32Array(buf, L.spans, 4 * size),
    colSum: new Int32Array(buf, L.colSum, padded),
    rowF: new Float64Array(buf, L.rowF, moves * size),
    colF: new Float64Array(buf, L.colF, moves * padded),
    moves,
    padded,
    layout: L,
    ...(compiled && memory ? { kernel: instantiate(compiled, memory) as { pixels: PixelsFn; noise: NoiseFn } } : {}),
    prior,
    priorJs: { n, out: prior.out, tables: prior.tables },
  };
  workspaces.set(key, ws);
  return ws;
}

/** Whether this workspace's passes run in the SIMD kernel (unless `radiographKernels.simd` is false). */
export const hasKernel = (ws: PixelWorkspace): boolean => (ws as Workspace).kernel !== undefined;

/**
 * The buffers for drawing the prior into ws.density (renderPriorRadiograph): its passes in SIMD
 * unless `radiographKernels.simd` is false. The buffers are the same either way.
 */
export const priorWorkspace = (workspace: PixelWorkspace): PriorWorkspace =>
  radiographKernels.simd ? (workspace as Workspace).prior : (workspace as Workspace).priorJs;

/**
 * The stored pixels of ws.density with the plan's shift (zero on the rows' kept runs `spans`)
 * into ws.pixels, and each grid cell's sum of stored values into ws.cells.
 */
export function storePixels(workspace: PixelWorkspace, plan: GridComponentPlan, spans: Int32Array, acq: StoredAcquisition): void {
  const ws = workspace as Workspace;
  if (!Number.isInteger(acq.base)) throw new Error(`storePixels: base ${acq.base} is not a whole number of stored units`);
  const { moves, delta } = plan;
  const { size, n } = ws;
  columnShift(moves, delta, size, ws.colShift);
  const k = radiographKernels.simd ? ws.kernel : undefined;
  if (!k) {
    storePixelsJs(ws, plan, spans, acq);
    return;
  }
  // The shift's factors, for the kernel to build each row as rowShift does.
  for (let y = 0; y < size; y++) ws.perRow[y] = rowConstant(moves, delta, y);
  let both = 0;
  for (let m = 0; m < moves.length; m++) {
    if (moves[m].flatCols || moves[m].flatRows) continue;
    if (both === ws.moves) throw new Error(`storePixels: more than ${ws.moves} components varying both ways`);
    for (let y = 0; y < size; y++) ws.rowF[both * size + y] = bothWaysRow(moves, delta, m, y);
    ws.colF.set(moves[m].f.col, both * ws.padded);
    both++;
  }
  ws.spans.set(spans);
  const L = ws.layout;
  k.pixels(
    size,
    n,
    size / n,
    L.seed,
    L.colSum,
    L.cells,
    both,
    acq.base + ROUNDING,
    acq.gain,
    acq.step,
    acq.max,
    L.colShift,
    L.shift,
    L.perRow,
    L.spans,
    L.rowF,
    L.colF,
    L.density,
    L.pixels,
  );
}

/** Each grid cell's sum of the noise draws u of the stream storePixels draws, into ws.cells. */
export function noiseSums(workspace: PixelWorkspace): void {
  const ws = workspace as Workspace;
  const k = radiographKernels.simd ? ws.kernel : undefined;
  if (k) k.noise(ws.size, ws.n, ws.size / ws.n, ws.layout.seed, ws.layout.colSum, ws.layout.cells);
  else noiseSumsJs(ws);
}

/** 1.5·2⁵²: added to a double of magnitude below 2⁵¹, it rounds it to an integer (to even), held in the low 32 bits. */
const ROUNDING = 6755399441055744;

/** One step of lane l of the four sfc32 generators in s (see the header); returns its output. */
function laneStep(s: Int32Array, l: number): number {
  const a = s[l];
  const b = s[4 + l];
  const c = s[8 + l];
  const d = s[12 + l];
  const t = (((a + b) | 0) + d) | 0;
  s[l] = b ^ (b >>> 9);
  s[4 + l] = (c + (c << 3)) | 0;
  s[8 + l] = (((c << 21) | (c >>> 11)) + t) | 0;
  s[12 + l] = (d + 1) | 0;
  return t;
}

/** Grid row `gy`'s cell sums from the column sums of its pixel rows, which are then cleared. */
function addCellRow(colSum: Int32Array, cells: Float64Array, gy: number, n: number, f: number): void {
  for (let gx = 0; gx < n; gx++) {
    let s = 0;
    for (let x = gx * f; x < gx * f + f; x++) s += colSum[x];
    cells[gy * n + gx] = s;
  }
  colSum.fill(0);
}

function storePixelsJs(ws: Workspace, plan: GridComponentPlan, spans: Int32Array, acq: StoredAcquisition): void {
  const { size, n, density, pixels: px, shift, colShift, colSum, cells } = ws;
  const f = size / n;
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
    for (let x = 0; x < size; x++) {
      const t = laneStep(s, x & 3);
      const u = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
      let g = gain * (density[o + x] + shift[x]);
      g = g < 0 ? 0 : g > gain ? gain : g;
      const v = g + u * step + rounded - ROUNDING;
      const q = v < 0 ? 0 : v > max ? max : v;
      px[o + x] = q;
      colSum[x] += q;
    }
    if ((y + 1) % f === 0) addCellRow(colSum, cells, (y + 1) / f - 1, n, f);
  }
}

function noiseSumsJs(ws: Workspace): void {
  const { size, n, colSum, cells } = ws;
  const f = size / n;
  const s = Int32Array.from(ws.seed);
  colSum.fill(0);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = laneStep(s, x & 3);
      colSum[x] += (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
    }
    if ((y + 1) % f === 0) addCellRow(colSum, cells, (y + 1) / f - 1, n, f);
  }
}

// The kernel. Both functions share their first six parameters; `pixels` has 13 more.
const P = {
  size: 0,
  n: 1,
  f: 2,
  seed: 3,
  colSum: 4,
  cells: 5,
  moves: 6,
  base: 7,
  gain: 8,
  step: 9,
  max: 10,
  colShift: 11,
  shift: 12,
  perRow: 13,
  spans: 14,
  rowF: 15,
  colF: 16,
  density: 17,
  pixels: 18,
};
const pixelParams = [I32, I32, I32, I32, I32, I32, I32, F64, F64, F64, I32, I32, I32, I32, I32, I32, I32, I32, I32];
const noiseParams = pixelParams.slice(0, 6);

const i32Locals = [
  'y',
  'x',
  'pairs',
  'rem',
  'iters',
  'colBytes',
  'cnt',
  'gx',
  'j',
  'pc',
  'pcell',
  'pd',
  'ps',
  'pp',
  'pf',
  'm',
  'lo',
  'hi',
  'end',
  'fours',
] as const;
const vLocals = [
  'a',
  'b',
  'c',
  'd',
  'oa',
  'ob',
  'oc',
  'od',
  't',
  'u',
  'remMask',
  'baseV',
  'gainV',
  'stepV',
  'maxV',
  'p',
  'half',
  'q',
  'q1',
] as const;
type Locals = Record<(typeof i32Locals)[number] | (typeof vLocals)[number] | 'acc', number>;

function localsAfter(params: number): Locals {
  const l = {} as Locals;
  let i = params;
  for (const k of i32Locals) l[k] = i++;
  l.acc = i++;
  for (const k of vLocals) l[k] = i++;
  return l;
}
const localDecls: [number, number][] = [
  [i32Locals.length, I32],
  [1, F64],
  [vLocals.length, V128],
];

// Constants written inline rather than held in locals: V8 makes zeros and all-ones in one
// instruction each, and the loop's registers are better spent on the state.
const allOnes = op.v128Const(new Array<number>(16).fill(0xff));

/** ptr += bytes. */
const advance = (ptr: number, bytes: number): number[] => [...op.get(ptr), ...op.i32(bytes), ...op.i32Add, ...op.set(ptr)];

/** One step of the four lanes: t, then u = its three 10-bit fields summed, per lane. */
function laneStepCode(L: Locals): number[] {
  // Bits [k, k + 10) by two shifts: no mask held in a register.
  const field = (k: number) => [...op.get(L.t), ...op.i32(22 - k), ...op.i32x4Shl, ...op.i32(22), ...op.i32x4ShrU];
  return [
    ...op.get(L.a),
    ...op.get(L.b),
    ...op.i32x4Add,
    ...op.get(L.d),
    ...op.i32x4Add,
    ...op.set(L.t),
    ...op.get(L.d),
    ...allOnes,
    ...op.i32x4Sub,
    ...op.set(L.d),
    ...op.get(L.b),
    ...op.get(L.b),
    ...op.i32(9),
    ...op.i32x4ShrU,
    ...op.v128Xor,
    ...op.set(L.a),
    ...op.get(L.c),
    ...op.get(L.c),
    ...op.i32(3),
    ...op.i32x4Shl,
    ...op.i32x4Add,
    ...op.set(L.b),
    ...op.get(L.c),
    ...op.i32(21),
    ...op.i32x4Shl,
    ...op.get(L.c),
    ...op.i32(11),
    ...op.i32x4ShrU,
    ...op.v128Or,
    ...op.get(L.t),
    ...op.i32x4Add,
    ...op.set(L.c),
    ...field(0),
    ...field(10),
    ...op.i32x4Add,
    ...field(20),
    ...op.i32x4Add,
    ...op.set(L.u),
  ];
}

/**
 * Two of four pixels (the low or high half of the four at `at`): g + u·step + base + 1.5·2⁵², whose
 * low 32 bits are the stored value before the clamp.
 */
function halfCode(L: Locals, high: boolean, at: number): number[] {
  return [
    ...op.get(L.gainV),
    ...op.get(L.pd),
    ...op.v128Load64Zero(16 * at + (high ? 8 : 0)),
    ...op.f64x2PromoteLowF32x4,
    ...op.get(L.ps),
    ...op.v128Load(32 * at + (high ? 16 : 0)),
    ...op.f64x2Add,
    ...op.f64x2Mul,
    ...op.v128Zero,
    ...op.f64x2Pmax,
    ...op.get(L.gainV),
    ...op.f64x2Pmin,
    ...op.get(L.u),
    ...(high ? [...op.get(L.u), ...op.i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15])] : []),
    ...op.f64x2ConvertLowI32x4S,
    ...op.get(L.stepV),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...op.get(L.baseV),
    ...op.f64x2Add,
  ];
}

/** The four values at `at` (pixels: stored values, into q; noise: the draws u), added to their columns' sums. */
function valuesCode(L: Locals, pixels: boolean, at: number): number[] {
  const sum = (v: number) => [
    ...op.get(L.pc),
    ...op.get(L.pc),
    ...op.v128Load(16 * at),
    ...op.get(v),
    ...op.i32x4Add,
    ...op.v128Store(16 * at),
  ];
  if (!pixels) return sum(L.u);
  return [
    ...halfCode(L, false, at),
    ...op.set(L.half),
    ...op.get(L.half),
    ...halfCode(L, true, at),
    ...op.i8x16Shuffle([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]),
    ...op.v128Zero,
    ...op.i32x4MaxS,
    ...op.get(L.maxV),
    ...op.i32x4MinS,
    ...op.set(L.q),
    ...sum(L.q),
  ];
}

/** Moves the pointers past `groups` fours of pixels. */
function advanceCode(L: Locals, pixels: boolean, groups: number): number[] {
  return [
    ...(pixels ? [...advance(L.pd, 16 * groups), ...advance(L.ps, 32 * groups), ...advance(L.pp, 8 * groups)] : []),
    ...advance(L.pc, 16 * groups),
  ];
}

/** Row y of the shift into `shift` (padded): perRow[y] + colShift, plus each both-ways move's rowF·colF, zeroed on the kept runs. */
function shiftRowCode(L: Locals): number[] {
  const splatAt = (table: number, index: number[]) => [
    ...op.get(table),
    ...index,
    ...op.i32(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f64Load(),
    ...op.f64x2Splat,
    ...op.set(L.p),
  ];
  // Four f64 per iteration (the padded row is a multiple of 4).
  const pass = (body: (offset: number) => number[]) => [
    ...op.get(P.shift),
    ...op.set(L.ps),
    ...countedLoop(L.x, L.iters, [...body(0), ...body(16), ...advance(L.ps, 32), ...advance(L.pf, 32)]),
  ];
  const fill = (run: number) => [
    ...op.get(L.y),
    ...op.i32(4),
    ...op.i32Shl,
    ...op.get(P.spans),
    ...op.i32Add,
    ...op.tee(L.pf),
    ...op.i32Load(8 * run),
    ...op.set(L.lo),
    ...op.get(L.pf),
    ...op.i32Load(8 * run + 4),
    ...op.set(L.hi),
    ...op.get(L.hi),
    ...op.get(L.lo),
    ...op.i32GtS,
    ...op.if,
    ...op.get(P.shift),
    ...op.get(L.lo),
    ...op.i32(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.i32(0),
    ...op.get(L.hi),
    ...op.get(L.lo),
    ...op.i32Sub,
    ...op.i32(3),
    ...op.i32Shl,
    ...op.memoryFill,
    ...op.end,
  ];
  const move = [
    ...splatAt(P.rowF, [...op.get(L.m), ...op.get(P.size), ...op.i32Mul, ...op.get(L.y), ...op.i32Add]),
    ...op.get(P.colF),
    ...op.get(L.m),
    ...op.get(L.iters),
    ...op.i32Mul,
    ...op.i32(5),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(L.pf),
    ...pass((o) => [
      ...op.get(L.ps),
      ...op.get(L.ps),
      ...op.v128Load(o),
      ...op.get(L.p),
      ...op.get(L.pf),
      ...op.v128Load(o),
      ...op.f64x2Mul,
      ...op.f64x2Add,
      ...op.v128Store(o),
    ]),
  ];
  return [
    ...splatAt(P.perRow, op.get(L.y)),
    ...op.get(P.colShift),
    ...op.set(L.pf),
    ...pass((o) => [...op.get(L.ps), ...op.get(L.p), ...op.get(L.pf), ...op.v128Load(o), ...op.f64x2Add, ...op.v128Store(o)]),
    ...countedLoop(L.m, P.moves, move),
    ...fill(0),
    ...fill(1),
  ];
}

function kernelBody(pixels: boolean): number[] {
  const L = localsAfter(pixels ? pixelParams.length : noiseParams.length);
  const splat = (param: number, instr: number[], local: number) => [...op.get(param), ...instr, ...op.set(local)];
  const clearColumns = [...op.get(P.colSum), ...op.i32(0), ...op.get(L.colBytes), ...op.memoryFill];
  const state = (local: number, offset: number) => [...op.get(P.seed), ...op.v128Load(offset), ...op.set(local)];
  // Eight pixels per iteration, then four, then the remainder's partial step, after which the
  // lanes at or past the remainder keep their state.
  const eight = [
    ...laneStepCode(L),
    ...valuesCode(L, pixels, 0),
    ...(pixels ? [...op.get(L.q), ...op.set(L.q1)] : []),
    ...laneStepCode(L),
    ...valuesCode(L, pixels, 1),
    ...(pixels ? [...op.get(L.pp), ...op.get(L.q1), ...op.get(L.q), ...op.i16x8NarrowI32x4U, ...op.v128Store()] : []),
    ...advanceCode(L, pixels, 2),
  ];
  const four = [
    ...laneStepCode(L),
    ...valuesCode(L, pixels, 0),
    ...(pixels ? [...op.get(L.pp), ...op.get(L.q), ...op.get(L.q), ...op.i16x8NarrowI32x4U, ...op.v128Store64Lane(0)] : []),
    ...advanceCode(L, pixels, 1),
  ];
  const keep = (now: number, before: number) => [
    ...op.get(now),
    ...op.get(before),
    ...op.get(L.remMask),
    ...op.v128Bitselect,
    ...op.set(now),
  ];
  // A grid row's cells from the column sums: four columns per load when a cell is a whole number
  // of fours (f64 lanes: exact at any size), else column by column.
  const cellRow = [
    ...op.get(P.colSum),
    ...op.set(L.pc),
    ...op.get(P.f),
    ...op.i32(3),
    ...op.i32And,
    ...op.if,
    ...countedLoop(L.gx, P.n, [
      ...op.f64(0),
      ...op.set(L.acc),
      ...countedLoop(L.j, P.f, [
        ...op.get(L.acc),
        ...op.get(L.pc),
        ...op.i32Load(),
        ...op.f64ConvertI32U,
        ...op.f64Add,
        ...op.set(L.acc),
        ...advance(L.pc, 4),
      ]),
      ...op.get(L.pcell),
      ...op.get(L.acc),
      ...op.f64Store(),
      ...advance(L.pcell, 8),
    ]),
    ...op.else,
    ...countedLoop(L.gx, P.n, [
      ...op.v128Zero,
      ...op.set(L.p),
      ...countedLoop(L.j, L.fours, [
        ...op.get(L.pc),
        ...op.v128Load(),
        ...op.set(L.q),
        ...op.get(L.p),
        ...op.get(L.q),
        ...op.f64x2ConvertLowI32x4U,
        ...op.f64x2Add,
        ...op.get(L.q),
        ...op.get(L.q),
        ...op.i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
        ...op.f64x2ConvertLowI32x4U,
        ...op.f64x2Add,
        ...op.set(L.p),
        ...advance(L.pc, 16),
      ]),
      ...op.get(L.pcell),
      ...op.get(L.p),
      ...op.f64x2ExtractLane(0),
      ...op.get(L.p),
      ...op.f64x2ExtractLane(1),
      ...op.f64Add,
      ...op.f64Store(),
      ...advance(L.pcell, 8),
    ]),
    ...op.end,
    ...clearColumns,
  ];
  const rowStart = (table: number, shift: number) => [
    ...op.get(table),
    ...op.get(L.y),
    ...op.get(P.size),
    ...op.i32Mul,
    ...op.i32(shift),
    ...op.i32Shl,
    ...op.i32Add,
  ];
  const row = [
    ...(pixels
      ? [
          ...shiftRowCode(L),
          ...rowStart(P.density, 2),
          ...op.set(L.pd),
          ...rowStart(P.pixels, 1),
          ...op.set(L.pp),
          ...op.get(P.shift),
          ...op.set(L.ps),
        ]
      : []),
    ...op.get(P.colSum),
    ...op.set(L.pc),
    ...op.get(L.pc),
    ...op.get(L.pairs),
    ...op.i32(5),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(L.end),
    ...op.block,
    ...op.loop,
    ...op.get(L.pc),
    ...op.get(L.end),
    ...op.i32GeU,
    ...op.brIf(1),
    ...eight,
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.get(P.size),
    ...op.i32(4),
    ...op.i32And,
    ...op.if,
    ...four,
    ...op.end,
    ...op.get(L.rem),
    ...op.if,
    ...op.get(L.a),
    ...op.set(L.oa),
    ...op.get(L.b),
    ...op.set(L.ob),
    ...op.get(L.c),
    ...op.set(L.oc),
    ...op.get(L.d),
    ...op.set(L.od),
    ...four,
    ...keep(L.a, L.oa),
    ...keep(L.b, L.ob),
    ...keep(L.c, L.oc),
    ...keep(L.d, L.od),
    ...op.end,
    ...op.get(L.cnt),
    ...op.i32(1),
    ...op.i32Add,
    ...op.tee(L.cnt),
    ...op.get(P.f),
    ...op.i32Eq,
    ...op.if,
    ...cellRow,
    ...op.i32(0),
    ...op.set(L.cnt),
    ...op.end,
  ];
  const code = [
    ...state(L.a, 0),
    ...state(L.b, 16),
    ...state(L.c, 32),
    ...state(L.d, 48),
    ...op.get(P.size),
    ...op.i32(3),
    ...op.i32ShrU,
    ...op.set(L.pairs),
    ...op.get(P.f),
    ...op.i32(2),
    ...op.i32ShrU,
    ...op.set(L.fours),
    ...op.get(P.size),
    ...op.i32(3),
    ...op.i32And,
    ...op.set(L.rem),
    ...op.get(L.rem),
    ...op.i32x4Splat,
    ...op.v128Const(new Uint8Array(Int32Array.of(0, 1, 2, 3).buffer)),
    ...op.i32x4GtS,
    ...op.set(L.remMask),
    // The padded row: its groups of four, and the bytes of its column sums.
    ...op.get(P.size),
    ...op.i32(3),
    ...op.i32Add,
    ...op.i32(2),
    ...op.i32ShrU,
    ...op.tee(L.iters),
    ...op.i32(4),
    ...op.i32Shl,
    ...op.set(L.colBytes),
    ...(pixels
      ? [
          ...splat(P.base, op.f64x2Splat, L.baseV),
          ...splat(P.gain, op.f64x2Splat, L.gainV),
          ...splat(P.step, op.f64x2Splat, L.stepV),
          ...splat(P.max, op.i32x4Splat, L.maxV),
        ]
      : []),
    ...clearColumns,
    ...op.i32(0),
    ...op.set(L.cnt),
    ...op.get(P.cells),
    ...op.set(L.pcell),
    ...countedLoop(L.y, P.size, row),
    ...op.end,
  ];
  return funcBody(localDecls, code);
}

/** The kernel module's bytes: `pixels` and `noise`, on an imported memory m.memory. */
export function moduleBytes(): Uint8Array {
  return memoryModule([
    { name: 'pixels', params: pixelParams, body: kernelBody(true) },
    { name: 'noise', params: noiseParams, body: kernelBody(false) },
  ]);
}
