/**
 * The image features of `image-finding` attributes: the fixed, public extractors
 * (schema/schema.ts IMAGE_FEATURES) the sites run on their images (site-agent/features/image.ts)
 * and the coordinator runs on its synthetic ones to check they read back as sampled. Pure: a
 * grid in, scores out. Nothing here is learned from
 * data; every constant below is part of the federation's public definition.
 *
 * Pipeline for one decoded image (modality values, MONOCHROME1 already inverted, bright = dense):
 * 1. resample to the schema grid (G × G, area averaging: `resampleToGrid`);
 * 2. normalise robustly: the 1st percentile → 0, the 99th → 1, clamped;
 * 3. lung fields: pixels < 0.45 that are NOT connected (4-neighbourhood) to the image border
 *    through pixels < 0.45 (air outside the body touches the border, lungs are enclosed by the
 *    body); components smaller than 0.15 % of the grid are dropped. When that leaves one lung
 *    only (its box's midline runs through lung in most rows), a lung apex met the air above the
 *    shoulder through a gap of a few pixels (tightly framed films): the mask is made again with
 *    the outside flooded only through pixels whose 3 × 3 neighbourhood is dark, grown back one
 *    pixel (`lungMask(…, true)`), and kept if it holds two lungs. Still one lung (the other
 *    consolidated throughout, or lost to the outside air): the found lung's mirror image about the
 *    frame's central column is taken for the other's field. No lung pixels on both sides of the
 *    midline → the features are not computable (the image is quarantined);
 * 4. the lung box: bounding box of the lung fields (rows r0..r1, columns c0..c1, midline m), and
 *    the lung hull: per row and side, from the most lateral to the most medial lung pixel of the
 *    rows within ±4 (so a consolidation that hides the lateral lung on its rows stays inside);
 * 5. scores:
 *    - cardiothoracic-ratio: over rows r0 + 0.45·H … r1 − 0.15·H, the widest run of heart-bright
 *      (≥ 0.6), non-lung pixels through the midline m that stops short of the lung box's edges
 *      (a run to the edge is an opacified zone, not a heart), divided by the lung box width;
 *    - lung-opacity: the lung rows in three zones (upper, middle, lower); per zone the mean hull
 *      intensity (clipped at the hull median + 0.25) of each side; the larger of (a) the largest
 *      departure of a zone's right − left difference from a normal chest's (NORMAL_ZONE_DIFFERENCE:
 *      the right hilum, the heart's shadow), either way, and (b) for an opacity in both lungs,
 *      which moves no difference, the rise of both middle zones above a normal chest's
 *      (NORMAL_MIDDLE_ZONE) less BILATERAL_ALLOWANCE; its side is that of (a), or "bilateral"
 *      when (b) is the larger;
 *    - nodule: max over pixels of (3 × 3 mean − 7 × 7 mean) among pixels whose 7 × 7 window is
 *      at least 60 % lung hull and that lie in the outer 70 % of a half-width, less 0.02 (the
 *      contrast of crossing ribs and vessels end-on).
 * The thresholds and allowances were set on real anatomy (the NIH atlas that the synthetic
 * radiographs deform, docs/modalities.md; the normal zone intensities are the medians over
 * normal chests drawn from it) and are public constants like the rest.
 */
import { imageClass, type AgeAttribute, type ImageFeature, type ImageFindingAttribute, type Schema } from '../../schema/schema.ts';
import type { RadiographFindings } from './chest-radiograph.ts';

export const LUNG_THRESHOLD = 0.45;
export const MIN_COMPONENT_SHARE = 0.0015;
export const OPACITY_CLIP = 0.25;
export const HEART_LEVEL = 0.6;
/** Rows either side whose lung extent a row's hull takes in. */
export const HULL_ROWS = 4;
/**
 * The zones' (upper, middle, lower) mean hull intensity, patient's right minus left, of a chest
 * without air-space disease: the right hilum and the heart's shadow over the left lower lung make
 * it positive. The opacity score is a zone's departure from it, either way.
 */
export const NORMAL_ZONE_DIFFERENCE: readonly number[] = [0.055, 0.07, 0.05];
/**
 * The middle zone's mean hull intensity (patient's right, left) of a chest without air-space
 * disease, the reference for an opacity in both lungs, which moves no left–right difference.
 */
export const NORMAL_MIDDLE_ZONE: readonly [number, number] = [0.356, 0.29];
/** How far both middle zones rise above NORMAL_MIDDLE_ZONE on normal chests (build, breast shadows). */
export const BILATERAL_ALLOWANCE = 0.03;
/** Local contrast of normal structures (rib crossings, vessels end-on). */
export const NODULE_BASELINE = 0.02;

export type ImageScores = Record<ImageFeature, number>;

/**
 * The patient's side where a lateralised score was found (the patient's right is the viewer's
 * left on a PA film): the denser side of the zone departing most from a normal chest's left–right
 * difference, or "bilateral" when both middle zones rise more, and the side of the strongest
 * local contrast. Read whatever the score, so only meaningful where the
 * score calls the finding.
 */
export interface ScoreSides {
  'lung-opacity': 'right' | 'left' | 'bilateral';
  nodule: 'right' | 'left';
}

export type ImageFeatureResult = { ok: true; scores: ImageScores; sides: ScoreSides; grid: Float32Array } | { ok: false; reason: string };

/**
 * The value of rank k (0-based, ascending) of a, found by quickselect (Hoare partition, middle
 * pivot): the same value a full sort would put at k, in linear expected time. Reorders a so that
 * no value before k is above it and none after k below it. `from`: a rank already selected
 * (≤ k), whose value is in place, so only a[from..] is searched.
 */
function selectRank(a: Float32Array, k: number, from = 0): number {
  let lo = from;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Rank of the p-th percentile (0..1) among `length` values. */
const percentileRank = (length: number, p: number): number => Math.min(length - 1, Math.max(0, Math.round(p * (length - 1))));

/** Buckets of `selectRanks`: enough that a 64² grid leaves a handful of values per bucket. */
const SELECT_BUCKETS = 1024;
const selectCounts = new Int32Array(SELECT_BUCKETS);
let selectPick = new Float32Array(0);

/**
 * The values of ranks kLo ≤ kHi (0-based, ascending) of a[0..length), the same values a full sort
 * would put there, without reordering a: a pass for the range, one counting values per bucket of
 * equal width (the bucket of a value never decreases as the value grows, so a rank's value lies
 * in the bucket where the running count passes it), then a quickselect among that bucket's values
 * alone. Three linear passes instead of a quickselect's partitions over the whole array.
 */
function selectRanks(a: ArrayLike<number>, length: number, kLo: number, kHi: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  let nan = false;
  for (let i = 0; i < length; i++) {
    const v = a[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v !== v) nan = true;
  }
  if (nan || !(min < max)) {
    // One value throughout, or NaN among them (which no bucket orders: the quickselect's order).
    if (!nan && min === max) return [min, min];
    const copy = Float32Array.from({ length }, (_, i) => a[i]!);
    const lo = selectRank(copy, kLo);
    return [lo, selectRank(copy, kHi, kLo)];
  }
  const counts = selectCounts;
  counts.fill(0);
  const top = SELECT_BUCKETS - 1;
  const scale = SELECT_BUCKETS / (max - min);
  for (let i = 0; i < length; i++) {
    const b = ((a[i]! - min) * scale) | 0;
    counts[b > top ? top : b]!++;
  }
  let bLo = 0;
  let below = 0;
  while (below + counts[bLo]! <= kLo) below += counts[bLo++]!;
  const belowLo = below;
  let bHi = bLo;
  while (below + counts[bHi]! <= kHi) below += counts[bHi++]!;
  const belowHi = below;
  const inLo = counts[bLo]!;
  const inHi = bHi === bLo ? 0 : counts[bHi]!;
  if (selectPick.length < inLo + inHi) selectPick = new Float32Array(inLo + inHi);
  const pick = selectPick;
  let nLo = 0;
  let nHi = inLo;
  for (let i = 0; i < length; i++) {
    const v = a[i]!;
    let b = ((v - min) * scale) | 0;
    if (b > top) b = top;
    if (b === bLo) pick[nLo++] = v;
    else if (b === bHi) pick[nHi++] = v;
  }
  const lo = selectRank(pick.subarray(0, inLo), kLo - belowLo);
  const hi =
    bHi === bLo
      ? selectRank(pick.subarray(0, inLo), kHi - belowLo, kLo - belowLo)
      : selectRank(pick.subarray(inLo, inLo + inHi), kHi - belowHi);
  return [lo, hi];
}

/** Step 2 on an already resampled grid image, in place. */
export function normaliseGrid(g: Float32Array): Float32Array {
  if (g.length === 0) return g;
  const [lo, hi] = selectRanks(g, g.length, percentileRank(g.length, 0.01), percentileRank(g.length, 0.99));
  const span = hi - lo;
  for (let i = 0; i < g.length; i++) {
    const v = span > 0 ? (g[i]! - lo) / span : 0;
    g[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return g;
}

/** lungMask's working arrays for an n×n grid (this thread's; every one is filled before it is read). */
interface MaskScratch {
  dark: Uint8Array;
  passable: Uint8Array;
  outside: Uint8Array;
  core: Uint8Array;
  seen: Uint8Array;
  stack: Int32Array;
  comp: Int32Array;
  /** gridImageScores' own: the hull, the clipped grid over it, the hull's values (for the median), two integral images (row 0 and column 0 stay 0). */
  hull: Uint8Array;
  clipped: Float32Array;
  values: Float32Array;
  hullSums: Float64Array;
  gridSums: Float64Array;
}
let maskScratch: MaskScratch | undefined;
/**
 * This thread's working arrays for an n×n grid. Allocated once: per image they were ~90 KiB of
 * array buffers outside V8's heap, whose growth is what sets off most full collections.
 */
function maskScratchFor(n: number): MaskScratch {
  if (maskScratch?.dark.length !== n * n) {
    const u8 = () => new Uint8Array(n * n);
    maskScratch = {
      dark: u8(),
      passable: u8(),
      outside: u8(),
      core: u8(),
      seen: u8(),
      stack: new Int32Array(n * n),
      comp: new Int32Array(n * n),
      hull: u8(),
      clipped: new Float32Array(n * n),
      values: new Float32Array(n * n),
      hullSums: new Float64Array((n + 1) * (n + 1)),
      gridSums: new Float64Array((n + 1) * (n + 1)),
    };
  }
  return maskScratch;
}

/**
 * Marks every pixel 4-connected through `allowed` to the stack's first `top` pixels (already
 * marked) in `marked`, with the stack inline (a closure over it kept its top in a heap context);
 * returns how many pixels it took off the stack, listed in `visited` when given.
 */
function floodFill(allowed: Uint8Array, marked: Uint8Array, stack: Int32Array, top: number, n: number, visited?: Int32Array): number {
  let count = 0;
  while (top > 0) {
    const i = stack[--top]!;
    if (visited) visited[count] = i;
    count++;
    const r = (i / n) | 0;
    const c = i - r * n;
    if (r > 0 && allowed[i - n] && !marked[i - n]) {
      marked[i - n] = 1;
      stack[top++] = i - n;
    }
    if (r < n - 1 && allowed[i + n] && !marked[i + n]) {
      marked[i + n] = 1;
      stack[top++] = i + n;
    }
    if (c > 0 && allowed[i - 1] && !marked[i - 1]) {
      marked[i - 1] = 1;
      stack[top++] = i - 1;
    }
    if (c < n - 1 && allowed[i + 1] && !marked[i + 1]) {
      marked[i + 1] = 1;
      stack[top++] = i + 1;
    }
  }
  return count;
}

/**
 * Lung field mask (step 3). With `closeGaps`, the fallback of step 3: the outside is flooded only
 * through dark pixels whose 3 × 3 neighbourhood is all dark (beyond the image counts as dark) and
 * then grown back by one pixel, so a gap under 3 pixels wide no longer joins a lung to the outside
 * air; the small dark pockets this leaves beside the outside (the air between arm and chest wall)
 * are dropped with the components under a quarter of the largest that touch it.
 */
export function lungMask(g: Float32Array, n: number, closeGaps = false): Uint8Array {
  const { dark, passable: gapless, outside, core, seen, stack, comp } = maskScratchFor(n);
  for (let i = 0; i < dark.length; i++) dark[i] = g[i]! < LUNG_THRESHOLD ? 1 : 0;
  let passable = dark;
  if (closeGaps) {
    passable = gapless;
    for (let r = 0; r < n; r++)
      for (let c = 0; c < n; c++) {
        let all = 1;
        for (let dr = -1; dr <= 1 && all; dr++)
          for (let dc = -1; dc <= 1; dc++) {
            const rr = r + dr;
            const cc = c + dc;
            if (rr >= 0 && rr < n && cc >= 0 && cc < n && !dark[rr * n + cc]) {
              all = 0;
              break;
            }
          }
        passable[r * n + c] = all;
      }
  }
  // Flood the outside from the border.
  outside.fill(0);
  let top = 0;
  for (let k = 0; k < n; k++)
    for (let e = 0; e < 4; e++) {
      const i = e === 0 ? k : e === 1 ? (n - 1) * n + k : e === 2 ? k * n : k * n + n - 1;
      if (passable[i] && !outside[i]) {
        outside[i] = 1;
        stack[top++] = i;
      }
    }
  floodFill(passable, outside, stack, top, n);
  const besideOutside = (i: number, o: Uint8Array) => {
    const r = (i / n) | 0;
    const c = i - r * n;
    return (r > 0 && o[i - n] === 1) || (r < n - 1 && o[i + n] === 1) || (c > 0 && o[i - 1] === 1) || (c < n - 1 && o[i + 1] === 1);
  };
  if (closeGaps) {
    core.set(outside);
    for (let i = 0; i < n * n; i++) if (dark[i] && !core[i] && besideOutside(i, core)) outside[i] = 1;
  }
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < mask.length; i++) mask[i] = dark[i] && !outside[i] ? 1 : 0;
  // Drop small components: each is collected into comp[0..size) by a flood from its first pixel.
  seen.fill(0);
  const minSize = Math.max(2, Math.round(MIN_COMPONENT_SHARE * n * n));
  // Components kept, for the gap-closing pass only.
  const comps: Int32Array[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    seen[start] = 1;
    stack[0] = start;
    const size = floodFill(mask, seen, stack, 1, n, comp);
    if (size < minSize) for (let k = 0; k < size; k++) mask[comp[k]!] = 0;
    else if (closeGaps) comps.push(comp.slice(0, size));
  }
  if (closeGaps) {
    const largest = Math.max(0, ...comps.map((c) => c.length));
    for (const kept of comps)
      if (kept.length < largest / 4 && kept.some((i) => besideOutside(i, outside))) for (const i of kept) mask[i] = 0;
  }
  return mask;
}

/** The bounding box of the mask's pixels (r1 = −1 for an empty mask). */
function maskBox(mask: Uint8Array, n: number): { r0: number; r1: number; c0: number; c1: number } {
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
  return { r0, r1, c0, c1 };
}

/**
 * Whether the mask holds one lung only: its box's midline runs through lung in more than half
 * of the box's rows, where two lung fields leave the mediastinum between them.
 */
function oneLungOnly(mask: Uint8Array, n: number): boolean {
  const { r0, r1, c0, c1 } = maskBox(mask, n);
  if (r1 < 0) return false;
  const m = Math.round((c0 + c1) / 2);
  let through = 0;
  for (let r = r0; r <= r1; r++) through += mask[r * n + m]!;
  return through > 0.5 * (r1 - r0 + 1);
}

/**
 * The one lung of `mask` and its mirror image about the frame's central column, when the lung lies
 * on one side of it (a chest film centres the thorax); else the mask unchanged.
 */
function withMirroredLung(mask: Uint8Array, n: number): Uint8Array {
  const { r1, c0, c1 } = maskBox(mask, n);
  if (r1 < 0 || (c0 < n / 2 && c1 >= n / 2)) return mask;
  const both = mask.slice();
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (mask[r * n + c]) both[r * n + (n - 1 - c)] = 1;
  return both;
}

/** Box sums via an integral image: mean of the (2k+1)² window around (r, c), clipped to the grid. */
function integral(v: ArrayLike<number>, n: number, s: Float64Array): Float64Array {
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

/**
 * Scores from the image already area-averaged to the grid (modality values, e.g. `dicomGrid`);
 * the grid array is normalised in place and returned as `grid`.
 */
export function gridImageScores(resampled: Float32Array, grid: number): ImageFeatureResult {
  const n = grid;
  if (resampled.length !== n * n) throw new RangeError(`gridImageScores: ${resampled.length} values for a ${n}×${n} grid`);
  const g = normaliseGrid(resampled);
  let mask = lungMask(g, n);
  // A lung lost to the outside air through a gap at its apex (tightly framed films): the other
  // lung alone would make the box, and the heart would be measured against one lung.
  if (oneLungOnly(mask, n)) {
    const closed = lungMask(g, n, true);
    if (!oneLungOnly(closed, n)) mask = closed;
    // Still one lung: the other is white (consolidated throughout) or lost to the outside air;
    // where it lies is the found lung's mirror image about the frame's centre.
    else mask = withMirroredLung(mask, n);
  }
  const { r0, r1, c0, c1 } = maskBox(mask, n);
  if (r1 < 0) return { ok: false, reason: 'no lung fields found' };
  const mid = (c0 + c1) / 2;
  let leftCount = 0,
    rightCount = 0;
  for (let r = r0; r <= r1; r++)
    for (let c = c0; c <= c1; c++)
      if (mask[r * n + c]) {
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
    // A run that reaches the lung box's edge is not a heart (no heart reaches the chest wall): an
    // opacified lower zone, whose row says nothing about the heart's width.
    if (left <= c0 + 1 || right >= c1 - 1) continue;
    gap = Math.max(gap, right - left + 1);
  }
  const ctr = gap / W;

  const scratch = maskScratchFor(n);
  const hull = lungHull(mask, n, r0, r1, c0, c1, mid, scratch.hull);
  const median = hullMedian(g, hull, scratch.values);
  // Clipping at median + 0.25 keeps small bright spots (nodules, vessels) from looking like haze.
  const gh = scratch.clipped;
  gh.fill(0);
  for (let i = 0; i < n * n; i++) if (hull[i]) gh[i] = Math.min(g[i]!, median + OPACITY_CLIP);
  const sh = integral(hull, n, scratch.hullSums);
  const { opacity, side: opacitySide } = opacityScore(gh, hull, n, { r0, r1, c0, c1 }, mid);

  // Nodule: local contrast inside the lungs.
  const sg = integral(g, n, scratch.gridSums);
  let contrast = 0;
  let noduleSide: ScoreSides['nodule'] = 'right';
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      if (Math.abs(c - mid) < 0.3 * half) continue;
      if (boxMean(sh, n, r, c, 3) < 0.6) continue;
      const v = boxMean(sg, n, r, c, 1) - boxMean(sg, n, r, c, 3);
      if (v > contrast) {
        contrast = v;
        noduleSide = c < mid ? 'right' : 'left';
      }
    }
  }
  const nodule = Math.max(0, contrast - NODULE_BASELINE);
  return {
    ok: true,
    scores: { 'cardiothoracic-ratio': ctr, 'lung-opacity': opacity, nodule },
    sides: { 'lung-opacity': opacitySide, nodule: noduleSide },
    grid: g,
  };
}

/**
 * Lung opacity (step 5) from the clipped grid over the hull: the largest departure of a zone's
 * left–right difference of mean hull intensity from that of a normal chest, or, for an opacity in
 * both lungs, the rise of both middle zones above a normal chest's; the side is that of the larger.
 */
function opacityScore(
  gh: Float32Array,
  hull: Uint8Array,
  n: number,
  box: { r0: number; r1: number; c0: number; c1: number },
  mid: number,
): { opacity: number; side: ScoreSides['lung-opacity'] } {
  const { r0, r1, c0, c1 } = box;
  const H = r1 - r0 + 1;
  const zones = 3;
  const sum = new Float64Array(2 * zones);
  const count = new Float64Array(2 * zones);
  for (let r = r0; r <= r1; r++) {
    const z = Math.min(zones - 1, Math.floor(((r - r0) / H) * zones));
    for (let c = c0; c <= c1; c++) {
      if (!hull[r * n + c]) continue;
      const side = c < mid ? 0 : 1;
      sum[side * zones + z] += gh[r * n + c]!;
      count[side * zones + z]++;
    }
  }
  let asymmetry = 0;
  let opacitySide: ScoreSides['lung-opacity'] = 'right';
  for (let z = 0; z < zones; z++) {
    if (count[z] < 4 || count[zones + z] < 4) continue;
    const d = sum[z]! / count[z]! - sum[zones + z]! / count[zones + z]! - NORMAL_ZONE_DIFFERENCE[z]!;
    if (Math.abs(d) > asymmetry) {
      asymmetry = Math.abs(d);
      // Side 0 (columns left of the midline) is the patient's right.
      opacitySide = d > 0 ? 'right' : 'left';
    }
  }
  let bilateral = 0;
  if (count[1] >= 4 && count[zones + 1] >= 4)
    bilateral =
      Math.min(sum[1]! / count[1]! - NORMAL_MIDDLE_ZONE[0], sum[zones + 1]! / count[zones + 1]! - NORMAL_MIDDLE_ZONE[1]) -
      BILATERAL_ALLOWANCE;
  if (bilateral > asymmetry) opacitySide = 'bilateral';
  return { opacity: Math.max(0, asymmetry, bilateral), side: opacitySide };
}

/** The median of g over the hull: the value of rank ⌊count/2⌋ (0 for an empty hull). */
function hullMedian(g: Float32Array, hull: Uint8Array, scratch: Float32Array): number {
  let count = 0;
  for (let i = 0; i < hull.length; i++) if (hull[i]) scratch[count++] = g[i]!;
  if (count === 0) return 0;
  return selectRanks(scratch, count, count >> 1, count >> 1)[0];
}

/**
 * The lung hull (step 4): per row and side, the pixels from the most lateral to the most medial
 * lung pixel of the rows within ±HULL_ROWS.
 */
function lungHull(mask: Uint8Array, n: number, r0: number, r1: number, c0: number, c1: number, mid: number, hull: Uint8Array): Uint8Array {
  const outer = new Int32Array(2 * n).fill(-1);
  const inner = new Int32Array(2 * n).fill(-1);
  for (let r = r0; r <= r1; r++) {
    for (let side = 0; side < 2; side++) {
      let a = -1;
      let b = -1;
      const from = side === 0 ? c0 : Math.ceil(mid);
      const to = side === 0 ? Math.ceil(mid) - 1 : c1;
      for (let c = from; c <= to; c++)
        if (mask[r * n + c]) {
          if (a < 0) a = c;
          b = c;
        }
      outer[2 * r + side] = side === 0 ? a : b;
      inner[2 * r + side] = side === 0 ? b : a;
    }
  }
  hull.fill(0);
  for (let r = r0; r <= r1; r++)
    for (let side = 0; side < 2; side++) {
      let lateral = -1;
      let medial = -1;
      for (let q = Math.max(r0, r - HULL_ROWS); q <= Math.min(r1, r + HULL_ROWS); q++) {
        const o = outer[2 * q + side]!;
        const m = inner[2 * q + side]!;
        if (o < 0) continue;
        if (lateral < 0 || (side === 0 ? o < lateral : o > lateral)) lateral = o;
        if (medial < 0 || (side === 0 ? m > medial : m < medial)) medial = m;
      }
      if (lateral < 0) continue;
      for (let c = Math.min(lateral, medial); c <= Math.max(lateral, medial); c++) hull[r * n + c] = 1;
    }
  return hull;
}

/** The radiograph finding each feature's last ("present") class stands for. */
export const FEATURE_FINDING: Record<ImageFeature, keyof RadiographFindings> = {
  'cardiothoracic-ratio': 'cardiomegaly',
  'lung-opacity': 'opacity',
  nodule: 'nodule',
};

/**
 * The upper limit of a normal cardiothoracic ratio from an age on (years, ascending): the
 * "enlarged" cut of a cardiothoracic-ratio attribute for a patient whose age band starts there.
 * A child's heart is large for the chest, and infants and toddlers are imaged AP (supine or held
 * sitting), which magnifies the heart further; the adult PA cut (0.5) called a normal infant's heart
 * enlarged. Published values (facts; the bands are the schema's):
 * - from birth, 0.6: the usual teaching for infants (normal up to ≈ 0.6; e.g. the neonatal chest,
 *   elearnrad.com "Neonate chest"); 238 normal newborns on AP films measured a mean CTR of 0.52
 *   (0.49–0.56 by method; Kim, Yu, Chung, J Korean Radiol Soc 1985;21(5):751–754,
 *   doi:10.3348/jkrs.1985.21.5.751); the cardiac diameter on an AP film is 1/(0.00099·d + 0.79) of
 *   the PA one at a source distance of d cm, ≈ 1.12× at 100 cm (Chon, Oh, Cho, Kim, Lee, J Korean
 *   Med Sci 2011;26(11), PMC3207047);
 * - from 5 years, 0.55: PA films from about 4 (modalities/clinical/radiograph-view.ts); in 150
 *   healthy children aged 1–15 the CTR fell steadily with age, mean 0.493 (Chia et al., Calabar J
 *   Health Sci 2022;6:65–71, doi:10.25259/CJHS_6_2022), so the adult cut sits at the school-age mean;
 *   0.55 is this project's choice between the infant and the adult limits (no single published
 *   school-age limit was found);
 * - from 12 years, the adult 0.5 (Danzer's ratio on a PA film).
 * A band is cut at the limit of its youngest age (a band holds every age between its edges).
 */
export const NORMAL_CTR_LIMIT_FROM_AGE: readonly (readonly [fromYears: number, limit: number])[] = [
  [0, 0.6],
  [5, 0.55],
  [12, 0.5],
];

/** The normal cardiothoracic-ratio limit for an age band whose lower edge is `fromYears`. */
export function normalCtrLimit(fromYears: number): number {
  if (!Number.isFinite(fromYears) || fromYears < 0)
    throw new Error(`normalCtrLimit: age ${fromYears} is not a non-negative number of years`);
  let limit = NORMAL_CTR_LIMIT_FROM_AGE[0]![1];
  for (const [from, l] of NORMAL_CTR_LIMIT_FROM_AGE) if (fromYears >= from) limit = l;
  return limit;
}

/**
 * The lower edge (years) of the age band a row holds: `ageCode` is the row's code of the schema's
 * age attribute (the site's patient table and the sampled row hold the band, never a date: the
 * DICOM connector passes no dates by design). Undefined when the schema has no age attribute.
 */
export function ageBandFrom(schema: Schema, ageCode: number): number | undefined {
  const age = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age');
  if (!age) return undefined;
  const from = age.edges[ageCode];
  if (from === undefined) throw new Error(`ageBandFrom: age code ${ageCode} is not a band of ${age.name} (${age.edges.length} bands)`);
  return from;
}

/**
 * The class of one finding attribute from its score, for a patient of the age band starting at
 * `bandFromYears`: the schema's edges, except that a cardiothoracic-ratio attribute's last
 * ("enlarged") cut is raised to the band's normal limit (NORMAL_CTR_LIMIT_FROM_AGE) where that is
 * higher. Without a band (a schema without an age attribute) the schema's edges alone.
 */
export function findingClass(attr: ImageFindingAttribute, score: number, bandFromYears?: number): number {
  if (attr.feature !== 'cardiothoracic-ratio' || bandFromYears === undefined) return imageClass(attr, score);
  const last = attr.edges.length - 1;
  const limit = normalCtrLimit(bandFromYears);
  if (last < 0 || limit <= attr.edges[last]!) return imageClass(attr, score);
  const edges = attr.edges.slice();
  edges[last] = limit;
  return imageClass({ ...attr, edges }, score);
}

/** Codes of the schema's image-finding attributes from the scores, for a patient of the age band from `bandFromYears` (findingClass). */
export function imageFindingCodes(attrs: readonly ImageFindingAttribute[], scores: ImageScores, bandFromYears?: number): number[] {
  return attrs.map((a) => findingClass(a, scores[a.feature], bandFromYears));
}
