// Community-acquired pneumonia's antibiotic (modalities/clinical/antibiotics.ts): the regimen by
// age, weight and comorbidity, where the planner writes it, how the decoder writes it, and each
// rule the record verifier holds an acute course to, with an example that breaks it. Also the
// paediatric eGFR's LOINC coding.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  acuteCourseViolations,
  AMOXICILLIN_SUSPENSION,
  drugViolations,
  INDICATIONS,
  pneumoniaAdmitted,
  pneumoniaCourses,
} from '../../modalities/clinical/index.ts';
import { validateR4Resource } from '../../modalities/fhir/bundle.ts';
import { decodePatient } from '../../modalities/fhir/decode.ts';
import { encodedRow, encodeResources } from '../../modalities/fhir/encode.ts';
import { planTimeline, YEAR_MS } from '../../modalities/fhir/timeline.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';
import { recordIndex, verifyRecord } from '../../modalities/fhir/verify-record.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema, type LabAttribute } from '../../schema/schema.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
const REF = Date.parse('2025-01-01T00:00:00Z');
const DAY = 86_400_000;

describe('pneumonia regimen (PIDS/IDSA 2011, ATS/IDSA 2019)', () => {
  it('infants under 3 months: intravenous ampicillin 50 mg/kg every 6 hours and gentamicin 2.5 mg/kg every 8 hours for 7 days', () => {
    const infant = pneumoniaCourses(0.2, 5, false);
    expect(infant.map((c) => c.drug.rxnorm)).toEqual(['1721475', '1870676']);
    expect(infant.map((c) => [c.doses[0].doseMg, c.doses[0].timesPerDay, c.days])).toEqual([
      [250, 4, 7],
      [12.5, 3, 7],
    ]);
    for (const c of infant) {
      expect(c.drug.route).toBe('intravenous');
      expect(c.weightKg).toBe(5);
      expect(INDICATIONS.get(c.drug.rxnorm)!.conditions).toEqual(['pneumonia']);
    }
    expect(pneumoniaAdmitted(0.2)).toBe(true);
    expect(pneumoniaAdmitted(0.25)).toBe(false);
    // An infant drug for an older child, or amoxicillin for a young infant, is flagged.
    expect(drugViolations('1721475', 'pneumonia', 1, 1)).toEqual(['drug-over-max-age']);
    expect(drugViolations('308189', 'pneumonia', 0.1, 0.1)).toEqual(['drug-under-min-age']);
    expect(() => pneumoniaCourses(0.1, 0, false)).toThrow(/positive weight/);
  });

  it('children: 45 mg/kg twice daily, suspension under 40 kg, 2 g capsules from 40 kg', () => {
    const [toddler] = pneumoniaCourses(2, 12, false);
    expect(toddler.drug.rxnorm).toBe('308189');
    expect(toddler.days).toBe(5);
    expect(toddler.doses).toHaveLength(1);
    expect(toddler.doses[0].timesPerDay).toBe(2);
    // Half-millilitre steps of 80 mg/mL: 45 mg/kg within 20 mg of the exact dose.
    expect(Math.abs(toddler.doses[0].doseMg - 45 * 12)).toBeLessThanOrEqual(20);
    expect(toddler.doses[0].text).toMatch(/mL of 400 mg\/5 mL/);
    const [teen] = pneumoniaCourses(15, 58, true);
    expect(teen.drug.rxnorm).toBe('308191');
    expect(teen.doses[0]).toMatchObject({ doseMg: 2000, timesPerDay: 2 });
    expect(() => pneumoniaCourses(6, 0, false)).toThrow(/positive weight/);
  });

  it('adults: amoxicillin 1 g three times daily; with a comorbidity amoxicillin/clavulanate and azithromycin', () => {
    const healthy = pneumoniaCourses(30, 70, false);
    expect(healthy.map((c) => c.drug.rxnorm)).toEqual(['308191']);
    expect(healthy[0].doses[0]).toMatchObject({ doseMg: 1000, timesPerDay: 3, days: 5 });
    const comorbid = pneumoniaCourses(70, 70, true);
    expect(comorbid.map((c) => c.drug.rxnorm)).toEqual(['562508', '308460']);
    expect(comorbid[1].doses.map((d) => [d.doseMg, d.fromDay, d.days])).toEqual([
      [500, 0, 1],
      [250, 1, 4],
    ]);
    for (const c of [...healthy, ...comorbid]) expect(INDICATIONS.get(c.drug.rxnorm)!.conditions).toEqual(['pneumonia']);
  });
});

describe('the planner writes the course at the diagnosis visit', () => {
  it('children and infants: the suspension by weight; under 3 months a week in hospital on intravenous antibiotics; adults by comorbidity', () => {
    const rng = new Rng('cap-plan');
    let admitted = 0;
    let children = 0;
    for (let i = 0; i < 200; i++) {
      const tl = planTimeline({ ageBand: [0, 5], sex: i % 2 ? 'male' : 'female', conditions: ['pneumonia'], labs: [] }, REF, rng);
      const cap = tl.conditions.find((c) => c.name === 'pneumonia')!;
      const dxMs = tl.encounters[cap.encounter].startMs;
      const ageAtDx = (dxMs - tl.birthMs) / YEAR_MS;
      const abx = tl.medications.filter((m) => m.course);
      if (ageAtDx < 0.25) {
        const stay = tl.encounters[cap.encounter];
        expect(stay.kind).toBe('inpatient');
        expect(stay.endMs - stay.startMs).toBe(7 * DAY);
        expect(abx.map((m) => m.drug.rxnorm)).toEqual(['1721475', '1870676']);
        for (const m of abx) expect([m.encounter, m.authoredMs]).toEqual([cap.encounter, dxMs]);
        // Discharged before the index visit; no check-up while in hospital.
        expect(tl.indexMs).toBeGreaterThan(stay.endMs);
        for (const e of tl.encounters) if (e.kind === 'wellness') expect(e.startMs < stay.startMs || e.startMs > stay.endMs).toBe(true);
        admitted++;
        continue;
      }
      expect(tl.encounters.some((e) => e.kind === 'inpatient')).toBe(false);
      expect(abx).toHaveLength(1);
      const m = abx[0];
      expect(m.drug.rxnorm).toBe(AMOXICILLIN_SUSPENSION.rxnorm);
      expect(m.encounter).toBe(cap.encounter);
      expect(m.authoredMs).toBe(dxMs);
      expect(m.reasons).toEqual(['pneumonia']);
      const kg = m.course!.weightKg!;
      // A plausible weight for the age (3 months to 5 years: 5 to 25 kg), 40-50 mg/kg per dose.
      expect(kg).toBeGreaterThan(4);
      expect(kg).toBeLessThan(26);
      expect(m.course!.doses[0].doseMg / kg).toBeGreaterThan(40);
      expect(m.course!.doses[0].doseMg / kg).toBeLessThan(50);
      children++;
    }
    expect(admitted).toBeGreaterThan(0);
    expect(children).toBeGreaterThan(100);
    const adult = planTimeline({ ageBand: [60, 65], sex: 'female', conditions: ['pneumonia'], labs: [] }, REF, rng);
    expect(adult.medications.map((m) => m.drug.rxnorm)).toEqual(['308191']);
    // Diabetes diagnosed years before the pneumonia: the comorbid regimen.
    const diabetic = planTimeline({ ageBand: [60, 65], sex: 'male', conditions: ['type2_diabetes', 'pneumonia'], labs: [] }, REF, rng);
    expect(diabetic.medications.filter((m) => m.course).map((m) => m.drug.rxnorm)).toEqual(['562508', '308460']);
  });
});

/** A decoded record with pneumonia at the age band `ageCode`, and type 2 diabetes when asked. */
function record(seed: string, ageCode: number, diabetes: boolean): FhirResourceLike[] {
  const row = schema.attributes.map((a) =>
    a.kind === 'age'
      ? ageCode
      : a.kind === 'condition'
        ? +(a.name === 'pneumonia' || (diabetes && a.name === 'type2_diabetes'))
        : a.kind === 'lab'
          ? a.name === 'egfr'
            ? 4
            : (a as LabAttribute).edges.length + 1
          : 0,
  );
  const d = decodePatient(schema, row, new Rng(seed));
  return structuredClone([d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]);
}
const index = recordIndex(schema);
const rulesOf = (rs: FhirResourceLike[]) => [...new Set(verifyRecord(index, rs).map((v) => v.rule))].sort();
const courses = (rs: FhirResourceLike[]) => rs.filter((r) => r.resourceType === 'MedicationRequest' && r.dispenseRequest) as any[];

describe('the decoded course', () => {
  it('is a completed, valid R4 MedicationRequest of 5 days for the pneumonia, at its encounter, with the child’s weight', () => {
    for (const [ageCode, diabetes, n] of [
      [1, false, 1],
      [6, true, 2],
    ] as [number, boolean, number][]) {
      const rs = record(`course-${ageCode}`, ageCode, diabetes);
      const meds = courses(rs);
      expect(meds).toHaveLength(n);
      const cap = rs.find((r) => r.resourceType === 'Condition' && (r.code as any).coding[0].code === '233604007') as any;
      for (const m of meds) {
        expect(m.status).toBe('completed');
        expect(m.encounter).toEqual(cap.encounter);
        expect(m.reasonReference).toEqual([{ reference: `Condition/${cap.id}` }]);
        expect(m.dispenseRequest.expectedSupplyDuration).toMatchObject({ value: 5, code: 'd' });
        expect(m.dosageInstruction[0].doseAndRate[0].doseQuantity.code).toBe('mg');
        expect(validateR4Resource(m)).toEqual([]);
      }
      const weights = rs.filter((r) => r.resourceType === 'Observation' && (r.code as any).coding[0].code === '29463-7');
      expect(weights).toHaveLength(ageCode === 1 ? 1 : 0);
      for (const w of weights) expect(validateR4Resource(w)).toEqual([]);
      expect(rulesOf(rs)).toEqual([]);
    }
  });
});

describe('acute-course rules', () => {
  it('each rule flags its offending prescription', () => {
    expect(drugViolations('308189', 'pneumonia', 2, 2)).toEqual([]);
    expect(drugViolations('308189', 'pneumonia', 30, 30)).toEqual(['drug-over-max-age']);
    expect(drugViolations('308189', 'pneumonia', 0.1, 0.1)).toEqual(['drug-under-min-age']);
    expect(drugViolations('562508', 'pneumonia', 10, 10)).toEqual(['drug-under-min-age']);
    expect(drugViolations('308460', 'asthma', 40, 30)).toEqual(['drug-without-indication']);
    const drug = INDICATIONS.get('308191')!.drug;
    const t = Date.parse('2024-06-01T08:00:00Z');
    const onset = Date.parse('2024-06-01T00:00:00Z');
    expect(acuteCourseViolations(drug, 'completed', 5, t, onset, REF)).toEqual([]);
    expect(acuteCourseViolations(drug, 'completed', 10, t, onset, REF)).toEqual(['antibiotic-course-length']);
    expect(acuteCourseViolations(drug, 'completed', undefined, t, onset, REF)).toEqual(['antibiotic-course-length']);
    expect(acuteCourseViolations(drug, 'active', 5, t, onset, REF)).toEqual(['antibiotic-still-active']);
    // Still running on the record's last day: active is right.
    expect(acuteCourseViolations(drug, 'active', 5, t, onset, t + 2 * DAY)).toEqual([]);
    expect(acuteCourseViolations(drug, 'completed', 5, t + 20 * DAY, onset, REF)).toEqual(['antibiotic-late']);
    // A chronic drug has no course.
    expect(acuteCourseViolations(INDICATIONS.get('860975')!.drug, 'active', undefined, t, onset, REF)).toEqual([]);
  });

  it('the verifier flags a pneumonia antibiotic without pneumonia, still active, unbounded or late', () => {
    const base = record('rules', 6, true);
    expect(rulesOf(base)).toEqual([]);
    const noPneumonia = structuredClone(base);
    for (const m of courses(noPneumonia)) m.reasonReference = [];
    expect(rulesOf(noPneumonia)).toEqual(['drug-without-indication', 'pneumonia-without-antibiotic']);
    const untreated = base.filter((r) => !(r.resourceType === 'MedicationRequest' && r.dispenseRequest));
    expect(rulesOf(untreated)).toEqual(['pneumonia-without-antibiotic']);
    // The pneumonia's Condition gone from the record altogether.
    const noCondition = base.filter((r) => !(r.resourceType === 'Condition' && (r.code as any).coding[0].code === '233604007'));
    for (const e of noCondition) if (e.resourceType === 'Encounter') delete e.reasonReference;
    expect(rulesOf(noCondition)).toContain('drug-without-indication');
    const active = structuredClone(base);
    courses(active)[0].status = 'active';
    expect(rulesOf(active)).toEqual(['antibiotic-still-active']);
    const unbounded = structuredClone(base);
    const m = courses(unbounded)[0];
    delete m.dispenseRequest;
    for (const d of m.dosageInstruction) delete d.timing;
    expect(rulesOf(unbounded)).toEqual(['antibiotic-course-length']);
    const late = structuredClone(base);
    const cap = late.find((r) => r.resourceType === 'Condition' && (r.code as any).coding[0].code === '233604007') as any;
    cap.onsetDateTime = new Date(Date.parse(`${cap.onsetDateTime}T00:00:00Z`) - 30 * DAY).toISOString().slice(0, 10);
    expect(rulesOf(late)).toEqual(expect.arrayContaining(['antibiotic-late']));
  });
});

describe('a young infant’s pneumonia', () => {
  /** A decoded record of an infant (age band 0-5) whose pneumonia began before 3 months. */
  function infantRecord(): FhirResourceLike[] {
    for (let s = 0; s < 400; s++) {
      let rs: FhirResourceLike[];
      try {
        rs = record(`infant-${s}`, 0, false);
      } catch {
        continue; // born too recently for a stay before the index visit (counted by the cohort)
      }
      if (rs.some((r) => r.resourceType === 'Encounter' && (r.class as { code: string }).code === 'IMP')) return rs;
    }
    throw new Error('no admitted infant in 400 seeds');
  }
  it('is an inpatient stay (class IMP, a week) with intravenous ampicillin and gentamicin, valid R4, breaking no rule', () => {
    const rs = infantRecord();
    expect(rulesOf(rs)).toEqual([]);
    const stay = rs.find((r) => r.resourceType === 'Encounter' && (r.class as any).code === 'IMP') as any;
    expect(stay.type[0].coding[0]).toMatchObject({ code: '32485007' });
    expect(Date.parse(stay.period.end) - Date.parse(stay.period.start)).toBe(7 * DAY);
    const meds = courses(rs);
    expect(meds.map((m) => m.medicationCodeableConcept.coding[0].code)).toEqual(['1721475', '1870676']);
    for (const m of meds) {
      expect(m.encounter.reference).toBe(`Encounter/${stay.id}`);
      expect(m.dosageInstruction[0].route.coding[0].code).toBe('47625008');
      expect(validateR4Resource(m)).toEqual([]);
    }
    expect(validateR4Resource(stay)).toEqual([]);
    // One weighing for both doses.
    expect(rs.filter((r) => r.resourceType === 'Observation' && (r.code as any).coding[0].code === '29463-7')).toHaveLength(1);
  });
  it('the verifier flags it seen as an outpatient, or for an hour', () => {
    const amb = infantRecord();
    for (const e of amb) if (e.resourceType === 'Encounter' && (e.class as any).code === 'IMP') (e.class as any).code = 'AMB';
    expect(rulesOf(amb)).toEqual(['young-infant-pneumonia-not-admitted']);
    const short = infantRecord();
    for (const e of short)
      if (e.resourceType === 'Encounter' && (e.class as any).code === 'IMP') {
        const p = e.period as { start: string; end: string };
        p.end = new Date(Date.parse(p.start) + 3600_000).toISOString();
      }
    expect(rulesOf(short)).toContain('young-infant-pneumonia-not-admitted');
  });
});

describe('paediatric eGFR coding', () => {
  it('is LOINC 50384-7 (Schwartz) with its long name, then the schema’s method-neutral 69405-9, and encodes back', () => {
    const row = schema.attributes.map((a) =>
      a.kind === 'age'
        ? 1
        : a.kind === 'condition'
          ? 0
          : a.kind === 'lab'
            ? a.name === 'egfr'
              ? 4
              : (a as LabAttribute).edges.length + 1
            : 0,
    );
    const d = decodePatient(schema, row, new Rng('schwartz'));
    const egfr = d.observations.filter((o) => (o.code as any).text === 'eGFR, bedside Schwartz (paediatric)');
    expect(egfr.length).toBeGreaterThan(0);
    for (const o of egfr) {
      expect((o.code as any).coding).toEqual([
        {
          system: 'http://loinc.org',
          code: '50384-7',
          display:
            'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (Schwartz)',
        },
        {
          system: 'http://loinc.org',
          code: '69405-9',
          display: 'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood',
        },
      ]);
      expect(validateR4Resource(o)).toEqual([]);
    }
    const encoded = encodeResources(schema, [d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]);
    expect(encoded.issues).toEqual([]);
    expect(encodedRow(encoded, 0)).toEqual(row);
  });
});
