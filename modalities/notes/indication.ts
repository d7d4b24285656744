/**
 * Why a chest radiograph was taken, as a note states it, from the facts as of the note: the
 * follow-up of a recent pneumonia, breathlessness in known heart failure, cough and breathlessness
 * in known COPD or asthma, else a symptom that leads to a radiograph in general practice
 * (persistent cough, breathlessness on exertion; for adults also a pre-operative assessment).
 * Symptoms are not coded conditions, so the note invents no diagnosis. And what a clinician writes
 * about an airspace opacity when no pneumonia is diagnosed: an open differential and a repeat
 * radiograph in 6-8 weeks to confirm resolution (BTS guidelines for community-acquired pneumonia
 * in adults, 2009: a repeat film at about 6 weeks for persisting signs or higher risk of
 * malignancy). Pure.
 */
import { imageFindings, type SyntheticFacts } from './facts.ts';

export interface ImagingIndication {
  /** PHRASES topic of the indication sentence. */
  topic: string;
  /** Index into facts.conditions of the condition the indication names, when it names one. */
  condition?: number;
}

const AIRWAYS = ['copd', 'asthma'];

/** The indication of the imaging in `facts` (already as of the note). */
export function imagingIndication(facts: SyntheticFacts): ImagingIndication {
  const find = (pred: (name: string, acute: boolean) => boolean) => facts.conditions.findIndex((c) => pred(c.name, !!c.acute));
  const acute = find((_, a) => a);
  if (acute >= 0) return { topic: 'indication.acute', condition: acute };
  const hf = find((n) => n === 'heart_failure');
  if (hf >= 0) return { topic: 'indication.heart_failure', condition: hf };
  const airways = find((n) => AIRWAYS.includes(n));
  if (airways >= 0) return { topic: 'indication.airways', condition: airways };
  return { topic: Math.floor(facts.age) >= 18 ? 'indication.symptom' : 'indication.symptom.child' };
}

/** An airspace opacity on the image while no pneumonia (acute condition) is listed at the note's date. */
export function undiagnosedOpacity(facts: SyntheticFacts): boolean {
  if (!facts.image || !imageFindings(facts.image).includes('opacity')) return false;
  return !facts.conditions.some((c) => c.acute);
}
