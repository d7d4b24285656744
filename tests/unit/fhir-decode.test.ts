import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSchema, schemaAttributes } from '../../schema/schema.ts';
import { decodeCohort, decodePatient, isoDateTime, toNdjson, toNdjsonLines } from '../../modalities/fhir/decode.ts';
import { encodeResources, encodedRow } from '../../modalities/fhir/encode.ts';
import { Rng } from '../../model/rng.ts';
import { validateFhirResources } from '../../modalities/fhir/validate.ts';
import { plausibilityRules, violations } from '../../synthesis/plausibility.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
const domain = schemaAttributes(schema);

function randomRows(n: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => domain.map((a) => rng.int(a.size)));
}

describe('FHIR decoder', () => {
  // Rows as the cohort releases them: those that pass the clinical plausibility rules.
  const rules = plausibilityRules(schema);
  const candidates = randomRows(1200, 7);
  // Exercise every extreme bin too.
  candidates.push(
    domain.map(() => 0),
    domain.map((a) => a.size - 1),
    domain.map((a) => Math.max(0, a.size - 2)),
  );
  const rows = candidates.filter((r) => violations(rules, r).length === 0);
  const cohort = decodeCohort(schema, rows, 'decode-test');
  const all = [...cohort.Patient, ...cohort.Encounter, ...cohort.Condition, ...cohort.Observation, ...cohort.MedicationRequest];

  it('decodes enough plausible rows to test with', () => expect(rows.length).toBeGreaterThan(150));

  it('emits structurally valid resources whose references resolve', () => {
    expect(cohort.Patient).toHaveLength(rows.length);
    expect(validateFhirResources(all)).toEqual([]);
    for (const c of cohort.Condition) {
      expect(c.clinicalStatus).toBeDefined();
      expect(c.verificationStatus).toBeDefined();
      const coding = (c.code as any).coding[0];
      expect(coding.system).toBe('http://snomed.info/sct');
      expect(coding.display).toBeTruthy();
    }
    for (const o of cohort.Observation) {
      expect((o.code as any).coding[0].system).toBe('http://loinc.org');
      expect((o.valueQuantity as any).system).toBe('http://unitsofmeasure.org');
      expect((o.category as any)[0].coding[0].code).toMatch(/^(vital-signs|laboratory)$/);
    }
  });

  it('encoding the decoded resources gives back exactly the rows', () => {
    const res = encodeResources(schema, all);
    expect(res.n).toBe(rows.length);
    expect(res.issues).toEqual([]);
    const byId = new Map(res.patientIds.map((id, i) => [id, encodedRow(res, i)]));
    cohort.Patient.forEach((p, k) => expect(byId.get(p.id!)).toEqual(rows[k]));
  });

  it('is deterministic by seed, ids included, and differs across seeds', () => {
    const again = decodeCohort(schema, rows, 'decode-test');
    expect(toNdjson(again.Patient) + toNdjson(again.Observation)).toBe(toNdjson(cohort.Patient) + toNdjson(cohort.Observation));
    const other = decodeCohort(schema, rows.slice(0, 5), 'another-seed');
    expect(other.Patient[0].id).not.toBe(cohort.Patient[0].id);
    // A prefix of the rows decodes to the same resources.
    const prefix = decodeCohort(schema, rows.slice(0, 3), 'decode-test');
    expect(prefix.Patient).toEqual(cohort.Patient.slice(0, 3));
    const ids = new Set(all.map((r) => r.id));
    expect(ids.size).toBe(all.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('NDJSON: one JSON object per line', () => {
    const lines = toNdjsonLines(cohort.Patient.slice(0, 3));
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(JSON.parse(l).resourceType).toBe('Patient');
    expect(toNdjson(cohort.Patient.slice(0, 2)).split('\n')).toHaveLength(3);
    expect(toNdjson([])).toBe('');
  });

  it('rejects rows that do not fit the domain', () => {
    expect(() => decodePatient(schema, [0, 0], new Rng(1))).toThrow(/row has 2 values/);
    const bad = domain.map(() => 0);
    bad[0] = 99;
    expect(() => decodePatient(schema, bad, new Rng(1))).toThrow(/age code 99 out of domain/);
  });

  it('the validator catches broken resources', () => {
    const errors = validateFhirResources([
      { resourceType: 'Patient', id: 'p', gender: 'M' },
      { resourceType: 'Condition', id: 'c', subject: { reference: 'Patient/missing' }, code: { coding: [{ system: 'x', code: 'y' }] } },
      {
        resourceType: 'Observation',
        id: 'o',
        status: 'done',
        subject: { reference: 'Patient/p' },
        code: {},
        valueQuantity: { value: 'high' },
      },
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      'gender "M" is not an administrative-gender code',
      'subject Patient/missing does not resolve to a Patient in this set',
      'status "done" is not an observation-status code',
      'code must be a CodeableConcept with system and code',
      'valueQuantity.value must be a number',
    ]);
  });
});

describe('isoDateTime', () => {
  it('formats instants as toISOString does (whole seconds), before and after 1970 and across leap days', () => {
    const rng = new Rng('iso');
    const cases = [0, -1000, Date.UTC(2000, 1, 29, 23, 59, 59), Date.UTC(1900, 2, 1), Date.UTC(2024, 11, 31, 12)];
    for (let i = 0; i < 20000; i++) cases.push(Math.floor(((rng.next() * 5 - 2) * 2e12) / 1000) * 1000);
    for (const ms of cases) expect(isoDateTime(ms)).toBe(new Date(ms).toISOString().replace('.000Z', 'Z'));
  });
});

describe('Rng.uuid', () => {
  it('is the hex of four draws in version-4 form (the byte-table formatting of the draws as strings)', () => {
    const r = new Rng('uuid-format');
    const s = new Rng('uuid-format');
    for (let i = 0; i < 2000; i++) {
      const u = r.uuid();
      expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const h = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
      const [a, b, c, d] = [h(s.nextU32()), h(s.nextU32()), h(s.nextU32()), h(s.nextU32())];
      expect(u).toBe(
        `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${((parseInt(c[0], 16) & 0x3) | 0x8).toString(16)}${c.slice(1, 4)}-${c.slice(4, 8)}${d}`,
      );
    }
  });
});
