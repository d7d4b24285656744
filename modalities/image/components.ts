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

/** Cell of each pixel coordinate on the n-grid (area average when size is a multiple of n, else nearest cells). */
function gridIndex(size: number, n: number): Int32Array {
  const out = new Int32Array(size);
  for (let x = 0; x < size; x++) out[x] = Math.min(n - 1, Math.floor((x * n) / size));
  return out;
}

/** Pixels per grid cell, for the area average. */
function gridCounts(cell: Int32Array, n: number): Float64Array {
  const c1 = new Float64Array(n);
  for (let x = 0; x < cell.length; x++) c1[cell[x]]++;
  const out = new Float64Array(n * n);
  for (let gy = 0; gy < n; gy++) for (let gx = 0; gx < n; gx++) out[gy * n + gx] = c1[gy] * c1[gx] || 1;
  return out;
}

/** Normalised grid (the extractors' 1st/99th percentile scaling, clamped) and its coefficients. */
function normalisedCoefficients(grid: Float64Array, bases: Float64Array[], scratch: Float32Array, out: number[]): number {
  for (let i = 0; i < grid.length; i++) scratch[i] = grid[i];
  scratch.sort();
  const lo = percentile(scratch, 0.01);
  const span = Math.max(1e-6, percentile(scratch, 0.99) - lo);
  const inv = 1 / span;
  for (let j = 0; j < bases.length; j++) {
    const b = bases[j];
    let s = 0;
    for (let i = 0; i < grid.length; i++) {
      const v = (grid[i] - lo) * inv;
      s += (v < 0 ? 0 : v > 1 ? 1 : v) * b[i];
    }
    out[j] = s;
  }
  return span;
}

/**
 * Moves the size×size density image's normalised coefficient along each component basis to a
 * value drawn in its sampled bin (`bins[j]` for attribute j; "no image" leaves it alone). With
 * `keep` (1 = leave the pixel alone, e.g. the lung fields where the findings are), the change is
 * the basis image outside `keep`, scaled so the coefficient still moves by the wanted amount.
 * The density is clamped to [0, 1]. Returns the achieved normalised coefficients.
 *
 * The fixed-point steps run on the n×n grid (the area average is linear, so a change of the
 * image by δ·basis changes the grid by δ·grid(basis)); the image itself is touched once per
 * round, and the next round measures what clamping to [0, 1] really gave.
 */
export function addImageComponents(schema: Schema, density: Float32Array, size: number, bins: readonly number[], rng: Rng, keep?: Uint8Array, steps = 6): number[] {
  const attrs = imageComponentAttributes(schema);
  const n = schema.image?.grid ?? 64;
  if (density.length !== size * size) throw new Error(`addImageComponents: ${density.length} pixels for ${size}×${size}`);
  if (keep && keep.length !== density.length) throw new Error(`addImageComponents: keep mask of ${keep.length} for ${density.length} pixels`);
  if (bins.length !== attrs.length) throw new Error(`addImageComponents: ${bins.length} bins for ${attrs.length} component attributes`);
  const targets = attrs.map((a, j) => {
    const r = componentBinRange(a, bins[j]);
    if (!r) return undefined;
    // Inside the bin, away from its edges (the encoder must read the same bin back).
    return r[0] + (0.2 + 0.6 * rng.next()) * (r[1] - r[0]);
  });
  const cell = gridIndex(size, n);
  const count = gridCounts(cell, n);
  const grid = new Float64Array(n * n);
  for (let i = 0; i < density.length; i++) density[i] = density[i] < 0 ? 0 : density[i] > 1 ? 1 : density[i];
  const toGrid = () => {
    grid.fill(0);
    for (let y = 0; y < size; y++) {
      const row = cell[y] * n;
      const o = y * size;
      for (let x = 0; x < size; x++) grid[row + cell[x]] += density[o + x];
    }
    for (let i = 0; i < grid.length; i++) grid[i] /= count[i];
  };
  const gridBases = attrs.map((a) => dctBasisImage(a.basis[0], a.basis[1], n));
  const active = attrs.map((_, j) => j).filter((j) => targets[j] !== undefined);
  // Per active attribute: the full-size basis, its masked grid image and the gain of the mask.
  const moves = active.map((j) => {
    const a = attrs[j];
    const b = dctBasisImage(a.basis[0], a.basis[1], n, size);
    const g = new Float64Array(n * n);
    let num = 0;
    let den = 0;
    for (let y = 0; y < size; y++) {
      const row = cell[y] * n;
      const o = y * size;
      for (let x = 0; x < size; x++) {
        const v = b[o + x];
        den += v * v;
        if (keep && keep[o + x]) continue;
        g[row + cell[x]] += v;
        num += v * v;
      }
    }
    for (let i = 0; i < g.length; i++) g[i] /= count[i];
    return { j, b, g, gain: keep ? (den > 0 ? Math.max(0.05, num / den) : 1) : 1 };
  });
  const scratch = new Float32Array(n * n);
  const achieved = new Array<number>(attrs.length).fill(0);
  const trial = new Float64Array(n * n);
  const delta = new Float64Array(moves.length);
  toGrid();
  for (let round = 0; round < steps; round++) {
    // Fixed point on the grid: find the shifts that put every coefficient on its target.
    delta.fill(0);
    let moved = false;
    for (let step = 0; step < steps; step++) {
      trial.set(grid);
      for (let m = 0; m < moves.length; m++) if (delta[m] !== 0) for (let i = 0; i < trial.length; i++) trial[i] += delta[m] * moves[m].g[i];
      const span = normalisedCoefficients(trial, gridBases, scratch, achieved);
      let off = false;
      for (let m = 0; m < moves.length; m++) {
        const { j, gain } = moves[m];
        const miss = targets[j]! - achieved[j];
        if (Math.abs(miss) < 1e-3) continue;
        off = true;
        delta[m] += (miss * span) / gain;
      }
      if (!off) break;
    }
    for (let m = 0; m < moves.length; m++) if (delta[m] !== 0) moved = true;
    if (!moved) break;
    // Apply the shifts to the image (clamped) and measure the grid it really has.
    grid.fill(0);
    for (let y = 0; y < size; y++) {
      const row = cell[y] * n;
      const o = y * size;
      for (let x = 0; x < size; x++) {
        const i = o + x;
        let v = density[i];
        if (!keep || !keep[i]) {
          for (let m = 0; m < moves.length; m++) v += delta[m] * moves[m].b[i];
          v = v < 0 ? 0 : v > 1 ? 1 : v;
          density[i] = v;
        }
        grid[row + cell[x]] += v;
      }
    }
    for (let i = 0; i < grid.length; i++) grid[i] /= count[i];
  }
  normalisedCoefficients(grid, gridBases, scratch, achieved);
  return achieved;
}
