// The costly per-pixel passes of the radiograph prior (radiograph-prior.ts), over the body it has
// filled row by row: the thorax (lung fields, then mediastinum, heart and spine over them) and the
// grid pass. In WebAssembly SIMD (written out instruction by instruction with wasm-emit.ts) on the
// pixel workspace's memory (radiograph-pixels.ts), where the prior is drawn, one call each per
// image; with a JavaScript path of the same arithmetic for other buffers and sizes and where SIMD
// is off.
//
// The thorax pass draws, on each lung row's two runs (PriorTables.lungSpans), the pixels above
// the diaphragm's dome (y < dome[x]): texture, ribs, consolidation and nodule; then on each row's
// runs (PriorTables.runs) the mediastinum and heart (at least 0.62) and the spine (+0.12). All in
// f64 in the order the JavaScript path writes it (f64x2 has no fused multiply-add; its sqrt, div,
// floor and comparisons are JavaScript's), stored as f32 (both round to nearest even), so both
// give the same bits. Four pixels at a time on whole fours of the row, those outside a run kept.
//
// The grid pass clamps each pixel to [0, 1] (written back: c = v if 0 < v < 1, else 1 if v > 0,
// else 0, which is f32x4 pmin(1, pmax(0, v))) and writes each cell's area average. Summation
// order, the same in both paths so that they give the same bits: a cell's pixel rows in order,
// each in chunks of four pixels p0…p3 (a short last chunk padded with zeros); two running sums in
// f64, e += p0 + p2 and o += p1 + p3, chunk after chunk, row after row (in f64x2: the chunk's low
// and high halves added, then added to the running pair); the average is (e + o)·(1/f²). The
// kernel takes cells whose width f is a multiple of 4.

import { compileSimd, countedLoop, F64, funcBody, I32, instantiate, memoryModule, op, V128, type WasmMemory } from './wasm-emit.ts';

/**
 * The per-column and per-row values of one prior (one image at a time per thread). The column
 * tables are padded to a multiple of 4 and lie one after another in this order (the kernel steps
 * from one to the next by `colBytes`).
 */
export interface PriorTables {
  readonly size: number;
  // The size's: the lung texture's x factors and the pixel centres x = (i + ½)/size.
  readonly colSin40: Float64Array;
  readonly colCos40: Float64Array;
  readonly colCos17: Float64Array;
  readonly colSin17: Float64Array;
  readonly colX: Float64Array;
  // The image's: the diaphragm's dome, the ribs' bend, the consolidation's x factor (0 without).
  readonly dome: Float64Array;
  readonly ribBend: Float64Array;
  readonly colOpacity: Float64Array;
  /** Bytes from one column table to the next. */
  readonly colBytes: number;
  /** The size's: the texture's y factors cos 31y, sin 31y. */
  readonly rowCos31s: Float64Array;
  readonly rowSin31s: Float64Array;
  /**
   * Per lung row, 8 values (LUNG_ROW): y, sin and cos of 25y + φ, cos 31y, sin 31y, the
   * consolidation's y factor (0 without), y − the ribs' top, and (y − nodule y)² on the rows near
   * the nodule, else −1.
   */
  readonly lungRow: Float64Array;
  /** Per row, the two lung runs as RenderedPrior.lungSpans. */
  readonly lungSpans: Int32Array;
  /** Per row, 6 values: the mediastinum's, the heart's and the spine's runs [a, b). */
  readonly runs: Int32Array;
}

/** Fields of PriorTables.lungRow. */
export const LUNG_ROW = { y: 0, sin: 1, cos: 2, cos31: 3, sin31: 4, opacity: 5, yRib: 6, noduleDy2: 7, length: 8 } as const;

const COLUMN_TABLES = 8;

function tablesLayout(size: number) {
  const padded = (size + 3) & ~3;
  const cols = 0;
  const rows = cols + 8 * COLUMN_TABLES * padded;
  const lungRow = rows + 16 * size;
  const lungSpans = lungRow + 8 * LUNG_ROW.length * size;
  const runs = lungSpans + 16 * size;
  return { padded, cols, rows, lungRow, lungSpans, runs, bytes: (runs + 24 * size + 15) & ~15 };
}

/** The tables in `buffer` from byte `at` (16-byte aligned), with the size's own values written. */
function tablesIn(buffer: ArrayBuffer, at: number, size: number): PriorTables {
  const L = tablesLayout(size);
  const col = (k: number) => new Float64Array(buffer, at + L.cols + 8 * k * L.padded, L.padded);
  const t: PriorTables = {
    size,
    colSin40: col(0),
    colCos40: col(1),
    colCos17: col(2),
    colSin17: col(3),
    colX: col(4),
    dome: col(5),
    ribBend: col(6),
    colOpacity: col(7),
    colBytes: 8 * L.padded,
    rowCos31s: new Float64Array(buffer, at + L.rows, size),
    rowSin31s: new Float64Array(buffer, at + L.rows + 8 * size, size),
    lungRow: new Float64Array(buffer, at + L.lungRow, LUNG_ROW.length * size),
    lungSpans: new Int32Array(buffer, at + L.lungSpans, 4 * size),
    runs: new Int32Array(buffer, at + L.runs, 6 * size),
  };
  for (let i = 0; i < size; i++) {
    const x = (i + 0.5) * (1 / size);
    t.colSin40[i] = Math.sin(40 * x);
    t.colCos40[i] = Math.cos(40 * x);
    t.colCos17[i] = Math.cos(17 * x);
    t.colSin17[i] = Math.sin(17 * x);
    t.colX[i] = x;
    t.rowCos31s[i] = Math.cos(31 * x);
    t.rowSin31s[i] = Math.sin(31 * x);
  }
  return t;
}

const tableCache = new Map<number, PriorTables>();

/** This thread's tables for size×size priors drawn outside a workspace. */
export function priorTables(size: number): PriorTables {
  let t = tableCache.get(size);
  if (!t) {
    t = tablesIn(new ArrayBuffer(tablesLayout(size).bytes), 0, size);
    tableCache.set(size, t);
  }
  return t;
}

/** Where a prior is drawn with a grid (radiograph-prior.ts renderPriorRadiograph). */
export interface PriorWorkspace {
  n: number;
  /** n×n, row-major: each cell's area average of the clamped density. */
  out: Float64Array;
  /** The tables in the kernel's memory (else this thread's priorTables). */
  tables?: PriorTables;
  /** Set when the prior is drawn into `kernel.density` and its passes run in SIMD. */
  kernel?: PriorKernel;
}

type GridFn = (density: number, size: number, n: number, f: number, out: number, inv: number) => void;
type DrawFn = (
  density: number,
  size: number,
  py0: number,
  py1: number,
  cols: number,
  colBytes: number,
  lungRow: number,
  lungSpans: number,
  runs: number,
  ribPeriod: number,
  noduleX: number,
  noduleR13: number,
  noduleR06: number,
  heartBelowDome: number,
) => void;

export interface PriorKernel {
  /** The density view (in the kernel's memory) the kernel reads and writes. */
  readonly density: Float32Array;
  readonly grid: GridFn;
  readonly draw: DrawFn;
}

/** Bytes of the prior's buffers in a workspace for size×size images on an n×n grid. */
export const priorBytes = (size: number, n: number): number => ((8 * n * n + 15) & ~15) + tablesLayout(size).bytes;

let compiled: object | null | undefined;

/**
 * The prior's buffers in `buffer` at byte `at` (priorBytes long, 16-byte aligned), with the kernel
 * when `memory` (whose buffer that is, holding `density`) is given and SIMD is available.
 */
export function priorWorkspaceIn(
  buffer: ArrayBuffer,
  at: number,
  size: number,
  n: number,
  density: Float32Array,
  memory?: WasmMemory,
): PriorWorkspace {
  const out = new Float64Array(buffer, at, n * n);
  const tables = tablesIn(buffer, at + ((8 * n * n + 15) & ~15), size);
  if (memory && compiled === undefined) compiled = compileSimd(moduleBytes()) ?? null;
  if (!memory || !compiled || density.buffer !== memory.buffer) return { n, out, tables };
  const fns = instantiate(compiled, memory) as { grid: GridFn; draw: DrawFn };
  return { n, out, tables, kernel: { density, grid: fns.grid, draw: fns.draw } };
}

/**
 * The thorax over the body in `density` (size×size): the lung fields of rows [py0, py1) (the
 * others have none), then every row's mediastinum, heart and spine. Nodule: centre x, radius·1.3
 * and radius·0.6.
 */
export function drawThorax(
  density: Float32Array,
  t: PriorTables,
  py0: number,
  py1: number,
  ribPeriod: number,
  noduleX: number,
  noduleR13: number,
  noduleR06: number,
  heartBelowDome: number,
  kernel?: PriorKernel,
): void {
  const size = t.size;
  if (kernel && kernel.density === density && size % 4 === 0) {
    kernel.draw(
      density.byteOffset,
      size,
      py0,
      py1,
      t.colSin40.byteOffset,
      t.colBytes,
      t.lungRow.byteOffset,
      t.lungSpans.byteOffset,
      t.runs.byteOffset,
      ribPeriod,
      noduleX,
      noduleR13,
      noduleR06,
      heartBelowDome,
    );
    return;
  }
  const { colSin40, colCos40, colCos17, colSin17, colX, dome, ribBend, colOpacity, lungRow, lungSpans, runs } = t;
  // Float64 locals: mixed with a parameter of unknown representation in the loop, a double would
  // be boxed on every pixel.
  const period = ribPeriod + 0;
  const nx = noduleX + 0;
  const r13 = noduleR13 + 0;
  const r06 = noduleR06 + 0;
  const below = heartBelowDome + 0;
  for (let py = py0; py < py1; py++) {
    const r = LUNG_ROW.length * py;
    const y = lungRow[r + LUNG_ROW.y];
    const rowSin = lungRow[r + LUNG_ROW.sin];
    const rowCos = lungRow[r + LUNG_ROW.cos];
    const rowCos31 = lungRow[r + LUNG_ROW.cos31];
    const rowSin31 = lungRow[r + LUNG_ROW.sin31];
    const rowOpacity = lungRow[r + LUNG_ROW.opacity];
    const yRib = lungRow[r + LUNG_ROW.yRib];
    const dy2 = lungRow[r + LUNG_ROW.noduleDy2];
    const o = py * size;
    for (let side = 0; side < 2; side++) {
      const b = lungSpans[4 * py + 2 * side + 1];
      for (let px = lungSpans[4 * py + 2 * side]; px < b; px++) {
        if (y >= dome[px]) continue;
        const texture = (colSin40[px] * rowCos + colCos40[px] * rowSin) * (rowCos31 * colCos17[px] + rowSin31 * colSin17[px]);
        let d = 0.12 + 0.025 * texture;
        const tr = (yRib - ribBend[px]) / period;
        if (tr > 0 && tr - Math.floor(tr) < 0.22) d += 0.09;
        d += rowOpacity * colOpacity[px];
        if (dy2 >= 0) {
          const dx = colX[px] - nx;
          const rr = Math.sqrt(dx * dx + dy2); // Math.hypot allocates per call here
          if (rr < r13) d += 0.42 * Math.min(1, Math.max(0, (r13 - rr) / r06));
        }
        density[o + px] = d;
      }
    }
  }
  const inv = 1 / size;
  for (let py = 0; py < size; py++) {
    const y = (py + 0.5) * inv;
    const o = py * size;
    const m1 = runs[6 * py + 1];
    for (let px = runs[6 * py]; px < m1; px++) if (density[o + px] < 0.62) density[o + px] = 0.62;
    const h1 = runs[6 * py + 3];
    for (let px = runs[6 * py + 2]; px < h1; px++) if (y < dome[px] + below && density[o + px] < 0.62) density[o + px] = 0.62;
    const s1 = runs[6 * py + 5];
    for (let px = runs[6 * py + 4]; px < s1; px++) density[o + px] += 0.12;
  }
}

/** Clamps `density` (size×size) to [0, 1] and writes its cell averages into grid.out (see the header). */
export function clampIntoGrid(density: Float32Array, size: number, grid: PriorWorkspace): void {
  const { n, out, kernel } = grid;
  const f = size / n;
  // One call per image after the drawing: as fast as one per grid row while its rows are in L1.
  if (kernel && kernel.density === density && f % 4 === 0) kernel.grid(density.byteOffset, size, n, f, out.byteOffset, 1 / (f * f));
  else clampIntoGridJs(density, size, n, out);
}

function clampIntoGridJs(density: Float32Array, size: number, n: number, out: Float64Array): void {
  const f = size / n;
  const inv = 1 / (f * f);
  const at = (i: number): number => {
    const v = density[i];
    if (v > 0 && v < 1) return v;
    // Rare (a nodule on a consolidation over a rib).
    const c = v > 0 ? 1 : 0;
    density[i] = c;
    return c;
  };
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      let e = 0;
      let o = 0;
      for (let y = gy * f; y < gy * f + f; y++) {
        const row = y * size + gx * f;
        for (let k = 0; k < f; k += 4) {
          const p0 = at(row + k);
          const p1 = k + 1 < f ? at(row + k + 1) : 0;
          const p2 = k + 2 < f ? at(row + k + 2) : 0;
          const p3 = k + 3 < f ? at(row + k + 3) : 0;
          e += p0 + p2;
          o += p1 + p3;
        }
      }
      out[gy * n + gx] = (e + o) * inv;
    }
  }
}

// The kernel's `grid(density, size, n, f, out, inv)`, byte offsets of the density and the averages.
const P = { density: 0, size: 1, n: 2, f: 3, out: 4, inv: 5 };
const gridParams = [I32, I32, I32, I32, I32, F64];
const L = { g: 6, gx: 7, r: 8, c: 9, pg: 10, pc: 11, pr: 12, q: 13, rowBytes: 14, chunks: 15, pairs: 16, v: 17, acc: 18, acc2: 19 };

const f32x4Splat = (x: number): number[] => op.v128Const(new Uint8Array(Float32Array.of(x, x, x, x).buffer));
const advance = (ptr: number, by: number[]): number[] => [...op.get(ptr), ...by, ...op.i32Add, ...op.set(ptr)];

function gridBody(): number[] {
  /** The four pixels at q + offset clamped and written back, their (p0 + p2, p1 + p3) added to acc. */
  const chunk = (acc: number, offset: number) => [
    ...op.get(L.q),
    ...f32x4Splat(1),
    ...op.v128Zero,
    ...op.get(L.q),
    ...op.v128Load(offset),
    ...op.f32x4Pmax,
    ...op.f32x4Pmin,
    ...op.tee(L.v),
    ...op.v128Store(offset),
    ...op.get(acc),
    ...op.get(L.v),
    ...op.f64x2PromoteLowF32x4,
    ...op.get(L.v),
    ...op.get(L.v),
    ...op.i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
    ...op.f64x2PromoteLowF32x4,
    ...op.f64x2Add,
    ...op.f64x2Add,
    ...op.set(acc),
  ];
  const average = (acc: number) => [
    ...op.get(P.out),
    ...op.get(acc),
    ...op.f64x2ExtractLane(0),
    ...op.get(acc),
    ...op.f64x2ExtractLane(1),
    ...op.f64Add,
    ...op.get(P.inv),
    ...op.f64Mul,
    ...op.f64Store(),
    ...advance(P.out, op.i32(8)),
  ];
  // Cells of four pixels (the default), two at a time: each running sum depends on the last, so
  // two cells' chains overlap.
  const nextRow = [...advance(L.q, op.get(L.rowBytes))];
  const pairRow = [...chunk(L.acc, 0), ...chunk(L.acc2, 16), ...nextRow];
  const pair = [
    ...op.v128Zero,
    ...op.set(L.acc),
    ...op.v128Zero,
    ...op.set(L.acc2),
    ...op.get(L.pc),
    ...op.set(L.q),
    ...pairRow,
    ...pairRow,
    ...pairRow,
    ...pairRow,
    ...average(L.acc),
    ...average(L.acc2),
    ...advance(L.pc, op.i32(32)),
  ];
  const cell = [
    ...op.v128Zero,
    ...op.set(L.acc),
    ...op.get(L.pc),
    ...op.set(L.pr),
    ...countedLoop(L.r, P.f, [
      ...op.get(L.pr),
      ...op.set(L.q),
      ...countedLoop(L.c, L.chunks, [...chunk(L.acc, 0), ...advance(L.q, op.i32(16))]),
      ...advance(L.pr, op.get(L.rowBytes)),
    ]),
    ...average(L.acc),
    ...advance(L.pc, [...op.get(P.f), ...op.i32(2), ...op.i32Shl]),
  ];
  const code = [
    ...op.get(P.size),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.set(L.rowBytes),
    ...op.get(P.f),
    ...op.i32(2),
    ...op.i32ShrU,
    ...op.set(L.chunks),
    ...op.get(P.n),
    ...op.i32(1),
    ...op.i32ShrU,
    ...op.set(L.pairs),
    ...op.get(P.density),
    ...op.set(L.pg),
    ...countedLoop(L.g, P.n, [
      ...op.get(L.pg),
      ...op.set(L.pc),
      ...op.get(P.f),
      ...op.i32(4),
      ...op.i32Eq,
      ...op.get(P.n),
      ...op.i32(1),
      ...op.i32And,
      ...op.i32Eqz,
      ...op.i32And,
      ...op.if,
      ...countedLoop(L.gx, L.pairs, pair),
      ...op.else,
      ...countedLoop(L.gx, P.n, cell),
      ...op.end,
      ...advance(L.pg, [...op.get(L.rowBytes), ...op.get(P.f), ...op.i32Mul]),
    ]),
    ...op.end,
  ];
  return funcBody(
    [
      [11, I32],
      [3, V128],
    ],
    code,
  );
}

// The kernel's `draw`: drawThorax's arguments, tables as byte offsets (cols: the first column table).
const Q = {
  density: 0,
  size: 1,
  py0: 2,
  py1: 3,
  cols: 4,
  colBytes: 5,
  lungRow: 6,
  lungSpans: 7,
  runs: 8,
  period: 9,
  nx: 10,
  r13: 11,
  r06: 12,
  below: 13,
};
const drawParams = [I32, I32, I32, I32, I32, I32, I32, I32, I32, F64, F64, F64, F64, F64];
const drawI32 = ['py', 'a', 'b', 'px', 'prow', 'pf', 'pc', 'pd', 'o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7'] as const;
const drawV = [
  'y',
  'rowSin',
  'rowCos',
  'rowCos31',
  'rowSin31',
  'rowOpacity',
  'yRib',
  'dy2',
  'aV',
  'bV',
  'periodV',
  'nxV',
  'r13V',
  'r06V',
  'belowV',
  'd0',
  'd1',
  'm0',
  'm1',
  'tmp',
  'v',
] as const;
const M = {} as Record<(typeof drawI32)[number] | (typeof drawV)[number], number>;
[...drawI32, ...drawV].forEach((k, i) => (M[k] = drawParams.length + i));

const f64x2Splat = (x: number): number[] => op.v128Const(new Uint8Array(Float64Array.of(x, x).buffer));
/** Bytes 0–3 and 8–11 of two i64x2 masks: one i32x4 mask of their four lanes. */
const narrowMasks = op.i8x16Shuffle([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
/** The low halves of two f32x4 (from f32x4.demote_f64x2_zero): one f32x4. */
const joinLow = op.i8x16Shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
const highToLow = op.i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);

/** Column table k's two pixels (half h of the four at pc). */
const column = (k: number, h: number): number[] => [
  ...op.get(M.pc),
  ...(k > 0 ? [...op.get(M[`o${k}` as 'o1']), ...op.i32Add] : []),
  ...op.v128Load(16 * h),
];

/** The i32x4 mask of the four pixels at px that lie in the run [a, b) (aV, bV). */
const inRun = [
  ...op.get(M.px),
  ...op.i32x4Splat,
  ...op.v128Const(new Uint8Array(Int32Array.of(0, 1, 2, 3).buffer)),
  ...op.i32x4Add,
  ...op.tee(M.tmp),
  ...op.get(M.aV),
  ...op.i32x4GeS,
  ...op.get(M.tmp),
  ...op.get(M.bV),
  ...op.i32x4LtS,
  ...op.v128And,
];

/** The f64x2 masks v < 0.62 of the four f32 pixels in v. */
const below062 = [
  ...op.get(M.v),
  ...op.f64x2PromoteLowF32x4,
  ...f64x2Splat(0.62),
  ...op.f64x2Lt,
  ...op.get(M.v),
  ...op.get(M.v),
  ...highToLow,
  ...op.f64x2PromoteLowF32x4,
  ...f64x2Splat(0.62),
  ...op.f64x2Lt,
  ...narrowMasks,
];

/** Two pixels' d (half h of the four at px), as drawThorax's lung loop computes it; their dome mask into m0/m1. */
function lungHalf(h: number, nodule: boolean): number[] {
  return [
    ...op.get(M.y),
    ...column(5, h),
    ...op.f64x2Lt,
    ...op.set(h === 0 ? M.m0 : M.m1),
    // d = 0.12 + 0.025·texture
    ...f64x2Splat(0.12),
    ...f64x2Splat(0.025),
    ...column(0, h),
    ...op.get(M.rowCos),
    ...op.f64x2Mul,
    ...column(1, h),
    ...op.get(M.rowSin),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...op.get(M.rowCos31),
    ...column(2, h),
    ...op.f64x2Mul,
    ...op.get(M.rowSin31),
    ...column(3, h),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...op.f64x2Mul,
    ...op.f64x2Mul,
    ...op.f64x2Add,
    // + 0.09 on a rib: t = (yRib − bend)/period, t > 0 and t − floor(t) < 0.22
    ...op.get(M.yRib),
    ...column(6, h),
    ...op.f64x2Sub,
    ...op.get(M.periodV),
    ...op.f64x2Div,
    ...op.set(M.tmp),
    ...op.get(M.tmp),
    ...op.v128Zero,
    ...op.f64x2Gt,
    ...op.get(M.tmp),
    ...op.get(M.tmp),
    ...op.f64x2Floor,
    ...op.f64x2Sub,
    ...f64x2Splat(0.22),
    ...op.f64x2Lt,
    ...op.v128And,
    ...f64x2Splat(0.09),
    ...op.v128And,
    ...op.f64x2Add,
    // + the consolidation
    ...op.get(M.rowOpacity),
    ...column(7, h),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    // + 0.42·min(1, max(0, (r13 − r)/r06)) where r = |(x, y) − nodule| < r13
    ...(nodule
      ? [
          ...column(4, h),
          ...op.get(M.nxV),
          ...op.f64x2Sub,
          ...op.tee(M.tmp),
          ...op.get(M.tmp),
          ...op.f64x2Mul,
          ...op.get(M.dy2),
          ...op.f64x2Add,
          ...op.f64x2Sqrt,
          ...op.set(M.tmp),
          ...f64x2Splat(1),
          ...op.v128Zero,
          ...op.get(M.r13V),
          ...op.get(M.tmp),
          ...op.f64x2Sub,
          ...op.get(M.r06V),
          ...op.f64x2Div,
          ...op.f64x2Pmax,
          ...op.f64x2Pmin,
          ...f64x2Splat(0.42),
          ...op.f64x2Mul,
          ...op.get(M.tmp),
          ...op.get(M.r13V),
          ...op.f64x2Lt,
          ...op.v128And,
          ...op.f64x2Add,
        ]
      : []),
  ];
}

/**
 * The four pixels at px (pd: their address, v: their values) become `value` where `mask` holds
 * (both leave one v128 on the stack).
 */
const blend = (value: number[], mask: number[]): number[] => [
  ...op.get(M.pd),
  ...value,
  ...op.get(M.v),
  ...mask,
  ...op.v128Bitselect,
  ...op.v128Store(),
];

/** The four pixels at px: the lung where they are in the run and above the dome. */
const lungQuad = (nodule: boolean): number[] => [
  ...lungHalf(0, nodule),
  ...op.set(M.d0),
  ...lungHalf(1, nodule),
  ...op.set(M.d1),
  ...blend(
    [...op.get(M.d0), ...op.f32x4DemoteF64x2Zero, ...op.get(M.d1), ...op.f32x4DemoteF64x2Zero, ...joinLow],
    [...op.get(M.m0), ...op.get(M.m1), ...narrowMasks, ...inRun, ...op.v128And],
  ),
];

/** Mediastinum: at least 0.62 in the run. */
const mediastinumQuad = blend(f32x4Splat(0.62), [...below062, ...inRun, ...op.v128And]);

/** Heart: at least 0.62 in the run where y < dome + heartBelowDome. */
const heartQuad = blend(f32x4Splat(0.62), [
  ...below062,
  ...inRun,
  ...op.v128And,
  ...op.get(M.y),
  ...column(5, 0),
  ...op.get(M.belowV),
  ...op.f64x2Add,
  ...op.f64x2Lt,
  ...op.get(M.y),
  ...column(5, 1),
  ...op.get(M.belowV),
  ...op.f64x2Add,
  ...op.f64x2Lt,
  ...narrowMasks,
  ...op.v128And,
]);

/** Spine: + 0.12 in the run. */
const spineQuad = blend(
  [
    ...op.get(M.v),
    ...op.f64x2PromoteLowF32x4,
    ...f64x2Splat(0.12),
    ...op.f64x2Add,
    ...op.f32x4DemoteF64x2Zero,
    ...op.get(M.v),
    ...op.get(M.v),
    ...highToLow,
    ...op.f64x2PromoteLowF32x4,
    ...f64x2Splat(0.12),
    ...op.f64x2Add,
    ...op.f32x4DemoteF64x2Zero,
    ...joinLow,
  ],
  inRun,
);

/**
 * The run [i32 at `at`, i32 at `at` + 4) of row py (prow), four pixels at a time from the four
 * holding its first: px, pc (the column tables at px), pd and v (the pixels) set for `quad`.
 */
function run(at: number[], quad: number[]): number[] {
  return [
    ...at,
    ...op.tee(M.pd),
    ...op.i32Load(),
    ...op.set(M.a),
    ...op.get(M.pd),
    ...op.i32Load(4),
    ...op.set(M.b),
    ...op.get(M.a),
    ...op.get(M.b),
    ...op.i32LtS,
    ...op.if,
    ...op.get(M.a),
    ...op.i32x4Splat,
    ...op.set(M.aV),
    ...op.get(M.b),
    ...op.i32x4Splat,
    ...op.set(M.bV),
    ...op.get(M.a),
    ...op.i32(-4),
    ...op.i32And,
    ...op.set(M.px),
    ...op.block,
    ...op.loop,
    ...op.get(M.px),
    ...op.get(M.b),
    ...op.i32GeS,
    ...op.brIf(1),
    ...op.get(Q.cols),
    ...op.get(M.px),
    ...op.i32(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(M.pc),
    ...op.get(M.prow),
    ...op.get(M.px),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.tee(M.pd),
    ...op.v128Load(),
    ...op.set(M.v),
    ...quad,
    ...op.get(M.px),
    ...op.i32(4),
    ...op.i32Add,
    ...op.set(M.px),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
}

/** for (py = from; py < to; py++) body, with prow the row's first pixel. */
function rows(from: number[], to: number, body: number[]): number[] {
  return [
    ...from,
    ...op.set(M.py),
    ...op.block,
    ...op.loop,
    ...op.get(M.py),
    ...op.get(to),
    ...op.i32GeS,
    ...op.brIf(1),
    ...op.get(Q.density),
    ...op.get(M.py),
    ...op.get(Q.size),
    ...op.i32Mul,
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(M.prow),
    ...body,
    ...op.get(M.py),
    ...op.i32(1),
    ...op.i32Add,
    ...op.set(M.py),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

function drawBody(): number[] {
  const splatRow = (local: number, field: number) => [...op.get(M.pf), ...op.v128Load64Splat(8 * field), ...op.set(local)];
  const lungRun = (k: number) => {
    const at = [...op.get(Q.lungSpans), ...op.get(M.py), ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.i32(8 * k), ...op.i32Add];
    return [
      ...op.get(M.pf),
      ...op.f64Load(8 * LUNG_ROW.noduleDy2),
      ...op.f64(0),
      ...op.f64Ge,
      ...op.if,
      ...run(at, lungQuad(true)),
      ...op.else,
      ...run(at, lungQuad(false)),
      ...op.end,
    ];
  };
  const lungRow = [
    ...op.get(Q.lungRow),
    ...op.get(M.py),
    ...op.i32(Math.log2(8 * LUNG_ROW.length)),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(M.pf),
    ...splatRow(M.y, LUNG_ROW.y),
    ...splatRow(M.rowSin, LUNG_ROW.sin),
    ...splatRow(M.rowCos, LUNG_ROW.cos),
    ...splatRow(M.rowCos31, LUNG_ROW.cos31),
    ...splatRow(M.rowSin31, LUNG_ROW.sin31),
    ...splatRow(M.rowOpacity, LUNG_ROW.opacity),
    ...splatRow(M.yRib, LUNG_ROW.yRib),
    ...splatRow(M.dy2, LUNG_ROW.noduleDy2),
    ...lungRun(0),
    ...lungRun(1),
  ];
  const runAt = (k: number) => [
    ...op.get(Q.runs),
    ...op.get(M.py),
    ...op.i32(24),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.i32(8 * k),
    ...op.i32Add,
  ];
  const overRow = [
    // y = (py + ½)·(1/size), as drawThorax computes it.
    ...op.get(M.py),
    ...op.f64ConvertI32S,
    ...op.f64(0.5),
    ...op.f64Add,
    ...op.f64(1),
    ...op.get(Q.size),
    ...op.f64ConvertI32S,
    ...op.f64Div,
    ...op.f64Mul,
    ...op.f64x2Splat,
    ...op.set(M.y),
    ...run(runAt(0), mediastinumQuad),
    ...run(runAt(1), heartQuad),
    ...run(runAt(2), spineQuad),
  ];
  const splat = (param: number, local: number) => [...op.get(param), ...op.f64x2Splat, ...op.set(local)];
  const code = [
    ...[1, 2, 3, 4, 5, 6, 7].flatMap((k) => [...op.get(Q.colBytes), ...op.i32(k), ...op.i32Mul, ...op.set(M[`o${k}` as 'o1'])]),
    ...splat(Q.period, M.periodV),
    ...splat(Q.nx, M.nxV),
    ...splat(Q.r13, M.r13V),
    ...splat(Q.r06, M.r06V),
    ...splat(Q.below, M.belowV),
    ...rows(op.get(Q.py0), Q.py1, lungRow),
    ...rows(op.i32(0), Q.size, overRow),
    ...op.end,
  ];
  return funcBody(
    [
      [drawI32.length, I32],
      [drawV.length, V128],
    ],
    code,
  );
}

/** The kernel module's bytes: `grid` and `draw`, on an imported memory m.memory. */
export function moduleBytes(): Uint8Array {
  return memoryModule([
    { name: 'grid', params: gridParams, body: gridBody() },
    { name: 'draw', params: drawParams, body: drawBody() },
  ]);
}
