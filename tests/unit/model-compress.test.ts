import { describe, expect, it } from 'vitest';
import {
  bucketShares,
  compressDataset,
  compressDomain,
  compressMeasurement,
  expandModel,
  projectOntoSimplex,
  rareValueMap,
  validateValueMap,
  valueMapProblem,
} from '../../model/compress.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { estimate } from '../../model/pgm/estimate.ts';
import { sample } from '../../model/sample.ts';
import { l1, makeDataset } from './model-fixtures.ts';

const domain = new Domain(['a', 'b', 'c'], [6, 3, 2]);
const oneWay = (attr: string, values: number[], sigma: number): Measurement => ({
  attrs: [attr],
  values: Float64Array.from(values),
  sigma,
});

describe('rare-value map from noisy 1-way counts', () => {
  it('merges values below thresholdSigmas·σ into one bucket after the kept values, in order', () => {
    const map = rareValueMap(domain, [oneWay('a', [100, 29, 31, -5, 50, 2], 10), oneWay('b', [40, 40, 40], 10), oneWay('c', [1, 2], 10)]);
    // a: 29, -5 and 2 are below 30 → kept 0 (100), 2 (31), 4 (50) get 0, 1, 2; the rest 3.
    expect(map.a).toEqual([0, 3, 1, 3, 2, 3]);
    // b: nothing rare; c: both rare → one bucket (a constant attribute).
    expect(map.b).toBeUndefined();
    expect(map.c).toEqual([0, 0]);
    expect(compressDomain(domain, map).sizes).toEqual([4, 3, 1]);
  });

  it('leaves an attribute with a single rare value alone, and pools repeated answers (σ/√2)', () => {
    // One rare value: merging it would change nothing.
    expect(
      rareValueMap(domain, [oneWay('a', [100, 100, 100, 100, 100, 0], 10), oneWay('b', [0, 0, 0], 1), oneWay('c', [9, 9], 1)]).a,
    ).toBeUndefined();
    // Two answers of σ = 10 pool to σ ≈ 7.07: 25 is kept at 3σ_pooled = 21.2 though each alone is below 30.
    const map = rareValueMap(domain, [
      oneWay('a', [25, 25, 0, 0, 90, 90], 10),
      oneWay('a', [25, 25, 0, 0, 90, 90], 10),
      oneWay('b', [50, 50, 50], 1),
      oneWay('c', [50, 50], 1),
    ]);
    expect(map.a).toEqual([0, 1, 4, 4, 2, 3]);
  });

  it('compresses only attributes with at least minValues values', () => {
    const ones = [oneWay('a', [100, 1, 1, 1, 1, 1], 10), oneWay('b', [100, 1, 1], 10), oneWay('c', [1, 1], 10)];
    expect(Object.keys(rareValueMap(domain, ones, 3, 4))).toEqual(['a']);
    expect(Object.keys(rareValueMap(domain, ones, 3, 0))).toEqual(['a', 'b', 'c']);
  });

  it('refuses a missing 1-way or a bad threshold', () => {
    expect(() => rareValueMap(domain, [oneWay('a', [1, 1, 1, 1, 1, 1], 1)])).toThrow(/no 1-way measurement of "b"/);
    expect(() => rareValueMap(domain, [], -1)).toThrow(/thresholdSigmas/);
  });
});

describe('malformed value maps are refused with the problem named', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', [1, 2], /must be an object/],
    ['unknown attribute', { z: [0] }, /unknown attribute "z"/],
    ['not an array', { a: 'x' }, /"a" must be an array/],
    ['wrong length', { a: [0, 0, 1] }, /"a" has 3 codes, the attribute has 6 values/],
    ['negative code', { b: [0, -1, 0] }, /code of value 1 must be an integer in 0\.\.2/],
    ['fractional code', { b: [0, 0.5, 0] }, /code of value 1/],
    ['code out of range', { b: [0, 3, 0] }, /code of value 1 must be an integer in 0\.\.2/],
    ['gap in codes', { a: [0, 0, 2, 2, 2, 2] }, /no value maps to code 1/],
  ];
  for (const [what, map, re] of cases)
    it(what, () => {
      expect(valueMapProblem(domain, map)).toMatch(re);
      expect(() => validateValueMap(domain, map)).toThrow(re);
    });
  it('a well-formed map has no problem', () => expect(valueMapProblem(domain, { a: [0, 1, 1, 1, 2, 1] })).toBeUndefined());
});

describe('compression of records and measurements', () => {
  const data = makeDataset(domain, 500, 3, (rng) => [rng.nextInt(6), rng.nextInt(3), rng.nextInt(2)]);
  const map = { a: [0, 2, 1, 2, 2, 2] };
  const cdomain = compressDomain(domain, map);

  it('a compressed dataset has the summed marginals (each row still counts once)', () => {
    const cdata = compressDataset(data, map);
    expect(cdata.domain.sizes).toEqual([3, 3, 2]);
    const full = marginal(data, ['b', 'a']);
    const comp = marginal(cdata, ['b', 'a']);
    expect(comp.reduce((s, v) => s + v, 0)).toBe(500);
    for (let b = 0; b < 3; b++) {
      expect(comp[b * 3 + 0]).toBe(full[b * 6 + 0]);
      expect(comp[b * 3 + 1]).toBe(full[b * 6 + 2]);
      expect(comp[b * 3 + 2]).toBe(full[b * 6 + 1] + full[b * 6 + 3] + full[b * 6 + 4] + full[b * 6 + 5]);
    }
  });

  it('compressMeasurement sums the cells of a measurement the same way', () => {
    const m: Measurement = { attrs: ['a', 'c'], values: marginal(data, ['a', 'c']), sigma: 2 };
    const c = compressMeasurement(domain, cdomain, map, m);
    expect(Array.from(c.values)).toEqual(Array.from(marginal(compressDataset(data, map), ['a', 'c'])));
    expect(c.sigma).toBe(2);
  });
});

describe('expansion of the compressed model back to the original values', () => {
  it('bucket shares: uniform, or by the noisy 1-way clipped at 0 (uniform if it all clips)', () => {
    const codes = [0, 1, 1, 2, 1];
    expect(Array.from(bucketShares(codes, 'uniform'))).toEqual([1, 1 / 3, 1 / 3, 1, 1 / 3]);
    expect(Array.from(bucketShares(codes, 'noisy-one-way', [50, 30, -4, 9, 10]))).toEqual([1, 0.75, 0, 1, 0.25]);
    expect(Array.from(bucketShares(codes, 'noisy-one-way', [50, -1, -4, 9, -2]))).toEqual([1, 1 / 3, 1 / 3, 1, 1 / 3]);
    // Projected: the bucket (code 1) has fitted mass 30; max(0, y − λ) with λ = 5 gives 25, 0, 5.
    expect(Array.from(bucketShares(codes, 'projected', [50, 30, -4, 9, 10], [50, 30, 9]))).toEqual([1, 25 / 30, 0, 1, 5 / 30]);
    expect(() => bucketShares(codes, 'projected', [50, 30, -4, 9, 10])).toThrow(/fitted mass/);
    expect(() => bucketShares(codes, 'noisy-one-way')).toThrow(/noisy 1-way counts/);
  });

  it('projectOntoSimplex is the nearest non-negative vector with the given sum', () => {
    expect(projectOntoSimplex([3, 1, -2], 2)).toEqual([2, 0, 0]);
    expect(projectOntoSimplex([3, 1, -2], 6)).toEqual([4, 2, 0]);
    expect(projectOntoSimplex([1, 1], 0)).toEqual([0, 0]);
  });

  it('the expanded model keeps the compressed joint and splits each bucket by its shares; sampling yields original values', () => {
    // a's values 2..5 are rare and depend on nothing; b depends on a's kept values.
    const data = makeDataset(domain, 3000, 5, (rng) => {
      const u = rng.next();
      const a = u < 0.45 ? 0 : u < 0.9 ? 1 : 2 + rng.nextInt(4);
      const b = a === 0 ? (rng.next() < 0.8 ? 0 : 1) : a === 1 ? 2 : rng.nextInt(3);
      return [a, b, rng.nextInt(2)];
    });
    const map = { a: [0, 1, 2, 2, 2, 2] };
    const cdata = compressDataset(data, map);
    const model = estimate(
      cdata.domain,
      [['a', 'b'], ['c']].map((attrs) => ({ attrs, values: marginal(cdata, attrs), sigma: 1 })),
      { iterations: 300 },
    );
    const noisyA = oneWay('a', [1350, 1350, 200, 100, 0, -20], 5);
    const expanded = expandModel(model, domain, map, { kind: 'noisy-one-way', oneWays: [noisyA] });
    expect(expanded.domain.sizes).toEqual(domain.sizes);
    expect(expanded.total).toBeCloseTo(model.total, 9);
    // The compressed joint is kept: summing the expanded [a, b] over each bucket gives the model's.
    const ab = expanded.marginal(['a', 'b']);
    const cab = model.marginal(['a', 'b']);
    for (let b = 0; b < 3; b++) {
      expect(ab[0 * 3 + b]).toBeCloseTo(cab[0 * 3 + b], 6);
      expect(ab[2 * 3 + b] + ab[3 * 3 + b] + ab[4 * 3 + b] + ab[5 * 3 + b]).toBeCloseTo(cab[2 * 3 + b], 6);
      // Within the bucket: 200 : 100 : 0 : 0 (the clipped noisy counts).
      expect(ab[2 * 3 + b] / cab[2 * 3 + b]).toBeCloseTo(2 / 3, 6);
      expect(ab[4 * 3 + b]).toBe(0);
    }
    const synth = sample(expanded, { rows: 3000, seed: 1 });
    const a = marginal(synth, ['a']);
    expect(a[4] + a[5]).toBe(0);
    expect(a[2] + a[3]).toBeGreaterThan(0);
    expect(l1(marginal(compressDataset(synth, map), ['a', 'b']), marginal(cdata, ['a', 'b'])) / 3000).toBeLessThan(0.02);
    const uniform = expandModel(model, domain, map, { kind: 'uniform' }).marginal(['a']);
    for (let v = 3; v < 6; v++) expect(uniform[v]).toBeCloseTo(uniform[2], 6);
  });

  it('refuses a model that is not over the compressed domain', () => {
    const data = new Dataset(domain, [Uint8Array.from([0, 1]), Uint8Array.from([0, 1]), Uint8Array.from([0, 1])], 2);
    const model = estimate(domain, [{ attrs: ['a'], values: marginal(data, ['a']), sigma: 1 }], { iterations: 5 });
    expect(() => expandModel(model, domain, { a: [0, 1, 1, 1, 1, 1] }, { kind: 'uniform' })).toThrow(/not over the compressed domain/);
  });
});
