import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { allThreeWay, datasetWorkloadError } from '../../model/metrics.ts';
import { type FitPlan, type RoundResult } from '../../model/plan.ts';
import { aimPlan, independentPlan } from '../../model/plan-aim.ts';
import { estimate } from '../../model/pgm/estimate.ts';
import { buildJunctionTree, treeSize } from '../../model/pgm/junction-tree.ts';
import { Prng } from '../../model/prng.ts';
import { sample } from '../../model/sample.ts';
import { makeDataset } from './model-fixtures.ts';

const domain = new Domain(['a', 'b', 'c', 'd', 'e', 'f'], [4, 4, 3, 5, 2, 3]);
// Strong chain/star correlations: b ≈ a, c from b, d from a, e from c; f independent.
const data = makeDataset(domain, 6000, 7, (rng) => {
  const a = rng.nextInt(4);
  const b = rng.nextFloat() < 0.85 ? a : rng.nextInt(4);
  const c = rng.nextFloat() < 0.8 ? b % 3 : rng.nextInt(3);
  const d = rng.nextFloat() < 0.8 ? (a + 1) % 5 : rng.nextInt(5);
  const e = rng.nextFloat() < 0.85 ? c % 2 : rng.nextInt(2);
  return [a, b, c, d, e, rng.nextInt(3)];
});

/** Runs a plan against the data with Gaussian noise of the planned σ (a stand-in for the federated sum). */
function runPlan(plan: FitPlan, seed: number, maxLoops = 100): RoundResult[] {
  const rng = new Prng(seed);
  const done: RoundResult[] = [];
  for (let i = 0; i < maxLoops; i++) {
    const spec = plan.next(done);
    if (!spec) return done;
    const sigma = Math.sqrt(spec.marginals.length / (2 * spec.rho));
    const measurements: Measurement[] = spec.marginals.map((attrs) => {
      const values = marginal(data, attrs).map((v) => v + sigma * rng.normal());
      return { attrs: [...attrs], values, sigma };
    });
    done.push({ spec, measurements });
  }
  throw new Error('plan did not terminate');
}

describe('federated AIM plan', () => {
  it.each([0.001, 0.05, 2])('spends exactly its ρ (%f), in a bounded number of rounds', (rho) => {
    const plan = aimPlan(domain, rho, { maxRounds: 8, selectionIterations: 60 });
    const done = runPlan(plan, 1);
    expect(done.length).toBeGreaterThanOrEqual(3);
    expect(done.length).toBeLessThanOrEqual(8);
    const sum = done.reduce((s, r) => s + r.spec.rho, 0);
    expect(Math.abs(sum - rho)).toBeLessThanOrEqual(1e-12);
    for (const r of done) expect(r.spec.rho).toBeGreaterThan(0);
    expect(plan.next(done)).toBeUndefined();
  });

  it('respects the junction-tree cap', () => {
    const cap = 20; // no clique of more than 20 cells: e.g. a+b (16) yes, a+b+c (48) no
    const plan = aimPlan(domain, 1, { maxRounds: 8, maxCliqueCells: cap, maxTotalCells: 200, selectionIterations: 60 });
    const done = runPlan(plan, 2);
    const sets = plan.estimationInputs(done).map((m) => m.attrs);
    const size = treeSize(domain, buildJunctionTree(domain, sets));
    expect(size.maxCliqueCells).toBeLessThanOrEqual(cap);
    expect(size.totalCells).toBeLessThanOrEqual(200);
    for (const r of done.slice(2)) for (const m of r.spec.marginals) expect(domain.cells(m)).toBeLessThanOrEqual(cap);
  });

  it('selection beats independent attributes on correlated data', () => {
    const rho = 0.05;
    const errors = (plan: FitPlan, seed: number) => {
      const done = runPlan(plan, seed);
      const model = estimate(domain, plan.estimationInputs(done), { iterations: 300 });
      return datasetWorkloadError(data, sample(model, { seed, rows: data.rows }), allThreeWay(domain)).l1;
    };
    const aim = errors(aimPlan(domain, rho, { selectionIterations: 100 }), 3);
    const ind = errors(independentPlan(domain, rho), 3);
    expect(aim).toBeLessThan(0.7 * ind);
  });

  it('is deterministic given the same answers (a coordinator restart replays the same choices)', () => {
    const p1 = aimPlan(domain, 0.05, { selectionIterations: 60 });
    const done = runPlan(p1, 4);
    const p2 = aimPlan(domain, 0.05, { selectionIterations: 60 });
    for (let i = 0; i < done.length; i++) expect(p2.next(done.slice(0, i))).toEqual(done[i].spec);
  });

  it('rejects bad options', () => {
    expect(() => aimPlan(domain, 0)).toThrow(/rho/);
    expect(() => aimPlan(domain, 1, { maxRounds: 2 })).toThrow(/maxRounds/);
    expect(() => aimPlan(domain, 1, { oneWayShare: 0.7, screenShare: 0.4 })).toThrow(/Share/);
  });
});
