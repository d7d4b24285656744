/**
 * The DP image model (docs/modalities.md): images on a small square grid (the model grid, e.g.
 * 32×32, intensities in [0, 1]) are projected on the public k×k low-frequency DCT block, each
 * patient's coefficient vector is clipped to L2 norm C, and the sites' secure aggregate gives,
 * per image class, a noisy count, a noisy sum of vectors (L2 sensitivity C) and a noisy sum of
 * squared coefficients (L2 sensitivity C²). Optionally a noisy second-moment matrix Σ v vᵀ
 * (sensitivity C²) gives DP principal components, whose binned scores are attributes of the
 * joint model. Everything in this file is post-processing of those noisy sums, or site-side
 * encoding before noise: pure math, no I/O, no privacy noise (that is added in privacy/).
 */
import type { Rng } from '../../model/rng.ts';
import { clipL2 } from './clip.ts';
import { dct2, idct2, lowFrequencyBlock, padLowFrequencyBlock } from './dct.ts';

export interface ImageClassStats {
  /** Image class (finding) name, e.g. "normal", "opacity". */
  name: string;
  /** Patients in the class (noisy). */
  count: number;
  /** Per-coefficient mean, k·k values. */
  mean: Float64Array;
  /** Per-coefficient variance, k·k values (≥ the variance floor). */
  variance: Float64Array;
}

export interface ImageComponents {
  /** Orthonormal principal directions in coefficient space (each k·k values), strongest first. */
  vectors: Float64Array[];
  /** Standard deviation of the (class-centred) score along each direction. */
  sd: number[];
  /** Cut points of the standardised score defining the component bins (e.g. [-0.67, 0, 0.67] → 4 bins). */
  binEdges: number[];
}

export interface ImageModel {
  /** Side of the square model grid the basis is defined on (e.g. 32). */
  grid: number;
  /** Side of the low-frequency DCT block kept (k·k coefficients per image). */
  k: number;
  /** L2 clipping bound C of per-patient coefficient vectors (the contribution bound). */
  clip: number;
  classes: ImageClassStats[];
  components?: ImageComponents;
}

/** Site side, before noise: an image on the model grid (values in [0, 1]) → clipped k·k coefficient vector. */
export function encodeImageFeatures(pixels: ArrayLike<number>, grid: number, k: number, clip: number): Float64Array {
  return clipL2(lowFrequencyBlock(dct2(pixels, grid, grid), grid, grid, k), clip);
}

export interface ClassSums {
  name: string;
  count: number;
  /** Σ v over the class (k·k values). */
  sum: ArrayLike<number>;
  /** Σ v∘v over the class (k·k values). */
  sumSq: ArrayLike<number>;
}

/** Exact per-class sums of clipped vectors (what each site contributes before noise and aggregation). */
export function classSums(vectors: ArrayLike<number>[], labels: string[], classNames: string[], dim: number): ClassSums[] {
  const out = classNames.map((name) => ({ name, count: 0, sum: new Float64Array(dim), sumSq: new Float64Array(dim) }));
  vectors.forEach((v, i) => {
    const c = classNames.indexOf(labels[i]);
    if (c < 0) throw new Error(`classSums: unknown class ${labels[i]}`);
    const s = out[c];
    s.count++;
    for (let j = 0; j < dim; j++) {
      s.sum[j] += v[j];
      s.sumSq[j] += v[j] * v[j];
    }
  });
  return out;
}

export interface ModelFromSumsOptions {
  grid: number;
  k: number;
  clip: number;
  /** Noisy counts are floored at this before dividing (default 1). */
  minCount?: number;
  /** Variances are floored at this (default 1e-6): noisy second moments can go below mean². */
  varianceFloor?: number;
}

/**
 * Post-processing of noisy class sums into means and variances: mean = sum / max(count, minCount)
 * projected back into the clipping ball (no real mean can leave it), variance = E[v²] − mean²
 * floored. Deterministic; no budget.
 */
export function modelFromNoisySums(sums: ClassSums[], opts: ModelFromSumsOptions): ImageModel {
  const dim = opts.k * opts.k;
  const minCount = opts.minCount ?? 1;
  const floor = opts.varianceFloor ?? 1e-6;
  const classes = sums.map((s) => {
    if (s.sum.length !== dim || s.sumSq.length !== dim)
      throw new Error(`modelFromNoisySums: class ${s.name} has ${s.sum.length}/${s.sumSq.length} values, expected ${dim}`);
    const n = Math.max(s.count, minCount);
    const mean = clipL2(
      Array.from(s.sum, (x) => x / n),
      opts.clip,
    );
    const variance = new Float64Array(dim);
    for (let j = 0; j < dim; j++) variance[j] = Math.max(s.sumSq[j] / n - mean[j] * mean[j], floor);
    return { name: s.name, count: s.count, mean, variance };
  });
  return { grid: opts.grid, k: opts.k, clip: opts.clip, classes };
}

/**
 * DP-PCA option: top-r eigenvectors of a (noisy, symmetric) d×d second-moment matrix of
 * class-centred clipped vectors, by power iteration with deflation. Post-processing.
 */
export function principalComponents(
  moment: Float64Array,
  d: number,
  r: number,
  count: number,
  iterations = 200,
): { vectors: Float64Array[]; sd: number[] } {
  if (moment.length !== d * d) throw new Error(`principalComponents: expected ${d}×${d} matrix`);
  const m = Float64Array.from(moment);
  // Symmetrise (noise may be added to each entry independently).
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) m[i * d + j] = m[j * d + i] = (m[i * d + j] + m[j * d + i]) / 2;
  const vectors: Float64Array[] = [];
  const sd: number[] = [];
  for (let c = 0; c < r; c++) {
    let v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = 1 / Math.sqrt(d) + (i === c ? 0.5 : 0);
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += m[i * d + j] * v[j];
        w[i] = s;
      }
      // Orthogonalise against earlier components (keeps the iteration stable under noise).
      for (const u of vectors) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += w[i] * u[i];
        for (let i = 0; i < d; i++) w[i] -= dot * u[i];
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += w[i] * w[i];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      for (let i = 0; i < d; i++) w[i] /= norm;
      lambda = norm;
      v = w;
    }
    vectors.push(v);
    sd.push(Math.sqrt(Math.max(lambda, 0) / Math.max(count, 1)));
    // Deflate.
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m[i * d + j] -= lambda * v[i] * v[j];
  }
  return { vectors, sd };
}

/** Component bin of a class-centred vector along each component (site side, for the joint model's attributes). */
export function componentBins(model: ImageModel, classIndex: number, v: ArrayLike<number>): number[] {
  const comp = model.components;
  if (!comp) return [];
  const mean = model.classes[classIndex].mean;
  return comp.vectors.map((e, j) => {
    let s = 0;
    for (let i = 0; i < e.length; i++) s += (v[i] - mean[i]) * e[i];
    const z = comp.sd[j] > 0 ? s / comp.sd[j] : 0;
    let b = 0;
    while (b < comp.binEdges.length && z >= comp.binEdges[b]) b++;
    return b;
  });
}

export function classIndex(model: ImageModel, name: string): number {
  const i = model.classes.findIndex((c) => c.name === name);
  if (i < 0) throw new Error(`image model has no class ${JSON.stringify(name)} (classes: ${model.classes.map((c) => c.name).join(', ')})`);
  return i;
}

/** A standard-normal draw truncated to [lo, hi) (rejection, then uniform fallback after 64 tries). */
function truncatedNormal(rng: Rng, lo: number, hi: number): number {
  for (let t = 0; t < 64; t++) {
    const z = rng.normal();
    if (z >= lo && z < hi) return z;
  }
  const a = Math.max(lo, -3);
  const b = Math.min(hi, 3);
  return a < b ? rng.uniform(a, b) : Math.max(lo, Math.min(hi, 0));
}

/**
 * A seeded draw of a coefficient vector for one class: the class mean, plus (when the model has
 * components and bins are given) each component's score drawn inside its bin, plus independent
 * Gaussian residuals with the class's per-coefficient variance (less what the components explain).
 */
export function sampleCoefficients(model: ImageModel, cls: number, rng: Rng, bins?: readonly number[], residualScale = 1): Float64Array {
  const c = model.classes[cls];
  if (!c) throw new Error(`sampleCoefficients: class index ${cls} out of range`);
  const d = c.mean.length;
  const out = Float64Array.from(c.mean);
  const resVar = Float64Array.from(c.variance);
  const comp = model.components;
  if (comp && bins && bins.length > 0) {
    if (bins.length !== comp.vectors.length)
      throw new Error(`sampleCoefficients: ${bins.length} component bins for ${comp.vectors.length} components`);
    comp.vectors.forEach((e, j) => {
      const b = bins[j];
      if (!(b >= 0 && b <= comp.binEdges.length)) throw new Error(`sampleCoefficients: bin ${b} of component ${j} out of range`);
      const lo = b === 0 ? -Infinity : comp.binEdges[b - 1];
      const hi = b === comp.binEdges.length ? Infinity : comp.binEdges[b];
      const s = truncatedNormal(rng, lo, hi) * comp.sd[j];
      for (let i = 0; i < d; i++) {
        out[i] += s * e[i];
        resVar[i] -= comp.sd[j] * comp.sd[j] * e[i] * e[i];
      }
    });
  }
  if (residualScale > 0) for (let i = 0; i < d; i++) out[i] += residualScale * Math.sqrt(Math.max(resVar[i], 0)) * rng.normal();
  return out;
}

/** Image on the model grid from a k·k coefficient block (high frequencies zero). */
export function reconstructLowRes(model: Pick<ImageModel, 'grid' | 'k'>, coefficients: ArrayLike<number>): Float64Array {
  return idct2(padLowFrequencyBlock(coefficients, model.k, model.grid, model.grid), model.grid, model.grid);
}

/** JSON-safe form of a model (typed arrays as plain arrays). */
export function imageModelToJson(model: ImageModel): unknown {
  return {
    ...model,
    classes: model.classes.map((c) => ({ ...c, mean: Array.from(c.mean), variance: Array.from(c.variance) })),
    components: model.components && { ...model.components, vectors: model.components.vectors.map((v) => Array.from(v)) },
  };
}

export function imageModelFromJson(json: unknown): ImageModel {
  const m = json as ImageModel & { classes: Array<{ mean: number[]; variance: number[] }> };
  return {
    grid: m.grid,
    k: m.k,
    clip: m.clip,
    classes: m.classes.map((c) => ({
      ...(c as unknown as ImageClassStats),
      mean: Float64Array.from(c.mean),
      variance: Float64Array.from(c.variance),
    })),
    components: m.components && {
      ...m.components,
      vectors: (m.components.vectors as unknown as number[][]).map((v) => Float64Array.from(v)),
    },
  };
}
