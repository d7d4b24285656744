// The course of a record as a clinician reads it: an acute episode resolves (NICE NG138 recovery
// timescales) instead of staying active until the patient's death, and the sites' encoder still
// counts the resolved episode; each verifier rule with a record that breaks it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
