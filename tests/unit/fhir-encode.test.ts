import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { FhirPatientEncoder, encodeResources, encodedRow, patientIdFromReference } from '../../modalities/fhir/encode.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
const col = (name: string) => schema.attributes.findIndex((a) => a.name === name);

const patient = (id: string, extra: Record<string, unknown> = {}): FhirResourceLike => ({
  resourceType: 'Patient',
  id,
  gender: 'female',
  birthDate: '1970-06-15',
  ...extra,
});
const condition = (id: string, subject: string, system: string, code: string, extra: Record<string, unknown> = {}): FhirResourceLike => ({
  resourceType: 'Condition',
  id,
  subject: { reference: subject },
  code: { coding: [{ system, code }] },
  ...extra,
});
const obs = (
  id: string,
  subject: string,
  loinc: string,
  value: number,
  unit: string,
  when?: string,
  extra: Record<string, unknown> = {},
): FhirResourceLike => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  subject: { reference: subject },
  code: { coding: [{ system: 'http://loinc.org', code: loinc }] },
  ...(when ? { effectiveDateTime: when } : {}),
  valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  ...extra,
});
const SCT = 'http://snomed.info/sct';
const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';

describe('FHIR encoder', () => {
  it('one row per patient however many resources (contribution bound)', () => {
    const rs: FhirResourceLike[] = [patient('p1'), patient('p2', { gender: 'male', birthDate: '2015-01-02' })];
    for (let i = 0; i < 500; i++) {
      rs.push(condition(`c${i}`, 'Patient/p1', SCT, i % 2 ? '44054006' : '59621000'));
      rs.push(obs(`o${i}`, 'Patient/p1', '4548-4', 5 + (i % 40) / 10, '%', `2020-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`));
    }
    const res = encodeResources(schema, rs);
    expect(res.n).toBe(2);
    expect(res.rows.length).toBe(2 * schema.attributes.length);
    expect(res.patientIds).toEqual(['p1', 'p2']);
    const r1 = encodedRow(res, 0);
    expect(r1[col('hypertension')]).toBe(1);
    expect(r1[col('type2_diabetes')]).toBe(1);
    expect(r1[col('asthma')]).toBe(0);
    const r2 = encodedRow(res, 1);
    expect(r2[col('age')]).toBe(1); // 9 years at 2025-01-01 → 5-11
    expect(r2[col('sex')]).toBe(1);
    expect(r2[col('hba1c')]).toBe(4); // missing
    expect(res.counts.resourcesByType).toEqual({ Patient: 2, Condition: 500, Observation: 500 });
  });

  it('ages at the reference date (birthday boundary) and at death if earlier', () => {
    const res = encodeResources(schema, [
      patient('a', { birthDate: '2007-01-01' }), // 18 on 2025-01-01 → 18-29
      patient('b', { birthDate: '2007-01-02' }), // 17 → 12-17
      patient('c', { birthDate: '1930', deceasedDateTime: '1985-03-01T10:00:00Z' }), // 55 at death
      patient('d', { birthDate: '1920-05-05' }), // 104 → 80+
    ]);
    expect(res.patientIds.map((_, i) => encodedRow(res, i)[col('age')])).toEqual([3, 2, 6, 10]);
  });

  it('the latest lab wins, in any input order; ties take the larger value; undated is oldest', () => {
    const labs = [
      obs('o1', 'Patient/p', '4548-4', 9.1, '%', '2019-01-01'),
      obs('o2', 'Patient/p', '4548-4', 5.2, '%', '2023-06-01T08:00:00+02:00'),
      obs('o3', 'Patient/p', '4548-4', 7.0, '%', '2021-01-01'),
      obs('o4', 'Patient/p', '4548-4', 12.0, '%'),
      obs('o5', 'Patient/p', '8480-6', 128, 'mm[Hg]', '2022-01-01'),
      obs('o6', 'Patient/p', '8480-6', 165, 'mm[Hg]', '2022-01-01'),
    ];
    const expected = [0, 4]; // hba1c 5.2 → <5.7 ; sbp tie → 165 → >=160
    for (const order of [labs, [...labs].reverse(), [labs[3], labs[1], labs[5], labs[0], labs[4], labs[2]]]) {
      const res = encodeResources(schema, [...order, patient('p')]);
      const row = encodedRow(res, 0);
      expect([row[col('hba1c')], row[col('systolic_bp')]]).toEqual(expected);
    }
  });

  it('reads blood-pressure panel components and rejects other units', () => {
    const panel: FhirResourceLike = {
      resourceType: 'Observation',
      id: 'bp',
      status: 'final',
      subject: { reference: 'Patient/p' },
      effectiveDateTime: '2024-01-01',
      code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
      component: [
        {
          code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
          valueQuantity: { value: 135, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
        },
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 85, unit: 'mm[Hg]' } },
      ],
    };
    const res = encodeResources(schema, [patient('p'), panel, obs('l', 'Patient/p', '18262-6', 3.1, 'mmol/L', '2024-01-01')]);
    const row = encodedRow(res, 0);
    expect(row[col('systolic_bp')]).toBe(2);
    expect(row[col('ldl_cholesterol')]).toBe(5); // missing: wrong unit is not used
    expect(res.issues).toContainEqual({
      source: 'Observation/l',
      reason: 'lab unit not in schema',
      detail: 'ldl_cholesterol: expected mg/dL, got mmol/L',
    });
  });

  it('unknown codes and systems are ignored; ICD-10-CM matches descendants; refuted conditions do not count', () => {
    const res = encodeResources(schema, [
      patient('p'),
      condition('c1', 'Patient/p', SCT, '160903007'), // Full-time employment (finding)
      condition('c2', 'Patient/p', 'http://example.org/local', '44054006'), // right code, wrong system
      condition('c3', 'Patient/p', ICD, 'E11.65'), // type 2 diabetes, descendant of E11
      condition('c4', 'Patient/p', ICD, 'E78.00'), // hyperlipidemia, descendant of E78.0
      condition('c5', 'Patient/p', SCT, '195967001', {
        verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'refuted' }] },
      }),
      condition('c6', 'Patient/p', ICD, 'E66'), // obesity
      condition('c7', 'Patient/p', ICD, 'E1'), // too short to be anything
      obs('o1', 'Patient/p', '2339-0', 300, 'mg/dL', '2024-01-01'), // glucose, not in the schema
    ]);
    const row = encodedRow(res, 0);
    const conds = ['hypertension', 'type2_diabetes', 'hyperlipidemia', 'asthma', 'obesity'].map((n) => row[col(n)]);
    expect(conds).toEqual([0, 1, 1, 0, 1]);
    expect(res.issues).toEqual([]);
  });

  it('Patients without birthDate or gender are quarantined, not crashed on; their resources are unlinked', () => {
    const res = encodeResources(schema, [
      patient('ok'),
      { resourceType: 'Patient', id: 'nobirth', gender: 'male' },
      { resourceType: 'Patient', id: 'nogender', birthDate: '1980-01-01' },
      patient('future', { birthDate: '2030-01-01' }),
      patient('weird', { birthDate: 'last tuesday' }),
      { resourceType: 'Patient' },
      condition('c1', 'Patient/nobirth', SCT, '59621000'),
      condition('c2', 'Patient/ghost', SCT, '59621000'),
      condition('c3', 'Group/g1', SCT, '59621000'),
      { resourceType: 'Condition', id: 'c4', code: {} },
      { resourceType: 'Encounter', id: 'e1', subject: { reference: 'Patient/ok' } },
    ]);
    expect(res.patientIds).toEqual(['ok']);
    expect(res.counts.quarantinedPatients).toBe(4);
    expect(res.counts.unlinked).toBe(4); // c1 (quarantined patient), c2 (unknown), c3 (Group), c4 (no subject)
    expect(res.counts.ignored).toBe(1);
    const reasons = res.issues.map((i) => `${i.source}: ${i.reason}`);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'Patient/nobirth: Patient without birthDate',
        'Patient/nogender: Patient without gender',
        'Patient/future: Patient born after the reference date',
        'Patient/weird: Patient with invalid birthDate',
        'Patient/(no id): missing id',
        'Condition/c4: missing subject',
      ]),
    );
  });

  it('names, addresses, identifiers and telecom are never read', () => {
    const forbidden = new Set(['name', 'address', 'identifier', 'telecom', 'text', 'extension', 'photo', 'contact']);
    const guarded = (r: FhirResourceLike): FhirResourceLike =>
      new Proxy(r, {
        get(target, key) {
          if (typeof key === 'string' && forbidden.has(key)) throw new Error(`encoder read ${key}`);
          return Reflect.get(target, key);
        },
      });
    const base = patient('p', {
      name: [{ family: 'Hypertension', given: ['Diabetes'] }],
      address: [{ line: ['1 Main St'], city: 'Boston' }],
      identifier: [{ system: 'http://hospital.example/mrn', value: '44054006' }],
      telecom: [{ system: 'phone', value: '555-0100' }],
      text: { status: 'generated', div: '<div>59621000</div>' },
    });
    const res = encodeResources(schema, [
      guarded(base),
      guarded(condition('c', 'Patient/p', SCT, '13645005', { note: [{ text: 'asthma' }] })),
    ]);
    const other = encodeResources(schema, [patient('p'), condition('c', 'Patient/p', SCT, '13645005')]);
    expect(Array.from(res.rows)).toEqual(Array.from(other.rows));
  });

  it('references: relative, absolute, versioned, urn:uuid', () => {
    expect(patientIdFromReference({ reference: 'Patient/abc' })).toBe('abc');
    expect(patientIdFromReference({ reference: 'https://fhir.example/r4/Patient/abc/_history/3' })).toBe('abc');
    expect(patientIdFromReference({ reference: 'urn:uuid:1234-5678' })).toBe('1234-5678');
    expect(patientIdFromReference({ reference: 'Group/abc' })).toBeUndefined();
    expect(patientIdFromReference('Patient/abc')).toBeUndefined();
  });

  it('duplicate Patient ids keep the first, are reported, and still give one row', () => {
    const enc = new FhirPatientEncoder(schema);
    enc.add(patient('p'));
    enc.add(patient('p', { gender: 'male' }));
    const res = enc.finish();
    expect(res.n).toBe(1);
    expect(encodedRow(res, 0)[col('sex')]).toBe(0);
    expect(res.counts.duplicatePatients).toBe(1);
    expect(() => enc.add(patient('q'))).toThrow(/after finish/);
  });
});
