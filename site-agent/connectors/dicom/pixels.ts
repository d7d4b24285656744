// Pure pixel helpers: area-averaging resampling and normalisation to [0, 1].

export interface GridSize {
  rows: number;
  cols: number;
}

/**
 * Box-filter weights mapping `n` source cells onto `m` target cells of equal total extent:
 * target cell j covers source interval [j*n/m, (j+1)*n/m). Returns, per target cell, the source
 * indices it overlaps and the overlap length divided by the cell's width (weights sum to 1).
 */
function boxWeights(n: number, m: number): { start: Int32Array; count: Int32Array; weights: Float64Array[] } {
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
export function resampleToGrid(
  pixels: ArrayLike<number>,
  rows: number,
  cols: number,
  targetSize: number | GridSize,
): Float32Array {
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
