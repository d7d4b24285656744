// Turns a fitted model into a released cohort: conditional sampling (post-processing, no
// budget), clinical plausibility (violating rows resampled from the model), decoding into FHIR
// R4 resources and, for the schema's other modalities, DICOM, VCF and notes
// (synthesis/multimodal.ts); every artefact is validated before release.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { sample } from '../model/sample.ts';
import { allocColumn, Dataset } from '../model/domain.ts';
import type { Schema } from '../schema/schema.ts';
import { plausibilityRules, violations } from './plausibility.ts';
import {
  cohortWorkers,
  generatedModalities,
  writeMultimodalCohort,
  type ClinicalReport,
  type ModalityReport,
  type MultimodalOptions,
  type RejectionReport,
} from './multimodal.ts';
import { CohortWorkerPool } from './workers.ts';
import { drawInWorker, DRAW_WORKER_MIN_ROWS } from './draw-worker.ts';

export interface CohortRequest {
  n: number;
  seed: number | string;
  where?: Record<string, number[]>;
  /** The cohort folder: artefacts go to its fhir/ (and, per modality, dicom/, vcf/, notes/, previews/). */
  dir: string;
  /** Decoder options (DICOM size, previews, reference build). */
  modalities?: MultimodalOptions;
  /** Resampling rounds for implausible rows (default 8). */
  plausibilityRetries?: number;
  /** Draw the rows in a worker thread (default: from DRAW_WORKER_MIN_ROWS rows on). */
  drawInWorker?: boolean;
}

export interface PlausibilityReport {
  rules: string[];
  /** Rows of the first draw that broke a rule. */
  violatingRows: number;
  /** Per rule: rows of the first draw breaking it. */
  byRule: Record<string, number>;
  /** Replacement rows drawn / rejected while resampling. */
  resampled: number;
  rejectedReplacements: number;
  /** Rows still implausible after the retries: dropped from the cohort. */
  dropped: number;
}

export interface CohortResult {
  /** The released rows (plausible, redrawn where an artefact failed validation). */
  dataset: Dataset;
  files: Record<string, { path: string; resources: number }>;
  plausibility: PlausibilityReport;
  /** Patients whose artefacts failed a validator: redrawn from the model, or dropped. */
  rejected: RejectionReport;
  /** The record-level clinical verifier (every released patient passed it), violations by rule. */
  clinical: ClinicalReport;
  modalities?: ModalityReport;
}

export { ArtefactValidationError as CohortValidationError } from './multimodal.ts';

function rowOf(ds: Dataset, r: number, out: number[]): number[] {
  for (let j = 0; j < ds.columns.length; j++) out[j] = ds.columns[j][r];
  return out;
}

/**
 * Replaces rows that break a plausibility rule by rows drawn afresh from the (conditioned) model,
 * in bounded rounds; whatever still breaks a rule is dropped. Deterministic in `seed`.
 */
export function enforcePlausibility(
  schema: Schema,
  model: GraphicalModel,
  ds: Dataset,
  opts: { seed: number | string; where?: Record<string, number[]>; retries?: number },
): { dataset: Dataset; report: PlausibilityReport } {
  const rules = plausibilityRules(schema);
  const report: PlausibilityReport = {
    rules: rules.map((r) => r.id),
    violatingRows: 0,
    byRule: {},
    resampled: 0,
    rejectedReplacements: 0,
    dropped: 0,
  };
  if (rules.length === 0 || ds.rows === 0) return { dataset: ds, report };
  const row: number[] = new Array(ds.columns.length);
  let bad: number[] = [];
  for (let r = 0; r < ds.rows; r++) {
    const v = violations(rules, rowOf(ds, r, row));
    if (v.length === 0) continue;
    bad.push(r);
    for (const id of v) report.byRule[id] = (report.byRule[id] ?? 0) + 1;
  }
  report.violatingRows = bad.length;
  if (bad.length === 0) return { dataset: ds, report };
  const columns = ds.columns.map((c) => c.slice()) as Dataset['columns'][number][];
  const retries = opts.retries ?? 8;
  for (let attempt = 0; attempt < retries && bad.length > 0; attempt++) {
    const pool = sample(model, {
      rows: Math.max(32, 3 * bad.length),
      seed: `${opts.seed}/plausibility/${attempt}`,
      where: opts.where,
      method: 'iid',
    });
    const still: number[] = [];
    let p = 0;
    for (const r of bad) {
      let replaced = false;
      while (p < pool.rows && !replaced) {
        rowOf(pool, p++, row);
        report.resampled++;
        if (violations(rules, row).length > 0) {
          report.rejectedReplacements++;
          continue;
        }
        for (let j = 0; j < columns.length; j++) columns[j][r] = row[j];
        replaced = true;
      }
      if (!replaced) still.push(r);
    }
    bad = still;
  }
  if (bad.length === 0) return { dataset: new Dataset(ds.domain, columns, ds.rows), report };
  report.dropped = bad.length;
  const drop = new Set(bad);
  const n = ds.rows - drop.size;
  const kept = ds.domain.sizes.map((s) => allocColumn(s, n));
  let o = 0;
  for (let r = 0; r < ds.rows; r++) {
    if (drop.has(r)) continue;
    for (let j = 0; j < columns.length; j++) kept[j][o] = columns[j][r];
    o++;
  }
  return { dataset: new Dataset(ds.domain, kept, n), report };
}

/** The dataset as released: replacement rows written in, dropped patients taken out. */
function applyRedraws(ds: Dataset, redrawn: { k: number; row: number[] }[], dropped: number[]): Dataset {
  if (redrawn.length === 0 && dropped.length === 0) return ds;
  const drop = new Set(dropped);
  const n = ds.rows - drop.size;
  const out = ds.domain.sizes.map((s) => allocColumn(s, n));
  const replacement = new Map(redrawn.map((r) => [r.k, r.row]));
  let o = 0;
  for (let r = 0; r < ds.rows; r++) {
    if (drop.has(r)) continue;
    const row = replacement.get(r);
    for (let j = 0; j < out.length; j++) out[j][o] = row ? row[j] : ds.columns[j][r];
    o++;
  }
  return new Dataset(ds.domain, out, n);
}

/** Marks a folder as a fedsynth cohort, so a later cohort may replace what is in it. */
export const COHORT_MARKER = '.fedsynth-cohort';
const COHORT_PARTS = ['fhir', 'dicom', 'vcf', 'notes', 'previews', 'report.json'];

/**
 * Makes `dir` ready for a new cohort. Files of an earlier cohort would otherwise survive where
 * the new one has no patient of that id (ids are a function of the seed), and be read back as
 * part of it. A non-empty folder that is not a cohort is refused rather than cleared.
 */
export async function prepareCohortDir(dir: string): Promise<void> {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(COHORT_MARKER)) {
      throw new Error(
        `refusing to write a cohort into ${dir}: the folder is not empty and was not written by fedsynth (no ${COHORT_MARKER}); choose an empty or new folder`,
      );
    }
    for (const part of COHORT_PARTS) await rm(join(dir, part), { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, COHORT_MARKER),
    'A synthetic cohort written by fedsynth; a new cohort written here replaces its fhir/, dicom/, vcf/, notes/ and previews/.\n',
  );
}

/** A cohort's rows: drawn from the model, implausible ones resampled (a pure function of its arguments). */
export function drawPlausible(
  schema: Schema,
  model: GraphicalModel,
  n: number,
  seed: number | string,
  where: Record<string, number[]> | undefined,
  retries: number | undefined,
): { dataset: Dataset; report: PlausibilityReport } {
  const drawn = sample(model, { rows: n, seed, where });
  return enforcePlausibility(schema, model, drawn, { seed, where, retries });
}

export async function writeCohort(schema: Schema, model: GraphicalModel, req: CohortRequest): Promise<CohortResult> {
  if (!Number.isInteger(req.n) || req.n < 1) throw new Error(`cohort size must be a positive integer, got ${req.n}`);
  await prepareCohortDir(req.dir);
  // Worker threads start now, so their start-up overlaps the sampling below.
  const workers = cohortWorkers(schema, req.n, req.modalities?.workers, req.modalities?.generate);
  if (workers > 0) CohortWorkerPool.shared(workers);
  // Large draws run in a worker thread: a coordinator keeps answering its agents meanwhile.
  const inWorker = req.drawInWorker ?? req.n >= DRAW_WORKER_MIN_ROWS;
  const { dataset, report: plausibility } = inWorker
    ? await drawInWorker(schema, model, req.n, req.seed, req.where, req.plausibilityRetries)
    : drawPlausible(schema, model, req.n, req.seed, req.where, req.plausibilityRetries);
  const rows = function* () {
    const row = new Array<number>(dataset.columns.length);
    for (let r = 0; r < dataset.rows; r++) yield rowOf(dataset, r, row);
  };
  const rules = plausibilityRules(schema);
  // A patient whose artefacts fail a validator is replaced by a fresh plausible draw from the
  // same conditioned model (its own seed stream, so the cohort stays a function of the seed).
  const redraw = (k: number, attempt: number): number[] | undefined => {
    const pool = sample(model, { rows: 16, seed: `${req.seed}/artefact/${k}/${attempt}`, where: req.where, method: 'iid' });
    const row = new Array<number>(pool.columns.length);
    for (let r = 0; r < pool.rows; r++) if (violations(rules, rowOf(pool, r, row)).length === 0) return row;
    return undefined;
  };
  const written = await writeMultimodalCohort(schema, rows(), `${req.seed}`, req.dir, { ...req.modalities, workers, redraw });
  const released = applyRedraws(dataset, written.redrawn, written.dropped);
  const mods = generatedModalities(schema, req.modalities?.generate);
  const { rejected, ...report } = written.report;
  return {
    dataset: released,
    files: written.files,
    plausibility,
    rejected: rejected!,
    clinical: report.clinical,
    ...(mods.image || mods.genome || mods.notes ? { modalities: report } : {}),
  };
}
