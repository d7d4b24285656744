import { describe, expect, it } from 'vitest';
import { Dataset, Domain } from '../../model/domain.ts';
import { allThreeWay, allTwoWay, datasetWorkloadError, normalisedL1, workloadError } from '../../model/metrics.ts';

describe('metrics', () => {
  it('matches a hand-computed example (mean normalised L1, no ½; TV = half)', () => {
    // Domain x∈{0,1}, y∈{0,1}. Real rows: (0,0),(0,1),(1,1),(1,1). Synthetic: (0,0),(0,0),(1,0),(1,1).
    const domain = new Domain(['x', 'y'], [2, 2]);
    const real = new Dataset(domain, [Uint8Array.from([0, 0, 1, 1]), Uint8Array.from([0, 1, 1, 1])], 4);
    const syn = new Dataset(domain, [Uint8Array.from([0, 0, 1, 1]), Uint8Array.from([0, 0, 0, 1])], 4);
    // x: real (.5,.5), syn (.5,.5) → 0.  y: real (.25,.75), syn (.75,.25) → 1.
    // (x,y): real (.25,.25,0,.5), syn (.5,0,.25,.25) → .25+.25+.25+.25 = 1.
    const e1 = datasetWorkloadError(real, syn, [['x'], ['y']]);
    expect(e1.perMarginal).toEqual([0, 1]);
    expect(e1.l1).toBe(0.5);
    expect(e1.tv).toBe(0.25);
    const e2 = datasetWorkloadError(real, syn, allTwoWay(domain));
    expect(e2.l1).toBe(1);
    expect(e2.tv).toBe(0.5);
  });

  it('normalises each side by its own total', () => {
    // Same shape, different totals → distance 0.
    expect(normalisedL1(new Float64Array([1, 3]), new Float64Array([10, 30]))).toBe(0);
    expect(normalisedL1(new Float64Array([1, 0]), new Float64Array([0, 5]))).toBe(2);
    expect(() => normalisedL1(new Float64Array([0, 0]), new Float64Array([1, 1]))).toThrow(/no mass/);
    const e = workloadError(
      () => new Float64Array([2, 2]),
      () => new Float64Array([3, 1]),
      [['a'], ['b']],
    );
    expect(e.l1).toBeCloseTo(0.5, 12);
  });

  it('enumerates all 2-way and 3-way workloads', () => {
    const d = new Domain(['a', 'b', 'c', 'd'], [2, 2, 2, 2]);
    expect(allTwoWay(d)).toEqual([
      ['a', 'b'],
      ['a', 'c'],
      ['a', 'd'],
      ['b', 'c'],
      ['b', 'd'],
      ['c', 'd'],
    ]);
    expect(allThreeWay(d)).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'd'],
      ['a', 'c', 'd'],
      ['b', 'c', 'd'],
    ]);
  });
});
