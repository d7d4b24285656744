/**
 * Clinical plausibility rules over sampled joint-model rows, built on the public
 * clinical knowledge base (modalities/clinical/): a synthetic patient is released only if it breaks
 * none of them; violating rows are resampled from the model and counted per rule
 * (synthesis/cohort.ts). The rules are public knowledge, never learned from data, and each applies
 * only when the schema has the attributes it talks about:
 *
 * - sex-specific conditions ("other"/"unknown" sex is never a violation);
 * - minimum onset ages (no type 2 diabetes before 10, no COPD or coronary disease before 18): a
 *   violation when the whole age band lies below the minimum;
 * - physiological ranges by age: a lab bin that no age of the band can hold (a child's systolic
 *   pressure of 160+, an adult BMI under 15 is still allowed by the bin but drawn inside the range);
 * - lab values that meet a diagnostic definition without the diagnosis (HbA1c ≥ 6.5 % without
 *   diabetes, eGFR < 60 without CKD, adult BMI ≥ 35 without obesity) or contradict one (adult
 *   obesity with BMI < 25, hypertension with systolic < 90): a violation when the whole bin lies in
 *   the offending range;
 * - `no-plausible-age-in-band`: the row passes each rule alone but no single age of its band
 *   fits all of them together (reported only when no other rule fired).
 * The decoded record is then checked again, resource by resource (modalities/fhir/verify-record.ts).
 * Pure: rows in, violations out.
 */
import type { AgeAttribute, LabAttribute, Schema, SexAttribute } from '../schema/schema.ts';
import { CONDITIONS, LAB_CONDITION_RULES, labRange, minOnsetYears, SEX_SPECIFIC } from '../modalities/clinical/index.ts';
import { rowFacts } from '../modalities/fhir/decode.ts';
import { feasibleAges } from '../modalities/fhir/timeline.ts';

export { SEX_SPECIFIC };

export interface CompiledRule {
  id: string;
  /** Does this row break the rule? `row[i]` is the code of schema attribute i. */
  violates(row: ArrayLike<number>): boolean;
  /** Evaluated only when no other rule fired (a residual, combined check). */
  residual?: boolean;
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
  const band = (b: number): [number, number] => [age!.edges[b], b + 1 < age!.edges.length ? age!.edges[b + 1] : age!.max];
  /** Age codes whose whole band is below `years`. */
  const bandsBelow = (years: number): Set<number> => {
    const out = new Set<number>();
    if (age) age.edges.forEach((_, b) => band(b)[1] <= years && out.add(b));
    return out;
  };
  const children = bandsBelow(18);

  for (const [name, want] of Object.entries(SEX_SPECIFIC)) {
    const ci = conditionIndex(name);
    if (ci === undefined || !sex) continue;
    const bad = sex.values.indexOf(want === 'male' ? 'female' : 'male');
    if (bad < 0) continue;
    rules.push({ id: `${name}-only-${want}`, violates: (row) => row[ci] === 1 && row[sexI] === bad });
  }
  const named = new Set([...Object.keys(CONDITIONS), 'prostate_cancer', 'benign_prostatic_hyperplasia']);
  for (const name of named) {
    const years = minOnsetYears(name);
    const ci = conditionIndex(name);
    // Onset is in whole days from birth: a band [lo, hi) holds ages up to hi (exclusive).
    const young = bandsBelow(years);
    if (ci === undefined || young.size === 0) continue;
    rules.push({ id: `${name}-under-${years}`, violates: (row) => row[ci] === 1 && young.has(row[ageI]) });
  }
  schema.attributes.forEach((a, li) => {
    if (a.kind !== 'lab' || !age || !labRange(a.name, 0)) return;
    // Bins no age of the band can hold: outside the union of the band's ranges.
    const bad = new Set<string>();
    age.edges.forEach((_, b) => {
      const [lo, hi] = band(b);
      let min = Infinity;
      let max = -Infinity;
      for (let y = lo; y < hi; y++) {
        const r = labRange(a.name, y)!;
        min = Math.min(min, r[0]);
        max = Math.max(max, r[1]);
      }
      for (let v = 0; v <= a.edges.length; v++) {
        const bLo = v === 0 ? a.range[0] : a.edges[v - 1];
        const bHi = v === a.edges.length ? a.range[1] : a.edges[v];
        if (bHi <= min || bLo > max) bad.add(`${b}:${v}`);
      }
    });
    if (bad.size > 0) rules.push({ id: `${a.name}-out-of-range-for-age`, violates: (row) => bad.has(`${row[ageI]}:${row[li]}`) });
  });
  for (const r of LAB_CONDITION_RULES) {
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
  if (age && schema.attributes.some((a) => a.kind === 'condition' || a.kind === 'lab')) {
    // Memoised on the codes it reads (age, sex, conditions, labs): cohorts repeat few patterns.
    const read = schema.attributes.flatMap((a, i) =>
      a.kind === 'age' || a.kind === 'sex' || a.kind === 'condition' || a.kind === 'lab' ? [i] : [],
    );
    const memo = new Map<string, boolean>();
    rules.push({
      id: 'no-plausible-age-in-band',
      residual: true,
      violates: (row) => {
        let key = '';
        for (const i of read) key += `${row[i]},`;
        let bad = memo.get(key);
        if (bad === undefined) {
          bad = feasibleAges(rowFacts(schema, row)).length === 0;
          if (memo.size >= 100_000) memo.clear();
          memo.set(key, bad);
        }
        return bad;
      },
    });
  }
  return rules;
}

/** Ids of the rules a row breaks (empty: plausible). */
export function violations(rules: readonly CompiledRule[], row: ArrayLike<number>): string[] {
  const out: string[] = [];
  for (const r of rules) if (!r.residual && r.violates(row)) out.push(r.id);
  if (out.length === 0) for (const r of rules) if (r.residual && r.violates(row)) out.push(r.id);
  return out;
}
