/**
 * Hypertension as public guidance treats it, apart from the first-line rules of treatments.ts:
 *
 * - which hypertension a child has: AAP 2017 (Flynn et al., Pediatrics 140:e20171904, section 6)
 *   names primary (essential) hypertension the predominant cause from about 6 years of age;
 *   hypertension found younger is mostly secondary (renal, renovascular, coarctation), so a
 *   diagnosis made before 6 is coded as secondary hypertension, never as essential;
 * - the blood-pressure course: an adult above the ACC/AHA 2017 target (systolic < 130 mmHg) is
 *   stepped up at the visit that measured it, lisinopril 10 → 20 → 40 mg once daily (the label's
 *   usual 20-40 mg range, 80 mg being rarely used), then amlodipine 5 → 10 mg added (a
 *   dihydropyridine calcium-channel blocker, a first-line class of ACC/AHA 2017 section 8.1.6;
 *   the amlodipine label's 5 mg start and 10 mg maximum);
 * - a child: AAP 2017 Table 19, lisinopril from 6 years, 0.07 mg/kg once daily up to 5 mg to
 *   start, raised to at most 0.6 mg/kg and 40 mg a day; the treatment goal is a systolic pressure
 *   below the 90th percentile (below 130 mmHg from 13 years). Steps are taken when the pressure is
 *   at or above the simplified 95th percentile of ranges.ts `referenceFlag` (110 mmHg under 6, 115
 *   at 6-9, 120 at 10-12) or 130 from 13: clearly above goal, not at its edge.
 *
 * RxNorm SCDs, each checked in the public VSAC value set "Antihypertensives"
 * (2.16.840.1.113762.1.4.1248.164, definition 2024-01-20, eCQM update 2025-05-08, as copied in
 * canvas-medical/canvas-plugins' value-set module), which lists 311353 lisinopril 2.5 MG, 311354
 * lisinopril 5 MG, 314076 lisinopril 10 MG, 314077 lisinopril 20 MG, 197884 lisinopril 40 MG,
 * 197361 amlodipine 5 MG and 308135 amlodipine 10 MG Oral Tablet; second listings: openFDA's NDC
 * directory gives RxCUI 314077 for lisinopril 20 mg tablets (NDC 67296-1202, RedPharm); OHDSI's
 * public query library shows 197884 as "Lisinopril 40 MG Oral Tablet" (concept 1308221); a public
 * hypertension titration model (CollaboRhythm) lists 314077, 197884, 197361 and 308135 with these
 * displays; a clinical-NLP resolver's printed output maps "amlodipine 10 MG" to 308135. 205326,
 * sometimes quoted for 40 mg, is lisinopril 30 MG in the same value set. Pure data and functions.
 */
import type { Drug } from './treatments.ts';

const ONCE_DAILY = 'One tablet by mouth once daily';

/** AAP 2017 (section 6): primary hypertension predominates from this age; earlier, secondary causes. */
export const ESSENTIAL_HYPERTENSION_MIN_YEARS = 6;

/**
 * The coding of hypertension diagnosed before ESSENTIAL_HYPERTENSION_MIN_YEARS: SNOMED CT
 * 31992008 |Secondary hypertension (disorder)| and ICD-10-CM I15.9 (Secondary hypertension,
 * unspecified). The schemas' hypertension attribute lists ICD-10-CM I15, so the sites' encoder
 * reads it as `hypertension` (decode.ts checks that the schema can read it).
 */
export const SECONDARY_HYPERTENSION = {
  snomed: { code: '31992008', display: 'Secondary hypertension (disorder)' },
  icd10cm: { code: 'I15.9', display: 'Secondary hypertension, unspecified' },
} as const;

/** Codes of *essential* (primary) hypertension: SNOMED CT 59621000, 1201005 (benign), 78975002 (malignant); ICD-10-CM I10. */
export const ESSENTIAL_HYPERTENSION_CODES: ReadonlySet<string> = new Set(['59621000', '1201005', '78975002', 'I10']);

/** Whether a hypertension diagnosis made at `onsetYears` is secondary by AAP 2017's age rule. */
export function isSecondaryHypertensionOnset(onsetYears: number): boolean {
  return onsetYears < ESSENTIAL_HYPERTENSION_MIN_YEARS;
}

/**
 * `essential-hypertension-before-6` when hypertension begun before 6 years is coded as essential,
 * or not coded as secondary (`codes`: every code of the Condition, any system).
 */
export function hypertensionCodingViolations(onsetYears: number, codes: readonly string[]): string[] {
  if (!isSecondaryHypertensionOnset(onsetYears)) return [];
  const secondary = codes.includes(SECONDARY_HYPERTENSION.snomed.code) || codes.includes(SECONDARY_HYPERTENSION.icd10cm.code);
  return !secondary || codes.some((c) => ESSENTIAL_HYPERTENSION_CODES.has(c)) ? ['essential-hypertension-before-6'] : [];
}

/**
 * Initial U.S. Approval: lisinopril 1988 (DailyMed lisinopril tablets, as treatments.ts), amlodipine
 * 1992 (highlights of the amlodipine besylate tablets label, e.g. Unichem's SPL).
 */
const LISINOPRIL_YEAR = 1988;
const AMLODIPINE_YEAR = 1992;

export const LISINOPRIL_5: Drug = {
  rxnorm: '311354',
  display: 'lisinopril 5 MG Oral Tablet',
  minAgeYears: 6,
  // A child's step (AAP 2017): at 18 the adult 10 mg replaces it, as it replaces the 2.5 mg.
  maxAgeYears: 18,
  dosage: 'One tablet (5 mg) by mouth once daily',
  availableFromYear: LISINOPRIL_YEAR,
};
export const LISINOPRIL_20: Drug = {
  rxnorm: '314077',
  display: 'lisinopril 20 MG Oral Tablet',
  minAgeYears: 6,
  dosage: 'One tablet (20 mg) by mouth once daily',
  availableFromYear: LISINOPRIL_YEAR,
};
export const LISINOPRIL_40: Drug = {
  rxnorm: '197884',
  display: 'lisinopril 40 MG Oral Tablet',
  minAgeYears: 6,
  dosage: 'One tablet (40 mg) by mouth once daily',
  availableFromYear: LISINOPRIL_YEAR,
};
export const AMLODIPINE_5: Drug = {
  rxnorm: '197361',
  display: 'amlodipine 5 MG Oral Tablet',
  // Children are kept on the ACE inhibitor alone here (no paediatric calcium-channel-blocker rule is modelled).
  minAgeYears: 18,
  dosage: ONCE_DAILY,
  availableFromYear: AMLODIPINE_YEAR,
};
export const AMLODIPINE_10: Drug = {
  rxnorm: '308135',
  display: 'amlodipine 10 MG Oral Tablet',
  minAgeYears: 18,
  dosage: ONCE_DAILY,
  availableFromYear: AMLODIPINE_YEAR,
};

/** Milligrams of lisinopril per tablet, by RxNorm (the first-line 2.5 and 10 mg of treatments.ts included). */
export const LISINOPRIL_MG: ReadonlyMap<string, number> = new Map([
  ['311353', 2.5],
  ['311354', 5],
  ['314076', 10],
  ['314077', 20],
  ['197884', 40],
]);

/** Drugs written only as a hypertension step (never first line), with the conditions they treat (for INDICATIONS). */
export const HYPERTENSION_STEP_UP_DRUGS: readonly { drug: Drug; conditions: readonly string[] }[] = [
  // Lisinopril 20-40 mg is also the target dose in heart failure (AHA/ACC/HFSA 2022) and the
  // maximum tolerated ACE inhibitor dose of KDIGO 2012 in CKD: a patient who has them keeps them
  // as indications when the hypertension step raises the dose.
  { drug: LISINOPRIL_5, conditions: ['hypertension', 'heart_failure', 'chronic_kidney_disease'] },
  { drug: LISINOPRIL_20, conditions: ['hypertension', 'heart_failure', 'chronic_kidney_disease'] },
  { drug: LISINOPRIL_40, conditions: ['hypertension', 'heart_failure', 'chronic_kidney_disease'] },
  { drug: AMLODIPINE_5, conditions: ['hypertension'] },
  { drug: AMLODIPINE_10, conditions: ['hypertension'] },
];

/** ACC/AHA 2017 adult target: systolic below 130 mmHg. */
export const ADULT_SBP_TARGET = 130;

/** Whether a systolic pressure `sbp` measured at `ageYears` is above the treatment goal (see the header). */
export function systolicAboveTarget(sbp: number, ageYears: number): boolean {
  const limit = ageYears >= 13 ? ADULT_SBP_TARGET : ageYears < 6 ? 110 : ageYears < 10 ? 115 : 120;
  return sbp >= limit;
}

/** AAP 2017 Table 19: a child's lisinopril dose is at most 0.6 mg/kg a day and 40 mg. */
export const PAEDIATRIC_LISINOPRIL_MG_PER_KG = 0.6;
export const LISINOPRIL_MAX_MG = 40;

/** The largest daily lisinopril dose (mg) for a child of `weightKg`. */
export function paediatricLisinoprilMaxMg(weightKg: number): number {
  return Math.min(LISINOPRIL_MAX_MG, PAEDIATRIC_LISINOPRIL_MG_PER_KG * weightKg);
}

/**
 * `paediatric-dose-above-max` when a child's lisinopril step (`rxnorm` raised from a lower
 * strength) exceeds 0.6 mg/kg of the weight measured at its visit, or was raised with no weight
 * measured there (the dose is by weight). First prescriptions are not checked: 2.5 mg from 6
 * years is below the maximum of any child of that age.
 */
export function paediatricDoseViolations(rxnorm: string, ageYears: number, isStepUp: boolean, weightKg: number | undefined): string[] {
  const mg = LISINOPRIL_MG.get(rxnorm);
  if (mg === undefined || ageYears >= 18 || !isStepUp) return [];
  if (weightKg === undefined || mg > paediatricLisinoprilMaxMg(weightKg) + 1e-9) return ['paediatric-dose-above-max'];
  return [];
}
