import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { buildJunctionTree } from '../../model/pgm/junction-tree.ts';
import { Rng } from '../../model/rng.ts';
import { bruteForceMarginal, maxAbsDiff, randomModel } from './model-fixtures.ts';

/** Random small domains with loopy clique sets, so triangulation yields cliques of size ≥ 3. */
function randomCase(seed: number): { domain: Domain; cliques: string[][] } {
  const rng = new Rng(seed);
  const k = 3 + rng.nextInt(3); // 3..5 attributes
  const attrs = Array.from({ length: k }, (_, i) => `x${i}`);
  const domain = new Domain(
    attrs,
    attrs.map(() => 2 + rng.nextInt(3)),
  );
  // A cycle through every attribute (a loop) plus one random extra pair or triple.
  const cliques = attrs.map((a, i) => [a, attrs[(i + 1) % k]]);
  const extra = [attrs[rng.nextInt(k)], attrs[rng.nextInt(k)], attrs[rng.nextInt(k)]];
  cliques.push([...new Set(extra)]);
  return { domain, cliques };
}

describe('belief propagation', () => {
  for (let seed = 1; seed <= 12; seed++) {
    it(`matches brute-force marginals on random loopy model #${seed}`, () => {
      const { domain, cliques } = randomCase(seed);
      const model = randomModel(domain, cliques, 100 + seed);
      const tree = buildJunctionTree(domain, model.cliques);
      expect(Math.max(...tree.cliques.map((c) => c.length))).toBeGreaterThanOrEqual(2);
      const tol = 1e-9 * model.total;
      // Every junction-tree clique (the belief path) ...
      for (const c of model.structure.tree.cliques)
        expect(maxAbsDiff(model.marginal([...c]), bruteForceMarginal(model, [...c]))).toBeLessThan(tol);
      // ... every 1-way, and pairs/triples in a scrambled order (the variable-elimination path when no clique covers them).
      for (const a of domain.attrs) expect(maxAbsDiff(model.marginal([a]), bruteForceMarginal(model, [a]))).toBeLessThan(tol);
      const rev = [...domain.attrs].reverse();
      for (let i = 0; i + 1 < rev.length; i++) {
        const pair = [rev[i], rev[(i + 2) % rev.length]];
        if (pair[0] !== pair[1]) expect(maxAbsDiff(model.marginal(pair), bruteForceMarginal(model, pair))).toBeLessThan(tol);
      }
      const triple = [rev[0], rev[rev.length - 1], rev[1]];
      expect(maxAbsDiff(model.marginal(triple), bruteForceMarginal(model, triple))).toBeLessThan(tol);
    });
  }

  it('has a cycle-of-four model whose tree needs a fill-in clique of size 3', () => {
    const domain = new Domain(['a', 'b', 'c', 'd'], [2, 3, 2, 3]);
    const tree = buildJunctionTree(domain, [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'd'],
      ['d', 'a'],
    ]);
    expect(tree.cliques.map((c) => c.length).sort()).toEqual([3, 3]);
    expect(tree.separators[0].length).toBe(2);
  });

  it('matches brute force after conditioning (−∞ potentials), including P(where)', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const { domain, cliques } = randomCase(seed);
      const model = randomModel(domain, cliques, 200 + seed);
      const where = { x0: [1], x2: [0, domain.sizeOf('x2') - 1] };
      const cond = model.condition(where);
      const brute = bruteForceMarginal(model, [...domain.attrs.slice(0, 2)], where);
      const full = bruteForceMarginal(model, ['x0', 'x2'], where).reduce((a, b) => a + b, 0);
      // bruteForceMarginal normalises to model.total; the conditioned model's total is total·P(where).
      const pWhere = cond.total / model.total;
      const unconditioned = bruteForceMarginal(model, ['x0', 'x2']);
      const idx = (v0: number, v2: number) => v0 * domain.sizeOf('x2') + v2;
      const expectedP =
        (unconditioned[idx(1, 0)] + (domain.sizeOf('x2') > 1 ? unconditioned[idx(1, domain.sizeOf('x2') - 1)] : 0)) / model.total;
      expect(pWhere).toBeCloseTo(expectedP, 10);
      expect(model.probability(where)).toBeCloseTo(expectedP, 10);
      expect(full).toBeCloseTo(model.total, 6);
      const got = cond.marginal([...domain.attrs.slice(0, 2)]);
      expect(
        maxAbsDiff(
          got.map((v) => v / cond.total),
          brute.map((v) => v / model.total),
        ),
      ).toBeLessThan(1e-10);
      for (let v = 0; v < domain.sizeOf('x0'); v++) if (v !== 1) expect(cond.marginal(['x0'])[v]).toBe(0);
    }
  });

  it('stays exact where exp of the potentials would overflow or underflow (linear-scale messages are rescaled)', () => {
    // Potentials of ±300 per clique: exp(Σθ) spans far beyond a double, and a clique with three
    // children multiplies messages whose largest cells sit at different values.
    const domain = new Domain(['h', 'a', 'b', 'c', 'd', 'e'], [3, 2, 4, 3, 2, 3]);
    const cliques = [
      ['h', 'a'],
      ['h', 'b'],
      ['h', 'c'],
      ['c', 'd'],
      ['d', 'e'],
      ['a', 'b', 'e'],
    ];
    for (let seed = 1; seed <= 5; seed++) {
      const model = randomModel(domain, cliques, 300 + seed, 300);
      // Brute force in log space (max-shifted), so it does not overflow either.
      const all = [...domain.attrs];
      const n = domain.cells(all);
      const maps = model.cliques.map((c) => domain.indexMap(all, c));
      const lp = new Float64Array(n);
      for (let i = 0; i < n; i++) model.potentials.forEach((p, c) => (lp[i] += p[maps[c][i]]));
      const top = Math.max(...lp);
      const w = lp.map((v) => Math.exp(v - top));
      const z = w.reduce((x, y) => x + y, 0);
      expect(model.logZ).toBeCloseTo(top + Math.log(z), 9);
      const brute = (attrs: string[], keep: (i: number) => boolean = () => true) => {
        const map = domain.indexMap(all, attrs);
        const out = new Float64Array(domain.cells(attrs));
        for (let i = 0; i < n; i++) if (keep(i)) out[map[i]] += w[i];
        return out;
      };
      for (const c of model.structure.tree.cliques) {
        const b = brute([...c]);
        expect(
          maxAbsDiff(
            model.marginal([...c]),
            b.map((v) => (v / z) * model.total),
          ),
        ).toBeLessThan(1e-9 * model.total);
      }
      // Condition on the least likely value of `b`: its probability may be astronomically small
      // but is still represented (P(where) and the conditioned marginals, relative to the brute force).
      const pb = brute(['b']);
      const rare = pb.indexOf(Math.min(...pb));
      const pRare = pb[rare] / z;
      if (pRare > 1e-290) {
        const cond = model.condition({ b: [rare] });
        expect(Math.abs(cond.total / model.total / pRare - 1)).toBeLessThan(1e-8);
        const bMap = domain.indexMap(all, ['b']);
        const cb = brute(['h', 'e'], (i) => bMap[i] === rare);
        const cz = cb.reduce((x, y) => x + y, 0);
        expect(
          maxAbsDiff(
            cond.marginal(['h', 'e']),
            cb.map((v) => (v / cz) * cond.total),
          ),
        ).toBeLessThan(1e-9 * cond.total);
      }
    }
  });

  it('refuses a condition of probability zero with a clear error', () => {
    const domain = new Domain(['a', 'b'], [2, 2]);
    const model = randomModel(domain, [['a', 'b']], 1);
    expect(() => model.condition({ a: [] })).toThrow(/probability zero/);
    expect(() => model.condition({ a: [2] })).toThrow(/outside 0\.\.1/);
  });
});
