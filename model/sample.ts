/**
 * Synthetic records from a graphical model, column by column along the reverse elimination
 * order: each attribute is drawn given its already-drawn neighbours in the triangulated graph
 * (its elimination clique), which is exact for the model's joint distribution.
 *
 * method 'round' (default) is private-pgm's synthetic_data: within each group of records sharing
 * the parents' values, the expected counts are rounded down and the remainder is given out
 * randomly (weighted by the fractional parts, without replacement), then shuffled. The model's
 * marginals are thus reproduced to within rounding instead of to within sampling error.
 * method 'iid' draws every record independently.
 */
import { Dataset, allocColumn, type Column } from './domain.ts';
import { project } from './pgm/factor.ts';
import type { GraphicalModel } from './pgm/model.ts';
import { containingClique } from './pgm/junction-tree.ts';
import { Rng, type SeedLike } from './rng.ts';

export interface SampleOptions {
  /** Number of records; default the model's total, rounded. */
  rows?: number;
  seed: SeedLike;
  method?: 'round' | 'iid';
  /** Keep only records whose attribute values are in these allowed sets (conditions the model first). */
  where?: Readonly<Record<string, readonly number[]>>;
}

export function sample(model: GraphicalModel, options: SampleOptions): Dataset {
  const m = options.where && Object.keys(options.where).length > 0 ? model.condition(options.where) : model;
  const rows = options.rows ?? Math.round(m.total);
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`sample: rows must be a non-negative integer, got ${rows}`);
  const method = options.method ?? 'round';
  const rng = new Rng(options.seed);
  const domain = m.domain;
  const tree = m.structure.tree;
  const treeCounts = m.treeMarginals();
  const columns: Column[] = domain.sizes.map((s) => allocColumn(s, rows));
  const groupOf = new Int32Array(rows);

  for (let e = tree.order.length - 1; e >= 0; e--) {
    const attr = tree.order[e];
    const parents = tree.eliminationCliques[e].slice(1); // all drawn already (eliminated later)
    const size = domain.sizeOf(attr);
    const j = containingClique(domain, tree, [attr, ...parents]);
    // Joint counts of (parents..., attr): row g holds the attribute's counts given parent config g.
    const joint = project(treeCounts[j], domain.indexMap(tree.cliques[j], [...parents, attr]), domain.cells([...parents, attr]));
    const groups = joint.length / size;
    // Fallback for a group whose row is all zeros numerically: the attribute's overall distribution.
    const fallback = project(treeCounts[j], domain.indexMap(tree.cliques[j], [attr]), size);

    groupOf.fill(0);
    const strides = domain.strides(parents);
    parents.forEach((p, k) => {
      const col = columns[domain.indexOf(p)];
      const s = strides[k];
      for (let r = 0; r < rows; r++) groupOf[r] += col[r] * s;
    });
    // Counting sort of records by group, so each group is one contiguous run of record ids.
    const start = new Int32Array(groups + 1);
    for (let r = 0; r < rows; r++) start[groupOf[r] + 1]++;
    for (let g = 0; g < groups; g++) start[g + 1] += start[g];
    const fill = start.slice(0, groups);
    const members = new Int32Array(rows);
    for (let r = 0; r < rows; r++) members[fill[groupOf[r]]++] = r;

    const out = columns[domain.indexOf(attr)];
    for (let g = 0; g < groups; g++) {
      const n = start[g + 1] - start[g];
      if (n === 0) continue;
      let weights = joint.subarray(g * size, (g + 1) * size);
      if (sum(weights) <= 0) weights = fallback;
      const values = method === 'round' ? roundedValues(weights, n, rng) : iidValues(weights, n, rng);
      for (let i = 0; i < n; i++) out[members[start[g] + i]] = values[i];
    }
  }
  return new Dataset(domain, columns, rows);
}

/** n values whose counts are the expected counts n·w/Σw rounded (floor + remainder by fractional parts), shuffled. */
export function roundedValues(weights: Float64Array, n: number, rng: Rng): Int32Array {
  const k = weights.length;
  const total = sum(weights);
  const counts = new Int32Array(k);
  const frac = new Float64Array(k);
  let assigned = 0;
  for (let v = 0; v < k; v++) {
    const expected = (Math.max(0, weights[v]) / total) * n;
    counts[v] = Math.floor(expected);
    frac[v] = expected - counts[v];
    assigned += counts[v];
  }
  // Remainder: weighted sampling without replacement ∝ fractional parts (Efraimidis–Spirakis keys).
  const extra = n - assigned;
  if (extra > 0) {
    const keys: { v: number; key: number }[] = [];
    for (let v = 0; v < k; v++) if (frac[v] > 0) keys.push({ v, key: Math.log(rng.next() || Number.MIN_VALUE) / frac[v] });
    keys.sort((a, b) => b.key - a.key);
    // Floating-point slack can leave fewer positive fractions than needed; spread the rest by weight.
    for (let i = 0; i < extra; i++) counts[i < keys.length ? keys[i].v : argmax(weights)]++;
  }
  const values = new Int32Array(n);
  let p = 0;
  for (let v = 0; v < k; v++) for (let c = 0; c < counts[v]; c++) values[p++] = v;
  return rng.shuffle(values);
}

/** n independent draws from the distribution ∝ weights (inverse CDF with binary search). */
export function iidValues(weights: Float64Array, n: number, rng: Rng): Int32Array {
  const k = weights.length;
  const cdf = new Float64Array(k);
  let acc = 0;
  for (let v = 0; v < k; v++) {
    acc += Math.max(0, weights[v]);
    cdf[v] = acc;
  }
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next() * acc;
    let lo = 0;
    let hi = k - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    values[i] = lo;
  }
  return values;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

function argmax(a: Float64Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
