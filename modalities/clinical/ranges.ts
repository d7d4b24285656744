/**
 * Physiological ranges of the schema's labs and vitals by age, and the lab–condition rules that
 * tie a value to a diagnosis. A value outside its age's range is not a patient (an adult with a
 * BMI of 10, a child with a systolic pressure of 233); a value that meets a diagnostic definition
 * needs the diagnosis. Simplified from public references (sources beside each table). Pure.
 */
import { BMI_FOR_AGE_YEARS, bmiForAgeP95, bmiForAgeP95OverYear } from './growth.ts';

/** Plausible [lo, hi] of a lab from `fromYears` of age until the next row. */
export interface AgeRange {
  fromYears: number;
  lo: number;
  hi: number;
}

export interface LabKnowledge {
  byAge: readonly AgeRange[];
  /** Scale of the tail drawn beyond an open bin edge (values thin out exponentially). */
  tailScale: number;
  /** Youngest age at which the measurement is routine. */
  measuredFromYears: number;
  /** Typical value of a person without the related condition (the baseline of a course). */
  baseline: (ageYears: number) => number;
  /** Visit-to-visit variation (one standard deviation). */
  sd: number;
  sources: readonly string[];
}

export const LABS: Readonly<Record<string, LabKnowledge>> = {
  systolic_bp: {
    // AAP 2017 tables (simplified): the 50th percentile rises from ~85 mmHg at age 1 to ~110 at 13;
    // stage-2 thresholds are far below 233. Adults: NHANES range.
    byAge: [
      { fromYears: 0, lo: 60, hi: 120 },
      { fromYears: 1, lo: 70, hi: 135 },
      { fromYears: 6, lo: 75, hi: 150 },
      { fromYears: 13, lo: 80, hi: 175 },
      { fromYears: 18, lo: 80, hi: 230 },
    ],
    tailScale: 10,
    measuredFromYears: 3,
    baseline: (a) => (a < 13 ? 90 + 1.5 * a : a < 18 ? 110 : 112 + 0.35 * (a - 18)),
    sd: 7,
    sources: ['AAP 2017 Clinical Practice Guideline, Tables 4-5 (BP percentiles by age)', 'ACC/AHA 2017 Hypertension Guideline'],
  },
  bmi: {
    // CDC BMI-for-age growth charts (2-20 years: 5th-95th percentiles ~13.5-30 by age); adult WHO
    // classes; under 2, WHO weight-for-length (BMI ~ 11-21).
    byAge: [
      { fromYears: 0, lo: 10.5, hi: 22 },
      { fromYears: 2, lo: 12, hi: 30 },
      { fromYears: 6, lo: 12.5, hi: 38 },
      { fromYears: 12, lo: 14, hi: 48 },
      { fromYears: 18, lo: 15, hi: 65 },
    ],
    tailScale: 3,
    measuredFromYears: 2,
    baseline: (a) => (a < 2 ? 17 : a < 6 ? 16 : a < 12 ? 17 + 0.3 * (a - 6) : a < 18 ? 19 + 0.5 * (a - 12) : 25),
    sd: 0.6,
    sources: ['CDC 2000 growth charts, BMI-for-age', 'WHO child growth standards (weight-for-length)', 'WHO adult BMI classes'],
  },
  hba1c: {
    // ADA: 5.7-6.4 % prediabetes, >= 6.5 % diabetes; values under 4 % or over 14 % are rare
    // (haemoglobinopathy, assay limits).
    byAge: [{ fromYears: 0, lo: 4, hi: 14 }],
    tailScale: 0.8,
    measuredFromYears: 0,
    baseline: () => 5.3,
    sd: 0.15,
    sources: ['ADA Standards of Care in Diabetes, section 2 (diagnosis)'],
  },
  ldl_cholesterol: {
    // NHLBI 2011: paediatric LDL acceptable < 110, high >= 130 mg/dL; FH over 190. Adults:
    // NCEP ATP III categories.
    byAge: [
      { fromYears: 0, lo: 30, hi: 250 },
      { fromYears: 18, lo: 30, hi: 320 },
    ],
    tailScale: 20,
    measuredFromYears: 2,
    baseline: (a) => (a < 18 ? 95 : 105 + 0.4 * (a - 18)),
    sd: 10,
    sources: ['NHLBI Expert Panel (2011), lipid cut points', 'NCEP ATP III'],
  },
  egfr: {
    // KDIGO 2012 categories G1-G5; eGFR falls ~1 mL/min/1.73 m2 a year after 40. Children:
    // bedside Schwartz (CKiD, 2009).
    byAge: [
      { fromYears: 0, lo: 5, hi: 150 },
      { fromYears: 18, lo: 5, hi: 135 },
    ],
    tailScale: 12,
    measuredFromYears: 1,
    baseline: (a) => (a < 18 ? 110 : Math.max(60, 115 - 0.9 * Math.max(0, a - 30))),
    sd: 4,
    sources: ['KDIGO 2012 CKD guideline', 'Schwartz et al., JASN 20:629 (2009), bedside formula'],
  },
};

/** The plausible range of `lab` at `ageYears` (undefined when the base does not know the lab). */
export function labRange(lab: string, ageYears: number): [number, number] | undefined {
  const k = LABS[lab];
  if (!k) return undefined;
  let r = k.byAge[0];
  for (const x of k.byAge) if (ageYears >= x.fromYears) r = x;
  return [r.lo, r.hi];
}

/**
 * Lab values that need (or exclude) a diagnosis: a value in [lo, hi) requires one of `requires`,
 * or none of `forbids`. `adultsOnly` rules hold from 18 (children's BMI is read by percentile).
 */
export interface LabConditionRule {
  id: string;
  lab: string;
  range: [number, number];
  requires?: readonly string[];
  forbids?: readonly string[];
  adultsOnly?: boolean;
  source: string;
}

export const LAB_CONDITION_RULES: readonly LabConditionRule[] = [
  {
    id: 'hba1c>=6.5-without-diabetes',
    lab: 'hba1c',
    range: [6.5, Infinity],
    requires: ['type2_diabetes', 'type1_diabetes', 'diabetes'],
    source: 'ADA: HbA1c >= 6.5 % is diagnostic of diabetes',
  },
  {
    id: 'egfr<60-without-ckd',
    lab: 'egfr',
    range: [-Infinity, 60],
    requires: ['chronic_kidney_disease'],
    source: 'KDIGO 2012: eGFR < 60 for > 3 months is CKD (G3a-G5)',
  },
  {
    id: 'bmi>=35-without-obesity',
    lab: 'bmi',
    range: [35, Infinity],
    requires: ['obesity'],
    // From age 2 too: CDC defines severe obesity in children as BMI >= 120 % of the 95th
    // percentile for age or >= 35 (under 2 the range ends below 35).
    source: 'WHO: adult BMI >= 30 is obesity (>= 35 class II); CDC BMI-for-age: a child with BMI >= 35 has severe obesity',
  },
  {
    id: 'obesity-with-bmi<25',
    lab: 'bmi',
    range: [-Infinity, 25],
    forbids: ['obesity'],
    adultsOnly: true,
    source: 'WHO: adult BMI < 25 is not obesity',
  },
  {
    id: 'hypertension-with-sbp<90',
    lab: 'systolic_bp',
    range: [-Infinity, 90],
    forbids: ['hypertension'],
    source: 'ACC/AHA 2017: antihypertensives are withheld under 90-100 mmHg systolic (hypotension)',
  },
];

/**
 * A child's BMI at or above the CDC 95th percentile for age and sex is obesity (CDC, "Defining
 * Childhood Weight Status", ages 2-19): such a value needs the diagnosis. Read by the two functions
 * below when the patient's sex is known (the adult rules above hold for every sex).
 */
export const CHILD_BMI_RULE = {
  id: 'bmi-for-age>=p95-without-obesity',
  source: 'CDC 2000 BMI-for-age growth charts: obesity is BMI >= 95th percentile for age and sex (2-19 years)',
} as const;

/** Ids of the lab–condition rules one measured value breaks, given the conditions held at that time (and the sex, for children's BMI-for-age). */
export function labConditionViolations(
  lab: string,
  value: number,
  ageYears: number,
  has: (condition: string) => boolean,
  sex?: string,
): string[] {
  const out: string[] = [];
  if (lab === 'bmi' && ageYears >= BMI_FOR_AGE_YEARS[0] && ageYears < BMI_FOR_AGE_YEARS[1] && !has('obesity')) {
    const p95 = bmiForAgeP95(ageYears, sex);
    if (p95 !== undefined && value >= p95) out.push(CHILD_BMI_RULE.id);
  }
  for (const r of LAB_CONDITION_RULES) {
    if (r.lab !== lab || value < r.range[0] || value >= r.range[1]) continue;
    if (r.adultsOnly && ageYears < 18) continue;
    const any = (r.requires ?? r.forbids ?? []).some(has);
    if (r.requires ? !any : any) out.push(r.id);
  }
  return out;
}

/**
 * The range a value of `lab` may take at `ageYears` for a patient with the given conditions: the
 * age's physiological range narrowed by every lab–condition rule the value could otherwise break.
 * Undefined (empty) when nothing fits.
 */
export function consistentRange(
  lab: string,
  ageYears: number,
  has: (condition: string) => boolean,
  sex?: string,
): [number, number] | undefined {
  const r = labRange(lab, ageYears);
  if (!r) return undefined;
  let [lo, hi] = r;
  // A child without obesity stays under the 95th percentile over the whole year of age (the
  // verifier reads the percentile at the exact age; from 2 to 5 it falls with age).
  if (lab === 'bmi' && ageYears >= BMI_FOR_AGE_YEARS[0] && ageYears < BMI_FOR_AGE_YEARS[1] && !has('obesity')) {
    const p95 = bmiForAgeP95OverYear(Math.floor(ageYears), sex);
    if (p95 !== undefined) hi = Math.min(hi, p95 - 1e-9);
  }
  for (const rule of LAB_CONDITION_RULES) {
    if (rule.lab !== lab || (rule.adultsOnly && ageYears < 18)) continue;
    const any = (rule.requires ?? rule.forbids ?? []).some(has);
    if (rule.requires ? any : !any) continue;
    // The offending interval is excluded; rules are one-sided, so the rest stays an interval.
    if (rule.range[0] === -Infinity) lo = Math.max(lo, rule.range[1]);
    else hi = Math.min(hi, rule.range[0] - 1e-9);
  }
  return hi >= lo ? [lo, hi] : undefined;
}

/**
 * A value's flag against public reference limits at an age, for a note's (high)/(low): adult cut
 * points (ADA, NCEP, ACC/AHA, WHO, KDIGO); for children the paediatric ones (AAP 2017: systolic at
 * or above the ~95th percentile for age, simplified to 110 under 6, 115 at 6-9, 120 at 10-12, 130
 * from 13; NHLBI 2011: LDL >= 130 high) and no BMI flag (children's BMI is read by percentile for
 * age and sex, which the schema's BMI alone cannot give). Undefined: no flag.
 */
export function referenceFlag(lab: string, value: number, ageYears: number): 'low' | 'normal' | 'high' | undefined {
  const child = ageYears < 18;
  let low: number | undefined;
  let high: number | undefined;
  switch (lab) {
    case 'hba1c':
      high = 6.5;
      break;
    case 'ldl_cholesterol':
      high = child ? 130 : 160;
      break;
    case 'systolic_bp':
      high = !child ? 140 : ageYears < 6 ? 110 : ageYears < 10 ? 115 : ageYears < 13 ? 120 : 130;
      break;
    case 'bmi':
      if (child) return undefined;
      low = 18.5;
      high = 30;
      break;
    case 'egfr':
      low = 60;
      break;
    default:
      return undefined;
  }
  return high !== undefined && value >= high ? 'high' : low !== undefined && value < low ? 'low' : 'normal';
}

/**
 * HbA1c kinetics: it moves towards the level the current glycaemia sustains with about half of the
 * change in 30 days (ADA Standards of Care, section 6: the preceding 30 days contribute about 50 %
 * of HbA1c; red cells live about 120 days), and no sustained level is below HBA1C_FLOOR (the
 * range's lower limit). From `fromValue`, `days` later it cannot be below this.
 */
export const HBA1C_FLOOR = 4;
export const HBA1C_HALF_DAYS = 30;
/** Measurement noise allowed on top of the kinetic bound (two values' visit-to-visit variation). */
export const HBA1C_FALL_SLACK = 0.5;
export function lowestHba1cAfter(fromValue: number, days: number): number {
  return HBA1C_FLOOR + (fromValue - HBA1C_FLOOR) * 0.5 ** (Math.max(0, days) / HBA1C_HALF_DAYS);
}
/** The highest earlier value from which `toValue` could be reached `days` later (the inverse of lowestHba1cAfter). */
export function highestHba1cBefore(toValue: number, days: number): number {
  return HBA1C_FLOOR + (toValue - HBA1C_FLOOR) * 2 ** (Math.max(0, days) / HBA1C_HALF_DAYS);
}

/**
 * `hba1c-falls-too-fast` for each HbA1c value (index into `values`) lower than the kinetics allow
 * after the value measured before it, with HBA1C_FALL_SLACK for measurement noise. `values` in any
 * order; each is compared with the latest one before it.
 */
export function hba1cKineticsViolations(values: readonly { value: number; ms: number }[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a].ms - values[b].ms);
  const out: number[] = [];
  for (let k = 1; k < order.length; k++) {
    const prev = values[order[k - 1]];
    const cur = values[order[k]];
    if (cur.value < lowestHba1cAfter(prev.value, (cur.ms - prev.ms) / 86_400_000) - HBA1C_FALL_SLACK) out.push(order[k]);
  }
  return out;
}
