// The per-pixel passes of the radiograph prior (radiograph-prior.ts) on the model grid: in
// WebAssembly SIMD (written out instruction by instruction with wasm-emit.ts) on the pixel
// workspace's memory (radiograph-pixels.ts), where the prior is drawn, one call per image; with a
// JavaScript path of the same arithmetic for other buffers, cell widths and where SIMD is off.
//
// The grid pass clamps each pixel to [0, 1] (written back: c = v if 0 < v < 1, else 1 if v > 0,
// else 0, which is f32x4 pmin(1, pmax(0, v))) and writes each cell's area average. Summation
// order, the same in both paths so that they give the same bits: a cell's pixel rows in order,
// each in chunks of four pixels p0…p3 (a short last chunk padded with zeros); two running sums in
// f64, e += p0 + p2 and o += p1 + p3, chunk after chunk, row after row (in f64x2: the chunk's low
// and high halves added, then added to the running pair); the average is (e + o)·(1/f²). The
// kernel takes cells whose width f is a multiple of 4.

import { compileSimd, countedLoop, F64, funcBody, funcType, I32, instantiate, moduleOf, name, op, section, uleb, V128, vec, type WasmMemory } from './wasm-emit.ts';

/** A grid for the prior's pass (radiograph-prior.ts renderPriorRadiograph). */
export interface PriorGrid {
  n: number;
  /** n×n, row-major: each cell's area average of the clamped density. */
  out: Float64Array;
  /** Set when the prior is drawn into `kernel.density` and the pass runs in SIMD. */
  kernel?: PriorKernel;
}

type GridFn = (density: number, size: number, n: number, f: number, out: number, inv: number) => void;

export interface PriorKernel {
  /** The density view (in the kernel's memory) the kernel reads and writes. */
  readonly density: Float32Array;
  readonly grid: GridFn;
}

/** Bytes of the prior's buffers in a workspace for size×size images on an n×n grid. */
export const priorBytes = (size: number, n: number): number => 8 * n * n;

let compiled: object | null | undefined;

/**
 * The prior's grid in `buffer` at byte `at` (priorBytes long, 8-byte aligned), with the kernel
 * when `memory` (whose buffer that is, holding `density`) is given and SIMD is available.
 */
export function priorGridIn(buffer: ArrayBuffer, at: number, size: number, n: number, density: Float32Array, memory?: WasmMemory): PriorGrid {
  const out = new Float64Array(buffer, at, n * n);
  if (memory && compiled === undefined) compiled = compileSimd(moduleBytes()) ?? null;
  if (!memory || !compiled || density.buffer !== memory.buffer) return { n, out };
  const fns = instantiate(compiled, memory) as { grid: GridFn };
  return { n, out, kernel: { density, grid: fns.grid } };
}

/** Clamps `density` (size×size) to [0, 1] and writes its cell averages into grid.out (see the header). */
export function clampIntoGrid(density: Float32Array, size: number, grid: PriorGrid): void {
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

// The kernel: grid(density, size, n, f, out, inv), byte offsets of the density and the averages.
const P = { density: 0, size: 1, n: 2, f: 3, out: 4, inv: 5 };
const gridParams = [I32, I32, I32, I32, I32, F64];
const L = { g: 6, gx: 7, r: 8, c: 9, pg: 10, pc: 11, pr: 12, q: 13, rowBytes: 14, chunks: 15, pairs: 16, v: 17, acc: 18, acc2: 19 };

const f32x4Splat = (x: number): number[] => op.v128Const(new Uint8Array(Float32Array.of(x, x, x, x).buffer));
const advance = (ptr: number, by: number[]): number[] => [...op.get(ptr), ...by, ...op.i32Add, ...op.set(ptr)];

function gridBody(): number[] {
  /** The four pixels at q + offset clamped and written back, their (p0 + p2, p1 + p3) added to acc. */
  const chunk = (acc: number, offset: number) => [
    ...op.get(L.q), ...f32x4Splat(1), ...op.v128Zero, ...op.get(L.q), ...op.v128Load(offset), ...op.f32x4Pmax, ...op.f32x4Pmin, ...op.tee(L.v), ...op.v128Store(offset),
    ...op.get(acc),
    ...op.get(L.v), ...op.f64x2PromoteLowF32x4,
    ...op.get(L.v), ...op.get(L.v), ...op.i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]), ...op.f64x2PromoteLowF32x4,
    ...op.f64x2Add, ...op.f64x2Add, ...op.set(acc),
  ];
  const average = (acc: number) => [
    ...op.get(P.out),
    ...op.get(acc), ...op.f64x2ExtractLane(0), ...op.get(acc), ...op.f64x2ExtractLane(1), ...op.f64Add, ...op.get(P.inv), ...op.f64Mul,
    ...op.f64Store(),
    ...advance(P.out, op.i32(8)),
  ];
  // Cells of four pixels (the default), two at a time: each running sum depends on the last, so
  // two cells' chains overlap.
  const nextRow = [...advance(L.q, op.get(L.rowBytes))];
  const pairRow = [...chunk(L.acc, 0), ...chunk(L.acc2, 16), ...nextRow];
  const pair = [
    ...op.v128Zero, ...op.set(L.acc), ...op.v128Zero, ...op.set(L.acc2),
    ...op.get(L.pc), ...op.set(L.q),
    ...pairRow, ...pairRow, ...pairRow, ...pairRow,
    ...average(L.acc), ...average(L.acc2),
    ...advance(L.pc, op.i32(32)),
  ];
  const cell = [
    ...op.v128Zero, ...op.set(L.acc),
    ...op.get(L.pc), ...op.set(L.pr),
    ...countedLoop(L.r, P.f, [
      ...op.get(L.pr), ...op.set(L.q),
      ...countedLoop(L.c, L.chunks, [...chunk(L.acc, 0), ...advance(L.q, op.i32(16))]),
      ...advance(L.pr, op.get(L.rowBytes)),
    ]),
    ...average(L.acc),
    ...advance(L.pc, [...op.get(P.f), ...op.i32(2), ...op.i32Shl]),
  ];
  const code = [
    ...op.get(P.size), ...op.i32(2), ...op.i32Shl, ...op.set(L.rowBytes),
    ...op.get(P.f), ...op.i32(2), ...op.i32ShrU, ...op.set(L.chunks),
    ...op.get(P.n), ...op.i32(1), ...op.i32ShrU, ...op.set(L.pairs),
    ...op.get(P.density), ...op.set(L.pg),
    ...countedLoop(L.g, P.n, [
      ...op.get(L.pg), ...op.set(L.pc),
      ...op.get(P.f), ...op.i32(4), ...op.i32Eq, ...op.get(P.n), ...op.i32(1), ...op.i32And, ...op.i32Eqz, ...op.i32And, ...op.if,
      ...countedLoop(L.gx, L.pairs, pair),
      ...op.else,
      ...countedLoop(L.gx, P.n, cell),
      ...op.end,
      ...advance(L.pg, [...op.get(L.rowBytes), ...op.get(P.f), ...op.i32Mul]),
    ]),
    ...op.end,
  ];
  return funcBody([[11, I32], [3, V128]], code);
}

/** The kernel module's bytes: `grid`, on an imported memory m.memory. */
export function moduleBytes(): Uint8Array {
  const type = section(1, vec([funcType(gridParams, [])]));
  const imports = section(2, vec([[...name('m'), ...name('memory'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec([[0]]));
  const exports = section(7, vec([[...name('grid'), 0x00, 0]]));
  const code = section(10, vec([gridBody()]));
  return moduleOf(type, imports, funcs, exports, code);
}
