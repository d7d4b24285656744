// What a clinician reading decoded demo charts flagged, each with a test that failed before the
// fix: two routine check-ups days apart, notes giving a visit reason the patient does not have,
// and prescriptions of drugs decades before they existed (atorvastatin for a diagnosis in 1972).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodePatient } from '../../modalities/fhir/decode.ts';
import { recordIndex, verifyRecord } from '../../modalities/fhir/verify-record.ts';
import { parseSchema, type LabAttribute } from '../../schema/schema.ts';
import {
  bmiForAgeP95,
  drugApprovalViolations,
  hba1cKineticsViolations,
  INDICATIONS,
  labConditionViolations,
} from '../../modalities/clinical/index.ts';
import { plausibilityRules, violations } from '../../synthesis/plausibility.ts';
import { planTimeline, routineGapDays, YEAR_MS } from '../../modalities/fhir/timeline.ts';
import { buildVocabulary, generateNote, verifyNote, type SyntheticFacts } from '../../modalities/notes/index.ts';
import { Rng } from '../../model/rng.ts';

const REF = Date.parse('2025-01-01T00:00:00Z');
const DAY = 86_400_000;

describe('routine visits', () => {
  it('no scheduled check-up falls days or weeks before a routine index visit', () => {
    const rng = new Rng('routine-gap');
    let checked = 0;
    for (const band of [
      [0, 1],
      [1, 3],
      [5, 12],
      [40, 50],
      [70, 80],
    ] as [number, number][])
      for (let i = 0; i < 120; i++) {
        const tl = planTimeline(
          { ageBand: band, sex: 'female', conditions: i % 3 || band[0] < 1 ? [] : ['hypertension'], labs: [] },
          REF,
          rng,
        );
        const index = tl.encounters[tl.indexEncounter];
        expect(index.kind).toBe('wellness');
        for (const e of tl.encounters) {
          if (e === index || e.kind !== 'wellness') continue;
          const age = (e.startMs - tl.birthMs) / YEAR_MS;
          expect(index.startMs - e.startMs).toBeGreaterThanOrEqual(routineGapDays(age) * DAY - DAY);
          checked++;
        }
      }
    expect(checked).toBeGreaterThan(500);
  });

  it('the follow-up of a recent pneumonia may still follow a check-up closely', () => {
    const rng = new Rng('routine-gap-cap');
    let close = 0;
    for (let i = 0; i < 200; i++) {
      const tl = planTimeline({ ageBand: [70, 80], sex: 'male', conditions: ['pneumonia'], labs: [] }, REF, rng);
      const index = tl.encounters[tl.indexEncounter];
      expect(index.kind).toBe('follow-up');
      if (tl.encounters.some((e) => e.kind === 'wellness' && index.startMs - e.startMs < 180 * DAY)) close++;
    }
    expect(close).toBeGreaterThan(0);
  });
});

describe('the visit reason a note gives', () => {
  const vocab = buildVocabulary([
    { name: 'hypertension', display: 'Essential hypertension (disorder)' },
    { name: 'pneumonia', display: 'Pneumonia (disorder)' },
  ]);
  const healthy: SyntheticFacts = { age: 34, sex: 'female', conditions: [], noteDate: '2024-06-01T11:00:00Z' };
  const recovering: SyntheticFacts = {
    ...healthy,
    conditions: [{ name: 'pneumonia', display: 'Pneumonia (disorder)', onset: '2024-05-20', acute: true }],
  };
  const hypertensive: SyntheticFacts = {
    ...healthy,
    conditions: [{ name: 'hypertension', display: 'Essential hypertension (disorder)', onset: '2015-01-01' }],
  };

  it('is follow-up of chronic conditions only for a patient who has one', () => {
    const rng = new Rng('visit-reason');
    let chronic = 0;
    for (let i = 0; i < 300; i++) {
      for (const f of [healthy, recovering])
        expect(generateNote(f, vocab, rng, { style: 'narrative' }).text).not.toMatch(/chronic conditions/);
      if (/follow-up of chronic conditions/.test(generateNote(hypertensive, vocab, rng, { style: 'narrative' }).text)) chronic++;
    }
    expect(chronic).toBeGreaterThan(0);
  });

  it('the verifier flags follow-up of chronic conditions without one, or with one begun after the note', () => {
    const text = (f: SyntheticFacts) =>
      `History:\n34-year-old woman${f.conditions.length ? ` with ${f.conditions.map((c) => c.name).join(', ')}` : ''}. Here for follow-up of chronic conditions.\n`;
    const kinds = (f: SyntheticFacts) => verifyNote(text(f), f, vocab).issues.map((i) => i.kind);
    expect(kinds(healthy)).toContain('visit-reason-mismatch');
    expect(kinds(recovering)).toContain('visit-reason-mismatch');
    expect(kinds(hypertensive)).not.toContain('visit-reason-mismatch');
    const later: SyntheticFacts = { ...hypertensive, conditions: [{ ...hypertensive.conditions[0], onset: '2024-09-01' }] };
    expect(verifyNote(text(healthy), later, vocab).issues.map((i) => i.kind)).toContain('visit-reason-mismatch');
  });
});

describe('a diagnosis on the index day', () => {
  it('is made at the index visit: no second visit the same day', () => {
    const rng = new Rng('index-day');
    let atIndex = 0;
    for (let i = 0; i < 400; i++) {
      // Type 2 diabetes from 10 in a 10-year-old: onsets crowd the weeks before the index visit.
      const tl = planTimeline({ ageBand: [10, 11], sex: 'male', conditions: ['type2_diabetes'], labs: [] }, REF, rng);
      const indexDay = Math.floor(tl.indexMs / DAY);
      const sameDay = tl.encounters.filter((e) => Math.floor(e.startMs / DAY) === indexDay);
      expect(sameDay).toHaveLength(1);
      const dm = tl.conditions[0];
      if (Math.floor(dm.onsetMs / DAY) === indexDay) {
        expect(dm.encounter).toBe(tl.indexEncounter);
        atIndex++;
      }
    }
    expect(atIndex).toBeGreaterThan(0);
  });
});

describe('prescriptions and the drug’s approval', () => {
  it('a diagnosis made before the drug existed is treated from its approval year, not before', () => {
    const rng = new Rng('approval');
    let old = 0;
    for (let i = 0; i < 200; i++) {
      const tl = planTimeline(
        { ageBand: [70, 80], sex: 'female', conditions: ['hyperlipidemia', 'hypertension', 'type2_diabetes'], labs: [] },
        REF,
        rng,
      );
      for (const m of tl.medications) {
        const year = m.drug.availableFromYear;
        if (year !== undefined) expect(new Date(m.authoredMs).getUTCFullYear()).toBeGreaterThanOrEqual(year);
        const onset = Math.min(...m.reasons.map((r) => tl.conditions.find((c) => c.name === r)!.onsetMs));
        expect(m.authoredMs).toBeGreaterThanOrEqual(onset);
        if (year !== undefined && new Date(onset).getUTCFullYear() < year) old++;
      }
    }
    // Diagnoses from before 1988-1996 are common at 70-80: the rule was exercised.
    expect(old).toBeGreaterThan(20);
  });

  it('the rule flags a prescription written before the approval year', () => {
    expect(INDICATIONS.get('617312')!.drug.availableFromYear).toBe(1996);
    expect(drugApprovalViolations('617312', Date.UTC(1972, 5, 1))).toEqual(['drug-before-approval']);
    expect(drugApprovalViolations('617312', Date.UTC(1996, 0, 1))).toEqual([]);
    // Nitroglycerin predates every record: no year, no rule.
    expect(drugApprovalViolations('198039', Date.UTC(1950, 0, 1))).toEqual([]);
    const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
    const row = schema.attributes.map((a) =>
      a.kind === 'age'
        ? 9
        : a.kind === 'condition'
          ? +(a.name === 'hyperlipidemia')
          : a.kind === 'lab'
            ? (a as LabAttribute).edges.length + 1
            : 0,
    );
    const d = decodePatient(schema, row, new Rng('approval-record'));
    const rs = structuredClone([d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]);
    const index = recordIndex(schema);
    expect(verifyRecord(index, rs)).toEqual([]);
    const statin = rs.find((r) => r.resourceType === 'MedicationRequest') as any;
    statin.authoredOn = '1990-03-01T08:00:00Z';
    expect(verifyRecord(index, rs).map((v) => v.rule)).toContain('drug-before-approval');
  });
});

describe('a child with a BMI of 35 or more', () => {
  it('has obesity (CDC: severe obesity), in the record and in the sampled row', () => {
    const none = () => false;
    expect(labConditionViolations('bmi', 37, 14, none)).toEqual(['bmi>=35-without-obesity']);
    expect(labConditionViolations('bmi', 37, 14, (c) => c === 'obesity')).toEqual([]);
    const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
    const bmi = schema.attributes.find((a) => a.name === 'bmi') as LabAttribute;
    const row = schema.attributes.map((a) =>
      a.kind === 'age' ? 2 : a.kind === 'lab' ? (a === bmi ? bmi.edges.indexOf(35) + 1 : a.edges.length + 1) : 0,
    );
    const rules = plausibilityRules(schema);
    expect(violations(rules, row)).toContain('bmi>=35-without-obesity');
    row[schema.attributes.findIndex((a) => a.name === 'obesity')] = 1;
    expect(violations(rules, row)).toEqual([]);
  });
});

describe('a treatment that could not start at the diagnosis', () => {
  const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
  const lab = (n: string) => schema.attributes.find((a) => a.name === n) as LabAttribute;
  it('starts at a visit when it first could (approval year, age), not at the record window decades later', () => {
    const rng = new Rng('start-when-possible');
    let old = 0;
    let child = 0;
    for (let i = 0; i < 200; i++) {
      // Born ~1925-1935: hypertension usually diagnosed before lisinopril (1988).
      const tl = planTimeline(
        { ageBand: [90, 100], sex: 'female', conditions: ['hypertension'], labs: [{ attr: lab('systolic_bp'), bin: 2 }] },
        REF,
        rng,
      );
      const on = tl.conditions[0].onsetMs;
      const first = tl.medications.filter((m) => m.drug.rxnorm === '314076').sort((a, b) => a.authoredMs - b.authoredMs)[0];
      if (on < Date.UTC(1988, 0, 1)) {
        old++;
        expect(new Date(first.authoredMs).getUTCFullYear()).toBe(1988);
        expect(tl.encounters[first.encounter].kind).toBe('follow-up');
      }
      // A child with CKD diagnosed before 6 gets the paediatric ACE inhibitor at 6, not years later.
      const kid = planTimeline({ ageBand: [12, 18], sex: 'male', conditions: ['chronic_kidney_disease'], labs: [] }, REF, rng);
      const ped = kid.medications.find((m) => m.drug.rxnorm === '311353');
      if (kid.conditions[0].onsetMs < kid.birthMs + 6 * YEAR_MS) {
        child++;
        expect((ped!.authoredMs - kid.birthMs) / YEAR_MS).toBeLessThan(6.01);
      }
    }
    expect(old).toBeGreaterThan(20);
    expect(child).toBeGreaterThan(0);
  });
  it('a statin for primary prevention is not started after 75', () => {
    const rng = new Rng('statin-75');
    for (let i = 0; i < 100; i++) {
      const tl = planTimeline(
        { ageBand: [80, 90], sex: 'male', conditions: ['hyperlipidemia'], labs: [{ attr: lab('ldl_cholesterol'), bin: 3 }] },
        REF,
        rng,
      );
      // The first statin (a later step up continues a course begun by 75).
      const first = tl.medications.filter((m) => !m.prior).sort((a, b) => a.authoredMs - b.authoredMs)[0];
      if (first) expect((first.authoredMs - tl.birthMs) / YEAR_MS).toBeLessThan(76);
    }
  });
});

describe('HbA1c falls no faster than its kinetics (half the change in 30 days, ADA §6)', () => {
  const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
  const t0 = Date.parse('2024-11-20T08:15:00Z');
  it('the rule: 7.6 → 4.8 % in 40 days breaks it; 7.6 → 6.4 % does not; a rise never does', () => {
    expect(
      hba1cKineticsViolations([
        { value: 7.6, ms: t0 },
        { value: 4.8, ms: t0 + 40 * DAY },
      ]),
    ).toEqual([1]);
    expect(
      hba1cKineticsViolations([
        { value: 4.8, ms: t0 + 40 * DAY },
        { value: 7.6, ms: t0 },
      ]),
    ).toEqual([0]);
    expect(
      hba1cKineticsViolations([
        { value: 7.6, ms: t0 },
        { value: 6.4, ms: t0 + 40 * DAY },
      ]),
    ).toEqual([]);
    expect(
      hba1cKineticsViolations([
        { value: 5.0, ms: t0 },
        { value: 9.0, ms: t0 + DAY },
      ]),
    ).toEqual([]);
  });
  it('planned diabetics whose latest HbA1c is low were diagnosed at a value the kinetics allow; the verifier flags an edited fall', () => {
    const index = recordIndex(schema);
    const hba1c = schema.attributes.find((a) => a.name === 'hba1c') as LabAttribute;
    const rng = new Rng('a1c-kinetics');
    let recent = 0;
    for (let i = 0; i < 400; i++) {
      const tl = planTimeline(
        { ageBand: [12, 18], sex: i % 2 ? 'male' : 'female', conditions: ['type2_diabetes'], labs: [{ attr: hba1c, bin: 0 }] },
        REF,
        rng,
      );
      const values = tl.measurements.filter((m) => m.lab === 'hba1c').map((m) => ({ value: m.value, ms: m.ms }));
      expect(hba1cKineticsViolations(values)).toEqual([]);
      if (tl.indexMs - tl.conditions[0].onsetMs < 90 * DAY && tl.conditions[0].encounter !== tl.indexEncounter) recent++;
    }
    expect(recent).toBeGreaterThan(3);
    const row = schema.attributes.map((a) =>
      a.kind === 'age'
        ? 5
        : a.kind === 'condition'
          ? +(a.name === 'type2_diabetes')
          : a.kind === 'lab'
            ? a.name === 'hba1c'
              ? 3
              : a.name === 'egfr'
                ? a.edges.length
                : 1
            : 0,
    );
    let edited = 0;
    for (let seed = 0; seed < 60 && edited === 0; seed++) {
      const d = decodePatient(schema, row, new Rng(`a1c-record-${seed}`));
      const rs = structuredClone([d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]) as any[];
      expect(verifyRecord(index, rs).map((v) => v.rule)).toEqual([]);
      const a1c = rs
        .filter((r) => r.resourceType === 'Observation' && r.code.coding.some((c: any) => c.code === '4548-4'))
        .sort((x, y) => Date.parse(x.effectiveDateTime) - Date.parse(y.effectiveDateTime));
      // Two consecutive values at most 120 days apart (a diagnosis and its 90-day follow-up): 12 → 4.1 %.
      const k = a1c.findIndex((o, j) => j > 0 && Date.parse(o.effectiveDateTime) - Date.parse(a1c[j - 1].effectiveDateTime) <= 120 * DAY);
      if (k < 1) continue;
      a1c[k - 1].valueQuantity.value = 12;
      a1c[k].valueQuantity.value = 4.1;
      expect(verifyRecord(index, rs).map((v) => v.rule)).toContain('hba1c-falls-too-fast');
      edited++;
    }
    expect(edited).toBe(1);
  });
});

describe('a child’s BMI is read by BMI-for-age (CDC: obesity from the 95th percentile)', () => {
  const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
  const bmi = schema.attributes.find((a) => a.name === 'bmi') as LabAttribute;
  const none = () => false;
  const obese = (c: string) => c === 'obesity';

  it('the rule: a toddler with BMI 28.5 and no obesity diagnosis breaks it; with the diagnosis, or at a typical BMI, not', () => {
    expect(bmiForAgeP95(2, 'male')).toBeCloseTo(19.3, 5);
    expect(bmiForAgeP95(10, 'female')).toBeCloseTo(22.9, 5);
    expect(bmiForAgeP95(1, 'male')).toBeUndefined();
    expect(labConditionViolations('bmi', 28.5, 3, none, 'male')).toEqual(['bmi-for-age>=p95-without-obesity']);
    expect(labConditionViolations('bmi', 28.5, 3, obese, 'male')).toEqual([]);
    expect(labConditionViolations('bmi', 16.2, 3, none, 'female')).toEqual([]);
    // From 18 the adult rules hold: 28.5 is overweight, not obesity.
    expect(labConditionViolations('bmi', 28.5, 30, none, 'male')).toEqual([]);
  });

  it('the planner keeps a child without obesity under the 95th percentile at every visit, and diagnoses obesity from it', () => {
    const rng = new Rng('child-bmi');
    let measured = 0;
    let obeseDx = 0;
    for (let i = 0; i < 300; i++) {
      const sex = i % 2 ? 'male' : 'female';
      const conditions = i % 3 === 0 ? ['obesity'] : [];
      const row = { ageBand: [i % 4 ? 2 : 5, i % 4 ? 5 : 12] as [number, number], sex, conditions, labs: [{ attr: bmi, bin: 1 }] };
      let tl;
      try {
        tl = planTimeline(row, REF, rng);
      } catch {
        continue; // a row no age of the band fits (counted by the cohort as no-plausible-age-in-band)
      }
      const onset = tl.conditions.find((c) => c.name === 'obesity')?.onsetMs ?? Infinity;
      for (const m of tl.measurements) {
        const age = (m.ms - tl.birthMs) / YEAR_MS;
        if (age < 2) continue;
        measured++;
        expect(labConditionViolations('bmi', m.value, age, (c) => c === 'obesity' && onset <= m.ms, sex)).toEqual([]);
        if (m.ms >= onset && m.encounter === tl.conditions.find((c) => c.name === 'obesity')!.encounter && m.ms < tl.indexMs) {
          obeseDx++;
          expect(m.value).toBeGreaterThanOrEqual(bmiForAgeP95(age, sex)! - 2); // the diagnostic value, give or take visit noise
        }
      }
    }
    expect(measured).toBeGreaterThan(300);
    expect(obeseDx).toBeGreaterThan(0);
  });

  it('the verifier flags a decoded child record whose BMI is at or above the 95th percentile without obesity', () => {
    const index = recordIndex(schema);
    // Aged 0-5, every lab in its lowest bin but eGFR (normal, its highest): a healthy toddler.
    const row = schema.attributes.map((a) => (a.kind === 'lab' && a.name === 'egfr' ? a.edges.length : 0));
    for (let s = 0; s < 30; s++) {
      const d = decodePatient(schema, row, new Rng(`bmi-child-${s}`));
      const rs = structuredClone([d.patient, ...d.encounters, ...d.conditions, ...d.observations, ...d.medications]) as any[];
      const birth = Date.parse(`${d.patient.birthDate as string}T00:00:00Z`);
      const obs = rs.find(
        (r) =>
          r.resourceType === 'Observation' &&
          r.code.coding.some((c: any) => c.code === '39156-5') &&
          (Date.parse(r.effectiveDateTime) - birth) / YEAR_MS >= 2.5,
      );
      if (!obs) continue;
      expect(verifyRecord(index, rs).map((v) => v.rule)).toEqual([]);
      obs.valueQuantity.value = 28.5;
      expect(verifyRecord(index, rs).map((v) => v.rule)).toEqual(['bmi-for-age>=p95-without-obesity']);
      return;
    }
    throw new Error('no decoded child with a BMI measured from 2.5 years');
  });
});

describe('a flagged value no listed condition explains', () => {
  const vocab = buildVocabulary([{ name: 'hyperlipidemia', display: 'Hyperlipidemia (disorder)' }]);
  const ldl = { name: 'ldl_cholesterol', display: 'LDL', value: 199, unit: 'mg/dL', interpretation: 'high' as const };
  const healthy: SyntheticFacts = { age: 41, sex: 'male', conditions: [], labs: [ldl] };
  const treated: SyntheticFacts = { ...healthy, conditions: [{ name: 'hyperlipidemia', display: 'Hyperlipidemia (disorder)' }] };

  it('is commented on, not followed by "no active problems"', () => {
    const rng = new Rng('lab-comment');
    for (let i = 0; i < 100; i++) {
      for (const style of ['narrative', 'soap'] as const) {
        const text = generateNote(healthy, vocab, rng, { style }).text;
        expect(text).toMatch(/LDL-C above the reference range|Raised LDL-C/);
        expect(text).not.toMatch(/No active problems|Healthy adult/);
        expect(verifyNote(text, healthy, vocab).issues).toEqual([]);
        const withDx = generateNote(treated, vocab, rng, { style }).text;
        expect(withDx).not.toMatch(/reference range|Raised LDL-C/);
      }
    }
    const thin: SyntheticFacts = { ...healthy, labs: [{ name: 'bmi', display: 'BMI', value: 17.1, unit: 'kg/m2', interpretation: 'low' }] };
    expect(generateNote(thin, vocab, rng, { style: 'narrative' }).text).toMatch(/BMI below the reference range|Low BMI/);
  });
});
