/**
 * Synthetic frontal chest radiographs from real anatomy: the NIH atlas (chest-atlas.ts) deformed
 * per patient, with the sampled findings drawn into it. Output: a density image in [0, 1]
 * (bright = dense) at the requested size, the lung fields as per-row runs, the drawn
 * cardiothoracic scale and the side of each lateralised finding. Pure, deterministic for a given
 * Rng (the atlas is a constant).
 *
 * Per patient (public proportions, no data):
 * - field of view by age and sex (`chestFieldMm`): an infant's chest film is ~17 cm across, an
 *   adult's 35–43 cm; the anatomy fills the frame at any age, so the field sets the pixel spacing;
 * - shape: young chests are wider and their lungs shorter, the diaphragm higher (up to +10 % width
 *   and −20 % lung height at birth, the adult shape from 18 years, `paediatricShape`), and under
 *   3.5 years the thymus widens the upper mediastinum (`drawThymus`); habitus widens (or
 *   narrows) the thorax and adds soft tissue (lower contrast); a few degrees of rotation and a
 *   few millimetres of centring, as on any ward film;
 * - projection: AP under 4 years (modalities/clinical/radiograph-view.ts), PA from 4: on the AP
 *   film the heart is magnified and rounder, and supine the diaphragm higher (AP_NORMAL_HEART,
 *   AP_ENLARGED_HEART, AP_HEART_HEIGHT, SUPINE_LUNG_HEIGHT); the sites read it against the normal
 *   cardiothoracic ratio of the row's age band (finding-scores.ts NORMAL_CTR_LIMIT_FROM_AGE);
 * - heart: a horizontal magnification of the cardiac silhouette around its centre (a smooth,
 *   monotone warp: the lungs beside it are compressed, never folded): ≈ 0.74 of the atlas's for
 *   a normal heart on a PA film (a little more in young children; × 1.45 on an AP film,
 *   docs/modalities.md, "Paediatric chests"), ≈ 2.7 (4.2 AP)
 *   with cardiomegaly, so that the sites' cardiothoracic-ratio score reads the sampled class back
 *   with a margin (CTR ≈ 0.43 normal, ≈ 0.60 enlarged on the 64² grid: the moderate cardiomegaly
 *   of heart failure; at ×1.75 the enlarged hearts read 0.53–0.56, a quarter of them under 0.5 on
 *   small, tightly framed films);
 * - female patients from adolescence: breast shadows over the lower zones;
 * - opacity: a patchy consolidation in the middle/lower zone of one lung, confined to the lung, or
 *   one in each lung (BILATERAL_OPACITY of them);
 * - nodule: a round, sharply marginated 16–28 mm density in the upper/middle zone of one lung.
 * The side of each finding is drawn from the patient's stream and returned (the patient's right
 * is the viewer's left on a PA film).
 */
import type { Rng } from '../../model/rng.ts';
import { frontalChestView } from '../clinical/radiograph-view.ts';
import { ATLAS_LANDMARKS, chestAtlas, LUNG, MASK_SIDE } from './chest-atlas.ts';

export interface RadiographFindings {
  cardiomegaly: boolean;
  opacity: boolean;
  nodule: boolean;
}

export type BodySide = 'right' | 'left';
/** The side of a finding that can involve both lungs (an opacity). */
export type FindingExtent = BodySide | 'bilateral';

/**
 * Share of drawn opacities that involve both lungs: community-acquired pneumonia was multilobar on
 * 18 % of 100 radiographs in a published series (docs/modalities.md, "Opacity against a normal
 * chest; bilateral opacities"; an upper bound, multilobar includes one lung's lobes), drawn here
 * as one consolidation in each lung.
 */
export const BILATERAL_OPACITY = 0.18;
/** The extent (σ) of each of a bilateral opacity's consolidations, relative to a unilateral one's. */
const BILATERAL_EXTENT = 0.55;

/**
 * Who is imaged and how: age at the study, sex (FHIR administrative gender), habitus (z-score,
 * 0 = average build) and the equipment's geometric magnification (1 = the atlas's framing).
 */
export interface ChestAnatomy {
  ageYears: number;
  sex?: string;
  habitus?: number;
  magnification?: number;
}

export interface RenderedChest {
  density: Float32Array;
  size: number;
  /** The heart's horizontal magnification drawn (1 = the atlas heart). */
  heartScale: number;
  /** Square field of view in mm (pixel spacing = fieldMm / size). */
  fieldMm: number;
  /**
   * The lung fields, per row y the pixel ranges [lungSpans[4y], lungSpans[4y+1]) (viewer's left:
   * the patient's right lung) and [lungSpans[4y+2], lungSpans[4y+3]) (empty when equal).
   */
  lungSpans: Int32Array;
  /** The patient's side of each lateralised finding drawn. */
  sides: { opacity?: FindingExtent; nodule?: BodySide };
}

/** Age (years) → square chest field (mm) of a collimated PA film, adult male; public growth proportions. */
const FIELD_BY_AGE: readonly [number, number][] = [
  [0, 170],
  [1, 200],
  [3, 230],
  [6, 270],
  [10, 310],
  [14, 360],
  [18, 400],
];

/** The square field of view (mm) for a chest film: by age, 8 % smaller for women, ±4 % per habitus z. */
export function chestFieldMm(anatomy: ChestAnatomy): number {
  const age = anatomy.ageYears;
  if (!Number.isFinite(age) || age < 0) throw new Error(`chestFieldMm: age ${age} is not a non-negative number of years`);
  let mm = FIELD_BY_AGE[FIELD_BY_AGE.length - 1][1];
  for (let i = 1; i < FIELD_BY_AGE.length; i++) {
    const [a1, f1] = FIELD_BY_AGE[i];
    if (age < a1) {
      const [a0, f0] = FIELD_BY_AGE[i - 1];
      mm = f0 + ((age - a0) / (a1 - a0)) * (f1 - f0);
      break;
    }
  }
  const femaleShare = anatomy.sex === 'female' ? Math.min(1, Math.max(0, (age - 10) / 6)) : 0;
  const h = clampHabitus(anatomy.habitus ?? 0);
  return mm * (1 - 0.08 * femaleShare) * (1 + 0.04 * h);
}

const clampHabitus = (h: number): number => (Number.isFinite(h) ? Math.max(-2, Math.min(2, h)) : 0);

/** Buffers reused from image to image for one output size. */
export interface ChestWorkspace {
  size: number;
  /** Lung codes (LUNG) of the pixels drawn at this size (empty when drawn at half size). */
  lungs: Uint8Array;
  lungSpans: Int32Array;
  /** Per column: offset from the heart centre, and the heart warp's shift at weight 1. */
  colDelta: Float64Array;
  colShift: Float64Array;
  rowWeight: Float64Array;
  /**
   * From HALF_RESOLUTION_FROM up: the half-size drawing, and its rows upsampled across (h × size,
   * made on first use by renderChestRadiograph; the pixel kernel upsamples in its own memory).
   */
  half?: { work: ChestWorkspace; density: Float32Array; across?: Float32Array };
  /** The pixel kernel's warp (radiograph-pixels.ts), drawing into this workspace's buffers and `into` (see `DrawingBuffers`). */
  warpRow?: WarpRowKernel;
}

/**
 * Row py of the warp, compiled (kernels/radiograph.wat `warp_row`): the same formulas as
 * `warpRow`, from the row's affine coefficients, into the buffers given with the workspace.
 */
export type WarpRowKernel = (
  py: number,
  ax0: number,
  axk: number,
  ay0: number,
  ayk: number,
  c0: number,
  wy: number,
  gain: number,
  lift: number,
  hi: number,
  toMask: number,
) => void;

/**
 * The half-size drawing's buffers when they live in the pixel kernel's memory, and its warp:
 * the drawing (h×h), its lung codes and runs, and the per-column offsets the warp reads.
 */
export interface DrawingBuffers {
  density: Float32Array;
  lungs: Uint8Array;
  lungSpans: Int32Array;
  colDelta: Float64Array;
  colShift: Float64Array;
  warpRow: WarpRowKernel;
}

/**
 * Output sizes from which the anatomy and findings are drawn at half the size and upsampled 2×:
 * the warp is the renderer's dominant cost (a bilinear sample and a mask lookup per pixel), the
 * deformation and the findings are smooth at that scale, and the sites' features read a 64×64
 * grid. Below it the image is drawn directly.
 */
const HALF_RESOLUTION_FROM = 128;

/** Whether size×size images are drawn at half size and upsampled. */
export const drawsAtHalfSize = (size: number): boolean => size >= HALF_RESOLUTION_FROM && size % 2 === 0;

/** Buffers for size×size images; `half` (h×h) is where the half-size drawing goes and what draws it, when given. */
export function chestWorkspace(size: number, half?: DrawingBuffers): ChestWorkspace {
  const h = size / 2;
  const halved = drawsAtHalfSize(size);
  if (half && (!halved || half.density.length !== h * h || half.lungs.length !== h * h || half.lungSpans.length !== 4 * h))
    throw new Error(`chestWorkspace: half-size buffers of ${half.density.length} pixels for ${size}×${size}`);
  const direct = directWorkspace(halved ? 0 : size);
  const drawing: ChestWorkspace | undefined = !halved
    ? undefined
    : half
      ? {
          ...directWorkspace(h),
          lungs: half.lungs,
          lungSpans: half.lungSpans,
          colDelta: half.colDelta,
          colShift: half.colShift,
          warpRow: half.warpRow,
        }
      : directWorkspace(h);
  return {
    ...direct,
    size,
    lungSpans: new Int32Array(4 * size),
    ...(drawing ? { half: { work: drawing, density: half?.density ?? new Float32Array(h * h) } } : {}),
  };
}

/** The atlas level a drawing of size×size samples: the smallest at least as fine as the drawing. */
export function atlasLevel(size: number): { side: number; density: Float32Array } {
  const atlas = chestAtlas();
  let level = atlas.levels[0];
  for (const l of atlas.levels) if (l.side >= size) level = l;
  return level;
}

function directWorkspace(size: number): ChestWorkspace {
  return {
    size,
    lungs: new Uint8Array(size * size),
    lungSpans: new Int32Array(4 * size),
    colDelta: new Float64Array(size),
    colShift: new Float64Array(size),
    rowWeight: new Float64Array(size),
  };
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 16) throw new Error(`renderChestRadiograph: size ${size} must be an integer ≥ 16`);
}

/** Draws one chest radiograph density image of size×size (into `into` when given: every pixel is written). */
export function renderChestRadiograph(
  size: number,
  anatomy: ChestAnatomy,
  findings: RadiographFindings,
  rng: Rng,
  into?: Float32Array,
  work: ChestWorkspace = chestWorkspace(size),
): RenderedChest {
  checkSize(size);
  if (into && into.length !== size * size) throw new Error(`renderChestRadiograph: buffer of ${into.length} for ${size}×${size}`);
  const density = into ?? new Float32Array(size * size);
  const drawn = drawChestAnatomy(size, anatomy, findings, rng, density, work);
  const half = work.half;
  if (half) upsample(half.density, size / 2, (half.across ??= new Float32Array((size / 2) * size)), density);
  return { density, size, ...drawn };
}

/**
 * The anatomy and findings of one size×size image: drawn into `into`, or, when the workspace
 * draws at half size (`drawsAtHalfSize`), into work.half.density, left for the caller to upsample
 * 2× (renderChestRadiograph, or the pixel kernel of radiograph-pixels.ts).
 */
export function drawChestAnatomy(
  size: number,
  anatomy: ChestAnatomy,
  findings: RadiographFindings,
  rng: Rng,
  into: Float32Array,
  work: ChestWorkspace,
): Omit<RenderedChest, 'density' | 'size'> {
  checkSize(size);
  if (work.size !== size) throw new Error(`renderChestRadiograph: a workspace for ${work.size}×${work.size}, not ${size}×${size}`);
  if (anatomy.magnification !== undefined && !(anatomy.magnification > 0 && anatomy.magnification < 4))
    throw new Error(`renderChestRadiograph: magnification ${anatomy.magnification} is not in (0, 4)`);
  const half = work.half;
  if (!half) {
    if (into.length !== size * size) throw new Error(`renderChestRadiograph: buffer of ${into.length} for ${size}×${size}`);
    const drawn = drawChest(size, anatomy, findings, rng, into, work);
    return { ...drawn, lungSpans: work.lungSpans.slice() };
  }
  const drawn = drawChest(size / 2, anatomy, findings, rng, half.density, half.work);
  upsampleSpans(half.work, work);
  return { ...drawn, lungSpans: work.lungSpans.slice() };
}

/** The anatomy and findings of one image, drawn at `size` into `density` and `work`. */
function drawChest(
  size: number,
  anatomy: ChestAnatomy,
  findings: RadiographFindings,
  rng: Rng,
  density: Float32Array,
  work: ChestWorkspace,
): Pick<RenderedChest, 'heartScale' | 'fieldMm' | 'sides'> {
  const fieldMm = chestFieldMm(anatomy);
  const age = anatomy.ageYears;
  const h = clampHabitus(anatomy.habitus ?? 0);
  const young = paediatricShape(age);
  // Under 4 the film is AP, supine or held sitting (frontalChestView): the heart, far from the
  // detector, is magnified, and supine the abdomen pushes the diaphragm up.
  const ap = frontalChestView(age) === 'AP';
  // Shape and position: an infant's thorax is wider for its height (sx here, the lungs' height in
  // `rows` below); adult films (young = 0) are drawn exactly as before.
  const scale = (anatomy.magnification ?? 1) * (0.97 + 0.06 * rng.next());
  const sx = scale * (1 + 0.1 * young) * (1 + 0.035 * h);
  const sy = scale;
  const rows = lungRowMap(young, ap);
  const theta = 0.035 * (rng.next() - 0.5);
  const tx = 0.03 * (rng.next() - 0.5);
  const ty = 0.03 * (rng.next() - 0.5);
  // Heart magnification: adult normal ≈ 0.74, a little larger in young children, cardiomegaly
  // ≈ 2.7; on an AP film both × the AP heart factors (AP_NORMAL_HEART, AP_ENLARGED_HEART).
  const heartScale = findings.cardiomegaly
    ? (ap ? AP_ENLARGED_HEART : 2.7 + 0.06 * young) + 0.06 * rng.normal()
    : (0.74 + 0.05 * young + 0.035 * rng.normal()) * (ap ? AP_NORMAL_HEART : 1);
  const { thorax, heart } = ATLAS_LANDMARKS;
  // The heart's centre in the output frame (the affine part, without rotation: close enough for a weight).
  const hx = thorax.x + tx + (heart.x - thorax.x) * sx;
  const hy = thorax.y + ty + rows.toOutput(heart.y - thorax.y) * sy;
  const a = 1 - 1 / heartScale;
  const sigX = 1.3 * heart.halfWidth * sx;
  const sigY = heart.halfHeight * sy * 1.3 * rows.lungScale * (ap && !findings.cardiomegaly ? AP_HEART_HEIGHT : 1);
  const inv = 1 / size;
  const { colShift, rowWeight, lungSpans } = work;
  // Per column, the horizontal offset from the thorax centre before (du) and the heart warp's
  // share of it (times the row's weight): x1 − centre = c0 + du − dcw·wy.
  const du = work.colDelta;
  for (let i = 0; i < size; i++) {
    const u = (i + 0.5) * inv;
    du[i] = u - hx;
    colShift[i] = (u - hx) * a * Math.exp(-((u - hx) ** 2) / (2 * sigX * sigX));
    rowWeight[i] = Math.exp(-((u - hy) ** 2) / (2 * sigY * sigY));
  }
  const atlas = chestAtlas();
  const level = atlasLevel(size);
  const warp: Warp = {
    side: level.side,
    src: level.density,
    mask: atlas.lungMask,
    c0: hx - thorax.x - tx,
    cos: Math.cos(theta),
    sin: Math.sin(theta),
    sx,
    sy,
    // Contrast: more soft tissue, more scatter, less contrast.
    gain: 1 - 0.05 * h,
    lift: 0.03 * h,
  };
  lungSpans.fill(0);
  for (let py = 0; py < size; py++) {
    const dy = (py + 0.5) * inv - thorax.y - ty;
    warpRow(density, work, warp, py, young > 0 || ap ? rows.toAtlas(dy / sy) * sy : dy);
  }
  const thymus = thymusShare(age);
  if (thymus > 0) drawThymus(density, work, thymus * (0.65 + 0.5 * rng.next()));
  if (anatomy.sex === 'female' && age >= 12) breastShadows(density, size, thorax.x + tx, sx, Math.min(1, (age - 12) / 5), rng);
  const sides: RenderedChest['sides'] = {};
  if (findings.opacity) {
    // One draw picks the extent: a unilateral opacity takes as many draws as before, so the
    // draws after it (the nodule) are unchanged.
    const u = rng.next();
    sides.opacity = u < BILATERAL_OPACITY ? 'bilateral' : u < (1 + BILATERAL_OPACITY) / 2 ? 'right' : 'left';
    const shape = opacityShape(work.size, rng);
    if (sides.opacity === 'bilateral') {
      // The same level and density in each lung, each its own texture, and smaller: two lungs
      // consolidated throughout leave no aerated lung to find the lung fields by.
      const each = { ...shape, sigX: BILATERAL_EXTENT * shape.sigX, sigY: BILATERAL_EXTENT * shape.sigY };
      drawOpacity(density, work, 'right', each, rng);
      drawOpacity(density, work, 'left', each, rng);
    } else drawOpacity(density, work, sides.opacity, shape, rng);
  }
  if (findings.nodule) {
    sides.nodule = rng.bernoulli(0.5) ? 'right' : 'left';
    drawNodule(density, work, sides.nodule, fieldMm, rng);
  }
  return { heartScale, fieldMm, sides };
}

/**
 * The heart warp's magnification on an AP film, normal heart: the AP film magnifies the cardiac
 * diameter ≈ 1.12× at 100 cm (finding-scores.ts NORMAL_CTR_LIMIT_FROM_AGE), and the infant heart is
 * large for the chest (normal newborns on AP films: mean CTR 0.52). × 1.45 of the warp reads a
 * median CTR ≈ 0.50 under 4 years on the 64² grid against ≈ 0.45 drawn PA (measured,
 * docs/modalities.md "Paediatric chests"), under the 0–4 band's normal limit 0.6.
 */
const AP_NORMAL_HEART = 1.45;
/**
 * The heart warp's magnification on an AP film, cardiomegaly: 2.7 drawn PA reads ≈ 0.60, on the
 * 0–4 band's normal limit; 4.2 reads ≈ 0.64 (the warp saturates: 5 reads 0.65 and loses the lungs
 * beside the heart on more infant films).
 */
const AP_ENLARGED_HEART = 4.2;
/**
 * The vertical extent of the normal heart's warp on an AP film, relative to PA: the infant heart
 * is globular, and the full-height warp at the AP magnification also squeezed the hilar vessels
 * above the heart into spots the sites' nodule score called (normal chests under 1 year: 31 of 150
 * with it, 27 with 0.75, 15 without the AP magnification). An enlarged heart keeps the full
 * height: at 0.75 it read under the 0–4 cut on a third of films under 1 year (sensitivity 0.68).
 */
const AP_HEART_HEIGHT = 0.75;
/** The lungs' height lost on a supine AP film (the abdomen pushes the diaphragm up), on top of the age's. */
const SUPINE_LUNG_HEIGHT = 0.05;

/**
 * How far the thorax is from the adult shape: 1 at birth, 0 from 18 years. Most of the change is
 * over the first two years (ribs from horizontal to oblique, diaphragm and clavicles descending,
 * Openshaw et al. 1984), the rest through childhood.
 */
export function paediatricShape(ageYears: number): number {
  if (!(ageYears < 18)) return 0;
  return 0.75 * Math.exp(-ageYears / 1.5) * (1 - ageYears / 18) + 0.25 * Math.max(0, 1 - ageYears / 14);
}

/**
 * The share of an infant's thymic shadow still drawn: the whole at birth (largest at 4–6
 * months), half at about two years, none from 3.5 (visible on 2 % of films at four years).
 */
export function thymusShare(ageYears: number): number {
  return ageYears < 3.5 ? 1 - (ageYears / 3.5) ** 1.5 : 0;
}

/**
 * Atlas offsets (normalised, from the thorax centre): the rows just below the clavicles' and first
 * ribs' crossings over the apices, and the lung bases' lowest point. Shortening the lungs from the
 * apex instead crowded those crossings into a compact bright spot that the sites' nodule score
 * called on a third of normal infant films.
 */
const UPPER = 0.28 - ATLAS_LANDMARKS.thorax.y;
const BASE = 0.83 - ATLAS_LANDMARKS.thorax.y;
/** The atlas's lower edge, as an offset. */
const FOOT = 1 - ATLAS_LANDMARKS.thorax.y;

/**
 * The vertical map of a young chest (offsets from the thorax centre, atlas units): the apices and
 * shoulders unchanged, the lungs below them shortened by `lungScale` (the diaphragm higher),
 * the upper abdomen below stretched to the atlas's lower edge. Monotone and continuous; the
 * identity for an adult.
 */
function lungRowMap(young: number, supine: boolean): { lungScale: number; toAtlas(u: number): number; toOutput(v: number): number } {
  const lungScale = 1 - 0.2 * young - (supine ? SUPINE_LUNG_HEIGHT : 0);
  const base = UPPER + lungScale * (BASE - UPPER);
  const below = (FOOT - BASE) / (FOOT - base);
  return {
    lungScale,
    toAtlas: (u) => (u <= UPPER ? u : u <= base ? UPPER + (u - UPPER) / lungScale : BASE + (u - base) * below),
    toOutput: (v) => (v <= UPPER ? v : v <= BASE ? UPPER + (v - UPPER) * lungScale : base + (v - BASE) / below),
  };
}

/**
 * The infant thymus: a soft-tissue shadow widening the upper mediastinum by the same width into
 * each lung (so the sites' left–right zone comparison does not read it as consolidation), widest
 * where it meets the heart, with a straight inferior border and a soft lateral margin. It ends
 * above the rows where the sites measure the heart (finding-scores.ts: from 45 % of the lung
 * height), so the cardiothoracic ratio reads the heart alone. `size` ≈ 1 for a full infant thymus.
 */
function drawThymus(density: Float32Array, work: ChestWorkspace, size: number): void {
  const { size: n, lungSpans } = work;
  let r0 = -1;
  let r1 = -1;
  for (let y = 0; y < n; y++)
    if (lungSpans[4 * y + 1] > lungSpans[4 * y] || lungSpans[4 * y + 3] > lungSpans[4 * y + 2]) {
      if (r0 < 0) r0 = y;
      r1 = y;
    }
  if (r0 < 0) return;
  const H = r1 - r0 + 1;
  const edge = 0.06 * n;
  const top = 0.05;
  const bottom = 0.4;
  // How far the shadow reaches into each lung beyond the mediastinum, at its widest.
  const reach = (0.01 + 0.05 * size) * n;
  let right = -1;
  let left = -1;
  for (let y = Math.max(0, Math.floor(r0 + top * H)); y <= Math.min(n - 1, Math.ceil(r0 + bottom * H)); y++) {
    // The mediastinum's edges: each lung's medial end on this row (the last known above a row without it).
    if (lungSpans[4 * y + 1] > lungSpans[4 * y]) right = lungSpans[4 * y + 1];
    if (lungSpans[4 * y + 3] > lungSpans[4 * y + 2]) left = lungSpans[4 * y + 2];
    if (right < 0 || left < 0 || left <= right) continue;
    const t = (y + 0.5 - r0) / H;
    const down = Math.min(1, Math.max(0, (t - top) / (bottom - top)));
    // Fades in from the superior mediastinum; a straight lower edge.
    const v = smoothstep(Math.min(1, (t - top) / 0.15)) * smoothstep(Math.min(1, Math.max(0, (bottom - t) / 0.12)));
    const ext = reach * (1 - (1 - down) ** 2);
    const a = right - ext;
    const b = left + ext;
    const o = y * n;
    for (let x = Math.max(0, Math.floor(a - edge)); x < Math.min(n, Math.ceil(b + edge)); x++) {
      const c = x + 0.5;
      const inside = Math.min(c - a, b - c);
      const w = v * smoothstep(Math.min(1, Math.max(0, inside / edge + 0.5)));
      const d = density[o + x];
      // Added soft tissue: the ribs and vessels behind stay visible; less is added where the
      // mediastinum is already dense.
      if (w > 0 && d < 1) density[o + x] = d + w * THYMUS_DENSITY * (1 - d);
    }
  }
}

/** Added density of a full thymus over air-filled lung, per unit of (1 − density). */
const THYMUS_DENSITY = 0.35;

const smoothstep = (s: number): number => s * s * (3 - 2 * s);

/** What one row of the warp needs (see warpRow). */
interface Warp {
  side: number;
  src: Float32Array;
  mask: Uint8Array;
  c0: number;
  cos: number;
  sin: number;
  sx: number;
  sy: number;
  gain: number;
  lift: number;
}

/**
 * Row py of the deformed atlas into `density` and its lung codes into work.lungs, each lung's
 * run into work.lungSpans. dy: the row's offset from the thorax centre. The atlas coordinates
 * are affine in the column's warped offset, so each pixel costs a few multiply-adds and a
 * bilinear sample.
 */
function warpRow(density: Float32Array, work: ChestWorkspace, w: Warp, py: number, dy: number): void {
  const { size, colDelta: du, colShift: dcw, lungs, lungSpans } = work;
  const { side, src, mask } = w;
  const wy = work.rowWeight[py];
  const { x: cx, y: cy } = ATLAS_LANDMARKS.thorax;
  // fx = ax·side − ½ = ax0 + axk·dx, fy likewise, dx the warped offset.
  const ax0 = side * cx - 0.5 + (side * w.sin * dy) / w.sx;
  const axk = (side * w.cos) / w.sx;
  const ay0 = side * cy - 0.5 + (side * w.cos * dy) / w.sy;
  const ayk = (-side * w.sin) / w.sy;
  const hi = side - 1.001;
  const toMask = MASK_SIDE / side;
  const c0 = w.c0;
  const gain = w.gain + 0;
  const lift = w.lift + 0;
  if (work.warpRow) {
    // The kernel's buffers are the workspace's (and `density` the drawing it was made with).
    work.warpRow(py, ax0, axk, ay0, ayk, c0, wy, gain, lift, hi, toMask);
    return;
  }
  const o = py * size;
  let r0 = -1;
  let r1 = -1;
  let l0 = -1;
  let l1 = -1;
  for (let px = 0; px < size; px++) {
    const dx = c0 + du[px] - dcw[px] * wy;
    let fx = ax0 + axk * dx;
    let fy = ay0 + ayk * dx;
    fx = fx < 0 ? 0 : fx > hi ? hi : fx;
    fy = fy < 0 ? 0 : fy > hi ? hi : fy;
    const ix = fx | 0;
    const iy = fy | 0;
    const ex = fx - ix;
    const k = iy * side + ix;
    const top = src[k] + ex * (src[k + 1] - src[k]);
    const bottom = src[k + side] + ex * (src[k + side + 1] - src[k + side]);
    density[o + px] = lift + gain * (top + (fy - iy) * (bottom - top));
    // Clamped coordinates stay inside the mask.
    const lung = mask[(((fy + 0.5) * toMask) | 0) * MASK_SIDE + (((fx + 0.5) * toMask) | 0)];
    lungs[o + px] = lung;
    if (lung === LUNG.right) {
      if (r0 < 0) r0 = px;
      r1 = px;
    } else if (lung === LUNG.left) {
      if (l0 < 0) l0 = px;
      l1 = px;
    }
  }
  // Each lung as one run per row (ordered: the patient's right lung is on the viewer's left).
  if (r0 >= 0 && (l0 < 0 || r1 < l0)) {
    lungSpans[4 * py] = r0;
    lungSpans[4 * py + 1] = r1 + 1;
  }
  if (l0 >= 0 && (r0 < 0 || r1 < l0)) {
    lungSpans[4 * py + 2] = l0;
    lungSpans[4 * py + 3] = l1 + 1;
  }
}

/** Rows [first, last] holding lung of `side`, or undefined. */
function lungRows(spans: Int32Array, size: number, side: BodySide): [number, number] | undefined {
  const o = side === 'right' ? 0 : 2;
  let first = -1;
  let last = -1;
  for (let y = 0; y < size; y++)
    if (spans[4 * y + o + 1] > spans[4 * y + o]) {
      if (first < 0) first = y;
      last = y;
    }
  return first < 0 ? undefined : [first, last];
}

/** A point inside the lung of `side` at a fraction `down` of its height and `across` of its width from the lateral edge. */
function lungPoint(work: ChestWorkspace, side: BodySide, down: number, across: number): [number, number] | undefined {
  const { lungSpans: spans, size } = work;
  const rows = lungRows(spans, size, side);
  if (!rows) return undefined;
  const o = side === 'right' ? 0 : 2;
  let y = Math.round(rows[0] + down * (rows[1] - rows[0]));
  // Rows near the base can be empty between the heart and the diaphragm: move up to a lung row.
  while (y > rows[0] && spans[4 * y + o + 1] <= spans[4 * y + o]) y--;
  const a = spans[4 * y + o];
  const b = spans[4 * y + o + 1];
  // Lateral is the viewer's left for the patient's right lung.
  const x = side === 'right' ? a + across * (b - a) : b - 1 - across * (b - a);
  return [Math.round(x), y];
}

/** Where in its lung (fractions of its height and width), how dense and how large a consolidation is. */
interface OpacityShape {
  down: number;
  across: number;
  amp: number;
  sigX: number;
  sigY: number;
}

function opacityShape(size: number, rng: Rng): OpacityShape {
  const down = 0.3 + 0.25 * rng.next();
  const across = 0.35 + 0.25 * rng.next();
  const amp = 0.36 + 0.1 * rng.next();
  const sigX = (0.08 + 0.02 * rng.next()) * size;
  const sigY = (0.09 + 0.03 * rng.next()) * size;
  return { down, across, amp, sigX, sigY };
}

/** Patchy air-space consolidation: a smooth blob modulated by coarse value noise, confined to the lung. */
function drawOpacity(density: Float32Array, work: ChestWorkspace, side: BodySide, shape: OpacityShape, rng: Rng): void {
  const { size, lungs } = work;
  const { amp, sigX, sigY } = shape;
  const at = lungPoint(work, side, shape.down, shape.across);
  // 6×6 value-noise lattice over the blob's 3σ box.
  const lattice = new Float64Array(36);
  for (let i = 0; i < 36; i++) lattice[i] = rng.next();
  if (!at) return;
  const code = side === 'right' ? LUNG.right : LUNG.left;
  const x0 = Math.max(0, Math.floor(at[0] - 3 * sigX));
  const x1 = Math.min(size, Math.ceil(at[0] + 3 * sigX));
  const y0 = Math.max(0, Math.floor(at[1] - 3 * sigY));
  const y1 = Math.min(size, Math.ceil(at[1] + 3 * sigY));
  for (let y = y0; y < y1; y++) {
    const gy = ((y - y0) / Math.max(1, y1 - y0)) * 5;
    const iy = Math.min(4, gy | 0);
    const ey = gy - iy;
    const wy = Math.exp(-((y - at[1]) ** 2) / (2 * sigY * sigY));
    for (let x = x0; x < x1; x++) {
      if (lungs[y * size + x] !== code) continue;
      const gx = ((x - x0) / Math.max(1, x1 - x0)) * 5;
      const ix = Math.min(4, gx | 0);
      const ex = gx - ix;
      const n0 = lattice[iy * 6 + ix] + ex * (lattice[iy * 6 + ix + 1] - lattice[iy * 6 + ix]);
      const n1 = lattice[(iy + 1) * 6 + ix] + ex * (lattice[(iy + 1) * 6 + ix + 1] - lattice[(iy + 1) * 6 + ix]);
      const noise = n0 + ey * (n1 - n0);
      const w = wy * Math.exp(-((x - at[0]) ** 2) / (2 * sigX * sigX));
      density[y * size + x] += amp * w * (0.6 + 0.4 * noise);
    }
  }
}

/** A solid pulmonary nodule: the projected thickness of a sphere, 12–24 mm across. */
function drawNodule(density: Float32Array, work: ChestWorkspace, side: BodySide, fieldMm: number, rng: Rng): void {
  const { size } = work;
  const at = lungPoint(work, side, 0.25 + 0.35 * rng.next(), 0.15 + 0.3 * rng.next());
  const radius = ((8 + 6 * rng.next()) / fieldMm) * size;
  const amp = 0.34 + 0.08 * rng.next();
  if (!at) return;
  const r2 = radius * radius;
  const x0 = Math.max(0, Math.floor(at[0] - radius - 1));
  const x1 = Math.min(size, Math.ceil(at[0] + radius + 1));
  const y0 = Math.max(0, Math.floor(at[1] - radius - 1));
  const y1 = Math.min(size, Math.ceil(at[1] + radius + 1));
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      const d2 = (x + 0.5 - at[0] - 0.5) ** 2 + (y + 0.5 - at[1] - 0.5) ** 2;
      if (d2 < r2) density[y * size + x] += amp * Math.sqrt(1 - d2 / r2);
    }
}

/** Breast shadows: soft-tissue ellipses over both lower zones with a defined lower edge. */
function breastShadows(density: Float32Array, size: number, cx: number, sx: number, grown: number, rng: Rng): void {
  const amp = (0.05 + 0.05 * rng.next()) * grown;
  const ry = 0.09 + 0.03 * rng.next();
  const rx = 0.15 * sx;
  const cy = 0.68 + 0.04 * rng.next();
  for (const sign of [-1, 1]) {
    const bx = cx + sign * 0.22 * sx;
    const x0 = Math.max(0, Math.floor((bx - rx) * size));
    const x1 = Math.min(size, Math.ceil((bx + rx) * size));
    const y0 = Math.max(0, Math.floor((cy - 2 * ry) * size));
    const y1 = Math.min(size, Math.ceil((cy + ry) * size));
    for (let y = y0; y < y1; y++) {
      const v = (y + 0.5) / size;
      // Fades in from above, ends sharply below.
      const dy = v < cy ? (v - cy) / (2 * ry) : (v - cy) / ry;
      for (let x = x0; x < x1; x++) {
        const dx = ((x + 0.5) / size - bx) / rx;
        const r = dx * dx + dy * dy;
        if (r < 1) density[y * size + x] += amp * Math.sqrt(1 - r);
      }
    }
  }
}

/**
 * h×h → 2h×2h by bilinear interpolation at the pixel centres (each output pixel ¾ of its nearer
 * source pixel and ¼ of the next, per axis; edges repeated), across then down.
 */
function upsample(src: Float32Array, h: number, across: Float32Array, out: Float32Array): void {
  const size = 2 * h;
  for (let y = 0; y < h; y++) {
    const o = y * h;
    const a = y * size;
    for (let x = 0; x < h; x++) {
      const v = 0.75 * src[o + x];
      across[a + 2 * x] = v + 0.25 * src[o + (x > 0 ? x - 1 : 0)];
      across[a + 2 * x + 1] = v + 0.25 * src[o + (x < h - 1 ? x + 1 : x)];
    }
  }
  for (let y = 0; y < h; y++) {
    const a = y * size;
    const up = (y > 0 ? y - 1 : 0) * size;
    const down = (y < h - 1 ? y + 1 : y) * size;
    const o0 = 2 * y * size;
    const o1 = o0 + size;
    for (let x = 0; x < size; x++) {
      const v = 0.75 * across[a + x];
      out[o0 + x] = v + 0.25 * across[up + x];
      out[o1 + x] = v + 0.25 * across[down + x];
    }
  }
}

/** The half-size drawing's lung runs, doubled, into `work` (its lung codes are only the drawing's). */
function upsampleSpans(half: ChestWorkspace, work: ChestWorkspace): void {
  const { lungSpans } = work;
  for (let y = 0; y < work.size; y++) for (let k = 0; k < 4; k++) lungSpans[4 * y + k] = 2 * half.lungSpans[4 * (y >> 1) + k];
}
