/**
 * One synthetic radiograph, from findings and image-component bins to stored pixels, with the
 * components solved on the model grid only.
 *
 * The sites' encoder reads a component from the area average of the stored pixels on the n×n
 * grid (site-agent/features/image.ts), so only the image's grid has to be right. Here:
 * 1. the anatomy (the NIH atlas deformed for this patient, with the findings: chest-radiograph.ts)
 *    is drawn into the pixel pass's buffers (at half size from 128 pixels), then upsampled,
 *    clamped to [0, 1] and averaged on the grid;
 * 2. the components are solved on the grid alone (`solveComponentsOnGrid`, Newton steps on
 *    4,096 cells): a cell's stored value is modelled as offset + gain·clamp01(density + Σ δ·masked
 *    basis), clamped to full scale;
 * 3. one pass builds the stored pixels — prior + the smooth component shift outside the lung
 *    fields, acquisition gain and offset, per-pixel noise, clamped and quantised — and sums them
 *    per cell (radiograph-pixels.ts): the grid the encoder will read,
 *    exactly, so the achieved coefficients are computed from it and checked to lie in their bins
 *    (1 % of the bin inside its edges);
 * 4. if one does not (the cells' own noise, rounding and clamped pixels are not in the model),
 *    the grid is solved again with each cell's noise known, each cell's target sum of stored
 *    values is fixed (an integer), and the pixels are built again with each cell's sum brought
 *    to its target (the difference spread over the cell's pixels that can take it), so the
 *    stored grid *is* the solved grid.
 * No pass over the full image depends on the number of Newton steps. Sizes that are not a
 * multiple of the grid (and images without components) take the full-resolution search of
 * `addImageComponents` and `densityToStored`. Pure, deterministic for a given Rng.
 */
import { Rng } from '../../model/rng.ts';
import { ageBin, type AgeAttribute, type ImageFindingAttribute, type Schema } from '../../schema/schema.ts';
import { FEATURE_FINDING, findingClass, gridImageScores } from './finding-scores.ts';
import {
  addImageComponents,
  componentBin,
  componentBinCentre,
  componentBinRange,
  imageComponentAttributes,
  normalisedGridCoefficients,
  solveComponentsOnGrid,
  type ComponentTargets,
  type ImageComponentAttribute,
} from './components.ts';
import {
  chestWorkspace,
  drawChestAnatomy,
  renderChestRadiograph,
  type ChestAnatomy,
  type ChestWorkspace,
  type FindingExtent,
  type RadiographFindings,
  type RenderedChest,
} from './chest-radiograph.ts';
import {
  densityToStored,
  finishDensity,
  noiseSums,
  pixelWorkspace,
  storePixels,
  type PixelWorkspace,
  type StoredAcquisition,
} from './radiograph-pixels.ts';

export interface SynthesisedRadiograph {
  /** size×size stored values (MONOCHROME2). */
  pixels: Uint16Array;
  windowCenter: number;
  windowWidth: number;
  /** The heart's drawn magnification (1 = the atlas heart). */
  heartScale: number;
  /** Square field of view in mm: the pixel spacing is fieldMm / size. */
  fieldMm: number;
  /** The patient's side of each lateralised finding drawn. */
  sides: RenderedChest['sides'];
  /** With components: the normalised coefficients of the stored image's grid along each component basis (what the sites' encoder reads). */
  components?: number[];
  /**
   * Images checked against the extractor (grid path, finding attributes in the schema): how many
   * draws were made, and the finding attributes the kept (last) draw still does not read back
   * as sampled (empty when it does).
   */
  readBack?: { draws: number; mismatches: FindingMismatch[] };
}

/** A finding attribute of the kept image that the extractor reads in another class, or on another side, than sampled. */
export interface FindingMismatch {
  attribute: string;
  finding: keyof RadiographFindings;
  /** Class labels of the attribute; `read` is "unreadable" when the extractor found no lung fields. */
  sampled: string;
  read: string;
  /** For a lateralised finding present in both: the side drawn and the side read, when they differ. */
  sideDrawn?: FindingExtent;
  sideRead?: FindingExtent;
}

export interface SynthesiseOptions {
  /** Bits stored (default 16). */
  bitsStored?: number;
  /**
   * Buffers reused from image to image (size×size); every pixel is written. Those of
   * `radiographBuffers` are the pixel pass's own, which saves a copy of the pixels.
   */
  density?: Float32Array;
  pixels?: Uint16Array;
  /** Build the pixels to the noise-aware solved grid cell by cell even when the first build reads back right (tests). */
  enforce?: boolean;
  /**
   * The lower edge (years) of the row's age band, which the read-back's cardiothoracic-ratio cut
   * depends on as the sites' does (finding-scores.ts `findingClass`): the sampled row's band, not
   * the age at the study. Default: the band of the schema's age attribute holding `anatomy.ageYears`.
   */
  ageBandFrom?: number;
}

interface Buffers {
  /** The stored grid, as the extractors read it (normalised in place by them). */
  read: Float32Array;
  add: Float64Array;
  solved: Float64Array;
  target: Float64Array;
  targetGrid: Float64Array;
}
/** Grid buffers of this thread, per grid side (schemas use one or two sides: at most 4 are kept). */
const buffers = new Map<number, Buffers>();

function buffersFor(n: number): Buffers {
  let b = buffers.get(n);
  if (!b) {
    const g = () => new Float64Array(n * n);
    b = { read: new Float32Array(n * n), add: g(), solved: g(), target: g(), targetGrid: g() };
    if (buffers.size >= 4) buffers.delete(buffers.keys().next().value!);
    buffers.set(n, b);
  }
  return b;
}

/**
 * Spreads `diff` (target − current sum, in stored units) over the f×f cell at (y0, x0): an equal
 * share to every pixel that can move that way, the remainder ±1 to the first ones, again while
 * pixels clamp at 0 or max. Returns what could not be placed (0 unless the target is out of range).
 */
function spreadOverCell(px: Uint16Array, size: number, y0: number, x0: number, f: number, diff: number, max: number): number {
  while (diff !== 0) {
    let movable = 0;
    for (let y = y0; y < y0 + f; y++) {
      const o = y * size;
      for (let x = x0; x < x0 + f; x++) if (diff > 0 ? px[o + x] < max : px[o + x] > 0) movable++;
    }
    if (movable === 0) return diff;
    const share = Math.trunc(diff / movable);
    let rest = diff - share * movable;
    for (let y = y0; y < y0 + f; y++) {
      const o = y * size;
      for (let x = x0; x < x0 + f; x++) {
        const p = px[o + x];
        if (diff > 0 ? p >= max : p <= 0) continue;
        let add = share;
        if (rest > 0) {
          add++;
          rest--;
        } else if (rest < 0) {
          add--;
          rest++;
        }
        let v = p + add;
        v = v < 0 ? 0 : v > max ? max : v;
        px[o + x] = v;
        diff -= v - p;
      }
    }
  }
  return 0;
}

/** Draws of an image whose findings do not read back as sampled, before the last is kept (and reported). */
export const MAX_FINDING_DRAWS = 6;

/**
 * Draws one radiograph of `size`×`size` with the findings and, when `bins` is given (one per
 * image-component attribute of the schema), the components in their sampled bins.
 *
 * A finding attribute's class is what the sites' extractor read from their images, not whether
 * the anatomy holds the finding: an opacity too faint or too medial for the extractor was sampled
 * as "clear". So the image is checked with the same extractor on its stored grid (exact: the grid
 * the sites' encoder computes) and drawn again from a fresh stream (forked with a draw of the patient's, so each image gets its own), up to MAX_FINDING_DRAWS
 * times, until every finding attribute reads back in its sampled class and every lateralised
 * finding on the side drawn. Without that check the
 * extractor's misses compound (a class drawn at the sites' read rate, then missed again), which
 * halved the opacity–pneumonia association of the cohort read back. The last draw is checked as
 * well and kept either way; what it still reads wrong is in `readBack.mismatches`, for the cohort
 * report to count (issue 13: a draw that cannot pass is counted, never silently dropped). Images
 * off the grid path are not checked (no `readBack`).
 */
export function synthesiseRadiograph(
  schema: Schema,
  size: number,
  anatomy: ChestAnatomy,
  findings: RadiographFindings,
  bins: readonly number[] | undefined,
  rng: Rng,
  opts: SynthesiseOptions = {},
): SynthesisedRadiograph {
  const attrs = findingAttributes(schema);
  if (bins !== undefined && anatomy.magnification === undefined)
    anatomy = { ...anatomy, magnification: matchFraming(schema, anatomy, findings, bins) };
  let drawn = drawRadiograph(schema, size, anatomy, findings, bins, rng, opts);
  const n = schema.image?.grid ?? 64;
  if (attrs.length === 0 || !drawn.components || size % n !== 0) return drawn;
  const band = opts.ageBandFrom ?? defaultBandFrom(schema, anatomy.ageYears);
  for (let draws = 1; ; draws++) {
    // The last draw is checked too (reading does not change the pixels): one that still does
    // not read back is kept, as the best effort, and reported rather than passed off as right.
    const mismatches = readBackMismatches(attrs, findings, drawn.sides, buffersFor(n), n, band);
    if (mismatches.length === 0 || draws === MAX_FINDING_DRAWS) {
      if (mismatches.length > 0) synthStats.notReadBack++;
      return { ...drawn, readBack: { draws, mismatches } };
    }
    synthStats.redrawn++;
    const why = `${band ?? '-'}y ${mismatches[0]!.attribute}: ${mismatches[0]!.sampled} → ${mismatches[0]!.read}`;
    synthStats.redrawnBy[why] = (synthStats.redrawnBy[why] ?? 0) + 1;
    drawn = drawRadiograph(schema, size, anatomy, findings, bins, rng.fork(`redraw-${draws}-${rng.nextU32()}`), opts);
  }
}

/**
 * Framings (the thorax's size in the field, as a scanner's geometric magnification) probed for
 * an image with components: the sites' scanners frame the chest at 0.88–1.04 of the atlas
 * (simulator/latent.ts), and their component bins carry it.
 */
export const FRAMING_CANDIDATES = [0.88, 0.92, 0.96, 1, 1.04] as const;

/**
 * The framing whose prior, drawn on the grid without components, lies nearest the sampled bins'
 * centres (squared distance over the components). The component bins were read from images
 * framed by the sites' scanners; drawn at the atlas's own framing, the solver had to make up the
 * difference with a broad shift outside the lungs — mostly a brighter mediastinum — and a
 * classifier trained on the sites' images called 62 % of the cohort's patients without heart
 * failure enlarged (tests/integration/cohort-multimodal-signal.test.ts, seed 5; 6 % of the sites'
 * held-out images); 27 % with the framing matched.
 *
 * The priors' coefficients depend on the patient only through what `framingKey` keeps (age up
 * to 18, sex, build, findings), so they are probed once per key and kept (`framingCoefficients`):
 * the probes were a quarter of an image's CPU when drawn for every patient. A probe was never the
 * patient's own drawing (it had its own stream, so its jitter of scale, rotation and heart size
 * was not the image's), so one probe per key picks framings as well as one per patient did.
 */
function matchFraming(schema: Schema, anatomy: ChestAnatomy, findings: RadiographFindings, bins: readonly number[]): number {
  const attrs = imageComponentAttributes(schema);
  const centres = attrs.map((a, j) => componentBinCentre(a, bins[j]!));
  if (centres.every((c) => c === undefined)) return 1;
  const probes = framingCoefficients(schema, anatomy, findings);
  let best = 1;
  let bestDistance = Infinity;
  FRAMING_CANDIDATES.forEach((magnification, m) => {
    let d = 0;
    centres.forEach((t, j) => {
      if (t !== undefined) d += (probes[m]![j]! - t) ** 2;
    });
    if (d < bestDistance) {
      bestDistance = d;
      best = magnification;
    }
  });
  return best;
}

/**
 * What a framing probe's drawing depends on: age in whole years up to 18 (the field of view,
 * paediatric proportions and breast development stop changing by then), female or not, habitus
 * in steps of ¼ z (clamped to ±2 as the renderer does), and the findings.
 */
function framingKey(anatomy: ChestAnatomy, findings: RadiographFindings): { key: string; probe: ChestAnatomy } {
  const age = anatomy.ageYears;
  if (!Number.isFinite(age) || age < 0) throw new Error(`synthesiseRadiograph: age ${age} is not a non-negative number of years`);
  const years = Math.min(18, Math.round(age));
  const female = anatomy.sex === 'female';
  const h = anatomy.habitus ?? 0;
  const quarters = Number.isFinite(h) ? Math.round(4 * Math.max(-2, Math.min(2, h))) : 0;
  const f = (findings.cardiomegaly ? 1 : 0) + (findings.opacity ? 2 : 0) + (findings.nodule ? 4 : 0);
  return {
    key: `${years},${female ? 'f' : 'm'},${quarters},${f}`,
    probe: { ageYears: years, ...(female ? { sex: 'female' } : {}), habitus: quarters / 4 },
  };
}

/** Probed framings kept per thread and schema, at most this many keys (the oldest is dropped): a cohort uses a few hundred. */
const MAX_FRAMING_KEYS = 4096;
const framingCache = new WeakMap<Schema, Map<string, number[][]>>();

/**
 * The normalised grid coefficients of the prior at each FRAMING_CANDIDATES framing, for the
 * patient's `framingKey`: drawn on the grid (or a multiple of it of at least 32 pixels) from a
 * stream seeded by the key alone, so the choice is the same in every thread and run. The probes
 * of a key share the stream, so only the framing differs between them.
 */
function framingCoefficients(schema: Schema, anatomy: ChestAnatomy, findings: RadiographFindings): number[][] {
  const { key, probe } = framingKey(anatomy, findings);
  let cache = framingCache.get(schema);
  if (!cache) framingCache.set(schema, (cache = new Map()));
  const hit = cache.get(key);
  if (hit) return hit;
  const n = schema.image?.grid ?? 64;
  const f = Math.ceil(32 / n);
  const side = n * f;
  const { grid, density, work } = probeBuffersFor(n, side);
  const probes = FRAMING_CANDIDATES.map((magnification) => {
    const drawn = renderChestRadiograph(side, { ...probe, magnification }, findings, new Rng(`framing/${key}`), density, work);
    if (f === 1) {
      // 0 + d / 1 = d: the grid is the probe (the area average below, without its divisions).
      for (let i = 0; i < grid.length; i++) grid[i] = drawn.density[i]!;
    } else {
      grid.fill(0);
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) grid[((y / f) | 0) * n + ((x / f) | 0)]! += drawn.density[y * side + x]! / (f * f);
    }
    return normalisedGridCoefficients(schema, grid);
  });
  if (cache.size >= MAX_FRAMING_KEYS) cache.delete(cache.keys().next().value!);
  cache.set(key, probes);
  return probes;
}

/** The framing probes' buffers of this thread, per grid side (every probe overwrites all of them). */
const probeBuffers = new Map<number, { grid: Float64Array; density: Float32Array; work: ChestWorkspace }>();
function probeBuffersFor(n: number, side: number): { grid: Float64Array; density: Float32Array; work: ChestWorkspace } {
  let b = probeBuffers.get(n);
  if (!b) {
    b = { grid: new Float64Array(n * n), density: new Float32Array(side * side), work: chestWorkspace(side) };
    if (probeBuffers.size >= 4) probeBuffers.delete(probeBuffers.keys().next().value!);
    probeBuffers.set(n, b);
  }
  return b;
}

const findingAttributesOf = new WeakMap<Schema, ImageFindingAttribute[]>();
/** The lower edge of the schema's age band holding `ageYears` (undefined without an age attribute). */
function defaultBandFrom(schema: Schema, ageYears: number): number | undefined {
  const age = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age');
  return age ? age.edges[ageBin(age, Math.floor(ageYears))] : undefined;
}

function findingAttributes(schema: Schema): ImageFindingAttribute[] {
  let a = findingAttributesOf.get(schema);
  if (!a) {
    a = schema.attributes.filter((x): x is ImageFindingAttribute => x.kind === 'image-finding');
    findingAttributesOf.set(schema, a);
  }
  return a;
}

/**
 * The finding attributes whose class read from the stored grid of the last image (buf.targetGrid)
 * is not the sampled one, or, for a lateralised finding present, whose side read is not the side
 * drawn (the side the note names and FHIR codes): a nodule score can also come from a rib
 * crossing on the other side. Empty when the image reads back.
 */
function readBackMismatches(
  attrs: readonly ImageFindingAttribute[],
  findings: RadiographFindings,
  sides: RenderedChest['sides'],
  buf: Buffers,
  n: number,
  bandFrom: number | undefined,
): FindingMismatch[] {
  for (let i = 0; i < n * n; i++) buf.read[i] = buf.targetGrid[i];
  const r = gridImageScores(buf.read, n);
  const out: FindingMismatch[] = [];
  for (const a of attrs) {
    const finding = FEATURE_FINDING[a.feature];
    const last = a.classes.length - 1;
    const sampled = findings[finding] ? a.classes[last]! : a.classes.length === 2 ? a.classes[0]! : `not ${a.classes[last]}`;
    const base = { attribute: a.name, finding, sampled };
    if (!r.ok) {
      out.push({ ...base, read: 'unreadable' });
      continue;
    }
    const k = findingClass(a, r.scores[a.feature], bandFrom);
    const present = k === last;
    if (present !== findings[finding]) {
      out.push({ ...base, read: a.classes[k]! });
      continue;
    }
    if (!present || a.feature === 'cardiothoracic-ratio') continue;
    const sideDrawn = finding === 'opacity' ? sides.opacity : finding === 'nodule' ? sides.nodule : undefined;
    const sideRead = r.sides[a.feature];
    if (sideDrawn !== undefined && sideRead !== sideDrawn)
      out.push({ ...base, read: a.classes[k]!, sideDrawn, ...(sideRead ? { sideRead } : {}) });
  }
  return out;
}

function drawRadiograph(
  schema: Schema,
  size: number,
  anatomy: ChestAnatomy,
  findings: RadiographFindings,
  bins: readonly number[] | undefined,
  rng: Rng,
  opts: SynthesiseOptions = {},
): SynthesisedRadiograph {
  const bitsStored = opts.bitsStored ?? 16;
  const n = schema.image?.grid ?? 64;
  if (opts.pixels && opts.pixels.length !== size * size)
    throw new Error(`synthesiseRadiograph: pixel buffer of ${opts.pixels.length} for ${size}×${size}`);
  const attrs = imageComponentAttributes(schema);
  const components = bins !== undefined && attrs.length > 0;
  const onGrid = components && size % n === 0;
  const buf = onGrid ? buffersFor(n) : undefined;
  const ws = onGrid ? pixelWorkspace(size, n) : undefined;
  if (!onGrid || !buf || !ws) {
    const prior = renderChestRadiograph(size, anatomy, findings, rng, opts.density, chestWorkspace(size));
    const drawn = { heartScale: prior.heartScale, fieldMm: prior.fieldMm, sides: prior.sides };
    let achieved: number[] | undefined;
    if (components) achieved = addImageComponents(schema, prior.density, size, bins, rng, prior.lungSpans);
    const s = densityToStored(prior.density, bitsStored, rng, {}, opts.pixels);
    return { ...s, ...drawn, ...(achieved ? { components: achieved } : {}) };
  }
  // On the grid path the anatomy is drawn into the pixel pass's own buffers, then upsampled,
  // clamped and averaged on the grid in one pass of the kernel.
  const prior = drawChestAnatomy(size, anatomy, findings, rng, ws.density, ws.chest);
  const drawn = { heartScale: prior.heartScale, fieldMm: prior.fieldMm, sides: prior.sides };
  finishDensity(ws);
  const max = 2 ** bitsStored - 1;
  const f = size / n;
  const cellPixels = f * f;
  const { add, solved, target, targetGrid } = buf;
  const gridDensity = ws.grid;
  // The acquisition as densityToStored draws it (offset, gain, noise sd), then the seed of the
  // four-lane noise stream of radiograph-pixels.ts: 16 words where densityToStored's takes 4.
  const offset = 0.02 + 0.18 * rng.next();
  const gain = 0.6 + 0.3 * rng.next();
  const sd = 0.01 + 0.025 * rng.next();
  for (let i = 0; i < 16; i++) ws.seed[i] = rng.nextU32();
  const step = (2 * sd) / 1024;
  // The stored value of density 0 and the smallest noise draw, in whole stored units.
  const baseStored = Math.round((offset - 1.5 * 2 * sd + 1.5 * step) * max);
  const base = baseStored / max;
  const acq: StoredAcquisition = { base: baseStored, gain: gain * max, step: step * max, max };

  // The grid search; a cell's stored value is modelled as offset + gain·clamp01(density + shift)
  // (the noise has mean 0), clamped to full scale.
  const goal = targetsNearPrior(schema, bins!, normalisedGridCoefficients(schema, gridDensity));
  let plan = solveComponentsOnGrid(schema, size, goal, prior.lungSpans, gridDensity, offset / gain, 1 / gain, solved);
  storePixels(ws, plan, prior.lungSpans, acq);
  storedGrid(ws, target, targetGrid, max, false);
  // What the sites' encoder reads from these pixels: exact, from the stored grid.
  let achieved = normalisedGridCoefficients(schema, targetGrid);
  if (opts.enforce || !attrs.every((attr, j) => goal.targets[j] === undefined || safelyInBin(attr, bins[j], achieved[j]))) {
    // The rounding, the pixels that clamp and the cells' own noise moved a coefficient out of
    // its bin: solve again with each cell's noise known, and build the pixels to that grid exactly.
    noiseSums(ws);
    for (let i = 0; i < add.length; i++) add[i] = (base + (step * ws.cells[i]) / cellPixels) / gain;
    plan = solveComponentsOnGrid(schema, size, goal, prior.lungSpans, gridDensity, add, 1 / gain, solved, plan);
    const scale = cellPixels * max * gain;
    for (let i = 0; i < target.length; i++) {
      const t = Math.round(solved[i] * scale);
      target[i] = t < 0 ? 0 : t > cellPixels * max ? cellPixels * max : t;
    }
    storePixels(ws, plan, prior.lungSpans, acq);
    storedGrid(ws, target, targetGrid, max, true);
    achieved = normalisedGridCoefficients(schema, targetGrid);
    synthStats.enforced++;
  }
  synthStats.images++;
  const px = opts.pixels === ws.pixels ? ws.pixels : opts.pixels ? (opts.pixels.set(ws.pixels), opts.pixels) : ws.pixels.slice();
  return {
    pixels: px,
    windowCenter: Math.round((offset + gain * 0.5) * max),
    windowWidth: Math.max(1, Math.round(gain * max)),
    ...drawn,
    components: achieved,
  };
}

/**
 * Buffers to pass as `SynthesiseOptions` for size×size images of this schema: where the image
 * takes the grid path, the pixel pass's own (the pixels are then not copied out), else new arrays.
 * Either way the next image overwrites them.
 */
export function radiographBuffers(schema: Schema, size: number): { density: Float32Array; pixels: Uint16Array } {
  const n = schema.image?.grid ?? 64;
  if (imageComponentAttributes(schema).length === 0 || size % n !== 0)
    return { density: new Float32Array(size * size), pixels: new Uint16Array(size * size) };
  const ws = pixelWorkspace(size, n);
  return { density: ws.density, pixels: ws.pixels };
}

/**
 * The stored grid (each cell's mean stored value) from the pixel pass's cell sums into
 * targetGrid; with `enforce`, each cell's sum is first brought to its target.
 */
function storedGrid(ws: PixelWorkspace, target: Float64Array, targetGrid: Float64Array, max: number, enforce: boolean): void {
  const { size, n, cells, pixels } = ws;
  const f = size / n;
  const inv = 1 / (f * f);
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      const cell = gy * n + gx;
      const sum = cells[cell];
      if (enforce && sum !== target[cell] && spreadOverCell(pixels, size, gy * f, gx * f, f, target[cell] - sum, max) !== 0)
        throw new Error('synthesiseRadiograph: a cell target out of range');
      targetGrid[cell] = (enforce ? target[cell] : sum) * inv;
    }
  }
}

/**
 * Radiographs drawn with components in this thread (every draw), how many needed their grid
 * enforced cell by cell, how many were drawn again because a finding did not read back, and how
 * many images were kept after MAX_FINDING_DRAWS still not reading back (and, per redraw, the row's
 * age band and the first attribute that did not read back: `redrawnBy`). Per thread: a cohort's
 * report counts its released images' read-back itself (`SynthesisedRadiograph.readBack`).
 */
export const synthStats = { images: 0, enforced: 0, redrawn: 0, notReadBack: 0, redrawnBy: {} as Record<string, number> };

/**
 * Targets of the component attributes (undefined for "no image") as near the prior's own
 * normalised coefficients (`prior`, the anatomy drawn on the grid) as the sampled bin allows: the
 * prior's value where it lies at least 20 % of the bin's width inside its edges, else the nearest
 * such point; within 5 % of the width is close enough (as for `addImageComponents`). Targets drawn
 * uniformly inside the bin asked for shifts the anatomy did not need, and the shift outside the
 * lungs moves the extractor's normalisation of the whole grid: with them 46 % of the chests drawn
 * without an opacity in bin 0 of img_pc_2_0 read one (5 % before the shift), 38.9 % of all draws
 * were redraws; with the nearest targets 33.1 %, and the sites' classifier's false opacities and
 * enlarged hearts fell (docs/benchmarks.md, "Component targets nearest the prior").
 */
function targetsNearPrior(schema: Schema, bins: readonly number[], prior: readonly number[]): ComponentTargets {
  const attrs = imageComponentAttributes(schema);
  if (bins.length !== attrs.length) throw new Error(`synthesiseRadiograph: ${bins.length} bins for ${attrs.length} component attributes`);
  const tolerance: number[] = [];
  const targets = attrs.map((a, j) => {
    const r = componentBinRange(a, bins[j]!);
    if (!r) return undefined;
    const width = r[1] - r[0];
    tolerance[j] = 0.05 * width;
    return Math.min(r[1] - 0.2 * width, Math.max(r[0] + 0.2 * width, prior[j]!));
  });
  return { targets, tolerance };
}

/** In bin `code` of attr, at least 1 % of the bin's width inside its finite edges. */
function safelyInBin(attr: ImageComponentAttribute, code: number, value: number): boolean {
  if (componentBin(attr, value) !== code) return false;
  const r = componentBinRange(attr, code);
  if (!r) return false;
  const margin = 0.01 * (r[1] - r[0]);
  return (code === 0 || value >= r[0] + margin) && (code === attr.edges.length || value < r[1] - margin);
}
