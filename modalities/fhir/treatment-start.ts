/**
 * When a chronic condition's first-line drug could first be started, where that is after its
 * diagnosis: a chart review found hypertension from 1983 first treated in 2022 and CKD from age 3
 * first treated at 11, because the drug waited for the first visit of the record's window. The
 * planner (timeline.ts) adds a follow-up visit on each day returned. Pure.
 */
import { TREATMENTS } from '../clinical/index.ts';
import type { PlanCondition, RowFacts } from './timeline.ts';

// As timeline.ts (not imported from it: timeline.ts imports this module).
const DAY_MS = 86_400_000;
const YEAR_MS = 365.2425 * DAY_MS;
const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

/**
 * Days (08:30) before `windowStartMs` on which a chronic condition's first-line drug could first be
 * started when that is after its diagnosis: the drug's approval year (1 February), the age the
 * drug (and this indication) allows. One visit per condition and day; none when the drug could be
 * started at the diagnosis visit or only inside the record's window (its visits then serve).
 */
export function treatmentStartDays(
  row: RowFacts,
  conditions: readonly PlanCondition[],
  birthMs: number,
  windowStartMs: number,
): { condition: string; ms: number }[] {
  const out: { condition: string; ms: number }[] = [];
  for (const c of conditions) {
    const t = TREATMENTS[c.name];
    if (c.acute || !t) continue;
    for (const drug of t.drugs) {
      const [startFrom, startBefore] = t.startAgeYears?.[drug.rxnorm] ?? [-Infinity, Infinity];
      const minAge = Math.max(drug.minAgeYears, startFrom);
      const maxAge = Math.min(drug.maxAgeYears ?? Infinity, startBefore);
      const approval = drug.availableFromYear === undefined ? -Infinity : Date.UTC(drug.availableFromYear, 1, 1);
      const ageStart = birthMs + Math.ceil((minAge * YEAR_MS) / DAY_MS) * DAY_MS;
      const from = dayStart(Math.max(approval, ageStart));
      if (from <= c.onsetMs || from >= windowStartMs) continue;
      if ((from - birthMs) / YEAR_MS >= maxAge) continue;
      const ms = from + 8.5 * 3600_000;
      if (!out.some((o) => o.condition === c.name && o.ms === ms)) out.push({ condition: c.name, ms });
    }
  }
  return out;
}
