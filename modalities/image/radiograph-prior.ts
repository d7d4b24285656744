/**
 * Coordinator-side chest radiograph decoder for schemas whose image attributes are
 * `image-finding` classes (several binary findings per image: cardiomegaly, lung opacity,
 * nodule; model/schema.ts IMAGE_FEATURES). The anatomy is a public, data-free procedural prior
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
import type { Rng } from '../fhir/rng.ts';

export interface RadiographFindings {
  cardiomegaly: boolean;
  opacity: boolean;
  nodule: boolean;
}

export interface RenderedPrior {
  density: Float32Array;
  size: number;
  ctr: number;
  /** 1 inside the lung fields (where the findings are): image components leave them alone. */
  lungs: Uint8Array;
}

/** Draws one frontal chest radiograph density image on a size×size grid. */
export function renderPriorRadiograph(size: number, findings: RadiographFindings, rng: Rng): RenderedPrior {
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
  const density = new Float32Array(size * size);
  const lungs = new Uint8Array(size * size);
  const inv = 1 / size;
  // The lung texture sin(40x + 25y + φ)·cos(31y − 17x) and the consolidation's Gaussian are
  // separable in x and y: per-column and per-row factors instead of trigonometry per pixel.
  const colSin40 = new Float64Array(size);
  const colCos40 = new Float64Array(size);
  const colCos17 = new Float64Array(size);
  const colSin17 = new Float64Array(size);
  const colOpacity = new Float64Array(size);
  for (let px = 0; px < size; px++) {
    const x = (px + 0.5) * inv;
    colSin40[px] = Math.sin(40 * x);
    colCos40[px] = Math.cos(40 * x);
    colCos17[px] = Math.cos(17 * x);
    colSin17[px] = Math.sin(17 * x);
    if (opacity) colOpacity[px] = Math.exp(-((x - opacity.x) ** 2) / (2 * opacity.sigma * opacity.sigma));
  }
  for (let py = 0; py < size; py++) {
    const y = (py + 0.5) * inv;
    const rowSin = Math.sin(25 * y + phase);
    const rowCos = Math.cos(25 * y + phase);
    const rowCos31 = Math.cos(31 * y);
    const rowSin31 = Math.sin(31 * y);
    const rowOpacity = opacity ? opacity.amp * Math.exp(-((y - opacity.y) ** 2) / (2 * opacity.sigma * opacity.sigma)) : 0;
    const half = bodyHalf * (y < cy - 0.3 * s ? 0.92 : 1);
    const ly = (y - lungCy) / lungB;
    const hy = (y - heartCy) / heartB;
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) * inv;
      const dxm = x - cx;
      if (Math.abs(dxm) > half) {
        density[py * size + px] = 0.03;
        continue;
      }
      let d = 0.45;
      const side = dxm < 0 ? -1 : 1;
      const lx = (x - (cx + side * lungDx)) / lungA;
      const across = Math.min(1, Math.abs(dxm) / (lungDx + lungA));
      const dome = diaphragm - 0.03 * s * (1 - across * across);
      if (lx * lx + ly * ly < 1 && y < dome) {
        lungs[py * size + px] = 1;
        const texture = (colSin40[px] * rowCos + colCos40[px] * rowSin) * (rowCos31 * colCos17[px] + rowSin31 * colSin17[px]);
        d = 0.12 + 0.025 * texture;
        const bend = dxm / (lungDx + lungA);
        const t = (y - (cy - 0.3 * s) - 0.035 * s * bend * bend) / (0.056 * s);
        if (t > 0 && t - Math.floor(t) < 0.22) d += 0.09;
        if (opacity) d += rowOpacity * colOpacity[px];
        if (nodule) {
          const r = Math.hypot(x - nodule.x, y - nodule.y);
          if (r < nodule.r * 1.3) d += 0.42 * Math.min(1, Math.max(0, (nodule.r * 1.3 - r) / (nodule.r * 0.6)));
        }
      } else if (y >= dome) d = 0.5;
      if (Math.abs(dxm) < 0.06 * s && y < heartCy) d = Math.max(d, 0.62);
      const hx = (x - heartCx) / heartA;
      if (hx * hx + hy * hy < 1 && y < dome + 0.02 * s) d = Math.max(d, 0.62);
      if (Math.abs(dxm) < 0.028 * s) d += 0.12;
      density[py * size + px] = d;
    }
  }
  return { density, size, ctr, lungs };
}

/**
 * Density [0, 1] → MONOCHROME2 stored values. The acquisition (offset, gain, noise) is drawn per
 * image from a public range of generic radiography settings (offset 0.02–0.2, gain 0.6–0.9,
 * noise sd 0.01–0.035 of full scale) unless given, so the synthetic images are not all from one
 * idealised scanner. Returns the pixels and a window covering the image.
 */
export function densityToStored(
  density: ArrayLike<number>,
  bitsStored: number,
  rng: Rng,
  acquisition: { offset?: number; gain?: number; noise?: number } = {},
): { pixels: Uint16Array; windowCenter: number; windowWidth: number } {
  const max = 2 ** bitsStored - 1;
  const out = new Uint16Array(density.length);
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
    c = ((c << 21) | (c >>> 11)) + t | 0;
    const u = (t & 1023) + ((t >>> 10) & 1023) + ((t >>> 20) & 1023);
    let v = base + gain * density[i] + u * step;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    out[i] = (v * max + 0.5) | 0; // Math.round for v ≥ 0, at a third of the cost
  }
  return { pixels: out, windowCenter: Math.round((offset + gain * 0.5) * max), windowWidth: Math.max(1, Math.round(gain * max)) };
}
