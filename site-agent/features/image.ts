/**
 * Site-side image features: the fixed, public extractors named by `image-finding` attributes
 * (schema/schema.ts IMAGE_FEATURES). Pure: pixels in, scores out. Nothing here is learned from
 * data; every constant below is part of the federation's public definition.
 *
 * Pipeline for one decoded image (modality values, MONOCHROME1 already inverted, bright = dense):
 * 1. resample to the schema grid (G × G, area averaging: `resampleToGrid`);
 * 2. normalise robustly: the 1st percentile → 0, the 99th → 1, clamped;
 * 3. lung fields: pixels < 0.32 that are NOT connected (4-neighbourhood) to the image border
 *    through pixels < 0.32 (air outside the body touches the border, lungs are enclosed by the
 *    body); components smaller than 0.15 % of the grid are dropped. No lung pixels on both sides
 *    of the midline → the features are not computable (the image is quarantined);
 * 4. the lung box: bounding box of the lung fields (rows r0..r1, columns c0..c1, midline m);
 * 5. scores:
 *    - cardiothoracic-ratio: over rows r0 + 0.45·H … r1 − 0.15·H, the widest run of heart-bright
 *      (≥ 0.65), non-lung pixels through the midline m, divided by the lung box width (a
 *      consolidation next to the heart is less bright than the heart, so it does not widen it);
 *    - lung-opacity: on the lung hull (per row and side, the pixels from the outermost to the
 *      innermost lung pixel), with values clipped at median + 0.25, the largest mean over a
 *      9 × 9 window (of windows at least half hull) minus the median hull intensity;
 *    - nodule: max over pixels of (3 × 3 mean − 7 × 7 mean) among pixels whose 7 × 7 window is
 *      at least 60 % lung field and that lie in the outer 70 % of a half-width.
 */
import { imageClass, type ImageFeature, type ImageFindingAttribute } from '../../schema/schema.ts';
import { resampleToGrid } from '../connectors/dicom/pixels.ts';

export const LUNG_THRESHOLD = 0.32;
export const MIN_COMPONENT_SHARE = 0.0015;
export const OPACITY_CLIP = 0.25;
export const HEART_LEVEL = 0.65;

export type ImageScores = Record<ImageFeature, number>;

export type ImageFeatureResult = { ok: true; scores: ImageScores; grid: Float32Array } | { ok: false; reason: string };

/** p-th percentile (0..1) of values, by sorting a copy. */
function percentile(sorted: Float32Array, p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))));
  return sorted[i]!;
}

/** Resamples and normalises to the grid (steps 1–2). */
export function normaliseToGrid(pixels: ArrayLike<number>, rows: number, cols: number, grid: number): Float32Array {
  return normaliseGrid(resampleToGrid(pixels, rows, cols, grid));
}

/** Step 2 on an already resampled grid image, in place. */
export function normaliseGrid(g: Float32Array): Float32Array {
  const sorted = Float32Array.from(g).sort();
  const lo = percentile(sorted, 0.01);
  const hi = percentile(sorted, 0.99);
  const span = hi - lo;
  for (let i = 0; i < g.length; i++) {
    const v = span > 0 ? (g[i]! - lo) / span : 0;
    g[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return g;
}

/** Lung field mask (step 3). */
export function lungMask(g: Float32Array, n: number): Uint8Array {
  const dark = new Uint8Array(n * n);
  for (let i = 0; i < dark.length; i++) dark[i] = g[i]! < LUNG_THRESHOLD ? 1 : 0;
  // Flood the outside from the border.
  const outside = new Uint8Array(n * n);
  const stack: number[] = [];
  const push = (i: number) => {
    if (dark[i] && !outside[i]) {
      outside[i] = 1;
      stack.push(i);
    }
  };
  for (let k = 0; k < n; k++) {
    push(k);
    push((n - 1) * n + k);
    push(k * n);
    push(k * n + n - 1);
  }
  while (stack.length) {
    const i = stack.pop()!;
    const r = (i / n) | 0;
    const c = i - r * n;
    if (r > 0) push(i - n);
    if (r < n - 1) push(i + n);
    if (c > 0) push(i - 1);
    if (c < n - 1) push(i + 1);
  }
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < mask.length; i++) mask[i] = dark[i] && !outside[i] ? 1 : 0;
  // Drop small components.
  const seen = new Uint8Array(n * n);
  const minSize = Math.max(2, Math.round(MIN_COMPONENT_SHARE * n * n));
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    const comp: number[] = [];
    const st = [start];
    seen[start] = 1;
    while (st.length) {
      const i = st.pop()!;
      comp.push(i);
      const r = (i / n) | 0;
      const c = i - r * n;
      const nb = [r > 0 ? i - n : -1, r < n - 1 ? i + n : -1, c > 0 ? i - 1 : -1, c < n - 1 ? i + 1 : -1];
      for (const j of nb) {
        if (j >= 0 && mask[j] && !seen[j]) {
          seen[j] = 1;
          st.push(j);
        }
      }
    }
    if (comp.length < minSize) for (const i of comp) mask[i] = 0;
  }
  return mask;
}

/** Box sums via an integral image: mean of the (2k+1)² window around (r, c), clipped to the grid. */
function integral(v: ArrayLike<number>, n: number): Float64Array {
  const s = new Float64Array((n + 1) * (n + 1));
  for (let r = 0; r < n; r++) {
    let row = 0;
    for (let c = 0; c < n; c++) {
      row += v[r * n + c]!;
      s[(r + 1) * (n + 1) + c + 1] = s[r * (n + 1) + c + 1]! + row;
    }
  }
  return s;
}
function boxMean(s: Float64Array, n: number, r: number, c: number, k: number): number {
  const r0 = Math.max(0, r - k);
  const r1 = Math.min(n, r + k + 1);
  const c0 = Math.max(0, c - k);
  const c1 = Math.min(n, c + k + 1);
  const w = n + 1;
  return (s[r1 * w + c1]! - s[r0 * w + c1]! - s[r1 * w + c0]! + s[r0 * w + c0]!) / ((r1 - r0) * (c1 - c0));
}

/** Scores of one image on a grid of side `grid`. */
export function imageScores(pixels: ArrayLike<number>, rows: number, cols: number, grid: number): ImageFeatureResult {
  return gridImageScores(resampleToGrid(pixels, rows, cols, grid), grid);
}

/**
 * Scores from the image already area-averaged to the grid (modality values, e.g. `dicomGrid`);
 * the grid array is normalised in place and returned as `grid`.
 */
export function gridImageScores(resampled: Float32Array, grid: number): ImageFeatureResult {
  const n = grid;
  if (resampled.length !== n * n) throw new RangeError(`gridImageScores: ${resampled.length} values for a ${n}×${n} grid`);
  const g = normaliseGrid(resampled);
  const mask = lungMask(g, n);
  let r0 = n,
    r1 = -1,
    c0 = n,
    c1 = -1;
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++)
      if (mask[r * n + c]) {
        if (r < r0) r0 = r;
        if (r > r1) r1 = r;
        if (c < c0) c0 = c;
        if (c > c1) c1 = c;
      }
  if (r1 < 0) return { ok: false, reason: 'no lung fields found' };
  const mid = (c0 + c1) / 2;
  let leftCount = 0,
    rightCount = 0;
  for (let r = r0; r <= r1; r++)
    for (let c = c0; c <= c1; c++) {
      if (!mask[r * n + c]) continue;
      if (c < mid) leftCount++;
      else rightCount++;
    }
  if (leftCount === 0 || rightCount === 0) return { ok: false, reason: 'lung fields not found on both sides' };
  const H = r1 - r0 + 1;
  const W = c1 - c0 + 1;
  const half = W / 2;

  // Cardiothoracic ratio: per row, walk outwards from the midline while pixels are heart-bright
  // (≥ HEART_LEVEL) and not lung; the heart width of the row is the run's length.
  let gap = 0;
  const m0 = Math.floor(mid);
  for (let r = Math.round(r0 + 0.45 * H); r <= Math.round(r1 - 0.15 * H); r++) {
    let left = m0;
    while (left - 1 >= c0 && !mask[r * n + left - 1] && g[r * n + left - 1]! >= HEART_LEVEL) left--;
    let right = m0;
    while (right + 1 <= c1 && !mask[r * n + right + 1] && g[r * n + right + 1]! >= HEART_LEVEL) right++;
    gap = Math.max(gap, right - left + 1);
  }
  const ctr = gap / W;

  // Lung opacity: over the lung hull (per row and side, the pixels from the outermost to the
  // innermost lung pixel, so that enclosed consolidation counts and the heart does not), the
  // largest 9 × 9 window mean minus the median hull intensity.
  const hull = new Uint8Array(n * n);
  for (let r = r0; r <= r1; r++) {
    for (const side of [0, 1]) {
      let a = -1;
      let b = -1;
      const from = side === 0 ? c0 : Math.ceil(mid);
      const to = side === 0 ? Math.ceil(mid) - 1 : c1;
      for (let c = from; c <= to; c++) {
        if (!mask[r * n + c]) continue;
        if (a < 0) a = c;
        b = c;
      }
      for (let c = a; a >= 0 && c <= b; c++) hull[r * n + c] = 1;
    }
  }
  const hullValues: number[] = [];
  for (let i = 0; i < n * n; i++) if (hull[i]) hullValues.push(g[i]!);
  hullValues.sort((a, b) => a - b);
  const median = hullValues[hullValues.length >> 1] ?? 0;
  // Clipping at median + 0.25 keeps small bright spots (nodules, vessels) from looking like haze.
  const gh = new Float32Array(n * n);
  for (let i = 0; i < n * n; i++) if (hull[i]) gh[i] = Math.min(g[i]!, median + OPACITY_CLIP);
  const sgh = integral(gh, n);
  const sh = integral(hull, n);
  let opacity = 0;
  for (let r = r0; r <= r1; r++)
    for (let c = c0; c <= c1; c++) {
      if (!hull[r * n + c]) continue;
      const frac = boxMean(sh, n, r, c, 4);
      if (frac < 0.5) continue;
      const v = boxMean(sgh, n, r, c, 4) / frac - median;
      if (v > opacity) opacity = v;
    }

  // Nodule: local contrast inside the lungs.
  const sg = integral(g, n);
  const sm = integral(mask, n);
  let nodule = 0;
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      if (Math.abs(c - mid) < 0.3 * half) continue;
      if (boxMean(sm, n, r, c, 3) < 0.6) continue;
      const v = boxMean(sg, n, r, c, 1) - boxMean(sg, n, r, c, 3);
      if (v > nodule) nodule = v;
    }
  }
  return { ok: true, scores: { 'cardiothoracic-ratio': ctr, 'lung-opacity': opacity, nodule }, grid: g };
}

/** Codes of the schema's image-finding attributes from the scores. */
export function imageFindingCodes(attrs: readonly ImageFindingAttribute[], scores: ImageScores): number[] {
  return attrs.map((a) => imageClass(a, scores[a.feature]));
}
