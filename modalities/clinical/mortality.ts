/**
 * Mortality, for schemas without a death attribute: the chance that a patient of a given age and
 * set of conditions died in the year before the reference date (`DEATH_WINDOW_YEARS`), from
 * public figures. The cohort decoder (fhir/timeline.ts) ends such a life at a death inside the window;
 * the sites' encoder then reads the age at death (fhir/encode.ts), which is the sampled age.
 *
 * - Baseline: a Gompertz hazard h(age) = 4·10⁻⁵ · e^(0.09·age) per year, fitted by eye to the US
 *   life tables 2019 (CDC NVSR 70-19, both sexes: q(40) ≈ 0.0019, q(65) ≈ 0.015, q(80) ≈ 0.051,
 *   q(90) ≈ 0.15; the fit gives 0.0015, 0.014, 0.054, 0.13). Infant mortality (≈ 0.0056 in the
 *   first year) is added below age 1.
 * - Hazard ratios of the schemas' chronic conditions, multiplied (a simplification: no
 *   interaction terms): heart failure 3 (5-year survival ≈ 55 %, Taylor et al., BMJ 2019;
 *   364:l223), COPD 2 (Mannino et al., Eur Respir J 2006), chronic kidney disease 2 (Go et al.,
 *   NEJM 2004; 351:1296, eGFR 30–44), coronary artery disease 1.5, type 2 diabetes 1.5
 *   (Emerging Risk Factors Collaboration, NEJM 2011; 364:829), pneumonia 1.5 (the acute episode).
 */

/** A decoded life may end in death this many years before the reference date at most. */
export const DEATH_WINDOW_YEARS = 1;

/** Hazard ratios of death per condition (schema attribute names). */
export const MORTALITY_HAZARD_RATIOS: Record<string, number> = {
  heart_failure: 3,
  copd: 2,
  chronic_kidney_disease: 2,
  coronary_artery_disease: 1.5,
  type2_diabetes: 1.5,
  pneumonia: 1.5,
};

/** Baseline hazard of death per year at `ageYears` (Gompertz, plus infant mortality under 1). */
export function annualMortality(ageYears: number): number {
  const gompertz = 4e-5 * Math.exp(0.09 * Math.max(0, ageYears));
  return gompertz + (ageYears < 1 ? 0.0056 : 0);
}

/**
 * The probability of death within `windowYears` for a patient of `ageYears` with `conditions`:
 * 1 − exp(−h·HR·window), the hazard held at the patient's age over the window.
 */
export function deathProbability(ageYears: number, conditions: readonly string[], windowYears: number): number {
  if (!(windowYears > 0)) return 0;
  let hr = 1;
  for (const c of conditions) hr *= MORTALITY_HAZARD_RATIOS[c] ?? 1;
  return 1 - Math.exp(-annualMortality(ageYears) * hr * windowYears);
}
