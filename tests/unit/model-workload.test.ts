// Workload errors (model/workload.ts) and the fidelity report built on them (synthesis/fidelity.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Dataset, Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import {
  coarsenCounts,
  measuredReference,
  projectMeasurement,
  queryError,
  workloadReport,
  type WorkloadView,
} from '../../model/workload.ts';
import { parseSchema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import {
  fidelityTable,
  fidelityVsTruth,
  reportAnswersVsTruth,
  schemaWorkload,
  truthFromTwoWay,
  queryKey,
} from '../../synthesis/fidelity.ts';

// age has 4 bins read as 2 bands ({0,1} → "young", {2,3} → "old"); c is a binary condition.
const domain = new Domain(['age', 'c', 'lab'], [4, 2, 3]);
const view: WorkloadView = {
  domain,
  labels: { age: ['a0', 'a1', 'a2', 'a3'], c: ['no', 'yes'], lab: ['low', 'high', 'missing'] },
  coarsen: { age: { groupOf: [0, 0, 1, 1], labels: ['young', 'old'] } },
};
// Counts over [age, c], row-major (c fastest).
const truthAgeC = Float64Array.from([90, 10, 80, 20, 50, 50, 40, 60]); // young: 30/200 = 15 %, old: 110/200 = 55 %

describe('workload errors', () => {
  it('coarsens age bins into bands', () => {
    expect(Array.from(coarsenCounts(view, ['age', 'c'], truthAgeC))).toEqual([170, 30, 90, 110]);
    expect(Array.from(coarsenCounts(view, ['c', 'age'], Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8])))).toEqual([3, 7, 11, 15]);
  });

  it('reports the prevalence error per band, worst first, and leaves out small strata', () => {
    const synth = Float64Array.from([95, 5, 95, 5, 60, 40, 60, 40]); // young 10/200 = 5 %, old 80/200 = 40 %
    const q = queryError(view, { family: 'f', attrs: ['age', 'c'] }, synth, { counts: coarsenCounts(view, ['age', 'c'], truthAgeC) }, 0);
    expect(q.cells.map((c) => [c.stratum[0], c.value])).toEqual([
      ['old', 'yes'],
      ['young', 'yes'],
    ]);
    expect(q.cells[0].reference).toBeCloseTo(0.55, 12);
    expect(q.cells[0].synthetic).toBeCloseTo(0.4, 12);
    expect(q.maxError).toBeCloseTo(0.15, 12);
    expect(q.meanError).toBeCloseTo((0.15 + 0.1) / 2, 12);
    expect(q.cells[0].stratumCount).toBe(200);
    const small = queryError(
      view,
      { family: 'f', attrs: ['age', 'c'] },
      synth,
      { counts: coarsenCounts(view, ['age', 'c'], truthAgeC) },
      201,
    );
    expect(small.cells).toEqual([]);
    expect(small.smallStrata).toBe(2);
  });

  it('a non-binary target reports every value', () => {
    const counts = new Float64Array(6).fill(10);
    const q = queryError(view, { family: 'f', attrs: ['c', 'lab'] }, counts, { counts }, 0);
    expect(q.cells).toHaveLength(6);
    expect(q.maxError).toBe(0);
  });

  it('projects and pools the released measurements that cover a query', () => {
    const triple: Measurement = { attrs: ['c', 'age', 'lab'], values: new Float64Array(24).fill(1), sigma: 2 };
    const p = projectMeasurement(domain, triple, ['age', 'c']);
    expect(Array.from(p.counts)).toEqual(new Array(8).fill(3));
    expect(p.variance).toBe(4 * 3);
    expect(() => projectMeasurement(domain, triple, ['age', 'zz'])).toThrow(/does not cover/);
    const pair: Measurement = { attrs: ['age', 'c'], values: Float64Array.from(truthAgeC), sigma: 1 };
    const one: Measurement = { attrs: ['age'], values: new Float64Array(4), sigma: 1 };
    const ref = measuredReference(view, [pair, triple, one], ['age', 'c'])!;
    // Inverse-variance pooling: weights 1 (pair) and 1/12 (triple's projection).
    const expected = Array.from(
      coarsenCounts(
        view,
        ['age', 'c'],
        Float64Array.from(truthAgeC, (v) => (v + 3 / 12) / (1 + 1 / 12)),
      ),
    );
    Array.from(ref.counts).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 10));
    expect(ref.variance![0]).toBeCloseTo(2 / (1 + 1 / 12), 12);
    expect(measuredReference(view, [one], ['age', 'c'])).toBeUndefined();
  });

  it('a measured reference carries the σ of its proportions', () => {
    const pair: Measurement = { attrs: ['age', 'c'], values: Float64Array.from(truthAgeC), sigma: 10 };
    const ref = measuredReference(view, [pair], ['age', 'c'])!;
    const q = queryError(view, { family: 'f', attrs: ['age', 'c'] }, truthAgeC, ref, 0);
    expect(q.maxError).toBe(0);
    // young: x = 30 (var 200), n = 200 (var 400): σ(x/n) = √(200·(1 − 0.3) + 0.0225·400)/200.
    const young = q.cells.find((c) => c.stratum[0] === 'young')!;
    expect(young.referenceSigma).toBeCloseTo(Math.sqrt(200 * 0.7 + 0.0225 * 400) / 200, 12);
    expect(young.zScore).toBe(0);
    const off = queryError(view, { family: 'f', attrs: ['age', 'c'] }, Float64Array.from([95, 5, 95, 5, 50, 50, 40, 60]), ref, 0);
    const y = off.cells.find((c) => c.stratum[0] === 'young')!;
    expect(y.zScore).toBeCloseTo(y.error / y.referenceSigma, 12);
  });

  it('a workload report lists unanswered queries and summarises families', () => {
    const r = workloadReport(
      view,
      [
        { family: 'a', attrs: ['age', 'c'] },
        { family: 'b', attrs: ['c', 'lab'] },
      ],
      (a) => (a.includes('lab') ? undefined : truthAgeC),
      (a) => (a.includes('lab') ? undefined : { counts: coarsenCounts(view, a, truthAgeC) }),
      { kind: 'truth', minStratum: 0 },
    );
    expect(r.unanswered).toEqual([['c', 'lab']]);
    expect(r.families.a).toEqual({ queries: 1, cells: 2, maxError: 0, meanError: 0 });
  });
});

describe('clinical fidelity of the shipped schema', () => {
  const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
  const attrs = schema.attributes.map((a) => a.name);
  // A small deterministic "truth": hypertension rises with the age bin.
  const rows = 4000;
  const sizes = schemaWorkload(schema, new Domain(attrs, new Array(attrs.length).fill(2)))!;
  const d = new Domain(
    attrs,
    attrs.map((a) => sizes.view.labels[a].length),
  );
  const cols = d.sizes.map(() => new Uint8Array(rows));
  const ageCol = cols[d.indexOf('age')];
  const htn = cols[d.indexOf('hypertension')];
  for (let r = 0; r < rows; r++) {
    ageCol[r] = r % d.sizeOf('age');
    htn[r] = (r * 7919) % 100 < 8 * ageCol[r] ? 1 : 0;
  }
  const truth = new Dataset(d, cols, rows);
  const w = schemaWorkload(schema, d)!;

  it('the truth against itself has no error; a flattened synthetic shows the age gradient as error', () => {
    const self = fidelityVsTruth(
      w,
      (a) => marginal(truth, a),
      (a) => marginal(truth, a),
      { minStratum: 300 },
    );
    expect(self.families['condition-by-age-band'].maxError).toBe(0);
    const flatCols = cols.map((c) => c.slice());
    const flatHtn = flatCols[d.indexOf('hypertension')];
    let yes = 0;
    for (let r = 0; r < rows; r++) yes += htn[r];
    for (let r = 0; r < rows; r++) flatHtn[r] = r < yes ? 1 : 0; // same prevalence, no age gradient (age cycles)
    const flat = new Dataset(d, flatCols, rows);
    const rep = fidelityVsTruth(
      w,
      (a) => marginal(flat, a),
      (a) => marginal(truth, a),
      { minStratum: 300 },
    );
    const { lines, summary } = fidelityTable(rep);
    expect(summary.maxError).toBeGreaterThan(0.2);
    expect(lines[2]).toMatch(/^\| hypertension \| (0-17|65\+) \|/);
  });

  it('reads report.json answers against truth.json 2-way marginals', () => {
    const twoWay: Record<string, number[]> = {};
    for (let i = 0; i < attrs.length; i++)
      for (let j = i + 1; j < attrs.length; j++) twoWay[`${attrs[i]}|${attrs[j]}`] = Array.from(marginal(truth, [attrs[i], attrs[j]]));
    const answers: Record<string, number[]> = {};
    for (const q of w.queries) answers[queryKey(q.attrs)] = Array.from(coarsenCounts(w.view, q.attrs, marginal(truth, q.attrs)));
    const rep = reportAnswersVsTruth(schema, answers, twoWay, 300)!;
    expect(rep.families['condition-by-age-band'].maxError).toBeLessThan(1e-12);
    expect(rep.families['condition-by-age-band'].cells).toBe(40);
    // 3-way queries have no 2-way truth: listed as unanswered.
    expect(rep.unanswered.some((a) => a.length === 3)).toBe(true);
    // Flipped keys read transposed.
    const t = truthFromTwoWay(d, twoWay);
    const ca = t(['hypertension', 'age'])!;
    const ac = t(['age', 'hypertension'])!;
    expect(ca[1 * d.sizeOf('age') + 3]).toBe(ac[3 * 2 + 1]);
  });
});
