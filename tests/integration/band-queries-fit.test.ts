// Band queries against the children's rare-condition bias (docs/synthesis.md "Rare conditions in
// small strata"): fits of hospital-v1 (3 × 3,000 simulated patients, ε = 1) with the clinical
// links measured with age in bins (the design before), and with condition × age measured in bands
// instead (a declared group with `coarsen: { age: [0, 18, 40, 65] }`), on four seeded noise draws
// each (tests/support/seeded-fit.ts), the real plan, estimator and sampler. Bias: over the
// conditions that are rare in children (< 1 % real), the synthetic prevalence in 0–17 minus the
// real one, averaged. Measured when written: 0.0153 in bins, 0.0092 in bands; condition × age
// BIN mean error 0.0221 and 0.0257 (the within-band shape is left to AIM's selection).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedTruth } from '../../bench/clinical-fidelity.ts';
import type { Dataset } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { parseSchema, type Schema } from '../../schema/schema.ts';
import { ageBandGroups } from '../../schema/workload.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { seededFit } from '../support/seeded-fit.ts';

const LINKS = `
  - share: 0.2
    marginals:
      - [age, kind:condition]
      - [sex, kind:condition]
      - [hba1c, type2_diabetes]
      - [egfr, chronic_kidney_disease]
      - [bmi, obesity]
      - [ldl_cholesterol, hyperlipidemia]
      - [systolic_bp, hypertension]
      - [age, kind:lab]
`;
// The shipped design (schema/hospital-multimodal-v1.yaml): condition × age in bands, not bins,
// in its own round at 0.2; the other clinical links at 0.15.
const BANDED = `
  - share: 0.15
    marginals:
      - [sex, kind:condition]
      - [hba1c, type2_diabetes]
      - [egfr, chronic_kidney_disease]
      - [bmi, obesity]
      - [ldl_cholesterol, hyperlipidemia]
      - [systolic_bp, hypertension]
      - [age, kind:lab]
  - share: 0.2
    coarsen: { age: [0, 18, 40, 65] }
    marginals:
      - [age, kind:condition]
`;

/** Prevalence of each condition among 0–17-year-olds. */
function childPrevalence(schema: Schema, data: Dataset): Map<string, number> {
  const age = schema.attributes.find((a) => a.kind === 'age')! as { name: string; edges: number[] };
  const { groupOf } = ageBandGroups(age.edges, [0, 18, 40, 65]);
  const out = new Map<string, number>();
  for (const a of schema.attributes.filter((x) => x.kind === 'condition')) {
    const t = marginal(data, [age.name, a.name]);
    let n = 0;
    let k = 0;
    groupOf.forEach((g, bin) => {
      if (g !== 0) return;
      n += t[bin * 2] + t[bin * 2 + 1];
      k += t[bin * 2 + 1];
    });
    out.set(a.name, k / n);
  }
  return out;
}

/** Noise seeds: the bias is an average over noise draws, one draw is mostly noise. */
const SEEDS = [13, 14, 15, 16];
let real: Map<string, number>;
let binsOnly: Map<string, number>[];
let withBands: Map<string, number>[];
/** Per fit: mean |synthetic − real| prevalence of each condition in each age BIN with ≥ 300 real patients. */
let binErrorBinsOnly: number[];
let binErrorWithBands: number[];

/** Within-band shape: the conditions' prevalence per age bin (not band), against the truth. */
function binError(schema: Schema, data: Dataset, synth: Dataset): number {
  const age = schema.attributes.find((a) => a.kind === 'age')!.name;
  let sum = 0;
  let cells = 0;
  for (const a of schema.attributes.filter((x) => x.kind === 'condition')) {
    const t = marginal(data, [age, a.name]);
    const q = marginal(synth, [age, a.name]);
    for (let bin = 0; bin < t.length / 2; bin++) {
      const n = t[2 * bin] + t[2 * bin + 1];
      const m = q[2 * bin] + q[2 * bin + 1];
      if (n < 300 || m <= 0) continue;
      sum += Math.abs(q[2 * bin + 1] / m - t[2 * bin + 1] / n);
      cells++;
    }
  }
  return sum / cells;
}

beforeAll(async () => {
  const base = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8');
  const fine = parseSchema(`${base}\nstructure:\n${LINKS}`);
  const banded = parseSchema(`${base}\nstructure:\n${BANDED}`);
  const data = await simulatedTruth(fine, 3, 3000, 13);
  real = childPrevalence(fine, data);
  const fit = (schema: Schema, seed: number) => seededFit(data, { epsilon: 1, seed, structure: schema.structure, rows: 20_000 }).synthetic;
  const fitsFine = SEEDS.map((seed) => fit(fine, seed));
  const fitsBanded = SEEDS.map((seed) => fit(banded, seed));
  binsOnly = fitsFine.map((s) => childPrevalence(fine, s));
  withBands = fitsBanded.map((s) => childPrevalence(banded, s));
  binErrorBinsOnly = fitsFine.map((s) => binError(fine, data, s));
  binErrorWithBands = fitsBanded.map((s) => binError(banded, data, s));
}, 900_000);

describe('band queries against the rare-condition bias in children (hospital-v1, 3 × 3,000, ε = 1, seeded noise)', () => {
  it('the synthetic excess of conditions rare in children falls by a quarter or more', () => {
    const rare = [...real].filter(([, p]) => p < 0.01).map(([c]) => c);
    expect(rare.length).toBeGreaterThanOrEqual(3);
    // Mean over the noise seeds and the rare conditions of (synthetic − real) prevalence in 0–17.
    const bias = (fits: Map<string, number>[]) =>
      fits.reduce((s, synth) => s + rare.reduce((t, c) => t + synth.get(c)! - real.get(c)!, 0), 0) / (fits.length * rare.length);
    const before = bias(binsOnly);
    const after = bias(withBands);
    const show = (fits: Map<string, number>[]) =>
      rare.map((c) => `${c} ${fits.map((f) => (100 * f.get(c)!).toFixed(1)).join('/')} %`).join(', ');
    console.log(`real: ${rare.map((c) => `${c} ${(100 * real.get(c)!).toFixed(2)} %`).join(', ')}`);
    console.log(`bins only: ${show(binsOnly)}\nwith bands: ${show(withBands)}`);
    console.log(`mean bias in 0-17 over rare conditions and seeds: ${before.toFixed(4)} bins only, ${after.toFixed(4)} with band queries`);
    // Bounds with margin both ways around the measured 0.0153 → 0.0092.
    expect(before).toBeGreaterThan(0.012);
    expect(after).toBeLessThan(0.75 * before);
  });

  it('keeps the within-band age shape (condition prevalence per age bin) about as well', () => {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `condition × age bin, mean |error| per fit: bins only ${binErrorBinsOnly.map((x) => x.toFixed(4)).join('/')}, with band queries ${binErrorWithBands.map((x) => x.toFixed(4)).join('/')}`,
    );
    // Measured 0.0221 → 0.0257: a little worse, bounded.
    expect(mean(binErrorWithBands)).toBeLessThan(mean(binErrorBinsOnly) + 0.008);
  });
});
