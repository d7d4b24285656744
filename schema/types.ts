import type { WorkloadSection } from './workload.ts';
// The schema's types: attribute kinds, sections, the parsed Schema and its error. No logic beyond
// the error message; the parser is in schema.ts.
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
  /**
   * The group's round measures these attributes coarser (docs/synthesis.md, "Band queries"):
   * per attribute, the lower edges of its bands as written (`coarsen: { age: [0, 18, 40, 65] }`).
   * Each marginal naming the attribute is then a linear query summing its bins into bands.
   */
  coarsen?: Record<string, number[]>;
  /** `coarsen` as codes: per attribute, the band of each of its values (the round's value map). */
  valueMap?: Record<string, number[]>;
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
