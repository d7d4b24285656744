// Declared structure: a first round of public attribute sets at its own budget share, then the
// inner plan with the rest; rounds sum to ρ exactly, the declared answers reach the estimator and
// the inner plan's selection.
import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { mstPlan, type FitPlan, type RoundResult } from '../../model/plans/plan.ts';
import { aimPlan } from '../../model/plans/aim.ts';
import { STRUCTURE_ROUND, structureRoundName, withDeclaredStructure, type InnerPlan } from '../../model/plans/structure.ts';
import { Rng } from '../../model/rng.ts';
import { makeDataset } from './model-fixtures.ts';

const domain = new Domain(['a', 'b', 'c', 'd'], [3, 2, 4, 2]);
const data = makeDataset(domain, 3000, 3, (rng) => {
  const a = rng.nextInt(3);
  return [a, rng.next() < 0.9 ? a % 2 : rng.nextInt(2), rng.nextInt(4), rng.nextInt(2)];
});

function run(plan: FitPlan, seed = 1): RoundResult[] {
  const rng = new Rng(seed);
  const done: RoundResult[] = [];
  for (let i = 0; i < 50; i++) {
    const spec = plan.next(done);
    if (!spec) return done;
    const sigma = Math.sqrt(spec.marginals.length / (2 * spec.rho));
    const measurements: Measurement[] = spec.marginals.map((attrs) => ({
      attrs: [...attrs],
      values: marginal(data, attrs).map((v) => v + sigma * rng.normal()),
      sigma,
    }));
    done.push({ spec, measurements });
  }
  throw new Error('plan did not finish');
}

describe('withDeclaredStructure', () => {
  const declared = {
    share: 0.25,
    marginals: [
      ['a', 'b'],
      ['c', 'd'],
    ],
  };

  it('measures the declared sets first at their share; the rounds sum to ρ exactly', () => {
    for (const make of [(r: number) => mstPlan(domain, r), (r: number) => aimPlan(domain, r, { maxRounds: 4 })]) {
      const plan = withDeclaredStructure(domain, 0.5, declared, make);
      const done = run(plan);
      expect(done[0].spec).toEqual({
        name: STRUCTURE_ROUND,
        marginals: [
          ['a', 'b'],
          ['c', 'd'],
        ],
        rho: 0.125,
      });
      expect(done.slice(1).every((r) => r.spec.name !== STRUCTURE_ROUND)).toBe(true);
      expect(done.reduce((s, r) => s + r.spec.rho, 0)).toBeCloseTo(0.5, 14);
      const inputs = plan.estimationInputs(done);
      expect(inputs.slice(0, 2)).toEqual(done[0].measurements);
      expect(inputs.length).toBeGreaterThan(2);
    }
  });

  it('hands the declared answers to the inner plan as prior measurements, with its own round indices', () => {
    const seen: { rounds: number; prior: number }[] = [];
    const inner: InnerPlan = {
      rhoTotal: 0.3,
      next(done, prior) {
        seen.push({ rounds: done.length, prior: prior?.length ?? -1 });
        return done.length === 0 ? { name: 'one-way', marginals: [['a'], ['b'], ['c'], ['d']], rho: 0.3 } : undefined;
      },
      estimationInputs: (done) => done.flatMap((r) => r.measurements),
    };
    const plan = withDeclaredStructure(domain, 0.4, declared, (rho) => {
      expect(rho).toBeCloseTo(0.3, 15);
      return inner;
    });
    const done = run(plan);
    expect(done.map((r) => r.spec.name)).toEqual([STRUCTURE_ROUND, 'one-way']);
    expect(seen).toEqual([
      { rounds: 0, prior: 2 },
      { rounds: 1, prior: 2 },
    ]);
    expect(plan.estimationInputs(done)).toHaveLength(6);
  });

  it('rejects bad declarations and a history that does not start with the declared round', () => {
    const make = (r: number) => mstPlan(domain, r);
    expect(() => withDeclaredStructure(domain, 1, { share: 0, marginals: [['a', 'b']] }, make)).toThrow(/share/);
    expect(() => withDeclaredStructure(domain, 1, { share: 1, marginals: [['a', 'b']] }, make)).toThrow(/share/);
    expect(() => withDeclaredStructure(domain, 1, { share: 0.2, marginals: [] }, make)).toThrow(/no marginals/);
    expect(() => withDeclaredStructure(domain, 1, { share: 0.2, marginals: [['a', 'zz']] }, make)).toThrow(/unknown attribute "zz"/);
    const plan = withDeclaredStructure(domain, 1, declared, make);
    const foreign = run(mstPlan(domain, 1));
    expect(() => plan.next(foreign)).toThrow(/round 1 must be declared-structure/);
  });

  it('measures several groups, each in its own round at its own share, before the inner plan', () => {
    const grouped = {
      share: 0.4,
      marginals: [
        ['a', 'b'],
        ['c', 'd'],
        ['a', 'c'],
      ],
      groups: [
        {
          share: 0.3,
          marginals: [
            ['a', 'b'],
            ['c', 'd'],
          ],
        },
        { share: 0.1, marginals: [['a', 'c']] },
      ],
    };
    const plan = withDeclaredStructure(domain, 1, grouped, (r) => {
      expect(r).toBeCloseTo(0.6, 15);
      return mstPlan(domain, r);
    });
    const done = run(plan);
    expect(done.slice(0, 2).map((r) => [r.spec.name, r.spec.marginals.length, r.spec.rho])).toEqual([
      [structureRoundName(0), 2, 0.3],
      [structureRoundName(1), 1, 0.1],
    ]);
    expect(structureRoundName(1)).toBe('declared-structure-2');
    expect(done.reduce((s, r) => s + r.spec.rho, 0)).toBeCloseTo(1, 14);
    expect(plan.estimationInputs(done).slice(0, 3)).toEqual([...done[0].measurements, ...done[1].measurements]);
    const make = (r: number) => mstPlan(domain, r);
    expect(() =>
      withDeclaredStructure(domain, 1, { ...grouped, groups: [grouped.groups[0], { share: 0.7, marginals: [['a', 'c']] }] }, make),
    ).toThrow(/shares sum to 1/);
    expect(() => withDeclaredStructure(domain, 1, { ...grouped, groups: [] }, make)).toThrow(/no groups/);
    // A history whose second round is not the second declared group is refused.
    const swapped = [done[0], { ...done[1], spec: { ...done[1].spec, name: 'one-way' } }];
    expect(() => plan.next(swapped)).toThrow(/round 2 must be declared-structure-2/);
  });
});
