/**
 * The drugs of guideline-directed chronic treatment beyond the first-line ones of treatments.ts:
 * the higher strengths a dose is titrated to, the add-on agent, and the drugs of coronary disease
 * and heart failure. Pure data.
 *
 * Each RxNorm code is an SCD (clinical drug) whose code and display were checked in public VSAC
 * value sets as copied in canvas-medical/canvas-plugins (`canvas_sdk/value_set/v2022/medication.py`,
 * eCQM update 2021-05-06, and `v2026/medication.py`, eCQM update 2025-05-08), plus a second,
 * independent public listing per code:
 * - 617311 atorvastatin 40 MG Oral Tablet, 259255 atorvastatin 80 MG Oral Tablet: VSAC "High
 *   Intensity Statin Therapy" (2.16.840.1.113883.3.526.3.1572), both versions; Synthea's
 *   `modules/medications/statin.json` (states Prescribe_Atorvastatin_40/80_Mg_Oral_Tablet, same
 *   code and display); 259255 also in the PACIO project's US Core Medication instances
 *   (paciowg/CSV-to-FSH-app, output/Medication.instances.fsh). 617312, the first-line 10 mg of
 *   treatments.ts, is the 10 mg tablet in both VSAC ("Moderate Intensity Statin Therapy",
 *   2.16.840.1.113883.3.526.3.1575) and Synthea's statin.json — not the 40 mg one.
 * - 861004 metformin hydrochloride 1000 MG Oral Tablet, 1545658 empagliflozin 10 MG Oral Tablet:
 *   VSAC "Hypoglycemics Treatment Medications" (2.16.840.1.113762.1.4.1196.394, 2025-05-08);
 *   861004 also in a public clinical-NLP resolver's output (RxNorm resolution of "metformin 1000
 *   mg" → 861004 with this display).
 * - 243670 aspirin 81 MG Oral Tablet: VSAC "Antithrombotic Therapy for Ischemic Stroke"
 *   (2.16.840.1.113762.1.4.1110.62, 2025-05-08); Synthea's `modules/heart/acs_discharge_meds.json`
 *   (state Aspirin_Daily); also paciowg/CSV-to-FSH-app (as above).
 * - 866427 24 HR metoprolol succinate 25 MG Extended Release Oral Tablet: VSAC "Beta Blocker
 *   Therapy" (2.16.840.1.113883.3.526.3.1174) and "Beta Blocker Therapy for LVSD" (…3.1184), both
 *   versions; a public FDA NDC listing of TOPROL-XL (NDA019962, NDC 70842-111) names RxCUI 866427
 *   among its products, and healthchain's terminology docs resolve "metoprolol 25" to 866427 with
 *   this display. Synthea's beta_blocker.json lists only metoprolol tartrate.
 * - 313988 furosemide 40 MG Oral Tablet: VSAC "Pharmacologic Therapy for Hypertension"
 *   (2.16.840.1.113883.3.526.1577, both versions) and "Diuretics" (2.16.840.1.113762.1.4.1248.170,
 *   2025-05-08); Synthea's `modules/heart/chf_meds_hfref_nyha2.json` (state Diuretic).
 * - 349556 ezetimibe 10 MG Oral Tablet (the only strength): openFDA NDC directory, products of
 *   that single strength carrying only this RxCUI (NDC 50090-7339, 50268-298); the display is
 *   RxNorm's SCD name of that product, whose branded form (Zetia) is 352304 in a public RxNorm
 *   listing of SBDs ("ezetimibe 10 MG Oral Tablet [Zetia]").
 * - 665033 sitagliptin 100 MG Oral Tablet: VSAC "Hypoglycemics Treatment Medications"
 *   (2.16.840.1.113762.1.4.1196.394, 2025-05-08); openFDA NDC 70771-1792 (a 100 mg product)
 *   lists it, and a public comparator table of DPP-4 inhibitors names 665033 / 665038 / 665042 as
 *   the 100 / 25 / 50 mg SCDs.
 * 1545658's pairing rests on VSAC alone (no independent listing was found here); 861004's second
 * source is a clinical-NLP resolver's printed output, weaker than the others.
 *
 * First years (`availableFromYear`) are the FDA label's "Initial U.S. Approval": metformin 1995
 * (as treatments.ts), empagliflozin 2014 (JARDIANCE label, DailyMed), metoprolol succinate
 * extended release 1992 (TOPROL-XL label), atorvastatin 1996 (treatments.ts), ezetimibe 2002
 * (ezetimibe tablets label), sitagliptin 2006 (JANUVIA label). Furosemide's
 * generic labels are in the old format without that line; 1982 is used, the year from which
 * Drugs@FDA dates its approvals (earlier ones are listed "prior to Jan 1, 1982"), a conservative
 * bound that was not checked against the NDA itself. Aspirin predates FDA approval (OTC monograph):
 * no year, like nitroglycerin.
 */
import type { Drug } from './treatments.ts';

const ONCE_DAILY = 'One tablet by mouth once daily';

/** Metformin titrated to 2,000 mg a day (ADA Standards of Care 2024, section 9). */
export const METFORMIN_1000: Drug = {
  rxnorm: '861004',
  display: 'metformin hydrochloride 1000 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (1000 mg) by mouth twice daily with meals',
  availableFromYear: 1995,
  // Metformin labels: starting (and so raising) it is not recommended at an eGFR of 30-45.
  minEgfr: 45,
};
/** The second agent of ADA 2024 §9 with cardiorenal benefit (SGLT2 inhibitor). */
export const EMPAGLIFLOZIN: Drug = {
  rxnorm: '1545658',
  display: 'empagliflozin 10 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (10 mg) by mouth once daily in the morning',
  availableFromYear: 2014,
  // JARDIANCE label: not recommended for glycaemic control below an eGFR of 30.
  minEgfr: 30,
};
/** High-intensity statin doses (ACC/AHA 2018 cholesterol guideline, Table 3: atorvastatin 40-80 mg). */
export const ATORVASTATIN_40: Drug = {
  rxnorm: '617311',
  display: 'atorvastatin 40 MG Oral Tablet',
  minAgeYears: 18,
  dosage: ONCE_DAILY,
  availableFromYear: 1996,
};
export const ATORVASTATIN_80: Drug = {
  rxnorm: '259255',
  display: 'atorvastatin 80 MG Oral Tablet',
  minAgeYears: 18,
  dosage: ONCE_DAILY,
  availableFromYear: 1996,
};
/** Low-dose aspirin for chronic coronary disease (ACC/AHA 2019 primary / 2023 chronic coronary disease guidance: 75-100 mg). */
export const ASPIRIN_81: Drug = {
  rxnorm: '243670',
  display: 'aspirin 81 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (81 mg) by mouth once daily',
};
/** Evidence-based beta-blocker for heart failure (AHA/ACC/HFSA 2022: metoprolol succinate, carvedilol or bisoprolol). */
export const METOPROLOL_SUCCINATE_25: Drug = {
  rxnorm: '866427',
  display: '24 HR metoprolol succinate 25 MG Extended Release Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (25 mg) by mouth once daily',
  availableFromYear: 1992,
};
/** Loop diuretic for congestion (AHA/ACC/HFSA 2022). */
export const FUROSEMIDE_40: Drug = {
  rxnorm: '313988',
  display: 'furosemide 40 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (40 mg) by mouth once daily in the morning',
  availableFromYear: 1982,
};

/**
 * Ezetimibe added when LDL-C stays above target on the maximal statin (ACC/AHA 2018 cholesterol
 * guideline: clinical ASCVD with LDL-C >= 70 mg/dL on maximally tolerated statin; severe primary
 * hypercholesterolaemia not at goal on it). 10 mg once daily (label).
 */
export const EZETIMIBE_10: Drug = {
  rxnorm: '349556',
  display: 'ezetimibe 10 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (10 mg) by mouth once daily',
  availableFromYear: 2002,
};
/**
 * A third glucose-lowering agent when HbA1c stays at or above 7 % on metformin and an SGLT2
 * inhibitor (ADA Standards of Care 2024, section 9: add an agent of another class; a DPP-4
 * inhibitor is one of them). 100 mg once daily needs an eGFR of at least 45 (JANUVIA label: 50 mg
 * from 30 to 45), so it is not started below 45.
 */
export const SITAGLIPTIN_100: Drug = {
  rxnorm: '665033',
  display: 'sitagliptin 100 MG Oral Tablet',
  minAgeYears: 18,
  dosage: 'One tablet (100 mg) by mouth once daily',
  availableFromYear: 2006,
  minEgfr: 45,
};

/**
 * Drugs written only as a step up (never first line), with the conditions they treat (for INDICATIONS).
 * The blood-pressure steps are hypertension.ts's HYPERTENSION_STEP_UP_DRUGS.
 */
export const STEP_UP_DRUGS: readonly { drug: Drug; conditions: readonly string[] }[] = [
  { drug: METFORMIN_1000, conditions: ['type2_diabetes'] },
  { drug: EMPAGLIFLOZIN, conditions: ['type2_diabetes'] },
  { drug: ATORVASTATIN_40, conditions: ['hyperlipidemia'] },
  { drug: ATORVASTATIN_80, conditions: ['hyperlipidemia', 'coronary_artery_disease'] },
  { drug: EZETIMIBE_10, conditions: ['hyperlipidemia', 'coronary_artery_disease'] },
  { drug: SITAGLIPTIN_100, conditions: ['type2_diabetes'] },
];
