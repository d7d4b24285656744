/**
 * The in-process federated utility benchmark: the real code path of a fit, minus the
 * network. Sites are simulated by splitting one dataset; everything else is what a federation
 * runs:
 *
 *   per round: the plan picks marginals and ρ → planDistributedNoise sizes each site's discrete
 *   Gaussian share (parties = all sites: the quorum is every site, so each site's σ² is the
 *   smallest that meets ρ when all n shares are in the sum) → each site computes its marginals
 *   (model/marginals.ts) and adds its own exact N_Z(0, σ²) vector (privacy/dp/discrete-gaussian.ts,
 *   OS CSPRNG) → the noised integer vectors are summed → the plan sees the pooled noisy
 *   measurements (σ_total² = n·σ²) and chooses the next round.
 *   then: Private-PGM estimation, the rounding sampler, and 2-way / 3-way L1 against the full data.
 *
 * Aggregation: 'plain' adds the per-site noised integer vectors in the clear; 'he' runs the real
 * threshold BFV secure aggregation (privacy/crypto/secure-aggregation.ts: Shamir shares, one BFV
 * ciphertext per 8192 values per committee member, homomorphic sums, t partial decryptions,
 * interpolation). Both give the identical integer total (the HE path is exact modular arithmetic
 * on the same integers); 'he' only adds time, which is reported separately as `heMs`.
 */
import type { Dataset } from '../../model/domain.ts';
import { marginals as siteMarginals, marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { allThreeWay, allTwoWay, workloadError } from '../../model/metrics.ts';
import { mstPlan, type FitPlan, type RoundResult } from '../../model/plans/plan.ts';
import { aimPlan, independentPlan, type AimPlanOptions } from '../../model/plans/aim.ts';
import { withDeclaredStructure, type DeclaredStructure } from '../../model/plans/structure.ts';
import { estimateWithReport } from '../../model/pgm/estimate.ts';
import type { GraphicalModel } from '../../model/pgm/model.ts';
import { sample } from '../../model/sample.ts';
import { Rng } from '../../model/rng.ts';
import { splitSites, type SplitKind } from '../../model/split.ts';
import { planDistributedNoise, rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';
import { sampleDiscreteGaussianVector } from '../../privacy/dp/discrete-gaussian.ts';
import { rationalToNumber } from '../../privacy/dp/rational.ts';

export type PlanKind = 'aim' | 'mst' | 'independent';
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
  /** Return the synthetic rows in the result (`synthetic`). */
  keepSynthetic?: boolean;
  /** Score the 3-way L1 on this many random triples instead of all (large domains); default all. */
  threeWaySample?: number;
  onProgress?: (message: string) => void;
}

export interface RoundReport {
  name: string;
  marginals: number;
  cells: number;
  /** ρ the plan asked for. */
  rhoPlanned: number;
  /** ρ actually charged (from the exact per-site σ², ≤ planned). */
  rho: number;
  /** σ of the pooled noise per cell, in records. */
  sigma: number;
}

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
  /** Time of the noise sampling at the sites. */
  noiseMs: number;
  /** The synthetic rows, when asked for (`keepSynthetic`). */
  synthetic?: Dataset;
}

export function makePlan(kind: PlanKind, data: Dataset, rho: number, aim?: AimPlanOptions): FitPlan {
  if (kind === 'aim') return aimPlan(data.domain, rho, aim);
  if (kind === 'mst') return mstPlan(data.domain, rho);
  if (kind === 'independent') return independentPlan(data.domain, rho);
  throw new Error(`unknown plan "${kind as string}"`);
}

export async function runUtility(data: Dataset, opts: UtilityRunOptions): Promise<UtilityResult> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? (() => undefined);
  const domain = data.domain;
  const rhoBudget = rhoFromEpsilonDelta(opts.epsilon, opts.delta);
  const { sites, key } = splitSites(data, { sites: opts.sites, kind: opts.split, seed: opts.seed, key: opts.splitKey });
  const structure = opts.structure;
  const plan: FitPlan & { inner?: FitPlan } = structure
    ? withDeclaredStructure(domain, rhoBudget, structure, (rho) => makePlan(opts.plan, data, rho, opts.aim))
    : makePlan(opts.plan, data, rhoBudget, opts.aim);
  const aggregate = opts.aggregation === 'he' ? await heAggregator(sites.length) : undefined;
  let heMs = 0;
  let noiseMs = 0;
  const done: RoundResult[] = [];
  const rounds: RoundReport[] = [];
  try {
    for (;;) {
      const spec = plan.next(done);
      if (!spec) break;
      const m = spec.marginals.length;
      const dimension = spec.marginals.reduce((s, a) => s + domain.cells(a), 0);
      const noise = planDistributedNoise({
        l2Sensitivity: Math.sqrt(m),
        l1Sensitivity: m,
        parties: sites.length,
        dimension,
        targetRho: spec.rho,
      });
      // Each site: its true marginals, concatenated, plus its own discrete Gaussian share.
      const contributions: BigInt64Array[] = [];
      for (const site of sites) {
        const counts = siteMarginals(site, spec.marginals);
        const tn = performance.now();
        const z = sampleDiscreteGaussianVector(noise.sigmaSite2, dimension);
        noiseMs += performance.now() - tn;
        let off = 0;
        for (const c of counts) {
          for (let i = 0; i < c.length; i++) z[off + i] += BigInt(c[i]);
          off += c.length;
        }
        contributions.push(z);
      }
      let total: Float64Array;
      if (aggregate) {
        const th = performance.now();
        total = Float64Array.from(aggregate(contributions), Number);
        heMs += performance.now() - th;
      } else {
        total = new Float64Array(dimension);
        for (const z of contributions) for (let i = 0; i < dimension; i++) total[i] += Number(z[i]);
      }
      const sigma = Math.sqrt(rationalToNumber(noise.sigmaSite2) * sites.length);
      const measurements: Measurement[] = [];
      let off = 0;
      for (const attrs of spec.marginals) {
        const cells = domain.cells(attrs);
        measurements.push({ attrs: [...attrs], values: total.slice(off, off + cells), sigma });
        off += cells;
      }
      done.push({ spec, measurements });
      rounds.push({ name: spec.name, marginals: m, cells: dimension, rhoPlanned: spec.rho, rho: noise.rho, sigma });
      progress(
        `round ${rounds.length} ${spec.name}: ${m} marginals, ${dimension} cells, ρ ${noise.rho.toPrecision(4)}, σ ${sigma.toFixed(1)}`,
      );
    }
  } finally {
    aggregate?.dispose();
  }
  const tFit = performance.now();
  const inputs = plan.estimationInputs(done);
  const warm =
    'selectionModel' in plan
      ? (plan as { selectionModel(d: readonly RoundResult[]): GraphicalModel | undefined }).selectionModel(done)
      : undefined;
  const iterations = opts.iterations ?? 1000;
  progress(`estimating from ${inputs.length} measurements (${iterations} iterations)`);
  const base = plan.inner ?? plan;
  const aimOpts = opts.plan === 'aim' && 'options' in base ? (base as unknown as { options: Required<AimPlanOptions> }).options : undefined;
  const { model, report } = estimateWithReport(domain, inputs, {
    iterations,
    warmStart: warm,
    maxCliqueCells: aimOpts?.maxCliqueCells,
    maxTotalCells: aimOpts?.maxTotalCells,
    onOversize: 'drop',
  });
  const fitMs = performance.now() - tFit;
  // As many synthetic rows as the model's (noisy, minimum-variance) estimate of the number of
  // records: the benchmark uses nothing about the data that a federation would not release.
  const rows = Math.max(1, Math.round(model.total));
  progress(`sampling ${rows} rows (rounding sampler)`);
  const synth = sample(model, { rows, seed: opts.seed });
  progress('scoring 2-way and 3-way marginals');
  const e2 = workloadError(
    (r) => marginal(data, r),
    (r) => marginal(synth, r),
    allTwoWay(domain),
  );
  let triples = allThreeWay(domain);
  if (opts.threeWaySample !== undefined && opts.threeWaySample < triples.length) {
    const rng = new Rng(`triples-${opts.seed}`);
    triples = rng.shuffle(triples).slice(0, opts.threeWaySample);
  }
  const e3 =
    domain.length >= 3
      ? workloadError(
          (r) => marginal(data, r),
          (r) => marginal(synth, r),
          triples,
        )
      : e2;
  return {
    plan: opts.plan,
    split: opts.split,
    splitKey: key,
    sites: sites.length,
    rows: data.rows,
    epsilon: opts.epsilon,
    delta: opts.delta,
    seed: opts.seed,
    rhoBudget,
    rhoSpent: rounds.reduce((s, r) => s + r.rho, 0),
    rounds,
    l1TwoWay: e2.l1,
    l1ThreeWay: e3.l1,
    tvTwoWay: e2.tv,
    tvThreeWay: e3.tv,
    modelCliques: model.structure.tree.cliques.map((c) => [...c]),
    modelCells: report.totalCells,
    dropped: report.dropped.length,
    wallMs: performance.now() - t0,
    fitMs,
    syntheticRows: rows,
    heMs,
    noiseMs,
    ...(opts.keepSynthetic ? { synthetic: synth } : {}),
  };
}

/**
 * Threshold BFV aggregation with a committee of min(3, n) sites, threshold ⌈k/2⌉+… (2 of 3):
 * every site Shamir-shares and encrypts, the coordinator adds ciphertexts, t members decrypt.
 */
async function heAggregator(n: number): Promise<((vs: BigInt64Array[]) => BigInt64Array) & { dispose(): void }> {
  const { Bfv } = await import('../../privacy/crypto/bfv.ts');
  const sa = await import('../../privacy/crypto/secure-aggregation.ts');
  const bfv = await Bfv.create();
  const k = Math.min(3, n);
  const t = k === 1 ? 1 : 2;
  const keys = Array.from({ length: k }, () => bfv.generateKeyPair());
  const committee = keys.map((kp, j) => ({ memberId: `site-${j + 1}`, point: j + 1, publicKey: kp.publicKey }));
  const fn = (vs: BigInt64Array[]): BigInt64Array => {
    let acc: import('../../privacy/crypto/secure-aggregation.ts').Contribution | null = null;
    for (const v of vs) acc = sa.accumulate(bfv, acc, sa.prepareContribution(bfv, v, committee, t));
    const present = acc!.shares.slice(0, t);
    const partials = present.map((s) => ({
      point: s.point,
      share: sa.partialDecrypt(bfv, keys[s.point - 1].secretKey, s.ciphertexts, acc!.length),
    }));
    return sa.combine(partials, t);
  };
  return Object.assign(fn, { dispose: () => bfv.dispose() });
}
