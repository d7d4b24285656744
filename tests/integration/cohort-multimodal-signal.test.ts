// Cross-modal signal survives decoding: a model that carries the planted structure (finding ←
// condition, causal SNP → condition, LD, note ← condition) gives a cohort whose FILES, read back
// by the sites' own encoders and by a classifier trained on real images, show that structure.
// Tolerances were chosen from repeated runs (seeds 5, 6, 7: docs/benchmarks.md), with
// margin; the ε = 1 federated numbers are bench/signal-survival.ts's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCohort } from '../../synthesis/cohort.ts';
import { CAUSAL_SNPS, FINDING_CAUSE, measureSignal, type SignalTable } from '../../bench/signal-survival.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { centralModelWithPairs, pooledMultimodal } from './cohort-multimodal-helpers.ts';

const SEED = Number(process.env.SIGNAL_SEED ?? 5);
let dir: string;
let t: SignalTable;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-signal-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 500, seed: SEED });
  const extra: [string, string][] = [
    ...Object.values(FINDING_CAUSE).map(({ attr, cause }) => [attr, cause] as [string, string]),
    ...CAUSAL_SNPS.map((c) => [c.snp, c.condition] as [string, string]),
    ...p.schema.attributes
      .filter((a) => a.kind === 'note-mention' && p.schema.attributes.some((c) => c.name === a.name.slice(5)))
      .map((a) => [a.name, a.name.slice(5)] as [string, string]),
  ];
  const model = centralModelWithPairs(p.pooled, extra);
  await writeCohort(p.schema, model, { n: 1500, seed: SEED, dir: join(dir, 'cohort') });
  t = await measureSignal(MULTIMODAL_SCHEMA_PATH, join(dir, 'data'), ['hospital-a', 'hospital-b', 'hospital-c'], join(dir, 'cohort'));
  if (process.env.SIGNAL_PRINT) console.log(JSON.stringify(t));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signal survives decoding (files read back)', () => {
  const findingChecks = (f: 'opacity' | 'cardiomegaly', opts: { trtr: boolean } = { trtr: true }) => {
    const r = t.findings[f];
    const realGap = r.real.withCause - r.real.without;
    expect(r.synthetic.withCause - r.synthetic.without, f).toBeGreaterThan(0.5 * realGap);
    expect(r.trts.withCause - r.trts.without, f).toBeGreaterThan(0.5 * realGap);
    expect(Math.abs(r.synthetic.without - r.real.without), f).toBeLessThan(0.08);
    if (opts.trtr) expect(r.trtrAccuracy, f).toBeGreaterThan(0.9);
    // Train on synthetic images, test on real: the synthetic images look enough like the sites'.
    expect(r.tstrAccuracy, f).toBeGreaterThan(0.9);
  };

  it('opacity follows pneumonia in synthetic DICOMs (extractor and classifier trained on real images)', () => {
    findingChecks('opacity');
  });

  // Restored (docs/modalities.md, "Cardiomegaly and heart failure"): the sites' extractor lost a
  // lung on tightly framed 64² films, enlarged hearts read 0.53–0.56 against the 0.5 cut, and the
  // cohort's radiographs were drawn at the atlas's framing, which the component solver made up
  // for with a bright mediastinum (a classifier trained on the sites' images called 62 % of the
  // cohort's patients without heart failure enlarged; now 27 %).
  it('cardiomegaly follows heart failure in synthetic DICOMs (extractor and classifier trained on real images)', () => {
    findingChecks('cardiomegaly', { trtr: false });
  });

  // The same classifier, trained and tested on the sites' own images (every 5th held out, ~105
  // images). With the opacity-score changes and the paediatric chests (docs/modalities.md),
  // measured on the merged tree: cardiomegaly 0.905 at this seed, 0.885 at seed 6, 0.935 at seed
  // 7 (before both: 0.895, 0.933, 0.898; each branch alone read 0.905 / 0.942 / 0.935 and 0.914 /
  // 0.904 / 0.907). Its errors are hearts whose CTR reads near the 0.5 cut; 32 × 32 features, more
  // iterations or a stronger penalty did not do better on all three seeds. The margin at this
  // seed is one image, and seed 6 misses: a thin result, not a settled one.
  it('a classifier trained on the sites’ radiographs reads their cardiomegaly with accuracy > 0.9', () => {
    expect(t.findings.cardiomegaly!.trtrAccuracy).toBeGreaterThan(0.9);
  });

  it('allele frequencies and LD survive', () => {
    expect(t.alleleFrequency.meanAbsDiff).toBeLessThan(0.02);
    expect(t.ld.meanAbsDiff).toBeLessThan(0.12);
    for (const [pair, r] of Object.entries(t.ld.byPair)) if (r.real > 0.9) expect(r.synthetic, pair).toBeGreaterThan(0.6);
  });

  it('SNP odds ratios survive within their sampling error', () => {
    for (const [pair, r] of Object.entries(t.snps)) {
      // Independent samples of 1,500 rows each side: beyond 4.5 joint SEs has chance < 1e-5.
      expect(Math.abs(Math.log(r.syntheticOr) - Math.log(r.realOr)), pair).toBeLessThan(4.5 * Math.hypot(r.realSeLog, r.syntheticSeLog));
    }
  });

  it('notes mention the patient conditions and no others', () => {
    for (const [c, r] of Object.entries(t.notes)) {
      if (!Number.isFinite(r.synthetic.withCause)) continue;
      expect(r.synthetic.withCause, c).toBeGreaterThan(0.97);
      expect(r.synthetic.without, c).toBeLessThan(0.01);
    }
  });
});
