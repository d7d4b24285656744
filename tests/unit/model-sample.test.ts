import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { Rng } from '../../model/rng.ts';
import { iidValues, roundedValues, sample } from '../../model/sample.ts';
import { randomModel } from './model-fixtures.ts';

const domain = new Domain(['a', 'b', 'c', 'd', 'e'], [3, 4, 2, 5, 3]);
// Loopy structure: the a-b-c triangle needs a 3-attribute clique; d and e hang off it.
const cliques = [
  ['a', 'b'],
  ['b', 'c'],
  ['c', 'a'],
  ['c', 'd'],
  ['d', 'e'],
];

/** max over cells of |observed − expected| / sqrt(expected·(1−p)+1): a z-score bound for multinomial counts. */
function maxZ(observed: Float64Array, expected: Float64Array, n: number): number {
  let z = 0;
  for (let i = 0; i < observed.length; i++) {
    const p = expected[i] / n;
    z = Math.max(z, Math.abs(observed[i] - expected[i]) / Math.sqrt(n * p * (1 - p) + 1));
  }
  return z;
}

describe('sample', () => {
  const model = randomModel(domain, cliques, 5, 1.5, 20000);

  for (const method of ['iid', 'round'] as const) {
    it(`${method}: marginals of the sample match the model's within sampling error`, () => {
      const n = 20000;
      const syn = sample(model, { seed: 11, method, rows: n });
      expect(syn.rows).toBe(n);
      for (const set of [
        ['a', 'b'],
        ['b', 'c'],
        ['a', 'c'],
        ['c', 'd'],
        ['d', 'e'],
        ['a', 'e'],
        ['a', 'b', 'c'],
      ]) {
        // 5σ per cell over ~100 cells: a false alarm is astronomically rare.
        expect(maxZ(marginal(syn, set), model.marginal(set), n)).toBeLessThan(5);
      }
    });
  }

  it('round: 1-way counts equal the exactly rounded expected counts', () => {
    // Only 1-way cliques: every attribute is drawn unconditionally, so its counts are floor/ceil of n·p.
    const indep = randomModel(
      domain,
      domain.attrs.map((a) => [a]),
      9,
      2,
      1000,
    );
    const n = 997;
    const syn = sample(indep, { seed: 3, rows: n });
    for (const a of domain.attrs) {
      const expected = indep.marginal([a]).map((v) => (v / indep.total) * n);
      const got = marginal(syn, [a]);
      for (let v = 0; v < got.length; v++) expect([Math.floor(expected[v]), Math.ceil(expected[v])]).toContain(got[v]);
    }
    // The first attribute drawn in the loopy model too (no parents).
    const first = model.structure.tree.order[model.structure.tree.order.length - 1];
    const exp1 = model.marginal([first]).map((v) => (v / model.total) * n);
    const got1 = marginal(sample(model, { seed: 4, rows: n }), [first]);
    for (let v = 0; v < got1.length; v++) expect(Math.abs(got1[v] - exp1[v])).toBeLessThan(1);
  });

  it('round: marginals are much tighter than i.i.d. sampling', () => {
    const n = 5000;
    const err = (method: 'round' | 'iid') => {
      const syn = sample(model, { seed: 1, rows: n, method });
      let total = 0;
      for (const set of [['a'], ['b'], ['c'], ['d'], ['e'], ['a', 'b'], ['c', 'd'], ['a', 'b', 'c']]) {
        const exp = model.marginal(set).map((v) => (v / model.total) * n);
        const got = marginal(syn, set);
        for (let i = 0; i < got.length; i++) total += Math.abs(got[i] - exp[i]);
      }
      return total;
    };
    expect(err('round')).toBeLessThan(0.5 * err('iid'));
  });

  it('roundedValues / iidValues: exact counts and support', () => {
    const rng = new Rng(1);
    const w = new Float64Array([0.5, 0, 2.25, 1.25]);
    const vals = roundedValues(w, 10, rng);
    const counts = [0, 0, 0, 0];
    for (const v of vals) counts[v]++;
    // Expected 1.25, 0, 5.625, 3.125: floors 1, 0, 5, 3 and one extra to a cell with a fractional part.
    const expected = [1.25, 0, 5.625, 3.125];
    expected.forEach((e, i) => expect([Math.floor(e), Math.ceil(e)]).toContain(counts[i]));
    expect(counts.reduce((x, y) => x + y, 0)).toBe(10);
    expect(counts[1]).toBe(0);
    for (const v of iidValues(w, 2000, rng)) expect(v).not.toBe(1);
  });

  it('same seed → same rows; different seed → different rows', () => {
    const a = sample(model, { seed: 'cohort-42', rows: 500 });
    const b = sample(model, { seed: 'cohort-42', rows: 500 });
    const c = sample(model, { seed: 'cohort-43', rows: 500 });
    expect(a.columns).toEqual(b.columns);
    expect(a.columns).not.toEqual(c.columns);
  });

  it('conditional sampling respects fixed values and allowed sets, with the conditional distribution', () => {
    const where = { a: [2], d: [0, 3] };
    const n = 8000;
    const syn = sample(model, { seed: 5, rows: n, where, method: 'iid' });
    for (let r = 0; r < n; r++) {
      expect(syn.column('a')[r]).toBe(2);
      expect([0, 3]).toContain(syn.column('d')[r]);
    }
    const cond = model.condition(where);
    expect(
      maxZ(
        marginal(syn, ['b', 'e']),
        cond.marginal(['b', 'e']).map((v) => (v / cond.total) * n),
        n,
      ),
    ).toBeLessThan(5);
    // The rounding sampler respects the condition as well.
    const rounded = sample(model, { seed: 6, rows: 300, where: { e: [1] } });
    expect([...rounded.column('e')].every((v) => v === 1)).toBe(true);
  });
});
