// Why a radiograph was taken, and what is written about an opacity nobody has diagnosed
// (modalities/notes/indication.ts): a chart reader found "Chest radiograph (PA): …" at a routine
// visit with no reason, and "Follow-up imaging as indicated. Next routine visit in 6 months." after
// an airspace opacity in a patient without pneumonia.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import {
  buildVocabulary,
  generateNote,
  generateVerifiedNote,
  imagingIndication,
  NOTE_STYLES,
  PHRASES,
  safeNote,
  undiagnosedOpacity,
  verifyNote,
  type SyntheticFacts,
} from '../../modalities/notes/index.ts';

const CONDITIONS = [
  { name: 'hypertension', display: 'Essential hypertension (disorder)' },
  { name: 'heart_failure', display: 'Heart failure (disorder)' },
  { name: 'copd', display: 'Chronic obstructive lung disease (disorder)' },
  { name: 'pneumonia', display: 'Pneumonia (disorder)' },
];
const vocab = buildVocabulary(CONDITIONS);
const cond = (name: string) => ({ ...CONDITIONS.find((c) => c.name === name)!, ...(name === 'pneumonia' ? { acute: true } : {}) });
const indicationSentences = Object.entries(PHRASES)
  .filter(([k]) => k.startsWith('indication.'))
  .flatMap(([, v]) => v.map((t) => t.replace('{{condition}}', '').split('{{')[0].trim()));
const hasIndication = (text: string) => indicationSentences.some((s) => text.includes(s.slice(0, 24)));

describe('imaging indication', () => {
  it('follows the record: recent pneumonia, heart failure, airways disease, else a symptom (adult or child)', () => {
    const f = (age: number, names: string[]): SyntheticFacts => ({
      age,
      sex: 'male',
      conditions: names.map(cond),
      image: { findingClass: 'normal' },
    });
    expect(imagingIndication(f(70, ['hypertension', 'pneumonia']))).toEqual({ topic: 'indication.acute', condition: 1 });
    expect(imagingIndication(f(70, ['hypertension', 'heart_failure', 'copd']))).toEqual({
      topic: 'indication.heart_failure',
      condition: 1,
    });
    expect(imagingIndication(f(70, ['copd']))).toEqual({ topic: 'indication.airways', condition: 0 });
    expect(imagingIndication(f(70, ['hypertension'])).topic).toBe('indication.symptom');
    expect(imagingIndication(f(7, [])).topic).toBe('indication.symptom.child');
  });

  it('every imaging note (each style, and the safe fallback) states why the image was taken and passes the verifier', () => {
    const rng = new Rng('indication');
    for (const names of [[], ['hypertension'], ['heart_failure'], ['copd'], ['pneumonia']])
      for (const age of [8, 45, 80])
        for (const findingClass of ['normal', 'opacity', 'cardiomegaly']) {
          const facts: SyntheticFacts = { age, sex: 'female', conditions: names.map(cond), image: { findingClass } };
          for (const style of NOTE_STYLES) {
            const note = generateVerifiedNote(facts, vocab, rng, { style });
            expect(hasIndication(note.text), note.text).toBe(true);
          }
          const safe = safeNote(facts, vocab);
          expect(hasIndication(safe), safe).toBe(true);
          expect(verifyNote(safe, facts, vocab).issues).toEqual([]);
        }
  });
});

describe('an airspace opacity without a pneumonia diagnosis', () => {
  const facts: SyntheticFacts = {
    age: 58,
    sex: 'male',
    conditions: [cond('hypertension')],
    image: { findingClass: 'opacity', sides: { opacity: 'right' } },
  };

  it('gets a differential and a repeat radiograph in 6-8 weeks, not "imaging as indicated" and a visit in 6 months', () => {
    expect(undiagnosedOpacity(facts)).toBe(true);
    expect(undiagnosedOpacity({ ...facts, conditions: [cond('pneumonia')] })).toBe(false);
    const rng = new Rng('opacity');
    for (let i = 0; i < 60; i++) {
      const { text } = generateNote(facts, vocab, rng, { style: NOTE_STYLES[i % 3] });
      expect(text).toMatch(/6-8 weeks|6 to 8 weeks/);
      expect(text).toMatch(/infection/);
      expect(text).not.toMatch(/imaging as indicated|routine visit in 6 months/i);
    }
    const safe = safeNote(facts, vocab);
    expect(safe).toMatch(/6-8 weeks/);
    expect(verifyNote(safe, facts, vocab).issues).toEqual([]);
  });

  it('invents no diagnosis: verified notes never affirm pneumonia; with pneumonia the acute plan stays', () => {
    const rng = new Rng('opacity-verify');
    for (let i = 0; i < 60; i++) {
      const note = generateVerifiedNote(facts, vocab, rng);
      expect(verifyNote(note.text, facts, vocab).ok).toBe(true);
      expect(note.text.toLowerCase()).not.toContain('pneumonia');
    }
    const cap: SyntheticFacts = { ...facts, conditions: [cond('pneumonia')] };
    const { text } = generateNote(cap, vocab, rng, { style: 'narrative' });
    expect(text).not.toMatch(/6-8 weeks|6 to 8 weeks/);
  });
});
