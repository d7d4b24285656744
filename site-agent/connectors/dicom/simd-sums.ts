// Band sums of 16-bit stored pixels with WebAssembly SIMD: the inner loop of dicomGrid for the
// usual case (a whole multiple of 8 pixels per grid cell). Eight pixels per instruction instead of
// two per JavaScript word brings the grid below the cost of reading the file.
//
// The module is small enough to write out here, instruction by instruction, so nothing binary is
// shipped or fetched: `moduleBytes()` emits it, `bandSums()` compiles it once per process (Node ≥ 16
// has SIMD on by default) and returns undefined where WebAssembly or SIMD is unavailable, in which
// case the caller keeps its JavaScript path. Tests compare both paths on every case.
//
// Exported function, per band of rows (all i32):
//   sums(src, rowBytes, rows, cells, chunks, mask, bias, acc)
// For each of `rows` rows starting at byte `src` (stride `rowBytes`), each of `cells` cells of
// `chunks` × 8 pixels: v = (pixel ^ bias) & mask per 16-bit lane, pairwise-added into 4 i32 lanes
// of the cell's accumulator at `acc + 16·cell` (zeroed first). `sumsSwapped` first swaps the two
// bytes of every pixel (big-endian frames).

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (small constants only). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];

// Opcodes (WebAssembly core 2.0 and the fixed-width SIMD proposal, now part of the standard).
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (n: number) => [0x41, ...sleb(n)],
  geU: [0x4f],
  add: [0x6a],
  mul: [0x6c],
  shl: [0x74],
  v128Load: [0xfd, ...uleb(0x00), 0x00, 0x00],
  v128Store: [0xfd, ...uleb(0x0b), 0x00, 0x00],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  swapBytes: [0xfd, ...uleb(0x0d), 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14],
  i16x8Splat: [0xfd, ...uleb(0x10)],
  and: [0xfd, ...uleb(0x4e)],
  xor: [0xfd, ...uleb(0x51)],
  extaddPairwiseU: [0xfd, ...uleb(0x7f)],
  i32x4Add: [0xfd, ...uleb(0xae)],
};

// Parameters 0–7, then locals.
const P = { src: 0, rowBytes: 1, rows: 2, cells: 3, chunks: 4, mask: 5, bias: 6, acc: 7 };
const L = { r: 8, c: 9, k: 10, p: 11, q: 12, a: 13, v: 14, maskV: 15, biasV: 16 };

/** `for (x = 0; x < limit; x++) body` as block/loop. */
function countedLoop(x: number, limit: number, body: number[]): number[] {
  return [
    ...op.i32(0), ...op.set(x),
    ...op.block, ...op.loop,
    ...op.get(x), ...op.get(limit), ...op.geU, ...op.brIf(1),
    ...body,
    ...op.get(x), ...op.i32(1), ...op.add, ...op.set(x),
    ...op.br(0),
    ...op.end, ...op.end,
  ];
}

function sumsBody(swap: boolean): number[] {
  const pixelChunk = [
    ...op.get(L.p), ...op.v128Load,
    ...(swap ? [...op.tee(L.v), ...op.get(L.v), ...op.swapBytes] : []),
    ...op.get(L.biasV), ...op.xor, ...op.get(L.maskV), ...op.and,
    ...op.extaddPairwiseU,
    ...op.get(L.a), ...op.i32x4Add, ...op.set(L.a),
    ...op.get(L.p), ...op.i32(16), ...op.add, ...op.set(L.p),
  ];
  const cell = [
    ...op.get(L.q), ...op.v128Load, ...op.set(L.a),
    ...countedLoop(L.k, P.chunks, pixelChunk),
    ...op.get(L.q), ...op.get(L.a), ...op.v128Store,
    ...op.get(L.q), ...op.i32(16), ...op.add, ...op.set(L.q),
  ];
  const row = [
    ...op.get(P.src), ...op.get(L.r), ...op.get(P.rowBytes), ...op.mul, ...op.add, ...op.set(L.p),
    ...op.get(P.acc), ...op.set(L.q),
    ...countedLoop(L.c, P.cells, cell),
  ];
  const zero = [...op.get(P.acc), ...op.get(L.c), ...op.i32(4), ...op.shl, ...op.add, ...op.v128Zero, ...op.v128Store];
  const code = [
    ...op.get(P.mask), ...op.i16x8Splat, ...op.set(L.maskV),
    ...op.get(P.bias), ...op.i16x8Splat, ...op.set(L.biasV),
    ...countedLoop(L.c, P.cells, zero),
    ...countedLoop(L.r, P.rows, row),
    ...op.end,
  ];
  const locals = vec([[5, I32], [4, V128]]);
  const fn = [...locals, ...code];
  return [...uleb(fn.length), ...fn];
}

/** The module's bytes. */
export function moduleBytes(): Uint8Array {
  const type = section(1, vec([[0x60, ...vec(new Array<number[]>(8).fill([I32])), ...vec([])]]));
  const funcs = section(3, vec([[0], [0]]));
  const memory = section(5, vec([[0x00, ...uleb(1)]]));
  const exports = section(7, vec([
    [...name('memory'), 0x02, 0],
    [...name('sums'), 0x00, 0],
    [...name('sumsSwapped'), 0x00, 1],
  ]));
  const code = section(10, vec([sumsBody(false), sumsBody(true)]));
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...funcs, ...memory, ...exports, ...code]);
}

type SumsFn = (src: number, rowBytes: number, rows: number, cells: number, chunks: number, mask: number, bias: number, acc: number) => void;

/** The parts of the WebAssembly API used here (the project compiles without the DOM typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export interface BandSums {
  memory: WasmMemory;
  sums: SumsFn;
  sumsSwapped: SumsFn;
}

let instance: BandSums | null | undefined;

/** The compiled kernel, or undefined where WebAssembly SIMD is not available (or FEDSYNTH_NO_SIMD=1). */
export function bandSums(): BandSums | undefined {
  if (instance === undefined) {
    instance = null;
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (process.env.FEDSYNTH_NO_SIMD !== '1' && wasm) {
      try {
        const bytes = moduleBytes();
        if (wasm.validate(bytes)) instance = new wasm.Instance(new wasm.Module(bytes)).exports as BandSums;
      } catch {
        instance = null;
      }
    }
  }
  return instance ?? undefined;
}
