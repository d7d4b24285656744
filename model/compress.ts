/**
 * Domain compression of rare values, as private-pgm's MST does (McKenna, Miklau, Sheldon,
 * "Winning the NIST Contest", JPC 2021, `compress_domain`): after the 1-way round, the values of
 * an attribute whose noisy count is below `thresholdSigmas`·σ are merged into one "rare" bucket,
 * later rounds measure marginals over the compressed domain, the model is estimated on it, and the
 * fitted model is expanded back to the original values.
 *
 * Privacy: the value map is a function of released noisy 1-way counts and of the public domain
 * only — post-processing, so it costs no budget and reveals nothing beyond those counts. It does
 * not change the sensitivity of any later round either: a patient is still one row, so it still
 * adds exactly one count to every (compressed) marginal (privacy/dp/mechanisms.ts is unchanged).
 *
 * The map travels in each later round's task spec, so every site merges identically; a site
 * checks it against the public schema with `validateValueMap` before touching data.
 *
 * Pure: no I/O.
 */
import { Dataset, Domain, allocColumn } from './domain.ts';
import { estimateTotal, type Measurement } from './measurement.ts';
import { GraphicalModel } from './pgm/model.ts';
import { Structure } from './pgm/structure.ts';

/**
 * Per compressed attribute, the code of every original value (array index = original value):
 * kept values get 0..k−1 in their original order, every rare value gets k (the bucket).
 * Attributes absent from the map are not compressed.
 */
export type ValueMap = Readonly<Record<string, readonly number[]>>;

/** private-pgm's MST threshold: a value is rare when its noisy count is below 3σ. */
export const DEFAULT_RARE_THRESHOLD_SIGMAS = 3;

/** Why a value map does not fit a domain: the first problem found, naming the attribute. */
export function valueMapProblem(domain: Domain, map: unknown): string | undefined {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) return 'value map must be an object {attribute: codes}';
  for (const [attr, codes] of Object.entries(map as Record<string, unknown>)) {
    if (!domain.has(attr)) return `value map names unknown attribute ${JSON.stringify(attr)}`;
    const size = domain.sizeOf(attr);
    if (!Array.isArray(codes)) return `value map of "${attr}" must be an array of codes`;
    if (codes.length !== size) return `value map of "${attr}" has ${codes.length} codes, the attribute has ${size} values`;
    let max = -1;
    for (let v = 0; v < codes.length; v++) {
      const c: unknown = codes[v];
      if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0 || c >= size)
        return `value map of "${attr}": code of value ${v} must be an integer in 0..${size - 1}, got ${JSON.stringify(c)}`;
      max = Math.max(max, c);
    }
    const seen = new Uint8Array(max + 1);
    for (const c of codes as number[]) seen[c] = 1;
    const missing = seen.indexOf(0);
    if (missing >= 0) return `value map of "${attr}": no value maps to code ${missing} (codes must be 0..${max} without gaps)`;
  }
  return undefined;
}

/** Throws a descriptive error when `map` is not a value map over `domain`. */
export function validateValueMap(domain: Domain, map: unknown): asserts map is ValueMap {
  const problem = valueMapProblem(domain, map);
  if (problem) throw new Error(problem);
}

/** True when the map merges nothing. */
export function isIdentityMap(map: ValueMap): boolean {
  return Object.keys(map).length === 0;
}

/** Pooled noisy counts and their per-cell σ of one attribute from its 1-way answers. */
function pooledOneWay(attr: string, size: number, oneWays: readonly Measurement[]): { y: Float64Array; sigma: number } | undefined {
  const ms = oneWays.filter((m) => m.attrs.length === 1 && m.attrs[0] === attr);
  if (ms.length === 0) return undefined;
  const y = new Float64Array(size);
  let wsum = 0;
  for (const m of ms) {
    if (m.values.length !== size) throw new Error(`1-way measurement of "${attr}" has ${m.values.length} cells, expected ${size}`);
    const w = 1 / (m.sigma * m.sigma);
    wsum += w;
    for (let i = 0; i < size; i++) y[i] += w * m.values[i];
  }
  for (let i = 0; i < size; i++) y[i] /= wsum;
  return { y, sigma: 1 / Math.sqrt(wsum) };
}

/**
 * The value map from released noisy 1-way counts (post-processing): per attribute, values with a
 * pooled noisy count below `thresholdSigmas`·σ are merged. An attribute with fewer than two rare
 * values is left alone (merging one value changes nothing); one whose values are all rare
 * becomes a single bucket.
 */
export function rareValueMap(
  domain: Domain,
  oneWays: readonly Measurement[],
  thresholdSigmas = DEFAULT_RARE_THRESHOLD_SIGMAS,
  minValues = 0,
): ValueMap {
  if (!(thresholdSigmas >= 0) || !Number.isFinite(thresholdSigmas))
    throw new Error(`rareValueMap: thresholdSigmas must be a finite number >= 0, got ${thresholdSigmas}`);
  if (!(minValues >= 0)) throw new Error(`rareValueMap: minValues must be >= 0, got ${minValues}`);
  const out: Record<string, number[]> = {};
  domain.attrs.forEach((attr, j) => {
    const size = domain.sizes[j];
    if (size < minValues) return;
    const pooled = pooledOneWay(attr, size, oneWays);
    if (!pooled) throw new Error(`rareValueMap: no 1-way measurement of "${attr}"`);
    const threshold = thresholdSigmas * pooled.sigma;
    const keep = Array.from(pooled.y, (v) => v >= threshold);
    const rare = keep.filter((k) => !k).length;
    if (rare < 2) return;
    const codes = new Array<number>(size);
    let next = 0;
    for (let v = 0; v < size; v++) if (keep[v]) codes[v] = next++;
    for (let v = 0; v < size; v++) if (!keep[v]) codes[v] = next;
    out[attr] = codes;
  });
  return out;
}

/** Number of values of `attr` after compression. */
function compressedSize(domain: Domain, map: ValueMap, attr: string): number {
  const codes = map[attr];
  return codes ? Math.max(...codes) + 1 : domain.sizeOf(attr);
}

/** The domain the later rounds measure on: same attributes, compressed sizes. */
export function compressDomain(domain: Domain, map: ValueMap): Domain {
  validateValueMap(domain, map);
  return new Domain(
    domain.attrs,
    domain.attrs.map((a) => compressedSize(domain, map, a)),
  );
}

/** The records with every mapped attribute recoded (what a site computes its marginals on). */
export function compressDataset(data: Dataset, map: ValueMap): Dataset {
  const domain = compressDomain(data.domain, map);
  const columns = data.domain.attrs.map((attr, j) => {
    const codes = map[attr];
    const src = data.columns[j];
    if (!codes) return src;
    const col = allocColumn(domain.sizes[j], data.rows);
    for (let r = 0; r < data.rows; r++) col[r] = codes[src[r]];
    return col;
  });
  return new Dataset(domain, columns, data.rows);
}

/**
 * For every cell of the table over `attrs` on the original domain (row-major), the cell of the
 * same table on the compressed domain.
 */
export function compressedCellMap(domain: Domain, compressed: Domain, map: ValueMap, attrs: readonly string[]): Int32Array {
  const n = domain.cells(attrs);
  const out = new Int32Array(n);
  const sizes = attrs.map((a) => domain.sizeOf(a));
  const strides = compressed.strides(attrs);
  const codes = attrs.map((a) => map[a]);
  const digit = new Int32Array(attrs.length);
  for (let i = 0; i < n; i++) {
    let idx = 0;
    for (let d = 0; d < attrs.length; d++) idx += (codes[d] ? codes[d][digit[d]] : digit[d]) * strides[d];
    out[i] = idx;
    for (let d = attrs.length - 1; d >= 0; d--) {
      if (++digit[d] < sizes[d]) break;
      digit[d] = 0;
    }
  }
  return out;
}

/**
 * A measurement on the original domain re-expressed on the compressed one (cells summed). A
 * summed bucket of k cells carries k·σ² of noise where the kept cells carry σ², but a Measurement
 * has one σ: see `compressOneWays` for the 1-way round.
 */
export function compressMeasurement(domain: Domain, compressed: Domain, map: ValueMap, m: Measurement): Measurement {
  const cellMap = compressedCellMap(domain, compressed, map, m.attrs);
  const values = new Float64Array(compressed.cells(m.attrs));
  for (let i = 0; i < m.values.length; i++) values[cellMap[i]] += m.values[i];
  return { attrs: [...m.attrs], values, sigma: m.sigma };
}

/**
 * The 1-way round on the compressed domain, for the estimator and the plan's selection. Summing a
 * bucket of k rare values gives its count with noise σ√k, which a Measurement's single σ would
 * weight k times too much (private-pgm down-weights that row by 1/√k); on a small table the
 * bucket can hold most records, so its noise would drag the kept values. Instead the bucket gets
 * what the kept values leave of the estimated number of records, T̂ − Σ kept (T̂: the
 * minimum-variance total of all 1-way answers), whose error is that of T̂ and of the kept cells
 * only. Post-processing of released counts, like the map itself.
 */
export function compressOneWays(domain: Domain, compressed: Domain, map: ValueMap, oneWays: readonly Measurement[]): Measurement[] {
  const total = estimateTotal(oneWays).total;
  return oneWays.map((m) => {
    const c = compressMeasurement(domain, compressed, map, m);
    const codes = m.attrs.length === 1 ? map[m.attrs[0]] : undefined;
    if (!codes) return c;
    const bucket = c.values.length - 1;
    let kept = 0;
    for (let i = 0; i < bucket; i++) kept += c.values[i];
    c.values[bucket] = total - kept;
    return c;
  });
}

/**
 * How a bucket's mass is split over its values: 'uniform' (private-pgm's reverse_data);
 * 'noisy-one-way', ∝ the noisy count clipped at 0; 'projected', the least-squares fit of the
 * noisy counts under non-negativity with the bucket's fitted mass (the Euclidean projection onto
 * the scaled simplex, which is what the estimator itself does with a lone 1-way measurement):
 * values far below the noise get nothing, the rest keep their differences.
 */
export type ExpansionKind = 'uniform' | 'noisy-one-way' | 'projected';

/**
 * Within-bucket shares of each original value of a compressed attribute (1 for kept values), by
 * `kind` (see ExpansionKind); `bucketMass` (per code) is needed for 'projected'. Each falls back
 * to uniform where the noisy counts give nothing. Post-processing of released counts.
 */
export function bucketShares(
  codes: readonly number[],
  kind: ExpansionKind,
  noisy?: ArrayLike<number>,
  bucketMass?: ArrayLike<number>,
): Float64Array {
  if (kind !== 'uniform' && !noisy) throw new Error(`bucketShares: '${kind}' needs the noisy 1-way counts`);
  if (kind === 'projected' && !bucketMass) throw new Error("bucketShares: 'projected' needs the buckets' fitted mass");
  const buckets = Math.max(...codes) + 1;
  const members: number[][] = Array.from({ length: buckets }, () => []);
  codes.forEach((c, v) => members[c].push(v));
  const shares = new Float64Array(codes.length);
  members.forEach((vs, c) => {
    if (vs.length === 1) {
      shares[vs[0]] = 1;
      return;
    }
    let w = vs.map(() => 1);
    if (kind === 'noisy-one-way') w = vs.map((v) => Math.max(0, noisy![v]));
    if (kind === 'projected')
      w = projectOntoSimplex(
        vs.map((v) => noisy![v]),
        Math.max(0, bucketMass![c]),
      );
    const sum = w.reduce((a, b) => a + b, 0);
    vs.forEach((v, i) => (shares[v] = sum > 0 ? w[i] / sum : 1 / vs.length));
  });
  return shares;
}

/** The point of {x ≥ 0, Σx = mass} nearest to y (Euclidean): x = max(0, y − λ). */
export function projectOntoSimplex(y: readonly number[], mass: number): number[] {
  if (mass <= 0) return y.map(() => 0);
  const sorted = [...y].sort((a, b) => b - a);
  let cum = 0;
  let lambda = 0;
  for (let k = 0; k < sorted.length; k++) {
    cum += sorted[k];
    const l = (cum - mass) / (k + 1);
    if (sorted[k] > l) lambda = l;
  }
  return y.map((v) => Math.max(0, v - lambda));
}

/**
 * The model over the original domain whose distribution is the compressed model's, with each
 * merged bucket's mass split over its values by `bucketShares`: p(x) = p_c(map(x))·Π_a share_a(x_a).
 * Every potential is read through the map, and log share_a is added on the smallest clique
 * holding a. Same cliques, elimination order and total; sampling it needs nothing special.
 */
export function expandModel(
  model: GraphicalModel,
  domain: Domain,
  map: ValueMap,
  options: { kind: ExpansionKind; oneWays?: readonly Measurement[] },
): GraphicalModel {
  const compressed = model.domain;
  const expected = compressDomain(domain, map);
  if (compressed.attrs.join('\u0000') !== expected.attrs.join('\u0000') || compressed.sizes.join() !== expected.sizes.join())
    throw new Error('expandModel: the model is not over the compressed domain of this value map');
  const structure = new Structure(domain, model.cliques, model.structure.tree.order);
  const potentials = model.cliques.map((c, i) => {
    const cellMap = compressedCellMap(domain, compressed, map, structure.cliques[i]);
    const src = model.potentials[i];
    return Float64Array.from(cellMap, (j) => src[j]);
  });
  for (const [attr, codes] of Object.entries(map)) {
    const noisy = options.kind === 'uniform' ? undefined : pooledOneWay(attr, domain.sizeOf(attr), options.oneWays ?? [])?.y;
    if (options.kind !== 'uniform' && !noisy) throw new Error(`expandModel: no 1-way measurement of "${attr}" to split its bucket by`);
    const shares = bucketShares(codes, options.kind, noisy, options.kind === 'projected' ? model.marginal([attr]) : undefined);
    let best = -1;
    structure.cliques.forEach((c, i) => {
      if (c.includes(attr) && (best < 0 || structure.cliqueCells[i] < structure.cliqueCells[best])) best = i;
    });
    const onto = domain.indexMap(structure.cliques[best], [attr]);
    const pot = potentials[best];
    for (let i = 0; i < pot.length; i++) pot[i] += Math.log(shares[onto[i]]);
  }
  return new GraphicalModel(structure, potentials, model.total);
}
