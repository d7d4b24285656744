/**
 * Cross-modal cohort writer (DESIGN.md §6, issue 5): each sampled joint-model row becomes one
 * synthetic patient whose FHIR record, chest radiograph (DICOM), genome (VCF) and clinical note
 * agree, because they are all decoded from the same row:
 *
 * - FHIR (`decodePatient` + `buildPatientBundle`): Patient, Conditions, lab/vital Observations,
 *   genomic variant Observations (Genomics Reporting IG), ImagingStudy (+ imaging finding
 *   Observation) and DocumentReference, all referencing the Patient; written as Bulk NDJSON by
 *   type under `fhir/`, each Bundle validated against R4 (structure, references) before release;
 * - DICOM (`dicom/<patient id>.dcm`) when the row has an image (any image attribute is not
 *   "no-image"): findings from the image-finding classes drawn into the public anatomical prior
 *   (modalities/image/radiograph-prior.ts), plus learned image components when the schema has
 *   `image-component` attributes; Study/Series/SOP Instance UIDs equal the ImagingStudy's,
 *   PatientID equals the FHIR Patient id; parsed back with dicom-parser before release;
 * - VCF (`vcf/<patient id>.vcf` and one multi-sample `vcf/cohort.vcf`) when any SNP attribute is
 *   called: the schema's chrom/pos/ref/alt, GRCh38 by default; parsed back before release;
 * - note (`notes/<patient id>.txt`) when any note-mention attribute is not "no note": generated
 *   from the patient's facts and verified against them (rejection sampling, NoteStats);
 * - PNG previews of the first few images (`previews/`).
 * Only attributes the schema has are decoded: a FHIR-only schema gives a FHIR-only cohort,
 * byte-identical to the FHIR decoder's. Deterministic: patient k uses sub-streams of `seed/k`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  componentMissingCode,
  imageMissingCode,
  labMissingCode,
  NOTE_MISSING,
  SNP_MISSING,
  type ImageFindingAttribute,
  type NoteMentionAttribute,
  type Schema,
  type SnpAttribute,
} from '../model/schema.ts';
import { decodePatient, toNdjsonLines, type DecodedPatient } from '../modalities/fhir/decode.ts';
import { buildPatientBundle, R4Validator, validateBundle, type PatientArtefacts } from '../modalities/fhir/bundle.ts';
import { Rng, type SeedLike } from '../modalities/fhir/rng.ts';
import type { FhirResourceLike } from '../modalities/fhir/types.ts';
import { validateFhirResources } from '../modalities/fhir/validate.ts';
import { uuidToDicomUid, writeDicom, SOP_CLASS, type DicomImageSpec } from '../modalities/image/dicom-writer.ts';
import { validateDicom } from '../modalities/image/validate.ts';
import { pngPreview } from '../modalities/image/png.ts';
import { densityToStored, renderPriorRadiograph, type RadiographFindings } from '../modalities/image/radiograph-prior.ts';
import { addImageComponents, type ImageComponentAttribute } from '../modalities/image/components.ts';
import { writeVcf, type Genotype, type VcfSample } from '../modalities/genome/vcf-writer.ts';
import { validateVcf } from '../modalities/genome/validate.ts';
import type { ReferenceBuild } from '../modalities/genome/reference.ts';
import { buildVocabulary, type Vocabulary } from '../modalities/notes/vocabulary.ts';
import { generateVerifiedNote, NoteStats, safeNote } from '../modalities/notes/generate.ts';
import { verifyNote } from '../modalities/notes/verify.ts';
import type { FactLab, SyntheticFacts } from '../modalities/notes/facts.ts';

/** Image-finding feature → the finding name of the decoders and the vocabulary. */
export const FEATURE_FINDING: Record<string, keyof RadiographFindings> = {
  'cardiothoracic-ratio': 'cardiomegaly',
  'lung-opacity': 'opacity',
  nodule: 'nodule',
};
/** Order in which an image's findings are named in its note (the first is its finding class). */
const NOTE_FINDING_ORDER: (keyof RadiographFindings)[] = ['opacity', 'cardiomegaly', 'nodule'];

export interface MultimodalOptions {
  /** Output DICOM matrix (default 256×256). */
  imageRows?: number;
  imageCols?: number;
  /** Bits stored (default 16). */
  bitsStored?: number;
  /** PNG previews of the first N images (default 8). */
  previews?: number;
  /** Reference build of the VCF and the variant Observations (default GRCh38). */
  build?: ReferenceBuild;
  /** Note rejection-sampling cap before the safe fallback (default 5). */
  noteMaxTries?: number;
  /**
   * A replacement row for patient k whose artefacts failed validation (attempt = 1, 2, …);
   * undefined (or no function) drops the patient. Rows are codes in schema order.
   */
  redraw?: (k: number, attempt: number) => ArrayLike<number> | undefined;
  /** Replacement rows tried per patient before it is dropped (default 4). */
  maxRedraws?: number;
  /**
   * A deployment's own release rule, applied after the validators: a non-empty string rejects the
   * patient with that reason (it is then redrawn like an invalid one).
   */
  releaseCheck?: (patient: { index: number; facts: SyntheticFacts; resources: FhirResourceLike[] }) => string | undefined;
}

/** Patients whose artefacts failed a validator (or the release check) and what became of them. */
export interface RejectionReport {
  /** Drafts rejected (a patient redrawn twice counts up to three). */
  rows: number;
  byStage: Record<string, number>;
  /** Replacement rows tried. */
  replaced: number;
  /** Patients with no valid draw left out of the cohort. */
  dropped: number;
  /** The first few reasons, for the report. */
  firstReasons: string[];
}

/** One patient's validated artefacts, not yet written. */
interface PreparedPatient {
  files: [string, Uint8Array | string][];
  resources: FhirResourceLike[];
  fhirOnly: boolean;
  image?: { names: (keyof RadiographFindings)[]; spec: DicomImageSpec };
  sample?: VcfSample;
  note?: boolean;
}

interface Rejected {
  stage: 'dicom' | 'vcf' | 'note' | 'fhir' | 'release-check';
  reason: string;
}

export interface ModalityReport {
  patients: number;
  resources: Record<string, number>;
  images: { written: number; validated: number; failed: number; rows: number; cols: number; bitsStored: number; findings: Record<string, number>; previews: number };
  genomes: { written: number; validated: number; failed: number; cohortVcf?: { path: string; samples: number; records: number; valid: boolean }; build: ReferenceBuild };
  notes: { written: number; verified: number; stats: ReturnType<NoteStats['toJSON']> };
  fhir: { bundlesValidated: number; bundleIssues: number; validatorFullRuns: number };
  rejected?: RejectionReport;
}

export interface MultimodalResult {
  files: Record<string, { path: string; resources: number }>;
  report: ModalityReport;
  /** Patients released with a replacement row (by patient index), and that row. */
  redrawn: { k: number; row: number[] }[];
  /** Patient indices left out because no draw passed validation. */
  dropped: number[];
}

export class ArtefactValidationError extends Error {}

/** Which decoders a schema needs. */
export function schemaModalities(schema: Schema): { image: boolean; genome: boolean; notes: boolean } {
  const kinds = new Set(schema.attributes.map((a) => a.kind as string));
  return { image: kinds.has('image-finding') || kinds.has('image-component'), genome: kinds.has('snp'), notes: kinds.has('note-mention') };
}

interface Layout {
  images: { i: number; attr: ImageFindingAttribute; finding: keyof RadiographFindings | undefined }[];
  components: { i: number; attr: ImageComponentAttribute }[];
  snps: { i: number; attr: SnpAttribute }[];
  notes: { i: number; attr: NoteMentionAttribute }[];
  labs: Map<string, number>;
}

function layoutOf(schema: Schema): Layout {
  const l: Layout = { images: [], components: [], snps: [], notes: [], labs: new Map() };
  schema.attributes.forEach((a, i) => {
    if (a.kind === 'image-finding') l.images.push({ i, attr: a, finding: FEATURE_FINDING[a.feature] });
    else if (a.kind === 'snp') l.snps.push({ i, attr: a });
    else if (a.kind === 'note-mention') l.notes.push({ i, attr: a });
    else if (a.kind === 'lab') l.labs.set(a.name, i);
    else if (a.kind === 'image-component') l.components.push({ i, attr: a });
  });
  return l;
}

/** What the row says about the patient's non-FHIR artefacts. */
export interface RowArtefacts {
  /** Undefined: no image. */
  findings?: RadiographFindings;
  /** Component codes (bins) when the schema has image-component attributes. */
  componentBins?: number[];
  /** Undefined: no genome. */
  genotypes?: Genotype[];
  hasNote: boolean;
  /** Names of note-mention attributes set to 1 (note topics). */
  noteTopics: string[];
}

export function rowArtefacts(layout: Layout, row: ArrayLike<number>): RowArtefacts {
  let findings: RadiographFindings | undefined;
  // An image (a note) exists when most of the row's image (note) attributes say so: the model
  // samples each attribute, and a lone disagreeing one is treated as its negative class.
  const imageVotes = layout.images.length + layout.components.length;
  const imaged = layout.images.filter(({ i, attr }) => row[i] !== imageMissingCode(attr)).length + layout.components.filter(({ i, attr }) => row[i] !== componentMissingCode(attr)).length;
  if (imageVotes > 0 && 2 * imaged > imageVotes) {
    findings = { cardiomegaly: false, opacity: false, nodule: false };
    for (const { i, attr, finding } of layout.images) {
      // The last class of a finding attribute is "present" (schema: normal/enlarged, clear/opacity, none/nodule).
      if (finding && row[i] !== imageMissingCode(attr) && row[i] === attr.classes.length - 1 && row[i] > 0) findings[finding] = true;
    }
  }
  let genotypes: Genotype[] | undefined;
  if (layout.snps.length > 0 && layout.snps.some(({ i }) => row[i] !== SNP_MISSING)) {
    genotypes = layout.snps.map(({ i, attr }) => ({
      ...(attr.rsid ? { rsid: attr.rsid } : {}),
      chrom: attr.chrom,
      pos: attr.pos,
      ref: attr.ref,
      alt: attr.alt,
      dosage: row[i] === SNP_MISSING ? null : row[i],
    }));
  }
  const noted = layout.notes.filter(({ i }) => row[i] !== NOTE_MISSING).length;
  const hasNote = layout.notes.length > 0 && 2 * noted > layout.notes.length;
  const noteTopics = hasNote ? layout.notes.filter(({ i }) => row[i] === 1).map(({ attr }) => attr.name) : [];
  const componentBins = findings && layout.components.length > 0 ? layout.components.map(({ i }) => row[i]) : undefined;
  return { findings, componentBins, genotypes, hasNote, noteTopics };
}

function ageAt(birthDate: string, referenceDate: string): number {
  const b = new Date(`${birthDate}T00:00:00Z`);
  const r = new Date(`${referenceDate}T00:00:00Z`);
  let years = r.getUTCFullYear() - b.getUTCFullYear();
  if (r.getUTCMonth() < b.getUTCMonth() || (r.getUTCMonth() === b.getUTCMonth() && r.getUTCDate() < b.getUTCDate())) years--;
  return years;
}

/** The decoders' facts for one decoded patient and its row artefacts. */
export function toFacts(schema: Schema, decoded: DecodedPatient, art: RowArtefacts): SyntheticFacts {
  const p = decoded.patient as { id: string; birthDate?: string; gender?: string };
  const conditions = schema.attributes
    .filter((a) => a.kind === 'condition')
    .filter((a) => decoded.conditions.some((c) => (c as { code?: { text?: string } }).code?.text === a.display))
    .map((a) => ({ name: a.name, display: a.kind === 'condition' ? a.display : a.name, snomed: a.kind === 'condition' ? a.codes.snomed[0] : undefined }));
  const labs: FactLab[] = [];
  for (const a of schema.attributes) {
    if (a.kind !== 'lab') continue;
    const obs = decoded.observations.find((o) => (o as { code?: { text?: string } }).code?.text === a.display) as { valueQuantity?: { value: number } } | undefined;
    if (!obs?.valueQuantity) continue;
    const v = obs.valueQuantity.value;
    const ref = LAB_REFERENCE[a.name];
    const interpretation = ref ? (ref.high !== undefined && v >= ref.high ? 'high' : ref.low !== undefined && v < ref.low ? 'low' : 'normal') : undefined;
    labs.push({ name: a.name, display: a.display, value: v, unit: displayUnit(a.unit), ...(interpretation ? { interpretation } : {}) });
  }
  let image: SyntheticFacts['image'];
  if (art.findings) {
    const found = NOTE_FINDING_ORDER.filter((k) => art.findings![k]);
    image = { findingClass: found[0] ?? 'normal', ...(found.length > 1 ? { findings: found } : {}), modality: 'DX', bodyPart: 'CHEST', view: 'PA', ...(art.componentBins ? { componentBins: art.componentBins } : {}) };
  }
  return {
    patientId: p.id,
    age: p.birthDate ? ageAt(p.birthDate, schema.referenceDate) : 40,
    sex: p.gender ?? 'unknown',
    conditions,
    labs,
    ...(image ? { image } : {}),
    ...(art.genotypes ? { genotypes: art.genotypes } : {}),
    ...(art.noteTopics.length ? { noteTopics: art.noteTopics } : {}),
  };
}

const DAY_MS = 86_400_000;

/**
 * The vocabulary the generator words notes with: for each condition (finding) that has a
 * `note_<name>` attribute, only the synonyms containing one of that attribute's terms, so the
 * sites' note encoder reads the note as mentioning it (falls back to all synonyms if none does).
 */
export function wordingVocabulary(schema: Schema, vocab: Vocabulary): Vocabulary {
  const termsOf = new Map<string, string[]>();
  for (const a of schema.attributes) if (a.kind === 'note-mention') termsOf.set(a.name.replace(/^note_/, ''), a.terms.map((t) => t.toLowerCase()));
  const contains = (phrase: string, term: string) => new RegExp(`(^|[^a-z0-9])${term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^a-z0-9]|$)`).test(phrase);
  const filter = (name: string, terms: string[]) => {
    const want = termsOf.get(name);
    if (!want) return terms;
    const kept = terms.filter((t) => want.some((w) => contains(t, w)));
    return kept.length ? kept : terms;
  };
  return {
    conditions: vocab.conditions.map((e) => ({ name: e.name, terms: filter(e.name, e.terms) })),
    findings: vocab.findings.map((e) => ({ name: e.name, terms: filter(e.name, e.terms) })),
    normalFindingTerms: vocab.normalFindingTerms,
  };
}

/** Public reference limits for the note's (high)/(low) flags; labs not listed get no flag. */
const LAB_REFERENCE: Record<string, { low?: number; high?: number }> = {
  hba1c: { high: 6.5 },
  ldl_cholesterol: { high: 160 },
  systolic_bp: { high: 140 },
  bmi: { low: 18.5, high: 30 },
  egfr: { low: 60 },
};

/** UCUM code → how a clinician writes it in a note. */
function displayUnit(ucum: string): string {
  return ucum.replace('mm[Hg]', 'mmHg').replace('{1.73_m2}', '1.73 m2').replace('kg/m2', 'kg/m2');
}

/** Decodes and writes a cross-modal cohort under `dir`. `rows` are codes in schema order. */
export async function writeMultimodalCohort(schema: Schema, rows: Iterable<ArrayLike<number>>, seed: SeedLike, dir: string, opts: MultimodalOptions = {}): Promise<MultimodalResult> {
  const layout = layoutOf(schema);
  const mods = schemaModalities(schema);
  const rowsOut = opts.imageRows ?? 256;
  const colsOut = opts.imageCols ?? 256;
  const bitsStored = opts.bitsStored ?? 16;
  const previews = opts.previews ?? 8;
  const build = opts.build ?? 'GRCh38';
  const vocab: Vocabulary = buildVocabulary(schema.attributes.filter((a) => a.kind === 'condition').map((a) => ({ name: a.name, display: (a as { display: string }).display })));
  const genVocab = wordingVocabulary(schema, vocab);
  const noteStats = new NoteStats();
  const validator = new R4Validator('memo');
  const refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
  const root = new Rng(seed);
  const byType = new Map<string, string[]>();
  for (const t of ['Patient', 'Condition', 'Observation']) byType.set(t, []);
  const report: ModalityReport = {
    patients: 0,
    resources: {},
    images: { written: 0, validated: 0, failed: 0, rows: rowsOut, cols: colsOut, bitsStored, findings: { normal: 0, cardiomegaly: 0, opacity: 0, nodule: 0 }, previews: 0 },
    genomes: { written: 0, validated: 0, failed: 0, build },
    notes: { written: 0, verified: 0, stats: noteStats.toJSON() },
    fhir: { bundlesValidated: 0, bundleIssues: 0, validatorFullRuns: 0 },
  };
  if (mods.image) await mkdir(join(dir, 'dicom'), { recursive: true });
  if (mods.image && previews > 0) await mkdir(join(dir, 'previews'), { recursive: true });
  if (mods.genome) await mkdir(join(dir, 'vcf'), { recursive: true });
  if (mods.notes) await mkdir(join(dir, 'notes'), { recursive: true });
  const cohortSamples: VcfSample[] = [];
  const fhirOnly: FhirResourceLike[] = [];
  const rejection: RejectionReport = { rows: 0, byStage: {}, replaced: 0, dropped: 0, firstReasons: [] };
  const redrawn: { k: number; row: number[] }[] = [];
  let released = 0;
  const dropped: number[] = [];

  /**
   * Builds and validates everything of one patient in memory; nothing is written unless every
   * artefact passed, so a rejected patient leaves no file behind.
   */
  const preparePatient = (k: number, row: ArrayLike<number>, attempt: number): PreparedPatient | Rejected => {
    const tag = attempt === 0 ? `${k}` : `${k}/redraw-${attempt}`;
    const decoded = decodePatient(schema, row, attempt === 0 ? root.fork(k) : root.fork(tag), { identifierValue: String(k + 1) });
    if (!mods.image && !mods.genome && !mods.notes) {
      // FHIR-only schema: exactly the FHIR decoder's resources, checked per patient here and for
      // cross-patient id clashes once at the end.
      const resources = [decoded.patient, ...decoded.conditions, ...decoded.observations];
      const problems = validateFhirResources(resources);
      if (problems.length > 0) return { stage: 'fhir', reason: `${problems[0].resource}: ${problems[0].message}` };
      return { files: [], resources, fhirOnly: true };
    }
    const rng = root.fork(attempt === 0 ? `artefacts-${k}` : `artefacts-${tag}`);
    const art = rowArtefacts(layout, row);
    const facts = toFacts(schema, decoded, art);
    const patientId = decoded.patient.id as string;
    const birthDate = decoded.patient.birthDate as string | undefined;
    const studyMs = Math.max(refMs - (1 + rng.int(365)) * DAY_MS, birthDate ? Date.parse(`${birthDate}T00:00:00Z`) + DAY_MS : 0);
    const studyDate = new Date(studyMs).toISOString().slice(0, 10);
    const artefacts: PatientArtefacts = {};
    const out: PreparedPatient = { files: [], resources: [], fhirOnly: false };

    if (art.findings) {
      const imgRng = rng.fork('image');
      const prior = renderPriorRadiograph(rowsOut, art.findings, imgRng);
      const density = prior.density;
      if (art.componentBins) addImageComponents(schema, density, rowsOut, art.componentBins, imgRng, prior.lungs);
      let stored = densityToStored(density, bitsStored, imgRng);
      if (colsOut !== rowsOut) stored = { ...stored, pixels: resizeCols(stored.pixels, rowsOut, colsOut) };
      const spec: DicomImageSpec = {
        pixels: stored.pixels,
        rows: rowsOut,
        cols: colsOut,
        bitsStored,
        modality: 'DX',
        studyInstanceUid: uuidToDicomUid(imgRng.uuid()),
        seriesInstanceUid: uuidToDicomUid(imgRng.uuid()),
        sopInstanceUid: uuidToDicomUid(imgRng.uuid()),
        patientId,
        patientName: `Synthetic^${k + 1}`,
        patientBirthDate: birthDate,
        patientSex: facts.sex,
        studyDate,
        accessionNumber: `SYN${k + 1}`,
        studyDescription: 'Synthetic chest radiograph',
        seriesDescription: 'PA',
        bodyPart: 'CHEST',
        viewPosition: 'PA',
        pixelSpacing: [(0.143 * 2500) / rowsOut, (0.143 * 2500) / colsOut],
        windowCenter: stored.windowCenter,
        windowWidth: stored.windowWidth,
      };
      const bytes = writeDicom(spec);
      const check = validateDicom(bytes, spec);
      report.images.validated++;
      if (!check.ok) {
        report.images.failed++;
        return { stage: 'dicom', reason: `parse-back: ${check.errors[0]}` };
      }
      const rel = `dicom/${patientId}.dcm`;
      out.files.push([rel, bytes]);
      const names = (Object.keys(art.findings) as (keyof RadiographFindings)[]).filter((f) => art.findings![f]);
      out.image = { names, spec };
      artefacts.image = {
        studyInstanceUid: spec.studyInstanceUid,
        seriesInstanceUid: spec.seriesInstanceUid,
        sopInstanceUid: spec.sopInstanceUid,
        sopClassUid: SOP_CLASS.DX,
        modality: 'DX',
        started: `${studyDate}T10:00:00Z`,
        findingClass: names.length ? names.join(', ') : 'normal',
        path: rel,
      };
    }

    if (art.genotypes) {
      const sample: VcfSample = { id: patientId, genotypes: art.genotypes };
      const text = writeVcf([sample], { build, fileDate: schema.referenceDate, source: 'fedsynth-cohort' });
      const v = validateVcf(text);
      report.genomes.validated++;
      if (!v.ok) {
        report.genomes.failed++;
        return { stage: 'vcf', reason: v.errors[0] ?? 'invalid VCF' };
      }
      out.files.push([`vcf/${patientId}.vcf`, text]);
      out.sample = sample;
      artefacts.genome = { build, genotypes: art.genotypes, effective: `${studyDate}T09:00:00Z` };
    }

    if (art.hasNote) {
      // Worded with the terms the schema's note encoder recognises, verified against the full
      // vocabulary too (so no synonym of a condition the patient lacks slips through).
      const noteRng = rng.fork('note');
      let text = '';
      for (let t = 0; t < 3 && !text; t++) {
        const note = generateVerifiedNote(facts, genVocab, noteRng, { stats: noteStats, maxTries: opts.noteMaxTries ?? 5 });
        if (verifyNote(note.text, facts, vocab).ok) text = note.text;
        else noteStats.rejected++;
      }
      if (!text) {
        text = safeNote(facts, genVocab);
        noteStats.fallbacks++;
      }
      const v = verifyNote(text, facts, vocab);
      if (!v.ok) return { stage: 'note', reason: v.issues[0]?.detail ?? 'note failed verification' };
      out.files.push([`notes/${patientId}.txt`, text]);
      out.note = true;
      artefacts.note = { text, date: `${studyDate}T11:00:00Z`, title: 'Progress note' };
    }

    const { bundle, resources } = buildPatientBundle(decoded, artefacts, rng.fork('bundle'), { timestamp: `${schema.referenceDate}T00:00:00Z` });
    const issues = validateBundle(bundle, validator);
    report.fhir.bundlesValidated++;
    if (issues.length > 0) {
      report.fhir.bundleIssues += issues.length;
      return { stage: 'fhir', reason: `${issues[0].resource}: ${issues[0].message}` };
    }
    if (opts.releaseCheck) {
      const reason = opts.releaseCheck({ index: k, facts, resources: resources as FhirResourceLike[] });
      if (reason) return { stage: 'release-check', reason };
    }
    out.resources = resources as FhirResourceLike[];
    return out;
  };

  const maxRedraws = opts.redraw ? (opts.maxRedraws ?? 4) : 0;
  const releasePatient = async (p: PreparedPatient): Promise<void> => {
    if (p.fhirOnly) {
      fhirOnly.push(...p.resources);
      return;
    }
    for (const [rel, bytes] of p.files) await writeFile(join(dir, rel), bytes);
    if (p.image) {
      report.images.written++;
      if (p.image.names.length === 0) report.images.findings.normal++;
      for (const f of p.image.names) report.images.findings[f]++;
      if (report.images.previews < previews) {
        const { spec } = p.image;
        const f = Math.max(1, Math.floor(rowsOut / 256));
        await writeFile(join(dir, 'previews', `${spec.patientId}.png`), pngPreview(spec.pixels, rowsOut, colsOut, spec.windowCenter, spec.windowWidth, { downscale: f }));
        report.images.previews++;
      }
    }
    if (p.sample) {
      report.genomes.written++;
      cohortSamples.push(p.sample);
    }
    if (p.note) {
      report.notes.verified++;
      report.notes.written++;
    }
    for (const r of p.resources) {
      let list = byType.get(r.resourceType);
      if (!list) byType.set(r.resourceType, (list = []));
      list.push(toNdjsonLines([r])[0]);
    }
  };

  let k = 0;
  for (const first of rows) {
    let row: ArrayLike<number> | undefined = first;
    let prepared: PreparedPatient | undefined;
    for (let attempt = 0; row && attempt <= maxRedraws; attempt++) {
      if (attempt > 0) {
        row = opts.redraw?.(k, attempt);
        if (!row) break;
        rejection.replaced++;
      }
      const result = preparePatient(k, row, attempt);
      if ('stage' in result) {
        rejection.rows++;
        rejection.byStage[result.stage] = (rejection.byStage[result.stage] ?? 0) + 1;
        if (rejection.firstReasons.length < 5) rejection.firstReasons.push(`patient ${k + 1}, attempt ${attempt + 1}, ${result.stage}: ${result.reason}`);
        continue;
      }
      prepared = result;
      break;
    }
    if (!prepared) {
      rejection.dropped++;
      dropped.push(k);
      k++;
      continue;
    }
    if (row !== first) redrawn.push({ k, row: Array.from(row!) });
    await releasePatient(prepared);
    released++;
    k++;
  }
  report.patients = released;
  report.rejected = rejection;
  if (fhirOnly.length > 0) {
    // Ids are drawn per patient, so a clash across patients is a decoder bug, not a bad draw.
    const problems = validateFhirResources(fhirOnly);
    if (problems.length > 0) throw new ArtefactValidationError(`${problems.length} synthetic resources failed validation, first: ${problems[0].resource}: ${problems[0].message}`);
    for (const r of fhirOnly) byType.get(r.resourceType)!.push(JSON.stringify(r));
    report.fhir.bundlesValidated = released;
  }
  report.fhir.validatorFullRuns = validator.fullValidations;
  report.notes.stats = noteStats.toJSON();
  if (cohortSamples.length > 0) {
    const text = writeVcf(cohortSamples, { build, fileDate: schema.referenceDate, source: 'fedsynth-cohort' });
    const v = validateVcf(text);
    if (!v.ok) throw new ArtefactValidationError(`cohort VCF failed validation: ${v.errors[0]}`);
    const path = join(dir, 'vcf', 'cohort.vcf');
    await writeFile(path, text);
    report.genomes.cohortVcf = { path, samples: v.samples.length, records: v.records.length, valid: v.ok };
  }
  const fhirDir = join(dir, 'fhir');
  await mkdir(fhirDir, { recursive: true });
  const files: MultimodalResult['files'] = {};
  for (const [type, lines] of byType) {
    const path = join(fhirDir, `${type}.ndjson`);
    await writeFile(path, lines.length ? lines.join('\n') + '\n' : '');
    files[type] = { path, resources: lines.length };
    report.resources[type] = lines.length;
  }
  return { files, report, redrawn, dropped };
}

/** Nearest-neighbour column resize (non-square outputs). */
function resizeCols(px: Uint16Array, rows: number, cols: number): Uint16Array {
  const out = new Uint16Array(rows * cols);
  for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) out[y * cols + x] = px[y * rows + Math.min(rows - 1, Math.floor(((x + 0.5) * rows) / cols))];
  return out;
}
