/**
 * Clinical fidelity of a fitted model on the schema's declared workload (schema `workload`,
 * model/workload.ts): what a researcher checks first, per query and worst cell first.
 *
 * The coordinator can always compare with the released noisy measurements (post-processing of
 * DP output); where the pooled truth exists (demo, benchmarks) the same queries are compared with
 * it. The synthetic side is a sample of the model (`FIDELITY_SAMPLE_ROWS` rows, the plausibility
 * rules of the cohort applied), so the figures are those of a cohort of that size.
 */
import { Domain, type Dataset } from '../model/domain.ts';
import { marginal } from '../model/marginals.ts';
import type { Measurement } from '../model/measurement.ts';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { sample } from '../model/sample.ts';
import {
  coarsenCounts,
  familyCells,
  measuredReference,
  workloadReport,
  type CountsOf,
  type QueryError,
  type WorkloadQuery,
  type WorkloadReport,
  type WorkloadView,
} from '../model/workload.ts';
import { attributeLabels, schemaAttributes, type AgeAttribute, type Schema } from '../schema/schema.ts';
import { ageBandGroups } from '../schema/workload.ts';
import { enforcePlausibility } from './cohort.ts';

/** Rows of the model sample the workload is read from (the demo's targets are stated at 20,000). */
export const FIDELITY_SAMPLE_ROWS = 20_000;
/** Strata with fewer reference records than this are left out of the errors. */
export const MIN_STRATUM = 300;
/** Worst cells kept per query in report.json. */
export const CELLS_PER_QUERY = 5;
/** The headline family: condition prevalence by age band. */
export const HEADLINE_FAMILY = 'condition-by-age-band';

export interface SchemaWorkload {
  view: WorkloadView;
  queries: WorkloadQuery[];
}

/** The schema's workload over a domain, with age read in the workload's bands. */
export function schemaWorkload(schema: Schema, domain: Dataset['domain']): SchemaWorkload | undefined {
  const w = schema.workload;
  if (!w) return undefined;
  const labels: Record<string, string[]> = {};
  for (const a of schema.attributes) labels[a.name] = attributeLabels(a);
  const age = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age');
  const coarsen = age && w.ageBands ? { [age.name]: ageBandGroups(age.edges, w.ageBands) } : undefined;
  const queries = w.queries.flatMap((f) => f.marginals.map((attrs) => ({ family: f.family, attrs })));
  return { view: { domain, labels, ...(coarsen ? { coarsen } : {}) }, queries };
}

/** Query key in report.json: attribute names joined by "|", in query order. */
export const queryKey = (attrs: readonly string[]): string => attrs.join('|');

export interface ClinicalWorkloadReport {
  sampleRows: number;
  minStratum: number;
  /** Per family: max and mean cell error against the released measurements. */
  families: WorkloadReport['families'];
  /** Worst queries first, each with its worst `CELLS_PER_QUERY` cells. */
  queries: Array<Omit<QueryError, 'cells'> & { cells: QueryError['cells'] }>;
  unmeasured: string[][];
  /** The sample's counts per query (coarsened), so a holder of the truth can compare offline. */
  answers: Record<string, number[]>;
}

/**
 * The fidelity section of report.json: a plausible model sample of `rows` rows against the
 * released measurements, and the sample's answer to every query.
 */
export function clinicalWorkloadReport(
  schema: Schema,
  model: GraphicalModel,
  released: readonly Measurement[],
  seed: number | string,
  rows = FIDELITY_SAMPLE_ROWS,
): ClinicalWorkloadReport | undefined {
  const w = schemaWorkload(schema, model.domain);
  if (!w) return undefined;
  const drawn = sample(model, { rows, seed: `${seed}/workload` });
  const synthetic = enforcePlausibility(schema, model, drawn, { seed: `${seed}/workload` }).dataset;
  const report = workloadReport(
    w.view,
    w.queries,
    (a) => marginal(synthetic, a),
    (a) => measuredReference(w.view, released, a),
    {
      kind: 'released-measurements',
      minStratum: MIN_STRATUM,
    },
  );
  const answers: Record<string, number[]> = {};
  for (const q of w.queries) answers[queryKey(q.attrs)] = Array.from(coarsenCounts(w.view, q.attrs, marginal(synthetic, q.attrs)));
  return {
    sampleRows: synthetic.rows,
    minStratum: MIN_STRATUM,
    families: report.families,
    queries: report.queries.map((q) => ({ ...q, cells: q.cells.slice(0, CELLS_PER_QUERY) })),
    unmeasured: report.unanswered,
    answers,
  };
}

/**
 * The workload against the pooled truth. `synthetic` gives the synthetic counts per query
 * (coarsened or not, see `coarsened`); `truth` the truth's uncoarsened counts (undefined where
 * the truth has no such marginal).
 */
export function fidelityVsTruth(
  w: SchemaWorkload,
  synthetic: CountsOf,
  truth: CountsOf,
  opts: { minStratum?: number; syntheticCoarsened?: boolean } = {},
): WorkloadReport {
  const { view } = w;
  // Coarsened synthetic answers are passed through unchanged: read them with an identity view.
  const synth: CountsOf = opts.syntheticCoarsened ? (a) => expandCoarsened(view, a, synthetic(a)) : synthetic;
  return workloadReport(
    view,
    w.queries,
    synth,
    (a) => {
      const t = truth(a);
      return t ? { counts: coarsenCounts(view, a, t) } : undefined;
    },
    { kind: 'truth', minStratum: opts.minStratum ?? MIN_STRATUM },
  );
}

/**
 * Spreads coarsened counts back over the first value of each group, so that coarsening them
 * again gives them back unchanged (the error only reads coarsened cells).
 */
function expandCoarsened(view: WorkloadView, attrs: readonly string[], counts: Float64Array | undefined): Float64Array | undefined {
  if (!counts) return undefined;
  const sizes = attrs.map((a) => view.domain.sizeOf(a));
  const groupSizes = attrs.map((a, j) => view.coarsen?.[a]?.labels.length ?? sizes[j]);
  const firstOf = attrs.map((a, j) => {
    const g = view.coarsen?.[a]?.groupOf;
    return Array.from({ length: groupSizes[j] }, (_, k) => (g ? g.indexOf(k) : k));
  });
  if (counts.length !== groupSizes.reduce((p, s) => p * s, 1))
    throw new Error(`answer for [${attrs.join(', ')}] has ${counts.length} cells`);
  const out = new Float64Array(sizes.reduce((p, s) => p * s, 1));
  const idx = new Array<number>(attrs.length).fill(0);
  for (let c = 0; c < counts.length; c++) {
    let o = 0;
    for (let j = 0; j < attrs.length; j++) o = o * sizes[j] + firstOf[j][idx[j]];
    out[o] += counts[c];
    for (let j = attrs.length - 1; j >= 0; j--) {
      if (++idx[j] < groupSizes[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

/** Truth counts from truth.json-style 2-way marginals keyed "a|b" in schema order. */
export function truthFromTwoWay(domain: Dataset['domain'], twoWay: Record<string, number[]>): CountsOf {
  return (attrs) => {
    if (attrs.length !== 2) return undefined;
    const [a, b] = attrs;
    const direct = twoWay[`${a}|${b}`];
    if (direct) return Float64Array.from(direct);
    const flipped = twoWay[`${b}|${a}`];
    if (!flipped) return undefined;
    const sa = domain.sizeOf(a);
    const sb = domain.sizeOf(b);
    const out = new Float64Array(sa * sb);
    for (let i = 0; i < sb; i++) for (let j = 0; j < sa; j++) out[j * sb + i] = flipped[i * sa + j];
    return out;
  };
}

export interface FidelitySummary {
  family: string;
  cells: number;
  maxError: number;
  meanError: number;
}

/** Markdown table of one family's cells, worst first, and its max / mean error. */
export function fidelityTable(
  report: WorkloadReport,
  family = HEADLINE_FAMILY,
  limit = Infinity,
): { lines: string[]; summary: FidelitySummary } {
  const cells = familyCells(report, family);
  const lines = [
    '| condition | stratum | real | synthetic | error | real patients |',
    '| --- | --- | --- | --- | --- | --- |',
    ...cells
      .slice(0, limit)
      .map(
        (c) =>
          `| ${c.attrs[c.attrs.length - 1]}${c.value === 'yes' ? '' : ` = ${c.value}`} | ${c.stratum.join(', ')} | ${pct(c.reference)} | ${pct(c.synthetic)} | ${c.error.toFixed(3)} | ${Math.round(c.stratumCount)} |`,
      ),
  ];
  const f = report.families[family] ?? { cells: 0, maxError: 0, meanError: 0 };
  return { lines, summary: { family, cells: f.cells, maxError: f.maxError, meanError: f.meanError } };
}

const pct = (p: number) => `${(100 * p).toFixed(1)} %`;

/** A cell whose synthetic and real prevalence differ by a large factor, whatever the absolute gap. */
export interface DisproportionateCell {
  condition: string;
  stratum: string[];
  real: number;
  synthetic: number;
  /** max(synthetic, real) / min(synthetic, real); Infinity when one side is 0. */
  ratio: number;
}

/**
 * Cells where the cohort shows a condition several times more (or less) often than the reference,
 * by at least `minPoints` of the stratum. The absolute error bounds of the workload hide these: heart
 * failure in 3.3 % of synthetic children against 0.1 % real is an error of 0.032, below the targets,
 * yet a clinician reading the charts sees a child with an adult disease in every thirty.
 */
export function disproportionateCells(
  report: WorkloadReport,
  family = HEADLINE_FAMILY,
  opts: { minRatio?: number; minPoints?: number } = {},
): DisproportionateCell[] {
  const minRatio = opts.minRatio ?? 3;
  const minPoints = opts.minPoints ?? 0.01;
  return familyCells(report, family)
    .map((c) => {
      const lo = Math.min(c.synthetic, c.reference);
      const hi = Math.max(c.synthetic, c.reference);
      return {
        condition: `${c.attrs[c.attrs.length - 1]}${c.value === 'yes' ? '' : ` = ${c.value}`}`,
        stratum: c.stratum,
        real: c.reference,
        synthetic: c.synthetic,
        ratio: lo > 0 ? hi / lo : Infinity,
      };
    })
    .filter((c) => c.ratio >= minRatio && Math.abs(c.synthetic - c.real) >= minPoints)
    .sort((a, b) => b.ratio - a.ratio);
}

/** One line per disproportionate cell, e.g. "heart_failure, 0-17: 0.1 % real, 3.3 % synthetic (33×)". */
export function disproportionateLines(cells: readonly DisproportionateCell[]): string[] {
  return cells.map(
    (c) =>
      `${c.condition}, ${c.stratum.join(', ')}: ${pct(c.real)} real, ${pct(c.synthetic)} synthetic (${Number.isFinite(c.ratio) ? `${c.ratio.toFixed(1)}×` : 'none on one side'}, ${c.synthetic > c.real ? 'over' : 'under'}-represented)`,
  );
}

/**
 * The workload of a report.json (`workload.answers`, the model sample's coarsened counts)
 * against truth.json-style pooled 2-way marginals: what the demo prints.
 */
export function reportAnswersVsTruth(
  schema: Schema,
  answers: Record<string, number[]>,
  twoWay: Record<string, number[]>,
  minStratum = MIN_STRATUM,
): WorkloadReport | undefined {
  const attrs = schemaAttributes(schema);
  const domain = new Domain(
    attrs.map((a) => a.name),
    attrs.map((a) => a.size),
  );
  const w = schemaWorkload(schema, domain);
  if (!w) return undefined;
  return fidelityVsTruth(
    w,
    (a) => (answers[queryKey(a)] ? Float64Array.from(answers[queryKey(a)]) : undefined),
    truthFromTwoWay(domain, twoWay),
    { minStratum, syntheticCoarsened: true },
  );
}
