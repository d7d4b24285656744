/**
 * Workload fidelity: how well synthetic data answer the queries a researcher asks first
 * (the schema's `workload`: prevalence of each condition by age band and sex, comorbidity pairs,
 * a lab by its condition, …). A query is an attribute list read as "distribution of the last
 * attribute (the target) within each stratum of the others", e.g. [age, sex, hypertension] is
 * the prevalence of hypertension per age band × sex. The error of a cell is the absolute
 * difference of that conditional proportion between the synthetic data and a reference:
 * - the pooled truth, where it exists (demo, benchmarks);
 * - the released noisy measurements, always available to the coordinator (then the reference
 *   carries DP noise of known σ, reported with it so a reader can tell noise from misfit).
 *
 * Some attributes are read coarser than the model measures them (age in the workload's bands):
 * `coarsen` maps each value of such an attribute to its group. Pure: counts in, errors out.
 */
import type { Domain } from './domain.ts';
import { isCoarsened, measuredSize, type Measurement } from './measurement.ts';

export interface WorkloadQuery {
  /** Family the query belongs to (e.g. "condition-by-age-band"). */
  family: string;
  /** Stratum attributes first, target attribute last. */
  attrs: string[];
}

/** Values of one attribute merged into groups for reading (e.g. age bins into age bands). */
export interface Coarsening {
  /** Group of each value, 0-based, in value order; groups are contiguous from 0. */
  groupOf: number[];
  labels: string[];
}

export interface WorkloadView {
  domain: Domain;
  /** Value labels per attribute (code order). */
  labels: Record<string, readonly string[]>;
  coarsen?: Record<string, Coarsening>;
}

export interface CellError {
  /** Stratum labels, in the query's stratum order. */
  stratum: string[];
  /** Target value label. */
  value: string;
  synthetic: number;
  reference: number;
  /** |synthetic − reference|. */
  error: number;
  /** Records of the reference in the stratum (noisy for a measured reference). */
  stratumCount: number;
  /** σ of the reference proportion from DP noise (measured reference only; else 0). */
  referenceSigma: number;
  /** error / referenceSigma (measured reference only): below ≈ 2 the gap is within the noise. */
  zScore?: number;
}

export interface QueryError {
  family: string;
  attrs: string[];
  /** Worst first; only strata with at least `minStratum` reference records. */
  cells: CellError[];
  maxError: number;
  meanError: number;
  /** Strata left out for having fewer than `minStratum` reference records. */
  smallStrata: number;
}

/** Counts over `attrs` (row-major, last attribute fastest), or undefined when not available. */
export type CountsOf = (attrs: readonly string[]) => Float64Array | undefined;

export interface ReferenceCounts {
  counts: Float64Array;
  /** Noise variance of each (coarsened) cell; zeros for truth. */
  variance?: Float64Array;
}

/** Reading sizes of `attrs` after coarsening. */
function readSizes(view: WorkloadView, attrs: readonly string[]): number[] {
  return attrs.map((a) => view.coarsen?.[a]?.labels.length ?? view.domain.sizeOf(a));
}

/** Sums the cells of a marginal over `attrs` into their coarsened cells (the reading layout). */
export function coarsenCounts(view: WorkloadView, attrs: readonly string[], counts: Float64Array): Float64Array {
  const sizes = attrs.map((a) => view.domain.sizeOf(a));
  const outSizes = readSizes(view, attrs);
  const out = new Float64Array(outSizes.reduce((p, s) => p * s, 1));
  const maps = attrs.map((a) => view.coarsen?.[a]?.groupOf);
  const idx = new Array<number>(attrs.length).fill(0);
  for (let c = 0; c < counts.length; c++) {
    let o = 0;
    for (let j = 0; j < attrs.length; j++) o = o * outSizes[j] + (maps[j] ? maps[j]![idx[j]] : idx[j]);
    out[o] += counts[c];
    for (let j = attrs.length - 1; j >= 0; j--) {
      if (++idx[j] < sizes[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

/**
 * Projects a measurement over a superset of `attrs` onto `attrs` (in that order). Each output
 * cell sums `cells / out` input cells, so its noise variance is σ²·(that number).
 */
export function projectMeasurement(domain: Domain, m: Measurement, attrs: readonly string[]): { counts: Float64Array; variance: number } {
  if (isCoarsened(m)) throw new Error(`projectMeasurement: [${m.attrs.join(', ')}] is a band query; read it with readMeasurement`);
  const pos = attrs.map((a) => m.attrs.indexOf(a));
  if (pos.some((p) => p < 0)) throw new Error(`projectMeasurement: [${m.attrs.join(', ')}] does not cover [${attrs.join(', ')}]`);
  const sizes = m.attrs.map((a) => domain.sizeOf(a));
  const outSizes = attrs.map((a) => domain.sizeOf(a));
  const out = new Float64Array(outSizes.reduce((p, s) => p * s, 1));
  const idx = new Array<number>(sizes.length).fill(0);
  for (let c = 0; c < m.values.length; c++) {
    let o = 0;
    for (let j = 0; j < pos.length; j++) o = o * outSizes[j] + idx[pos[j]];
    out[o] += m.values[c];
    for (let j = sizes.length - 1; j >= 0; j--) {
      if (++idx[j] < sizes[j]) break;
      idx[j] = 0;
    }
  }
  return { counts: out, variance: m.sigma * m.sigma * (m.values.length / out.length) };
}

/**
 * The released measurements' answer to `attrs` in the reading layout: every measurement whose
 * attributes cover the query is summed into the reading cells (a band query too, when each of its
 * bands lies in one reading group), and they are pooled per cell by inverse variance (independent
 * noise per measurement; a reading cell that sums k measured cells has variance kσ²); undefined
 * when no measurement covers it.
 */
export function measuredReference(
  view: WorkloadView,
  measurements: readonly Measurement[],
  attrs: readonly string[],
): ReferenceCounts | undefined {
  let weighted: Float64Array | undefined;
  let weight: Float64Array | undefined;
  for (const m of measurements) {
    const r = readMeasurement(view, m, attrs);
    if (!r) continue;
    weighted ??= new Float64Array(r.counts.length);
    weight ??= new Float64Array(r.counts.length);
    for (let i = 0; i < weighted.length; i++) {
      const v = m.sigma * m.sigma * r.summed[i];
      weighted[i] += r.counts[i] / v;
      weight[i] += 1 / v;
    }
  }
  if (!weighted || !weight) return undefined;
  return { counts: weighted.map((v, i) => v / weight[i]), variance: weight.map((w) => 1 / w) };
}

/**
 * A measurement summed into the reading cells of `attrs` (other attributes summed out), with the
 * number of its cells in each; undefined when it does not cover `attrs` or when one of its bands
 * straddles two reading groups (it cannot answer the query then).
 */
export function readMeasurement(
  view: WorkloadView,
  m: Measurement,
  attrs: readonly string[],
): { counts: Float64Array; summed: Float64Array } | undefined {
  const pos = attrs.map((a) => m.attrs.indexOf(a));
  if (pos.some((p) => p < 0)) return undefined;
  const domain = view.domain;
  // Per attribute of the query: the reading group of each of its measured codes.
  const groupOfCode: number[][] = [];
  for (const a of attrs) {
    const size = domain.sizeOf(a);
    const fineGroup = (v: number) => view.coarsen?.[a]?.groupOf[v] ?? v;
    const codes = m.coarsen?.[a];
    if (!codes) {
      groupOfCode.push(Array.from({ length: size }, (_, v) => fineGroup(v)));
      continue;
    }
    const g = new Array<number>(Math.max(...codes) + 1).fill(-1);
    for (let v = 0; v < size; v++) {
      if (g[codes[v]] >= 0 && g[codes[v]] !== fineGroup(v)) return undefined;
      g[codes[v]] = fineGroup(v);
    }
    groupOfCode.push(g);
  }
  const sizes = m.attrs.map((a) => measuredSize(domain, m, a));
  const outSizes = readSizes(view, attrs);
  const out = new Float64Array(outSizes.reduce((p, x) => p * x, 1));
  const summed = new Float64Array(out.length);
  const idx = new Array<number>(sizes.length).fill(0);
  for (let c = 0; c < m.values.length; c++) {
    let o = 0;
    for (let j = 0; j < pos.length; j++) o = o * outSizes[j] + groupOfCode[j][idx[pos[j]]];
    out[o] += m.values[c];
    summed[o] += 1;
    for (let j = sizes.length - 1; j >= 0; j--) {
      if (++idx[j] < sizes[j]) break;
      idx[j] = 0;
    }
  }
  return { counts: out, summed };
}

/**
 * Error of one query: per stratum (cells of all but the last attribute) the target's
 * proportions, synthetic against reference. A binary target reports its second value only (the
 * first is its complement, same error). Reference counts are clipped at 0 before normalising.
 */
export function queryError(
  view: WorkloadView,
  query: WorkloadQuery,
  synthetic: Float64Array,
  reference: ReferenceCounts,
  minStratum: number,
): QueryError {
  const attrs = query.attrs;
  const sizes = readSizes(view, attrs);
  const t = sizes[sizes.length - 1];
  const strata = sizes.slice(0, -1).reduce((p, s) => p * s, 1);
  const syn = coarsenCounts(view, attrs, synthetic);
  const ref = reference.counts;
  if (ref.length !== syn.length)
    throw new Error(`queryError [${attrs.join(', ')}]: reference has ${ref.length} cells, expected ${syn.length}`);
  const labelOf = (a: string, v: number) => view.coarsen?.[a]?.labels[v] ?? view.labels[a]?.[v] ?? String(v);
  const cells: CellError[] = [];
  let smallStrata = 0;
  for (let s = 0; s < strata; s++) {
    let nRef = 0;
    let nSyn = 0;
    let varRef = 0;
    for (let v = 0; v < t; v++) {
      nRef += Math.max(0, ref[s * t + v]);
      nSyn += syn[s * t + v];
      varRef += reference.variance?.[s * t + v] ?? 0;
    }
    if (nRef < minStratum || nRef <= 0) {
      smallStrata++;
      continue;
    }
    const stratum: string[] = [];
    for (let j = attrs.length - 2, rest = s; j >= 0; j--) {
      stratum.unshift(labelOf(attrs[j], rest % sizes[j]));
      rest = Math.floor(rest / sizes[j]);
    }
    for (let v = t === 2 ? 1 : 0; v < t; v++) {
      const r = Math.max(0, ref[s * t + v]) / nRef;
      const q = nSyn > 0 ? syn[s * t + v] / nSyn : 0;
      // σ of a proportion r = x/n with noisy x and n (delta method, cell and total noise).
      const cellVar = reference.variance?.[s * t + v] ?? 0;
      const sigma = varRef > 0 ? Math.sqrt(cellVar * (1 - 2 * r) + r * r * varRef) / nRef : 0;
      cells.push({
        stratum,
        value: labelOf(attrs[attrs.length - 1], v),
        synthetic: q,
        reference: r,
        error: Math.abs(q - r),
        stratumCount: nRef,
        referenceSigma: Number.isFinite(sigma) ? sigma : 0,
        ...(sigma > 0 && Number.isFinite(sigma) ? { zScore: Math.abs(q - r) / sigma } : {}),
      });
    }
  }
  cells.sort((a, b) => b.error - a.error);
  const maxError = cells.length > 0 ? cells[0].error : 0;
  const meanError = cells.length > 0 ? cells.reduce((p, c) => p + c.error, 0) / cells.length : 0;
  return { family: query.family, attrs: [...attrs], cells, maxError, meanError, smallStrata };
}

export interface WorkloadReport {
  /** What the synthetic side is compared with. */
  reference: 'truth' | 'released-measurements';
  minStratum: number;
  /** Queries the reference could answer, worst first (by max cell error). */
  queries: QueryError[];
  /** Queries without a reference (not measured; no truth for that attribute set). */
  unanswered: string[][];
  /** Per family: max and mean over its cells. */
  families: Record<string, { queries: number; cells: number; maxError: number; meanError: number }>;
}

/**
 * Every query against one reference. `synthetic` and `reference` return counts over the
 * query's attributes in the model's layout (uncoarsened).
 */
export function workloadReport(
  view: WorkloadView,
  queries: readonly WorkloadQuery[],
  synthetic: CountsOf,
  reference: (attrs: readonly string[]) => ReferenceCounts | undefined,
  opts: { kind: WorkloadReport['reference']; minStratum: number },
): WorkloadReport {
  const out: QueryError[] = [];
  const unanswered: string[][] = [];
  for (const q of queries) {
    const ref = reference(q.attrs);
    const syn = synthetic(q.attrs);
    if (!ref || !syn) {
      unanswered.push([...q.attrs]);
      continue;
    }
    out.push(queryError(view, q, syn, ref, opts.minStratum));
  }
  out.sort((a, b) => b.maxError - a.maxError);
  const families: WorkloadReport['families'] = {};
  for (const q of out) {
    const f = (families[q.family] ??= { queries: 0, cells: 0, maxError: 0, meanError: 0 });
    f.queries++;
    f.meanError += q.cells.reduce((p, c) => p + c.error, 0);
    f.cells += q.cells.length;
    f.maxError = Math.max(f.maxError, q.maxError);
  }
  for (const f of Object.values(families)) f.meanError = f.cells > 0 ? f.meanError / f.cells : 0;
  return { reference: opts.kind, minStratum: opts.minStratum, queries: out, unanswered, families };
}

/** All cells of a family, worst first (e.g. the condition × age-band table). */
export function familyCells(report: WorkloadReport, family: string): Array<CellError & { attrs: string[] }> {
  return report.queries
    .filter((q) => q.family === family)
    .flatMap((q) => q.cells.map((c) => ({ ...c, attrs: q.attrs })))
    .sort((a, b) => b.error - a.error);
}
