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
  for (let py = 0; py < size; py++) {
    const y = (py + 0.5) * inv;
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) * inv;
      const dxm = x - cx;
      const half = bodyHalf * (y < cy - 0.3 * s ? 0.92 : 1);
      if (Math.abs(dxm) > half) {
        density[py * size + px] = 0.03;
        continue;
      }
      let d = 0.45;
      const side = dxm < 0 ? -1 : 1;
      const lx = (x - (cx + side * lungDx)) / lungA;
      const ly = (y - lungCy) / lungB;
      const dome = diaphragm - 0.03 * s * (1 - Math.min(1, Math.abs(dxm) / (lungDx + lungA)) ** 2);
      if (lx * lx + ly * ly < 1 && y < dome) {
        lungs[py * size + px] = 1;
        d = 0.12 + 0.025 * Math.sin(40 * x + 25 * y + phase) * Math.cos(31 * y - 17 * x);
        const t = (y - (cy - 0.3 * s) - 0.035 * s * (dxm / (lungDx + lungA)) ** 2) / (0.056 * s);
        if (t > 0 && t - Math.floor(t) < 0.22) d += 0.09;
        if (opacity) {
          const ox = x - opacity.x;
          const oy = y - opacity.y;
          d += opacity.amp * Math.exp(-(ox * ox + oy * oy) / (2 * opacity.sigma * opacity.sigma));
        }
        if (nodule) {
          const r = Math.hypot(x - nodule.x, y - nodule.y);
          if (r < nodule.r * 1.3) d += 0.42 * Math.min(1, Math.max(0, (nodule.r * 1.3 - r) / (nodule.r * 0.6)));
        }
      } else if (y >= dome) d = 0.5;
      if (Math.abs(dxm) < 0.06 * s && y < heartCy) d = Math.max(d, 0.62);
      const hx = (x - heartCx) / heartA;
      const hy = (y - heartCy) / heartB;
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
  for (let i = 0; i < out.length; i++) {
    let v = offset + gain * density[i] + (rng.next() + rng.next() + rng.next() - 1.5) * 2 * noise;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    out[i] = Math.round(v * max);
  }
  return { pixels: out, windowCenter: Math.round((offset + gain * 0.5) * max), windowWidth: Math.max(1, Math.round(gain * max)) };
}
