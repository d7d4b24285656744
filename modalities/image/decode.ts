/**
 * Image decoder (coordinator side): a sampled image class (and optional component bins) → a
 * synthetic grayscale image at the output resolution. A k·k coefficient vector is drawn from
 * the DP image model, inverted on the model grid, and upsampled bilinearly to rows×cols, then
 * mapped to unsigned integers of `bitsStored` bits (MONOCHROME2: bright = dense). Pure and
 * deterministic for a given Rng.
 */
import type { Rng } from '../../model/rng.ts';
import { classIndex, reconstructLowRes, sampleCoefficients, type ImageModel } from './model.ts';

export interface ImageFacts {
  /** Image class (finding) from the joint model, e.g. "normal", "opacity". */
  findingClass: string;
  /** Principal-component bins from the joint model (when the model has components). */
  componentBins?: number[];
}

export interface ImageDecodeOptions {
  rows?: number;
  cols?: number;
  /** Bits of each stored sample (BitsAllocated is always 16); default 16. */
  bitsStored?: number;
  /** Multiplier of the residual standard deviation (0 = the class mean image); default 1. */
  residualScale?: number;
}

export interface DecodedImage {
  rows: number;
  cols: number;
  bitsStored: number;
  /** rows×cols stored values, row-major. */
  pixels: Uint16Array;
  windowCenter: number;
  windowWidth: number;
  findingClass: string;
  /** The low-resolution image on the model grid (values ~[0, 1]). */
  lowRes: Float64Array;
  coefficients: Float64Array;
}

const axisCache = new Map<string, { i0: Int32Array; i1: Int32Array; w: Float64Array }>();

/** Source indices and weights for bilinear resampling of `from` samples onto `to` (pixel centres aligned). */
function axis(from: number, to: number) {
  const key = `${from}>${to}`;
  let a = axisCache.get(key);
  if (a) return a;
  const i0 = new Int32Array(to);
  const i1 = new Int32Array(to);
  const w = new Float64Array(to);
  for (let x = 0; x < to; x++) {
    const s = Math.min(Math.max(((x + 0.5) * from) / to - 0.5, 0), from - 1);
    const f = Math.floor(s);
    i0[x] = f;
    i1[x] = Math.min(f + 1, from - 1);
    w[x] = s - f;
  }
  a = { i0, i1, w };
  axisCache.set(key, a);
  return a;
}

/** Bilinear upsampling of an h×w image to rows×cols, mapped from [0, 1] to [0, maxValue] integers. */
export function upsampleToUint16(src: ArrayLike<number>, h: number, w: number, rows: number, cols: number, maxValue: number): Uint16Array {
  const ax = axis(w, cols);
  const ay = axis(h, rows);
  // Horizontal pass per source row, then vertical blend per output row.
  const tmp = new Float64Array(h * cols);
  for (let y = 0; y < h; y++) {
    const r = y * w;
    const o = y * cols;
    for (let x = 0; x < cols; x++) {
      const a = src[r + ax.i0[x]];
      tmp[o + x] = a + (src[r + ax.i1[x]] - a) * ax.w[x];
    }
  }
  const out = new Uint16Array(rows * cols);
  for (let y = 0; y < rows; y++) {
    const r0 = ay.i0[y] * cols;
    const r1 = ay.i1[y] * cols;
    const wy = ay.w[y];
    const o = y * cols;
    for (let x = 0; x < cols; x++) {
      const a = tmp[r0 + x];
      let v = a + (tmp[r1 + x] - a) * wy;
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      out[o + x] = Math.round(v * maxValue);
    }
  }
  return out;
}

export function decodeImage(model: ImageModel, facts: ImageFacts, rng: Rng, opts: ImageDecodeOptions = {}): DecodedImage {
  const rows = opts.rows ?? 256;
  const cols = opts.cols ?? 256;
  const bitsStored = opts.bitsStored ?? 16;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows > 65535 || cols > 65535)
    throw new Error(`decodeImage: bad output size ${rows}×${cols}`);
  if (!Number.isInteger(bitsStored) || bitsStored < 8 || bitsStored > 16)
    throw new Error(`decodeImage: bitsStored must be 8..16, got ${bitsStored}`);
  const cls = classIndex(model, facts.findingClass);
  const coefficients = sampleCoefficients(model, cls, rng, facts.componentBins, opts.residualScale ?? 1);
  const lowRes = reconstructLowRes(model, coefficients);
  const maxValue = 2 ** bitsStored - 1;
  const pixels = upsampleToUint16(lowRes, model.grid, model.grid, rows, cols, maxValue);
  // Window from the low-resolution range (the upsampled image lies within it, clamped to [0, 1]).
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < lowRes.length; i++) {
    const v = lowRes[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  lo = Math.max(0, lo) * maxValue;
  hi = Math.min(1, hi) * maxValue;
  const windowWidth = Math.max(1, Math.round(hi - lo));
  const windowCenter = Math.round((hi + lo) / 2);
  return { rows, cols, bitsStored, pixels, windowCenter, windowWidth, findingClass: facts.findingClass, lowRes, coefficients };
}
