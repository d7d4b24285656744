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
