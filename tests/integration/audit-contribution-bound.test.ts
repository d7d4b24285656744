// Sensitivity comes from the enforced bound: a patient with hundreds of Conditions and
// Observations is still exactly one row, so it adds exactly one count to exactly one cell of
// every marginal — the Δ2 = √m, Δ1 = m the accountant charges for m marginals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulateFederation } from '../../simulator/index.ts';
import { loadSiteFolders } from '../../cli/audit/data.ts';
import { marginal } from '../../model/marginals.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-bound-'));
  await simulateFederation({ sites: 1, patients: 40, seed: 9, outDir: dir });
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one patient, one row, whatever its number of records', () => {
  it('a patient with 600+ Conditions and Observations moves exactly one cell of every 1- and 2-way marginal by one', async () => {
    const site = join(dir, 'hospital-a');
    const before = (await loadSiteFolders(site)).sites[0].data;

    const lines = (f: string) =>
      readFileSync(join(site, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const patient = { ...lines('Patient.ndjson')[0], id: 'heavy-patient' };
    const conditions = lines('Condition.ndjson');
    const observations = lines('Observation.ndjson');
    const heavy: string[] = [];
    let n = 0;
    for (let copy = 0; n < 300 || heavy.length < 600; copy++) {
      for (const r of [...conditions, ...observations]) {
        const clone = { ...r, id: `heavy-${copy}-${r.id as string}`, subject: { reference: 'Patient/heavy-patient' } };
        heavy.push(JSON.stringify(clone));
        n++;
      }
    }
    appendFileSync(join(site, 'Patient.ndjson'), `${JSON.stringify(patient)}\n`);
    appendFileSync(join(site, 'Condition.ndjson'), `${heavy.filter((l) => l.includes('"resourceType":"Condition"')).join('\n')}\n`);
    appendFileSync(join(site, 'Observation.ndjson'), `${heavy.filter((l) => l.includes('"resourceType":"Observation"')).join('\n')}\n`);
    expect(heavy.length).toBeGreaterThanOrEqual(600);

    const after = (await loadSiteFolders(site)).sites[0].data;
    expect(after.rows).toBe(before.rows + 1);
    const attrs = before.domain.attrs;
    const sets = attrs.flatMap((a, i) => [[a], ...attrs.slice(i + 1).map((b) => [a, b])]);
    for (const s of sets) {
      const diff = Array.from(marginal(after, s), (x, i) => x - marginal(before, s)[i]);
      expect(diff.filter((x) => x !== 0)).toEqual([1]);
    }
    // So the L2 norm of the change over m marginals is exactly √m, and its L1 norm m.
    const m = sets.length;
    let l2 = 0;
    let l1 = 0;
    for (const s of sets) {
      const b = marginal(before, s);
      marginal(after, s).forEach((x, i) => {
        l2 += (x - b[i]) ** 2;
        l1 += Math.abs(x - b[i]);
      });
    }
    expect(Math.sqrt(l2)).toBeCloseTo(Math.sqrt(m), 12);
    expect(l1).toBe(m);
  });
});
