import { describe, expect, it } from 'vitest';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { estimateTotal, type Measurement } from '../../model/measurement.ts';
import { estimate, estimateWithReport, ModelSizeError } from '../../model/pgm/estimate.ts';
import { GraphicalModel } from '../../model/pgm/model.ts';
import { Rng } from '../../model/rng.ts';
import { l1, makeDataset } from './model-fixtures.ts';

const domain = new Domain(['a', 'b', 'c', 'd', 'e'], [3, 4, 2, 5, 3]);
// Dependent attributes with full support (every cell possible), so the exact fit is interior.
const data = makeDataset(domain, 4000, 7, (rng) => {
  const a = rng.nextInt(3);
  const b = rng.next() < 0.6 ? (a + 1) % 4 : rng.nextInt(4);
  const c = rng.next() < 0.7 ? b & 1 : rng.nextInt(2);
  const d = rng.next() < 0.5 ? (2 * c + a) % 5 : rng.nextInt(5);
  const e = rng.next() < 0.6 ? d % 3 : rng.nextInt(3);
  return [a, b, c, d, e];
});
const exact = (attrs: string[], sigma = 1): Measurement => ({ attrs, values: marginal(data, attrs), sigma });

describe('estimate', () => {
  it('recovers exact marginals from noiseless measurements on a tree (any attribute order)', () => {
    const sets = [
      ['b', 'a'],
      ['b', 'c'],
      ['d', 'c'],
      ['d', 'e'],
    ];
    const model = estimate(
      domain,
      sets.map((s) => exact(s)),
      { iterations: 400 },
    );
    expect(model.total).toBe(4000);
    for (const s of sets) expect(l1(model.marginal(s), marginal(data, s)) / 4000).toBeLessThan(2e-3);
    for (const a of domain.attrs) expect(l1(model.marginal([a]), marginal(data, [a])) / 4000).toBeLessThan(2e-3);
  });

  it('recovers exact marginals on a loopy measurement set (triangulated tree)', () => {
    const sets = [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
      ['c', 'd'],
      ['d', 'e'],
      ['e', 'c'],
    ];
    const { model, report } = estimateWithReport(
      domain,
      sets.map((s) => exact(s)),
      { iterations: 600 },
    );
    expect(report.maxCliqueCells).toBeGreaterThanOrEqual(24); // a·b·c clique
    // Consistent measurements of the same data are reproducible by some model; the fit approaches them.
    for (const s of sets) expect(l1(model.marginal(s), marginal(data, s)) / 4000).toBeLessThan(1e-2);
  });

  it('weights measurements by 1/σ: the precise one wins when two disagree', () => {
    const truth = marginal(data, ['a']);
    const off = truth.map((v, i) => v + (i === 0 ? 300 : -150));
    const model = estimate(
      domain,
      [
        { attrs: ['a'], values: truth, sigma: 1 },
        { attrs: ['a'], values: off, sigma: 10 },
      ],
      {
        iterations: 300,
        total: 4000,
      },
    );
    const m = model.marginal(['a']);
    // Weighted least squares: (1·truth + 0.01·off)/1.01.
    for (let i = 0; i < 3; i++) expect(m[i]).toBeCloseTo((truth[i] + 0.01 * off[i]) / 1.01, 0);
  });

  it('estimates the total with minimum variance across measurements', () => {
    const m1: Measurement = { attrs: ['a'], values: new Float64Array([100, 100, 100]), sigma: 1 }; // Σ=300, var 3
    const m2: Measurement = { attrs: ['b'], values: new Float64Array([100, 100, 50, 50]), sigma: 2 }; // Σ=300... var 16
    const m3: Measurement = { attrs: ['c'], values: new Float64Array([200, 130]), sigma: 1 }; // Σ=330, var 2
    const { total, variance } = estimateTotal([m1, m2, m3]);
    const w = [1 / 3, 1 / 16, 1 / 2];
    expect(variance).toBeCloseTo(1 / (w[0] + w[1] + w[2]), 12);
    expect(total).toBeCloseTo((300 * w[0] + 300 * w[1] + 330 * w[2]) / (w[0] + w[1] + w[2]), 9);
  });

  it('refuses a model over the clique-size cap with the clique and the cap in the message', () => {
    const sets = [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
      ['d', 'e'],
    ];
    expect(() =>
      estimate(
        domain,
        sets.map((s) => exact(s)),
        { iterations: 1, maxCliqueCells: 20 },
      ),
    ).toThrow(ModelSizeError);
    expect(() =>
      estimate(
        domain,
        sets.map((s) => exact(s)),
        { iterations: 1, maxCliqueCells: 20 },
      ),
    ).toThrow(/clique \[a, b, c\] would have 24 cells, over the cap of 20/);
  });

  it('drops (and reports) the measurements that would break the cap when asked to', () => {
    const sets = [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
      ['d', 'e'],
    ];
    const { model, report } = estimateWithReport(
      domain,
      sets.map((s) => exact(s)),
      { iterations: 50, maxCliqueCells: 20, onOversize: 'drop' },
    );
    expect(report.dropped.map((d) => d.attrs)).toEqual([['c', 'a']]);
    expect(report.dropped[0].reason).toMatch(/over the cap of 20/);
    expect(report.maxCliqueCells).toBeLessThanOrEqual(20);
    expect(model.cliques.map((c) => c.join(''))).not.toContain('ac');
    expect(() =>
      estimate(
        domain,
        sets.map((s) => exact(s)),
        { iterations: 1, maxTotalCells: 30 },
      ),
    ).toThrow(/39 cells in total, over the cap of 30/);
  });

  it('warm start from the previous round fits faster than a cold start', () => {
    const round1 = [exact(['a', 'b']), exact(['b', 'c'])];
    const round2 = [...round1, exact(['c', 'd']), exact(['d', 'e'])];
    const previous = estimate(domain, round1, { iterations: 300 });
    const cold = estimateWithReport(domain, round2, { iterations: 20 }).report.loss;
    const warm = estimateWithReport(domain, round2, { iterations: 20, warmStart: previous }).report.loss;
    expect(warm).toBeLessThan(cold);
  });

  it('fits noisy measurements better than the noise level (denoises)', () => {
    const rng = new Rng(3);
    const sigma = 20;
    const sets = [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['a'], ['b'], ['c'], ['d'], ['e']];
    const noisy = sets.map((s) => {
      const v = marginal(data, s);
      for (let i = 0; i < v.length; i++) v[i] += sigma * rng.normal();
      return { attrs: s, values: v, sigma };
    });
    const model = estimate(domain, noisy, { iterations: 300 });
    const ab = marginal(data, ['a', 'b']);
    expect(l1(model.marginal(['a', 'b']), ab)).toBeLessThan(l1(noisy[0].values, ab));
    expect(Math.min(...model.marginal(['a', 'b']))).toBeGreaterThanOrEqual(0);
  });

  it('serialises to JSON and back exactly (including −∞ from conditioning)', () => {
    const model = estimate(domain, [exact(['a', 'b']), exact(['b', 'c']), exact(['c', 'e'])], { iterations: 100 });
    const cond = model.condition({ a: [0, 2] });
    for (const m of [model, cond]) {
      const json = JSON.parse(JSON.stringify(m.toJSON()));
      const back = GraphicalModel.fromJSON(json);
      expect(back.total).toBe(m.total);
      expect(back.structure.tree).toEqual(m.structure.tree);
      expect(back.marginal(['c', 'a'])).toEqual(m.marginal(['c', 'a']));
    }
    expect(() => GraphicalModel.fromJSON(JSON.parse('{"format":"other"}'))).toThrow(/not a fedsynth-pgm/);
  });

  it('rejects malformed measurements clearly', () => {
    expect(() => estimate(domain, [{ attrs: ['a', 'z'], values: new Float64Array(3), sigma: 1 }], { iterations: 1 })).toThrow(
      /unknown attribute "z"/,
    );
    expect(() => estimate(domain, [{ attrs: ['a'], values: new Float64Array(4), sigma: 1 }], { iterations: 1 })).toThrow(
      /4 values, expected 3/,
    );
    expect(() => estimate(domain, [{ attrs: ['a'], values: new Float64Array(3), sigma: 0 }], { iterations: 1 })).toThrow(/sigma/);
  });
});
