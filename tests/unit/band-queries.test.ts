// Band queries: a measurement may be a linear query that sums fine cells (age bins into the
// workload's bands, Measurement.coarsen). The estimator fits the summed cells, every consumer reads
// them as such, the schema declares them, and the round's value map carries them to the sites.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { siteCounts } from '../../federation/site-answer.ts';
import { toMeasurements } from '../../federation/run-fit.ts';
import { measurementScores } from '../../federation/audits/canary.ts';
import { compressDomain } from '../../model/compress.ts';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import {
  estimateTotal,
  measuredCellMap,
  measuredCells,
  validateMeasurement,
  type Coarsening,
  type Measurement,
} from '../../model/measurement.ts';
import { poolRepeats } from '../../model/plans/aim.ts';
import { aimPlan } from '../../model/plans/aim.ts';
import { withDeclaredStructure } from '../../model/plans/structure.ts';
import { estimate, measurementLoss } from '../../model/pgm/estimate.ts';
import { Structure } from '../../model/pgm/structure.ts';
import { Rng } from '../../model/rng.ts';
import { measuredReference, readMeasurement, type WorkloadView } from '../../model/workload.ts';
import { eventProblem } from '../../privacy/audit-log/events.ts';
import { parseTaskSpec, type MeasureSpec } from '../../proto/task-spec.ts';
import { parseSchema, SchemaError } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { makeDataset } from './model-fixtures.ts';

// age: 6 bins in 3 bands {0,1}, {2,3}, {4,5}; c: a rare condition concentrated in the old.
const domain = new Domain(['age', 'c', 's'], [6, 2, 2]);
const BANDS: Coarsening = { age: [0, 0, 1, 1, 2, 2] };
const data = makeDataset(domain, 6000, 5, (rng) => {
  const age = rng.nextInt(6);
  const c = rng.next() < [0.002, 0.004, 0.02, 0.05, 0.2, 0.35][age] ? 1 : 0;
  return [age, c, rng.next() < 0.5 ? c : rng.nextInt(2)];
});

/** The band table of [age, c] (bands × c, row-major) from the fine marginal. */
function bandCounts(fine: Float64Array): Float64Array {
  const map = measuredCellMap(domain, ['age', 'c'], { attrs: ['age', 'c'], coarsen: BANDS });
  const out = new Float64Array(6);
  for (let i = 0; i < fine.length; i++) out[map[i]] += fine[i];
  return out;
}
const band = (sigma = 1): Measurement => ({ attrs: ['age', 'c'], values: bandCounts(marginal(data, ['age', 'c'])), sigma, coarsen: BANDS });
const exact = (attrs: string[], sigma = 1): Measurement => ({ attrs, values: marginal(data, attrs), sigma });

describe('a coarsened measurement', () => {
  it('has the coarse cells and sums fine cells into them, in any attribute order', () => {
    expect(measuredCells(domain, band())).toBe(6);
    // [c, age] with age coarsened: cell = c·3 + band.
    const map = measuredCellMap(domain, ['age', 'c'], { attrs: ['c', 'age'], coarsen: BANDS });
    expect(Array.from(map)).toEqual([0, 3, 0, 3, 1, 4, 1, 4, 2, 5, 2, 5]);
    // From a larger clique (age, c, s): s is summed out.
    const big = measuredCellMap(domain, ['age', 'c', 's'], band());
    expect(big.length).toBe(24);
    expect(big[0]).toBe(0);
    expect(big[23]).toBe(5);
  });

  it('is refused with the problem named: bad map, wrong sizes, wrong number of values', () => {
    const m = (coarsen: unknown, values = new Float64Array(6)): Measurement => ({
      attrs: ['age', 'c'],
      values,
      sigma: 1,
      coarsen: coarsen as Coarsening,
    });
    expect(() => validateMeasurement(domain, m({ age: [0, 0, 2, 2, 3, 3] }))).toThrow(/no value maps to code 1/);
    expect(() => validateMeasurement(domain, m({ age: [0, 0, 1, 1, 2] }))).toThrow(/has 5 codes, the attribute has 6 values/);
    expect(() => validateMeasurement(domain, m({ age: [0, 0, 1, 1, 2, 6] }))).toThrow(/code of value 5 must be an integer in 0\.\.5/);
    expect(() => validateMeasurement(domain, m({ age: [0, 0, 1, 1, 2, 1.5] }))).toThrow(/code of value 5/);
    expect(() => validateMeasurement(domain, m({ s: [0, 0] }))).toThrow(/"s", which is not one of the measured attributes/);
    expect(() => validateMeasurement(domain, m([0, 1]))).toThrow(/coarsen must be an object/);
    expect(() => validateMeasurement(domain, m(BANDS, new Float64Array(12)))).toThrow(/12 values, expected 6 \(the coarsened cells\)/);
    expect(() => validateMeasurement(domain, band())).not.toThrow();
  });

  it('counts its coarse cells in the total estimate (variance σ²·cells)', () => {
    const t = estimateTotal([band(2)]);
    expect(t.total).toBeCloseTo(6000, 9);
    expect(t.variance).toBeCloseTo(4 * 6, 9);
    const both = estimateTotal([band(1), exact(['age', 'c'], 1)]);
    // Inverse-variance weights 1/6 and 1/12 of the same exact sum.
    expect(both.total).toBeCloseTo(6000, 9);
    expect(both.variance).toBeCloseTo(1 / (1 / 6 + 1 / 12), 9);
  });
});

describe('the estimator with band queries', () => {
  it('recovers the band totals from a coarsened measurement alone', () => {
    const model = estimate(domain, [band()], { iterations: 300 });
    const got = bandCounts(model.marginal(['age', 'c']));
    const want = band().values;
    for (let i = 0; i < 6; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(2);
  });

  it('fits fine and band measurements together: 1-way age shape and band × condition', () => {
    const model = estimate(domain, [exact(['age']), band(), exact(['c', 's'])], { iterations: 600 });
    const age = model.marginal(['age']);
    const trueAge = marginal(data, ['age']);
    for (let i = 0; i < 6; i++) expect(Math.abs(age[i] - trueAge[i])).toBeLessThan(3);
    const got = bandCounts(model.marginal(['age', 'c']));
    const want = band().values;
    for (let i = 0; i < 6; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(3);
    const cs = model.marginal(['c', 's']);
    const trueCs = marginal(data, ['c', 's']);
    for (let i = 0; i < 4; i++) expect(Math.abs(cs[i] - trueCs[i])).toBeLessThan(3);
  });

  it('a noisy band total pulls a noisy near-empty fine cell back: less bias in the youngest band', () => {
    // Fine [age, c] with large noise, clipped at 0 by the fit: the band query (σ the same, one cell
    // per band) constrains the sum of the young cells, so the fitted young prevalence falls.
    const rng = new Rng(3);
    const sigma = 40;
    let without = 0;
    let withBands = 0;
    const trials = 6;
    for (let t = 0; t < trials; t++) {
      const fine: Measurement = {
        attrs: ['age', 'c'],
        values: marginal(data, ['age', 'c']).map((v) => v + sigma * rng.normal()),
        sigma,
      };
      const coarse: Measurement = { ...band(sigma), values: band().values.map((v) => v + sigma * rng.normal()) };
      const young = (ms: Measurement[]) =>
        bandCounts(estimate(domain, [exact(['age'], 5), ...ms], { iterations: 400 }).marginal(['age', 'c']))[1];
      without += young([fine]);
      withBands += young([fine, coarse]);
    }
    const truth = band().values[1];
    expect(Math.abs(withBands / trials - truth)).toBeLessThan(Math.abs(without / trials - truth));
  });

  it('has the gradient of its loss (finite differences), coarse and fine terms mixed', () => {
    const structure = new Structure(
      domain,
      Structure.parameterCliques(domain, [
        ['age', 'c'],
        ['c', 's'],
      ]),
    );
    const ms = [band(2), exact(['age', 'c'], 3), exact(['c', 's'], 1.5)];
    const f = measurementLoss(structure, ms);
    const rng = new Rng(9);
    const mu = structure.cliqueCells.map((n) => Float64Array.from({ length: n }, () => 500 * rng.next()));
    const { grad } = f(mu);
    const h = 1e-3;
    for (let c = 0; c < mu.length; c++) {
      for (let i = 0; i < mu[c].length; i++) {
        const plus = mu.map((x) => Float64Array.from(x));
        const minus = mu.map((x) => Float64Array.from(x));
        plus[c][i] += h;
        minus[c][i] -= h;
        const fd = (f(plus).loss - f(minus).loss) / (2 * h);
        expect(Math.abs(fd - grad[c][i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd)));
      }
    }
  });
});

describe('band queries through the federation path', () => {
  const valueMap = { age: [0, 0, 1, 1, 2, 2] };

  it('a site counts its rows in bands: one count per patient, the band sums of the bins', () => {
    const counts = siteCounts(
      data,
      [
        ['age', 'c'],
        ['c', 's'],
      ],
      valueMap,
    );
    expect(counts.length).toBe(6 + 4);
    expect(Array.from(counts.subarray(0, 6), Number)).toEqual(Array.from(band().values));
    expect(Array.from(counts.subarray(6), Number)).toEqual(Array.from(marginal(data, ['c', 's'])));
    expect(Number(counts.subarray(0, 6).reduce((a, b) => a + b, 0n))).toBe(data.rows);
  });

  it('the release carries the map as the coarsening of the marginals that name it', () => {
    const counts = siteCounts(
      data,
      [
        ['age', 'c'],
        ['c', 's'],
      ],
      valueMap,
    );
    const ms = toMeasurements(
      compressDomain(domain, valueMap),
      [
        ['age', 'c'],
        ['c', 's'],
      ],
      Float64Array.from(counts, Number),
      2,
      valueMap,
    );
    expect(ms[0].coarsen).toEqual({ age: valueMap.age });
    expect(ms[1].coarsen).toBeUndefined();
    for (const m of ms) validateMeasurement(domain, m);
  });

  it('a measure task round-trips the band value map', () => {
    const spec: MeasureSpec = {
      kind: 'measure',
      marginals: [['age', 'c']],
      sigmaSite2: { num: '2000', den: '3' },
      quorum: 2,
      rho: 0.01,
      threshold: 1,
      committee: [{ memberId: 'site-1', point: 1, publicKey: 'cGs=', signature: 'c2ln', certificatePem: 'x' }],
      bfv: { polyModulusDegree: 4096, coeffModulusBits: [36, 36, 37], plainModulus: '65537' },
      maxCellCount: 1000,
      valueMap,
    };
    expect(parseTaskSpec('measure', JSON.stringify(spec))).toEqual(spec);
  });

  it('a declared group with a value map issues its round with it; its answers reach the estimate coarsened', () => {
    const plan = withDeclaredStructure(
      domain,
      0.05,
      { share: 0.3, marginals: [], groups: [{ share: 0.2, marginals: [['age', 'c']], valueMap }] },
      (rho) => aimPlan(domain, rho),
    );
    const first = plan.next([])!;
    expect(first.valueMap).toEqual(valueMap);
    const released = toMeasurements(compressDomain(domain, valueMap), first.marginals, band().values, 10, first.valueMap);
    const inputs = plan.estimationInputs([{ spec: first, measurements: released }]);
    expect(inputs[0].coarsen).toEqual({ age: valueMap.age });
    expect(() =>
      withDeclaredStructure(domain, 0.05, { share: 0.2, marginals: [['c', 's']], valueMap }, (rho) => aimPlan(domain, rho)),
    ).toThrow(/coarsens "age", which none of its marginals names/);
    expect(() =>
      withDeclaredStructure(domain, 0.05, { share: 0.2, marginals: [['age', 'c']], valueMap: { age: [0, 1] } }, (rho) =>
        aimPlan(domain, rho),
      ),
    ).toThrow(/2 codes, the attribute has 6 values/);
  });

  it("the audit log's release entry may carry the round's value map, checked for shape", () => {
    const ev = {
      type: 'measurement-released',
      federationId: 'fed',
      roundId: 'm3-declared-structure-3',
      mechanism: 'distributed-discrete-gaussian',
      marginals: [['age', 'c']],
      valueMap,
      l2Sensitivity: 1,
      l1Sensitivity: 1,
      dimension: 6,
      sigmaSite2: { num: '1000', den: '3' },
      parties: ['site-a', 'site-b'],
      quorum: 2,
      rho: 0.002,
    };
    expect(eventProblem(ev)).toBeNull();
    expect(eventProblem({ ...ev, valueMap: { age: [0, -1] } })).toMatch(/valueMap/);
    expect(eventProblem({ ...ev, valueMap: [0, 1] })).toMatch(/valueMap/);
  });

  it('AIM pools a band query only with its like, never with the fine marginal of the same attributes', () => {
    const pooled = poolRepeats(domain, [band(2), exact(['age', 'c'], 2), band(2)]);
    expect(pooled).toHaveLength(2);
    expect(pooled[0].coarsen).toEqual(BANDS);
    expect(pooled[0].sigma).toBeCloseTo(Math.SQRT2, 12);
    expect(pooled[1].coarsen).toBeUndefined();
  });

  it('canary scoring reads a band query against the real data in bands (no residual without noise)', () => {
    const canaries = [Int32Array.from([0, 1, 0]), Int32Array.from([5, 1, 1])];
    const scores = measurementScores(data, canaries, [band(1)]);
    for (const s of scores) expect(Math.abs(s)).toBeLessThan(1e-6);
  });
});

describe('the workload report reads a band query in its bands', () => {
  const view: WorkloadView = {
    domain,
    labels: {},
    coarsen: { age: { groupOf: [0, 0, 1, 1, 2, 2], labels: ['young', 'mid', 'old'] } },
  };

  it('sums a band query into the reading cells; one whose bands straddle a reading group answers nothing', () => {
    const r = readMeasurement(view, band(), ['age', 'c'])!;
    expect(Array.from(r.counts)).toEqual(Array.from(band().values));
    expect(Array.from(r.summed)).toEqual([1, 1, 1, 1, 1, 1]);
    const straddles: Measurement = { ...band(), coarsen: { age: [0, 1, 1, 2, 2, 2] }, values: new Float64Array(6) };
    expect(readMeasurement(view, straddles, ['age', 'c'])).toBeUndefined();
    // Summed out, its bands do not matter.
    expect(Array.from(readMeasurement(view, straddles, ['c'])!.counts)).toEqual([0, 0]);
  });

  it('pools a band query with a fine marginal by inverse variance per reading cell', () => {
    const ref = measuredReference(view, [band(1), exact(['age', 'c'], 1)], ['age', 'c'])!;
    // Fine: each reading cell sums 2 cells (variance 2); band: 1 cell (variance 1); same values.
    for (let i = 0; i < 6; i++) {
      expect(ref.counts[i]).toBeCloseTo(band().values[i], 9);
      expect(ref.variance![i]).toBeCloseTo(1 / (1 + 1 / 2), 9);
    }
  });
});

describe('schema: a declared group coarsens age into bands', () => {
  const base = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');
  const withGroup = (group: string) => base.replace(/\nworkload:/, `\n${group}\nworkload:`);
  const reason = (text: string): string => {
    try {
      parseSchema(text);
    } catch (e) {
      expect(e).toBeInstanceOf(SchemaError);
      return (e as Error).message;
    }
    throw new Error('expected a SchemaError');
  };

  it('the shipped multimodal schema measures condition × age band as band queries', () => {
    const s = parseSchema(base);
    const banded = s.structure!.groups!.filter((g) => g.valueMap);
    expect(banded).toHaveLength(1);
    expect(banded[0].coarsen).toEqual({ age: [0, 18, 40, 65] });
    expect(banded[0].coarsen!.age).toEqual(s.workload!.ageBands);
    // age edges 0, 5, 12, 18, 30, 40, 50, 60, 65, 70, 80
    expect(banded[0].valueMap).toEqual({ age: [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3] });
    expect(banded[0].marginals.every((m) => m[0] === 'age')).toBe(true);
  });

  it('refuses a coarsening it cannot honour, naming the field', () => {
    expect(reason(withGroup('  - share: 0.05\n    coarsen: { age: [0, 18, 41] }\n    marginals: [[age, asthma]]'))).toMatch(
      /coarsen\.age\[2\].*41 is not an edge of the age attribute/,
    );
    expect(reason(withGroup('  - share: 0.05\n    coarsen: { sex: [0, 1] }\n    marginals: [[sex, asthma]]'))).toMatch(
      /only an attribute of kind age can be coarsened/,
    );
    expect(reason(withGroup('  - share: 0.05\n    coarsen: { age: [0, 18] }\n    marginals: [[sex, asthma]]'))).toMatch(
      /no marginal of the group names "age"/,
    );
    expect(
      reason(
        withGroup('  - share: 0.05\n    coarsen: { age: [0, 5, 12, 18, 30, 40, 50, 60, 65, 70, 80] }\n    marginals: [[age, asthma]]'),
      ),
    ).toMatch(/nothing to coarsen/);
    expect(reason(withGroup('  - share: 0.05\n    coarsen: { age: [5, 18] }\n    marginals: [[age, asthma]]'))).toMatch(/must be 0/);
  });
});
