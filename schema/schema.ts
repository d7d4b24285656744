/**
 * The public schema of a federation.
 *
 * A schema file (YAML or JSON) fixes every choice that must not depend on private data: the
 * attributes and their finite domains, the code lists that map clinical codes to indicators, the
 * bin edges of labs/vitals, the reference date ages are computed at, the unit of privacy and the
 * default privacy parameters of a fit. Every federation message carries `schemaHash(schema)`.
 *
 * File format (see schema/hospital-v1.yaml for a complete example):
 *
 * ```yaml
 * name: hospital            # [a-z0-9-]+
 * version: 1                # positive integer, bumped on any change
 * unit: patient             # the unit of privacy; only "patient" is supported
 * referenceDate: 2025-01-01 # ages are computed at this date (YYYY-MM-DD)
 * attributes:               # in model order; each is one column of the encoded table
 *   - name: age
 *     kind: age
 *     edges: [0, 18, 30]    # lower edges in years, strictly increasing, first 0, last bin open
 *     max: 100              # upper bound of the open bin, used only when decoding
 *   - name: sex
 *     kind: sex
 *     values: [female, male, other, unknown]   # FHIR administrative-gender codes
 *   - name: hypertension
 *     kind: condition       # 2 values: 0 = no, 1 = yes
 *     display: Essential hypertension (disorder)   # display of the first SNOMED code
 *     codes:
 *       snomed: ["59621000", "38341003"]         # exact match
 *       icd10cm: ["I10", "I11"]                  # matches the code and its descendants (I11.9)
 *   - name: hba1c
 *     kind: lab             # bins: below edges[0], [edges[i], edges[i+1]), ≥ last edge, missing
 *     display: Hemoglobin A1c/Hemoglobin.total in Blood
 *     loinc: ["4548-4"]     # first code is the one decoders emit
 *     unit: "%"             # UCUM code; observations with another unit are not used
 *     category: laboratory  # FHIR observation-category code used when decoding
 *     edges: [5.7, 6.5, 8]
 *     range: [3.5, 15]      # plausible values, bounds the open bins when decoding
 *     decimals: 1           # precision of decoded values
 * privacy:
 *   epsilon: 1              # default (ε, δ) of one fit
 *   delta: 1.0e-9
 * ```
 *
 * Other modalities (see schema/hospital-multimodal-v1.yaml; every domain stays finite):
 *
 * ```yaml
 * image:                    # required when an image-finding attribute exists
 *   modalities: [DX, CR]    # DICOM Modality values accepted as the patient's image
 *   bodyPart: CHEST         # optional: BodyPartExamined must match when the file has one
 *   grid: 64                # feature grid: images are resampled (area average) to grid × grid
 * notes:                    # required when a note-mention attribute exists
 *   sections:               # canonical section → heading spellings (case-insensitive)
 *     assessment: [assessment, impression, assessment and plan]
 *   negations: [no, denies, without]   # a term preceded by one of these (≤ 3 words, same phrase) is not a mention
 *   maxNotesPerPatient: 20  # contribution bound: at most this many notes of a patient are read
 * attributes:
 *   - name: snp_apoe
 *     kind: snp             # values 0, 1, 2 (alt-allele dosage), missing
 *     chrom: "19"
 *     pos: 44908684
 *     ref: T
 *     alt: C
 *     rsid: rs429358        # optional; also used to match VCF records
 *   - name: img_cardiomegaly
 *     kind: image-finding   # values: classes…, then "no image"
 *     feature: cardiothoracic-ratio   # a fixed public extractor (IMAGE_FEATURES)
 *     edges: [0.55]         # score cut points: k edges → k+1 classes
 *     classes: [normal, enlarged]
 *   - name: note_pneumonia
 *     kind: note-mention    # values: absent, mentioned, "no note"
 *     terms: [pneumonia, consolidation]   # 1–2 words each: the note vocabulary is the union of all terms
 *     sections: [assessment]              # optional: only mentions under these sections count
 * ```
 *
 * Declared structure (docs/synthesis.md "Declared structure"): one group, or a list of groups,
 * each its own round at its own share of ρ; a group may measure age in bands (band queries):
 *
 * ```yaml
 * structure:
 *   - share: 0.2
 *     marginals: [[img_opacity, pneumonia], [sex, kind:condition]]
 *   - share: 0.2
 *     coarsen: { age: [0, 18, 40, 65] }   # lower edges, each an edge of the age attribute
 *     marginals: [[age, kind:condition]]  # released as condition × age band (sums of age bins)
 * ```
 *
 * Pure: no I/O. Callers read the file and hand its text to `parseSchema`.
 */
import { createHash } from 'node:crypto';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { type Obj, Checker } from './checker.ts';
import { checkAttribute, NAME_RE, validDate } from './attributes.ts';
import {
  type ImageSection,
  type NotesSection,
  type PrivacyDefaults,
  type Schema,
  type SchemaAttribute,
  SchemaError,
  type StructureGroup,
  type StructureSection,
} from './types.ts';
import { ageBandGroups, expandEntry, parseAgeBands, parseWorkloadSection, type AttrInfo } from './workload.ts';

export * from './types.ts';
export * from './codes.ts';
export { ATTRIBUTE_KINDS } from './attributes.ts';

/** Parses and validates a schema from YAML or JSON text; throws SchemaError listing every problem. */
export function parseSchema(text: string): Schema {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new SchemaError([{ path: '', message: `not valid YAML/JSON${where}: ${msg}` }]);
  }
  return validateSchema(doc);
}

/** Validates an already-parsed object (e.g. from JSON.parse). */
export function validateSchema(doc: unknown): Schema {
  const c = new Checker();
  const root = c.object(doc, '');
  if (!root) throw new SchemaError(c.issues);
  c.keys(root, '', ['name', 'version', 'unit', 'referenceDate', 'attributes', 'privacy', 'image', 'notes', 'structure', 'workload']);
  const name = c.string(root, 'name', '', /^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes');
  const version = c.number(root, 'version', '', { integer: true, min: 1 });
  const unit = c.string(root, 'unit', '');
  if (unit !== undefined && unit !== 'patient')
    c.fail('unit', `only "patient" is supported as the unit of privacy, got ${JSON.stringify(unit)}`);
  // YAML 1.2 keeps 2025-01-01 a string; a Date would come from YAML 1.1 timestamps: accept both.
  if (root.referenceDate instanceof Date) root.referenceDate = root.referenceDate.toISOString().slice(0, 10);
  const referenceDate = c.string(root, 'referenceDate', '');
  if (referenceDate !== undefined && !validDate(referenceDate))
    c.fail('referenceDate', `must be a calendar date YYYY-MM-DD, got ${JSON.stringify(referenceDate)}`);

  const attributes: SchemaAttribute[] = [];
  /** Index in the file of each valid attribute (for error paths). */
  const rawIndex: number[] = [];
  const list = c.list(root, 'attributes', '');
  if (list) {
    const names = new Map<string, number>();
    const loincOwner = new Map<string, string>();
    const kinds: Record<string, number> = {};
    list.forEach((raw, i) => {
      const path = `attributes[${i}]`;
      const attr = checkAttribute(c, raw, path);
      if (!attr) return;
      if (names.has(attr.name)) {
        c.fail(`${path}.name`, `duplicate attribute name ${JSON.stringify(attr.name)} (also attributes[${names.get(attr.name)}])`);
        return;
      }
      names.set(attr.name, i);
      kinds[attr.kind] = (kinds[attr.kind] ?? 0) + 1;
      if ((attr.kind === 'age' || attr.kind === 'sex') && kinds[attr.kind] > 1) {
        c.fail(`${path}.kind`, `at most one attribute of kind ${attr.kind} is allowed`);
      }
      if (attr.kind === 'lab') {
        attr.loinc.forEach((code, j) => {
          const owner = loincOwner.get(code);
          if (owner) c.fail(`${path}.loinc[${j}]`, `LOINC ${code} is already used by lab ${JSON.stringify(owner)}`);
          else loincOwner.set(code, attr.name);
        });
      }
      attributes.push(attr);
      rawIndex.push(i);
    });
  }

  let privacy: PrivacyDefaults | undefined;
  const pr = c.required(root, 'privacy', '');
  if (pr !== undefined) {
    const po = c.object(pr, 'privacy');
    if (po) {
      c.keys(po, 'privacy', ['epsilon', 'delta']);
      const epsilon = c.number(po, 'epsilon', 'privacy', { min: 0, minExclusive: true, max: 100 });
      const delta = c.number(po, 'delta', 'privacy', { min: 0, max: 1e-3 });
      if (epsilon !== undefined && delta !== undefined) privacy = { epsilon, delta };
    }
  }

  const image = 'image' in root ? checkImageSection(c, root.image) : undefined;
  const notes = 'notes' in root ? checkNotesSection(c, root.notes) : undefined;
  const snpPositions = new Map<string, string>();
  attributes.forEach((a, k) => {
    const i = rawIndex[k];
    if ((a.kind === 'image-finding' || a.kind === 'image-component') && !('image' in root))
      c.fail(`attributes[${i}]`, `an ${a.kind} attribute needs the top-level image section`);
    if (a.kind === 'image-component' && image && Math.max(...a.basis) >= image.grid)
      c.fail(`attributes[${i}].basis`, `frequencies must be below the image grid (${image.grid})`);
    if (a.kind === 'note-mention') {
      if (!('notes' in root)) c.fail(`attributes[${i}]`, 'a note-mention attribute needs the top-level notes section');
      else if (notes)
        a.sections?.forEach((sec, j) => {
          if (!(sec in notes.sections))
            c.fail(
              `attributes[${i}].sections[${j}]`,
              `unknown section ${JSON.stringify(sec)} (notes.sections has ${Object.keys(notes.sections).join(', ')})`,
            );
        });
    }
    if (a.kind === 'snp') {
      const key = `${a.chrom}:${a.pos}:${a.ref}:${a.alt}`;
      const owner = snpPositions.get(key);
      if (owner) c.fail(`attributes[${i}]`, `SNP ${key} is already attribute ${JSON.stringify(owner)}`);
      else snpPositions.set(key, a.name);
    }
  });

  const structure = 'structure' in root ? checkStructureSection(c, root.structure, attributes) : undefined;
  const ageEdges = attributes.find((a) => a.kind === 'age')?.edges;
  const workload = 'workload' in root ? parseWorkloadSection(root.workload, attributes, ageEdges, (p, m) => c.fail(p, m)) : undefined;

  if (c.issues.length > 0) throw new SchemaError(c.issues);
  return {
    name: name!,
    version: version!,
    unit: 'patient',
    referenceDate: referenceDate!,
    attributes,
    privacy: privacy!,
    ...(image ? { image } : {}),
    ...(notes ? { notes } : {}),
    ...(structure ? { structure } : {}),
    ...(workload ? { workload } : {}),
  };
}

/** Upper bound on the declared rounds' shares together: the adaptive plan keeps the rest. */
export const MAX_STRUCTURE_SHARE = 0.6;

/** `structure` is one group { share, marginals } or a list of groups, each its own round. */
function checkStructureSection(
  c: Checker,
  raw: unknown,
  attrs: readonly (AttrInfo & { edges?: number[] })[],
): StructureSection | undefined {
  const before = c.issues.length;
  // One set of measured sets per coarsening: [age, asthma] in bins and in bands are two queries.
  const seen = new Map<string, Set<string>>();
  const list = Array.isArray(raw);
  const entries = list ? (raw as unknown[]) : [raw];
  if (list && entries.length === 0) c.fail('structure', 'must be a group { share, marginals } or a non-empty list of groups');
  const groups = entries.map((entry, g) => checkStructureGroup(c, entry, list ? `structure[${g}]` : 'structure', attrs, seen));
  if (c.issues.length > before || groups.some((g) => !g) || groups.length === 0) return undefined;
  const ok = groups as StructureGroup[];
  const share = ok.reduce((p, g) => p + g.share, 0);
  if (share > MAX_STRUCTURE_SHARE) {
    c.fail('structure', `the shares sum to ${share}, more than ${MAX_STRUCTURE_SHARE}: the adaptive plan needs the rest`);
    return undefined;
  }
  const marginals = ok.flatMap((g) => g.marginals);
  return list ? { share, marginals, groups: ok } : ok[0];
}

function checkStructureGroup(
  c: Checker,
  raw: unknown,
  path: string,
  attrs: readonly (AttrInfo & { edges?: number[] })[],
  seen: Map<string, Set<string>>,
): StructureGroup | undefined {
  const o = c.object(raw, path);
  if (!o) return undefined;
  const before = c.issues.length;
  c.keys(o, path, ['share', 'marginals', 'coarsen']);
  const share = c.number(o, 'share', path, { min: 0, minExclusive: true, max: 0.5 });
  const coarse = 'coarsen' in o ? checkCoarsen(c, o.coarsen, `${path}.coarsen`, attrs) : undefined;
  if (c.issues.length > before) return undefined;
  const key = coarse ? JSON.stringify(coarse.coarsen) : '';
  if (!seen.has(key)) seen.set(key, new Set());
  const list = c.list(o, 'marginals', path);
  const marginals: string[][] = [];
  list?.forEach((entry, i) => {
    const sets = expandEntry(entry, `${path}.marginals[${i}]`, attrs, seen.get(key)!, (p, m) => c.fail(p, m));
    if (sets) marginals.push(...sets);
  });
  if (coarse) {
    for (const a of Object.keys(coarse.coarsen))
      if (!marginals.some((m) => m.includes(a))) c.fail(`${path}.coarsen.${a}`, `no marginal of the group names "${a}"`);
  }
  if (c.issues.length > before || share === undefined || !list) return undefined;
  return { share, marginals, ...(coarse ?? {}) };
}

/**
 * A group's `coarsen: { age: [0, 18, 40, 65] }`: the age attribute measured in bands (lower edges,
 * each an edge of the attribute), and the value map of codes the round carries to the sites.
 * Only the age kind can be coarsened so far (its bins are ordered and every value is a bin).
 */
function checkCoarsen(
  c: Checker,
  raw: unknown,
  path: string,
  attrs: readonly (AttrInfo & { edges?: number[] })[],
): { coarsen: Record<string, number[]>; valueMap: Record<string, number[]> } | undefined {
  const o = c.object(raw, path);
  if (!o) return undefined;
  const before = c.issues.length;
  const coarsen: Record<string, number[]> = {};
  const valueMap: Record<string, number[]> = {};
  const names = Object.keys(o);
  if (names.length === 0) c.fail(path, 'names no attribute (e.g. coarsen: { age: [0, 18, 40, 65] })');
  for (const name of names) {
    const a = attrs.find((x) => x.name === name);
    if (!a) {
      c.fail(`${path}.${name}`, `unknown attribute ${JSON.stringify(name)}`);
      continue;
    }
    if (a.kind !== 'age' || !a.edges) {
      c.fail(`${path}.${name}`, `only an attribute of kind age can be coarsened, "${name}" is of kind ${a.kind}`);
      continue;
    }
    const bands = parseAgeBands(o[name], a.edges, (p, m) => c.fail(p, m), `${path}.${name}`);
    if (!bands) continue;
    if (bands.length === a.edges.length) {
      c.fail(`${path}.${name}`, `the bands are the attribute's own bins: nothing to coarsen (drop coarsen)`);
      continue;
    }
    coarsen[name] = bands;
    valueMap[name] = ageBandGroups(a.edges, bands).groupOf;
  }
  return c.issues.length > before ? undefined : { coarsen, valueMap };
}

function checkImageSection(c: Checker, raw: unknown): ImageSection | undefined {
  const o = c.object(raw, 'image');
  if (!o) return undefined;
  const before = c.issues.length;
  c.keys(o, 'image', ['modalities', 'bodyPart', 'grid']);
  const modalities = c.stringList(o, 'modalities', 'image', /^[A-Z][A-Z0-9_]{1,15}$/, 'a DICOM Modality code such as DX');
  let bodyPart: string | undefined;
  if ('bodyPart' in o) bodyPart = c.string(o, 'bodyPart', 'image', /^[A-Z][A-Z0-9_ ]*$/, 'a DICOM BodyPartExamined code such as CHEST');
  const grid = c.number(o, 'grid', 'image', { integer: true, min: 8, max: 256 });
  if (c.issues.length > before || !modalities || grid === undefined) return undefined;
  return { modalities, ...(bodyPart ? { bodyPart } : {}), grid };
}

function checkNotesSection(c: Checker, raw: unknown): NotesSection | undefined {
  const o = c.object(raw, 'notes');
  if (!o) return undefined;
  const before = c.issues.length;
  c.keys(o, 'notes', ['sections', 'negations', 'maxNotesPerPatient']);
  const sections: Record<string, string[]> = {};
  const so = c.object(c.required(o, 'sections', 'notes') ?? {}, 'notes.sections');
  if (so) {
    for (const key of Object.keys(so)) {
      if (!NAME_RE.test(key)) c.fail(`notes.sections.${key}`, 'section names are lower_snake_case');
      const list = c.stringList(so, key, 'notes.sections');
      if (list) sections[key] = list.map((h) => h.toLowerCase());
    }
  }
  const negations = c.stringList(o, 'negations', 'notes');
  negations?.forEach((t, i) => {
    if (t.trim().split(/\s+/).length > 2) c.fail(`notes.negations[${i}]`, `negation cues have one or two words, got ${JSON.stringify(t)}`);
  });
  const maxNotesPerPatient = c.number(o, 'maxNotesPerPatient', 'notes', { integer: true, min: 1, max: 1000 });
  if (c.issues.length > before || !negations || maxNotesPerPatient === undefined) return undefined;
  return { sections, negations, maxNotesPerPatient };
}

// ---------------------------------------------------------------------------------------------
// Hash

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as Obj)
      .filter((k) => (v as Obj)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Obj)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Canonical JSON (sorted keys, no whitespace) of a parsed schema. */
export function canonicalSchemaJson(schema: Schema): string {
  return canonical(schema);
}

/** sha256 hex of the canonical JSON of the parsed schema: stable under key order and formatting. */
export function schemaHash(schema: Schema): string {
  return createHash('sha256').update(canonicalSchemaJson(schema), 'utf8').digest('hex');
}
