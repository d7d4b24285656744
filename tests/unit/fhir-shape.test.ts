// Memoised R4 validation gives the full validation's verdict: the shape signature keeps what the
// validator and the reachable invariants look at (modalities/fhir/shape.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getDataType, validationRegexes } from '@medplum/core';
import {
  buildPatientBundle,
  buildPatientResources,
  collectReferences,
  loadR4Definitions,
  R4Validator,
  validateBundle,
} from '../../modalities/fhir/bundle.ts';
import {
  AUDITED_FORMAT_SOURCES,
  AUDITED_INVARIANTS,
  SHAPE_AUDITED_TYPES,
  ShapeTrie,
  shapeSignature,
  stringClassByRegex,
  stringClassFast,
} from '../../modalities/fhir/shape.ts';
import { decodePatient } from '../../modalities/fhir/decode.ts';
import { Rng } from '../../model/rng.ts';
import { SOP_CLASS, uuidToDicomUid } from '../../modalities/image/dicom-writer.ts';
import { parseSchema } from '../../schema/schema.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));

function bundleOf(seed: string) {
  const rng = new Rng(seed);
  const row = schema.attributes.map((a) =>
    a.kind === 'age' ? 3 : a.kind === 'sex' ? 0 : a.kind === 'condition' ? (a.name === 'hypertension' ? 1 : 0) : a.name === 'egfr' ? 4 : 1,
  );
  const decoded = decodePatient(schema, row, rng);
  return buildPatientBundle(
    decoded,
    {
      image: {
        studyInstanceUid: uuidToDicomUid(rng.uuid()),
        seriesInstanceUid: uuidToDicomUid(rng.uuid()),
        sopInstanceUid: uuidToDicomUid(rng.uuid()),
        sopClassUid: SOP_CLASS.DX,
        modality: 'DX',
        started: '2024-10-01T09:30:00Z',
        findingClass: 'normal',
      },
      genome: { build: 'GRCh38', genotypes: [{ rsid: 'rs7903146', chrom: '10', pos: 112998590, ref: 'C', alt: 'T', dosage: 1 }] },
      note: { text: 'History: hypertension.\n', date: '2024-10-01T10:00:00Z' },
    },
    rng,
  ).bundle as FhirResourceLike & { entry: { fullUrl: string; resource: Record<string, any> }[] };
}

const entry = (b: ReturnType<typeof bundleOf>, pred: (r: Record<string, any>) => boolean) =>
  b.entry.find((e) => pred(e.resource))!.resource;
const variant = (r: Record<string, any>) => r.resourceType === 'Observation' && r.code.coding[0].code === '69548-6';

/** Changes the memo must not wave through on the strength of an earlier valid resource of similar shape. */
const MUTATIONS: [string, (b: ReturnType<typeof bundleOf>) => void][] = [
  [
    'subject pointing at an ImagingStudy (reference target type)',
    (b) => (entry(b, variant).subject.reference = b.entry.find((e) => e.resource.resourceType === 'ImagingStudy')!.fullUrl),
  ],
  ['control character in a string', (b) => (entry(b, (r) => r.resourceType === 'DocumentReference').description = 'a\u0001b')],
  ['blank string', (b) => (entry(b, (r) => r.resourceType === 'DocumentReference').description = '   ')],
  ['date where an instant is required', (b) => (entry(b, (r) => r.resourceType === 'DocumentReference').date = '2024-10-01')],
  ['negative unsignedInt', (b) => (entry(b, (r) => r.resourceType === 'DocumentReference').content[0].attachment.size = -3)],
  ['non-integer integer', (b) => (entry(b, (r) => r.resourceType === 'ImagingStudy').numberOfSeries = 1.5)],
  ['NaN decimal', (b) => (entry(b, (r) => r.resourceType === 'Observation' && r.valueQuantity).valueQuantity.value = Number.NaN)],
  [
    'Range with low above high',
    (b) => Object.assign(entry(b, variant).component.find((c: any) => c.valueRange).valueRange, { low: { value: 9 }, high: { value: 2 } }),
  ],
  ['component coded like the Observation', (b) => (entry(b, variant).component[0].code = structuredClone(entry(b, variant).code))],
  ['base64 with a bad padding', (b) => (entry(b, (r) => r.resourceType === 'DocumentReference').content[0].attachment.data = 'QQ=Q')],
  ['unknown member', (b) => (entry(b, (r) => r.resourceType === 'Condition').bogus = 1)],
];

describe('shape signatures for memoised R4 validation', () => {
  it('cover every error invariant reachable from the audited resource types', () => {
    loadR4Definitions();
    const seen = new Set<string>();
    const found = new Map<string, string>();
    const visit = (type: string) => {
      if (seen.has(type)) return;
      seen.add(type);
      let s: ReturnType<typeof getDataType> | undefined;
      try {
        s = getDataType(type);
      } catch {
        return;
      }
      for (const c of s.constraints ?? []) if (c.severity === 'error') found.set(c.key, c.expression);
      for (const el of Object.values(s.elements ?? {})) {
        for (const c of el.constraints ?? []) if (c.severity === 'error') found.set(c.key, c.expression);
        for (const t of el.type ?? []) visit(t.code);
      }
    };
    for (const t of SHAPE_AUDITED_TYPES) visit(t);
    expect(found.size).toBeGreaterThan(20);
    const unaudited = [...found].filter(([k]) => !(k in AUDITED_INVARIANTS)).map(([k, e]) => `${k}: ${e}`);
    expect(unaudited).toEqual([]);
  });

  it('give every mutated resource the full validation verdict', () => {
    const memo = new R4Validator('memo');
    for (const seed of ['w1', 'w2', 'w3']) expect(validateBundle(bundleOf(seed), memo)).toEqual([]);
    let rejected = 0;
    for (const [what, mutate] of MUTATIONS) {
      const b = bundleOf(`mut-${what}`);
      mutate(b);
      const full = validateBundle(b, new R4Validator('full')).filter((i) => !/does not resolve|required value set|variant/.test(i.message));
      const memoised = validateBundle(b, memo).filter((i) => !/does not resolve|required value set|variant/.test(i.message));
      expect(
        memoised.map((i) => i.resource),
        what,
      ).toEqual(full.map((i) => i.resource));
      if (full.length > 0) rejected++;
    }
    // The mutations are real errors for the validator, not no-ops.
    expect(rejected).toBeGreaterThanOrEqual(MUTATIONS.length - 2);
  });

  it('are shared by resources that differ only in values the validator does not look at', () => {
    const a = entry(bundleOf('s1'), variant);
    const b = entry(bundleOf('s2'), variant);
    expect(a.id).not.toBe(b.id);
    expect(shapeSignature(a)).toBe(shapeSignature(b));
    expect(shapeSignature({ ...a, contained: [] })).not.toBe(shapeSignature({ ...b, contained: [] }));
    // An Encounter's period is signed by its order (per-1), not its instants.
    const e1 = entry(bundleOf('s1'), (r) => r.resourceType === 'Encounter');
    const e2 = entry(bundleOf('s2'), (r) => r.resourceType === 'Encounter');
    expect(e1.period.start).not.toBe(e2.period.start);
    expect(shapeSignature(e1)).toBe(shapeSignature({ ...e1, period: e2.period }));
    const reversed = { ...e1, period: { start: e1.period.end, end: e1.period.start } };
    expect(shapeSignature(reversed)).not.toBe(shapeSignature(e1));
    // Records of one row differ in structure (how many visits, which carry a reason), yet most
    // resources of a new record reuse a verdict, and a record of known shapes needs no validation.
    const memo = new R4Validator('memo');
    for (let i = 0; i < 12; i++) validateBundle(bundleOf(`s${i}`), memo);
    const runs = memo.fullValidations;
    expect(memo.memoHits).toBeGreaterThan(3 * runs);
    validateBundle(bundleOf('s3'), memo);
    expect(memo.fullValidations).toBe(runs);
  });

  it('classify the UUID and Type/UUID string families as the regexes do (audited regexes unchanged)', () => {
    const sources = Object.fromEntries(
      Object.entries(validationRegexes)
        .filter(([k]) => k !== 'xhtml')
        .map(([k, re]) => [k, re.source]),
    );
    expect(sources).toEqual(AUDITED_FORMAT_SOURCES);
    const rng = new Rng('families');
    const strings: string[] = [];
    for (let i = 0; i < 300; i++) {
      const u = rng.uuid();
      strings.push(
        u,
        `Patient/${u}`,
        `ImagingStudy/${u}`,
        `DocumentReference/${u}`,
        u.toUpperCase(),
        `urn:uuid:${u}`,
        `#${u}`,
        `Patient/${u} `,
        `Pat ient/${u}`,
        `Patient/x${u}`,
        `/${u}`,
        `urn/${u}`,
        `P-1/${u}`,
      );
      const chars = [...u];
      chars[rng.int(36)] = 'g-0 /:.Z'[rng.int(8)];
      strings.push(chars.join(''), `Patient/${chars.join('')}`);
    }
    strings.push('', ' ', '2024-01-01', '2024-01-01T10:00:00Z', 'a\u0001b', 'rs7903146', 'urn:oid:1.2.3');
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(Array.from({ length: 30 + rng.int(200) }, () => rng.int(256)));
      const b64 = bytes.toString('base64');
      strings.push(b64, `${b64}=`, `${b64} `, b64.replace(/[A-Z]/, '-'), b64.slice(1), `=${b64.slice(1)}`, b64.replace(/=+$/, ''));
    }
    strings.push('A'.repeat(64), 'A'.repeat(68), 'AAAA'.repeat(17) + '=', 'AA=='.repeat(17));
    // Dates and UTC dateTimes to the second, over the whole family and its near misses.
    const two = (n: number) => String(n).padStart(2, '0');
    for (let i = 0; i < 3000; i++) {
      const y = String(rng.int(10000)).padStart(4, '0');
      const d = `${y}-${two(rng.int(14))}-${two(rng.int(33))}`;
      const t = `${d}T${two(rng.int(26))}:${two(rng.int(62))}:${two(rng.int(62))}`;
      strings.push(d, `${t}Z`, t, `${t}+01:00`, `${t}.5Z`, `${d}Z`, d.replace('-', '/'), `${t}Z `);
    }
    for (const x of strings) expect(stringClassFast(x), x).toBe(stringClassByRegex(x));
  });

  it('the memo trie: one entry per signature walk, holding that signature', () => {
    const trie = new ShapeTrie();
    const bySig = new Map<string, unknown>();
    const seen: Record<string, any>[] = [];
    for (const seed of ['t1', 't2', 't3', 't4']) for (const e of bundleOf(seed).entry) seen.push(e.resource);
    for (const [what, mutate] of MUTATIONS) {
      const b = bundleOf(`trie-${what}`);
      mutate(b);
      for (const e of b.entry) seen.push(e.resource);
    }
    seen.push(
      { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 'a' }, component: [] },
      { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 'a' } },
    );
    for (const r of seen) {
      const entry = trie.entry(r);
      const sig = shapeSignature(r);
      expect(entry.signature).toBe(sig);
      // Equal signatures share the entry (the builders' resources walk alike).
      if (bySig.has(sig)) expect(bySig.get(sig)).toBe(entry);
      bySig.set(sig, entry);
    }
    expect(new Set(seen.map((r) => shapeSignature(r))).size).toBe(bySig.size);
    // A bound on the trie's nodes starts it afresh without changing any entry's signature.
    const small = new ShapeTrie(50);
    for (const r of seen) expect(small.entry(r).signature).toBe(shapeSignature(r));
  });

  it('the memo walk collects the references collectReferences lists, in its order', () => {
    const trie = new ShapeTrie();
    const resources: Record<string, any>[] = [];
    for (const seed of ['r1', 'r2']) for (const e of bundleOf(seed).entry) resources.push(e.resource);
    const frozenPart = Object.freeze({ coding: Object.freeze([Object.freeze({ system: 'http://loinc.org', code: '1' })]) });
    resources.push(
      // Nested and repeated references, a frozen part, a reference that is not a string, and an
      // array of strings under a `reference` key (collectReferences skips those; so must the walk).
      {
        resourceType: 'Observation',
        id: 'o',
        status: 'final',
        code: frozenPart,
        subject: { reference: 'Patient/p' },
        derivedFrom: [{ reference: 'ImagingStudy/i' }, { reference: 'ImagingStudy/j', display: 'x' }],
        hasMember: [{ reference: 7 }],
        focus: [{ reference: ['Patient/a', 'Patient/b'] }],
      },
      // Not memoised by shape (contained): the walk does not run, the caller collects.
      {
        resourceType: 'Observation',
        id: 'c',
        status: 'final',
        code: { text: 'a' },
        contained: [{ resourceType: 'Patient', id: 'x' }],
        subject: { reference: '#x' },
      },
    );
    let complete = 0;
    for (const r of resources) {
      const found = { refs: [] as string[], complete: false };
      trie.entry(r, undefined, found);
      if (!found.complete) {
        expect('contained' in r || !SHAPE_AUDITED_TYPES.has(r.resourceType)).toBe(true);
        continue;
      }
      complete++;
      expect(found.refs, r.resourceType).toEqual(collectReferences(r));
    }
    expect(complete).toBe(resources.length - 1);
    expect(resources.flatMap((r) => collectReferences(r)).length).toBeGreaterThan(10);
  });

  it("sign the builders' shared frozen parts as their unfrozen copies", () => {
    const rng = new Rng('frozen');
    // Every condition (so every lab must be consistent with them: BMI in the obesity range).
    const row = schema.attributes.map((a) =>
      a.kind === 'age' ? 3 : a.kind === 'sex' ? 1 : a.kind === 'condition' ? 1 : a.name === 'bmi' ? 3 : 1,
    );
    const decoded = decodePatient(schema, row, rng);
    const resources = buildPatientResources(
      decoded,
      {
        image: {
          studyInstanceUid: '2.25.1',
          seriesInstanceUid: '2.25.2',
          sopInstanceUid: '2.25.3',
          sopClassUid: SOP_CLASS.DX,
          modality: 'DX',
          started: '2024-10-01T09:30:00Z',
          findingClass: 'normal',
        },
        genome: {
          build: 'GRCh37',
          genotypes: [
            { rsid: 'rs7903146', chrom: '10', pos: 114758349, ref: 'C', alt: 'T', dosage: 2 },
            { chrom: 'X', pos: 100, ref: 'A', alt: 'G', dosage: 1 },
          ],
        },
        note: { text: 'History: hypertension.\n', date: '2024-10-01T10:00:00Z' },
      },
      rng,
    );
    const variant = resources.find((r) => r.resourceType === 'Observation' && (r.meta as { profile?: string[] } | undefined)?.profile);
    expect(Object.isFrozen(variant!.meta)).toBe(true);
    const trie = new ShapeTrie();
    for (const r of resources) {
      const copy = structuredClone(r); // unfrozen, undefined members kept
      expect(shapeSignature(r)).toBe(shapeSignature(copy));
      expect(trie.entry(r).signature).toBe(shapeSignature(copy));
    }
    // A frozen part holding a reference is walked as usual (its signature depends on `refs`).
    const frozenRef = Object.freeze({ reference: 'urn:uuid:x' });
    const refs = new Map([['urn:uuid:x', 'ImagingStudy/x']]);
    const a = { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'a' }, derivedFrom: [frozenRef] };
    const b = { ...a, derivedFrom: [{ reference: 'urn:uuid:x' }] };
    expect(shapeSignature(a, refs)).toBe(shapeSignature(b, refs));
    expect(shapeSignature(a, refs)).not.toBe(shapeSignature(a));
  });
});
