/**
 * The federated fit in one process, for the empirical audits: the MST plan (model/plans/plan.ts
 * `mstPlan`, the coordinator's `fit.plan: mst`; its default — declared structure + AIM — is not
 * what these audits run, though every plan's rounds are the same mechanism), the same noise
 * sizing (`planDistributedNoise` with
 * Δ2 = √m, Δ1 = m, parties = quorum), each site's own exact discrete Gaussian share
 * (privacy/dp/discrete-gaussian.ts, OS CSPRNG) added to its own marginals, the integer sum, the
 * Private-PGM estimate and the sampler. Secure aggregation is left out: it changes no released
 * number (the sum is exact either way), only who can see the parts.
 *
 * `unsafeDisableNoiseForAudit` exists so that a test can show the audits CAN fail: with it the
 * released measurements are exact counts. Nothing outside cli/audit and tests sets it; the
 * production paths (site-agent/tasks.ts, coordinator/engine.ts) have no such switch.
 */
import type { Dataset } from '../../model/domain.ts';
import { marginals as siteMarginals } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { mstPlan, type RoundResult } from '../../model/plans/plan.ts';
import { estimateWithReport } from '../../model/pgm/estimate.ts';
import { sample } from '../../model/sample.ts';
import { planDistributedNoise, rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';
import { sampleDiscreteGaussianVector } from '../../privacy/dp/discrete-gaussian.ts';
import { rationalToNumber } from '../../privacy/dp/rational.ts';

export interface PipelineOptions {
  epsilon: number;
  delta: number;
  /** Rows of the synthetic cohort to sample (0: none). */
  cohortRows: number;
  seed: number;
  iterations?: number;
  /** TEST/AUDIT ONLY: release exact (un-noised) sums. Never set in production. */
  unsafeDisableNoiseForAudit?: boolean;
}

export interface PipelineResult {
  /** The released (noisy) measurements, as the coordinator releases them. */
  measurements: Measurement[];
  rounds: { name: string; marginals: number; cells: number; rho: number; sigma: number }[];
  rhoSpent: number;
  cohort: Dataset | null;
}

export function runFederatedPipeline(sites: readonly Dataset[], opts: PipelineOptions): PipelineResult {
  if (sites.length === 0) throw new Error('no sites');
  const domain = sites[0].domain;
  const plan = mstPlan(domain, rhoFromEpsilonDelta(opts.epsilon, opts.delta));
  const done: RoundResult[] = [];
  const rounds: PipelineResult['rounds'] = [];
  const released: Measurement[] = [];
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
    const total = new Float64Array(dimension);
    for (const site of sites) {
      const counts = siteMarginals(site, spec.marginals);
      const z = opts.unsafeDisableNoiseForAudit ? new BigInt64Array(dimension) : sampleDiscreteGaussianVector(noise.sigmaSite2, dimension);
      let off = 0;
      for (const c of counts) {
        for (let i = 0; i < c.length; i++) z[off + i] += BigInt(c[i]);
        off += c.length;
      }
      for (let i = 0; i < dimension; i++) total[i] += Number(z[i]);
    }
    const sigma = Math.sqrt(rationalToNumber(noise.sigmaSite2) * sites.length);
    const measurements: Measurement[] = [];
    let off = 0;
    for (const attrs of spec.marginals) {
      const cells = domain.cells(attrs);
      measurements.push({ attrs: [...attrs], values: total.slice(off, off + cells), sigma });
      off += cells;
    }
    released.push(...measurements);
    done.push({ spec, measurements });
    rounds.push({ name: spec.name, marginals: m, cells: dimension, rho: noise.rho, sigma });
  }
  let cohort: Dataset | null = null;
  if (opts.cohortRows > 0) {
    const { model } = estimateWithReport(domain, plan.estimationInputs(done), { iterations: opts.iterations ?? 300, onOversize: 'drop' });
    cohort = sample(model, { rows: opts.cohortRows, seed: opts.seed });
  }
  return { measurements: released, rounds, rhoSpent: rounds.reduce((s, r) => s + r.rho, 0), cohort };
}
