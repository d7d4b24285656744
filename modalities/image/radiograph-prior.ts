/**
 * Coordinator-side chest radiograph decoder for schemas whose image attributes are
 * `image-finding` classes (several binary findings per image: cardiomegaly, lung opacity,
 * nodule; schema/schema.ts IMAGE_FEATURES). The anatomy is a public, data-free procedural prior
 * (textbook proportions: lung fields, mediastinum, heart, domed diaphragms, ribs, spine); the
 * findings, which are what the sites taught the joint model, are drawn into it:
 * - cardiomegaly: a heart whose width gives a cardiothoracic ratio ≈ 0.60 (normal ≈ 0.42);
 * - opacity: a Gaussian consolidation in the lateral middle/lower zone of one lung;
 * - nodule: a small round dense disk in the upper/middle zone of one lung.
 * With `image-component` attributes (modalities/image/components.ts) the sampled component
 * values add low-frequency DCT basis images learned from the sites on top.
 * Output: a density image in [0, 1] (bright = dense) at the requested size. Pure, deterministic
 * for a given Rng.
 */
import type { Rng } from '../../model/rng.ts';
import { clampIntoGrid, drawThorax, LUNG_ROW, priorTables, type PriorWorkspace } from './radiograph-prior-pixels.ts';

export interface RadiographFindings {
  cardiomegaly: boolean;
  opacity: boolean;
  nodule: boolean;
}

export interface RenderedPrior {
  density: Float32Array;
  size: number;
  ctr: number;
  /**
   * The lung fields (where the findings are; image components leave them alone), per row y the
   * pixel ranges [lungSpans[4y], lungSpans[4y+1]) and [lungSpans[4y+2], lungSpans[4y+3]) (empty
   * when equal): each lung's pixels on one row are one run.
   */
  lungSpans: Int32Array;
}

/**
 * Draws one frontal chest radiograph density image on a size×size grid (into `into` when given,
 * e.g. a buffer reused from image to image: every pixel is written). With a grid, the density is
 * then clamped to [0, 1] and its area averages on the grid written to grid.out
 * (radiograph-prior-pixels.ts).
 */
export function renderPriorRadiograph(
  size: number,
  findings: RadiographFindings,
  rng: Rng,
  into?: Float32Array,
  work?: PriorWorkspace,
): RenderedPrior {
  if (into && into.length !== size * size) throw new Error(`renderPriorRadiograph: buffer of ${into.length} for ${size}×${size}`);
  if (work && (size % work.n !== 0 || work.out.length !== work.n * work.n || (work.tables && work.tables.size !== size)))
    throw new Error(`renderPriorRadiograph: a ${work.n}×${work.n} grid of a ${size}×${size} image needs size a multiple of the grid`);
  const s = 0.88 + 0.16 * rng.next(); // body habitus / magnification
  const cx = 0.5 + 0.02 * (rng.next() - 0.5);
  const cy = 0.5 + 0.03 * (rng.next() - 0.5);
  const lungDx = 0.19 * s;
  const lungA = 0.15 * s;
  const lungB = 0.3 * s;
  const lungCy = cy - 0.02 * s;
  const diaphragm = cy + 0.21 * s;
  const bodyHalf = 0.44 * s;
  const thorax = 2 * (lungDx + lungA);
  const ctr = findings.cardiomegaly ? 0.6 + 0.03 * rng.normal() : 0.42 + 0.025 * rng.normal();
  const heartA = (ctr * thorax) / 2;
  const heartB = 0.12 * s;
  const heartCx = cx + 0.025 * s;
  const heartCy = cy + 0.1 * s;
  let opacity: { x: number; y: number; sigma: number; amp: number } | undefined;
  if (findings.opacity) {
    const sign = rng.bernoulli(0.5) ? -1 : 1;
    opacity = { x: cx + sign * (0.2 + 0.04 * rng.next()) * s, y: cy + (-0.06 + 0.12 * rng.next()) * s, sigma: 0.045 * s, amp: 0.38 };
  }
  let nodule: { x: number; y: number; r: number } | undefined;
  if (findings.nodule) {
    const sign = rng.bernoulli(0.5) ? -1 : 1;
    nodule = { x: cx + sign * (0.18 + 0.06 * rng.next()) * s, y: cy + (-0.18 + 0.2 * rng.next()) * s, r: 0.024 * s };
  }
  const phase = rng.next() * 6.28;
  const density = into ?? new Float32Array(size * size);
  const inv = 1 / size;
  /** Pixels whose centre x satisfies |x − c| ≤ h, as [spanA, spanB) within [lo, hi) (no array per call). */
  let spanA = 0;
  let spanB = 0;
  const span = (c: number, h: number, lo = 0, hi = size): void => {
    // Small integers as int32 (`| 0`): the captured spanA/spanB then stay unboxed; Math.ceil's
    // float result would be boxed on every store (two heap numbers per call, ~1,300 calls per image).
    const a = Math.max(lo, Math.ceil(size * (c - h) - 0.5)) | 0;
    const b = Math.min(hi, Math.floor(size * (c + h) - 0.5) + 1) | 0;
    spanA = a < b ? a : lo;
    spanB = a < b ? b : lo;
  };
  // Per column: the diaphragm's dome, the ribs' curvature, and the x factors of the separable
  // lung texture sin(40x + 25y + φ)·cos(31y − 17x) and consolidation Gaussian.
  // The texture's factors depend on the size alone (in the tables once); the rest is per image.
  const t = work?.tables ?? priorTables(size);
  const { rowCos31s, rowSin31s, dome, ribBend, colOpacity, lungRow, lungSpans, runs } = t;
  for (let px = 0; px < size; px++) {
    const x = (px + 0.5) * inv;
    const dxm = x - cx;
    const across = Math.min(1, Math.abs(dxm) / (lungDx + lungA));
    dome[px] = diaphragm - 0.03 * s * (1 - across * across);
    const bend = dxm / (lungDx + lungA);
    ribBend[px] = 0.035 * s * bend * bend;
    colOpacity[px] = opacity ? Math.exp(-((x - opacity.x) ** 2) / (2 * opacity.sigma * opacity.sigma)) : 0;
  }
  const ribTop = cy - 0.3 * s;
  const heartBelowDome = 0.02 * s;
  // Rows wholly above or below the diaphragm's dome are one run each.
  let domeLo = Infinity;
  let domeHi = -Infinity;
  for (let px = 0; px < size; px++) {
    if (dome[px] < domeLo) domeLo = dome[px];
    if (dome[px] > domeHi) domeHi = dome[px];
  }
  // Row by row: the body, and where the lungs, mediastinum, heart and spine lie (drawn over the
  // body by drawThorax: the lungs, then those three over them).
  lungSpans.fill(0);
  let lungLo = size;
  let lungHi = 0;
  for (let py = 0; py < size; py++) {
    const y = (py + 0.5) * inv;
    const o = py * size;
    // Body: soft tissue (0.45), below the diaphragm 0.5; air outside.
    span(cx, bodyHalf * (y < ribTop ? 0.92 : 1));
    const b0 = spanA;
    const b1 = spanB;
    density.fill(0.03, o, o + b0);
    density.fill(0.03, o + b1, o + size);
    if (y < domeLo) density.fill(0.45, o + b0, o + b1);
    else if (y >= domeHi) density.fill(0.5, o + b0, o + b1);
    else for (let px = b0; px < b1; px++) density[o + px] = y >= dome[px] ? 0.5 : 0.45;
    // Lungs above the dome: texture, ribs, findings. The lungs lie within the body; each lung's
    // run on a row is from its first to its last pixel above the dome.
    const ly = (y - lungCy) / lungB;
    if (ly * ly < 1) {
      const r = LUNG_ROW.length * py;
      lungRow[r + LUNG_ROW.y] = y;
      lungRow[r + LUNG_ROW.sin] = Math.sin(25 * y + phase);
      lungRow[r + LUNG_ROW.cos] = Math.cos(25 * y + phase);
      lungRow[r + LUNG_ROW.cos31] = rowCos31s[py];
      lungRow[r + LUNG_ROW.sin31] = rowSin31s[py];
      lungRow[r + LUNG_ROW.opacity] = opacity ? opacity.amp * Math.exp(-((y - opacity.y) ** 2) / (2 * opacity.sigma * opacity.sigma)) : 0;
      lungRow[r + LUNG_ROW.yRib] = y - ribTop;
      lungRow[r + LUNG_ROW.noduleDy2] =
        nodule !== undefined && Math.abs(y - nodule.y) < nodule.r * 1.3 ? (y - nodule.y) * (y - nodule.y) : -1;
      const halfWidth = lungA * Math.sqrt(1 - ly * ly);
      for (let side = 0; side < 2; side++) {
        span(cx + (side === 0 ? -lungDx : lungDx), halfWidth, b0, b1);
        let first = spanA;
        let last = spanB - 1;
        while (first <= last && y >= dome[first]) first++;
        while (last > first && y >= dome[last]) last--;
        if (first <= last) {
          lungSpans[4 * py + 2 * side] = first;
          lungSpans[4 * py + 2 * side + 1] = last + 1;
        }
      }
      if (py < lungLo) lungLo = py;
      lungHi = py + 1;
    }
    // Mediastinum above the heart, the heart (down to just below the dome), the spine.
    span(cx, 0.06 * s, b0, b1);
    runs[6 * py] = spanA;
    runs[6 * py + 1] = y < heartCy ? spanB : spanA;
    const hy = (y - heartCy) / heartB;
    if (hy * hy < 1) span(heartCx, heartA * Math.sqrt(1 - hy * hy), b0, b1);
    runs[6 * py + 2] = spanA;
    runs[6 * py + 3] = hy * hy < 1 ? spanB : spanA;
    span(cx, 0.028 * s, b0, b1);
    runs[6 * py + 4] = spanA;
    runs[6 * py + 5] = spanB;
  }
  drawThorax(
    density,
    t,
    lungLo,
    lungHi,
    0.056 * s,
    nodule ? nodule.x : 0,
    nodule ? nodule.r * 1.3 : 0,
    nodule ? nodule.r * 0.6 : 1,
    heartBelowDome,
    work?.kernel,
  );
  if (work) clampIntoGrid(density, size, work);
  return { density, size, ctr, lungSpans: lungSpans.slice() };
}

/**
 * Density [0, 1] → MONOCHROME2 stored values. The acquisition (offset, gain, noise) is drawn per
 * image from a public range of generic radiography settings (offset 0.02–0.2, gain 0.6–0.9,
 * noise sd 0.01–0.035 of full scale) unless given, so the synthetic images are not all from one
 * idealised scanner. Returns the pixels (in `into` when given) and a window covering the image.
 */
export function densityToStored(
  density: ArrayLike<number>,
  bitsStored: number,
  rng: Rng,
  acquisition: { offset?: number; gain?: number; noise?: number } = {},
  into?: Uint16Array,
): { pixels: Uint16Array; windowCenter: number; windowWidth: number } {
  if (into && into.length !== density.length) throw new Error(`densityToStored: buffer of ${into.length} for ${density.length} pixels`);
  const max = 2 ** bitsStored - 1;
  const out = into ?? new Uint16Array(density.length);
  const offset = acquisition.offset ?? 0.02 + 0.18 * rng.next();
  const gain = acquisition.gain ?? 0.6 + 0.3 * rng.next();
  const noise = acquisition.noise ?? 0.01 + 0.025 * rng.next();
  // Per-pixel noise: the sum of three uniforms (Irwin–Hall, sd 1/2 on [−1.5, 1.5]) taken as three
  // 10-bit fields of one 32-bit draw of an inline sfc32 seeded from `rng` — the Rng's 53-bit
  // doubles would cost six 32-bit draws per pixel.
  let a = rng.nextU32();
  let b = rng.nextU32();
  let c = rng.nextU32();
  let d = rng.nextU32() | 1;
  const step = (2 * noise) / 1024;
  const base = offset - 1.5 * 2 * noise + 1.5 * step;
  for (let i = 0; i < out.length; i++) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
    const u = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
    let v = base + gain * density[i] + u * step;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    out[i] = (v * max + 0.5) | 0; // Math.round for v ≥ 0, at a third of the cost
  }
  return { pixels: out, windowCenter: Math.round((offset + gain * 0.5) * max), windowWidth: Math.max(1, Math.round(gain * max)) };
}
