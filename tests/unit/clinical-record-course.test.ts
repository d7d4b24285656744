// The course of a record as a clinician reads it: an acute episode resolves (NICE NG138 recovery
// timescales) instead of staying active until the patient's death, and the sites' encoder still
// counts the resolved episode; each verifier rule with a record that breaks it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFINING_LABS, definingLabViolations, meetsDefinition } from '../../modalities/clinical/index.ts';
import { decodePatient } from '../../modalities/fhir/decode.ts';
import { encodeResources, encodedRow } from '../../modalities/fhir/encode.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';
import { recordIndex, verifyRecord } from '../../modalities/fhir/verify-record.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema, type LabAttribute } from '../../schema/schema.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
const index = recordIndex(schema);
const DAY = 86_400_000;
const ages = (schema.attributes.find((a) => a.kind === 'age') as { edges: number[] }).edges;
const ageCode = (years: number) => ages.findIndex((e, i) => years >= e && (i + 1 === ages.length || years < ages[i + 1]));

/** A row of `conditions` at `years`, labs in `bins` (else missing). */
function row(years: number, conditions: string[], bins: Record<string, number> = {}, sex = 0): number[] {
  return schema.attributes.map((a) =>
    a.kind === 'age'
      ? ageCode(years)
      : a.kind === 'sex'
        ? sex
        : a.kind === 'condition'
          ? +conditions.includes(a.name)
          : a.kind === 'lab'
            ? (bins[a.name] ?? (a as LabAttribute).edges.length + 1)
            : 0,
  );
}
type R = FhirResourceLike & Record<string, any>;
const resourcesOf = (d: ReturnType<typeof decodePatient>) =>
  structuredClone([d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]) as R[];
const rules = (rs: FhirResourceLike[]) => [...new Set(verifyRecord(index, rs).map((v) => v.rule))].sort();
const day = (s: string) => Date.parse(`${s.slice(0, 10)}T00:00:00Z`);

describe('pneumonia resolves', () => {
  it('resolved 4-6 weeks after onset once the record (reference date or death) is past it, after the note that calls it improving; the encoder still counts it', () => {
    let resolved = 0;
    let active = 0;
    let died = 0;
    const refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
    for (let i = 0; i < 300; i++) {
      const r = row(75, ['pneumonia'], {}, i % 2);
      const d = decodePatient(schema, r, new Rng(`pneumonia-course-${i}`));
      const rs = resourcesOf(d);
      const c = rs.find((x) => x.resourceType === 'Condition')!;
      const endMs = d.patient.deceasedDateTime ? Date.parse(d.patient.deceasedDateTime as string) : refMs;
      if (d.patient.deceasedDateTime) died++;
      const status = c.clinicalStatus.coding[0].code;
      if (status === 'resolved') {
        resolved++;
        const days = (day(c.abatementDateTime) - day(c.onsetDateTime)) / DAY;
        expect(days).toBeGreaterThanOrEqual(28);
        expect(days).toBeLessThanOrEqual(42);
        expect(day(c.abatementDateTime)).toBeLessThanOrEqual(endMs);
        // The index visit's note (which says "improving"/"resolving") is written before the episode closed.
        expect(Date.parse(d.noteDate)).toBeLessThan(day(c.abatementDateTime));
      } else {
        active++;
        expect(status).toBe('active');
        expect(c.abatementDateTime).toBeUndefined();
        expect(endMs - day(c.onsetDateTime)).toBeLessThan(43 * DAY);
      }
      expect(rules(rs)).toEqual([]);
      expect(encodedRow(encodeResources(schema, rs), 0)).toEqual(r);
    }
    // Index visits fall over the last year: most episodes are over by the export date.
    expect(resolved).toBeGreaterThan(200);
    expect(active).toBeGreaterThan(0);
    expect(died).toBeGreaterThan(0);
  });

  it('the verifier flags an episode still active months later, and an abatement out of order', () => {
    let checked = 0;
    for (let i = 0; i < 50 && checked < 3; i++) {
      const rs = resourcesOf(decodePatient(schema, row(75, ['pneumonia']), new Rng(`pneumonia-course-${i}`)));
      const c = rs.find((x) => x.resourceType === 'Condition')!;
      if (c.clinicalStatus.coding[0].code !== 'resolved') continue;
      const endMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
      if (endMs - day(c.onsetDateTime) < 100 * DAY || rs[0].deceasedDateTime) continue;
      const stale = structuredClone(rs);
      const sc = stale.find((x) => x.resourceType === 'Condition')!;
      sc.clinicalStatus = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] };
      delete sc.abatementDateTime;
      expect(rules(stale)).toContain('stale-acute-condition');
      const early = structuredClone(rs);
      early.find((x) => x.resourceType === 'Condition')!.abatementDateTime = '1990-01-01';
      expect(rules(early)).toContain('abatement-chronology');
      const none = structuredClone(rs);
      delete none.find((x) => x.resourceType === 'Condition')!.abatementDateTime;
      expect(rules(none)).toContain('abatement-chronology');
      checked++;
    }
    expect(checked).toBe(3);
  });
});

describe('a diagnosis is recorded with the lab that defines it', () => {
  const bins = (a: string) => (schema.attributes.find((x) => x.name === a) as LabAttribute).edges.length;

  it('the rule: a value meeting the definition at the visit (CKD: twice, 90 days apart), or a stated reason', () => {
    expect(definingLabViolations('type2_diabetes', 50, [{ value: 6.4, ms: 0 }], [], false)).toEqual(['diagnosis-without-defining-lab']);
    expect(definingLabViolations('type2_diabetes', 50, [{ value: 6.5, ms: 0 }], [], false)).toEqual([]);
    expect(definingLabViolations('type2_diabetes', 50, [], [], true)).toEqual([]);
    expect(definingLabViolations('hyperlipidemia', 2, [], [], false)).toEqual(['diagnosis-without-defining-lab']);
    const dx = { value: 52, ms: 200 * DAY };
    expect(definingLabViolations('chronic_kidney_disease', 70, [dx], [dx], false)).toEqual(['diagnosis-without-defining-lab']);
    expect(definingLabViolations('chronic_kidney_disease', 70, [dx], [dx, { value: 55, ms: 150 * DAY }], false)).toEqual([
      'diagnosis-without-defining-lab',
    ]);
    expect(definingLabViolations('chronic_kidney_disease', 70, [dx], [dx, { value: 55, ms: 100 * DAY }], false)).toEqual([]);
    expect(meetsDefinition('obesity', 29.9, 40)).toBe(false);
    expect(meetsDefinition('obesity', 21, 4)).toBe(true);
    expect(meetsDefinition('obesity', 21, 14)).toBe(false);
    expect(meetsDefinition('asthma', 1, 10)).toBe(true);
  });

  it('every diagnosis visit of a decoded record measures its lab meeting the definition; the index values (the row) are unchanged', () => {
    let measured = 0;
    for (let i = 0; i < 200; i++) {
      const years = [8, 15, 45, 70][i % 4];
      const conds =
        years < 10
          ? ['hyperlipidemia', 'obesity', 'hypertension']
          : ['type2_diabetes', 'hyperlipidemia', 'chronic_kidney_disease', 'obesity', 'hypertension'];
      const r = row(years, conds, { hba1c: 2, ldl_cholesterol: 3, egfr: 1, bmi: bins('bmi') - 1, systolic_bp: 2 }, i % 2);
      let d;
      try {
        d = decodePatient(schema, r, new Rng(`defining-${i}`));
      } catch {
        continue;
      }
      const rs = resourcesOf(d);
      expect(rules(rs)).toEqual([]);
      expect(encodedRow(encodeResources(schema, rs), 0)).toEqual(r);
      for (const c of rs.filter((x) => x.resourceType === 'Condition')) {
        const name = index.conditionBySnomed.get(c.code.coding[0].code)!;
        const d0 = DEFINING_LABS[name];
        if (!d0 || c.note) continue;
        const values = rs.filter(
          (o) =>
            o.resourceType === 'Observation' &&
            o.encounter.reference === c.encounter.reference &&
            o.code.coding.some((x: { code: string }) => index.labByLoinc.get(x.code)?.name === d0.lab),
        );
        expect(values.length).toBeGreaterThan(0);
        measured++;
      }
    }
    expect(measured).toBeGreaterThan(300);
  });

  it('a diagnosis whose lab the row lacks states why (the chart review: hyperlipidemia at 2 with no LDL); removing the reason or the lab is flagged', () => {
    const r = row(2, ['hyperlipidemia'], { bmi: 0 });
    const d = decodePatient(schema, r, new Rng('dx-no-ldl'));
    const rs = resourcesOf(d);
    const c = rs.find((x) => x.resourceType === 'Condition')!;
    expect(c.note[0].text).toMatch(/^Defining result not in this record: no ldl_cholesterol result/);
    expect(rs.some((o) => o.resourceType === 'Observation' && o.code.coding[0].code === '18262-6')).toBe(false);
    expect(rules(rs)).toEqual([]);
    delete c.note;
    expect(rules(rs)).toEqual(['diagnosis-without-defining-lab']);

    // A diabetic whose diagnosis visit's HbA1c is removed.
    for (let i = 0; i < 20; i++) {
      const dm = resourcesOf(decodePatient(schema, row(55, ['type2_diabetes'], { hba1c: 2 }), new Rng(`dx-dm-${i}`)));
      const cond = dm.find((x) => x.resourceType === 'Condition')!;
      if (cond.note) continue;
      const kept = dm.filter(
        (o) =>
          !(o.resourceType === 'Observation' && o.encounter.reference === cond.encounter.reference && o.code.coding[0].code === '4548-4'),
      );
      expect(kept.length).toBeLessThan(dm.length);
      expect(rules(kept)).toEqual(['diagnosis-without-defining-lab']);
      return;
    }
    throw new Error('no diabetic diagnosed at a visit of its own in 20 draws');
  });
});
