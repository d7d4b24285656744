/**
 * A planned life's prescriptions as the note's facts (notes/facts.ts FactMedication): each drug by
 * a readable name and its dose, from the day it was written to the day it stopped — replaced by
 * another strength, the course over, or the death. The note then names those running at its own
 * date (notes/medications.ts). Pure.
 */
import type { FactMedication } from '../modalities/notes/facts.ts';
import { DAY_MS, type PatientTimeline } from '../modalities/fhir/timeline.ts';

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** "24 HR metoprolol succinate 25 MG Extended Release Oral Tablet" → "metoprolol succinate 25 mg extended release oral tablet". */
export function noteDrugName(display: string): string {
  return display
    .replace(/^\d+ HR /, '')
    .replace(/^\d+ ACTUAT /, '')
    .replace(/ MG\/ACTUAT\b/, ' mg per puff')
    .toLowerCase()
    .replace(/\bml\b/g, 'mL');
}

const lowerFirst = (s: string) => (s.length ? s[0].toLowerCase() + s.slice(1) : s);

export function factMedications(tl: PatientTimeline): FactMedication[] {
  return tl.medications.map((m) => {
    const courseEnd = m.course ? m.authoredMs + m.course.days * DAY_MS : undefined;
    const ends = [m.stoppedMs, courseEnd, tl.deathMs].filter((x): x is number => x !== undefined);
    return {
      name: noteDrugName(m.drug.display),
      dose: m.course ? m.course.doses.map((d) => lowerFirst(d.text)).join(', then ') : lowerFirst(m.drug.dosage),
      start: iso(m.authoredMs),
      ...(ends.length ? { end: iso(Math.min(...ends)) } : {}),
      ...(m.course ? { acute: true } : {}),
      reasons: [...m.reasons],
    };
  });
}
