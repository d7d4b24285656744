import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { aimPlan } from '../../model/plans/aim.ts';
import { withRareValueCompression } from '../../model/plans/compress.ts';
import { mstPlan, sigmaForRho, type FitPlan, type RoundResult } from '../../model/plans/plan.ts';
import { compressDataset, compressDomain } from '../../model/compress.ts';
import { Rng } from '../../model/rng.ts';
import { buildFitPlan } from '../../federation/plan.ts';
import { makeDataset } from './model-fixtures.ts';

const domain = new Domain(['big', 'x', 'y'], [30, 3, 4]);
// big: values 0–2 common (≈ 30 % each), 3–29 rare (≈ 0.4 % each); x, y follow big's head.
const data = makeDataset(domain, 3000, 4, (rng) => {
  const u = rng.next();
  const big = u < 0.9 ? Math.floor(u / 0.3) : 3 + rng.nextInt(27);
  const x = rng.next() < 0.8 ? big % 3 : rng.nextInt(3);
  const y = rng.next() < 0.7 ? (x + 1) % 4 : rng.nextInt(4);
  return [big, x, y];
});

/** Runs a plan to the end with seeded Gaussian noise of the plan's σ, counting on the round's domain. */
function run(plan: FitPlan, seed: string): RoundResult[] {
  const rng = new Rng(seed);
  const done: RoundResult[] = [];
  for (let spec = plan.next(done); spec; spec = plan.next(done)) {
    const rows = spec.valueMap ? compressDataset(data, spec.valueMap) : data;
    const sigma = sigmaForRho(spec.rho, spec.marginals.length);
    const measurements: Measurement[] = spec.marginals.map((attrs) => ({
      attrs: [...attrs],
      values: marginal(rows, attrs).map((v) => v + rng.normal(0, sigma)),
      sigma,
    }));
    done.push({ spec, measurements });
  }
  return done;
}

describe('rare-value compression around a plan', () => {
  const rho = 0.05;
  for (const [name, make] of [
    ['mst', (d: Domain, r: number) => mstPlan(d, r)],
    ['aim', (d: Domain, r: number) => aimPlan(d, r, { selectionIterations: 50 })],
  ] as const) {
    it(`${name}: round 1 on the original domain, later rounds carry the map, ρ sums exactly`, () => {
      const plan = withRareValueCompression(domain, rho, make);
      const done = run(plan, `compress-${name}`);
      expect(done[0].spec.valueMap).toBeUndefined();
      const map = plan.valueMap(done)!;
      // The rare tail of big is merged; x and y (every value common) are not.
      expect(Math.max(...map.big)).toBeLessThan(6);
      expect(map.x).toBeUndefined();
      for (const r of done.slice(1)) expect(r.spec.valueMap).toEqual(map);
      expect(done.reduce((s, r) => s + r.spec.rho, 0)).toBeCloseTo(rho, 14);
      expect(done.reduce((s, r) => s + r.spec.rho, 0)).toBeLessThanOrEqual(rho * (1 + 1e-12));
      const est = plan.estimationDomain!(done)!;
      expect(est.domain.sizes).toEqual(compressDomain(domain, map).sizes);
      for (const m of plan.estimationInputs(done)) expect(m.values.length).toBe(est.domain.cells(m.attrs));
    });
  }

  it('replays the same rounds from fresh answer objects (a restarted coordinator)', () => {
    const make = (d: Domain, r: number) => mstPlan(d, r);
    const done = run(withRareValueCompression(domain, rho, make), 'replay');
    const copy = done.map((r) => ({
      spec: r.spec,
      measurements: r.measurements.map((m) => ({ ...m, values: Float64Array.from(m.values) })),
    }));
    const again = withRareValueCompression(domain, rho, make);
    for (let i = 0; i <= copy.length; i++) expect(again.next(copy.slice(0, i))).toEqual(i < done.length ? done[i].spec : undefined);
  });

  it('changes nothing when no value is rare', () => {
    const plan = withRareValueCompression(domain, rho, (d, r) => mstPlan(d, r), { thresholdSigmas: 0, minValues: 31 });
    const done = run(plan, 'identity');
    expect(plan.valueMap(done)).toEqual({});
    expect(done.every((r) => r.spec.valueMap === undefined)).toBe(true);
    expect(plan.estimationDomain!(done)).toBeUndefined();
  });

  it('refuses an inner plan whose first round is not every 1-way, and compression with declared structure', () => {
    const pairsFirst = (): FitPlan => ({
      rhoTotal: rho,
      next: () => ({ name: 'pairs', marginals: [['big', 'x']], rho }),
      estimationInputs: () => [],
    });
    expect(() => withRareValueCompression(domain, rho, pairsFirst)).toThrow(/first round \(pairs\) must measure only 1-way marginals/);
    const partial = (): FitPlan => ({
      rhoTotal: rho,
      next: () => ({ name: 'one-way', marginals: [['big']], rho }),
      estimationInputs: () => [],
    });
    expect(() => withRareValueCompression(domain, rho, partial)).toThrow(/does not measure x, y/);
    expect(() =>
      buildFitPlan(domain, { plan: 'mst', epsilon: 1, delta: 1e-9, compress: {}, structure: { share: 0.1, marginals: [['big', 'x']] } }),
    ).toThrow(/with declared structure is not supported/);
  });
});
