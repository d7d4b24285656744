/**
 * The public schema of a federation (DESIGN.md §2).
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
 * Pure: no I/O. Callers read the file and hand its text to `parseSchema`.
 */
import { createHash } from 'node:crypto';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { expandEntry, parseWorkloadSection, type AttrInfo, type WorkloadSection } from './workload.ts';

export const CODE_SYSTEMS = {
  snomed: 'http://snomed.info/sct',
  icd10cm: 'http://hl7.org/fhir/sid/icd-10-cm',
  icd10: 'http://hl7.org/fhir/sid/icd-10',
} as const;
export type CodeSystemKey = keyof typeof CODE_SYSTEMS;
export const LOINC_SYSTEM = 'http://loinc.org';
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/** FHIR R4 administrative-gender codes. */
export const FHIR_GENDERS = ['male', 'female', 'other', 'unknown'] as const;
export const OBSERVATION_CATEGORIES = ['vital-signs', 'laboratory'] as const;

export interface AgeAttribute {
  name: string;
  kind: 'age';
  /** Lower edges in whole years, strictly increasing, starting at 0; the last bin is open. */
  edges: number[];
  /** Upper bound (exclusive) of the open last bin, used only when decoding. */
  max: number;
}

export interface SexAttribute {
  name: string;
  kind: 'sex';
  /** FHIR administrative-gender codes, one value each, in domain order. */
  values: string[];
}

export interface ConditionAttribute {
  name: string;
  kind: 'condition';
  display: string;
  /** Code lists per system key; `snomed` is required (decoders emit its first code). */
  codes: Partial<Record<CodeSystemKey, string[]>> & { snomed: string[] };
}

export interface LabAttribute {
  name: string;
  kind: 'lab';
  display: string;
  loinc: string[];
  unit: string;
  category: (typeof OBSERVATION_CATEGORIES)[number];
  /** Interior cut points, strictly increasing: k edges give k+1 value bins plus "missing". */
  edges: number[];
  range: [number, number];
  decimals: number;
}

/** Genotype of one biallelic SNP: 0/1/2 copies of `alt` (code = dosage), 3 = missing (no call or no genome). */
export interface SnpAttribute {
  name: string;
  kind: 'snp';
  /** Chromosome without `chr` (1–22, X, Y, MT). */
  chrom: string;
  /** 1-based position (the reference build is the federation's, stated in its documentation). */
  pos: number;
  ref: string;
  alt: string;
  rsid?: string;
}

/**
 * The fixed, public image feature extractors (site-agent/features/image.ts implements them on
 * the schema's grid):
 * - `cardiothoracic-ratio`: widest gap between the two lung fields in the lower 45 % of the
 *   lung box, divided by the lung box width.
 * - `lung-opacity`: the largest mean intensity of the lateral lung zones (2 sides × 3 heights)
 *   minus their median, on the percentile-normalised image.
 * - `nodule`: the largest local contrast (pixel − mean of its 7 × 7 neighbourhood, 3 × 3 centre
 *   averaged) inside the lung fields.
 */
export const IMAGE_FEATURES = ['cardiothoracic-ratio', 'lung-opacity', 'nodule'] as const;
export type ImageFeature = (typeof IMAGE_FEATURES)[number];

/** A class of an image-derived score: codes 0..edges.length are the classes, then "no image". */
export interface ImageFindingAttribute {
  name: string;
  kind: 'image-finding';
  feature: ImageFeature;
  /** Strictly increasing score cut points: score < edges[0] → class 0, …, ≥ last → last class. */
  edges: number[];
  /** edges.length + 1 class labels. */
  classes: string[];
}

/**
 * A bin of the patient's image along a public low-frequency DCT-II basis image (u, v) on the
 * schema's grid, computed from the normalised grid image (1st percentile → 0, 99th → 1):
 * codes 0..edges.length are the bins (below edges[0], …, at or above the last), then "no image".
 * Basis and edges are public and data-independent, so they cost no budget
 * (modalities/image/components.ts decodes them).
 */
export interface ImageComponentAttribute {
  name: string;
  kind: 'image-component';
  /** [u, v]: vertical and horizontal frequency, each 0..7, not both 0. */
  basis: [number, number];
  /** Strictly increasing coefficient cut points. */
  edges: number[];
  /** Decoding range [lo, hi] of the open outer bins (lo < edges[0], hi > last edge). */
  range: [number, number];
}

/** Whether the patient's notes mention one of `terms` (not negated): 0 absent, 1 mentioned, 2 no note. */
export interface NoteMentionAttribute {
  name: string;
  kind: 'note-mention';
  /** Vocabulary terms of one or two words, lower case after normalisation. */
  terms: string[];
  /** Canonical section names (keys of `notes.sections`); absent = the whole note. */
  sections?: string[];
}

export type SchemaAttribute =
  | AgeAttribute
  | SexAttribute
  | ConditionAttribute
  | LabAttribute
  | SnpAttribute
  | ImageFindingAttribute
  | ImageComponentAttribute
  | NoteMentionAttribute;

/** The image section: which DICOM objects count as the patient's image and the feature grid. */
export interface ImageSection {
  modalities: string[];
  bodyPart?: string;
  /** Side of the square feature grid (8–256). */
  grid: number;
}

/** The notes section: section headings, negation cues and the per-patient note bound. */
export interface NotesSection {
  sections: Record<string, string[]>;
  negations: string[];
  maxNotesPerPatient: number;
}

export interface PrivacyDefaults {
  epsilon: number;
  delta: number;
}

export interface Schema {
  name: string;
  version: number;
  unit: 'patient';
  referenceDate: string;
  attributes: SchemaAttribute[];
  privacy: PrivacyDefaults;
  image?: ImageSection;
  notes?: NotesSection;
  structure?: StructureSection;
  /** The queries research asks first (schema/workload.ts); reported per query after a fit. */
  workload?: WorkloadSection;
}

/**
 * Public structure every fit measures with its own share of the budget: attribute sets chosen
 * from domain knowledge before any data is seen (a finding and the condition that causes it, a
 * note mention and its condition, adjacent SNPs of one locus, a panel locus and the trait it was
 * designed for). Choosing them costs no privacy; measuring them is charged like any marginal.
 * It lets the fit keep links that are strong per patient but too rare to stand out of the noisy
 * screening of every pair (docs/synthesis.md, "Declared structure").
 */
export interface StructureGroup {
  /** Share of the fit's ρ spent on measuring `marginals` (one round). */
  share: number;
  /** Attribute sets of 2 or 3 schema attributes, no set twice (`kind:K` entries expanded). */
  marginals: string[][];
}

/**
 * One group, or (YAML list form) several, each measured in its own round at its own share;
 * `share` and `marginals` are then the groups' sum and union.
 */
export interface StructureSection extends StructureGroup {
  groups?: StructureGroup[];
}

export interface SchemaIssue {
  /** JSON-path-like location, e.g. `attributes[3].edges[2]`. */
  path: string;
  message: string;
}

export class SchemaError extends Error {
  readonly issues: SchemaIssue[];
  constructor(issues: SchemaIssue[]) {
    const lines = issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`);
    super(`invalid schema (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'SchemaError';
    this.issues = issues;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

type Obj = Record<string, unknown>;

class Checker {
  readonly issues: SchemaIssue[] = [];
  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }
  describe(v: unknown): string {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'a list';
    if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
    if (typeof v === 'object') return 'a mapping';
    return `${typeof v} ${String(v)}`;
  }
  object(v: unknown, path: string): Obj | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.fail(path, `must be a mapping, got ${this.describe(v)}`);
      return undefined;
    }
    return v as Obj;
  }
  /** Reports keys that are not in `allowed` (typos must not pass silently). */
  keys(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(join(path, k), `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
  required(o: Obj, key: string, path: string): unknown {
    if (!(key in o) || o[key] === undefined || o[key] === null) {
      this.fail(join(path, key), 'is required');
      return undefined;
    }
    return o[key];
  }
  string(o: Obj, key: string, path: string, pattern?: RegExp, patternText?: string): string | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      this.fail(join(path, key), `must be a non-empty string, got ${this.describe(v)}`);
      return undefined;
    }
    if (pattern && !pattern.test(v)) {
      this.fail(join(path, key), `${JSON.stringify(v)} does not match ${patternText ?? pattern.source}`);
      return undefined;
    }
    return v;
  }
  number(
    o: Obj,
    key: string,
    path: string,
    opts: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
  ): number | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    return this.numberValue(v, join(path, key), opts);
  }
  numberValue(
    v: unknown,
    path: string,
    opts: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
  ): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(path, `must be a finite number, got ${this.describe(v)}`);
      return undefined;
    }
    if (opts.integer && !Number.isInteger(v)) {
      this.fail(path, `must be an integer, got ${v}`);
      return undefined;
    }
    if (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) {
      this.fail(path, `must be ${opts.minExclusive ? '>' : '≥'} ${opts.min}, got ${v}`);
      return undefined;
    }
    if (opts.max !== undefined && (opts.maxExclusive ? v >= opts.max : v > opts.max)) {
      this.fail(path, `must be ${opts.maxExclusive ? '<' : '≤'} ${opts.max}, got ${v}`);
      return undefined;
    }
    return v;
  }
  list(o: Obj, key: string, path: string, minLength = 1): unknown[] | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.fail(join(path, key), `must be a list, got ${this.describe(v)}`);
      return undefined;
    }
    if (v.length < minLength) {
      this.fail(join(path, key), `must have at least ${minLength} entr${minLength === 1 ? 'y' : 'ies'}, got ${v.length}`);
      return undefined;
    }
    return v;
  }
  /** A list of strictly increasing finite numbers. */
  edges(o: Obj, key: string, path: string, opts: { integer?: boolean; min?: number } = {}): number[] | undefined {
    const list = this.list(o, key, path);
    if (!list) return undefined;
    const p = join(path, key);
    const out: number[] = [];
    let ok = true;
    list.forEach((v, i) => {
      const n = this.numberValue(v, `${p}[${i}]`, { integer: opts.integer, min: opts.min });
      if (n === undefined) {
        ok = false;
        return;
      }
      if (out.length > 0 && n <= out[out.length - 1]) {
        this.fail(`${p}[${i}]`, `edges must be strictly increasing, got ${n} after ${out[out.length - 1]}`);
        ok = false;
      }
      out.push(n);
    });
    return ok ? out : undefined;
  }
  stringList(o: Obj, key: string, path: string, pattern?: RegExp, patternText?: string): string[] | undefined {
    const list = this.list(o, key, path);
    if (!list) return undefined;
    const p = join(path, key);
    const out: string[] = [];
    const seen = new Set<string>();
    let ok = true;
    list.forEach((v, i) => {
      // YAML turns unquoted numeric codes (e.g. SNOMED 38341003) into numbers: accept integers.
      const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
      if (typeof s !== 'string' || s.trim() === '') {
        this.fail(`${p}[${i}]`, `must be a non-empty string, got ${this.describe(v)}`);
        ok = false;
        return;
      }
      if (pattern && !pattern.test(s)) {
        this.fail(`${p}[${i}]`, `${JSON.stringify(s)} does not match ${patternText ?? pattern.source}`);
        ok = false;
        return;
      }
      if (seen.has(s)) {
        this.fail(`${p}[${i}]`, `duplicate entry ${JSON.stringify(s)}`);
        ok = false;
        return;
      }
      seen.add(s);
      out.push(s);
    });
    return ok ? out : undefined;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

const NAME_RE = /^[a-z][a-z0-9_]*$/;
export const ATTRIBUTE_KINDS = ['age', 'sex', 'condition', 'lab', 'snp', 'image-finding', 'image-component', 'note-mention'] as const;
const CODE_PATTERNS: Record<CodeSystemKey, [RegExp, string]> = {
  snomed: [/^[1-9][0-9]{5,17}$/, 'a SNOMED CT concept id (6–18 digits)'],
  icd10cm: [/^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$/, 'an ICD-10-CM code such as E11 or E11.9'],
  icd10: [/^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$/, 'an ICD-10 code such as J45 or J45.9'],
};
const LOINC_RE = /^[0-9]{1,7}-[0-9]$/;

function validDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function checkAttribute(c: Checker, raw: unknown, path: string): SchemaAttribute | undefined {
  const o = c.object(raw, path);
  if (!o) return undefined;
  const name = c.string(o, 'name', path, NAME_RE, 'lower_snake_case ([a-z][a-z0-9_]*)');
  const kind = c.required(o, 'kind', path);
  const before = c.issues.length;
  switch (kind) {
    case 'age': {
      c.keys(o, path, ['name', 'kind', 'edges', 'max']);
      const edges = c.edges(o, 'edges', path, { integer: true, min: 0 });
      if (edges && edges[0] !== 0) c.fail(`${path}.edges[0]`, `the first age edge must be 0, got ${edges[0]}`);
      const max = c.number(o, 'max', path, { integer: true, min: 1, max: 150 });
      if (edges && max !== undefined && max <= edges[edges.length - 1]) {
        c.fail(`${path}.max`, `must be above the last edge ${edges[edges.length - 1]}, got ${max}`);
      }
      if (c.issues.length > before || name === undefined || !edges || max === undefined) return undefined;
      return { name, kind: 'age', edges, max };
    }
    case 'sex': {
      c.keys(o, path, ['name', 'kind', 'values']);
      const values = c.stringList(o, 'values', path);
      values?.forEach((v, i) => {
        if (!(FHIR_GENDERS as readonly string[]).includes(v)) {
          c.fail(`${path}.values[${i}]`, `${JSON.stringify(v)} is not a FHIR administrative-gender code (${FHIR_GENDERS.join(', ')})`);
        }
      });
      if (c.issues.length > before || name === undefined || !values) return undefined;
      return { name, kind: 'sex', values };
    }
    case 'condition': {
      c.keys(o, path, ['name', 'kind', 'display', 'codes']);
      const display = c.string(o, 'display', path);
      const codesRaw = c.required(o, 'codes', path);
      const codes: Partial<Record<CodeSystemKey, string[]>> = {};
      if (codesRaw !== undefined) {
        const co = c.object(codesRaw, `${path}.codes`);
        if (co) {
          c.keys(co, `${path}.codes`, Object.keys(CODE_SYSTEMS));
          if (!('snomed' in co)) c.fail(`${path}.codes.snomed`, 'is required (decoders emit the first SNOMED CT code)');
          for (const key of Object.keys(CODE_SYSTEMS) as CodeSystemKey[]) {
            if (!(key in co)) continue;
            const [re, text] = CODE_PATTERNS[key];
            const list = c.stringList(co, key, `${path}.codes`, re, text);
            if (list) codes[key] = list;
          }
        }
      }
      if (c.issues.length > before || name === undefined || display === undefined || !codes.snomed) return undefined;
      return { name, kind: 'condition', display, codes: codes as ConditionAttribute['codes'] };
    }
    case 'lab': {
      c.keys(o, path, ['name', 'kind', 'display', 'loinc', 'unit', 'category', 'edges', 'range', 'decimals']);
      const display = c.string(o, 'display', path);
      const loinc = c.stringList(o, 'loinc', path, LOINC_RE, 'a LOINC code such as 4548-4');
      const unit = c.string(o, 'unit', path);
      const category = c.string(o, 'category', path);
      if (category !== undefined && !(OBSERVATION_CATEGORIES as readonly string[]).includes(category)) {
        c.fail(`${path}.category`, `must be one of ${OBSERVATION_CATEGORIES.join(', ')}, got ${JSON.stringify(category)}`);
      }
      const edges = c.edges(o, 'edges', path);
      const rangeList = c.list(o, 'range', path, 2);
      let range: [number, number] | undefined;
      if (rangeList) {
        if (rangeList.length !== 2) c.fail(`${path}.range`, `must be [min, max], got ${rangeList.length} entries`);
        else {
          const lo = c.numberValue(rangeList[0], `${path}.range[0]`);
          const hi = c.numberValue(rangeList[1], `${path}.range[1]`);
          if (lo !== undefined && hi !== undefined) {
            if (edges && !(lo < edges[0] && hi > edges[edges.length - 1])) {
              c.fail(
                `${path}.range`,
                `must enclose every edge (min < ${edges[0]} and max > ${edges[edges.length - 1]}), got [${lo}, ${hi}]`,
              );
            } else if (lo >= hi) c.fail(`${path}.range`, `min must be below max, got [${lo}, ${hi}]`);
            else range = [lo, hi];
          }
        }
      }
      const decimals = c.number(o, 'decimals', path, { integer: true, min: 0, max: 6 });
      if (range && decimals !== undefined) {
        range.forEach((e, i) => {
          if (Math.abs(Math.round(e * 10 ** decimals) - e * 10 ** decimals) > 1e-9) {
            c.fail(`${path}.range[${i}]`, `${e} has more than ${decimals} decimal(s)`);
          }
        });
      }
      if (edges && decimals !== undefined) {
        edges.forEach((e, i) => {
          if (Math.abs(Math.round(e * 10 ** decimals) - e * 10 ** decimals) > 1e-9) {
            c.fail(`${path}.edges[${i}]`, `edge ${e} has more than ${decimals} decimal(s): decoded values could not land on it`);
          }
        });
      }
      if (
        c.issues.length > before ||
        name === undefined ||
        display === undefined ||
        !loinc ||
        unit === undefined ||
        !edges ||
        !range ||
        decimals === undefined
      ) {
        return undefined;
      }
      return { name, kind: 'lab', display, loinc, unit, category: category as LabAttribute['category'], edges, range, decimals };
    }
    case 'snp': {
      c.keys(o, path, ['name', 'kind', 'chrom', 'pos', 'ref', 'alt', 'rsid']);
      let chrom: string | undefined;
      const rawChrom = c.required(o, 'chrom', path);
      if (rawChrom !== undefined) {
        const t = typeof rawChrom === 'number' && Number.isInteger(rawChrom) ? String(rawChrom) : rawChrom;
        if (typeof t !== 'string' || !/^(?:[1-9]|1[0-9]|2[0-2]|X|Y|MT)$/.test(t)) {
          c.fail(`${path}.chrom`, `must be a chromosome 1–22, X, Y or MT (without "chr"), got ${c.describe(rawChrom)}`);
        } else chrom = t;
      }
      const pos = c.number(o, 'pos', path, { integer: true, min: 1, max: 3e9 });
      const ref = c.string(o, 'ref', path, /^[ACGT]$/, 'one base (A, C, G or T)');
      const alt = c.string(o, 'alt', path, /^[ACGT]$/, 'one base (A, C, G or T)');
      if (ref !== undefined && alt !== undefined && ref === alt) c.fail(`${path}.alt`, `must differ from ref ${ref}`);
      let rsid: string | undefined;
      if ('rsid' in o) rsid = c.string(o, 'rsid', path, /^rs[1-9][0-9]*$/, 'a dbSNP id such as rs429358');
      if (
        c.issues.length > before ||
        name === undefined ||
        chrom === undefined ||
        pos === undefined ||
        ref === undefined ||
        alt === undefined
      )
        return undefined;
      return { name, kind: 'snp', chrom, pos, ref, alt, ...(rsid ? { rsid } : {}) };
    }
    case 'image-finding': {
      c.keys(o, path, ['name', 'kind', 'feature', 'edges', 'classes']);
      const feature = c.string(o, 'feature', path);
      if (feature !== undefined && !(IMAGE_FEATURES as readonly string[]).includes(feature)) {
        c.fail(`${path}.feature`, `must be one of ${IMAGE_FEATURES.join(', ')}, got ${JSON.stringify(feature)}`);
      }
      const edges = c.edges(o, 'edges', path);
      const classes = c.stringList(o, 'classes', path, /^[a-z][a-z0-9_-]*$/, 'a lower-case label');
      if (edges && classes && classes.length !== edges.length + 1) {
        c.fail(`${path}.classes`, `needs ${edges.length + 1} labels for ${edges.length} edge(s), got ${classes.length}`);
      }
      if (classes?.includes('no-image')) c.fail(`${path}.classes`, '"no-image" is reserved');
      if (c.issues.length > before || name === undefined || !edges || !classes) return undefined;
      return { name, kind: 'image-finding', feature: feature as ImageFeature, edges, classes };
    }
    case 'image-component': {
      c.keys(o, path, ['name', 'kind', 'basis', 'edges', 'range']);
      const basis = c.required(o, 'basis', path);
      let uv: [number, number] | undefined;
      if (basis !== undefined) {
        if (
          !Array.isArray(basis) ||
          basis.length !== 2 ||
          !basis.every((x) => Number.isInteger(x) && x >= 0 && x <= 7) ||
          (basis[0] === 0 && basis[1] === 0)
        ) {
          c.fail(`${path}.basis`, `must be [u, v], integers 0–7, not both 0 (a low-frequency DCT basis image), got ${c.describe(basis)}`);
        } else uv = [basis[0], basis[1]];
      }
      const edges = c.edges(o, 'edges', path);
      const rawRange = c.required(o, 'range', path);
      let range: [number, number] | undefined;
      if (rawRange !== undefined) {
        if (!Array.isArray(rawRange) || rawRange.length !== 2 || !rawRange.every((x) => typeof x === 'number' && Number.isFinite(x)))
          c.fail(`${path}.range`, `must be [lo, hi], got ${c.describe(rawRange)}`);
        else if (edges && !(rawRange[0] < edges[0] && rawRange[1] > edges[edges.length - 1]))
          c.fail(`${path}.range`, 'must lie outside the edges: lo < edges[0] and hi > the last edge');
        else range = [rawRange[0], rawRange[1]];
      }
      if (c.issues.length > before || name === undefined || !uv || !edges || !range) return undefined;
      return { name, kind: 'image-component', basis: uv, edges, range };
    }
    case 'note-mention': {
      c.keys(o, path, ['name', 'kind', 'terms', 'sections']);
      const terms = c.stringList(o, 'terms', path);
      terms?.forEach((t, i) => {
        const words = t.trim().split(/\s+/);
        if (words.length > 2) c.fail(`${path}.terms[${i}]`, `terms have one or two words, got ${JSON.stringify(t)}`);
        if (t !== t.toLowerCase()) c.fail(`${path}.terms[${i}]`, `terms are lower case, got ${JSON.stringify(t)}`);
      });
      let sections: string[] | undefined;
      if ('sections' in o) sections = c.stringList(o, 'sections', path);
      if (c.issues.length > before || name === undefined || !terms) return undefined;
      return { name, kind: 'note-mention', terms, ...(sections ? { sections } : {}) };
    }
    case undefined:
      return undefined;
    default:
      c.fail(`${path}.kind`, `must be one of ${ATTRIBUTE_KINDS.join(', ')}; got ${c.describe(kind)}`);
      return undefined;
  }
}

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
  const ageEdges = attributes.find((a): a is AgeAttribute => a.kind === 'age')?.edges;
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
function checkStructureSection(c: Checker, raw: unknown, attrs: readonly AttrInfo[]): StructureSection | undefined {
  const before = c.issues.length;
  const seen = new Set<string>();
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
  return list ? { share, marginals, groups: ok } : { share, marginals };
}

function checkStructureGroup(
  c: Checker,
  raw: unknown,
  path: string,
  attrs: readonly AttrInfo[],
  seen: Set<string>,
): StructureGroup | undefined {
  const o = c.object(raw, path);
  if (!o) return undefined;
  const before = c.issues.length;
  c.keys(o, path, ['share', 'marginals']);
  const share = c.number(o, 'share', path, { min: 0, minExclusive: true, max: 0.5 });
  const list = c.list(o, 'marginals', path);
  const marginals: string[][] = [];
  list?.forEach((entry, i) => {
    const sets = expandEntry(entry, `${path}.marginals[${i}]`, attrs, seen, (p, m) => c.fail(p, m));
    if (sets) marginals.push(...sets);
  });
  if (c.issues.length > before || share === undefined || !list) return undefined;
  return { share, marginals };
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
// Hash and domain

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

function fmt(n: number): string {
  return String(n);
}

/** The value labels of one attribute, in code order (code i has label i). */
export function attributeLabels(attr: SchemaAttribute): string[] {
  switch (attr.kind) {
    case 'age':
      return attr.edges.map((lo, i) => (i + 1 < attr.edges.length ? `${lo}-${attr.edges[i + 1] - 1}` : `${lo}+`));
    case 'sex':
      return [...attr.values];
    case 'condition':
      return ['no', 'yes'];
    case 'lab': {
      const e = attr.edges;
      const labels = [`<${fmt(e[0])}`];
      for (let i = 0; i + 1 < e.length; i++) labels.push(`${fmt(e[i])}-<${fmt(e[i + 1])}`);
      labels.push(`>=${fmt(e[e.length - 1])}`);
      labels.push('missing');
      return labels;
    }
    case 'snp':
      return ['0', '1', '2', 'missing'];
    case 'image-finding':
      return [...attr.classes, 'no-image'];
    case 'image-component': {
      const e = attr.edges;
      const labels = [`<${fmt(e[0])}`];
      for (let i = 0; i + 1 < e.length; i++) labels.push(`${fmt(e[i])}-<${fmt(e[i + 1])}`);
      labels.push(`>=${fmt(e[e.length - 1])}`, 'no-image');
      return labels;
    }
    case 'note-mention':
      return ['absent', 'mentioned', 'no-note'];
  }
}

/** Code of "missing" (no call, or no genome) of a SNP attribute. */
export const SNP_MISSING = 3;
/** Code of "no image" of an image-finding attribute. */
export function imageMissingCode(attr: ImageFindingAttribute): number {
  return attr.classes.length;
}
/** Code of "no note" of a note-mention attribute. */
export const NOTE_MISSING = 2;

/** Code of "no image" of an image-component attribute. */
export function componentMissingCode(attr: ImageComponentAttribute): number {
  return attr.edges.length + 1;
}

/** Class of an image score: 0 below edges[0], i for [edges[i-1], edges[i]), edges.length at or above the last. */
export function imageClass(attr: ImageFindingAttribute, score: number): number {
  let k = 0;
  while (k < attr.edges.length && score >= attr.edges[k]) k++;
  return k;
}

/** The SNP panel of a schema (attributes of kind snp, in schema order). */
export function snpPanel(schema: Schema): SnpAttribute[] {
  return schema.attributes.filter((a): a is SnpAttribute => a.kind === 'snp');
}

/** The note vocabulary: every term of every note-mention attribute plus the negation cues. */
export function noteVocabulary(schema: Schema): string[] {
  const out = new Set<string>();
  for (const a of schema.attributes) if (a.kind === 'note-mention') for (const t of a.terms) out.add(t);
  for (const t of schema.notes?.negations ?? []) out.add(t);
  return [...out];
}

/** The model's domain: one entry per attribute, in schema order. */
export function schemaAttributes(schema: Schema): Array<{ name: string; size: number; labels: string[] }> {
  return schema.attributes.map((a) => {
    const labels = attributeLabels(a);
    return { name: a.name, size: labels.length, labels };
  });
}

/** Code of the "missing" bin of a lab attribute (always its last value). */
export function labMissingCode(attr: LabAttribute): number {
  return attr.edges.length + 1;
}

/** Bin of a lab value: 0 below edges[0], i for [edges[i-1], edges[i]), edges.length at or above the last edge. */
export function labBin(attr: LabAttribute, value: number): number {
  const e = attr.edges;
  let lo = 0;
  let hi = e.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value >= e[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Bin of an age in whole years (ages below 0 are the caller's problem). */
export function ageBin(attr: AgeAttribute, years: number): number {
  let bin = 0;
  for (let i = 0; i < attr.edges.length; i++) if (years >= attr.edges[i]) bin = i;
  return bin;
}
