/**
 * Image component bins (`kind: image-component`, model/schema.ts): a public low-frequency
 * DCT-II basis image (u, v) on the schema's image grid and public bin edges of the coefficient of
 * the *normalised* grid image along it (the same normalisation as the image-finding extractors:
 * area-resampled to grid × grid, 1st percentile → 0, 99th → 1).
 *
 * - Site (`componentCodes`): the coefficient of the patient's normalised image, binned — one
 *   bounded code per attribute, so the bins join the joint model through the same secure
 *   marginals as everything else (no separate budget; the basis and edges are public).
 * - Coordinator (`addImageComponents`): after the findings are drawn into the anatomical prior,
 *   the image's normalised coefficient along each basis is moved to a value drawn uniformly in
 *   the sampled bin (a few fixed-point steps, since the percentile normalisation depends on the
 *   image), so what the sites' images look like along those directions — body habitus, exposure
 *   gradients, mediastinal width — is learned from the sites, and the sites' encoder reads the
 *   sampled bin back from the synthetic DICOM.
 * Pure.
 */
import type { Rng } from '../fhir/rng.ts';
import { componentMissingCode, type ImageComponentAttribute, type Schema } from '../../model/schema.ts';

export type { ImageComponentAttribute };

export function imageComponentAttributes(schema: Schema): ImageComponentAttribute[] {
  return schema.attributes.filter((a): a is ImageComponentAttribute => a.kind === 'image-component');
}

const basisCache = new Map<string, Float64Array>();

/** Orthonormal 2-D DCT-II basis image (u, v) of an n×n grid, sampled at size×size pixel centres (size = n: exact). */
export function dctBasisImage(u: number, v: number, n: number, size = n): Float64Array {
  const key = `${u},${v},${n},${size}`;
  const hit = basisCache.get(key);
  if (hit) return hit;
  const out = new Float64Array(size * size);
  const cu = u === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  const cv = v === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
  for (let y = 0; y < size; y++) {
    const gy = ((y + 0.5) * n) / size - 0.5;
    const by = cu * Math.cos((Math.PI * (2 * gy + 1) * u) / (2 * n));
    for (let x = 0; x < size; x++) {
      const gx = ((x + 0.5) * n) / size - 0.5;
      out[y * size + x] = by * cv * Math.cos((Math.PI * (2 * gx + 1) * v) / (2 * n));
    }
  }
  basisCache.set(key, out);
  return out;
}

/** Coefficient of an n×n grid image along basis (u, v). */
export function componentCoefficient(grid: ArrayLike<number>, n: number, basis: readonly [number, number]): number {
  const b = dctBasisImage(basis[0], basis[1], n);
  let s = 0;
  for (let i = 0; i < b.length; i++) s += grid[i] * b[i];
  return s;
}

/** Bin of a coefficient: 0 below edges[0], …, edges.length at or above the last edge. */
export function componentBin(attr: ImageComponentAttribute, value: number): number {
  let k = 0;
  while (k < attr.edges.length && value >= attr.edges[k]) k++;
  return k;
}

/** Site side: the codes of every component attribute for one normalised n×n grid image. */
export function componentCodes(attrs: readonly ImageComponentAttribute[], grid: ArrayLike<number>, n: number): number[] {
  return attrs.map((a) => componentBin(a, componentCoefficient(grid, n, a.basis)));
}

/** [lo, hi) of bin `code` (undefined for "no image"). */
export function componentBinRange(attr: ImageComponentAttribute, code: number): [number, number] | undefined {
  const e = attr.edges;
  if (code < 0 || code > e.length || code === componentMissingCode(attr)) return undefined;
  return [code === 0 ? attr.range[0] : e[code - 1], code === e.length ? attr.range[1] : e[code]];
}

/** Centre of bin `code` (undefined for "no image"). */
export function componentBinCentre(attr: ImageComponentAttribute, code: number): number | undefined {
  const r = componentBinRange(attr, code);
  return r && (r[0] + r[1]) / 2;
}

function percentile(sorted: Float32Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))];
}

/** Area-average of a size×size image onto n×n (size a multiple of n, else nearest cells). */
function toGrid(img: ArrayLike<number>, size: number, n: number): Float32Array {
  const g = new Float32Array(n * n);
  const cnt = new Float32Array(n * n);
  for (let y = 0; y < size; y++) {
    const gy = Math.min(n - 1, Math.floor((y * n) / size));
    for (let x = 0; x < size; x++) {
      const gx = Math.min(n - 1, Math.floor((x * n) / size));
      g[gy * n + gx] += img[y * size + x];
      cnt[gy * n + gx]++;
    }
  }
  for (let i = 0; i < g.length; i++) g[i] /= cnt[i] || 1;
  return g;
}

/**
 * Moves the size×size density image's normalised coefficient along each component basis to a
 * value drawn in its sampled bin (`bins[j]` for attribute j; "no image" leaves it alone). With
 * `keep` (1 = leave the pixel alone, e.g. the lung fields where the findings are), the change is
 * the basis image outside `keep`, scaled so the coefficient still moves by the wanted amount.
 * Returns the achieved normalised coefficients.
 */
export function addImageComponents(schema: Schema, density: Float32Array, size: number, bins: readonly number[], rng: Rng, keep?: Uint8Array, steps = 6): number[] {
  const attrs = imageComponentAttributes(schema);
  const n = schema.image?.grid ?? 64;
  const targets = attrs.map((a, j) => {
    const r = componentBinRange(a, bins[j]);
    if (!r) return undefined;
    // Inside the bin, away from its edges (the encoder must read the same bin back).
    return r[0] + (0.2 + 0.6 * rng.next()) * (r[1] - r[0]);
  });
  const up = attrs.map((a) => {
    const b = dctBasisImage(a.basis[0], a.basis[1], n, size);
    if (!keep) return { b, gain: 1 };
    const m = Float64Array.from(b, (v, i) => (keep[i] ? 0 : v));
    let num = 0;
    let den = 0;
    for (let i = 0; i < b.length; i++) {
      num += b[i] * m[i];
      den += b[i] * b[i];
    }
    return { b: m, gain: den > 0 ? Math.max(0.05, num / den) : 1 };
  });
  let achieved: number[] = [];
  for (let step = 0; step < steps; step++) {
    const g = toGrid(density, size, n);
    const sorted = Float32Array.from(g).sort();
    const lo = percentile(sorted, 0.01);
    const span = Math.max(1e-6, percentile(sorted, 0.99) - lo);
    for (let i = 0; i < g.length; i++) g[i] = Math.min(1, Math.max(0, (g[i] - lo) / span));
    achieved = attrs.map((a) => componentCoefficient(g, n, a.basis));
    let moved = false;
    attrs.forEach((_, j) => {
      const t = targets[j];
      if (t === undefined) return;
      const delta = ((t - achieved[j]) * span) / up[j].gain;
      if (Math.abs(t - achieved[j]) < 1e-3) return;
      moved = true;
      const b = up[j].b;
      for (let i = 0; i < density.length; i++) density[i] = Math.min(1, Math.max(0, density[i] + delta * b[i]));
    });
    if (!moved) break;
  }
  return achieved;
}
