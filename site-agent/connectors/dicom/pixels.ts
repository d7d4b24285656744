// Pure pixel helpers: area-averaging resampling and normalisation to [0, 1].

import { bandSums } from './simd-sums.ts';

/** Which kernels resampleStoredToGrid may use; tests switch SIMD off to exercise the JavaScript lanes. */
export const pixelKernels = { simd: true };

export interface GridSize {
  rows: number;
  cols: number;
}

/**
 * Box-filter weights mapping `n` source cells onto `m` target cells of equal total extent:
 * target cell j covers source interval [j*n/m, (j+1)*n/m). Returns, per target cell, the source
 * indices it overlaps and the overlap length divided by the cell's width (weights sum to 1).
 */
interface BoxWeights {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array[];
}
const boxCache = new Map<string, BoxWeights>();
function boxWeights(n: number, m: number): BoxWeights {
  const key = `${n}:${m}`;
  let w = boxCache.get(key);
  if (!w) {
    // Sites see a handful of distinct image sizes; the cache stays tiny.
    if (boxCache.size > 64) boxCache.clear();
    w = computeBoxWeights(n, m);
    boxCache.set(key, w);
  }
  return w;
}
function computeBoxWeights(n: number, m: number): BoxWeights {
  const start = new Int32Array(m);
  const count = new Int32Array(m);
  const weights: Float64Array[] = [];
  const scale = n / m;
  for (let j = 0; j < m; j++) {
    const a = j * scale;
    const b = (j + 1) * scale;
    const i0 = Math.floor(a);
    const i1 = Math.min(n, Math.ceil(b));
    const w = new Float64Array(Math.max(1, i1 - i0));
    for (let i = i0; i < i1; i++) w[i - i0] = (Math.min(b, i + 1) - Math.max(a, i)) / scale;
    start[j] = i0;
    count[j] = i1 - i0;
    weights.push(w);
  }
  return { start, count, weights };
}

/**
 * Resamples a row-major image to `targetSize` (a square side, or rows × cols) by area averaging:
 * each target pixel is the mean of the source area it covers, fractional overlaps weighted. Works
 * for downsampling and upsampling (which becomes nearest-area replication).
 */
export function resampleToGrid(pixels: ArrayLike<number>, rows: number, cols: number, targetSize: number | GridSize): Float32Array {
  const target = typeof targetSize === 'number' ? { rows: targetSize, cols: targetSize } : targetSize;
  if (!(rows > 0 && cols > 0 && target.rows > 0 && target.cols > 0)) {
    throw new RangeError(`resampleToGrid: sizes must be positive (${rows}x${cols} -> ${target.rows}x${target.cols})`);
  }
  if (pixels.length < rows * cols) {
    throw new RangeError(`resampleToGrid: ${pixels.length} pixels for a ${rows}x${cols} image`);
  }
  const cw = boxWeights(cols, target.cols);
  const rw = boxWeights(rows, target.rows);
  // Horizontal pass: rows x target.cols
  const tmp = new Float64Array(rows * target.cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < target.cols; j++) {
      const s = cw.start[j]!;
      const w = cw.weights[j]!;
      let acc = 0;
      for (let k = 0, c = cw.count[j]!; k < c; k++) acc += pixels[base + s + k]! * w[k]!;
      tmp[r * target.cols + j] = acc;
    }
  }
  // Vertical pass
  const out = new Float32Array(target.rows * target.cols);
  for (let i = 0; i < target.rows; i++) {
    const s = rw.start[i]!;
    const w = rw.weights[i]!;
    const c = rw.count[i]!;
    for (let j = 0; j < target.cols; j++) {
      let acc = 0;
      for (let k = 0; k < c; k++) acc += tmp[(s + k) * target.cols + j]! * w[k]!;
      out[i * target.cols + j] = acc;
    }
  }
  return out;
}

/** Stored pixel values of one sample, as a typed view over the frame's bytes (native byte order). */
export type StoredValues = Uint8Array | Int8Array | Uint16Array | Int16Array;

/**
 * Area-averages stored integer values straight onto a grid, without materialising the frame as
 * floats: the site only needs grid features, and unpacking a full frame to Float32 cost more than
 * reading the file. Each value is first reduced to `bitsStored` bits (masked, or sign-extended when
 * `signed`) as PS3.5 §8.1.1 requires, so bits above the high bit (overlays, garbage) never leak in.
 * Returns the mean stored value per target cell; a linear map (rescale, inversion) commutes with
 * the averaging, so the caller applies it to the grid.
 */
export function resampleStoredToGrid(
  values: StoredValues,
  rows: number,
  cols: number,
  targetSize: number | GridSize,
  bitsStored: number,
  signed: boolean,
  byteSwapped = false,
): Float64Array {
  const target = typeof targetSize === 'number' ? { rows: targetSize, cols: targetSize } : targetSize;
  if (!(rows > 0 && cols > 0 && target.rows > 0 && target.cols > 0)) {
    throw new RangeError(`resampleStoredToGrid: sizes must be positive (${rows}x${cols} -> ${target.rows}x${target.cols})`);
  }
  if (values.length < rows * cols) throw new RangeError(`resampleStoredToGrid: ${values.length} values for a ${rows}x${cols} image`);
  const containerBits = values.BYTES_PER_ELEMENT * 8;
  if (!(Number.isInteger(bitsStored) && bitsStored >= 1 && bitsStored <= containerBits)) {
    throw new RangeError(`resampleStoredToGrid: bits stored ${bitsStored} outside 1..${containerBits}`);
  }
  if (values.BYTES_PER_ELEMENT === 2) {
    const simd = simdGrid(values as Uint16Array | Int16Array, rows, cols, target, bitsStored, signed, byteSwapped);
    if (simd) return simd;
    const lanes = laneGrid(values as Uint16Array | Int16Array, rows, cols, target, bitsStored, signed, byteSwapped);
    if (lanes) return lanes;
    if (byteSwapped) {
      // Big-endian frames off the lane path: a swapped copy (memcpy and swap16 run in C++).
      const swapped = new Uint16Array(values.length);
      swapped.set(new Uint16Array(values.buffer, values.byteOffset, values.length));
      Buffer.from(swapped.buffer).swap16();
      return resampleStoredToGrid(swapped, rows, cols, target, bitsStored, signed);
    }
  }
  // Bits beyond bitsStored must be dropped: read the unsigned view and mask or sign-extend by shifts.
  const raw =
    values instanceof Int16Array
      ? new Uint16Array(values.buffer, values.byteOffset, values.length)
      : values instanceof Int8Array
        ? new Uint8Array(values.buffer, values.byteOffset, values.length)
        : values;
  const shift = 32 - bitsStored;
  const mask = bitsStored >= 31 ? -1 : (1 << bitsStored) - 1;
  // 0: the whole container is the value (unsigned view, or the signed view for two's complement);
  // 1: mask; 2: sign-extend from bitsStored.
  const mode = bitsStored === containerBits ? 0 : signed ? 2 : 1;
  const direct =
    mode === 0 && signed
      ? raw instanceof Uint16Array
        ? new Int16Array(raw.buffer, raw.byteOffset, raw.length)
        : new Int8Array(raw.buffer, raw.byteOffset, raw.length)
      : raw;
  if (rows % target.rows === 0) return bandGrid(raw, direct, mode, mask, shift, rows, cols, target);
  // Fractional row overlaps: each source row first reduced horizontally, then rows weighted.
  const tc = target.cols;
  const cw = boxWeights(cols, tc);
  const tmp = new Float64Array(rows * tc);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const out = r * tc;
    for (let j = 0; j < tc; j++) {
      const s = base + cw.start[j]!;
      const w = cw.weights[j]!;
      const c = cw.count[j]!;
      let acc = 0;
      if (mode === 0) for (let k = 0; k < c; k++) acc += direct[s + k]! * w[k]!;
      else if (mode === 1) for (let k = 0; k < c; k++) acc += (raw[s + k]! & mask) * w[k]!;
      else for (let k = 0; k < c; k++) acc += ((raw[s + k]! << shift) >> shift) * w[k]!;
      tmp[out + j] = acc;
    }
  }
  const rw = boxWeights(rows, target.rows);
  const grid = new Float64Array(target.rows * tc);
  for (let i = 0; i < target.rows; i++) {
    const s = rw.start[i]!;
    const w = rw.weights[i]!;
    const c = rw.count[i]!;
    for (let k = 0; k < c; k++) {
      const wk = w[k]!;
      const src = (s + k) * tc;
      for (let j = 0, o = i * tc; j < tc; j++, o++) grid[o] += tmp[src + j]! * wk;
    }
  }
  return grid;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Whole rows per grid row and a multiple of 8 pixels per cell (512 → 64, 2048 → 64): the band
 * sums run in WebAssembly SIMD (simd-sums.ts), eight pixels at a time, on a copy of the frame in
 * the module's memory. Undefined when SIMD is unavailable or a lane could overflow.
 */
function simdGrid(
  values: Uint16Array | Int16Array,
  rows: number,
  cols: number,
  target: GridSize,
  bitsStored: number,
  signed: boolean,
  byteSwapped: boolean,
): Float64Array | undefined {
  const tc = target.cols;
  if (rows % target.rows !== 0 || cols % tc !== 0 || (cols / tc) % 8 !== 0) return undefined;
  const band = rows / target.rows;
  const factor = cols / tc;
  const mask = bitsStored >= 16 ? 0xffff : (1 << bitsStored) - 1;
  // Each i32 lane adds two pixels per chunk and row.
  if (band * (factor / 8) * 2 * mask >= 2 ** 31) return undefined;
  const k = pixelKernels.simd ? bandSums() : undefined;
  if (!k) return undefined;
  const frameBytes = values.byteLength;
  const acc = (frameBytes + 15) & ~15;
  const need = acc + tc * 16;
  if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / 65536));
  new Uint8Array(k.memory.buffer, 0, frameBytes).set(new Uint8Array(values.buffer, values.byteOffset, frameBytes));
  const signBit = signed ? 1 << (bitsStored - 1) : 0;
  const run = byteSwapped ? k.sumsSwapped : k.sums;
  const lanes = new Int32Array(k.memory.buffer, acc, tc * 4);
  const grid = new Float64Array(target.rows * tc);
  const inv = 1 / (band * factor);
  const offset = band * factor * signBit;
  for (let i = 0; i < target.rows; i++) {
    run(i * band * cols * 2, cols * 2, band, tc, factor / 8, mask, signBit, acc);
    for (let j = 0, o = i * tc; j < tc; j++, o++) {
      grid[o] = (lanes[4 * j]! + lanes[4 * j + 1]! + lanes[4 * j + 2]! + lanes[4 * j + 3]! - offset) * inv;
    }
  }
  return grid;
}

/**
 * The usual case, 16-bit container with at most 15 bits stored, whole rows per grid row and an
 * even whole number of pixels per cell (512 → 64): two pixels are summed per 32-bit word in
 * separate 16-bit lanes — masking, and the sign by a bias (v = ((v ^ s) & mask) − s), and for
 * big-endian frames a byte swap, all in registers — which halves the loads and drops the
 * per-pixel shifts. A frame at an offset of 2 mod 4 is read through the aligned words around it,
 * minus the two half-words outside each cell. Undefined when it does not apply, or a lane could
 * carry (then the caller sums pixel by pixel).
 */
function laneGrid(
  values: Uint16Array | Int16Array,
  rows: number,
  cols: number,
  target: GridSize,
  bitsStored: number,
  signed: boolean,
  byteSwapped: boolean,
): Float64Array | undefined {
  const tc = target.cols;
  if (bitsStored >= 16 || !LITTLE_ENDIAN || rows % target.rows !== 0 || cols % tc !== 0 || (cols / tc) % 2 !== 0) return undefined;
  const band = rows / target.rows;
  const factor = cols / tc;
  const perCell = factor >> 1;
  const mask = (1 << bitsStored) - 1;
  const shifted = values.byteOffset % 4 !== 0;
  const span = perCell + (shifted ? 1 : 0);
  if (span * mask > 0xffff) return undefined;
  const first = values.byteOffset - (shifted ? 2 : 0);
  // A shifted frame that ends its buffer lacks the last word's high half: that cell is read pixel by pixel.
  const nWords = Math.min(((rows * cols) >> 1) + (shifted ? 1 : 0), Math.floor((values.buffer.byteLength - first) / 4));
  const words = new Uint32Array(values.buffer, first, nWords);
  const halves = new Uint16Array(values.buffer, values.byteOffset, values.length);
  const signBit = signed ? 1 << (bitsStored - 1) : 0;
  const bias32 = ((signBit << 16) | signBit) >>> 0;
  const mask32 = ((mask << 16) | mask) >>> 0;
  const grid = new Float64Array(target.rows * tc);
  const rowSums = byteSwapped ? laneRowSwapped : laneRow;
  for (let i = 0; i < target.rows; i++) {
    const out = i * tc;
    for (let r = i * band, end = r + band; r < end; r++) {
      const at = (r * cols) >> 1;
      // Only a shifted frame that ends its buffer can lack the last word: that cell pixel by pixel.
      const cells = at + tc * perCell + (shifted ? 1 : 0) > nWords ? tc - 1 : tc;
      rowSums(words, at, cells, perCell, shifted, bias32, mask32, mask, grid, out);
      for (let j = cells; j < tc; j++) {
        let sum = 0;
        for (let p = r * cols + j * factor, e = p + factor; p < e; p++) {
          const h = halves[p]!;
          sum += ((byteSwapped ? ((h & 0xff) << 8) | (h >>> 8) : h) ^ signBit) & mask;
        }
        grid[out + j] += sum;
      }
    }
    const inv = 1 / (band * factor);
    const offset = band * factor * signBit;
    for (let j = 0; j < tc; j++) grid[out + j] = (grid[out + j]! - offset) * inv;
  }
  return grid;
}

/**
 * One source row's biased sums into `cells` grid cells (lanes of native-order words). Kept apart
 * from the byte-swapped twin so each hot loop stays monomorphic.
 */
function laneRow(
  words: Uint32Array,
  at: number,
  cells: number,
  perCell: number,
  shifted: boolean,
  bias32: number,
  mask32: number,
  mask: number,
  grid: Float64Array,
  out: number,
): void {
  const span = shifted ? perCell + 1 : perCell;
  for (let j = 0; j < cells; j++, at += perCell) {
    let acc = 0;
    let k = at;
    const stop = at + span;
    // Unrolled by four: the loop overhead is most of the cost of a word.
    for (; k + 4 <= stop; k += 4) {
      acc +=
        ((words[k]! ^ bias32) & mask32) +
        ((words[k + 1]! ^ bias32) & mask32) +
        ((words[k + 2]! ^ bias32) & mask32) +
        ((words[k + 3]! ^ bias32) & mask32);
    }
    for (; k < stop; k++) acc += (words[k]! ^ bias32) & mask32;
    let sum = (acc & 0xffff) + (acc >>> 16);
    // Shifted: the low half of the first word and the high half of the last belong to the neighbours.
    if (shifted) sum -= ((words[at]! ^ bias32) & mask) + (((words[at + perCell]! ^ bias32) >>> 16) & mask);
    grid[out + j] += sum;
  }
}

/** `laneRow` for big-endian words: each 16-bit half byte-swapped in a register. */
function laneRowSwapped(
  words: Uint32Array,
  at: number,
  cells: number,
  perCell: number,
  shifted: boolean,
  bias32: number,
  mask32: number,
  mask: number,
  grid: Float64Array,
  out: number,
): void {
  const span = shifted ? perCell + 1 : perCell;
  for (let j = 0; j < cells; j++, at += perCell) {
    let acc = 0;
    for (let k = at, stop = at + span; k < stop; k++) {
      const w = words[k]!;
      acc += ((((w & 0x00ff00ff) << 8) | ((w >>> 8) & 0x00ff00ff)) ^ bias32) & mask32;
    }
    let sum = (acc & 0xffff) + (acc >>> 16);
    if (shifted) {
      const a = words[at]!;
      const z = words[at + perCell]!;
      sum -=
        (((((a & 0x00ff00ff) << 8) | ((a >>> 8) & 0x00ff00ff)) ^ bias32) & mask) +
        ((((((z & 0x00ff00ff) << 8) | ((z >>> 8) & 0x00ff00ff)) ^ bias32) >>> 16) & mask);
    }
    grid[out + j] += sum;
  }
}

/** Whole source rows per grid row: each band of rows summed per column, then area-averaged across. */
function bandGrid(
  raw: Uint8Array | Uint16Array,
  direct: StoredValues,
  mode: number,
  mask: number,
  shift: number,
  rows: number,
  cols: number,
  target: GridSize,
): Float64Array {
  const tc = target.cols;
  const band = rows / target.rows;
  const grid = new Float64Array(target.rows * tc);
  const cw = boxWeights(cols, tc);
  const colSum = new Float64Array(cols);
  const inv = 1 / band;
  for (let i = 0; i < target.rows; i++) {
    colSum.fill(0);
    for (let r = i * band, end = r + band; r < end; r++) {
      const base = r * cols;
      if (mode === 0) for (let c = 0; c < cols; c++) colSum[c] += direct[base + c]!;
      else if (mode === 1) for (let c = 0; c < cols; c++) colSum[c] += raw[base + c]! & mask;
      else for (let c = 0; c < cols; c++) colSum[c] += (raw[base + c]! << shift) >> shift;
    }
    for (let j = 0; j < tc; j++) {
      const s = cw.start[j]!;
      const w = cw.weights[j]!;
      let acc = 0;
      for (let k = 0, c = cw.count[j]!; k < c; k++) acc += colSum[s + k]! * w[k]!;
      grid[i * tc + j] = acc * inv;
    }
  }
  return grid;
}

/**
 * Linear window to [0, 1]: values at or below `center - width/2` map to 0, at or above
 * `center + width/2` to 1.
 */
export function normaliseWindow(pixels: ArrayLike<number>, center: number, width: number): Float32Array {
  if (!(width > 0)) throw new RangeError(`normaliseWindow: width must be positive (got ${width})`);
  const lo = center - width / 2;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = (pixels[i]! - lo) / width;
    out[i] = v <= 0 ? 0 : v >= 1 ? 1 : v;
  }
  return out;
}

/** Min/max scaling to [0, 1]; a constant image maps to all zeros. */
export function normaliseMinMax(pixels: ArrayLike<number>): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const out = new Float32Array(pixels.length);
  const span = max - min;
  if (!(span > 0)) return out;
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i]! - min) / span;
  return out;
}

/**
 * Normalises with the image's own window when it has one (and `mode` allows), else min/max.
 * `window` can be a DicomImage (its windowCenter/windowWidth are used).
 */
export function normalise(
  pixels: ArrayLike<number>,
  window: { windowCenter?: number; windowWidth?: number } | undefined,
  mode: 'window' | 'minmax' | 'auto' = 'auto',
): Float32Array {
  const c = window?.windowCenter;
  const w = window?.windowWidth;
  const hasWindow = c !== undefined && w !== undefined && w > 0;
  if (mode === 'window') {
    if (!hasWindow) throw new RangeError('normalise: no window centre/width available');
    return normaliseWindow(pixels, c, w);
  }
  if (mode === 'auto' && hasWindow) return normaliseWindow(pixels, c, w);
  return normaliseMinMax(pixels);
}
