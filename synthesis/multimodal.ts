/**
 * Cross-modal cohort writer: each sampled joint-model row becomes one
 * synthetic patient whose FHIR record, chest radiograph (DICOM), genome (VCF) and clinical note
 * agree, because they are all decoded from the same row (synthesis/patient.ts):
 *
 * - FHIR: Bulk NDJSON by type under `fhir/`, each patient's Bundle validated against R4;
 * - DICOM (`dicom/<patient id>.dcm`, parsed back with dicom-parser) and a PNG preview per image
 *   (`previews/<patient id>.png`);
 * - VCF (`vcf/<patient id>.vcf` and one multi-sample `vcf/cohort.vcf`), parsed back;
 * - note (`notes/<patient id>.txt`), verified against the patient's facts.
 * Only attributes the schema has are decoded: a FHIR-only schema gives a FHIR-only cohort,
 * byte-identical to the FHIR decoder's.
 *
 * Patients are prepared in batches, by worker threads for larger cohorts
 * (synthesis/workers.ts), and released strictly in row order: a patient's files are
 * written only after all its artefacts validated (and a deployment's release check passed),
 * rejected drafts are redrawn from the model. Same schema, rows, seed and options → the same
 * bytes, whatever the number of workers.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import type { Schema } from '../schema/schema.ts';
import type { SeedLike } from '../model/rng.ts';
import type { FhirResourceLike } from '../modalities/fhir/types.ts';
import { validateFhirResources } from '../modalities/fhir/validate.ts';
import { writeVcf, type VcfSample } from '../modalities/genome/vcf-writer.ts';
import { validateVcf } from '../modalities/genome/validate.ts';
import type { ReferenceBuild } from '../modalities/genome/reference.ts';
import { NoteStats } from '../modalities/notes/generate.ts';
import { MAX_FINDING_DRAWS, type FindingMismatch } from '../modalities/image/radiograph-synth.ts';
import type { SyntheticFacts } from '../modalities/notes/facts.ts';
import {
  generatedModalities,
  PatientPreparer,
  schemaModalities,
  type DraftOutcome,
  type Modalities,
  type PatientNdjson,
  type PatientOptions,
  type PreparedPatient,
  type RejectedDraft,
} from './patient.ts';
import { CohortWorkerPool, defaultWorkerCount, localExecutor, type CohortJob, type PatientExecutor } from './workers.ts';

export { generatedModalities, schemaModalities };

export interface MultimodalOptions extends PatientOptions {
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
  /**
   * Worker threads preparing patients; 0 prepares them in this thread. Default: the machine's
   * cores for cohorts of at least `PARALLEL_MIN_PATIENTS`, else 0.
   */
  workers?: number;
}

/** Below this many patients a cohort is prepared in this thread by default (worker start-up costs ~1 s). */
export const PARALLEL_MIN_PATIENTS = 500;

/**
 * Worker threads a cohort of n patients uses (see MultimodalOptions.workers); a FHIR-only
 * patient is cheaper to decode than to send between threads, so those stay here by default.
 */
export function cohortWorkers(schema: Schema, n: number, workers: number | undefined, generate?: Partial<Modalities>): number {
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 0))
    throw new Error(`cohort workers must be a non-negative integer, got ${workers}`);
  const m = generatedModalities(schema, generate);
  return workers ?? (n >= PARALLEL_MIN_PATIENTS && (m.image || m.genome || m.notes) ? defaultWorkerCount() : 0);
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

/**
 * The clinical verifier over decoded records (modalities/fhir/verify-record.ts): records checked,
 * drafts it rejected (each redrawn, or dropped and counted in `rejected`), and the violations by
 * rule among those drafts (a draft may break several).
 */
export interface ClinicalReport {
  recordsVerified: number;
  rejected: number;
  byRule: Record<string, number>;
}

/**
 * How the released images read back through the sites' extractor: radiographs drawn for them,
 * and those kept after MAX_FINDING_DRAWS with findings still read in another class or on another
 * side than sampled (the image is the best effort; the record keeps the sampled findings).
 */
export interface ImageReadBackReport {
  maxDraws: number;
  /** Images checked (those drawn on the model grid with finding attributes). */
  checked: number;
  /** Radiographs drawn for the checked images (checked + redraws). */
  draws: number;
  /** Checked images kept with at least one finding not read back. */
  notReadBack: number;
  /** Per "attribute: sampled → read" (a side read wrong adds " (side drawn → side read)"): findings not read back. */
  byFinding: Record<string, number>;
  /** The images not read back: patient id and what each finding read. */
  images: { patient: string; mismatches: FindingMismatch[] }[];
}

export interface ModalityReport {
  patients: number;
  resources: Record<string, number>;
  images: {
    written: number;
    validated: number;
    failed: number;
    rows: number;
    cols: number;
    bitsStored: number;
    findings: Record<string, number>;
    previews: number;
    /** The released images' finding read-back (images checked against the sites' extractor). */
    readBack: ImageReadBackReport;
  };
  genomes: {
    written: number;
    validated: number;
    failed: number;
    cohortVcf?: { path: string; samples: number; records: number; valid: boolean };
    build: ReferenceBuild;
  };
  notes: { written: number; verified: number; stats: ReturnType<NoteStats['toJSON']> };
  /** validatorShapes: distinct resource shapes (see R4Validator) among the cohort's Bundles. */
  fhir: { bundlesValidated: number; bundleIssues: number; validatorShapes: number };
  clinical: ClinicalReport;
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

/** Patients per message to a worker, and batches in flight per worker. */
const BATCH = 16;
const IN_FLIGHT_PER_WORKER = 3;
/** NDJSON is flushed to its file once this many bytes are buffered. */
const NDJSON_FLUSH = 1 << 20;

/** Appends patients' NDJSON bytes by resource type to `dir/<type>.ndjson`, buffered. */
class NdjsonWriter {
  private readonly open = new Map<string, { fd: number; chunks: Uint8Array[]; bytes: number; count: number }>();
  constructor(
    private readonly dir: string,
    types: string[],
  ) {
    for (const t of types) this.file(t);
  }
  private file(type: string) {
    let f = this.open.get(type);
    if (!f) this.open.set(type, (f = { fd: openSync(join(this.dir, `${type}.ndjson`), 'w'), chunks: [], bytes: 0, count: 0 }));
    return f;
  }
  /** One patient's lines (synthesis/patient.ts ndjsonOf). */
  add({ bytes, parts }: PatientNdjson): void {
    for (const [type, start, end, lines] of parts) {
      const f = this.file(type);
      const chunk = bytes.subarray(start, end);
      f.chunks.push(chunk);
      f.bytes += chunk.length;
      f.count += lines;
      if (f.bytes >= NDJSON_FLUSH) this.flush(f);
    }
  }
  private flush(f: { fd: number; chunks: Uint8Array[]; bytes: number }): void {
    // Gathered by the kernel: no 1 MiB copy per flush. A short write (a full disk) is an error, not lost lines.
    if (f.chunks.length) {
      const written = writevSync(f.fd, f.chunks);
      if (written !== f.bytes) throw new Error(`NDJSON write: ${written} of ${f.bytes} bytes written`);
    }
    f.chunks = [];
    f.bytes = 0;
  }
  close(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [type, f] of this.open) {
      this.flush(f);
      closeSync(f.fd);
      counts[type] = f.count;
    }
    return counts;
  }
}

/** Decodes and writes a cross-modal cohort under `dir`. `rows` are codes in schema order. */
export async function writeMultimodalCohort(
  schema: Schema,
  rows: Iterable<ArrayLike<number>>,
  seed: SeedLike,
  dir: string,
  opts: MultimodalOptions = {},
): Promise<MultimodalResult> {
  const mods = generatedModalities(schema, opts.generate);
  const patientOpts: PatientOptions = {
    imageRows: opts.imageRows,
    imageCols: opts.imageCols,
    bitsStored: opts.bitsStored,
    previews: opts.previews,
    previewSide: opts.previewSide,
    build: opts.build,
    noteMaxTries: opts.noteMaxTries,
    generate: mods,
  };
  // Rows are read lazily (a generator may reuse its array: each is copied); enough are read ahead
  // to know whether the cohort is large enough for worker threads.
  const source = rows[Symbol.iterator]();
  const ahead: number[][] = [];
  let exhausted = false;
  const pull = (): number[] | undefined => {
    if (ahead.length) return ahead.shift();
    const r = exhausted ? undefined : source.next();
    if (!r || r.done) {
      exhausted = true;
      return undefined;
    }
    return Array.from(r.value);
  };
  while (opts.workers === undefined && ahead.length < PARALLEL_MIN_PATIENTS) {
    const r = source.next();
    if (r.done) {
      exhausted = true;
      break;
    }
    ahead.push(Array.from(r.value));
  }
  const workers = cohortWorkers(schema, exhausted ? ahead.length : PARALLEL_MIN_PATIENTS, opts.workers, mods);
  const withResources = !!opts.releaseCheck;
  // Without a release check every validated draft is released, so workers may write its files.
  const executor: PatientExecutor =
    workers > 0
      ? CohortWorkerPool.shared(workers).begin(workers, schema, seed, patientOpts, withResources, withResources ? undefined : dir)
      : localExecutor(new PatientPreparer(schema, seed, patientOpts), withResources, withResources ? undefined : dir);
  const build = opts.build ?? 'GRCh38';
  const previews = mods.image && (opts.previews ?? true);
  const noteStats = new NoteStats();
  const report: ModalityReport = {
    patients: 0,
    resources: {},
    images: {
      written: 0,
      validated: 0,
      failed: 0,
      rows: opts.imageRows ?? 256,
      cols: opts.imageCols ?? 256,
      bitsStored: opts.bitsStored ?? 16,
      findings: { normal: 0, cardiomegaly: 0, opacity: 0, nodule: 0 },
      previews: 0,
      readBack: { maxDraws: MAX_FINDING_DRAWS, checked: 0, draws: 0, notReadBack: 0, byFinding: {}, images: [] },
    },
    genomes: { written: 0, validated: 0, failed: 0, build },
    notes: { written: 0, verified: 0, stats: noteStats.toJSON() },
    fhir: { bundlesValidated: 0, bundleIssues: 0, validatorShapes: 0 },
    clinical: { recordsVerified: 0, rejected: 0, byRule: {} },
  };
  // Created before the first patient goes out: workers write into them.
  for (const [sub, on] of [
    ['fhir', true],
    ['dicom', mods.image],
    ['previews', previews],
    ['vcf', mods.genome],
    ['notes', mods.notes],
  ] as const)
    if (on) mkdirSync(join(dir, sub), { recursive: true });
  const fhirDir = join(dir, 'fhir');
  const fhirOnlyResources: FhirResourceLike[] = [];
  const ndjson =
    mods.image || mods.genome || mods.notes
      ? new NdjsonWriter(fhirDir, ['Patient', 'Encounter', 'Condition', 'Observation', 'MedicationRequest'])
      : undefined;
  const cohortSamples: VcfSample[] = [];
  const rejection: RejectionReport = { rows: 0, byStage: {}, replaced: 0, dropped: 0, firstReasons: [] };
  const redrawn: { k: number; row: number[] }[] = [];
  const dropped: number[] = [];
  const maxRedraws = opts.redraw ? (opts.maxRedraws ?? 4) : 0;

  const account = (o: DraftOutcome) => {
    report.images.validated += o.counts.imagesValidated;
    report.images.failed += o.counts.imagesFailed;
    report.genomes.validated += o.counts.genomesValidated;
    report.genomes.failed += o.counts.genomesFailed;
    report.fhir.bundlesValidated += o.counts.bundlesValidated;
    report.fhir.bundleIssues += o.counts.bundleIssues;
    report.clinical.recordsVerified += o.counts.recordsVerified;
    if (!o.ok && o.stage === 'clinical') report.clinical.rejected++;
    for (const [rule, n] of Object.entries(o.counts.clinical)) report.clinical.byRule[rule] = (report.clinical.byRule[rule] ?? 0) + n;
    if (o.notes) noteStats.add(o.notes);
  };

  const release = (p: PreparedPatient) => {
    if (p.fhirOnly) {
      fhirOnlyResources.push(...p.resources!);
      return;
    }
    for (const [rel, bytes] of p.files) writeFileSync(join(dir, rel), bytes);
    if (p.image) {
      report.images.written++;
      if (p.image.length === 0) report.images.findings.normal++;
      for (const f of p.image) report.images.findings[f]++;
      if (p.preview) report.images.previews++;
      if (p.imageReadBack) countReadBack(report.images.readBack, p.imageReadBack);
    }
    if (p.sample) {
      report.genomes.written++;
      cohortSamples.push(p.sample);
    }
    if (p.note) {
      report.notes.verified++;
      report.notes.written++;
    }
    if (p.ndjson) ndjson!.add(p.ndjson);
  };

  /** Patient k's final outcome: its first draft, then replacement rows while drafts are rejected. */
  const settle = async (job: CohortJob, first: DraftOutcome) => {
    let outcome = first;
    let row = job.row;
    for (let attempt = 0; ;) {
      account(outcome);
      if (outcome.ok && opts.releaseCheck) {
        const reason = opts.releaseCheck({ index: job.k, facts: outcome.facts!, resources: outcome.resources! });
        if (reason) outcome = { ok: false, stage: 'release-check', reason, counts: outcome.counts } satisfies RejectedDraft;
      }
      if (outcome.ok) {
        if (attempt > 0) redrawn.push({ k: job.k, row });
        release(outcome);
        report.patients++;
        return;
      }
      rejection.rows++;
      rejection.byStage[outcome.stage] = (rejection.byStage[outcome.stage] ?? 0) + 1;
      if (rejection.firstReasons.length < 5)
        rejection.firstReasons.push(`patient ${job.k + 1}, attempt ${attempt + 1}, ${outcome.stage}: ${outcome.reason}`);
      const next = attempt < maxRedraws ? opts.redraw?.(job.k, attempt + 1) : undefined;
      if (!next) break;
      attempt++;
      rejection.replaced++;
      row = Array.from(next);
      outcome = (await executor.prepare([{ k: job.k, attempt, row }]))[0];
    }
    rejection.dropped++;
    dropped.push(job.k);
  };

  // Batches go out ahead (several per worker); results are settled in row order.
  const inFlight: { jobs: CohortJob[]; result: Promise<DraftOutcome[]> }[] = [];
  const window = Math.max(1, workers * IN_FLIGHT_PER_WORKER);
  let failure: unknown;
  try {
    for (let k = 0; ;) {
      while (inFlight.length < window) {
        const jobs: CohortJob[] = [];
        while (jobs.length < BATCH) {
          const row = pull();
          if (!row) break;
          jobs.push({ k: k++, attempt: 0, row });
        }
        if (jobs.length === 0) break;
        const result = executor.prepare(jobs);
        result.catch(() => undefined); // awaited below, in order
        inFlight.push({ jobs, result });
      }
      if (inFlight.length === 0) break;
      const head = inFlight.shift()!;
      const outcomes = await head.result;
      for (let i = 0; i < head.jobs.length; i++) await settle(head.jobs[i], outcomes[i]);
    }
  } catch (e) {
    failure = e;
  }
  const shapes = await executor.finish().catch((e) => {
    failure ??= e;
    return [] as string[];
  });
  const files: MultimodalResult['files'] = {};
  const counts = ndjson?.close() ?? {};
  if (failure) throw failure;
  report.rejected = rejection;
  report.fhir.validatorShapes = shapes.length;
  report.notes.stats = noteStats.toJSON();
  if (!ndjson) {
    // Ids are drawn per patient, so a clash across patients is a decoder bug, not a bad draw.
    const problems = validateFhirResources(fhirOnlyResources);
    if (problems.length > 0)
      throw new ArtefactValidationError(
        `${problems.length} synthetic resources failed validation, first: ${problems[0].resource}: ${problems[0].message}`,
      );
    const byType = new Map<string, string[]>(['Patient', 'Encounter', 'Condition', 'Observation', 'MedicationRequest'].map((t) => [t, []]));
    for (const r of fhirOnlyResources) {
      let list = byType.get(r.resourceType);
      if (!list) byType.set(r.resourceType, (list = []));
      list.push(JSON.stringify(r));
    }
    for (const [type, lines] of byType) {
      writeFileSync(join(fhirDir, `${type}.ndjson`), lines.length ? lines.join('\n') + '\n' : '');
      counts[type] = lines.length;
    }
    report.fhir.bundlesValidated = report.patients;
  }
  if (cohortSamples.length > 0) {
    const text = writeVcf(cohortSamples, { build, fileDate: schema.referenceDate, source: 'fedsynth-cohort' });
    const v = validateVcf(text);
    if (!v.ok) throw new ArtefactValidationError(`cohort VCF failed validation: ${v.errors[0]}`);
    const path = join(dir, 'vcf', 'cohort.vcf');
    writeFileSync(path, text);
    report.genomes.cohortVcf = { path, samples: v.samples.length, records: v.records.length, valid: v.ok };
  }
  for (const [type, n] of Object.entries(counts)) {
    files[type] = { path: join(fhirDir, `${type}.ndjson`), resources: n };
    report.resources[type] = n;
  }
  return { files, report, redrawn, dropped };
}

function countReadBack(r: ImageReadBackReport, rb: NonNullable<PreparedPatient['imageReadBack']>): void {
  r.checked++;
  r.draws += rb.draws;
  if (rb.mismatches.length === 0) return;
  r.notReadBack++;
  r.images.push({ patient: rb.patient, mismatches: rb.mismatches });
  for (const m of rb.mismatches) {
    const side = m.sideDrawn ? ` (${m.sideDrawn} → ${m.sideRead ?? 'none'})` : '';
    const key = `${m.attribute}: ${m.sampled} → ${m.read}${side}`;
    r.byFinding[key] = (r.byFinding[key] ?? 0) + 1;
  }
}
