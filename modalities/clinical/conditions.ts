/**
 * Public knowledge about the schema's conditions: the youngest and oldest age at which each is
 * diagnosed, how diagnoses spread over a life (a piecewise-constant density of onset per year of
 * age), whether it is chronic or acute, and which sex it is restricted to. Facts, not data: every
 * number is read from a public source named beside it (docs/modalities.md, "Clinical knowledge
 * base", lists them with links). Pure.
 */

export interface ConditionKnowledge {
  /** Youngest age (years) at which a diagnosis is plausible. */
  minOnsetYears: number;
  /** Oldest age at onset, when there is one. */
  maxOnsetYears?: number;
  /**
   * Relative onset rate per year of age: `[fromAge, weight]` breakpoints, each weight holding
   * until the next breakpoint (the last one to any age). Only ratios matter.
   */
  onsetDensity: readonly (readonly [number, number])[];
  /** Acute conditions are diagnosed days before the visit that records them. */
  course: 'chronic' | 'acute';
  /**
   * An acute episode's time to resolution, [shortest, longest] days after onset: the Condition is
   * `resolved` from then (abatementDateTime) once the record's end is past it.
   */
  resolvesInDays?: readonly [number, number];
  /** Diagnosed only in this sex (FHIR administrative gender). */
  sex?: 'male' | 'female';
  sources: readonly string[];
}

export const CONDITIONS: Readonly<Record<string, ConditionKnowledge>> = {
  hypertension: {
    // AAP 2017 guideline defines paediatric hypertension from age 1 (prevalence ~3.5 %); NHANES
    // 2017-2018 adult prevalence 22 % (18-39), 55 % (40-59), 75 % (60+). AAP 2017 (section 6):
    // primary hypertension is the predominant cause from about 6 years; before, hypertension is
    // rarer and mostly secondary (coded so: clinical/hypertension.ts), hence a fifth of the rate.
    minOnsetYears: 1,
    onsetDensity: [
      [1, 0.01],
      [6, 0.05],
      [12, 0.15],
      [18, 0.6],
      [30, 1.5],
      [40, 2.5],
      [50, 3],
      [65, 2.5],
      [80, 1.5],
    ],
    course: 'chronic',
    sources: [
      'AAP 2017 Clinical Practice Guideline (Flynn et al., Pediatrics 140:e20171904)',
      'CDC NCHS Data Brief 364 (NHANES 2017-2018)',
    ],
  },
  type2_diabetes: {
    // ADA Standards of Care: youth type 2 diabetes is screened from age 10 (or puberty); CDC
    // National Diabetes Statistics Report: new cases peak at 45-64.
    minOnsetYears: 10,
    onsetDensity: [
      [10, 0.1],
      [18, 0.5],
      [30, 1],
      [45, 2.5],
      [65, 1.8],
      [80, 1],
    ],
    course: 'chronic',
    sources: ['ADA Standards of Care in Diabetes, section 14 (children and adolescents)', 'CDC National Diabetes Statistics Report'],
  },
  hyperlipidemia: {
    // NHLBI 2011 expert panel: selective lipid screening from age 2 (familial hypercholesterolaemia),
    // universal at 9-11; NHANES: high cholesterol rises with age to 55-74.
    minOnsetYears: 2,
    onsetDensity: [
      [2, 0.05],
      [9, 0.1],
      [18, 0.5],
      [30, 1],
      [40, 2],
      [55, 2.5],
      [70, 1.5],
    ],
    course: 'chronic',
    sources: ['NHLBI Expert Panel on Cardiovascular Health and Risk Reduction in Children (2011)', 'CDC NCHS Data Brief 363 (NHANES)'],
  },
  coronary_artery_disease: {
    // AHA Heart Disease and Stroke Statistics: incidence rises steeply after 45; mean age at a
    // first myocardial infarction 65.6 (men) and 72.0 (women). Atherosclerotic disease before 18 is
    // not a diagnosis of general practice.
    minOnsetYears: 18,
    onsetDensity: [
      [18, 0.02],
      [35, 0.2],
      [45, 1],
      [55, 2],
      [65, 3],
      [75, 3.5],
    ],
    course: 'chronic',
    sources: ['AHA Heart Disease and Stroke Statistics 2023 Update', 'Synthea module coronary_heart_disease (onset ages)'],
  },
  heart_failure: {
    // Paediatric heart failure (congenital disease, cardiomyopathy) is rare; AHA: incidence about
    // 20 per 1,000 a year at 65+ and doubling per decade after.
    minOnsetYears: 0,
    onsetDensity: [
      [0, 0.01],
      [18, 0.05],
      [40, 0.3],
      [55, 1],
      [65, 2.5],
      [75, 4],
    ],
    course: 'chronic',
    sources: ['AHA Heart Disease and Stroke Statistics 2023 Update', 'Synthea module congestive_heart_failure'],
  },
  asthma: {
    // GINA: most asthma begins in childhood; wheeze before age 1 is rarely labelled asthma. CDC:
    // current asthma 5.8 % of children, 8 % of adults.
    minOnsetYears: 1,
    onsetDensity: [
      [1, 2],
      [5, 3],
      [12, 1.5],
      [18, 0.6],
      [40, 0.5],
      [65, 0.4],
    ],
    course: 'chronic',
    sources: ['GINA Global Strategy for Asthma Management 2023', 'CDC Most Recent National Asthma Data', 'Synthea module asthma'],
  },
  copd: {
    // GOLD: COPD presents in mid-life after decades of exposure; not diagnosed in children.
    minOnsetYears: 18,
    onsetDensity: [
      [18, 0.02],
      [30, 0.1],
      [40, 1],
      [55, 2.5],
      [65, 3],
      [80, 2],
    ],
    course: 'chronic',
    sources: ['GOLD 2024 Report', 'CDC BRFSS COPD prevalence by age', 'Synthea module copd'],
  },
  pneumonia: {
    // Community-acquired pneumonia occurs at every age; it is an acute episode recorded at the
    // visit that treats or follows it up.
    minOnsetYears: 0,
    onsetDensity: [[0, 1]],
    course: 'acute',
    // NICE NG138 / CG191 recovery timescales told to patients: fever gone by 1 week, chest pain and
    // sputum substantially reduced by 4 weeks, cough and breathlessness by 6 weeks, most symptoms
    // resolved by 3 months (NHS: a GP follow-up at about 6 weeks). The episode is closed 4-6 weeks
    // after onset; still open 3 months after it is stale (ACUTE_STALE_DAYS).
    resolvesInDays: [28, 42],
    sources: ['NICE NG138 (pneumonia, community-acquired)', 'Synthea module pneumonia'],
  },
  obesity: {
    // CDC: BMI-for-age defines obesity from age 2 (>= 95th percentile); NHANES 2017-2020
    // prevalence 19.7 % (2-19), 39.8 % (20-39), 44.3 % (40-59), 41.5 % (60+).
    minOnsetYears: 2,
    onsetDensity: [
      [2, 0.5],
      [6, 1],
      [18, 1],
      [30, 1.2],
      [45, 1],
      [65, 0.5],
    ],
    course: 'chronic',
    sources: ['CDC Defining Childhood Weight Status (BMI-for-age)', 'CDC NHANES 2017-March 2020 obesity prevalence'],
  },
  chronic_kidney_disease: {
    // CDC Chronic Kidney Disease in the US 2023: prevalence 6 % (18-44), 12 % (45-64), 34 % (65+);
    // paediatric CKD is rare (congenital anomalies).
    minOnsetYears: 0,
    onsetDensity: [
      [0, 0.02],
      [18, 0.1],
      [40, 0.5],
      [60, 2],
      [70, 3.5],
      [80, 4],
    ],
    course: 'chronic',
    sources: ['CDC Chronic Kidney Disease in the United States, 2023', 'KDIGO 2012 CKD guideline', 'Synthea module chronic_kidney_disease'],
  },
};

/** NICE NG138: most symptoms of pneumonia have resolved by 3 months; an episode still active later is stale. */
export const ACUTE_STALE_DAYS = 90;

/**
 * Sex-restricted conditions (any schema may name them; "other"/"unknown" sex never conflicts).
 * Anatomy, not statistics.
 */
export const SEX_SPECIFIC: Readonly<Record<string, 'male' | 'female'>> = {
  prostate_cancer: 'male',
  benign_prostatic_hyperplasia: 'male',
  testicular_cancer: 'male',
  erectile_dysfunction: 'male',
  pregnancy: 'female',
  cervical_cancer: 'female',
  ovarian_cancer: 'female',
  endometriosis: 'female',
  preeclampsia: 'female',
  gestational_diabetes: 'female',
  polycystic_ovary_syndrome: 'female',
};

/** Minimum ages of conditions outside the table above's schema (other schemas may name them). */
const EXTRA_MIN_AGE: Readonly<Record<string, number>> = { prostate_cancer: 18, benign_prostatic_hyperplasia: 30 };

/** Youngest plausible onset age of a condition (0 when the knowledge base does not know it). */
export function minOnsetYears(name: string): number {
  return CONDITIONS[name]?.minOnsetYears ?? EXTRA_MIN_AGE[name] ?? 0;
}

/** Oldest plausible onset age (Infinity when none). */
export function maxOnsetYears(name: string): number {
  return CONDITIONS[name]?.maxOnsetYears ?? Infinity;
}

/**
 * An onset age (fractional years) drawn from the condition's onset density restricted to
 * [its minimum, `upperYears`]: conditional on the age the patient has reached. `u1`, `u2` are
 * uniform in [0, 1). Throws when the interval is empty (the caller chose an impossible age).
 */
export function drawOnsetYears(name: string, upperYears: number, u1: number, u2: number): number {
  const k = CONDITIONS[name];
  const lo = minOnsetYears(name);
  const hi = Math.min(upperYears, maxOnsetYears(name));
  if (!(hi >= lo)) throw new Error(`onset of ${name}: no age in [${lo}, ${upperYears}] is plausible`);
  const density = k?.onsetDensity ?? [[0, 1]];
  const segments: [number, number, number][] = [];
  let total = 0;
  for (let i = 0; i < density.length; i++) {
    const a = Math.max(lo, density[i][0]);
    const b = Math.min(hi, i + 1 < density.length ? density[i + 1][0] : Infinity);
    if (b <= a) continue;
    const mass = (b - a) * density[i][1];
    segments.push([a, b, mass]);
    total += mass;
  }
  if (total <= 0) return lo + u2 * (hi - lo);
  let target = u1 * total;
  for (const [a, b, mass] of segments) {
    if (target < mass) return a + (target / mass) * (b - a);
    target -= mass;
  }
  const [a, b] = segments[segments.length - 1];
  return a + u2 * (b - a);
}
