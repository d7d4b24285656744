// The schema's `workload` section and the kind: selectors shared with `structure`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSchema, SchemaError } from '../../schema/schema.ts';
import { ageBandGroups } from '../../schema/workload.ts';
import { DEFAULT_SCHEMA_PATH, MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';

const base = `name: t
version: 1
unit: patient
referenceDate: "2025-01-01"
privacy: { epsilon: 1, delta: 1.0e-9 }
attributes:
  - { name: age, kind: age, edges: [0, 18, 40, 65, 80], max: 100 }
  - { name: sex, kind: sex, values: [female, male] }
  - { name: c1, kind: condition, display: C1, codes: { snomed: ["100001"] } }
  - { name: c2, kind: condition, display: C2, codes: { snomed: ["100002"] } }
  - { name: c3, kind: condition, display: C3, codes: { snomed: ["100003"] } }
`;

function issues(text: string): string[] {
  try {
    parseSchema(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaError);
    return (e as SchemaError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a SchemaError');
}

describe('schema workload', () => {
  it('the shipped schemas declare a workload whose age bands are 0-17, 18-39, 40-64, 65+', () => {
    for (const path of [DEFAULT_SCHEMA_PATH, MULTIMODAL_SCHEMA_PATH]) {
      const s = parseSchema(readFileSync(path, 'utf8'));
      expect(s.workload?.ageBands).toEqual([0, 18, 40, 65]);
      const byAge = s.workload!.queries.find((q) => q.family === 'condition-by-age-band')!;
      expect(byAge.marginals).toHaveLength(s.attributes.filter((a) => a.kind === 'condition').length);
      expect(byAge.marginals.every((m) => m[0] === 'age' && m.length === 2)).toBe(true);
      const comorbidity = s.workload!.queries.find((q) => q.family === 'comorbidity')!;
      expect(comorbidity.marginals).toHaveLength(45);
    }
  });

  it('expands kind: selectors, skipping self-pairs and repeated sets', () => {
    const s = parseSchema(
      base +
        `workload:
  ageBands: [0, 18, 65]
  queries:
    - { family: by-age, marginals: [[age, kind:condition]] }
    - { family: pairs, marginals: [[kind:condition, kind:condition]] }
    - { family: mixed, marginals: [[age, sex, c1], [c1, age]] }
`,
    );
    expect(s.workload!.queries[0].marginals).toEqual([
      ['age', 'c1'],
      ['age', 'c2'],
      ['age', 'c3'],
    ]);
    expect(s.workload!.queries[1].marginals).toEqual([
      ['c1', 'c2'],
      ['c1', 'c3'],
      ['c2', 'c3'],
    ]);
    expect(issues(base + 'workload: { queries: [{ family: m, marginals: [[age, sex, c1], [sex, c1, age]] }] }\n')).toEqual([
      'workload.queries[0].marginals[1]: adds no attribute set not already listed',
    ]);
  });

  it('structure accepts kind: selectors too', () => {
    const s = parseSchema(base + 'structure: { share: 0.2, marginals: [[age, kind:condition], [c1, c2]] }\n');
    expect(s.structure!.marginals).toEqual([
      ['age', 'c1'],
      ['age', 'c2'],
      ['age', 'c3'],
      ['c1', 'c2'],
    ]);
    expect(issues(base + 'structure: { share: 0.2, marginals: [[age, kind:lab]] }\n')).toEqual([
      'structure.marginals[0][1]: no attribute of kind "lab"',
    ]);
  });

  it('structure in list form: one group per round, shares summed, no set in two groups', () => {
    const s = parseSchema(
      base + 'structure:\n  - { share: 0.1, marginals: [[c1, c2]] }\n  - { share: 0.25, marginals: [[age, kind:condition]] }\n',
    );
    expect(s.structure!.groups!.map((g) => g.share)).toEqual([0.1, 0.25]);
    expect(s.structure!.share).toBeCloseTo(0.35, 15);
    expect(s.structure!.marginals).toHaveLength(4);
    expect(issues(base + 'structure:\n  - { share: 0.1, marginals: [[c1, c2]] }\n  - { share: 0.2, marginals: [[c2, c1]] }\n')).toEqual([
      'structure[1].marginals[0]: adds no attribute set not already listed',
    ]);
    expect(issues(base + 'structure:\n  - { share: 0.4, marginals: [[c1, c2]] }\n  - { share: 0.4, marginals: [[c1, c3]] }\n')[0]).toMatch(
      /^structure: the shares sum to 0.8/,
    );
    expect(issues(base + 'structure: []\n')[0]).toMatch(/^structure: must be a group/);
    expect(issues(base + 'structure:\n  - { share: 0.1, marginals: [[c1, c2]], x: 1 }\n')[0]).toMatch(/^structure\[0\]/);
    expect(issues(base + 'structure:\n  - 7\n')[0]).toMatch(/^structure\[0\]/);
  });

  it('rejects malformed sections with the offending path', () => {
    const bad = (w: string) => issues(base + w);
    expect(bad('workload: [a]\n')[0]).toMatch(/^workload: must be a mapping/);
    expect(bad('workload: { queries: [] }\n')[0]).toMatch(/^workload.queries: must be a non-empty list/);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, c1]] }], extra: 1 }\n')[0]).toMatch(/^workload.extra: unknown key/);
    expect(bad('workload: { queries: [{ family: A B, marginals: [[age, c1]] }] }\n')[0]).toMatch(/^workload.queries\[0\].family/);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, c1]] }, { family: a, marginals: [[age, c2]] }] }\n')[0]).toMatch(
      /declared twice/,
    );
    expect(bad('workload: { queries: [{ family: a, marginals: [] }] }\n')[0]).toMatch(
      /^workload.queries\[0\].marginals: must be a non-empty/,
    );
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, zz]] }] }\n')).toEqual([
      'workload.queries[0].marginals[0][1]: unknown attribute "zz"',
    ]);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, kind:nope]] }] }\n')[0]).toMatch(/no attribute of kind "nope"/);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age]] }] }\n')[0]).toMatch(/must be a list of 2 or 3/);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, 7]] }] }\n')[0]).toMatch(/must be a list of 2 or 3/);
    expect(bad('workload: { queries: [{ family: a, marginals: [[c1, c1]] }] }\n')).toEqual([
      'workload.queries[0].marginals[0]: names an attribute twice',
    ]);
    expect(bad('workload: { queries: [{ family: a, marginals: [[age, c1]], extra: 2 }] }\n')[0]).toMatch(/extra: unknown key/);
    expect(bad('workload: { ageBands: [0, 30], queries: [{ family: a, marginals: [[age, c1]] }] }\n')).toEqual([
      'workload.ageBands[1]: 30 is not an edge of the age attribute (edges: 0, 18, 40, 65, 80)',
    ]);
    expect(bad('workload: { ageBands: [18, 40], queries: [{ family: a, marginals: [[age, c1]] }] }\n')[0]).toMatch(
      /ageBands\[0\]: must be 0/,
    );
    expect(bad('workload: { ageBands: [0, 40, 18], queries: [{ family: a, marginals: [[age, c1]] }] }\n')[0]).toMatch(/increase strictly/);
    expect(bad('workload: { ageBands: [0, 1.5], queries: [{ family: a, marginals: [[age, c1]] }] }\n')[0]).toMatch(/whole-year/);
    expect(bad('workload: { ageBands: "x", queries: [{ family: a, marginals: [[age, c1]] }] }\n')[0]).toMatch(/^workload.ageBands/);
  });

  it('a workload with age bands needs an age attribute', () => {
    const noAge = base.replace(/ {2}- \{ name: age.*\n/, '');
    expect(issues(noAge + 'workload: { ageBands: [0, 18], queries: [{ family: a, marginals: [[sex, c1]] }] }\n')).toEqual([
      'workload.ageBands: the schema has no age attribute',
    ]);
  });

  it('maps age bins to bands', () => {
    expect(ageBandGroups([0, 5, 12, 18, 30, 40, 50, 60, 65, 70, 80], [0, 18, 40, 65])).toEqual({
      groupOf: [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3],
      labels: ['0-17', '18-39', '40-64', '65+'],
    });
  });
});
