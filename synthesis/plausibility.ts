/**
 * Clinical plausibility rules over sampled joint-model rows: a synthetic patient
 * is released only if it breaks none of them; violating rows are resampled from the model and
 * counted (synthesis/cohort.ts). The rules are public clinical knowledge, never learned from
 * data, and each applies only when the schema has the attributes it talks about:
 *
 * - sex-specific conditions (e.g. prostate cancer only for male, pregnancy or cervical cancer
 *   only for female; "other"/"unknown" sex is never a violation);
 * - minimum ages (no COPD or coronary artery disease under 18): a violation when the whole age
 *   band lies below the minimum;
 * - lab values that meet a diagnostic definition without the diagnosis: HbA1c ≥ 6.5 % without
 *   diabetes (ADA), eGFR < 60 mL/min/1.73 m² without chronic kidney disease (KDIGO G3a–G5),
 *   adult BMI ≥ 35 without obesity; and adult obesity with BMI < 25;
 *   a violation when the whole lab bin lies in the offending range.
 * Pure: rows in, violations out.
 */
import type { AgeAttribute, LabAttribute, Schema, SexAttribute } from '../schema/schema.ts';

export const SEX_SPECIFIC: Record<string, 'male' | 'female'> = {
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

export const MIN_AGE: Record<string, number> = {
  copd: 18,
  coronary_artery_disease: 18,
  prostate_cancer: 18,
  benign_prostatic_hyperplasia: 30,
};

/** A lab value range that implies a diagnosis (or contradicts one). */
interface LabRule {
  id: string;
  lab: string;
  /** The offending value range [lo, hi): a bin entirely inside it violates. */
  range: [number, number];
  /** Condition(s): with `requires`, the row must have one of them; with `forbids`, none. */
  requires?: string[];
  forbids?: string[];
  adultsOnly?: boolean;
}

export const LAB_RULES: LabRule[] = [
  { id: 'hba1c>=6.5-without-diabetes', lab: 'hba1c', range: [6.5, Infinity], requires: ['type2_diabetes', 'type1_diabetes', 'diabetes'] },
  { id: 'egfr<60-without-ckd', lab: 'egfr', range: [-Infinity, 60], requires: ['chronic_kidney_disease'] },
  { id: 'bmi>=35-without-obesity', lab: 'bmi', range: [35, Infinity], requires: ['obesity'], adultsOnly: true },
  { id: 'obesity-with-bmi<25', lab: 'bmi', range: [-Infinity, 25], forbids: ['obesity'], adultsOnly: true },
];

export interface CompiledRule {
  id: string;
  /** Does this row break the rule? `row[i]` is the code of schema attribute i. */
  violates(row: ArrayLike<number>): boolean;
}

/** The rules that apply to a schema, compiled to attribute indices and code sets. */
export function plausibilityRules(schema: Schema): CompiledRule[] {
  const idx = new Map(schema.attributes.map((a, i) => [a.name, i]));
  const rules: CompiledRule[] = [];
  const ageI = schema.attributes.findIndex((a) => a.kind === 'age');
  const sexI = schema.attributes.findIndex((a) => a.kind === 'sex');
  const age = ageI >= 0 ? (schema.attributes[ageI] as AgeAttribute) : undefined;
  const sex = sexI >= 0 ? (schema.attributes[sexI] as SexAttribute) : undefined;
  const conditionIndex = (name: string) => {
    const i = idx.get(name);
    return i !== undefined && schema.attributes[i].kind === 'condition' ? i : undefined;
  };
  /** Age codes whose whole band is below `years`. */
  const bandsBelow = (years: number): Set<number> => {
    const out = new Set<number>();
    if (!age) return out;
    age.edges.forEach((lo, b) => {
      const hi = b + 1 < age.edges.length ? age.edges[b + 1] : age.max;
      if (hi <= years) out.add(b);
    });
    return out;
  };
  const children = bandsBelow(18);

  for (const [name, want] of Object.entries(SEX_SPECIFIC)) {
    const ci = conditionIndex(name);
    if (ci === undefined || !sex) continue;
    const other = want === 'male' ? 'female' : 'male';
    const bad = sex.values.indexOf(other);
    if (bad < 0) continue;
    rules.push({ id: `${name}-only-${want}`, violates: (row) => row[ci] === 1 && row[sexI] === bad });
  }
  for (const [name, years] of Object.entries(MIN_AGE)) {
    const ci = conditionIndex(name);
    const young = bandsBelow(years);
    if (ci === undefined || young.size === 0) continue;
    rules.push({ id: `${name}-under-${years}`, violates: (row) => row[ci] === 1 && young.has(row[ageI]) });
  }
  for (const r of LAB_RULES) {
    const li = idx.get(r.lab);
    if (li === undefined || schema.attributes[li].kind !== 'lab') continue;
    const lab = schema.attributes[li] as LabAttribute;
    const conds = (r.requires ?? r.forbids ?? []).map(conditionIndex).filter((i): i is number => i !== undefined);
    if (conds.length === 0) continue;
    // Value bins (not "missing") that lie entirely inside the offending range.
    const bad = new Set<number>();
    for (let b = 0; b <= lab.edges.length; b++) {
      const lo = b === 0 ? lab.range[0] : lab.edges[b - 1];
      const hi = b === lab.edges.length ? lab.range[1] : lab.edges[b];
      if (lo >= r.range[0] && hi <= r.range[1]) bad.add(b);
    }
    if (bad.size === 0) continue;
    if (r.adultsOnly && !age) continue;
    rules.push({
      id: r.id,
      violates: (row) => {
        if (!bad.has(row[li])) return false;
        if (r.adultsOnly && children.has(row[ageI])) return false;
        const any = conds.some((c) => row[c] === 1);
        return r.requires ? !any : any;
      },
    });
  }
  return rules;
}

/** Ids of the rules a row breaks (empty: plausible). */
export function violations(rules: readonly CompiledRule[], row: ArrayLike<number>): string[] {
  const out: string[] = [];
  for (const r of rules) if (r.violates(row)) out.push(r.id);
  return out;
}
