import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseSchema, schemaAttributes, schemaHash, SchemaError, labBin, type Schema } from '../../schema/schema.ts';

const text = readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8');

function issuesOf(t: string): Array<{ path: string; message: string }> {
  try {
    parseSchema(t);
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaError);
    return (e as SchemaError).issues;
  }
  throw new Error('expected a SchemaError');
}

/** The bundled schema as a plain object, mutated by `edit`, back to YAML. */
function edited(edit: (doc: any) => void): string {
  const doc = JSON.parse(JSON.stringify(parseSchema(text)));
  edit(doc);
  return stringify(doc);
}

describe('public schema: hospital-v1.yaml', () => {
  const schema = parseSchema(text);

  it('parses with the expected attributes and domain', () => {
    expect(schema.name).toBe('hospital');
    expect(schema.version).toBe(1);
    expect(schema.unit).toBe('patient');
    expect(schema.referenceDate).toBe('2025-01-01');
    const attrs = schemaAttributes(schema);
    expect(attrs[0]).toMatchObject({ name: 'age', size: 11 });
    expect(attrs[0].labels.at(-1)).toBe('80+');
    expect(attrs[1]).toEqual({ name: 'sex', size: 4, labels: ['female', 'male', 'other', 'unknown'] });
    expect(attrs.filter((a) => a.labels.join() === 'no,yes')).toHaveLength(10);
    const hba1c = attrs.find((a) => a.name === 'hba1c')!;
    expect(hba1c.labels).toEqual(['<5.7', '5.7-<6.5', '6.5-<8', '>=8', 'missing']);
    for (const a of attrs) expect(a.labels).toHaveLength(a.size);
    expect(schema.privacy).toEqual({ epsilon: 1, delta: 1e-9 });
  });

  it('uses real code systems and keeps numeric-looking codes as strings', () => {
    const htn = schema.attributes.find((a) => a.name === 'hypertension');
    expect(htn?.kind === 'condition' && htn.codes.snomed[0]).toBe('59621000');
    const lab = schema.attributes.find((a) => a.name === 'systolic_bp');
    expect(lab?.kind === 'lab' && lab.loinc).toEqual(['8480-6']);
  });

  it('bins lab values at the edges (lower edge inclusive)', () => {
    const lab = schema.attributes.find((a) => a.name === 'hba1c');
    if (lab?.kind !== 'lab') throw new Error('no lab');
    expect([4.0, 5.69, 5.7, 6.49, 6.5, 7.99, 8, 14].map((v) => labBin(lab, v))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });

  it('hash is a sha256 hex, stable under key reordering and formatting, sensitive to content', () => {
    const h = schemaHash(schema);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    // Reorder every mapping's keys (reverse) and write as JSON: same hash.
    const reverse = (v: any): any =>
      Array.isArray(v)
        ? v.map(reverse)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v)
                .reverse()
                .map((k) => [k, reverse(v[k])]),
            )
          : v;
    const json = JSON.stringify(reverse(JSON.parse(JSON.stringify(schema))), null, 3);
    expect(schemaHash(parseSchema(json))).toBe(h);
    expect(schemaHash(parseSchema(text + '\n# a comment\n'))).toBe(h);
    expect(schemaHash(parseSchema(edited((d) => (d.privacy.epsilon = 2))))).not.toBe(h);
    expect(schemaHash(parseSchema(edited((d) => d.attributes.reverse())))).not.toBe(h);
  });
});

describe('public schema: errors name the path and the problem', () => {
  it('bad YAML reports the line', () => {
    const issues = issuesOf('name: x\nattributes: [\n  - a: 1\n');
    expect(issues[0].message).toMatch(/not valid YAML\/JSON at line \d+/);
  });

  it('a non-mapping document', () => {
    expect(issuesOf('- 1\n- 2\n')[0].message).toMatch(/must be a mapping, got a list/);
  });

  it('missing top-level fields', () => {
    const issues = issuesOf('name: x\n');
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['version', 'unit', 'referenceDate', 'attributes', 'privacy']));
    expect(issues.find((i) => i.path === 'version')?.message).toBe('is required');
  });

  it('unknown fields (typos) are rejected', () => {
    const issues = issuesOf(edited((d) => (d.attributes[0].egdes = [0, 1])));
    expect(issues).toContainEqual({ path: 'attributes[0].egdes', message: expect.stringMatching(/unknown field/) });
  });

  it('age edges must start at 0 and increase strictly', () => {
    let issues = issuesOf(edited((d) => (d.attributes[0].edges = [0, 18, 18, 40])));
    expect(issues).toContainEqual({ path: 'attributes[0].edges[2]', message: 'edges must be strictly increasing, got 18 after 18' });
    issues = issuesOf(edited((d) => (d.attributes[0].edges = [5, 18])));
    expect(issues).toContainEqual({ path: 'attributes[0].edges[0]', message: 'the first age edge must be 0, got 5' });
    issues = issuesOf(edited((d) => (d.attributes[0].max = 50)));
    expect(issues[0]).toMatchObject({ path: 'attributes[0].max', message: expect.stringMatching(/above the last edge 80/) });
  });

  it('lab bins: non-numeric edges, range not enclosing edges, too many decimals', () => {
    const idx = (d: any) => d.attributes.findIndex((a: any) => a.name === 'hba1c');
    let issues = issuesOf(
      edited((d) => {
        d.attributes[idx(d)].edges = [5.7, 'high'];
      }),
    );
    expect(issues).toContainEqual({ path: 'attributes[12].edges[1]', message: 'must be a finite number, got the string "high"' });
    issues = issuesOf(edited((d) => (d.attributes[idx(d)].range = [6, 15])));
    expect(issues[0]).toMatchObject({ path: 'attributes[12].range', message: expect.stringMatching(/must enclose every edge/) });
    issues = issuesOf(edited((d) => (d.attributes[idx(d)].edges = [5.75, 6.5])));
    expect(issues[0]).toMatchObject({ path: 'attributes[12].edges[0]', message: expect.stringMatching(/more than 1 decimal/) });
    issues = issuesOf(edited((d) => (d.attributes[idx(d)].edges = [])));
    expect(issues[0]).toMatchObject({ path: 'attributes[12].edges', message: 'must have at least 1 entry, got 0' });
  });

  it('bad codes, kinds, genders, duplicates', () => {
    let issues = issuesOf(edited((d) => (d.attributes[2].codes.snomed = ['59621000', 'I10'])));
    expect(issues[0]).toMatchObject({ path: 'attributes[2].codes.snomed[1]', message: expect.stringMatching(/SNOMED CT concept id/) });
    issues = issuesOf(edited((d) => delete d.attributes[2].codes.snomed));
    expect(issues[0]).toMatchObject({ path: 'attributes[2].codes.snomed', message: expect.stringMatching(/is required/) });
    issues = issuesOf(edited((d) => (d.attributes[2].kind = 'diagnosis')));
    expect(issues[0]).toEqual({
      path: 'attributes[2].kind',
      message: 'must be one of age, sex, condition, lab, snp, image-finding, image-component, note-mention; got the string "diagnosis"',
    });
    issues = issuesOf(edited((d) => (d.attributes[1].values = ['female', 'M'])));
    expect(issues[0]).toMatchObject({ path: 'attributes[1].values[1]', message: expect.stringMatching(/administrative-gender/) });
    issues = issuesOf(edited((d) => (d.attributes[3].name = 'hypertension')));
    expect(issues[0]).toMatchObject({
      path: 'attributes[3].name',
      message: expect.stringMatching(/duplicate attribute name "hypertension" \(also attributes\[2\]\)/),
    });
    issues = issuesOf(edited((d) => d.attributes.at(-1).loinc.push('4548-4')));
    expect(issues[0].message).toMatch(/LOINC 4548-4 is already used by lab "hba1c"/);
  });

  it('privacy and metadata ranges', () => {
    let issues = issuesOf(edited((d) => (d.privacy.epsilon = 0)));
    expect(issues).toContainEqual({ path: 'privacy.epsilon', message: 'must be > 0, got 0' });
    issues = issuesOf(edited((d) => (d.referenceDate = '2025-02-30')));
    expect(issues[0]).toMatchObject({ path: 'referenceDate', message: expect.stringMatching(/calendar date/) });
    issues = issuesOf(edited((d) => (d.unit = 'encounter')));
    expect(issues[0]).toMatchObject({ path: 'unit', message: expect.stringMatching(/only "patient"/) });
    issues = issuesOf(edited((d) => (d.version = 1.5)));
    expect(issues[0]).toEqual({ path: 'version', message: 'must be an integer, got 1.5' });
  });

  it('reports several problems at once and formats them in the message', () => {
    try {
      parseSchema(edited((d) => ((d.version = 0), (d.privacy.delta = 2))));
      throw new Error('no error');
    } catch (e) {
      expect((e as SchemaError).issues.length).toBe(2);
      expect((e as Error).message).toMatch(/invalid schema \(2 problems\):\n {2}version: must be ≥ 1, got 0\n {2}privacy.delta/);
    }
  });

  it('parsed schema is plain data that round-trips through JSON', () => {
    const s: Schema = parseSchema(text);
    expect(parseSchema(JSON.stringify(s))).toEqual(s);
  });
});
