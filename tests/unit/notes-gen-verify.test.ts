import { describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import {
  buildVocabulary,
  findMentions,
  generateNote,
  generateVerifiedNote,
  labValueText,
  NOTE_STYLES,
  NoteStats,
  PHRASES,
  safeNote,
  SafeNoteError,
  verifyNote,
  type SyntheticFacts,
} from '../../modalities/notes/index.ts';

const SCHEMA_CONDITIONS = [
  { name: 'hypertension', display: 'Essential hypertension (disorder)' },
  { name: 'type2_diabetes', display: 'Diabetes mellitus type 2 (disorder)' },
  { name: 'hyperlipidemia', display: 'Hyperlipidemia (disorder)' },
  { name: 'coronary_artery_disease', display: 'Coronary arteriosclerosis (disorder)' },
  { name: 'heart_failure', display: 'Heart failure (disorder)' },
  { name: 'asthma', display: 'Asthma (disorder)' },
  { name: 'copd', display: 'Chronic obstructive lung disease (disorder)' },
  { name: 'pneumonia', display: 'Pneumonia (disorder)' },
  { name: 'obesity', display: 'Obesity (disorder)' },
  { name: 'chronic_kidney_disease', display: 'Chronic kidney disease (disorder)' },
];
const vocab = buildVocabulary(SCHEMA_CONDITIONS);
const cond = (name: string) => SCHEMA_CONDITIONS.find((c) => c.name === name)!;

const facts: SyntheticFacts = {
  age: 67,
  sex: 'female',
  conditions: [cond('hypertension'), cond('type2_diabetes')],
  labs: [{ name: 'hba1c', display: 'Hemoglobin A1c', value: 7.4, unit: '%', interpretation: 'high' }],
  image: { findingClass: 'opacity' },
};

describe('vocabulary', () => {
  it('adds schema displays as synonyms and keeps defaults', () => {
    const copd = vocab.conditions.find((c) => c.name === 'copd')!;
    expect(copd.terms).toContain('chronic obstructive lung disease');
    expect(copd.terms).toContain('copd');
    const custom = buildVocabulary([{ name: 'gout', display: 'Gout (disorder)' }]);
    expect(custom.conditions.find((c) => c.name === 'gout')!.terms).toEqual(['gout']);
  });
  it('finds the longest mention and maps it to its condition', () => {
    const m = findMentions('History of type 2 diabetes mellitus and HTN.', vocab);
    expect(m.map((x) => [x.term, x.names[0], x.negated])).toEqual([
      ['type 2 diabetes mellitus', 'type2_diabetes', false],
      ['htn', 'hypertension', false],
    ]);
  });
});

describe('verifier', () => {
  const good =
    'History: 67-year-old woman with hypertension and type 2 diabetes. Imaging: focal opacity in the right lower zone. Plan: follow up.';
  it('accepts a consistent note', () => {
    expect(verifyNote(good, facts, vocab)).toEqual({ ok: true, issues: [] });
  });
  it('catches a missing condition', () => {
    const v = verifyNote('67-year-old woman with hypertension. CXR: consolidation.', facts, vocab);
    expect(v.issues.map((i) => i.kind)).toEqual(['missing-condition']);
    expect(v.issues[0].detail).toMatch(/type2_diabetes/);
  });
  it('catches an extra condition, including a hedged one', () => {
    expect(verifyNote(`${good} Also has asthma.`, facts, vocab).issues.map((i) => i.kind)).toEqual(['extra-condition']);
    expect(verifyNote(`${good} Opacity possibly reflecting pneumonia.`, facts, vocab).issues.map((i) => i.kind)).toEqual([
      'extra-condition',
    ]);
  });
  it('handles negation: negated absent conditions are fine, negated present ones are not', () => {
    expect(verifyNote(`${good} No evidence of heart failure. Denies asthma. Pneumonia was ruled out.`, facts, vocab).ok).toBe(true);
    expect(verifyNote(`${good} Patient has no fever, cough or COPD.`, facts, vocab).ok).toBe(true);
    // A terminator ends the negation scope.
    expect(verifyNote(`${good} No fever but asthma is active.`, facts, vocab).issues.map((i) => i.kind)).toEqual(['extra-condition']);
    const negatedOwn = verifyNote('67-year-old woman with hypertension. No diabetes mellitus type 2. CXR: consolidation.', facts, vocab);
    expect(negatedOwn.issues.map((i) => i.kind).sort()).toEqual(['missing-condition', 'negated-condition']);
  });
  it('checks imaging findings: missing, extra, negated, and normal studies', () => {
    expect(verifyNote('Woman with hypertension and type 2 diabetes. CXR clear.', facts, vocab).issues.map((i) => i.kind)).toEqual([
      'missing-finding',
    ]);
    expect(verifyNote(`${good} Small pleural effusion.`, facts, vocab).issues.map((i) => i.kind)).toEqual(['extra-finding']);
    expect(verifyNote(`${good} No pleural effusion.`, facts, vocab).ok).toBe(true);
    expect(
      verifyNote('Hypertension, type 2 diabetes. No consolidation.', facts, vocab)
        .issues.map((i) => i.kind)
        .sort(),
    ).toEqual(['missing-finding', 'negated-finding']);
    const normal = { ...facts, image: { findingClass: 'normal' } };
    expect(
      verifyNote('Hypertension, type 2 diabetes. Chest radiograph: no acute cardiopulmonary abnormality. No effusion.', normal, vocab).ok,
    ).toBe(true);
    expect(verifyNote('Hypertension, type 2 diabetes. Chest radiograph: cardiomegaly.', normal, vocab).issues.map((i) => i.kind)).toEqual([
      'extra-finding',
      'missing-finding',
    ]);
  });
  it('requires every finding of an image with several, and still rejects ones it lacks', () => {
    const both: SyntheticFacts = { ...facts, image: { findingClass: 'opacity', findings: ['opacity', 'cardiomegaly'] } };
    const two = 'Hypertension and type 2 diabetes. Chest radiograph: consolidation and cardiomegaly.';
    expect(verifyNote(two, both, vocab).ok).toBe(true);
    expect(
      verifyNote('Hypertension and type 2 diabetes. Chest radiograph: consolidation.', both, vocab).issues.map((i) => i.detail),
    ).toEqual(['imaging finding cardiomegaly is not mentioned']);
    expect(verifyNote(`${two} Small pleural effusion.`, both, vocab).issues.map((i) => i.kind)).toEqual(['extra-finding']);
    expect(
      verifyNote('Hypertension and type 2 diabetes. Lungs are clear.', both, vocab)
        .issues.map((i) => i.kind)
        .sort(),
    ).toEqual(['extra-finding', 'missing-finding', 'missing-finding']);
    for (const style of NOTE_STYLES) {
      const stats = new NoteStats();
      const note = generateVerifiedNote(both, vocab, new Rng(`multi-${style}`), { style, stats });
      expect(verifyNote(note.text, both, vocab).ok).toBe(true);
      expect(note.text).toMatch(/cardiomegaly|enlarged cardiac silhouette|cardiac enlargement/);
    }
    expect(verifyNote(safeNote(both, vocab), both, vocab).ok).toBe(true);
  });
  it('catches leftover template tokens and empty notes', () => {
    for (const junk of ['{{condition}}', '{age}', '${x}', '<PATIENT_NAME>', '[[finding]]', 'undefined', 'NaN', '[object Object]']) {
      expect(verifyNote(`${good} ${junk}`, facts, vocab).issues.map((i) => i.kind)).toEqual(['leftover-token']);
    }
    expect(verifyNote('  ', facts, vocab).issues[0].kind).toBe('empty');
  });
});

describe('generator', () => {
  it('fills every slot in every style and is deterministic per seed', () => {
    for (const style of NOTE_STYLES) {
      const a = generateNote(facts, vocab, new Rng(`s-${style}`), { style });
      const b = generateNote(facts, vocab, new Rng(`s-${style}`), { style });
      expect(a.text).toBe(b.text);
      expect(a.text).not.toMatch(/\{\{|\}\}/);
      expect(a.text).toMatch(/67/);
    }
  });

  it('writes a lab at its precision (HbA1c 4.0 %, not 4 %)', () => {
    const withLab = { ...facts, labs: [{ name: 'hba1c', display: 'Hemoglobin A1c', value: 4, decimals: 1, unit: '%' }] };
    const texts = NOTE_STYLES.map((style) => generateNote(withLab, vocab, new Rng(`p-${style}`), { style }).text);
    for (const t of texts) expect(t).toContain('HbA1c 4.0 %');
    expect(labValueText({ name: 'egfr', display: 'eGFR', value: 77, decimals: 0, unit: 'mL/min' })).toBe('77');
    expect(labValueText({ name: 'bmi', display: 'BMI', value: 24.25, unit: 'kg/m2' })).toBe('24.25');
  });

  it('an acute pneumonia is recovering, not a chronic problem under follow-up', () => {
    const acute = { ...facts, conditions: [cond('hypertension'), { ...cond('pneumonia'), onset: '2024-05-20', acute: true }] };
    const chronic = /stable|monitored|under follow-up|in 3 months|continue management|next visit|reviewed today/i;
    let hypertensionChronic = 0;
    for (let i = 0; i < 60; i++)
      for (const style of NOTE_STYLES) {
        const text = generateNote(acute, vocab, new Rng(`acute-${i}`), { style }).text;
        const sentences = text.split(/[.;\n]/);
        for (const sn of sentences.filter((x) => /pneumonia/i.test(x))) expect(sn).not.toMatch(chronic);
        if (sentences.some((x) => /hypertension/i.test(x) && chronic.test(x))) hypertensionChronic++;
      }
    // The chronic phrasing stays for the chronic condition (the pattern can match).
    expect(hypertensionChronic).toBeGreaterThan(20);
  });

  it('phrase weights steer phrase choice (noisy negatives clamped)', () => {
    const n = PHRASES['findings.opacity'].length;
    const w = Array.from({ length: n }, (_, i) => (i === 1 ? 1000 : -50));
    let hits = 0;
    for (let i = 0; i < 50; i++) {
      const t = generateNote(facts, vocab, new Rng(i), { style: 'soap', phraseWeights: { 'findings.opacity': w }, prior: 0.01 }).text;
      if (t.includes('basilar consolidation')) hits++;
    }
    expect(hits).toBeGreaterThanOrEqual(48);
    expect(() => generateNote(facts, vocab, new Rng(1), { phraseWeights: { 'findings.opacity': [1] } })).toThrow(/weights/);
  });

  it('safe notes always verify', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const f: SyntheticFacts = {
        age: 20 + rng.int(70),
        sex: rng.pick(['male', 'female', 'other']),
        conditions: SCHEMA_CONDITIONS.filter(() => rng.bernoulli(0.3)),
        image: rng.bernoulli(0.8) ? { findingClass: rng.pick(['normal', 'opacity', 'cardiomegaly', 'effusion']) } : undefined,
      };
      expect(verifyNote(safeNote(f, vocab), f, vocab).issues).toEqual([]);
    }
  });
});

describe('rejection sampling', () => {
  it('every released note verifies; the rejection rate is reported', () => {
    const rng = new Rng('cohort');
    const stats = new NoteStats();
    for (let i = 0; i < 1500; i++) {
      const f: SyntheticFacts = {
        age: 20 + rng.int(70),
        sex: rng.pick(['male', 'female']),
        conditions: SCHEMA_CONDITIONS.filter(() => rng.bernoulli(0.25)),
        labs: [{ name: 'egfr', display: 'eGFR', value: 55, unit: 'mL/min/{1.73_m2}', interpretation: 'low' }],
        image: { findingClass: rng.pick(['normal', 'opacity', 'cardiomegaly', 'effusion']) },
      };
      const note = generateVerifiedNote(f, vocab, rng, { stats, maxTries: 4 });
      expect(verifyNote(note.text, f, vocab).ok).toBe(true);
      expect(note.attempts).toBe(note.style === 'safe' ? 4 : note.rejections.length + 1);
    }
    const r = stats.toJSON();
    expect(r.notes).toBe(1500);
    expect(r.attempts).toBeGreaterThan(1500);
    expect(r.rejected).toBe(r.attempts - (1500 - r.fallbacks));
    expect(r.rejectionRate).toBeGreaterThan(0.02);
    expect(r.rejectionRate).toBeLessThan(0.5);
    expect(r.byIssue['extra-condition']).toBeGreaterThan(0);
    expect(r.byIssue['missing-condition']).toBeGreaterThan(0); // telegraphic plans skip problems beyond 3
  });

  it('words notes with one vocabulary and verifies them against another (verifyWith)', () => {
    // Wording restricted to one synonym per condition; verification by the full vocabulary.
    const narrow = { ...vocab, conditions: vocab.conditions.map((c) => ({ name: c.name, terms: c.terms.slice(0, 1) })) };
    const stats = new NoteStats();
    const note = generateVerifiedNote(facts, narrow, new Rng('verify-with'), { stats, verifyWith: vocab });
    expect(verifyNote(note.text, facts, vocab).ok).toBe(true);
    // A verifying vocabulary under which hypertension can never be mentioned: every attempt is
    // rejected by it (not by the wording vocabulary), and so is the safe note.
    const deaf = {
      ...vocab,
      conditions: vocab.conditions.map((c) => (c.name === 'hypertension' ? { name: c.name, terms: ['qqqq-never-written'] } : c)),
    };
    const failing = new NoteStats();
    expect(() => generateVerifiedNote(facts, vocab, new Rng('verify-with-2'), { stats: failing, maxTries: 3, verifyWith: deaf })).toThrow(
      SafeNoteError,
    );
    expect(failing.toJSON()).toMatchObject({ attempts: 3, rejected: 3 });
    expect(failing.byIssue['missing-condition']).toBe(3);
  });
});

describe('notes on a timeline', () => {
  const child: SyntheticFacts = {
    age: 7,
    sex: 'male',
    noteDate: '2024-06-01T11:00:00Z',
    conditions: [{ ...cond('asthma'), onset: '2021-03-02' }],
    labs: [{ name: 'systolic_bp', display: 'Systolic blood pressure', value: 98, unit: 'mmHg', effective: '2024-06-01T09:15:00Z' }],
  };

  it('children are children, infants infants, at the age of the note', () => {
    const rng = new Rng('child-notes');
    for (let i = 0; i < 60; i++) {
      const v = generateVerifiedNote(child, vocab, rng);
      expect(v.text).toMatch(/7-year-old boy|7 y\/o M/);
      expect(v.text).not.toMatch(/\b(man|woman|adult)\b/i);
    }
    const infant: SyntheticFacts = { age: 0, ageMonths: 7, sex: 'female', noteDate: '2024-06-01T11:00:00Z', conditions: [] };
    const t = generateVerifiedNote(infant, vocab, rng, { style: 'narrative' }).text;
    expect(t).toMatch(/7-month-old infant|7 m\/o F/);
    expect(t).not.toMatch(/year-old|y\/o/);
    expect(safeNote({ ...child, sex: 'female' }, vocab)).toMatch(/^History:\n7-year-old girl/);
  });

  it("a child's plan is agreed with the parents, an adult's with the patient; vital signs are not called labs", () => {
    const rng = new Rng('plan-agreement');
    const adult: SyntheticFacts = { ...child, age: 47 };
    const texts = (f: SyntheticFacts) => Array.from({ length: 200 }, () => generateVerifiedNote(f, vocab, rng).text);
    const kids = texts(child);
    expect(kids.some((t) => /Plan discussed with the parents, who agree/.test(t))).toBe(true);
    expect(kids.filter((t) => /Patient agrees/.test(t))).toEqual([]);
    const grown = texts(adult);
    expect(grown.some((t) => /Patient agrees with the plan/.test(t))).toBe(true);
    expect(grown.filter((t) => /parents/.test(t))).toEqual([]);
    // The quoted list mixes a blood pressure and a BMI with laboratory values.
    expect([...kids, ...grown, safeNote(child, vocab)].filter((t) => /\bLabs reviewed\b/i.test(t))).toEqual([]);
  });

  it('each timeline rule catches its violation', () => {
    const kinds = (text: string, f: SyntheticFacts) => verifyNote(text, f, vocab).issues.map((i) => i.kind);
    const ok = 'History:\n7-year-old boy with a history of asthma. Recent results: systolic BP 98 mmHg.\n';
    expect(kinds(ok, child)).toEqual([]);
    expect(kinds(ok.replace('7-year-old', '9-year-old'), child)).toEqual(['age-mismatch']);
    expect(kinds(ok.replace('boy', 'man'), child)).toEqual(['adult-words-for-child']);
    // A value measured after the note.
    const later = { ...child, labs: [{ ...child.labs![0], effective: '2024-06-03T09:15:00Z' }] };
    expect(kinds(ok, later)).toEqual(['value-after-note']);
    // A condition that begins after the note: not required, and wrong to list.
    const after = { ...child, conditions: [{ ...cond('asthma'), onset: '2024-09-01' }] };
    expect(kinds(ok, after)).toEqual(['condition-after-note']);
    expect(kinds(ok.replace(' with a history of asthma', ', previously healthy'), after)).toEqual([]);
    // Active pneumonia that began years before the note.
    const stale = { ...child, conditions: [{ ...cond('pneumonia'), onset: '2019-01-01', acute: true }] };
    expect(kinds(ok.replace('asthma', 'pneumonia'), stale)).toEqual(['stale-acute-condition']);
    const recent = { ...child, conditions: [{ ...cond('pneumonia'), onset: '2024-05-20', acute: true }] };
    expect(kinds(ok.replace('asthma', 'pneumonia'), recent)).toEqual([]);
  });

  it('the generator words the note as of its date: later conditions and values are left out', () => {
    const f: SyntheticFacts = {
      ...child,
      conditions: [...child.conditions, { ...cond('obesity'), onset: '2025-01-01' }],
      labs: [...child.labs!, { name: 'bmi', display: 'BMI', value: 31.2, unit: 'kg/m2', effective: '2024-12-01T09:00:00Z' }],
    };
    const rng = new Rng('as-of');
    for (let i = 0; i < 30; i++) {
      const v = generateVerifiedNote(f, vocab, rng);
      expect(v.text).not.toMatch(/obes|BMI/i);
      expect(v.style).not.toBe('safe');
    }
  });
});
