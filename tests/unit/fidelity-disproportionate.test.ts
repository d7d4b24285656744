import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clinicalFidelityAgainstTruth } from '../../cli/demo.ts';
import type { FitReport } from '../../coordinator/coordinator.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { coarsenCounts } from '../../model/workload.ts';
import { parseSchema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { queryKey, schemaWorkload } from '../../synthesis/fidelity.ts';
import type { CellError, WorkloadReport } from '../../model/workload.ts';
import { disproportionateCells, disproportionateLines } from '../../synthesis/fidelity.ts';

const cell = (stratum: string, real: number, synthetic: number): CellError => ({
  stratum: [stratum],
  value: 'yes',
  synthetic,
  reference: real,
  error: Math.abs(synthetic - real),
  stratumCount: 3000,
  referenceSigma: 0,
});

function report(cells: Record<string, CellError[]>): WorkloadReport {
  return {
    reference: 'truth',
    minStratum: 300,
    unanswered: [],
    families: {},
    queries: Object.entries(cells).map(([condition, cs]) => ({
      family: 'condition-by-age-band',
      attrs: ['age', condition],
      cells: cs,
      maxError: Math.max(...cs.map((c) => c.error)),
      meanError: 0,
      smallStrata: 0,
    })),
  };
}

describe('disproportionate cells of the clinical workload', () => {
  const r = report({
    heart_failure: [cell('0-17', 0.001, 0.033), cell('65+', 0.32, 0.3)],
    pneumonia: [cell('18-39', 0.039, 0.002), cell('0-17', 0.06, 0.07)],
    copd: [cell('0-17', 0.0, 0.0), cell('18-39', 0.001, 0.004)],
    ckd: [cell('0-17', 0, 0.027)],
  });

  it('lists cells ≥ 3× off in either direction by ≥ 1 point, most disproportionate first', () => {
    const cells = disproportionateCells(r);
    expect(cells.map((c) => `${c.condition} ${c.stratum[0]}`)).toEqual(['ckd 0-17', 'heart_failure 0-17', 'pneumonia 18-39']);
    expect(cells[1].ratio).toBeCloseTo(33, 9);
    expect(cells[2].ratio).toBeCloseTo(19.5, 9);
    // Every one of these is within the absolute bound (max error ≤ 0.06).
    for (const c of cells) expect(Math.abs(c.synthetic - c.real)).toBeLessThan(0.06);
  });

  it('leaves out small relative gaps, tiny absolute gaps and empty cells; thresholds can be set', () => {
    const names = disproportionateCells(r).map((c) => `${c.condition} ${c.stratum[0]}`);
    expect(names).not.toContain('heart_failure 65+'); // 0.32 vs 0.30
    expect(names).not.toContain('copd 18-39'); // 4× but 0.3 points
    expect(names).not.toContain('copd 0-17'); // 0 vs 0
    expect(disproportionateCells(r, 'condition-by-age-band', { minPoints: 0.002 }).map((c) => c.condition)).toContain('copd');
    expect(disproportionateCells(r, 'no-such-family')).toEqual([]);
  });

  it('says which way and by how much', () => {
    expect(disproportionateLines(disproportionateCells(r))).toEqual([
      'ckd, 0-17: 0.0 % real, 2.7 % synthetic (none on one side, over-represented)',
      'heart_failure, 0-17: 0.1 % real, 3.3 % synthetic (33.0×, over-represented)',
      'pneumonia, 18-39: 3.9 % real, 0.2 % synthetic (19.5×, under-represented)',
    ]);
  });
});

describe("the demo's fidelity against the pooled truth", () => {
  it('names the over-represented cell of a cohort whose absolute errors all meet the targets', async () => {
    const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
    const attrs = schema.attributes.map((a) => a.name);
    const probe = schemaWorkload(schema, new Domain(attrs, new Array(attrs.length).fill(2)))!;
    const d = new Domain(
      attrs,
      attrs.map((a) => probe.view.labels[a].length),
    );
    const w = schemaWorkload(schema, d)!;
    // Age bins cycle; heart failure in 1 of 1,000 children of the truth, 33 of 1,000 in the cohort.
    const rows = 20_000;
    const build = (childHfPerMille: number) => {
      const cols = d.sizes.map(() => new Uint8Array(rows));
      const age = cols[d.indexOf('age')];
      const hf = cols[d.indexOf('heart_failure')];
      let child = 0;
      for (let r = 0; r < rows; r++) {
        age[r] = r % d.sizeOf('age');
        const isChild = w.view.coarsen!.age.groupOf[age[r]] === 0;
        if (isChild) hf[r] = child++ % 1000 < childHfPerMille ? 1 : 0;
      }
      return new Dataset(d, cols, rows);
    };
    const truth = build(1);
    const synthetic = build(33);
    const twoWay: Record<string, number[]> = {};
    for (let i = 0; i < attrs.length; i++)
      for (let j = i + 1; j < attrs.length; j++) twoWay[`${attrs[i]}|${attrs[j]}`] = Array.from(marginal(truth, [attrs[i], attrs[j]]));
    const answers: Record<string, number[]> = {};
    for (const q of w.queries) answers[queryKey(q.attrs)] = Array.from(coarsenCounts(w.view, q.attrs, marginal(synthetic, q.attrs)));
    const dir = await mkdtemp(join(tmpdir(), 'fedsynth-fidelity-'));
    try {
      await writeFile(join(dir, 'truth.json'), JSON.stringify({ marginals: { twoWay } }));
      const report = { workload: { sampleRows: rows, answers } } as unknown as FitReport;
      const cf = (await clinicalFidelityAgainstTruth(join(dir, 'truth.json'), MULTIMODAL_SCHEMA_PATH, report))!;
      expect(cf.headline.maxError).toBeLessThan(0.06);
      expect(cf.disproportionate).toHaveLength(1);
      expect(cf.disproportionate[0]).toMatchObject({ condition: 'heart_failure', stratum: ['0-17'] });
      expect(cf.disproportionate[0].ratio).toBeCloseTo(33, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
