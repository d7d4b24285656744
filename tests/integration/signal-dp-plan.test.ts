// Cross-modal signal survives the privacy pipeline: the coordinator's plan (declared
// structure + federated AIM), exact distributed discrete Gaussian noise drawn per site,
// Private-PGM estimation and the rounding sampler, on three simulated hospitals read through the
// sites' own loaders (FHIR, DICOM → findings, VCF → dosages, notes → mentions). Compared on the
// sampled rows; that the decoders carry rows into files unchanged is
// cohort-multimodal-signal.test.ts, and the files-level numbers at ε = 1 with 3 × 5,000 patients
// are bench/signal-survival.ts (docs/benchmarks.md).
//
// Scale: 3 × 1,500 patients at ε = 3.3 has the relative noise (σ per cell / records) of
// 3 × 5,000 at ε = 1, at a test's cost (~1 min). Tolerances come from 9 recorded runs of this
// exact setting (seeds 5–10, fresh noise each run; one more run failed an earlier, tighter bound
// |Δ P(finding | cause)| < 0.12): synthetic − real P(finding | cause) −0.04…+0.12,
// P(finding | no cause) −0.015…+0.022, gap ratio ≥ 0.92; |Δ log OR| ≤ 0.24; perfect-LD r² ≥ 0.83.
// The nodule ← COPD link (≈ 70 imaged COPD patients) is too sparse at this size to test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUtility, type UtilityResult } from '../../cli/bench-utility/run.ts';
import { allelicOddsRatio, CAUSAL_SNPS, conditionalRates, FINDING_CAUSE, ldR2 } from '../../bench/signal-survival.ts';
import { imageMissingCode, type ImageFindingAttribute, type Schema } from '../../schema/schema.ts';
import type { Dataset } from '../../model/domain.ts';
import { rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';
import { pooledMultimodal } from './cohort-multimodal-helpers.ts';

const SEED = Number(process.env.SIGNAL_SEED ?? 5);
const EPSILON = 3.3;
let dir: string;
let schema: Schema;
let real: Dataset;
let res: UtilityResult;
let synth: Dataset;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-signal-dp-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 1500, seed: SEED });
  schema = p.schema;
  real = p.pooled;
  res = await runUtility(real, {
    sites: 3,
    split: 'iid',
    epsilon: EPSILON,
    delta: 1e-9,
    seed: SEED,
    plan: 'aim',
    aim: { maxCliqueSize: 2 },
    structure: schema.structure,
    keepSynthetic: true,
    iterations: 500,
    threeWaySample: 20,
  });
  synth = res.synthetic!;
  if (process.env.SIGNAL_PRINT) {
    for (const [f, { attr, cause }] of Object.entries(FINDING_CAUSE)) {
      const miss = imageMissingCode(schema.attributes.find((a) => a.name === attr) as ImageFindingAttribute);
      console.log(f, JSON.stringify([conditionalRates(real, attr, miss, cause), conditionalRates(synth, attr, miss, cause)]));
    }
    for (const c of CAUSAL_SNPS)
      console.log(c.snp, allelicOddsRatio(real, c.snp, c.condition), allelicOddsRatio(synth, c.snp, c.condition));
    for (const b of [1, 2, 3, 4, 5])
      console.log(`ld b${b}`, ldR2(real, `snp_b${b}_3`, `snp_b${b}_4`), ldR2(synth, `snp_b${b}_3`, `snp_b${b}_4`));
  }
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signal through the DP plan (3 sites, relative noise of ε = 1 at 3 × 5,000)', () => {
  it('spends at most the budget, the declared structure first', () => {
    expect(res.rounds[0].name).toBe('declared-structure');
    expect(res.rhoSpent).toBeLessThanOrEqual(rhoFromEpsilonDelta(EPSILON, 1e-9));
  });

  it('keeps finding ← condition for opacity/pneumonia and cardiomegaly/heart failure', () => {
    for (const f of ['opacity', 'cardiomegaly']) {
      const { attr, cause } = FINDING_CAUSE[f];
      const miss = imageMissingCode(schema.attributes.find((a) => a.name === attr) as ImageFindingAttribute);
      const r = conditionalRates(real, attr, miss, cause);
      const s = conditionalRates(synth, attr, miss, cause);
      expect(s.withCause - s.without, f).toBeGreaterThan(0.7 * (r.withCause - r.without));
      expect(Math.abs(s.without - r.without), f).toBeLessThan(0.05);
      expect(Math.abs(s.withCause - r.withCause), f).toBeLessThan(0.2);
    }
  });

  it('keeps the causal SNP → condition odds ratios', () => {
    for (const c of CAUSAL_SNPS) {
      const r = allelicOddsRatio(real, c.snp, c.condition);
      const s = allelicOddsRatio(synth, c.snp, c.condition);
      expect(Math.abs(Math.log(s) - Math.log(r)), c.snp).toBeLessThan(0.45);
    }
  });

  it('keeps strong LD between adjacent SNPs', () => {
    for (const b of [1, 2, 3, 4, 5]) {
      expect(ldR2(real, `snp_b${b}_3`, `snp_b${b}_4`)).toBeGreaterThan(0.95);
      expect(ldR2(synth, `snp_b${b}_3`, `snp_b${b}_4`), `block ${b}`).toBeGreaterThan(0.65);
    }
  });
});
