/**
 * The one fit loop. The plan chooses each round from the noisy answers of the earlier ones; the
 * mechanism (privacy/dp/mechanisms.ts) sizes each site's noise share for the aggregator's quorum;
 * the aggregator has the sites answer and releases the noisy sums; the estimator fits the
 * graphical model to what the plan asks for. The coordinator (threshold-HE aggregator over gRPC
 * sites), the utility benchmark and the empirical audits (in-process aggregator over the same
 * site answer path) all run this loop.
 */
import { compressDomain, type ValueMap } from '../model/compress.ts';
import type { Domain } from '../model/domain.ts';
import type { Measurement } from '../model/measurement.ts';
import { estimateWithReport, type EstimateReport } from '../model/pgm/estimate.ts';
import type { GraphicalModel } from '../model/pgm/model.ts';
import type { FitPlan, RoundResult, RoundSpec } from '../model/plans/plan.ts';
import { planRoundNoise, releasedSigma, type RoundNoise } from '../privacy/dp/mechanisms.ts';

/** One round as the aggregator receives it: what to measure and the noise each site adds. */
export interface PlannedRound {
  /** Position in the plan (0-based): stable across restarts, so it can name the round. */
  index: number;
  spec: RoundSpec;
  noise: RoundNoise;
}

/** What an aggregator releases for a round. */
export interface ReleasedRound {
  /** The aggregator's id of the round (the coordinator's database key). */
  roundId: string;
  /** One noisy measurement per marginal of the spec, same order. */
  measurements: Measurement[];
  /** Sites whose answers are in the sums (each is charged the round's ρ). */
  contributors: string[];
}

export interface Aggregator {
  /** Sites whose noise shares the release counts on (the quorum the noise is sized for). */
  readonly parties: number;
  measure(round: PlannedRound): Promise<ReleasedRound>;
}

export interface FitRound {
  roundId: string;
  name: string;
  marginals: number;
  cells: number;
  /** ρ the plan asked for. */
  rhoPlanned: number;
  /** ρ charged to every contributor (from the exact σ², ≤ planned). */
  rho: number;
  /** σ of the released noise per cell, in records. */
  sigma: number;
  contributors: string[];
}

/**
 * Where the plan's selection and the final estimate run. Both are pure functions of the released
 * measurements, so running them in another thread (federation/plan-worker.ts) changes no result,
 * only which event loop they block.
 */
export interface FitPlanner {
  next(done: readonly RoundResult[]): Promise<RoundSpec | undefined>;
  estimate(done: readonly RoundResult[], iterations: number): Promise<{ model: GraphicalModel; report: EstimateReport }>;
}

/** The planner that runs in the caller's thread. */
export function inThreadPlanner(plan: FitPlan, domain: Domain): FitPlanner {
  return {
    next: async (done) => plan.next(done),
    estimate: async (done, iterations) => estimateInThread(plan, domain, done, iterations),
  };
}

/** The final estimate of a plan after its completed rounds (shared by both planners). */
export function estimateInThread(
  plan: FitPlan,
  domain: Domain,
  done: readonly RoundResult[],
  iterations: number,
): { model: GraphicalModel; report: EstimateReport } {
  // A plan that measured on a compressed domain is estimated there and expanded back after.
  const compressed = plan.estimationDomain?.(done);
  const fitted = estimateWithReport(compressed?.domain ?? domain, plan.estimationInputs(done), {
    iterations,
    onOversize: 'drop',
    ...estimationOptions(plan, done),
  });
  return { model: compressed ? compressed.expand(fitted.model) : fitted.model, report: fitted.report };
}

export interface FitOptions {
  domain: Domain;
  /** Runs the plan's selection and the estimate elsewhere (default: in this thread). */
  planner?: FitPlanner;
  /** Mirror-descent iterations of the final estimate; 0 skips estimation (measurements only). */
  iterations: number;
  onRound?: (round: FitRound, index: number) => void;
  onProgress?: (message: string) => void;
}

export interface FitResult {
  rounds: FitRound[];
  done: RoundResult[];
  /** Every released measurement, in release order. */
  released: Measurement[];
  rhoSpent: number;
  /** Absent when `iterations` is 0. */
  model?: GraphicalModel;
  report?: EstimateReport;
  /** Time of the final estimate. */
  estimateMs: number;
}

/** The estimator settings a plan implies: warm start from its last selection model, its size caps. */
function estimationOptions(plan: FitPlan, done: readonly RoundResult[]) {
  const p = plan as FitPlan & {
    inner?: FitPlan;
    selectionModel?: (d: readonly RoundResult[]) => GraphicalModel | undefined;
  };
  const base = (p.inner ?? p) as { options?: { maxCliqueCells?: unknown; maxTotalCells?: unknown } };
  const cap = (x: unknown) => (typeof x === 'number' ? x : undefined);
  return {
    warmStart: p.selectionModel?.(done),
    maxCliqueCells: cap(base.options?.maxCliqueCells),
    maxTotalCells: cap(base.options?.maxTotalCells),
  };
}

/** The domain a round's marginals are over: the original, or the one its value map compresses to. */
export function roundDomain(domain: Domain, spec: Pick<RoundSpec, 'valueMap'>): Domain {
  return spec.valueMap ? compressDomain(domain, spec.valueMap) : domain;
}

function checkRelease(domain: Domain, spec: RoundSpec, released: ReleasedRound): void {
  const where = `round ${released.roundId}`;
  if (released.measurements.length !== spec.marginals.length)
    throw new Error(`${where}: ${released.measurements.length} measurements released for ${spec.marginals.length} marginals`);
  spec.marginals.forEach((attrs, i) => {
    const m = released.measurements[i];
    if (m.attrs.join('\u0000') !== attrs.join('\u0000') || m.values.length !== domain.cells(attrs))
      throw new Error(`${where}: measurement ${i} does not match marginal [${attrs.join(', ')}]`);
  });
  if (released.contributors.length === 0) throw new Error(`${where}: released with no contributors`);
}

export async function runFit(plan: FitPlan, aggregator: Aggregator, opts: FitOptions): Promise<FitResult> {
  const { domain } = opts;
  const planner = opts.planner ?? inThreadPlanner(plan, domain);
  const done: RoundResult[] = [];
  const rounds: FitRound[] = [];
  const released: Measurement[] = [];
  for (let index = 0; ; index++) {
    const spec = await planner.next(done);
    if (!spec) break;
    const measuredOn = roundDomain(domain, spec);
    const dimension = spec.marginals.reduce((s, a) => s + measuredOn.cells(a), 0);
    const noise = planRoundNoise({ cellsPerRow: spec.marginals.length, dimension, parties: aggregator.parties, targetRho: spec.rho });
    const out = await aggregator.measure({ index, spec, noise });
    checkRelease(measuredOn, spec, out);
    done.push({ spec, measurements: out.measurements });
    released.push(...out.measurements);
    const round: FitRound = {
      roundId: out.roundId,
      name: spec.name,
      marginals: spec.marginals.length,
      cells: dimension,
      rhoPlanned: spec.rho,
      rho: noise.rho,
      sigma: releasedSigma(noise.sigmaSite2, out.contributors.length),
      contributors: out.contributors,
    };
    rounds.push(round);
    opts.onRound?.(round, index);
  }
  const rhoSpent = rounds.reduce((s, r) => s + r.rho, 0);
  if (opts.iterations === 0) return { rounds, done, released, rhoSpent, estimateMs: 0 };
  const t0 = performance.now();
  opts.onProgress?.(`estimating from ${plan.estimationInputs(done).length} measurements (${opts.iterations} iterations)`);
  const { model, report } = await planner.estimate(done, opts.iterations);
  return { rounds, done, released, rhoSpent, model, report, estimateMs: performance.now() - t0 };
}

/**
 * Splits a released concatenated vector into one measurement per marginal. `domain` is the
 * domain the round counted on (`roundDomain`); with the round's value map, a marginal naming a
 * mapped attribute is a linear query over the original domain and carries that part of the map
 * as its `coarsen` (model/measurement.ts).
 */
export function toMeasurements(
  domain: Domain,
  marginals: readonly (readonly string[])[],
  values: ArrayLike<number>,
  sigma: number,
  valueMap?: ValueMap,
): Measurement[] {
  const out: Measurement[] = [];
  let off = 0;
  for (const attrs of marginals) {
    const cells = domain.cells(attrs);
    const coarsen = Object.fromEntries(attrs.filter((a) => valueMap?.[a]).map((a) => [a, [...valueMap![a]]]));
    out.push({
      attrs: [...attrs],
      values: Float64Array.from({ length: cells }, (_, i) => values[off + i]),
      sigma,
      ...(Object.keys(coarsen).length > 0 ? { coarsen } : {}),
    });
    off += cells;
  }
  if (off !== values.length) throw new Error(`released vector has ${values.length} values, the marginals have ${off} cells`);
  return out;
}
