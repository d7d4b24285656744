// Schema kinds of the other modalities: snp, image-finding, note-mention (+ image/notes sections).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  attributeLabels,
  imageClass,
  noteVocabulary,
  parseSchema,
  schemaAttributes,
  schemaHash,
  SchemaError,
  snpPanel,
} from '../../schema/schema.ts';
import { DEFAULT_SCHEMA_PATH, MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { PANEL } from '../../simulator/genome.ts';

const v1Text = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8');
const mmText = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');

function issues(text: string): Array<{ path: string; message: string }> {
  try {
    parseSchema(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaError);
    return (e as SchemaError).issues;
  }
  throw new Error('expected a SchemaError');
}

const base = `name: t
version: 1
unit: patient
referenceDate: "2025-01-01"
privacy: { epsilon: 1, delta: 1.0e-9 }
`;

describe('multimodal schema kinds', () => {
  it('hospital-multimodal-v1 parses; its FHIR attributes are hospital-v1 unchanged; finite domains', () => {
    const v1 = parseSchema(v1Text);
    const mm = parseSchema(mmText);
    expect(mm.attributes.slice(0, v1.attributes.length)).toEqual(v1.attributes);
    expect(v1.image).toBeUndefined();
    expect(Object.keys(v1)).not.toContain('image'); // v1's hash is unchanged by the new optional sections
    expect(schemaHash(v1)).toBe(schemaHash(parseSchema(v1Text)));
    expect(mm.image).toEqual({ modalities: ['DX', 'CR'], bodyPart: 'CHEST', grid: 64 });
    expect(mm.notes!.maxNotesPerPatient).toBe(20);
    for (const a of schemaAttributes(mm)) expect(a.size).toBeLessThanOrEqual(11);
    const snp = mm.attributes.find((a) => a.kind === 'snp')!;
    expect(attributeLabels(snp)).toEqual(['0', '1', '2', 'missing']);
    const img = mm.attributes.find((a) => a.name === 'img_cardiomegaly')!;
    expect(attributeLabels(img)).toEqual(['normal', 'enlarged', 'no-image']);
    const note = mm.attributes.find((a) => a.kind === 'note-mention')!;
    expect(attributeLabels(note)).toEqual(['absent', 'mentioned', 'no-note']);
    if (img.kind !== 'image-finding') throw new Error('kind');
    expect([0.3, 0.49, 0.5, 0.7].map((s) => imageClass(img, s))).toEqual([0, 0, 1, 1]);
    expect(noteVocabulary(mm)).toContain('heart failure');
    expect(noteVocabulary(mm)).toContain('negative for');
  });

  it('the SNP panel equals the simulator panel (same chrom/pos/ref/alt, same order)', () => {
    const panel = snpPanel(parseSchema(mmText));
    expect(panel.map((a) => [a.name, a.chrom, a.pos, a.ref, a.alt])).toEqual(PANEL.map((s) => [s.name, s.chrom, s.pos, s.ref, s.alt]));
  });

  it('rejects bad SNPs, image findings and note mentions with precise messages', () => {
    const bad = issues(
      base +
        `attributes:
  - { name: s1, kind: snp, chrom: chr1, pos: 10, ref: A, alt: G }
  - { name: s2, kind: snp, chrom: "2", pos: 0, ref: AT, alt: A, rsid: "x1" }
  - { name: s3, kind: snp, chrom: "3", pos: 5, ref: C, alt: C }
  - { name: s4, kind: snp, chrom: 3, pos: 5, ref: C, alt: T }
  - { name: s5, kind: snp, chrom: "3", pos: 5, ref: C, alt: T }
  - { name: i1, kind: image-finding, feature: heart-size, edges: [0.5], classes: [a, b] }
  - { name: n1, kind: note-mention, terms: [Pneumonia, very long term here] }
`,
    );
    const msg = (path: string) => bad.filter((i) => i.path === path).map((i) => i.message);
    expect(msg('attributes[0].chrom')[0]).toMatch(/without "chr"/);
    expect(msg('attributes[1].pos')[0]).toMatch(/≥ 1/);
    expect(msg('attributes[1].ref')[0]).toMatch(/one base/);
    expect(msg('attributes[1].rsid')[0]).toMatch(/dbSNP/);
    expect(msg('attributes[2].alt')[0]).toMatch(/must differ from ref/);
    expect(msg('attributes[4]')[0]).toMatch(/SNP 3:5:C:T is already attribute "s4"/);
    expect(msg('attributes[5].feature')[0]).toMatch(/must be one of cardiothoracic-ratio, lung-opacity, nodule/);
    expect(msg('attributes[6].terms[0]')[0]).toMatch(/lower case/);
    expect(msg('attributes[6].terms[1]')[0]).toMatch(/one or two words/);
    // Valid image/note attributes still need their sections.
    const missing = issues(
      base +
        `attributes:\n  - { name: i1, kind: image-finding, feature: nodule, edges: [0.1], classes: [a, b] }\n  - { name: n1, kind: note-mention, terms: [pneumonia] }\n`,
    );
    expect(missing).toEqual([
      { path: 'attributes[0]', message: 'an image-finding attribute needs the top-level image section' },
      { path: 'attributes[1]', message: 'a note-mention attribute needs the top-level notes section' },
    ]);
  });

  it('image classes must match edges; note sections must exist; sections are validated', () => {
    const bad = issues(
      base +
        `image: { modalities: [DX, xray], grid: 4 }
notes: { sections: { assessment: [impression] }, negations: [no, not at all ever], maxNotesPerPatient: 0 }
attributes:
  - { name: i1, kind: image-finding, feature: nodule, edges: [0.1, 0.2], classes: [a, b] }
  - { name: n1, kind: note-mention, terms: [pneumonia], sections: [history] }
`,
    );
    const paths = bad.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'image.modalities[1]',
        'image.grid',
        'notes.negations[1]',
        'notes.maxNotesPerPatient',
        'attributes[0].classes',
      ]),
    );
    expect(bad.find((i) => i.path === 'attributes[0].classes')!.message).toBe('needs 3 labels for 2 edge(s), got 2');
    const sections = issues(
      base +
        `notes: { sections: { assessment: [impression] }, negations: [no], maxNotesPerPatient: 5 }\nattributes:\n  - { name: n1, kind: note-mention, terms: [pneumonia], sections: [history] }\n`,
    );
    expect(sections).toEqual([{ path: 'attributes[0].sections[0]', message: 'unknown section "history" (notes.sections has assessment)' }]);
  });
});

describe('declared structure', () => {
  const attrs = `attributes:
  - { name: a, kind: sex, values: [male, female] }
  - { name: b, kind: condition, display: B, codes: { snomed: ["59621000"] } }
  - { name: c, kind: condition, display: C, codes: { snomed: ["38341003"] } }
`;
  it('parses the default multimodal schema: every set names schema attributes, none twice', () => {
    const s = parseSchema(mmText);
    expect(s.structure!.share).toBeCloseTo(
      s.structure!.groups!.reduce((p, g) => p + g.share, 0),
      12,
    );
    expect(s.structure!.marginals).toEqual(s.structure!.groups!.flatMap((g) => g.marginals));
    const names = new Set(s.attributes.map((a) => a.name));
    for (const m of s.structure!.marginals) for (const n of m) expect(names.has(n)).toBe(true);
    expect(s.structure!.marginals).toContainEqual(['img_opacity', 'pneumonia']);
    expect(new Set(s.structure!.marginals.map((m) => [...m].sort().join('|'))).size).toBe(s.structure!.marginals.length);
  });
  it('accepts a valid section and changes the schema hash', () => {
    const s = parseSchema(base + attrs + 'structure: { share: 0.1, marginals: [[a, b], [a, b, c]] }\n');
    expect(s.structure).toEqual({
      share: 0.1,
      marginals: [
        ['a', 'b'],
        ['a', 'b', 'c'],
      ],
    });
    expect(schemaHash(parseSchema(base + attrs))).not.toBe(
      schemaHash(parseSchema(base + attrs + 'structure: { share: 0.1, marginals: [[a, b]] }\n')),
    );
  });
  it('rejects malformed sections with the offending path', () => {
    const bad = (section: string) => issues(base + attrs + section).map((i) => `${i.path}: ${i.message}`);
    expect(bad('structure: { share: 0.1, marginals: [[a, zz]] }\n')).toEqual(['structure.marginals[0][1]: unknown attribute "zz"']);
    expect(bad('structure: { share: 0.1, marginals: [[a]] }\n')[0]).toMatch(
      /^structure.marginals\[0\]: must be a list of 2 or 3 attribute names/,
    );
    expect(bad('structure: { share: 0.1, marginals: [[a, b, c, a]] }\n')[0]).toMatch(/^structure.marginals\[0\]: must be a list of 2 or 3/);
    expect(bad('structure: { share: 0.1, marginals: [[a, a]] }\n')).toEqual(['structure.marginals[0]: names an attribute twice']);
    expect(bad('structure: { share: 0.1, marginals: [[a, b], [b, a]] }\n')).toEqual([
      'structure.marginals[1]: adds no attribute set not already listed',
    ]);
    expect(bad('structure: { share: 0.9, marginals: [[a, b]] }\n')[0]).toMatch(/^structure.share/);
    expect(bad('structure: { share: 0, marginals: [[a, b]] }\n')[0]).toMatch(/^structure.share/);
    expect(bad('structure: { marginals: [[a, b]] }\n')[0]).toMatch(/^structure.share/);
    expect(bad('structure: { share: 0.1, marginals: [] }\n')[0]).toMatch(/^structure.marginals/);
    expect(bad('structure: { share: 0.1, marginals: [[a, 3]] }\n')[0]).toMatch(/^structure.marginals\[0\]: must be a list/);
    expect(bad('structure: { share: 0.1, marginals: [[a, b]], extra: 1 }\n')[0]).toMatch(/^structure/);
    expect(bad('structure: [a, b]\n')[0]).toMatch(/^structure/);
  });
});
