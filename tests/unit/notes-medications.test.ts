// A note names the prescriptions running at its date with their doses, and the recent illness's
// antibiotic; never a drug stopped before it or started after it (modalities/notes/medications.ts,
// synthesis/note-medications.ts). Each verifier rule with a note that breaks it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planTimeline } from '../../modalities/fhir/timeline.ts';
import {
  buildVocabulary,
  generateNote,
  medicationIssues,
  medicationsAtNote,
  reviewIssues,
  safeNote,
  verifyNote,
  type SyntheticFacts,
} from '../../modalities/notes/index.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema, type LabAttribute } from '../../schema/schema.ts';
import { factMedications, noteDrugName } from '../../synthesis/note-medications.ts';

const vocab = buildVocabulary([
  { name: 'hyperlipidemia', display: 'Hyperlipidemia (disorder)' },
  { name: 'pneumonia', display: 'Pneumonia (disorder)' },
]);
const facts: SyntheticFacts = {
  age: 58,
  sex: 'female',
  noteDate: '2024-06-20T11:00:00Z',
  conditions: [
    { name: 'hyperlipidemia', display: 'Hyperlipidemia (disorder)', onset: '2019-02-01' },
    { name: 'pneumonia', display: 'Pneumonia (disorder)', onset: '2024-06-05', acute: true },
  ],
  medications: [
    // Replaced by 40 mg before the note.
    {
      name: 'atorvastatin 10 mg oral tablet',
      dose: 'one tablet by mouth once daily',
      start: '2019-02-01T08:00:00Z',
      end: '2022-03-01T09:18:00Z',
    },
    { name: 'atorvastatin 40 mg oral tablet', dose: 'one tablet by mouth once daily', start: '2022-03-01T09:18:00Z' },
    // Written after the note (a later visit's step up).
    { name: 'ezetimibe 10 mg oral tablet', dose: 'one tablet (10 mg) by mouth once daily', start: '2024-09-01T09:18:00Z' },
    {
      name: 'amoxicillin 500 mg oral capsule',
      dose: '1000 mg (2 capsules) by mouth three times daily for 5 days',
      start: '2024-06-05T08:00:00Z',
      end: '2024-06-10T08:00:00Z',
      acute: true,
    },
  ],
};

describe('medications in a note', () => {
  it('the running ones with their doses and the completed antibiotic, in every style; none stopped or started after it', () => {
    expect(medicationsAtNote(facts).current.map((m) => m.name)).toEqual(['atorvastatin 40 mg oral tablet']);
    expect(medicationsAtNote(facts).courses.map((m) => m.name)).toEqual(['amoxicillin 500 mg oral capsule']);
    const rng = new Rng('note-meds');
    for (let i = 0; i < 60; i++)
      for (const style of ['narrative', 'soap', 'telegraphic'] as const) {
        const text = generateNote(facts, vocab, rng, { style }).text;
        expect(text).toContain('atorvastatin 40 mg oral tablet (one tablet by mouth once daily)');
        expect(text).toContain('amoxicillin 500 mg oral capsule (1000 mg (2 capsules) by mouth three times daily for 5 days)');
        expect(text).toMatch(/Completed amoxicillin|Course of amoxicillin/);
        expect(text).not.toContain('atorvastatin 10 mg');
        expect(text).not.toContain('ezetimibe');
        expect(verifyNote(text, facts, vocab).issues.filter((x) => x.kind.startsWith('medication'))).toEqual([]);
      }
    const safe = safeNote(facts, vocab);
    expect(verifyNote(safe, facts, vocab).issues).toEqual([]);
    expect(safe).toContain('atorvastatin 40 mg');
  });

  it('a course still running at the note is continued, not completed', () => {
    const early = { ...facts, noteDate: '2024-06-07T11:00:00Z' };
    const text = generateNote(early, vocab, new Rng('running'), { style: 'narrative' }).text;
    expect(text).toMatch(/Continue amoxicillin|Completing amoxicillin/);
  });

  it('the verifier flags a drug named although stopped or not yet started, and a running one left out', () => {
    expect(
      medicationIssues('Current medications: atorvastatin 10 mg oral tablet; amoxicillin 500 mg oral capsule.', facts).map((x) => x.kind),
    ).toEqual(['medication-not-current', 'medication-omitted']);
    expect(
      medicationIssues(
        'Takes atorvastatin 40 mg oral tablet, ezetimibe 10 mg oral tablet. Completed amoxicillin 500 mg oral capsule.',
        facts,
      ).map((x) => x.kind),
    ).toEqual(['medication-not-current']);
    expect(medicationIssues('Takes atorvastatin 40 mg oral tablet. Completed amoxicillin 500 mg oral capsule.', facts)).toEqual([]);
  });
});

describe('a planned life’s prescriptions as note facts', () => {
  const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
  it('name and dose per drug, the replaced one ending when its successor starts, the course after its days', () => {
    expect(noteDrugName('24 HR metoprolol succinate 25 MG Extended Release Oral Tablet')).toBe(
      'metoprolol succinate 25 mg extended release oral tablet',
    );
    expect(noteDrugName('200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler')).toBe(
      'albuterol 0.09 mg per puff metered dose inhaler',
    );
    expect(noteDrugName('amoxicillin 80 MG/ML Oral Suspension')).toBe('amoxicillin 80 mg/mL oral suspension');
    const rng = new Rng('fact-meds');
    const hba1c = schema.attributes.find((a) => a.name === 'hba1c') as LabAttribute;
    let replaced = 0;
    for (let i = 0; i < 60; i++) {
      const tl = planTimeline(
        { ageBand: [50, 60], sex: 'male', conditions: ['type2_diabetes', 'pneumonia'], labs: [{ attr: hba1c, bin: 3 }] },
        Date.parse('2025-01-01T00:00:00Z'),
        rng,
      );
      const fm = factMedications(tl);
      expect(fm).toHaveLength(tl.medications.length);
      tl.medications.forEach((m, k) => {
        const f = fm[k];
        expect(Date.parse(f.start)).toBe(m.authoredMs);
        if (m.course) expect(Date.parse(f.end!)).toBe(Math.min(m.authoredMs + m.course.days * 86_400_000, tl.deathMs ?? Infinity));
        else if (m.stoppedMs !== undefined) {
          replaced++;
          expect(Date.parse(f.end!)).toBe(m.stoppedMs);
        }
      });
    }
    expect(replaced).toBeGreaterThan(5);
  });
});

describe('a condition’s review is claimed only on its basis', () => {
  const dm = buildVocabulary([{ name: 'type2_diabetes', display: 'Diabetes mellitus type 2 (disorder)' }]);
  const cond = { name: 'type2_diabetes', display: 'Diabetes mellitus type 2 (disorder)', onset: '2020-01-01' };
  const bare: SyntheticFacts = { age: 60, sex: 'male', noteDate: '2024-01-01T11:00:00Z', conditions: [cond] };
  const full: SyntheticFacts = {
    ...bare,
    labs: [{ name: 'hba1c', display: 'HbA1c', value: 7.2, decimals: 1, unit: '%', effective: '2023-12-31T09:15:00Z' }],
    medications: [
      {
        name: 'metformin hydrochloride 1000 mg oral tablet',
        dose: 'one tablet by mouth twice daily',
        start: '2021-01-01T08:00:00Z',
        reasons: ['type2_diabetes'],
      },
    ],
  };
  it('no "HbA1c reviewed" or "on current regimen" without an HbA1c quoted and a drug for it; with both, they occur', () => {
    const rng = new Rng('review');
    let specific = 0;
    for (let i = 0; i < 100; i++)
      for (const style of ['narrative', 'soap'] as const) {
        const a = generateNote(bare, dm, rng, { style }).text;
        expect(a).not.toMatch(/HbA1c reviewed|on current regimen|glycaemic control discussed/);
        expect(verifyNote(a, bare, dm).issues).toEqual([]);
        const b = generateNote(full, dm, rng, { style }).text;
        if (/HbA1c reviewed|on current regimen|glycaemic control discussed/.test(b)) specific++;
        expect(verifyNote(b, full, dm).issues).toEqual([]);
      }
    expect(specific).toBeGreaterThan(50);
  });
  it('the verifier flags a review claimed without its basis', () => {
    expect(reviewIssues('Type 2 diabetes, HbA1c reviewed.').map((x) => x.kind)).toEqual(['unsupported-review']);
    expect(reviewIssues('Labs reviewed: HbA1c 7.2 %. Type 2 diabetes, HbA1c reviewed.')).toEqual([]);
    expect(reviewIssues('Hypertension, blood pressure reviewed.')).toHaveLength(1);
    expect(reviewIssues('Hypertension, on treatment.')).toHaveLength(1);
    expect(reviewIssues('Takes lisinopril 10 mg oral tablet (one tablet by mouth once daily). Hypertension, on treatment.')).toEqual([]);
  });
});
