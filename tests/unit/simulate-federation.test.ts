import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaHash } from '../../schema/schema.ts';
import { validateFhirResources } from '../../modalities/fhir/validate.ts';
import { loadDefaultSchema, simulateFederation, computeMarginals, type SimulationSummary } from '../../simulator/index.ts';
import { NdjsonFhirSource } from '../../site-agent/connectors/fhir-ndjson.ts';
import { readPatientTable, type PatientReadResult } from '../../site-agent/patients.ts';

const schema = loadDefaultSchema();
const root = mkdtempSync(join(tmpdir(), 'fedsynth-sim-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out.set(p.slice(dir.length), readFileSync(p));
    }
  }
  return out;
}

describe('simulateFederation', () => {
  let summary: SimulationSummary;
  let truth: any;
  const reads: PatientReadResult[] = [];

  beforeAll(async () => {
    summary = await simulateFederation({ sites: 3, patients: 600, seed: 11, outDir: join(root, 'main') });
    truth = JSON.parse(readFileSync(summary.truthPath, 'utf8'));
    for (const s of summary.sites) reads.push(await readPatientTable(new NdjsonFhirSource(s.dir), schema));
  });

  it('writes per-site NDJSON files and truth.json', () => {
    expect(summary.sites.map((s) => s.id)).toEqual(['hospital-a', 'hospital-b', 'hospital-c']);
    for (const s of summary.sites) expect(readdirSync(s.dir).sort()).toEqual(['Condition.ndjson', 'Observation.ndjson', 'Patient.ndjson']);
    expect(truth.schema.hash).toBe(schemaHash(schema));
    expect(truth.marginals.n).toBe(1800);
    expect(truth.siteMixes.map((s: any) => s.profile)).toEqual(['general', 'cardiac', 'paediatric']);
    expect(truth.model.coefficients.type2_diabetes.oddsRatios.obesity).toBe(3.5);
  });

  it('same seed → byte-identical output; another seed differs', async () => {
    const again = await simulateFederation({ sites: 3, patients: 600, seed: 11, outDir: join(root, 'again') });
    const a = readTree(summary.outDir);
    const b = readTree(again.outDir);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) expect(v.equals(b.get(k)!), k).toBe(true);
    const other = await simulateFederation({ sites: 1, patients: 50, seed: 12, outDir: join(root, 'other') });
    const firstA = a.get('/hospital-a/Patient.ndjson')!.toString().split('\n')[0];
    expect(readFileSync(join(other.sites[0].dir, 'Patient.ndjson'), 'utf8').split('\n')[0]).not.toBe(firstA);
  });

  it('encoding the written files through the connector reproduces truth.json marginals exactly', () => {
    for (const r of reads) {
      expect(r.quarantine.records).toEqual([]);
      expect(r.counts.unlinked).toBe(0);
      expect(r.table.n).toBe(600);
    }
    // Rebuild row-major results from the column tables and recompute marginals.
    const results = reads.map((r) => {
      const width = r.table.columns.length;
      const rows = new Uint16Array(r.table.n * width);
      for (let i = 0; i < r.table.n; i++) for (let j = 0; j < width; j++) rows[i * width + j] = r.table.columns[j][i];
      return { names: r.table.names, patientIds: r.patientIds, rows, width, n: r.table.n, issues: [], counts: r.counts };
    });
    const m = computeMarginals(schema, results);
    expect(m.oneWay).toEqual(truth.marginals.oneWay);
    expect(m.twoWay).toEqual(truth.marginals.twoWay);
    expect(Object.keys(m.twoWay)).toHaveLength((17 * 16) / 2);
    summary.sites.forEach((s, i) => expect(computeMarginals(schema, [results[i]], false).oneWay).toEqual(truth.siteMixes[i].oneWay));
  });

  it('sites are visibly heterogeneous', () => {
    const share = (site: number, attr: string, value = 1) => {
      const counts: number[] = truth.siteMixes[site].oneWay[attr];
      return counts[value] / counts.reduce((a: number, b: number) => a + b, 0);
    };
    const under18 = (site: number) => [0, 1, 2].reduce((a, v) => a + share(site, 'age', v), 0);
    expect(under18(2)).toBeGreaterThan(0.45); // paediatric-heavy
    expect(under18(1)).toBeLessThan(0.02); // elderly cardiac centre
    expect(share(1, 'coronary_artery_disease')).toBeGreaterThan(2 * share(0, 'coronary_artery_disease'));
    expect(share(1, 'heart_failure')).toBeGreaterThan(2 * share(0, 'heart_failure'));
    expect(share(2, 'asthma')).toBeGreaterThan(1.4 * share(0, 'asthma'));
    expect(share(1, 'sex', 1)).toBeGreaterThan(share(0, 'sex', 1));
  });

  it('planted structure is present in the pooled data (co-occurrence and labs tied to conditions)', () => {
    const two = (a: string, b: string): number[] => truth.marginals.twoWay[`${a}|${b}`];
    const oddsRatio = (a: string, b: string) => {
      const [n00, n01, n10, n11] = two(a, b);
      return (n11 * n00) / (n10 * n01);
    };
    expect(oddsRatio('type2_diabetes', 'obesity')).toBeGreaterThan(2);
    expect(oddsRatio('hypertension', 'obesity')).toBeGreaterThan(1.5);
    expect(oddsRatio('type2_diabetes', 'chronic_kidney_disease')).toBeGreaterThan(2);
    expect(oddsRatio('coronary_artery_disease', 'heart_failure')).toBeGreaterThan(3);
    // eGFR < 60 exactly for CKD: no CKD patient in 60+ bins, no non-CKD patient below 60.
    const egfr = two('chronic_kidney_disease', 'egfr'); // 2 × 7, egfr bins <15,15,30,45,60,90,missing
    expect(egfr.slice(0, 4).every((v) => v === 0)).toBe(true);
    expect(egfr[7 + 4] + egfr[7 + 5]).toBe(0);
    // HbA1c ≥ 6.5 only with diabetes.
    const a1c = two('type2_diabetes', 'hba1c'); // 2 × 5
    expect(a1c[2] + a1c[3]).toBe(0);
    expect(a1c[5 + 2] + a1c[5 + 3]).toBeGreaterThan(0);
  });

  it('emits structurally valid FHIR whose references resolve, with realistic fields', () => {
    const dir = summary.sites[1].dir;
    const load = (f: string) =>
      readFileSync(join(dir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    const patients = load('Patient.ndjson');
    const conditions = load('Condition.ndjson');
    const observations = load('Observation.ndjson');
    expect(validateFhirResources([...patients, ...conditions, ...observations])).toEqual([]);
    expect(patients[0].identifier[0].system).toBe('urn:fedsynth:sim:hospital-b:mrn');
    expect(patients[0].name[0].family).toBeTruthy();
    expect(patients[0].address[0].city).toBeTruthy();
    expect(conditions.every((c: any) => c.clinicalStatus && c.verificationStatus)).toBe(true);
    expect(conditions.some((c: any) => c.code.coding[0].system === 'http://hl7.org/fhir/sid/icd-10-cm')).toBe(true);
    expect(observations.every((o: any) => o.category && o.status === 'final' && o.effectiveDateTime)).toBe(true);
    expect(observations.some((o: any) => o.code.coding[0].code === '85354-9' && o.component.length === 2)).toBe(true); // BP panels at the cardiac site
  });

  it('3 sites × 2000 patients is fast', async () => {
    const t0 = performance.now();
    const s = await simulateFederation({ sites: 3, patients: 2000, seed: 3, outDir: join(root, 'big') });
    const ms = performance.now() - t0;
    console.log(`[simulate] 3 × 2000 patients in ${ms.toFixed(0)} ms`);
    expect(s.sites.reduce((a, x) => a + x.patients, 0)).toBe(6000);
    expect(ms).toBeLessThan(30_000); // ~1.3 s on an idle 2-core machine; generous for loaded CI
  });
});
