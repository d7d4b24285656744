/**
 * First-line drug treatment of the schema's chronic conditions as RxNorm clinical drugs, and the
 * drug–condition rules a record must keep (every prescription has an indication the patient has,
 * written on or after its diagnosis, at an age the drug is used at). Codes were checked against
 * Synthea's public modules (asthma.json, medications/statin.json, acs_arrival_medications.json)
 * and Synthea's wiki (metformin); guidance from the sources named per entry. Pure.
 */

import { ACUTE_TREATMENTS } from './antibiotics.ts';
import { ASPIRIN_81, ATORVASTATIN_40, FUROSEMIDE_40, METOPROLOL_SUCCINATE_25, STEP_UP_DRUGS } from './chronic-drugs.ts';
import { HYPERTENSION_STEP_UP_DRUGS } from './hypertension.ts';

export const RXNORM_SYSTEM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

export interface Drug {
  rxnorm: string;
  display: string;
  /** Youngest age (years) the drug is prescribed at for this indication. */
  minAgeYears: number;
  /**
   * A paediatric strength: prescribed before this age only; at it the adult strength of the same
   * indication replaces it (the child's prescription is then stopped).
   */
  maxAgeYears?: number;
  /** Taken as needed (relievers) rather than daily. */
  asNeeded?: boolean;
  dosage: string;
  /** An acute course (antibiotics.ts): its shortest and longest plausible length in days. */
  acuteCourseDays?: readonly [number, number];
  /**
   * First year the drug could be prescribed (its ingredient's "Initial U.S. Approval" in the FDA
   * label's highlights): a diagnosis made before it is treated from then on.
   */
  availableFromYear?: number;
  /** Not started below this eGFR (mL/min/1.73 m²; the label's renal limit), for drugs written as a step up. */
  minEgfr?: number;
  /** How it is given, when not by mouth (or inhaled, as its display says): intravenous injectables are hospital drugs. */
  route?: 'intravenous';
}

export const METFORMIN: Drug = {
  rxnorm: '860975',
  display: '24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet',
  minAgeYears: 10,
  dosage: 'One tablet by mouth once daily with the evening meal',
  // Initial U.S. Approval 1995: FDA labels of metformin extended-release tablets (Mylan, Leading Pharma SPLs).
  availableFromYear: 1995,
};
// Children start at 0.07 mg/kg once daily (up to 5 mg; AAP 2017, Table 19): 2.5 mg, not the
// adult 10 mg, from age 6 (lisinopril's paediatric labelling).
export const LISINOPRIL_PAEDIATRIC: Drug = {
  rxnorm: '311353',
  display: 'lisinopril 2.5 MG Oral Tablet',
  minAgeYears: 6,
  maxAgeYears: 18,
  dosage: 'One tablet by mouth once daily',
  // Initial U.S. Approval 1988: DailyMed lisinopril tablets label.
  availableFromYear: 1988,
};
// Started at 18 (ADULT_ACE_START below); a child's titration may reach it by weight (AAP 2017,
// clinical/hypertension.ts), so the drug itself is used from 6.
export const LISINOPRIL: Drug = {
  rxnorm: '314076',
  display: 'lisinopril 10 MG Oral Tablet',
  minAgeYears: 6,
  dosage: 'One tablet by mouth once daily',
  // Initial U.S. Approval 1988: DailyMed lisinopril tablets label.
  availableFromYear: 1988,
};
export const ATORVASTATIN: Drug = {
  rxnorm: '617312',
  display: 'atorvastatin 10 MG Oral Tablet',
  minAgeYears: 10,
  dosage: 'One tablet by mouth once daily',
  // Initial U.S. Approval 1996: DailyMed LIPITOR labels (FDA approval 17 December 1996).
  availableFromYear: 1996,
};
const ALBUTEROL: Drug = {
  rxnorm: '745679',
  display: '200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler',
  minAgeYears: 1,
  asNeeded: true,
  dosage: 'Two puffs inhaled every 4-6 hours as needed for wheeze',
  // Initial U.S. Approval 1981: DailyMed albuterol sulfate and VENTOLIN HFA inhalation aerosol labels.
  availableFromYear: 1981,
};
const NITROGLYCERIN: Drug = {
  rxnorm: '198039',
  display: 'nitroglycerin 0.4 MG Sublingual Tablet',
  minAgeYears: 18,
  asNeeded: true,
  dosage: 'One tablet under the tongue as needed for chest pain',
};

/** The adult lisinopril strength is started from 18 (children start on 2.5 mg). */
const ADULT_ACE_START = { [LISINOPRIL.rxnorm]: [18, Infinity] } as const;

export interface Treatment {
  drugs: readonly Drug[];
  /**
   * Ages [from, before) at which a drug (by RxNorm) is started for this condition, where the
   * guidance is narrower than the drug's own ages: a statin for diabetes from 40 to 75.
   */
  startAgeYears?: Readonly<Record<string, readonly [number, number]>>;
  source: string;
}

/** Condition → the drugs started at (or after) its diagnosis. Conditions absent here get none. */
export const TREATMENTS: Readonly<Record<string, Treatment>> = {
  // A moderate-intensity statin (atorvastatin 10-20 mg) for every person with diabetes aged 40-75,
  // whatever the LDL: ADA Standards of Care 2024, section 10 (with ACC/AHA 2018, primary prevention).
  type2_diabetes: {
    drugs: [METFORMIN, ATORVASTATIN],
    startAgeYears: { [ATORVASTATIN.rxnorm]: [40, 76] },
    source:
      'ADA Standards of Care, section 9 (metformin first line; approved from age 10); section 10 and ACC/AHA 2018 (moderate-intensity statin at 40-75 years)',
  },
  hypertension: {
    drugs: [LISINOPRIL_PAEDIATRIC, LISINOPRIL],
    startAgeYears: ADULT_ACE_START,
    source: 'NICE NG136 / ACC-AHA 2017 (ACE inhibitor first line); AAP 2017 (lisinopril from age 6, 0.07 mg/kg)',
  },
  // Primary prevention is started from 10 (NHLBI 2011) to 75: above 75 ACC/AHA 2018 leaves a new
  // statin to a risk discussion (a chart review found one started at 97); a statin begun earlier
  // continues.
  hyperlipidemia: {
    drugs: [ATORVASTATIN],
    startAgeYears: { [ATORVASTATIN.rxnorm]: [10, 76] },
    source: 'ACC/AHA 2018 cholesterol guideline (primary prevention to 75); NHLBI 2011 (statins from age 10)',
  },
  // Adults only (minimum onset 18): a high-intensity statin from the diagnosis (ACC/AHA 2018:
  // clinical ASCVD), low-dose aspirin (ACC/AHA 2019 / 2023 chronic coronary disease), nitrate.
  coronary_artery_disease: {
    drugs: [ATORVASTATIN_40, ASPIRIN_81, NITROGLYCERIN],
    source:
      'ACC/AHA 2018 cholesterol guideline (high-intensity statin for clinical ASCVD); ACC/AHA 2019 and AHA/ACC 2023 chronic coronary disease guidance (aspirin 75-100 mg, sublingual nitrate for angina)',
  },
  // Adults: ACE inhibitor, evidence-based beta-blocker and loop diuretic (the schema has no sign of
  // congestion, so every adult with heart failure is treated as symptomatic); children keep the
  // paediatric ACE inhibitor only (no paediatric guidance for the others is modelled).
  heart_failure: {
    drugs: [LISINOPRIL_PAEDIATRIC, LISINOPRIL, METOPROLOL_SUCCINATE_25, FUROSEMIDE_40],
    startAgeYears: ADULT_ACE_START,
    source: 'AHA/ACC/HFSA 2022 heart failure guideline (ACE inhibitor/ARB, beta-blocker, loop diuretic for congestion)',
  },
  chronic_kidney_disease: {
    drugs: [LISINOPRIL_PAEDIATRIC, LISINOPRIL],
    startAgeYears: ADULT_ACE_START,
    source: 'KDIGO 2012 (ACE inhibitor or ARB for CKD with albuminuria)',
  },
  asthma: { drugs: [ALBUTEROL], source: 'GINA 2023 / NAEPP (short-acting reliever)' },
  copd: { drugs: [ALBUTEROL], source: 'GOLD 2024 (short-acting bronchodilator for every patient)' },
};

/** RxNorm code → the conditions it is indicated for (derived from TREATMENTS, ACUTE_TREATMENTS and STEP_UP_DRUGS). */
export const INDICATIONS: ReadonlyMap<string, { drug: Drug; conditions: string[] }> = (() => {
  const m = new Map<string, { drug: Drug; conditions: string[] }>();
  const add = (d: Drug, condition: string) => {
    const e = m.get(d.rxnorm) ?? { drug: d, conditions: [] };
    if (!e.conditions.includes(condition)) e.conditions.push(condition);
    m.set(d.rxnorm, e);
  };
  for (const [condition, t] of [...Object.entries(TREATMENTS), ...Object.entries(ACUTE_TREATMENTS)])
    for (const d of t.drugs) add(d, condition);
  for (const { drug, conditions } of STEP_UP_DRUGS) for (const c of conditions) add(drug, c);
  for (const { drug, conditions } of HYPERTENSION_STEP_UP_DRUGS) for (const c of conditions) add(drug, c);
  return m;
})();

/** `drug-before-approval` when `rxnorm` was written before the first year it could be prescribed. */
export function drugApprovalViolations(rxnorm: string, authoredMs: number): string[] {
  const year = INDICATIONS.get(rxnorm)?.drug.availableFromYear;
  return year !== undefined && new Date(authoredMs).getUTCFullYear() < year ? ['drug-before-approval'] : [];
}

/**
 * Ids of the drug–condition rules a prescription breaks: `drug-unknown` (not in the base),
 * `drug-without-indication` (its reason is not a condition it treats, or the patient lacks it),
 * `drug-before-diagnosis`, `drug-under-min-age`, `drug-over-max-age` (a paediatric strength written
 * for an adult).
 */
export function drugViolations(
  rxnorm: string,
  reasonCondition: string | undefined,
  authoredAgeYears: number,
  reasonOnsetAgeYears: number | undefined,
): string[] {
  const e = INDICATIONS.get(rxnorm);
  if (!e) return ['drug-unknown'];
  const out: string[] = [];
  if (!reasonCondition || !e.conditions.includes(reasonCondition) || reasonOnsetAgeYears === undefined) out.push('drug-without-indication');
  else if (authoredAgeYears + 1e-9 < reasonOnsetAgeYears) out.push('drug-before-diagnosis');
  if (authoredAgeYears + 1e-9 < e.drug.minAgeYears) out.push('drug-under-min-age');
  if (e.drug.maxAgeYears !== undefined && authoredAgeYears >= e.drug.maxAgeYears) out.push('drug-over-max-age');
  return out;
}
