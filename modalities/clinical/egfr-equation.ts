/**
 * The adult creatinine-based eGFR equation a result could have been reported with at a date, and
 * its LOINC term. A record that codes a 2010 result with the 2021 equation's term is anachronistic:
 * US laboratories reported the MDRD Study equation (Levey et al., Ann Intern Med 1999; re-expressed
 * 2006) until the CKD-EPI equation (Levey et al., Ann Intern Med 150:604, published 5 May 2009;
 * recommended by KDIGO 2012), then the race-free CKD-EPI 2021 refit (Inker et al., NEJM 385:1737;
 * NKF-ASN task force recommendation of 23 September 2021). Laboratories switched over the years
 * after each publication; the publication date is the earliest a result can carry the new term.
 * Displays as LOINC's long common names (the MDRD and CKD-EPI ones as in HL7's FHIR Clinical
 * Guidelines eGFR value set and the HL7 Switzerland lab IG). Pure.
 */

export interface EgfrEquation {
  name: 'MDRD' | 'CKD-EPI 2009' | 'CKD-EPI 2021';
  loinc: string;
  display: string;
  /** Earliest date (ms since the epoch, UTC) a result can be reported with it. */
  fromMs: number;
}

export const EGFR_EQUATIONS: readonly EgfrEquation[] = [
  {
    name: 'MDRD',
    loinc: '33914-3',
    display: 'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)',
    fromMs: -Infinity,
  },
  {
    name: 'CKD-EPI 2009',
    loinc: '62238-1',
    display:
      'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)',
    fromMs: Date.UTC(2009, 4, 5),
  },
  {
    name: 'CKD-EPI 2021',
    loinc: '98979-8',
    display:
      'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)',
    fromMs: Date.UTC(2021, 8, 23),
  },
];

/** The newest adult equation published by `ms` whose term the schema's codes include (undefined if none). */
export function egfrEquationAt(ms: number, schemaCodes: readonly string[]): EgfrEquation | undefined {
  let found: EgfrEquation | undefined;
  for (const e of EGFR_EQUATIONS) if (e.fromMs <= ms && schemaCodes.includes(e.loinc)) found = e;
  return found;
}

/** The equation whose term `loinc` is, when that term is dated (MDRD has no lower bound). */
export function egfrEquationOf(loinc: string): EgfrEquation | undefined {
  return EGFR_EQUATIONS.find((e) => e.loinc === loinc);
}
