/**
 * Children's height by age and sex (simplified CDC 2000 growth-chart medians) and the bedside
 * Schwartz eGFR (CKiD, Schwartz et al. 2009: eGFR = 0.413 × height cm / serum creatinine mg/dL),
 * the paediatric formula adult CKD-EPI must not replace. Pure.
 */

/** Median height (cm) at `ageYears` (0-20), CDC 2000 stature/length-for-age 50th percentiles, interpolated. */
const HEIGHT_MEDIAN: Record<'male' | 'female', readonly (readonly [number, number])[]> = {
  male: [
    [0, 50],
    [1, 76],
    [2, 87],
    [4, 103],
    [6, 116],
    [8, 128],
    [10, 138],
    [12, 149],
    [14, 164],
    [16, 174],
    [18, 176],
    [20, 177],
  ],
  female: [
    [0, 49],
    [1, 74],
    [2, 86],
    [4, 102],
    [6, 115],
    [8, 127],
    [10, 138],
    [12, 151],
    [14, 160],
    [16, 162],
    [18, 163],
    [20, 163],
  ],
};

export function medianHeightCm(ageYears: number, sex: string): number {
  const t = HEIGHT_MEDIAN[sex === 'male' ? 'male' : 'female'];
  if (ageYears <= t[0][0]) return t[0][1];
  for (let i = 1; i < t.length; i++) {
    const [a1, h1] = t[i];
    const [a0, h0] = t[i - 1];
    if (ageYears <= a1) return h0 + ((ageYears - a0) / (a1 - a0)) * (h1 - h0);
  }
  return t[t.length - 1][1];
}

/** Bedside Schwartz eGFR (mL/min/1.73 m2). */
export function bedsideSchwartz(heightCm: number, creatinineMgDl: number): number {
  if (!(heightCm > 0) || !(creatinineMgDl > 0)) throw new Error(`bedside Schwartz needs a positive height and creatinine`);
  return (0.413 * heightCm) / creatinineMgDl;
}

/** The serum creatinine (mg/dL) that gives `egfr` by the bedside formula at `heightCm`. */
export function creatinineForSchwartz(heightCm: number, egfr: number): number {
  if (!(heightCm > 0) || !(egfr > 0)) throw new Error(`creatinine for Schwartz needs a positive height and eGFR`);
  return (0.413 * heightCm) / egfr;
}

/** Age below which patients are children for the knowledge base (paediatric formulas and wording). */
export const ADULT_YEARS = 18;

/**
 * The 95th percentile of BMI-for-age (kg/m²) at whole years 2-20, CDC 2000 growth charts
 * (bmiagerev.csv, rounded to 0.1; the file's own P95 column at 24 months for boys is 19.34, at
 * 120.5 months for girls 22.98, at 216.5 months for boys 28.96 — the rows this table was checked
 * against). CDC defines obesity in children and adolescents aged 2-19 as a BMI at or above this
 * percentile for age and sex ("Defining Childhood Weight Status"; severe obesity from 120 % of it).
 */
const BMI_P95: Record<'male' | 'female', readonly number[]> = {
  //     2     3     4     5     6     7     8     9    10    11    12    13    14    15    16    17    18    19    20
  male: [19.3, 18.2, 17.8, 17.9, 18.4, 19.1, 20.0, 21.0, 22.0, 23.2, 24.2, 25.1, 26.0, 26.8, 27.5, 28.2, 28.9, 29.7, 30.6],
  female: [19.1, 18.3, 18.0, 18.3, 18.8, 19.7, 20.6, 21.8, 22.9, 24.1, 25.2, 26.2, 27.2, 28.1, 28.9, 29.6, 30.3, 31.0, 31.8],
};
/** Ages (years) over which children's BMI is read against BMI-for-age percentiles. */
export const BMI_FOR_AGE_YEARS: readonly [number, number] = [2, 18];

/** The CDC 95th percentile of BMI at `ageYears` (2-20, linear between whole years) for `sex`; undefined outside 2-20 or for an unknown sex. */
export function bmiForAgeP95(ageYears: number, sex: string | undefined): number | undefined {
  if (sex !== 'male' && sex !== 'female') return undefined;
  if (!(ageYears >= 2 && ageYears <= 20)) return undefined;
  const t = BMI_P95[sex];
  const i = Math.min(t.length - 2, Math.floor(ageYears - 2));
  const f = ageYears - 2 - i;
  return t[i] + f * (t[i + 1] - t[i]);
}

/** The lowest 95th percentile over the year of age [ageYears, ageYears + 1) (linear pieces: an end point). */
export function bmiForAgeP95OverYear(wholeYears: number, sex: string | undefined): number | undefined {
  const a = bmiForAgeP95(wholeYears, sex);
  const b = bmiForAgeP95(Math.min(20, wholeYears + 1), sex);
  return a === undefined ? undefined : b === undefined ? a : Math.min(a, b);
}
