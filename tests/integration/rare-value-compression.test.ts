// Rare-value compression through the one fit loop: the wide/small benchmark table
// (model/wide-small.ts: 1,300 rows, 15 attributes, one of 90 values) split over 2 sites, each
// answering through the production site path with exact discrete Gaussian noise from a seeded
// source (so the run is fixed and cannot fail by chance), MST with and without compression, then
// Private-PGM and the rounding sampler. Checks what compression must guarantee: the same ρ, later
// rounds on fewer cells with the map in their spec, a model over the original values that the
// sampler draws rare values from, and the compressed domain of each round rebuilt from the map.
import { describe, expect, it } from 'vitest';
import { compressDomain } from '../../model/compress.ts';
import { marginal } from '../../model/marginals.ts';
import { sample } from '../../model/sample.ts';
import { splitSites } from '../../model/split.ts';
import { wideSmallTable } from '../../model/wide-small.ts';
import { inProcessAggregator } from '../../federation/in-process.ts';
import { buildFitPlan } from '../../federation/plan.ts';
import { runFit } from '../../federation/run-fit.ts';
import { fitRhoBudget } from '../../privacy/dp/mechanisms.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';
import type { CompressedPlan } from '../../model/plans/compress.ts';

const data = wideSmallTable();
const EPSILON = 1;

async function fit(compress: boolean) {
  const { sites } = splitSites(data, { sites: 2, kind: 'heterogeneous', seed: 1 });
  const plan = buildFitPlan(data.domain, { plan: 'mst', epsilon: EPSILON, delta: 1e-9, ...(compress ? { compress: {} } : {}) });
  const aggregator = await inProcessAggregator(
    sites.map((d, i) => ({ id: `site-${i + 1}`, data: d })),
    { random: seededRandomSourceForTests(`rare-values-${compress}`) },
  );
  try {
    return { plan, fit: await runFit(plan, aggregator, { domain: data.domain, iterations: 300 }) };
  } finally {
    aggregator.dispose();
  }
}

describe('rare-value compression in the federated fit (wide/small table)', () => {
  it('spends the same ρ, measures later rounds on the compressed domain, and samples original values', async () => {
    const plain = await fit(false);
    const comp = await fit(true);
    const budget = fitRhoBudget(EPSILON, 1e-9);
    expect(comp.fit.rhoSpent).toBeLessThanOrEqual(budget);
    expect(comp.fit.rhoSpent).toBeCloseTo(plain.fit.rhoSpent, 12);

    const map = (comp.plan as CompressedPlan).valueMap(comp.fit.done)!;
    // The 90-value attribute has rare values at this size and noise; so do others.
    expect(map.code).toBeDefined();
    const cdomain = compressDomain(data.domain, map);
    expect(cdomain.sizeOf('code')).toBeLessThan(10);
    // Round 1 is on the original domain; every later round carries the map and is counted on it.
    expect(comp.fit.done[0].spec.valueMap).toBeUndefined();
    for (const r of comp.fit.done.slice(1)) {
      expect(r.spec.valueMap).toEqual(map);
      r.measurements.forEach((m) => expect(m.values.length).toBe(cdomain.cells(m.attrs)));
    }
    const cells = (f: typeof plain) => f.fit.rounds.slice(1).reduce((s, r) => s + r.cells, 0);
    expect(cells(comp)).toBeLessThan(cells(plain));

    // The model is over the original values; the sampler draws values from inside the bucket.
    const model = comp.fit.model!;
    expect(model.domain.sizes).toEqual(data.domain.sizes);
    const synth = sample(model, { rows: data.rows, seed: 1 });
    const counts = marginal(synth, ['code']);
    const bucket = Math.max(...map.code);
    const bucketValuesDrawn = map.code.filter((c, v) => c === bucket && counts[v] > 0).length;
    expect(bucketValuesDrawn).toBeGreaterThan(1);
    // The bucket's total in the sample is the model's (rounding sampler: within a few records).
    const modelCode = model.marginal(['code']);
    let sampleBucket = 0;
    let modelBucket = 0;
    map.code.forEach((c, v) => {
      if (c === bucket) {
        sampleBucket += counts[v];
        modelBucket += (modelCode[v] * data.rows) / model.total;
      }
    });
    expect(Math.abs(sampleBucket - modelBucket)).toBeLessThan(5);
  }, 120_000);
});
