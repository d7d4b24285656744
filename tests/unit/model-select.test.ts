import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { kWayWorkload } from '../../model/metrics.ts';
import { type RoundResult, mstPlan, sigmaForRho } from '../../model/plans/plan.ts';
import { Rng } from '../../model/rng.ts';
import { selectMstTree } from '../../model/plans/select-mst.ts';
import { makeDataset } from './model-fixtures.ts';

// A chain a → b → c → d with strong links, e independent-ish of everything but d (weak).
const domain = new Domain(['a', 'b', 'c', 'd', 'e'], [4, 4, 3, 5, 2]);
const data = makeDataset(domain, 20000, 2, (rng) => {
  const a = rng.nextInt(4);
  const b = rng.next() < 0.8 ? a : rng.nextInt(4);
  const c = rng.next() < 0.8 ? b % 3 : rng.nextInt(3);
  const d = rng.next() < 0.8 ? c + 2 : rng.nextInt(5);
  const e = rng.next() < 0.3 ? d & 1 : rng.nextInt(2);
  return [a, b, c, d, e];
});

function measure(sets: string[][], sigma: number, rng: Rng): Measurement[] {
  return sets.map((attrs) => {
    const values = marginal(data, attrs);
    for (let i = 0; i < values.length; i++) values[i] += sigma * rng.normal();
    return { attrs, values, sigma };
  });
}

const key = (p: string[]) => [...p].sort().join('~');

describe('MST selection', () => {
  it('recovers the true tree from noisy measurements', () => {
    const rng = new Rng(1);
    const one = measure(
      domain.attrs.map((a) => [a]),
      10,
      rng,
    );
    const pairs = measure(kWayWorkload(domain, 2), 30, rng);
    const { edges, scores } = selectMstTree(domain, one, pairs);
    expect(edges.length).toBe(domain.length - 1);
    expect(edges.map(key).sort()).toEqual(['a~b', 'b~c', 'c~d', 'd~e']);
    expect(scores.length).toBe(10);
    expect(scores[0].score).toBeGreaterThanOrEqual(scores[9].score);
  });

  it('respects the pair-size cap', () => {
    const rng = new Rng(2);
    const one = measure(
      domain.attrs.map((a) => [a]),
      1,
      rng,
    );
    const pairs = measure(kWayWorkload(domain, 2), 1, rng);
    const { edges } = selectMstTree(domain, one, pairs, { maxPairCells: 12 });
    for (const e of edges) expect(domain.cells(e)).toBeLessThanOrEqual(12);
  });
});

describe('MST plan', () => {
  it('runs three rounds whose ρ sums to the total, selecting the tree from round 2', () => {
    const rho = 0.5;
    const plan = mstPlan(domain, rho, { shares: { oneWay: 1, select: 1, tree: 3 } });
    const rng = new Rng(3);
    const done: RoundResult[] = [];
    for (let spec = plan.next(done); spec; spec = plan.next(done)) {
      const sigma = sigmaForRho(spec.rho, spec.marginals.length);
      done.push({ spec, measurements: measure(spec.marginals, sigma, rng) });
    }
    expect(done.map((r) => r.spec.name)).toEqual(['one-way', 'select-pairs', 'tree-pairs']);
    expect(done[0].spec.marginals).toEqual(domain.attrs.map((a) => [a]));
    expect(done[1].spec.marginals.length).toBe(10);
    expect(done[0].spec.rho).toBeCloseTo(0.1, 15);
    expect(done[1].spec.rho).toBeCloseTo(0.1, 15);
    expect(done.reduce((s, r) => s + r.spec.rho, 0)).toBe(rho);
    expect(done[2].spec.marginals.map(key).sort()).toEqual(['a~b', 'b~c', 'c~d', 'd~e']);
    // Estimation gets 1-ways, the tree pairs, and round 2's answers for the same pairs.
    const inputs = plan.estimationInputs(done);
    expect(inputs.length).toBe(5 + 4 + 4);
    expect(plan.next(done)).toBeUndefined();
  });

  it('converts ρ to σ for k unit-sensitivity marginals: ρ = k / (2σ²)', () => {
    const s = sigmaForRho(0.015, 30);
    expect(30 / (2 * s * s)).toBeCloseTo(0.015, 15);
    expect(() => sigmaForRho(0, 3)).toThrow();
  });
});
