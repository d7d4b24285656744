/**
 * The measurement that defines each diagnosis, as public diagnostic criteria state it: the visit
 * that makes the diagnosis records it, with a value that meets the definition, unless the
 * Condition states why it cannot (verifier rule `diagnosis-without-defining-lab`). Pure.
 *
 * - type 2 diabetes: HbA1c >= 6.5 % (ADA Standards of Care 2024, section 2);
 * - hyperlipidemia: LDL-C >= 130 mg/dL (NHLBI 2011 paediatric panel: "high"; NCEP ATP III adults:
 *   borderline-high and above, the level from which treatment is considered with risk factors);
 * - chronic kidney disease: eGFR < 60 mL/min/1.73 m² on two occasions at least 90 days apart
 *   (KDIGO 2012: G3a-G5 present for more than 3 months). The schema has no albuminuria, so CKD
 *   G1-G2 (albuminuria with eGFR >= 60) is the stated exception;
 * - obesity: BMI >= 30 kg/m² in adults (WHO); in children BMI-for-age at or above the 95th
 *   percentile (CDC), approximated by the CDC 2000 growth charts' 95th percentiles (boys and
 *   girls averaged, rounded to 0.5): 19 at 2 years, 18 at 4, 18.5 at 6, 20.5 at 8, 22 at 10, 24 at
 *   12, 26 at 14, 27.5 at 16, 29 at 17;
 * - hypertension: systolic >= 130 mmHg from 13 years (ACC/AHA 2017 stage 1; AAP 2017 for
 *   adolescents), in younger children at or above the simplified 95th percentile of ranges.ts
 *   `referenceFlag` (110 under 6, 115 at 6-9, 120 at 10-12).
 */

export interface DefiningLab {
  lab: string;
  /** The value defines the diagnosis at or above `atLeast`, or below `below`, at `ageYears`. */
  limit: (ageYears: number) => { atLeast: number } | { below: number };
  /** Also measured meeting the definition at least this many days before the diagnosis visit. */
  confirmedAfterDays?: number;
  source: string;
}

/** CDC 2000 BMI-for-age ≈ 95th percentiles, [age, BMI] (see the header). */
const CHILD_BMI_P95: readonly (readonly [number, number])[] = [
  [2, 19],
  [4, 18],
  [6, 18.5],
  [8, 20.5],
  [10, 22],
  [12, 24],
  [14, 26],
  [16, 27.5],
  [17, 29],
];

/** The child's BMI 95th percentile at `ageYears`, interpolated (held flat outside 2-17). */
export function childBmiP95(ageYears: number): number {
  const t = CHILD_BMI_P95;
  if (ageYears <= t[0][0]) return t[0][1];
  for (let i = 1; i < t.length; i++)
    if (ageYears <= t[i][0]) {
      const [a0, b0] = t[i - 1];
      const [a1, b1] = t[i];
      return b0 + ((b1 - b0) * (ageYears - a0)) / (a1 - a0);
    }
  return t[t.length - 1][1];
}

export const DEFINING_LABS: Readonly<Record<string, DefiningLab>> = {
  type2_diabetes: { lab: 'hba1c', limit: () => ({ atLeast: 6.5 }), source: 'ADA Standards of Care 2024, section 2' },
  hyperlipidemia: { lab: 'ldl_cholesterol', limit: () => ({ atLeast: 130 }), source: 'NHLBI 2011 expert panel; NCEP ATP III' },
  chronic_kidney_disease: {
    lab: 'egfr',
    limit: () => ({ below: 60 }),
    confirmedAfterDays: 90,
    source: 'KDIGO 2012 CKD guideline (eGFR < 60 for more than 3 months)',
  },
  obesity: {
    lab: 'bmi',
    limit: (a) => ({ atLeast: a >= 18 ? 30 : childBmiP95(a) }),
    source: 'WHO adult BMI classes; CDC BMI-for-age (95th percentile), CDC 2000 growth charts',
  },
  hypertension: {
    lab: 'systolic_bp',
    limit: (a) => ({ atLeast: a >= 13 ? 130 : a < 6 ? 110 : a < 10 ? 115 : 120 }),
    source: 'ACC/AHA 2017 (stage 1 from 130 mmHg); AAP 2017 (>= 95th percentile in children, 130 from 13)',
  },
};

/** Whether `value` of the defining lab meets the definition of `condition` at `ageYears`. */
export function meetsDefinition(condition: string, value: number, ageYears: number): boolean {
  const d = DEFINING_LABS[condition];
  if (!d) return true;
  const l = d.limit(ageYears);
  return 'atLeast' in l ? value >= l.atLeast : value < l.below;
}

/** The start of every stated reason a Condition gives (Condition.note) for a defining lab not recorded. */
export const DEFINING_LAB_REASON = 'Defining result not in this record';

/**
 * `diagnosis-without-defining-lab` unless a value meeting the definition was measured at the
 * diagnosis visit (`atVisit`: values with their time) and, where the definition needs two
 * occasions, another one `confirmedAfterDays` or more before it (`earlier`: every value of the lab
 * in the record with its time), or the Condition states why not (`statedReason`).
 */
export function definingLabViolations(
  condition: string,
  ageYears: number,
  atVisit: readonly { value: number; ms: number }[],
  earlier: readonly { value: number; ms: number }[],
  statedReason: boolean,
): string[] {
  const d = DEFINING_LABS[condition];
  if (!d || statedReason) return [];
  const DAY_MS = 86_400_000;
  const ok = atVisit.some(
    (v) =>
      meetsDefinition(condition, v.value, ageYears) &&
      (d.confirmedAfterDays === undefined ||
        earlier.some((e) => e.ms <= v.ms - d.confirmedAfterDays! * DAY_MS && meetsDefinition(condition, e.value, ageYears))),
  );
  return ok ? [] : ['diagnosis-without-defining-lab'];
}
