// The one fit loop over the in-process aggregator: sites answer through the production site path
// (federation/site-answer.ts), the noise is planned by privacy/dp/mechanisms.ts, the fit is
// reproducible from a seeded source, and malformed aggregator output is refused.
import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { splitSites } from '../../model/split.ts';
import type { AimPlanOptions } from '../../model/plans/aim.ts';
import { mstPlan } from '../../model/plans/plan.ts';
import { discreteGaussianVariance, sampleDiscreteGaussianVector } from '../../privacy/dp/discrete-gaussian.ts';
import { fitRhoBudget, planRoundNoise, releasedSigma } from '../../privacy/dp/mechanisms.ts';
import { rational, rationalToNumber } from '../../privacy/dp/rational.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';
import { inProcessAggregator } from '../../federation/in-process.ts';
import { buildFitPlan, type PlanKind } from '../../federation/plan.ts';
import { runFit, toMeasurements, type Aggregator } from '../../federation/run-fit.ts';
import { siteAnswer, siteCounts } from '../../federation/site-answer.ts';
import { makeDataset } from './model-fixtures.ts';

const domain = new Domain(['age', 'sex', 'sick', 'smoker'], [5, 2, 2, 3]);
const data = makeDataset(domain, 2400, 11, (rng) => {
  const age = rng.nextInt(5);
  const smoker = rng.nextInt(3);
  const sick = rng.next() < 0.1 + 0.1 * age + 0.1 * smoker ? 1 : 0;
  return [age, rng.nextInt(2), sick, smoker];
});
const sites = (n: number) =>
  splitSites(data, { sites: n, kind: 'heterogeneous', seed: 2, key: 'age' }).sites.map((d, i) => ({ id: `s${i + 1}`, data: d }));

async function fit(
  seed: string,
  opts: { summation?: 'plain' | 'he'; noNoise?: boolean; iterations?: number; sites?: number; plan?: PlanKind; aim?: AimPlanOptions } = {},
) {
  const agg = await inProcessAggregator(sites(opts.sites ?? 3), {
    random: seededRandomSourceForTests(seed),
    summation: opts.summation,
    unsafeDisableNoiseForAudit: opts.noNoise,
  });
  try {
    return await runFit(buildFitPlan(domain, { plan: opts.plan ?? 'mst', epsilon: 1, delta: 1e-9, aim: opts.aim }), agg, {
      domain,
      iterations: opts.iterations ?? 0,
    });
  } finally {
    agg.dispose();
  }
}

describe('the site answer', () => {
  it('is the site’s marginals concatenated plus its own discrete Gaussian share', () => {
    const marginals = [['age'], ['sick', 'smoker']];
    const sigma2 = rational(9n, 2n);
    const exact = siteCounts(data, marginals);
    expect(Array.from(exact, Number)).toEqual([...marginal(data, ['age']), ...marginal(data, ['sick', 'smoker'])]);
    const noised = siteAnswer(data, marginals, sigma2, { random: seededRandomSourceForTests('x') }).values;
    const noise = sampleDiscreteGaussianVector(sigma2, exact.length, seededRandomSourceForTests('x'));
    expect(Array.from(noised, (v, i) => v - exact[i])).toEqual(Array.from(noise));
  });
});

describe('runFit over the in-process aggregator', () => {
  it('is reproducible from a seeded source and differs across seeds', async () => {
    const a = await fit('fit-a');
    const b = await fit('fit-a');
    const c = await fit('fit-c');
    expect(a.released.map((m) => Array.from(m.values))).toEqual(b.released.map((m) => Array.from(m.values)));
    expect(a.released.map((m) => Array.from(m.values))).not.toEqual(c.released.map((m) => Array.from(m.values)));
  });

  it('charges the planned ρ per round, sums to the budget, and releases σ of all contributors', async () => {
    const r = await fit('fit-rho');
    expect(r.rounds.map((x) => x.name)).toEqual(['one-way', 'select-pairs', 'tree-pairs']);
    const budget = fitRhoBudget(1, 1e-9);
    expect(r.rhoSpent).toBeLessThanOrEqual(budget);
    expect(r.rhoSpent).toBeGreaterThan(0.999 * budget);
    for (const x of r.rounds) {
      const noise = planRoundNoise({ cellsPerRow: x.marginals, dimension: x.cells, parties: 3, targetRho: x.rhoPlanned });
      expect(x.rho).toBe(noise.rho);
      expect(x.sigma).toBe(releasedSigma(noise.sigmaSite2, 3));
      expect(x.contributors).toEqual(['s1', 's2', 's3']);
    }
  });

  it('without noise (audit-test switch) releases the pooled marginals exactly', async () => {
    const r = await fit('unused', { noNoise: true });
    for (const m of r.released) expect(Array.from(m.values)).toEqual(Array.from(marginal(data, m.attrs)));
  });

  it('one site and n sites: without noise, the same AIM rounds, the same released sums and the same σ', async () => {
    // The federated fit is the central one on pooled sums: nothing in the plan, the noise planner
    // or the release may depend on how the rows are split, beyond the (negligible) distributed
    // discrete Gaussian correction and the per-share rounding of σ².
    const n = 10;
    // Few selection iterations keep the test cheap; both fits use the same plan options.
    const aim = { selectionIterations: 50 };
    const central = await fit('unused', { noNoise: true, sites: 1, plan: 'aim', aim });
    const fed = await fit('unused', { noNoise: true, sites: n, plan: 'aim', aim });
    expect(fed.rounds.map((x) => [x.name, x.cells])).toEqual(central.rounds.map((x) => [x.name, x.cells]));
    expect(fed.done.map((r) => r.spec.marginals)).toEqual(central.done.map((r) => r.spec.marginals));
    expect(fed.released.map((m) => Array.from(m.values))).toEqual(central.released.map((m) => Array.from(m.values)));
    fed.rounds.forEach((x, i) => {
      // Each σ² (one site's, or each of n shares) is rounded up to a multiple of 1/1024: the
      // released variances may differ by at most n/1024 records², nothing more.
      expect(Math.abs(x.sigma ** 2 - central.rounds[i].sigma ** 2)).toBeLessThanOrEqual(n / 1024);
      expect(x.rho).toBeLessThanOrEqual(x.rhoPlanned);
      expect(Math.abs(x.rho / central.rounds[i].rho - 1)).toBeLessThan(1e-4);
    });
    expect(central.rounds.length).toBeGreaterThanOrEqual(3);
  });

  it('with noise: the released − exact residuals have the variance of three planned shares', async () => {
    const r = await fit('fit-var');
    const residuals: number[] = [];
    for (const m of r.released) {
      const exact = marginal(data, m.attrs);
      m.values.forEach((v, i) => residuals.push(v - exact[i]));
    }
    // Every round has its own σ; normalise each residual by its round's σ² per share.
    const perRound = r.rounds.flatMap((x, k) =>
      Array.from({ length: x.cells }, () => ({
        k,
        v: planRoundNoise({ cellsPerRow: x.marginals, dimension: x.cells, parties: 3, targetRho: x.rhoPlanned }).sigmaSite2,
      })),
    );
    expect(perRound.length).toBe(residuals.length);
    const z2 = residuals.map((e, i) => (e * e) / (3 * discreteGaussianVariance(rationalToNumber(perRound[i].v))));
    const mean = z2.reduce((s, x) => s + x, 0) / z2.length;
    // E = 1, sd of the mean √(2/n) for Gaussian residuals; seeded, so this is deterministic.
    expect(Math.abs(mean - 1)).toBeLessThan(5 * Math.sqrt(2 / z2.length));
  });

  it('threshold-BFV summation releases the same integers as the plain sum', async () => {
    const plain = await fit('fit-he');
    const he = await fit('fit-he', { summation: 'he' });
    expect(he.released.map((m) => Array.from(m.values))).toEqual(plain.released.map((m) => Array.from(m.values)));
  }, 60_000);

  it('estimates the model when asked, with the plan’s estimation inputs', async () => {
    const r = await fit('fit-model', { iterations: 50 });
    expect(r.model).toBeDefined();
    expect(Math.abs(r.model!.total - data.rows)).toBeLessThan(200);
  });
});

describe('bad input', () => {
  const plan = mstPlan(domain, 0.01);
  const wrong = (release: (round: Parameters<Aggregator['measure']>[0]) => Awaited<ReturnType<Aggregator['measure']>>): Aggregator => ({
    parties: 2,
    measure: async (round) => release(round),
  });

  it('refuses a release with the wrong number of measurements, wrong shapes or no contributors', async () => {
    await expect(
      runFit(
        plan,
        wrong(() => ({ roundId: 'x', measurements: [], contributors: ['a'] })),
        { domain, iterations: 0 },
      ),
    ).rejects.toThrow(/0 measurements released for 4 marginals/);
    const shifted = (r: Parameters<Aggregator['measure']>[0]) =>
      toMeasurements(domain, r.spec.marginals, new Float64Array(r.noise.dimension), 1).map((m) => ({
        ...m,
        attrs: [...m.attrs].reverse(),
      }));
    await expect(
      runFit(
        plan,
        wrong((r) => ({ roundId: 'x', measurements: [...shifted(r).slice(1), shifted(r)[0]], contributors: ['a'] })),
        { domain, iterations: 0 },
      ),
    ).rejects.toThrow(/does not match marginal/);
    await expect(
      runFit(
        plan,
        wrong((r) => ({
          roundId: 'x',
          measurements: toMeasurements(domain, r.spec.marginals, new Float64Array(r.noise.dimension), 1),
          contributors: [],
        })),
        {
          domain,
          iterations: 0,
        },
      ),
    ).rejects.toThrow(/no contributors/);
  });

  it('toMeasurements refuses a vector of the wrong length; unknown plans and empty federations are refused', async () => {
    expect(() => toMeasurements(domain, [['age']], new Float64Array(4), 1)).toThrow(/4 values, the marginals have 5 cells/);
    expect(() => buildFitPlan(domain, { plan: 'nope' as PlanKind, epsilon: 1, delta: 1e-9 })).toThrow(/unknown plan "nope"/);
    await expect(inProcessAggregator([])).rejects.toThrow(/no sites/);
  });
});
