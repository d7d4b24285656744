/**
 * Outpatient antibiotic treatment of community-acquired pneumonia (the schema's one acute
 * condition) as RxNorm clinical drugs, with the dose each patient gets and the rules an acute
 * course keeps. Pure.
 *
 * The rule (one regimen per patient, no choice left to chance):
 * - children from 3 months to 17 years: high-dose amoxicillin, 90 mg/kg/day in 2 doses, at most
 *   4 g/day (Bradley et al., PIDS/IDSA 2011 paediatric CAP guideline, Clin Infect Dis 53:e25,
 *   recommendation 46): 45 mg/kg twice daily as the 400 mg/5 mL suspension under 40 kg, 2 g
 *   (four 500 mg capsules) twice daily from 40 kg. Five days: short courses were non-inferior to
 *   ten in children (CAP-IT, Bielicki et al., JAMA 2021; SCOUT-CAP, Williams et al., JAMA Pediatr
 *   2022).
 * - infants under 3 months are admitted (PIDS/IDSA 2011, recommendation 1: infants 3-6 months and
 *   younger with suspected bacterial CAP benefit from hospitalisation) and treated intravenously
 *   with ampicillin plus gentamicin, the regimen for the youngest infants (the guideline's
 *   alternative is a third-generation cephalosporin): ampicillin 50 mg/kg every 6 hours (PIDS/IDSA
 *   2011 Table: ampicillin 150-200 mg/kg/day every 6 hours for the hospitalised child) and
 *   gentamicin 2.5 mg/kg every 8 hours (gentamicin injection label: neonates and infants,
 *   2.5 mg/kg every 8 hours), 7 days, the whole course in hospital. The admission lasts the course
 *   (clinical/antibiotics.ts YOUNG_INFANT_ADMISSION_DAYS; Encounter class IMP in the record).
 * - adults without comorbidity: amoxicillin 1 g three times daily (Metlay et al., ATS/IDSA 2019
 *   adult CAP guideline, Am J Respir Crit Care Med 200:e45, Table 3).
 * - adults with a comorbidity of that table (chronic heart, lung, liver or renal disease, diabetes,
 *   alcoholism, malignancy, asplenia; the schema holds heart failure, coronary disease, COPD,
 *   asthma as chronic lung disease, CKD and type 2 diabetes): amoxicillin/clavulanate 875/125 mg
 *   twice daily with azithromycin 500 mg on day 1, then 250 mg daily (ATS/IDSA 2019, Table 3).
 * - five days for every regimen (ATS/IDSA 2019: at least 5 days; azithromycin's 5-day course).
 *
 * RxNorm codes and displays (SCD, clinical drug) were checked in two independent public sources
 * each: the VSAC value set "Antibiotic Medications for Pharyngitis" (OID
 * 2.16.840.1.113883.3.464.1003.196.12.1001, eCQM update 2021-05-06; as listed in
 * canvas-medical/canvas-plugins, canvas_sdk/value_set/v2022/medication.py), code with display;
 * and FDA's NDC directory (openFDA drug/ndc, `openfda.rxcui`), whose products of that ingredient,
 * strength and form carry the code: 308189 for amoxicillin 400 mg/5 mL powder for suspension (NDC
 * 68071-1675, 68788-8731), 308191 for amoxicillin 500 mg capsules (NDC 57237-030), 562508 for
 * amoxicillin 875 mg / clavulanate 125 mg tablets (NDC 82804-060, 68788-7531), 308460 for
 * azithromycin 250 mg tablets (NDC 68071-4902, 50090-6436). 308189's display (80 MG/ML, the
 * normalised 400 mg/5 mL) also appears in an RxNav SCD export.
 * The infants' injectables likewise: 1721475 ampicillin 1000 MG Injection (a 1 g vial the dose is
 * drawn from) in VSAC "Antibiotic Medications for Pharyngitis" (2021-05-06 and 2025-05-08) and
 * "Antibiotic Medications for Upper Respiratory Infection" (2.16.840.1.113883.3.464.1003.1190,
 * 2025-05-08), and openFDA NDC 84549-113 (ampicillin sodium 1 g vial, rxcui 1721475 alone);
 * 1870676 "2 ML gentamicin 10 MG/ML Injection" (the paediatric 10 mg/mL vial) in VSAC "Antibiotic
 * Medications for Pharyngitis" (2021-05-06) and openFDA NDC 63323-173 (Fresenius Kabi gentamicin
 * injection, paediatric, 10 mg/mL 2 mL vial, rxcui 1870676 alone). Initial approvals: both predate
 * 1982 (Drugs@FDA lists them "prior to Jan 1, 1982"), so no first year is set.
 */
import type { Drug } from './treatments.ts';

/** Youngest age (years) treated as an outpatient with an oral antibiotic (PIDS/IDSA 2011). */
export const CAP_OUTPATIENT_MIN_YEARS = 0.25;
/** Days of every regimen. */
export const CAP_COURSE_DAYS = 5;
/** An acute course lasts this many days at least and at most (a record outside it is flagged). */
export const ACUTE_COURSE_DAYS: readonly [number, number] = [5, 7];
/** An antibiotic for an episode is written within this many days of its onset. */
export const ACUTE_START_MAX_DAYS = 7;
/** Conditions of the schema ATS/IDSA 2019 counts as comorbidities for outpatient CAP. */
export const CAP_COMORBIDITIES: readonly string[] = [
  'heart_failure',
  'coronary_artery_disease',
  'copd',
  'asthma',
  'chronic_kidney_disease',
  'type2_diabetes',
];
/** Weight (kg) from which a child gets the capsules at the 4 g/day maximum. */
const CAPSULE_FROM_KG = 40;
const MG_PER_KG_PER_DOSE = 45;
const MAX_DOSE_MG = 2000;
const SUSPENSION_MG_PER_ML = 80;

export const AMOXICILLIN_SUSPENSION: Drug = {
  rxnorm: '308189',
  display: 'amoxicillin 80 MG/ML Oral Suspension',
  minAgeYears: CAP_OUTPATIENT_MIN_YEARS,
  maxAgeYears: 18,
  dosage: '45 mg/kg by mouth twice daily (90 mg/kg/day, at most 4 g/day) for 5 days',
  acuteCourseDays: ACUTE_COURSE_DAYS,
  // Initial U.S. Approval 1974 (FDA amoxicillin capsules and oral suspension label).
  availableFromYear: 1974,
};
export const AMOXICILLIN_CAPSULE: Drug = {
  rxnorm: '308191',
  display: 'amoxicillin 500 MG Oral Capsule',
  minAgeYears: CAP_OUTPATIENT_MIN_YEARS,
  dosage: 'By mouth: adults 1 g three times daily, children from 40 kg 2 g twice daily, for 5 days',
  acuteCourseDays: ACUTE_COURSE_DAYS,
  availableFromYear: 1974,
};
export const AMOXICILLIN_CLAVULANATE: Drug = {
  rxnorm: '562508',
  display: 'amoxicillin 875 MG / clavulanate 125 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet by mouth twice daily for 5 days',
  acuteCourseDays: ACUTE_COURSE_DAYS,
};
export const AZITHROMYCIN: Drug = {
  rxnorm: '308460',
  display: 'azithromycin 250 MG Oral Tablet',
  minAgeYears: 18,
  dosage: '500 mg by mouth on day 1, then 250 mg once daily on days 2 to 5',
  acuteCourseDays: ACUTE_COURSE_DAYS,
};

/** Days of the young infant's intravenous course, and of the admission it is given in. */
export const YOUNG_INFANT_COURSE_DAYS = 7;
export const YOUNG_INFANT_ADMISSION_DAYS = YOUNG_INFANT_COURSE_DAYS;
/** An infant course lasts 7 to 10 days (the verifier's bounds for the injectables). */
const INFANT_COURSE_DAYS: readonly [number, number] = [7, 10];

export const AMPICILLIN_IV: Drug = {
  rxnorm: '1721475',
  display: 'ampicillin 1000 MG Injection',
  minAgeYears: 0,
  maxAgeYears: CAP_OUTPATIENT_MIN_YEARS,
  dosage: '50 mg/kg intravenously every 6 hours for 7 days (in hospital)',
  acuteCourseDays: INFANT_COURSE_DAYS,
  route: 'intravenous',
};
export const GENTAMICIN_IV: Drug = {
  rxnorm: '1870676',
  display: '2 ML gentamicin 10 MG/ML Injection',
  minAgeYears: 0,
  maxAgeYears: CAP_OUTPATIENT_MIN_YEARS,
  dosage: '2.5 mg/kg intravenously every 8 hours for 7 days (in hospital)',
  acuteCourseDays: INFANT_COURSE_DAYS,
  route: 'intravenous',
};

/** Acute condition → the drugs its regimens may hold (for the verifier's indications). */
export const ACUTE_TREATMENTS: Readonly<Record<string, { drugs: readonly Drug[]; source: string }>> = {
  pneumonia: {
    drugs: [AMOXICILLIN_SUSPENSION, AMOXICILLIN_CAPSULE, AMOXICILLIN_CLAVULANATE, AZITHROMYCIN, AMPICILLIN_IV, GENTAMICIN_IV],
    source: 'PIDS/IDSA 2011 (children; infants under 3 months admitted, intravenous); ATS/IDSA 2019 (adults, outpatient)',
  },
};

/** One dosing phase of a course: `doseMg` `timesPerDay` times a day for `days` days from day `fromDay`. */
export interface CourseDose {
  doseMg: number;
  timesPerDay: number;
  fromDay: number;
  days: number;
  text: string;
}

export interface Course {
  drug: Drug;
  days: number;
  doses: CourseDose[];
  /** The weight the dose was computed from (children). */
  weightKg?: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Whether pneumonia at `ageYears` is treated in hospital (an infant under 3 months). */
export function pneumoniaAdmitted(ageYears: number): boolean {
  return ageYears < CAP_OUTPATIENT_MIN_YEARS;
}

/**
 * The regimen for community-acquired pneumonia at `ageYears` (children's dose from `weightKg`;
 * adults' regimen by `comorbid`): under 3 months the intravenous course given in hospital, else
 * the outpatient one.
 */
export function pneumoniaCourses(ageYears: number, weightKg: number, comorbid: boolean): Course[] {
  const days = CAP_COURSE_DAYS;
  if (pneumoniaAdmitted(ageYears)) {
    if (!(weightKg > 0)) throw new Error(`pneumoniaCourses: an infant's dose needs a positive weight, got ${weightKg}`);
    const kg = round1(weightKg);
    const d = YOUNG_INFANT_COURSE_DAYS;
    // Doses rounded to 5 mg (ampicillin) and 0.1 mg (gentamicin), as a paediatric pharmacy draws them.
    const amp = Math.round((50 * kg) / 5) * 5;
    const gent = round1(2.5 * kg);
    return [
      {
        drug: AMPICILLIN_IV,
        days: d,
        weightKg: kg,
        doses: [
          {
            doseMg: amp,
            timesPerDay: 4,
            fromDay: 0,
            days: d,
            text: `${amp} mg intravenously every 6 hours for ${d} days (50 mg/kg per dose; weight ${kg} kg)`,
          },
        ],
      },
      {
        drug: GENTAMICIN_IV,
        days: d,
        weightKg: kg,
        doses: [
          {
            doseMg: gent,
            timesPerDay: 3,
            fromDay: 0,
            days: d,
            text: `${gent} mg intravenously every 8 hours for ${d} days (2.5 mg/kg per dose; weight ${kg} kg)`,
          },
        ],
      },
    ];
  }
  if (ageYears < 18) {
    if (!(weightKg > 0)) throw new Error(`pneumoniaCourses: a child's dose needs a positive weight, got ${weightKg}`);
    const kg = round1(weightKg);
    if (kg >= CAPSULE_FROM_KG) {
      const text = `2000 mg (4 capsules) by mouth twice daily for ${days} days (90 mg/kg/day at most 4 g/day; weight ${kg} kg)`;
      return [{ drug: AMOXICILLIN_CAPSULE, days, weightKg: kg, doses: [{ doseMg: MAX_DOSE_MG, timesPerDay: 2, fromDay: 0, days, text }] }];
    }
    // Measured in half millilitres of the 80 mg/mL suspension.
    const ml = Math.max(0.5, Math.round(((MG_PER_KG_PER_DOSE * kg) / SUSPENSION_MG_PER_ML) * 2) / 2);
    const mg = ml * SUSPENSION_MG_PER_ML;
    const text = `${mg} mg (${ml} mL of 400 mg/5 mL) by mouth twice daily for ${days} days (45 mg/kg per dose; weight ${kg} kg)`;
    return [{ drug: AMOXICILLIN_SUSPENSION, days, weightKg: kg, doses: [{ doseMg: mg, timesPerDay: 2, fromDay: 0, days, text }] }];
  }
  if (!comorbid) {
    const text = `1000 mg (2 capsules) by mouth three times daily for ${days} days`;
    return [{ drug: AMOXICILLIN_CAPSULE, days, doses: [{ doseMg: 1000, timesPerDay: 3, fromDay: 0, days, text }] }];
  }
  return [
    {
      drug: AMOXICILLIN_CLAVULANATE,
      days,
      doses: [{ doseMg: 875, timesPerDay: 2, fromDay: 0, days, text: `One tablet (875/125 mg) by mouth twice daily for ${days} days` }],
    },
    {
      drug: AZITHROMYCIN,
      days,
      doses: [
        { doseMg: 500, timesPerDay: 1, fromDay: 0, days: 1, text: '500 mg (2 tablets) by mouth on day 1' },
        { doseMg: 250, timesPerDay: 1, fromDay: 1, days: days - 1, text: `250 mg (1 tablet) by mouth once daily on days 2 to ${days}` },
      ],
    },
  ];
}

/**
 * Ids of the rules an acute course breaks (none for a chronic drug): `antibiotic-course-length`
 * (no course length, or one outside the drug's days), `antibiotic-still-active` (still `active`
 * although the course ended by `untilMs`, the reference date or death), `antibiotic-late`
 * (written more than ACUTE_START_MAX_DAYS after the onset of the episode it treats).
 */
export function acuteCourseViolations(
  drug: Drug,
  status: string | undefined,
  courseDays: number | undefined,
  authoredMs: number,
  reasonOnsetMs: number | undefined,
  untilMs: number,
): string[] {
  const bounds = drug.acuteCourseDays;
  if (!bounds) return [];
  const out: string[] = [];
  if (courseDays === undefined || courseDays < bounds[0] || courseDays > bounds[1]) out.push('antibiotic-course-length');
  else if (status === 'active' && authoredMs + courseDays * 86_400_000 <= untilMs) out.push('antibiotic-still-active');
  if (reasonOnsetMs !== undefined && authoredMs - reasonOnsetMs > (ACUTE_START_MAX_DAYS + 1) * 86_400_000) out.push('antibiotic-late');
  return out;
}
