// Band sums of 16-bit stored pixels with WebAssembly SIMD: the inner loop of dicomGrid for the
// usual case (a whole multiple of 8 pixels per grid cell). Eight pixels per instruction instead of
// two per JavaScript word brings the grid below the cost of reading the file.
//
// The module is small enough to write out here, instruction by instruction (wasm-emit.ts), so
// nothing binary is shipped or fetched: `moduleBytes()` emits it, `bandSums()` compiles it once per
// process (Node ≥ 16 has SIMD on by default) and returns undefined where WebAssembly or SIMD is
// unavailable, in which case the caller keeps its JavaScript path. Tests compare both paths on
// every case.
//
// Exported function, per band of rows (all i32):
//   sums(src, rowBytes, rows, cells, chunks, mask, bias, acc)
// For each of `rows` rows starting at byte `src` (stride `rowBytes`), each of `cells` cells of
// `chunks` × 8 pixels: v = (pixel ^ bias) & mask per 16-bit lane, pairwise-added into 4 i32 lanes
// of the cell's accumulator at `acc + 16·cell` (zeroed first). `sumsSwapped` first swaps the two
// bytes of every pixel (big-endian frames).
import {
  compileSimd,
  countedLoop,
  funcBody,
  funcType,
  I32,
  instantiate,
  moduleOf,
  name,
  op,
  section,
  uleb,
  V128,
  vec,
  type WasmMemory,
} from './wasm-emit.ts';

const swapBytes = op.i8x16Shuffle([1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14]);

// Parameters 0–7, then locals.
const P = { src: 0, rowBytes: 1, rows: 2, cells: 3, chunks: 4, mask: 5, bias: 6, acc: 7 };
const L = { r: 8, c: 9, k: 10, p: 11, q: 12, a: 13, v: 14, maskV: 15, biasV: 16 };

function sumsBody(swap: boolean): number[] {
  const pixelChunk = [
    ...op.get(L.p),
    ...op.v128Load(),
    ...(swap ? [...op.tee(L.v), ...op.get(L.v), ...swapBytes] : []),
    ...op.get(L.biasV),
    ...op.v128Xor,
    ...op.get(L.maskV),
    ...op.v128And,
    ...op.i32x4ExtaddPairwiseI16x8U,
    ...op.get(L.a),
    ...op.i32x4Add,
    ...op.set(L.a),
    ...op.get(L.p),
    ...op.i32(16),
    ...op.i32Add,
    ...op.set(L.p),
  ];
  const cell = [
    ...op.get(L.q),
    ...op.v128Load(),
    ...op.set(L.a),
    ...countedLoop(L.k, P.chunks, pixelChunk),
    ...op.get(L.q),
    ...op.get(L.a),
    ...op.v128Store(),
    ...op.get(L.q),
    ...op.i32(16),
    ...op.i32Add,
    ...op.set(L.q),
  ];
  const row = [
    ...op.get(P.src),
    ...op.get(L.r),
    ...op.get(P.rowBytes),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.set(L.p),
    ...op.get(P.acc),
    ...op.set(L.q),
    ...countedLoop(L.c, P.cells, cell),
  ];
  const zero = [...op.get(P.acc), ...op.get(L.c), ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.v128Zero, ...op.v128Store()];
  const code = [
    ...op.get(P.mask),
    ...op.i16x8Splat,
    ...op.set(L.maskV),
    ...op.get(P.bias),
    ...op.i16x8Splat,
    ...op.set(L.biasV),
    ...countedLoop(L.c, P.cells, zero),
    ...countedLoop(L.r, P.rows, row),
    ...op.end,
  ];
  return funcBody(
    [
      [5, I32],
      [4, V128],
    ],
    code,
  );
}

/** The module's bytes. */
export function moduleBytes(): Uint8Array {
  const type = section(1, vec([funcType(new Array<number>(8).fill(I32), [])]));
  const funcs = section(3, vec([[0], [0]]));
  const memory = section(5, vec([[0x00, ...uleb(1)]]));
  const exports = section(
    7,
    vec([
      [...name('memory'), 0x02, 0],
      [...name('sums'), 0x00, 0],
      [...name('sumsSwapped'), 0x00, 1],
    ]),
  );
  const code = section(10, vec([sumsBody(false), sumsBody(true)]));
  return moduleOf(type, funcs, memory, exports, code);
}

type SumsFn = (src: number, rowBytes: number, rows: number, cells: number, chunks: number, mask: number, bias: number, acc: number) => void;

export interface BandSums {
  memory: WasmMemory;
  sums: SumsFn;
  sumsSwapped: SumsFn;
}

let instance: BandSums | null | undefined;

/** The compiled kernel, or undefined where WebAssembly SIMD is not available (or FEDSYNTH_NO_SIMD=1). */
export function bandSums(): BandSums | undefined {
  if (instance === undefined) {
    const module = compileSimd(moduleBytes());
    instance = module ? (instantiate(module) as BandSums) : null;
  }
  return instance ?? undefined;
}
