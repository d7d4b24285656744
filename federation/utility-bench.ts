/**
 * The federated utility benchmark: one dataset split into sites, the fit of a federation
 * (federation/run-fit.ts over the in-process aggregator, so each site answers through the
 * production site path), then the rounding sampler and 2-way / 3-way L1 against the full data.
 * Only the network is missing; with `aggregation: 'he'` even the threshold BFV sum runs.
 */
import type { Dataset } from '../model/domain.ts';
import { marginal } from '../model/marginals.ts';
import { allThreeWay, allTwoWay, workloadError } from '../model/metrics.ts';
import type { AimPlanOptions } from '../model/plans/aim.ts';
import type { CompressionOptions } from '../model/plans/compress.ts';
import type { DeclaredStructure } from '../model/plans/structure.ts';
import { Rng } from '../model/rng.ts';
import { sample } from '../model/sample.ts';
import { splitSites, type SplitKind } from '../model/split.ts';
import { fitRhoBudget } from '../privacy/dp/mechanisms.ts';
import type { RandomSource } from '../privacy/random.ts';
import { inProcessAggregator } from './in-process.ts';
import { buildFitPlan, type PlanKind } from './plan.ts';
import { runFit, type FitRound } from './run-fit.ts';

export type AggregationKind = 'plain' | 'he';

export interface UtilityRunOptions {
  sites: number;
  split: SplitKind;
  epsilon: number;
  delta: number;
  seed: number;
  plan: PlanKind;
  aggregation?: AggregationKind;
  /** Mirror-descent iterations of the final fit. Default 1000. */
  iterations?: number;
  /** Key attribute of the heterogeneous split (default: first attribute with > 2 values). */
  splitKey?: string;
  aim?: AimPlanOptions;
  /** A schema's declared structure: measured first at its share (model/plans/structure.ts). */
  structure?: DeclaredStructure;
  /** Rare-value compression after the 1-way round (model/plans/compress.ts); default off. */
  compress?: CompressionOptions;
  /** Return the synthetic rows in the result (`synthetic`). */
  keepSynthetic?: boolean;
  /** Score the 3-way L1 on this many random triples instead of all (large domains); default all. */
  threeWaySample?: number;
  /** Noise source for every site; tests only (default: the OS CSPRNG). */
  random?: RandomSource;
  onProgress?: (message: string) => void;
}

export type RoundReport = Omit<FitRound, 'roundId' | 'contributors'>;

export interface UtilityResult {
  plan: PlanKind;
  split: SplitKind;
  splitKey?: string;
  sites: number;
  rows: number;
  epsilon: number;
  delta: number;
  seed: number;
  rhoBudget: number;
  rhoSpent: number;
  rounds: RoundReport[];
  l1TwoWay: number;
  l1ThreeWay: number;
  tvTwoWay: number;
  tvThreeWay: number;
  modelCliques: string[][];
  modelCells: number;
  dropped: number;
  wallMs: number;
  /** Time of the final estimation (after the last round). */
  fitMs: number;
  /** Synthetic rows drawn (the model's estimate of the number of records). */
  syntheticRows: number;
  /** Time inside secure aggregation (encrypt + homomorphic add + decrypt + combine); 0 for 'plain'. */
  heMs: number;
  /** Time of the sites' answers (their marginals and noise shares). */
  siteAnswerMs: number;
  /** The synthetic rows, when asked for (`keepSynthetic`). */
  synthetic?: Dataset;
}

function score(data: Dataset, synth: Dataset, seed: number, threeWaySample?: number) {
  const domain = data.domain;
  const err = (sets: string[][]) =>
    workloadError(
      (r) => marginal(data, r),
      (r) => marginal(synth, r),
      sets,
    );
  const e2 = err(allTwoWay(domain));
  let triples = allThreeWay(domain);
  if (threeWaySample !== undefined && threeWaySample < triples.length)
    triples = new Rng(`triples-${seed}`).shuffle(triples).slice(0, threeWaySample);
  return { e2, e3: domain.length >= 3 ? err(triples) : e2 };
}

export async function runUtility(data: Dataset, opts: UtilityRunOptions): Promise<UtilityResult> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? (() => undefined);
  const domain = data.domain;
  const { sites, key } = splitSites(data, { sites: opts.sites, kind: opts.split, seed: opts.seed, key: opts.splitKey });
  const plan = buildFitPlan(domain, opts);
  const aggregator = await inProcessAggregator(
    sites.map((d, i) => ({ id: `site-${i + 1}`, data: d })),
    { summation: opts.aggregation === 'he' ? 'he' : 'plain', random: opts.random },
  );
  let fit;
  try {
    fit = await runFit(plan, aggregator, {
      domain,
      iterations: opts.iterations ?? 1000,
      onProgress: progress,
      onRound: (r, i) =>
        progress(
          `round ${i + 1} ${r.name}: ${r.marginals} marginals, ${r.cells} cells, ρ ${r.rho.toPrecision(4)}, σ ${r.sigma.toFixed(1)}`,
        ),
    });
  } finally {
    aggregator.dispose();
  }
  const model = fit.model!;
  // As many synthetic rows as the model's (noisy, minimum-variance) estimate of the number of
  // records: the benchmark uses nothing about the data that a federation would not release.
  const rows = Math.max(1, Math.round(model.total));
  progress(`sampling ${rows} rows (rounding sampler)`);
  const synth = sample(model, { rows, seed: opts.seed });
  progress('scoring 2-way and 3-way marginals');
  const { e2, e3 } = score(data, synth, opts.seed, opts.threeWaySample);
  return {
    plan: opts.plan,
    split: opts.split,
    splitKey: key,
    sites: sites.length,
    rows: data.rows,
    epsilon: opts.epsilon,
    delta: opts.delta,
    seed: opts.seed,
    rhoBudget: fitRhoBudget(opts.epsilon, opts.delta),
    rhoSpent: fit.rhoSpent,
    rounds: fit.rounds.map(({ roundId: _id, contributors: _c, ...r }) => r),
    l1TwoWay: e2.l1,
    l1ThreeWay: e3.l1,
    tvTwoWay: e2.tv,
    tvThreeWay: e3.tv,
    modelCliques: model.structure.tree.cliques.map((c) => [...c]),
    modelCells: fit.report!.totalCells,
    dropped: fit.report!.dropped.length,
    wallMs: performance.now() - t0,
    fitMs: fit.estimateMs,
    syntheticRows: rows,
    heMs: aggregator.timings.heMs,
    siteAnswerMs: aggregator.timings.siteAnswerMs,
    ...(opts.keepSynthetic ? { synthetic: synth } : {}),
  };
}
