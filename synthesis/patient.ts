/**
 * One synthetic patient of a cross-modal cohort, decoded and validated in memory from its
 * joint-model row (synthesis/multimodal.ts writes what this returns). Everything of
 * patient k comes from sub-streams of `seed/k` (`seed/k/redraw-a` for replacement rows), so the
 * result depends only on (schema, seed, options, k, attempt, row): the cohort is the same whether
 * patients are prepared in this thread or by worker threads (synthesis/workers.ts).
 *
 * - FHIR (`decodePatient` + `buildPatientBundle`): Patient, Conditions, lab/vital Observations,
 *   genomic variant Observations, ImagingStudy (+ imaging finding Observation) and
 *   DocumentReference; the Bundle passes `validateBundle` (memoised R4 validation, references,
 *   IG parts) and the resources are returned as NDJSON lines by type;
 * - DICOM when the row has an image: the findings drawn into the public anatomical prior, image
 *   components when the schema has them; parsed back with dicom-parser (pixel compare), plus a
 *   small PNG preview;
 * - VCF when any SNP is called, parsed back with `validateVcf`;
 * - a note when the row has one, verified against the facts (rejection sampling).
 * A draft any of whose artefacts fails its validator is returned as rejected, with nothing kept.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  componentMissingCode,
  imageMissingCode,
  NOTE_MISSING,
  SNP_MISSING,
  type ImageFindingAttribute,
  type NoteMentionAttribute,
  type Schema,
  type SnpAttribute,
} from '../schema/schema.ts';
import { decodePatient, type DecodedPatient } from '../modalities/fhir/decode.ts';
import { ClinicalInfeasibleError, YEAR_MS, wholeYears } from '../modalities/fhir/timeline.ts';
import { countByRule, recordIndex, verifyRecord, type RecordIndex } from '../modalities/fhir/verify-record.ts';
import {
  CONDITIONS,
  frontalChestView,
  isSecondaryHypertensionOnset,
  referenceFlag,
  SECONDARY_HYPERTENSION,
} from '../modalities/clinical/index.ts';
import { buildPatientResources, R4Validator, validatePatientResources, type PatientArtefacts } from '../modalities/fhir/bundle.ts';
import { Rng, type SeedLike } from '../model/rng.ts';
import type { FhirResourceLike } from '../modalities/fhir/types.ts';
import { validateFhirResources } from '../modalities/fhir/validate.ts';
import { uuidToDicomUid, writeDicom, SOP_CLASS, type DicomImageSpec } from '../modalities/image/dicom-writer.ts';
import { validateDicom } from '../modalities/image/validate.ts';
import { pngPreview } from '../modalities/image/png.ts';
import type { RadiographFindings, RenderedChest } from '../modalities/image/chest-radiograph.ts';
import { radiographBuffers, synthesiseRadiograph, type FindingMismatch } from '../modalities/image/radiograph-synth.ts';
import { ageBandFrom, FEATURE_FINDING } from '../modalities/image/finding-scores.ts';
import type { ImageComponentAttribute } from '../modalities/image/components.ts';
import { singleSampleVcfWriter, type Genotype, type VcfSample } from '../modalities/genome/vcf-writer.ts';
import { GWAS_PANEL } from '../modalities/genome/gwas-panel.ts';
import { validateVcf } from '../modalities/genome/validate.ts';
import type { ReferenceBuild } from '../modalities/genome/reference.ts';
import { buildVocabulary, type Vocabulary } from '../modalities/notes/vocabulary.ts';
import { generateVerifiedNote, NoteStats, SafeNoteError } from '../modalities/notes/generate.ts';
import type { FactLab, SyntheticFacts } from '../modalities/notes/facts.ts';
import { factMedications } from './note-medications.ts';

/** Gene of each public panel SNP, for the variant Observations (a schema's other SNPs have none). */
const GENE_OF_RSID = new Map(GWAS_PANEL.map((s) => [s.rsid, s.gene]));

/** Order in which an image's findings are named in its note (the first is its finding class). */
const NOTE_FINDING_ORDER: (keyof RadiographFindings)[] = ['opacity', 'cardiomegaly', 'nodule'];

/** The decoder options a patient depends on (plain data: they are sent to worker threads). */
export interface PatientOptions {
  /** Output DICOM matrix (default 256×256). */
  imageRows?: number;
  imageCols?: number;
  /** Bits stored (default 16). */
  bitsStored?: number;
  /** A PNG preview per image (default true). */
  previews?: boolean;
  /** Longest side of a preview in pixels, reached by an integer downscale (default 128). */
  previewSide?: number;
  /** Reference build of the VCF and the variant Observations (default GRCh38). */
  build?: ReferenceBuild;
  /** Note rejection-sampling cap before the safe fallback (default 5). */
  noteMaxTries?: number;
  /**
   * Artefacts to make besides FHIR, among those the schema has (default: all of them). A modality
   * left out is not synthesised at all (no radiograph drawn, no genome or note written), and its
   * FHIR resources (ImagingStudy, variant Observations, DocumentReference) are not made either.
   */
  generate?: Partial<Modalities>;
}

/** What one draft added to the report's validator counts. */
export interface DraftCounts {
  imagesValidated: number;
  imagesFailed: number;
  genomesValidated: number;
  genomesFailed: number;
  bundlesValidated: number;
  bundleIssues: number;
  /** Records checked by the clinical verifier, and its violations by rule (rejected drafts only). */
  recordsVerified: number;
  clinical: Record<string, number>;
}

/** One patient's validated artefacts, not yet written. */
export interface PreparedPatient {
  ok: true;
  /** Files relative to the cohort folder. */
  files: [string, Uint8Array | string][];
  /** The files were already written by the thread that prepared the patient (`files` is then empty). */
  written?: boolean;
  /** The patient's NDJSON lines (multimodal schemas), see PatientNdjson. */
  ndjson?: PatientNdjson;
  /** The flat resources: always for FHIR-only schemas, else only when asked for. */
  resources?: FhirResourceLike[];
  fhirOnly: boolean;
  facts?: SyntheticFacts;
  /** Findings of the image (empty for a normal one), when the patient has an image. */
  image?: (keyof RadiographFindings)[];
  /** The patient's side of each lateralised image finding as drawn (for the note and FHIR to name). */
  imageSides?: RenderedChest['sides'];
  /** Radiographs drawn for the image, and the findings its kept draw does not read back as sampled (see synthesiseRadiograph). */
  imageReadBack?: { patient: string; draws: number; mismatches: FindingMismatch[] };
  preview: boolean;
  sample?: VcfSample;
  note: boolean;
  counts: DraftCounts;
  notes?: ReturnType<NoteStats['toJSON']>;
}

export interface RejectedDraft {
  ok: false;
  stage: 'dicom' | 'vcf' | 'note' | 'fhir' | 'clinical' | 'release-check';
  reason: string;
  counts: DraftCounts;
  notes?: ReturnType<NoteStats['toJSON']>;
}

export type DraftOutcome = PreparedPatient | RejectedDraft;

export interface Modalities {
  image: boolean;
  genome: boolean;
  notes: boolean;
}

/** Which decoders a schema needs. */
export function schemaModalities(schema: Schema): Modalities {
  const kinds = new Set(schema.attributes.map((a) => a.kind as string));
  return { image: kinds.has('image-finding') || kinds.has('image-component'), genome: kinds.has('snp'), notes: kinds.has('note-mention') };
}

/** The decoders a cohort runs: the schema's, less those `generate` turns off. */
export function generatedModalities(schema: Schema, generate: Partial<Modalities> = {}): Modalities {
  const m = schemaModalities(schema);
  return {
    image: m.image && generate.image !== false,
    genome: m.genome && generate.genome !== false,
    notes: m.notes && generate.notes !== false,
  };
}

export interface Layout {
  images: { i: number; attr: ImageFindingAttribute; finding: keyof RadiographFindings | undefined }[];
  components: { i: number; attr: ImageComponentAttribute }[];
  snps: { i: number; attr: SnpAttribute }[];
  notes: { i: number; attr: NoteMentionAttribute }[];
}

export function layoutOf(schema: Schema): Layout {
  const l: Layout = { images: [], components: [], snps: [], notes: [] };
  schema.attributes.forEach((a, i) => {
    if (a.kind === 'image-finding') l.images.push({ i, attr: a, finding: FEATURE_FINDING[a.feature] });
    else if (a.kind === 'snp') l.snps.push({ i, attr: a });
    else if (a.kind === 'note-mention') l.notes.push({ i, attr: a });
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
  const imaged =
    layout.images.filter(({ i, attr }) => row[i] !== imageMissingCode(attr)).length +
    layout.components.filter(({ i, attr }) => row[i] !== componentMissingCode(attr)).length;
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
      ...(attr.rsid && GENE_OF_RSID.has(attr.rsid) ? { gene: GENE_OF_RSID.get(attr.rsid) } : {}),
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

/** UCUM code → how a clinician writes it in a note. */
function displayUnit(ucum: string): string {
  return ucum.replace('mm[Hg]', 'mmHg').replace('{1.73_m2}', '1.73 m2');
}

/**
 * The decoders' facts for one decoded patient and its row artefacts, as of the note's date: the
 * age at the note, every condition with its onset, per lab the latest value measured on or
 * before the note (with its date), and every prescription with its dates (the note names those
 * running at its date).
 */
export function toFacts(schema: Schema, decoded: DecodedPatient, art: RowArtefacts): SyntheticFacts {
  const p = decoded.patient as { id: string; birthDate?: string; gender?: string };
  const tl = decoded.timeline;
  const noteMs = Date.parse(decoded.noteDate);
  const onset = new Map(tl.conditions.map((c) => [c.name, c]));
  const conditions = schema.attributes
    .filter((a) => a.kind === 'condition' && onset.has(a.name))
    .map((a) => {
      // Hypertension diagnosed before 6 is secondary (AAP 2017), as the Condition codes it.
      const secondary = a.name === 'hypertension' && isSecondaryHypertensionOnset((onset.get(a.name)!.onsetMs - tl.birthMs) / YEAR_MS);
      return {
        name: a.name,
        display: secondary ? SECONDARY_HYPERTENSION.snomed.display : a.kind === 'condition' ? a.display : a.name,
        snomed: secondary ? SECONDARY_HYPERTENSION.snomed.code : a.kind === 'condition' ? a.codes.snomed[0] : undefined,
        onset: new Date(onset.get(a.name)!.onsetMs).toISOString().slice(0, 10),
        ...(CONDITIONS[a.name]?.course === 'acute' ? { acute: true } : {}),
      };
    });
  const labs: FactLab[] = [];
  for (const a of schema.attributes) {
    if (a.kind !== 'lab') continue;
    let latest: { value: number; ms: number } | undefined;
    for (const m of tl.measurements) if (m.lab === a.name && m.ms <= noteMs && (!latest || m.ms >= latest.ms)) latest = m;
    if (!latest) continue;
    const v = latest.value;
    const interpretation = referenceFlag(a.name, v, (latest.ms - tl.birthMs) / YEAR_MS);
    labs.push({
      name: a.name,
      display: a.display,
      value: v,
      decimals: a.decimals,
      unit: displayUnit(a.unit),
      effective: new Date(latest.ms).toISOString().replace('.000Z', 'Z'),
      ...(interpretation ? { interpretation } : {}),
    });
  }
  let image: SyntheticFacts['image'];
  if (art.findings) {
    const found = NOTE_FINDING_ORDER.filter((k) => art.findings![k]);
    image = {
      findingClass: found[0] ?? 'normal',
      ...(found.length > 1 ? { findings: found } : {}),
      modality: 'DX',
      bodyPart: 'CHEST',
      view: frontalChestView(Math.max(0, (Date.parse(decoded.imagingStarted) - tl.birthMs) / YEAR_MS)),
      ...(art.componentBins ? { componentBins: art.componentBins } : {}),
    };
  }
  const years = wholeYears(tl.birthMs, noteMs);
  return {
    patientId: p.id,
    age: years,
    ...(years < 1 ? { ageMonths: Math.floor(((noteMs - tl.birthMs) / YEAR_MS) * 12) } : {}),
    noteDate: decoded.noteDate,
    sex: p.gender ?? 'unknown',
    conditions,
    labs,
    medications: factMedications(tl),
    ...(image ? { image } : {}),
    ...(art.genotypes ? { genotypes: art.genotypes } : {}),
    ...(art.noteTopics.length ? { noteTopics: art.noteTopics } : {}),
  };
}

/**
 * The vocabulary the generator words notes with: for each condition (finding) that has a
 * `note_<name>` attribute, only the synonyms containing one of that attribute's terms, so the
 * sites' note encoder reads the note as mentioning it (falls back to all synonyms if none does).
 */
export function wordingVocabulary(schema: Schema, vocab: Vocabulary): Vocabulary {
  const termsOf = new Map<string, string[]>();
  for (const a of schema.attributes)
    if (a.kind === 'note-mention')
      termsOf.set(
        a.name.replace(/^note_/, ''),
        a.terms.map((t) => t.toLowerCase()),
      );
  const contains = (phrase: string, term: string) =>
    new RegExp(`(^|[^a-z0-9])${term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^a-z0-9]|$)`).test(phrase);
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

/**
 * A patient's resources as NDJSON, UTF-8 encoded once where they were prepared: each resource
 * type's `lines` (in resource order, each ending in a newline) are bytes [start, end) of one
 * buffer. The buffer is a whole ArrayBuffer, so a worker hands it to the writing thread without
 * a copy, and the writer appends bytes instead of converting strings.
 */
export interface PatientNdjson {
  bytes: Uint8Array;
  parts: [type: string, start: number, end: number, lines: number][];
}

export function ndjsonOf(resources: readonly FhirResourceLike[]): PatientNdjson {
  const byType = new Map<string, string[]>();
  for (const r of resources) {
    let lines = byType.get(r.resourceType);
    if (!lines) byType.set(r.resourceType, (lines = []));
    lines.push(JSON.stringify(r), '\n');
  }
  const texts: [string, string, number][] = [];
  let total = 0;
  for (const [type, lines] of byType) {
    const text = lines.join('');
    texts.push([type, text, lines.length / 2]);
    total += Buffer.byteLength(text);
  }
  // Not from Buffer's shared pool: the bytes own their ArrayBuffer.
  const bytes = Buffer.allocUnsafeSlow(total);
  const parts: PatientNdjson['parts'] = [];
  let at = 0;
  for (const [type, text, lines] of texts) {
    const end = at + bytes.write(text, at);
    parts.push([type, at, end, lines]);
    at = end;
  }
  return { bytes, parts };
}

/** Nearest-neighbour column resize (non-square outputs). */
function resizeCols(px: Uint16Array, rows: number, cols: number): Uint16Array {
  const out = new Uint16Array(rows * cols);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < cols; x++) out[y * cols + x] = px[y * rows + Math.min(rows - 1, Math.floor(((x + 0.5) * rows) / cols))];
  return out;
}

const noCounts = (): DraftCounts => ({
  imagesValidated: 0,
  imagesFailed: 0,
  genomesValidated: 0,
  genomesFailed: 0,
  bundlesValidated: 0,
  bundleIssues: 0,
  recordsVerified: 0,
  clinical: {},
});

/** Decodes and validates patients of one cohort (schema, seed, options). */
export class PatientPreparer {
  private readonly layout: Layout;
  private readonly mods: Modalities;
  private readonly vocab: Vocabulary;
  private readonly genVocab: Vocabulary;
  private readonly root: Rng;
  private readonly records: RecordIndex;
  /** Resource shapes this cohort's Bundles had (the validator's memo is shared by the process). */
  readonly validator = new R4Validator('memo');
  /** Image buffers reused from patient to patient (the DICOM and PNG bytes are copies). */
  private density?: Float32Array;
  private pixels?: Uint16Array;
  /** File buffers reused by `prepareAndWrite` (each patient's files are written before the next is made). */
  private readonly outputs = { dicom: Buffer.alloc(0), png: Buffer.alloc(0) };
  private reuseOutputs = false;
  /** This cohort's single-sample VCF writer, made with the first genome (rowArtefacts gives every genome the layout's SNPs, in order). */
  private vcfWriter?: ReturnType<typeof singleSampleVcfWriter>;

  constructor(
    private readonly schema: Schema,
    seed: SeedLike,
    private readonly opts: PatientOptions = {},
  ) {
    this.layout = layoutOf(schema);
    this.mods = generatedModalities(schema, opts.generate);
    this.vocab = buildVocabulary(
      schema.attributes.filter((a) => a.kind === 'condition').map((a) => ({ name: a.name, display: (a as { display: string }).display })),
    );
    this.genVocab = wordingVocabulary(schema, this.vocab);
    this.root = new Rng(seed);
    this.records = recordIndex(schema);
  }

  /**
   * `prepare`, then the prepared patient's files written under `dir` at once (`files` emptied,
   * `written` set): for cohorts that release every validated draft. The DICOM and PNG bytes are
   * made in buffers reused from patient to patient — a fresh 150 KiB per patient is external
   * memory, and external memory growth is what triggers most of V8's full collections here.
   */
  prepareAndWrite(k: number, row: ArrayLike<number>, attempt: number, dir: string, withResources = false): DraftOutcome {
    this.reuseOutputs = true;
    try {
      const o = this.prepare(k, row, attempt, withResources);
      if (o.ok) {
        for (const [rel, bytes] of o.files) writeFileSync(join(dir, rel), bytes);
        o.files = [];
        o.written = true;
      }
      return o;
    } finally {
      this.reuseOutputs = false;
    }
  }

  /** The clinical verifier over a record: a rejection (with its rules counted) or undefined. */
  private checkRecord(resources: FhirResourceLike[], counts: DraftCounts): RejectedDraft | undefined {
    counts.recordsVerified++;
    const v = verifyRecord(this.records, resources);
    if (v.length === 0) return undefined;
    countByRule(v, counts.clinical);
    return { ok: false, stage: 'clinical', reason: `${v[0].rule}: ${v[0].resource}: ${v[0].detail}`, counts };
  }

  /** The reusable buffer `key`, grown to at least `bytes`, when outputs are reused. */
  private output(key: 'dicom' | 'png', bytes: number): Buffer | undefined {
    if (!this.reuseOutputs) return undefined;
    if (this.outputs[key].length < bytes) this.outputs[key] = Buffer.allocUnsafeSlow(bytes + (bytes >> 3));
    return this.outputs[key];
  }

  /**
   * Patient k from `row` (attempt 0: its first draw; a ≥ 1: replacement row a). With
   * `withResources`, a prepared patient carries its flat resources and facts (for a release check).
   */
  prepare(k: number, row: ArrayLike<number>, attempt: number, withResources = false): DraftOutcome {
    const { schema, mods, root, opts } = this;
    const counts = noCounts();
    const tag = attempt === 0 ? `${k}` : `${k}/redraw-${attempt}`;
    let decoded: DecodedPatient;
    try {
      decoded = decodePatient(schema, row, attempt === 0 ? root.fork(k) : root.fork(tag), { identifierValue: String(k + 1) });
    } catch (e) {
      if (!(e instanceof ClinicalInfeasibleError)) throw e;
      counts.recordsVerified++;
      counts.clinical[e.rule] = (counts.clinical[e.rule] ?? 0) + 1;
      return { ok: false, stage: 'clinical', reason: `${e.rule}: ${e.message}`, counts };
    }
    if (!mods.image && !mods.genome && !mods.notes) {
      // FHIR-only schema: exactly the FHIR decoder's resources, checked per patient here and for
      // cross-patient id clashes once for the cohort.
      const resources = [decoded.patient, ...decoded.encounters, ...decoded.conditions, ...decoded.observations, ...decoded.medications];
      const problems = validateFhirResources(resources);
      if (problems.length > 0) return { ok: false, stage: 'fhir', reason: `${problems[0].resource}: ${problems[0].message}`, counts };
      const clinical = this.checkRecord(resources, counts);
      if (clinical) return clinical;
      return { ok: true, files: [], resources, fhirOnly: true, preview: false, note: false, counts };
    }
    const rowsOut = opts.imageRows ?? 256;
    const colsOut = opts.imageCols ?? 256;
    const bitsStored = opts.bitsStored ?? 16;
    const build = opts.build ?? 'GRCh38';
    const noteStats = new NoteStats();
    const rng = root.fork(attempt === 0 ? `artefacts-${k}` : `artefacts-${tag}`);
    const art = rowArtefacts(this.layout, row);
    const facts = toFacts(schema, decoded, art);
    const patientId = decoded.patient.id as string;
    const birthDate = decoded.patient.birthDate as string | undefined;
    // The radiograph is taken at the index visit's imaging encounter (DICOM StudyDate follows it).
    const studyDate = decoded.imagingStarted.slice(0, 10);
    const artefacts: PatientArtefacts = {};
    const out: PreparedPatient = { ok: true, files: [], fhirOnly: false, preview: false, note: false, counts };
    const reject = (stage: RejectedDraft['stage'], reason: string): RejectedDraft => ({
      ok: false,
      stage,
      reason,
      counts,
      notes: noteStats.toJSON(),
    });

    if (art.findings && mods.image) {
      const imgRng = rng.fork('image');
      if (this.density?.length !== rowsOut * rowsOut) ({ density: this.density, pixels: this.pixels } = radiographBuffers(schema, rowsOut));
      // Findings drawn into the prior, components solved on the model grid (radiograph-synth.ts).
      // Age at the study (the field of view and paediatric proportions), sex, build from the BMI when known.
      const ageYears = birthDate
        ? Math.max(0, (Date.parse(decoded.imagingStarted) - Date.parse(`${birthDate}T00:00:00Z`)) / (365.2425 * 86_400_000))
        : facts.age;
      const bmi = facts.labs?.find((l) => l.name === 'bmi')?.value;
      const habitus = bmi !== undefined && ageYears >= 18 ? (bmi - 25) / 5 : 0;
      // The read-back's cardiothoracic-ratio cut is the row's age band's, as the sites' is.
      const ageCol = schema.attributes.findIndex((a) => a.kind === 'age');
      const drawn = synthesiseRadiograph(schema, rowsOut, { ageYears, sex: facts.sex, habitus }, art.findings, art.componentBins, imgRng, {
        bitsStored,
        ...(ageCol >= 0 ? { ageBandFrom: ageBandFrom(schema, row[ageCol]!) } : {}),
        density: this.density,
        pixels: this.pixels,
      });
      let stored: { pixels: Uint16Array; windowCenter: number; windowWidth: number } = drawn;
      // The imaging encounter's start, in UTC both here and in ImagingStudy.started.
      const studyTime = decoded.imagingStarted.slice(11, 19);
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
        studyTime,
        accessionNumber: `SYN${k + 1}`,
        studyDescription: 'Synthetic chest radiograph',
        // The projection the note names (toFacts), so header and note cannot disagree.
        seriesDescription: facts.image!.view,
        bodyPart: 'CHEST',
        viewPosition: facts.image!.view,
        pixelSpacing: [drawn.fieldMm / rowsOut, drawn.fieldMm / colsOut],
        windowCenter: stored.windowCenter,
        windowWidth: stored.windowWidth,
      };
      // Header and pixel data; the header is a few KiB at most.
      const bytes = writeDicom(spec, this.output('dicom', spec.pixels.byteLength + 8192));
      const check = validateDicom(bytes, spec);
      counts.imagesValidated++;
      if (!check.ok) {
        counts.imagesFailed++;
        return reject('dicom', `parse-back: ${check.errors[0]}`);
      }
      const rel = `dicom/${patientId}.dcm`;
      out.files.push([rel, bytes]);
      if (opts.previews ?? true) {
        const f = Math.max(1, Math.ceil(Math.max(rowsOut, colsOut) / (opts.previewSide ?? 128)));
        // Scanlines of w + 1 bytes, stored-block and chunk headers: under 1 KiB more for a preview.
        const into = this.output('png', Math.ceil(rowsOut / f) * (Math.ceil(colsOut / f) + 1) + 1024);
        out.files.push([
          `previews/${patientId}.png`,
          pngPreview(spec.pixels, rowsOut, colsOut, spec.windowCenter, spec.windowWidth, { downscale: f, into }),
        ]);
        out.preview = true;
      }
      const names = (Object.keys(art.findings) as (keyof RadiographFindings)[]).filter((f) => art.findings![f]);
      out.image = names;
      if (drawn.readBack) out.imageReadBack = { patient: patientId, ...drawn.readBack };
      if (drawn.sides.opacity || drawn.sides.nodule) {
        out.imageSides = drawn.sides;
        // The note names, and the imaging Observation codes, the side the pixels hold.
        if (facts.image) facts.image.sides = { ...drawn.sides };
      }
      artefacts.image = {
        studyInstanceUid: spec.studyInstanceUid,
        seriesInstanceUid: spec.seriesInstanceUid,
        sopInstanceUid: spec.sopInstanceUid,
        sopClassUid: SOP_CLASS.DX,
        modality: 'DX',
        started: decoded.imagingStarted,
        findingClass: names.length ? names.join(', ') : 'normal',
        ...(drawn.sides.opacity || drawn.sides.nodule ? { sides: { ...drawn.sides } } : {}),
        path: rel,
      };
    }

    if (art.genotypes && mods.genome) {
      const sample: VcfSample = { id: patientId, genotypes: art.genotypes };
      this.vcfWriter ??= singleSampleVcfWriter(art.genotypes, { build, fileDate: schema.referenceDate, source: 'fedsynth-cohort' });
      const text = this.vcfWriter(patientId, art.genotypes);
      const v = validateVcf(text);
      counts.genomesValidated++;
      if (!v.ok) {
        counts.genomesFailed++;
        return reject('vcf', v.errors[0] ?? 'invalid VCF');
      }
      out.files.push([`vcf/${patientId}.vcf`, text]);
      out.sample = sample;
      artefacts.genome = {
        build,
        genotypes: art.genotypes,
        effective: new Date(decoded.timeline.indexMs).toISOString().replace('.000Z', 'Z'),
      };
    }

    if (art.hasNote && mods.notes) {
      // Worded with the terms the schema's note encoder recognises, verified against the full
      // vocabulary (so no synonym of a condition the patient lacks slips through).
      let text: string;
      try {
        text = generateVerifiedNote(facts, this.genVocab, rng.fork('note'), {
          stats: noteStats,
          maxTries: opts.noteMaxTries ?? 5,
          verifyWith: this.vocab,
        }).text;
      } catch (e) {
        if (e instanceof SafeNoteError) return reject('note', e.message);
        throw e;
      }
      out.files.push([`notes/${patientId}.txt`, text]);
      out.note = true;
      artefacts.note = { text, date: decoded.noteDate, title: 'Progress note' };
    }

    // The resources are validated as written (the per-patient Bundle's checks, on the flat list).
    const resources = buildPatientResources(decoded, artefacts, rng.fork('bundle'));
    const issues = validatePatientResources(resources, this.validator);
    counts.bundlesValidated++;
    if (issues.length > 0) {
      counts.bundleIssues += issues.length;
      return reject('fhir', `${issues[0].resource}: ${issues[0].message}`);
    }
    const clinical = this.checkRecord(resources, counts);
    if (clinical) return { ...clinical, notes: noteStats.toJSON() };
    out.ndjson = ndjsonOf(resources);
    if (withResources) {
      out.resources = resources;
      out.facts = facts;
    }
    out.notes = noteStats.toJSON();
    return out;
  }
}
