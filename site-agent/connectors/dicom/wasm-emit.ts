// Writing small WebAssembly SIMD modules instruction by instruction, shared by the image pixel
// kernels (the sites' DICOM band sums, the synthetic radiograph's pixel pass): nothing binary is
// shipped or fetched, and each module is compiled once per thread where SIMD is available.

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (32-bit constants). */
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

export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];

// Value types.
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** A function type (for the type section). */
export const funcType = (params: number[], results: number[]): number[] => [
  0x60,
  ...vec(params.map((t) => [t])),
  ...vec(results.map((t) => [t])),
];

/** A code-section entry: locals as [count, type] runs, then the body (which must end with op.end). */
export function funcBody(locals: [number, number][], code: number[]): number[] {
  const fn = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...code];
  return [...uleb(fn.length), ...fn];
}

/** The module header and sections, in the order WebAssembly requires them. */
export const moduleOf = (...sections: number[][]): Uint8Array =>
  Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);

/** A module of exported functions (no results) working on one imported memory, m.memory. */
export function memoryModule(fns: { name: string; params: number[]; body: number[] }[]): Uint8Array {
  const type = section(1, vec(fns.map((f) => funcType(f.params, []))));
  const imports = section(2, vec([[...name('m'), ...name('memory'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec(fns.map((_, i) => [i])));
  const exports = section(7, vec(fns.map((f, i) => [...name(f.name), 0x00, i])));
  const code = section(10, vec(fns.map((f) => f.body)));
  return moduleOf(type, imports, funcs, exports, code);
}

// Memory immediates: alignment hint 0 (any alignment is valid), then the constant offset.
const mem = (code: number, offset: number): number[] => [code, 0x00, ...uleb(offset)];
const simd = (code: number): number[] => [0xfd, ...uleb(code)];
const simdMem = (code: number, offset: number): number[] => [...simd(code), 0x00, ...uleb(offset)];

// Opcodes (WebAssembly core 2.0 with the fixed-width SIMD instructions), named as in the spec.
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32Load: (offset = 0) => mem(0x28, offset),
  f64Load: (offset = 0) => mem(0x2b, offset),
  f64Store: (offset = 0) => mem(0x39, offset),
  i32: (n: number) => [0x41, ...sleb(n)],
  f64: (x: number) => [0x44, ...new Uint8Array(Float64Array.of(x).buffer)],
  i32Eqz: [0x45],
  i32Eq: [0x46],
  i32LtS: [0x48],
  i32GtS: [0x4a],
  i32GeS: [0x4e],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  i32ShrU: [0x76],
  f64Ge: [0x66],
  f64Add: [0xa0],
  f64Mul: [0xa2],
  f64Div: [0xa3],
  f64ConvertI32S: [0xb7],
  f64ConvertI32U: [0xb8],
  /** memory.fill(dest, byte, length) of memory 0. */
  memoryFill: [0xfc, ...uleb(11), 0x00],
  v128Load: (offset = 0) => simdMem(0x00, offset),
  v128Store: (offset = 0) => simdMem(0x0b, offset),
  v128Load64Splat: (offset = 0) => simdMem(0x0a, offset),
  v128Load64Zero: (offset = 0) => simdMem(0x5d, offset),
  v128Store64Lane: (lane: number, offset = 0) => [...simdMem(0x5b, offset), lane],
  v128Const: (bytes: ArrayLike<number>) => [...simd(0x0c), ...Array.from(bytes)],
  v128Zero: [...simd(0x0c), ...new Array<number>(16).fill(0)],
  /** i8x16.shuffle: byte i of the result is byte lanes[i] of the two operands (0–15 first, 16–31 second). */
  i8x16Shuffle: (lanes: number[]) => [...simd(0x0d), ...lanes],
  i16x8Splat: simd(0x10),
  i32x4Splat: simd(0x11),
  f64x2Splat: simd(0x14),
  f64x2ExtractLane: (lane: number) => [...simd(0x21), lane],
  i32x4LtS: simd(0x39),
  i32x4GtS: simd(0x3b),
  i32x4GeS: simd(0x3f),
  f64x2Lt: simd(0x49),
  f64x2Gt: simd(0x4a),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Xor: simd(0x51),
  v128Bitselect: simd(0x52),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  f64x2Floor: simd(0x75),
  i32x4ExtaddPairwiseI16x8U: simd(0x7f),
  i16x8NarrowI32x4U: simd(0x86),
  i32x4Shl: simd(0xab),
  i32x4ShrU: simd(0xad),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  i32x4MinS: simd(0xb6),
  i32x4MaxS: simd(0xb8),
  f32x4Pmin: simd(0xea),
  f32x4Pmax: simd(0xeb),
  f64x2Sqrt: simd(0xef),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  f64x2Div: simd(0xf3),
  f64x2Pmin: simd(0xf6),
  f64x2Pmax: simd(0xf7),
  f64x2ConvertLowI32x4S: simd(0xfe),
  f64x2ConvertLowI32x4U: simd(0xff),
};

/** `for (x = 0; x < limit; x++) body` as block/loop (x and limit are i32 locals, compared unsigned). */
export function countedLoop(x: number, limit: number, body: number[]): number[] {
  return [
    ...op.i32(0),
    ...op.set(x),
    ...op.block,
    ...op.loop,
    ...op.get(x),
    ...op.get(limit),
    ...op.i32GeU,
    ...op.brIf(1),
    ...body,
    ...op.get(x),
    ...op.i32(1),
    ...op.i32Add,
    ...op.set(x),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/** The parts of the WebAssembly API used here (the project compiles without the DOM typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports?: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}

const wasmApi = (): WasmApi | undefined => (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/**
 * The compiled module, or undefined where WebAssembly SIMD is not available or FEDSYNTH_NO_SIMD=1
 * (the callers then keep their JavaScript paths).
 */
export function compileSimd(bytes: Uint8Array): object | undefined {
  const wasm = wasmApi();
  if (process.env.FEDSYNTH_NO_SIMD === '1' || !wasm) return undefined;
  try {
    return wasm.validate(bytes) ? new wasm.Module(bytes) : undefined;
  } catch {
    return undefined;
  }
}

/** An instance of a module from `compileSimd`, with `memory` (when given) imported as m.memory. */
export function instantiate(module: object, memory?: WasmMemory): unknown {
  return new (wasmApi()!.Instance)(module, memory ? { m: { memory } } : {}).exports;
}

/** A memory of `pages` × 64 KiB that nothing grows, so views on it stay attached. */
export function fixedMemory(pages: number): WasmMemory {
  return new (wasmApi()!.Memory)({ initial: pages });
}
