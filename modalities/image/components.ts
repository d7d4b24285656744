/**
 * Image component bins (`kind: image-component`, issue 5): a public low-frequency DCT basis
 * index (u, v) on the schema's image grid and public bin edges of the coefficient of the
 * normalised image along it. The site computes the coefficient from its normalised grid image
 * and bins it (codes 0..edges.length, then "no image"); the joint model learns the bins with the
 * other attributes through the same secure marginals; the coordinator adds bin centre × basis
 * image to the decoded radiograph. Until the schema parser knows the kind, schemas have none and
 * these functions are no-ops.
 */
import type { Rng } from '../fhir/rng.ts';
import type { Schema } from '../../model/schema.ts';

export interface ImageComponentAttribute {
  name: string;
  kind: 'image-component';
  /** DCT-II basis index (u = vertical frequency, v = horizontal) on the schema's image grid. */
  basis: [number, number];
  /** Coefficient bin edges (orthonormal DCT of the [0, 1] normalised grid image). */
  edges: number[];
  /** Decoding range of the open outer bins. */
  range: [number, number];
}

export function imageComponentAttributes(schema: Schema): ImageComponentAttribute[] {
  return schema.attributes.filter((a) => (a.kind as string) === 'image-component') as unknown as ImageComponentAttribute[];
}

/** Centre of bin `code` of a component attribute (undefined for "no image"). */
export function componentBinCentre(attr: ImageComponentAttribute, code: number): number | undefined {
  const e = attr.edges;
  if (code < 0 || code > e.length) return undefined;
  const lo = code === 0 ? attr.range[0] : e[code - 1];
  const hi = code === e.length ? attr.range[1] : e[code];
  return (lo + hi) / 2;
}

/** Orthonormal 2-D DCT-II basis image (u, v) on an n×n grid, sampled at size×size pixel centres. */
export function dctBasisImage(u: number, v: number, n: number, size: number): Float64Array {
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
  return out;
}

/** Adds Σ (sampled coefficient − phantom's own coefficient) × basis to a size×size density image. */
export function addImageComponents(schema: Schema, density: Float32Array, size: number, bins: readonly number[], _rng: Rng): void {
  const attrs = imageComponentAttributes(schema);
  const n = schema.image?.grid ?? 64;
  attrs.forEach((a, j) => {
    const centre = componentBinCentre(a, bins[j]);
    if (centre === undefined) return;
    const basis = dctBasisImage(a.basis[0], a.basis[1], n, size);
    // The coefficient of the current image on the grid (area-sampled: mean over the pixels of each cell ≈ point samples).
    let cur = 0;
    const scale = (n * n) / (size * size);
    for (let i = 0; i < density.length; i++) cur += density[i] * basis[i];
    cur *= scale;
    const delta = centre - cur;
    for (let i = 0; i < density.length; i++) density[i] = Math.min(1, Math.max(0, density[i] + delta * basis[i]));
  });
}
