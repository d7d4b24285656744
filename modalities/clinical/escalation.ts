/**
 * Treatment that follows the conditions and the labs over time, as a small rule set from public
 * guidance, for adults (children keep the first-line rules of treatments.ts):
 *
 * - type 2 diabetes (ADA Standards of Care 2024, section 9): metformin, titrated to 1,000 mg twice
 *   daily when HbA1c stays at or above the 7 % target about 3 months after the last change; then a
 *   second agent (an SGLT2 inhibitor, empagliflozin 10 mg, for its cardiorenal benefit) on the same
 *   condition; then, when HbA1c is still at or above 7 % on both, a third agent of another class
 *   (the DPP-4 inhibitor sitagliptin 100 mg);
 * - LDL cholesterol (ACC/AHA 2018 cholesterol guideline): clinical ASCVD (coronary disease) gets a
 *   high-intensity statin (atorvastatin 40-80 mg) from its diagnosis, raised to 80 mg when LDL-C
 *   stays at or above 70 mg/dL; primary prevention (hyperlipidemia alone) starts at 10 mg and is
 *   raised to high intensity when LDL-C is at or above 190 mg/dL (severe hypercholesterolaemia);
 *   ezetimibe 10 mg is added when LDL-C is still above that target on atorvastatin 80 mg (the
 *   guideline's add-on to a maximally tolerated statin);
 * - hypertension (clinical/hypertension.ts): ACC/AHA 2017 for adults (systolic target below
 *   130 mmHg), lisinopril 10 → 20 → 40 mg at visits whose systolic pressure is at or above the
 *   target, then amlodipine 5 → 10 mg added; AAP 2017 for children by weight (lisinopril
 *   2.5 → 5 → 10 → 20 → 40 mg, at most 0.6 mg/kg), who therefore take part in this line;
 * - coronary disease: low-dose aspirin 81 mg (ACC/AHA 2019; AHA/ACC 2023 chronic coronary disease);
 * - heart failure (AHA/ACC/HFSA 2022): an ACE inhibitor (lisinopril), an evidence-based
 *   beta-blocker (metoprolol succinate) and a loop diuretic (furosemide).
 *
 * A drug and its strengths form a `line`; a line's prescriptions replace one another (the old one
 * is stopped when the next is written), so one strength is active at a time. At most one step per
 * lab per visit, at the visit whose lab is above target. An add-on line starts only on its base line's
 * last (maximal) step, which must still be running when it is written. Pure.
 *
 * Not modelled: beta-blocker titration in heart failure (metoprolol succinate 25 mg doubled every
 * 2 weeks to 200 mg as tolerated, AHA/ACC/HFSA 2022). It is driven by heart rate and blood pressure
 * at visits 2 weeks apart, which the record neither has nor schedules; the lab-driven steps here
 * cannot express it, so heart failure keeps the starting 25 mg.
 */
import {
  ATORVASTATIN_40,
  ATORVASTATIN_80,
  EMPAGLIFLOZIN,
  EZETIMIBE_10,
  FUROSEMIDE_40,
  METFORMIN_1000,
  METOPROLOL_SUCCINATE_25,
  ASPIRIN_81,
  SITAGLIPTIN_100,
} from './chronic-drugs.ts';
import { ATORVASTATIN, LISINOPRIL, LISINOPRIL_PAEDIATRIC, METFORMIN, type Drug } from './treatments.ts';
import { AMLODIPINE_10, AMLODIPINE_5, LISINOPRIL_20, LISINOPRIL_40, LISINOPRIL_5, systolicAboveTarget } from './hypertension.ts';

/** Days a step is given before the next one (ADA: reassess about every 3 months). */
export const STEP_MIN_DAYS = 90;
/** Escalation is an adult rule set. */
export const ESCALATION_MIN_AGE_YEARS = 18;

export interface TherapyLine {
  id: string;
  /** Strengths in increasing order. */
  steps: readonly Drug[];
  /** The lab whose value above target drives a step up. */
  lab?: string;
  /** An add-on line: started when this line is at its last step and the lab is still above target. */
  addOnTo?: string;
  /** Also stepped up in children (by weight: the planner's weight estimate, the verifier's measured weight). */
  paediatric?: boolean;
}

export const THERAPY_LINES: readonly TherapyLine[] = [
  { id: 'metformin', steps: [METFORMIN, METFORMIN_1000], lab: 'hba1c' },
  { id: 'sglt2-inhibitor', steps: [EMPAGLIFLOZIN], lab: 'hba1c', addOnTo: 'metformin' },
  { id: 'dpp4-inhibitor', steps: [SITAGLIPTIN_100], lab: 'hba1c', addOnTo: 'sglt2-inhibitor' },
  { id: 'atorvastatin', steps: [ATORVASTATIN, ATORVASTATIN_40, ATORVASTATIN_80], lab: 'ldl_cholesterol' },
  { id: 'ezetimibe', steps: [EZETIMIBE_10], lab: 'ldl_cholesterol', addOnTo: 'atorvastatin' },
  // Hypertension (clinical/hypertension.ts): ACC/AHA 2017 for adults, AAP 2017 by weight for children.
  {
    id: 'lisinopril',
    steps: [LISINOPRIL_PAEDIATRIC, LISINOPRIL_5, LISINOPRIL, LISINOPRIL_20, LISINOPRIL_40],
    lab: 'systolic_bp',
    paediatric: true,
  },
  { id: 'amlodipine', steps: [AMLODIPINE_5, AMLODIPINE_10], lab: 'systolic_bp', addOnTo: 'lisinopril' },
];

/** RxNorm → its line and step index. */
export const LINE_OF: ReadonlyMap<string, { line: TherapyLine; step: number }> = new Map(
  THERAPY_LINES.flatMap((line) => line.steps.map((d, step) => [d.rxnorm, { line, step }] as const)),
);

/**
 * Whether `value` of `lab` is at or above the treatment target for a patient with the conditions
 * `has` (HbA1c 7 %; LDL-C 70 mg/dL with coronary disease, else 190; systolic pressure by age,
 * hypertension.ts: 130 mmHg for adults, so `ageYears` is needed for a child's).
 */
export function aboveTarget(lab: string, value: number, has: (c: string) => boolean, ageYears = Infinity): boolean {
  if (lab === 'hba1c') return has('type2_diabetes') && value >= 7;
  if (lab === 'systolic_bp') return has('hypertension') && systolicAboveTarget(value, ageYears);
  if (lab === 'ldl_cholesterol') {
    if (has('coronary_artery_disease')) return value >= 70;
    return has('hyperlipidemia') && value >= 190;
  }
  return false;
}

/** The lowest step of `line` a condition held requires of an adult (coronary disease: high-intensity statin). */
export function minimumStep(line: TherapyLine, has: (c: string) => boolean): number {
  return line.id === 'atorvastatin' && has('coronary_artery_disease') ? 1 : 0;
}

/**
 * A treatment every adult with `condition` is on at each visit from `graceDays` after its
 * diagnosis (and from the drug's first year): the verifier's rule `rule` otherwise.
 */
export interface RequiredTherapy {
  rule: string;
  condition: string;
  anyOf: readonly Drug[];
  graceDays: number;
  /** Ages [from, before) at which the rule holds, where narrower than adulthood. */
  ageYears?: readonly [number, number];
  source: string;
}

export const REQUIRED_THERAPIES: readonly RequiredTherapy[] = [
  {
    rule: 'coronary-disease-without-high-intensity-statin',
    condition: 'coronary_artery_disease',
    anyOf: [ATORVASTATIN_40, ATORVASTATIN_80],
    graceDays: 365,
    source: 'ACC/AHA 2018 cholesterol guideline (clinical ASCVD)',
  },
  {
    rule: 'coronary-disease-without-aspirin',
    condition: 'coronary_artery_disease',
    anyOf: [ASPIRIN_81],
    graceDays: 0,
    source: 'ACC/AHA 2019; AHA/ACC 2023 chronic coronary disease',
  },
  {
    rule: 'diabetes-without-statin',
    condition: 'type2_diabetes',
    anyOf: [ATORVASTATIN, ATORVASTATIN_40, ATORVASTATIN_80],
    graceDays: 0,
    ageYears: [40, 76],
    source: 'ADA Standards of Care 2024, section 10 (moderate-intensity statin for people with diabetes aged 40-75)',
  },
  {
    rule: 'heart-failure-without-beta-blocker',
    condition: 'heart_failure',
    anyOf: [METOPROLOL_SUCCINATE_25],
    graceDays: 0,
    source: 'AHA/ACC/HFSA 2022',
  },
  {
    rule: 'heart-failure-without-diuretic',
    condition: 'heart_failure',
    anyOf: [FUROSEMIDE_40],
    graceDays: 0,
    source: 'AHA/ACC/HFSA 2022 (loop diuretic for congestion)',
  },
];

/** The first year any drug of a required therapy could be written (its earliest approval). */
export function requiredFromYear(t: RequiredTherapy): number {
  return Math.min(...t.anyOf.map((d) => d.availableFromYear ?? -Infinity));
}

/** One earlier prescription of the same line, as the verifier sees it. */
export interface StepContext {
  /** Step of the prescription replaced (undefined: none, e.g. the first of an add-on line). */
  priorStep?: number;
  /** The replaced prescription's paediatric age limit, when it has one. */
  priorMaxAgeYears?: number;
  ageYears: number;
  has: (c: string) => boolean;
  /** Values of the line's lab measured at the prescription's visit, on or before it was written. */
  labValuesAtVisit: readonly number[];
}

/**
 * `dose-increase-without-lab` when a step up of `rxnorm` (a higher strength, or an add-on agent)
 * is not explained: by a paediatric strength outgrown, by a condition that requires that step
 * (coronary disease: high-intensity statin), or by a lab above target at the visit it was written.
 */
export function stepUpViolations(rxnorm: string, ctx: StepContext): string[] {
  const at = LINE_OF.get(rxnorm);
  if (!at) return [];
  const isAddOn = at.line.addOnTo !== undefined && ctx.priorStep === undefined;
  const isIncrease = ctx.priorStep !== undefined && at.step > ctx.priorStep;
  if (!isAddOn && !isIncrease) return [];
  if (isIncrease && ctx.priorMaxAgeYears !== undefined && ctx.ageYears >= ctx.priorMaxAgeYears) return [];
  if (isIncrease && at.step <= minimumStep(at.line, ctx.has)) return [];
  const lab = at.line.lab;
  if (lab && ctx.labValuesAtVisit.some((v) => aboveTarget(lab, v, ctx.has, ctx.ageYears))) return [];
  return ['dose-increase-without-lab'];
}

/**
 * `add-on-without-maximal-base` when an add-on agent (`rxnorm`, on a line with `addOnTo`) is written
 * while its base line is not running at its last step: ezetimibe beside atorvastatin 10 mg, or a
 * third diabetes agent without the SGLT2 inhibitor. `activeAt` lists the RxNorm codes running when
 * it was written.
 */
export function addOnViolations(rxnorm: string, activeAt: readonly string[]): string[] {
  const line = LINE_OF.get(rxnorm)?.line;
  if (!line?.addOnTo) return [];
  const base = THERAPY_LINES.find((l) => l.id === line.addOnTo);
  if (!base) return [];
  return activeAt.includes(base.steps[base.steps.length - 1].rxnorm) ? [] : ['add-on-without-maximal-base'];
}
