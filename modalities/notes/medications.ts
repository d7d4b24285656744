/**
 * Medications in a note: the prescriptions running at the note's date (a chronic drug written on
 * or before it and not stopped by then), with their doses, and the antibiotic course of a recent
 * acute illness (running or completed) — never a drug started after the note or already stopped.
 * The generator lists them; the verifier checks every drug a note names against this. Pure.
 */
import type { FactMedication, SyntheticFacts } from './facts.ts';

const ms = (s: string) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s);

/** Prescriptions running at the note's date (all when the facts carry no date), and the acute courses written by then. */
export function medicationsAtNote(facts: SyntheticFacts): { current: FactMedication[]; courses: FactMedication[] } {
  const all = facts.medications ?? [];
  if (!facts.noteDate) return { current: all.filter((m) => !m.acute), courses: all.filter((m) => m.acute) };
  const at = ms(facts.noteDate);
  const started = all.filter((m) => ms(m.start) <= at);
  return {
    current: started.filter((m) => !m.acute && (m.end === undefined || ms(m.end) > at)),
    courses: started.filter((m) => m.acute),
  };
}

/** Whether an acute course is still being taken at the note's date. */
export function courseRunning(m: FactMedication, noteDate: string | undefined): boolean {
  return noteDate !== undefined && m.end !== undefined && ms(m.end) > ms(noteDate);
}

/** How a note lists a prescription: its name and dose. */
export function medicationText(m: FactMedication): string {
  return `${m.name} (${m.dose})`;
}

/**
 * Issues of the drugs a note names (`medication-not-current`: a drug named although it was
 * stopped before the note or started after it; `medication-omitted`: a prescription running at
 * the note's date, or the recent illness's antibiotic, not named).
 */
export function medicationIssues(
  text: string,
  facts: SyntheticFacts,
): { kind: 'medication-not-current' | 'medication-omitted'; detail: string }[] {
  const out: { kind: 'medication-not-current' | 'medication-omitted'; detail: string }[] = [];
  const lower = text.toLowerCase();
  const { current, courses } = medicationsAtNote(facts);
  const ok = new Set([...current, ...courses]);
  for (const m of facts.medications ?? []) {
    const named = lower.includes(m.name.toLowerCase());
    if (named && !ok.has(m))
      out.push({
        kind: 'medication-not-current',
        detail: `"${m.name}" is named but was ${facts.noteDate && ms(m.start) > ms(facts.noteDate) ? `started ${m.start}, after the note` : `stopped ${m.end ?? '?'}`}`,
      });
    if (!named && ok.has(m))
      out.push({ kind: 'medication-omitted', detail: `"${m.name}" (${m.acute ? 'the recent course' : 'running'}) is not named` });
  }
  return out;
}
