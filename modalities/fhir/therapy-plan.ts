/**
 * The chronic prescriptions of a planned life as courses that follow the conditions and the labs
 * (clinical/escalation.ts): strengths of one drug replace one another, a paediatric strength is
 * replaced by the adult one, and at an adult visit whose lab is above target one step per lab is taken —
 * a higher strength (the old prescription stopped) or the add-on agent. The labs are not changed:
 * the escalation reads the values the planner drew. Pure.
 */
import {
  aboveTarget,
  ESCALATION_MIN_AGE_YEARS,
  INDICATIONS,
  LINE_OF,
  LISINOPRIL_MG,
  paediatricLisinoprilMaxMg,
  STEP_MIN_DAYS,
  THERAPY_LINES,
  type Drug,
  type TherapyLine,
} from '../clinical/index.ts';
import type { PlanEncounter, PlanMeasurement, PlanMedication } from './timeline.ts';

const DAY_MS = 86_400_000;
/** A step up is written after the visit's labs (drawn 15 minutes into it). */
const STEP_UP_OFFSET_MS = 18 * 60_000;

/**
 * Links each line's first-line prescriptions into one course: a later, higher strength replaces
 * the active one (which is stopped); a lower or equal one is not written (the active strength
 * already treats it). Acute courses and drugs outside a line pass through.
 */
export function chainLines(meds: PlanMedication[]): PlanMedication[] {
  // Rebuilt from scratch: an escalation may have replaced what a later first-line drug would.
  for (const m of meds)
    if (!m.course && LINE_OF.has(m.drug.rxnorm)) {
      delete m.prior;
      delete m.stoppedMs;
      delete m.stopReason;
    }
  const out: PlanMedication[] = [];
  const active = new Map<string, PlanMedication>();
  for (const m of [...meds].sort((a, b) => a.authoredMs - b.authoredMs)) {
    const at = m.course ? undefined : LINE_OF.get(m.drug.rxnorm);
    if (!at) {
      out.push(m);
      continue;
    }
    const cur = active.get(at.line.id);
    if (!cur) {
      active.set(at.line.id, m);
      out.push(m);
      continue;
    }
    const curStep = LINE_OF.get(cur.drug.rxnorm)!.step;
    if (at.step <= curStep) {
      // Written the same day: the indication joins the active prescription.
      if (m.authoredMs === cur.authoredMs) for (const r of m.reasons) if (!cur.reasons.includes(r)) cur.reasons.push(r);
      continue;
    }
    if (m.authoredMs === cur.authoredMs) {
      // Two strengths written at one visit (a diagnosis that needs the higher one): only the higher is written.
      const treats = INDICATIONS.get(m.drug.rxnorm)?.conditions ?? [];
      for (const r of cur.reasons) if (!m.reasons.includes(r) && treats.includes(r)) m.reasons.push(r);
      if (cur.prior) m.prior = cur.prior;
      out[out.indexOf(cur)] = m;
      active.set(at.line.id, m);
      continue;
    }
    cur.stoppedMs = m.authoredMs;
    cur.stopReason =
      m.stepReason ?? (cur.drug.maxAgeYears !== undefined ? 'Replaced by the adult strength' : `Replaced by ${m.drug.display}`);
    m.prior = cur;
    active.set(at.line.id, m);
    out.push(m);
  }
  return out;
}

/** The active prescription of `line` at `ms`, if any. */
function activeOf(meds: PlanMedication[], line: TherapyLine, ms: number): PlanMedication | undefined {
  return meds.find(
    (m) => !m.course && LINE_OF.get(m.drug.rxnorm)?.line.id === line.id && m.authoredMs <= ms && (m.stoppedMs ?? Infinity) > ms,
  );
}

/**
 * Walks the visits in order and takes at most one step per lab per visit (a clinician adjusts the
 * glucose, lipid and blood-pressure drugs at one review; a chart review found a coronary patient's
 * LDL-C of 176 left on atorvastatin 40 mg for years because each visit's one step went to the
 * diabetes): for each lab, the first line (in THERAPY_LINES order) whose lab measured at that visit
 * is above target, whose current step was written at least STEP_MIN_DAYS before, and whose next
 * step (or add-on) is on the market. Children are stepped up only on `paediatric` lines, to a dose
 * within the AAP 2017 maximum for the weight `weightAt` estimates (the step records that weight: a
 * child's dose is by weight).
 */
export function planEscalation(
  meds: PlanMedication[],
  encounters: PlanEncounter[],
  measurements: PlanMeasurement[],
  onset: Map<string, number>,
  ageAt: (ms: number) => number,
  weightAt?: (ms: number) => number,
): PlanMedication[] {
  let out = [...meds];
  // Each visit's first value of each lab, looked up once (the lines read them visit by visit).
  const atVisit = new Map<string, number>();
  for (const m of measurements) if (!atVisit.has(`${m.encounter}|${m.lab}`)) atVisit.set(`${m.encounter}|${m.lab}`, m.value);
  encounters.forEach((e, i) => {
    if (e.kind === 'imaging') return;
    const ms = e.startMs + STEP_UP_OFFSET_MS;
    const age = ageAt(ms);
    const child = age < ESCALATION_MIN_AGE_YEARS;
    const has = (c: string) => onset.has(c) && onset.get(c)! <= ms;
    const year = new Date(ms).getUTCFullYear();
    const approved = (d: Drug) => (d.availableFromYear ?? -Infinity) <= year;
    const stepped = new Set<string>();
    for (const line of THERAPY_LINES) {
      if (!line.lab || stepped.has(line.lab) || (child && (!line.paediatric || !weightAt))) continue;
      const value = atVisit.get(`${i}|${line.lab}`);
      if (value === undefined || !aboveTarget(line.lab, value, has, age)) continue;
      let next: Drug | undefined;
      const prior = activeOf(out, line, ms);
      if (line.addOnTo && !prior) {
        const base = THERAPY_LINES.find((l) => l.id === line.addOnTo)!;
        const cur = activeOf(out, base, ms);
        if (!cur || cur.drug.rxnorm !== base.steps[base.steps.length - 1].rxnorm) continue;
        if (ms - cur.authoredMs < STEP_MIN_DAYS * DAY_MS) continue;
        next = line.steps[0];
      } else {
        // An add-on line already started is titrated like any other.
        if (!prior || ms - prior.authoredMs < STEP_MIN_DAYS * DAY_MS) continue;
        next = nextStep(line, LINE_OF.get(prior.drug.rxnorm)!.step, age);
      }
      if (!next || !approved(next) || age < next.minAgeYears) continue;
      if (next.minEgfr !== undefined && latestValue(measurements, 'egfr', ms) < next.minEgfr) continue;
      let weightKg: number | undefined;
      if (child) {
        weightKg = Math.round(weightAt!(ms) * 10) / 10;
        const mg = LISINOPRIL_MG.get(next.rxnorm);
        if (mg === undefined || mg > paediatricLisinoprilMaxMg(weightKg)) continue;
      }
      const reasons = (INDICATIONS.get(next.rxnorm)?.conditions ?? []).filter(has);
      if (reasons.length === 0) continue;
      const label =
        line.lab === 'hba1c'
          ? `HbA1c ${value.toFixed(1)} %`
          : line.lab === 'systolic_bp'
            ? `systolic BP ${Math.round(value)} mmHg`
            : `LDL-C ${Math.round(value)} mg/dL`;
      out.push({
        drug: next,
        reasons,
        authoredMs: ms,
        encounter: i,
        stepReason: `Stepped up: ${label} above target`,
        ...(weightKg !== undefined ? { weightKg } : {}),
      });
      out = chainLines(out);
      stepped.add(line.lab);
    }
  });
  return out;
}

/** The line's next strength above `step` usable at `ageYears` (a paediatric strength is skipped by an adult). */
function nextStep(line: TherapyLine, step: number, ageYears: number): Drug | undefined {
  return line.steps.slice(step + 1).find((d) => d.maxAgeYears === undefined || ageYears < d.maxAgeYears);
}

/** The latest value of `lab` measured at or before `ms` (Infinity when none: nothing contraindicates). */
function latestValue(measurements: PlanMeasurement[], lab: string, ms: number): number {
  let at = -Infinity;
  let v = Infinity;
  for (const m of measurements)
    if (m.lab === lab && m.ms <= ms && m.ms >= at) {
      at = m.ms;
      v = m.value;
    }
  return v;
}
