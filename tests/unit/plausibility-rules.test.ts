import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { plausibilityRules, violations } from '../../synthesis/plausibility.ts';
import { parseSchema } from '../../schema/schema.ts';
import { rowFacts } from '../../modalities/fhir/decode.ts';
import { feasibleAges } from '../../modalities/fhir/timeline.ts';
import { MULTIMODAL_SCHEMA_PATH, DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const idx = (n: string) => schema.attributes.findIndex((a) => a.name === n);
/** A plausible adult row: age 40–50, female, no conditions, every lab missing, no artefacts. */
function baseRow(): number[] {
  return schema.attributes.map((a) => {
    switch (a.kind) {
      case 'age':
        return 5;
      case 'sex':
        return 0;
      case 'condition':
        return 0;
      case 'lab':
        return a.edges.length + 1;
      case 'snp':
        return 3;
      case 'image-finding':
        return a.classes.length;
      default:
        return 2;
    }
  });
}

describe('plausibility rules', () => {
  const rules = plausibilityRules(schema);
  it('compiles the rules the schema supports', () => {
    expect(rules.map((r) => r.id)).toEqual([
      'type2_diabetes-under-10',
      'coronary_artery_disease-under-18',
      'copd-under-18',
      'systolic_bp-out-of-range-for-age',
      'bmi-out-of-range-for-age',
      'hba1c>=6.5-without-diabetes',
      'egfr<60-without-ckd',
      'bmi>=35-without-obesity',
      'obesity-with-bmi<25',
      'no-plausible-age-in-band',
    ]);
    expect(violations(rules, baseRow())).toEqual([]);
  });

  it('age: type 2 diabetes from 10 (a band reaching 10 passes: the decoder draws an age of 10 or 11)', () => {
    for (const [band, bad] of [
      [0, true],
      [1, false],
      [5, false],
    ] as const) {
      const r = baseRow();
      r[idx('age')] = band;
      r[idx('type2_diabetes')] = 1;
      expect(violations(rules, r).includes('type2_diabetes-under-10')).toBe(bad);
    }
  });

  it('physiological ranges by age: systolic 160+ is no 5-11-year-old, BMI 40+ no infant', () => {
    const r = baseRow();
    r[idx('age')] = 1;
    r[idx('systolic_bp')] = 4;
    expect(violations(rules, r)).toContain('systolic_bp-out-of-range-for-age');
    r[idx('age')] = 5;
    expect(violations(rules, r)).not.toContain('systolic_bp-out-of-range-for-age');
    const infant = baseRow();
    infant[idx('age')] = 0;
    infant[idx('bmi')] = 5;
    expect(violations(rules, infant)).toContain('bmi-out-of-range-for-age');
  });

  it('the decoder draws only the ages of a band that every rule allows', () => {
    const r = baseRow();
    r[idx('age')] = 1; // 5-11
    r[idx('type2_diabetes')] = 1;
    expect(feasibleAges(rowFacts(schema, r))).toEqual([10, 11]);
    r[idx('bmi')] = 5; // 40+: no child under 12, and no BMI of 35+ without obesity at any age
    expect(feasibleAges(rowFacts(schema, r))).toEqual([]);
    expect(violations(rules, r)).toEqual(['bmi-out-of-range-for-age', 'bmi>=35-without-obesity']);
  });

  it('age: COPD or CAD only from 18 (whole band below 18)', () => {
    for (const [band, bad] of [
      [0, true],
      [2, true],
      [3, false],
      [8, false],
    ] as const) {
      const r = baseRow();
      r[idx('age')] = band;
      r[idx('copd')] = 1;
      expect(violations(rules, r).includes('copd-under-18')).toBe(bad);
    }
  });

  it('labs that meet a diagnostic definition need the diagnosis', () => {
    const r = baseRow();
    r[idx('hba1c')] = 2; // [6.5, 8.0)
    expect(violations(rules, r)).toEqual(['hba1c>=6.5-without-diabetes']);
    r[idx('type2_diabetes')] = 1;
    expect(violations(rules, r)).toEqual([]);
    r[idx('hba1c')] = 1; // [5.7, 6.5): not definitional
    r[idx('type2_diabetes')] = 0;
    expect(violations(rules, r)).toEqual([]);
    r[idx('egfr')] = 2; // [30, 45)
    expect(violations(rules, r)).toEqual(['egfr<60-without-ckd']);
    r[idx('egfr')] = 4; // [60, 90)
    expect(violations(rules, r)).toEqual([]);
  });

  it('BMI rules apply to adults only', () => {
    const r = baseRow();
    r[idx('obesity')] = 1;
    r[idx('bmi')] = 1; // [18.5, 25)
    expect(violations(rules, r)).toEqual(['obesity-with-bmi<25']);
    r[idx('age')] = 2; // 12–18
    expect(violations(rules, r)).toEqual([]);
  });

  it('sex-specific conditions, when the schema has them', () => {
    const text = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8').replace(
      'attributes:\n',
      'attributes:\n  - name: prostate_cancer\n    kind: condition\n    display: Malignant tumor of prostate (disorder)\n    codes:\n      snomed: ["399068003"]\n',
    );
    const s = parseSchema(text);
    const rs = plausibilityRules(s);
    expect(rs.map((r) => r.id)).toContain('prostate_cancer-only-male');
    const row = s.attributes.map((a) => (a.kind === 'age' ? 6 : a.kind === 'lab' ? a.edges.length + 1 : 0));
    const sexI = s.attributes.findIndex((a) => a.kind === 'sex');
    const sex = s.attributes[sexI] as { values: string[] };
    row[0] = 1;
    row[sexI] = sex.values.indexOf('female');
    expect(violations(rs, row)).toEqual(['prostate_cancer-only-male']);
    row[sexI] = sex.values.indexOf('male');
    expect(violations(rs, row)).toEqual([]);
    row[sexI] = sex.values.indexOf('unknown');
    expect(violations(rs, row)).toEqual([]);
  });
});
