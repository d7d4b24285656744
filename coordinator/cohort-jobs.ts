// Cohort requests of the long-running coordinator: queued in the database, sampled one after the
// other from a fitted study's model (post-processing: no budget), with a report a researcher can
// judge the cohort by. A restart runs unfinished requests again (same seed: same rows).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { marginal } from '../model/marginals.ts';
import { normalisedL1 } from '../model/metrics.ts';
import { GraphicalModel, type GraphicalModelJSON } from '../model/pgm/index.ts';
import { generatedModalities } from '../synthesis/multimodal.ts';
import type { Schema } from '../schema/schema.ts';
import type { CoordinatorConfig } from './config.ts';
import { emitCohort } from './coordinator.ts';
import { studySchema } from './studies.ts';
import type { CohortJob, Store, StudyStore } from './store/index.ts';

/** Artefact kinds a cohort can carry, by the folder the cohort writer puts them in. */
export const COHORT_MODALITIES = ['fhir', 'dicom', 'vcf', 'notes'] as const;
const FOLDERS: Record<string, string[]> = { fhir: ['fhir'], dicom: ['dicom', 'previews'], vcf: ['vcf'], notes: ['notes'] };
/**
 * What a cohort request's modalities make: FHIR always (the cohort is a FHIR Group and its export),
 * and of the schema's other artefacts only those requested, so a FHIR-only request draws no
 * radiograph, genome or note at all.
 */
export function generatedFor(
  schema: Schema,
  requested: readonly string[],
): { generate: { image: boolean; genome: boolean; notes: boolean }; generated: string[] } {
  const generate = generatedModalities(schema, {
    image: requested.includes('dicom'),
    genome: requested.includes('vcf'),
    notes: requested.includes('notes'),
  });
  const generated = [
    'fhir',
    ...(generate.image ? ['dicom'] : []),
    ...(generate.genome ? ['vcf'] : []),
    ...(generate.notes ? ['notes'] : []),
  ];
  return { generate, generated };
}

/** Marginals compared in the report (the first ones released; enough to plot, small enough to poll). */
const REPORT_MARGINALS = 24;

interface Deps {
  store: Store;
  studies: StudyStore;
  cfg: CoordinatorConfig;
  log: (line: string) => void;
}

export class CohortWorker {
  private queue: string[] = [];
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly deps: Deps) {}

  /** Queues the unfinished requests found in the database (after a restart). */
  async resume(): Promise<void> {
    for (const job of await this.deps.studies.unfinishedCohortJobs(this.deps.cfg.federationId)) this.enqueue(job.id);
  }

  enqueue(id: string): void {
    this.queue.push(id);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const id = this.queue.shift()!;
      const job = await this.deps.studies.getCohortJob(id);
      if (!job || job.status === 'completed' || job.status === 'failed') continue;
      try {
        await this.run(job);
      } catch (err) {
        const message = (err as Error).message;
        this.deps.log(`cohort ${id} failed: ${message}`);
        await this.deps.studies.setCohortState(id, { status: 'failed', error: message, progress: { message } });
      }
    }
  }

  private async run(job: CohortJob): Promise<void> {
    const { store, studies, cfg } = this.deps;
    const study = await studies.getStudy(job.studyId);
    if (!study?.modelId) throw new Error(`study ${job.studyId} has no fitted model`);
    const row = await store.getModel(study.modelId);
    if (!row) throw new Error(`model ${study.modelId} is missing from the store`);
    await studies.setCohortState(job.id, { status: 'running', progress: { message: `sampling ${job.n} patients`, fraction: 0.1 } });
    const { schema } = studySchema(cfg, study);
    const model = GraphicalModel.fromJSON(row.model as GraphicalModelJSON);
    const where = Object.keys(job.where).length ? job.where : undefined;
    const { generate, generated } = generatedFor(schema, job.modalities);
    const cohort = await emitCohort({ federationId: study.fitId }, store, schema, row.id, model, {
      n: job.n,
      seed: Number(job.seed),
      where,
      whereText: job.whereText,
      dir: job.outDir,
      modalities: { generate },
    });
    await studies.setCohortState(job.id, { progress: { message: 'writing the report', fraction: 0.9 } });
    // Released marginals are DP output; the comparison costs nothing and shows fidelity per query.
    // Band queries (coarsened measurements) have no fine cells to set beside the cohort's marginal.
    const released = (await store.listMeasurements(study.fitId)).filter((m) => !m.coarsen).sort((a, b) => a.seq - b.seq);
    const marginals = released.slice(0, REPORT_MARGINALS).map((m) => {
      const clipped = Float64Array.from(m.values, (v) => Math.max(0, v));
      const total = clipped.reduce((s, v) => s + v, 0);
      const synth = marginal(cohort.dataset, m.attrs);
      const synthTotal = synth.reduce((s, v) => s + v, 0);
      return {
        attrs: m.attrs,
        released: Array.from(clipped, (v) => (total > 0 ? v / total : 0)),
        cohort: Array.from(synth, (v) => (synthTotal > 0 ? v / synthTotal : 0)),
        l1: total > 0 && !where ? normalisedL1(clipped, synth) : null,
      };
    });
    const timeline = await studies.chargeTimeline([study.fitId]);
    const report = {
      cohortId: job.id,
      modelCohortId: cohort.cohortId,
      study: study.id,
      modelId: row.id,
      n: job.n,
      patients: cohort.dataset.rows,
      seed: job.seed,
      where: { text: job.whereText, allowedValues: job.where },
      privacy: {
        note: 'a cohort is post-processing of the model: it spends no privacy budget',
        studyEpsilon: study.epsilon,
        delta: study.delta,
      },
      fidelity: {
        note: where
          ? 'a filtered cohort is compared with the unfiltered released marginals only in the plots (no error figure)'
          : 'normalised L1 between each released noisy marginal and the cohort; the coordinator never sees real data',
        meanL1VsReleasedMeasurements: cohort.meanL1VsReleasedMeasurements ?? null,
        marginals,
      },
      spend: timeline.map((t) => ({ site: t.siteId, rho: t.rho, at: t.at.toISOString() })),
      plausibility: cohort.plausibility,
      rejected: cohort.rejected,
      generated,
      ...(cohort.modalities ? { modalities: cohort.modalities } : {}),
      resources: Object.fromEntries(Object.entries(cohort.files).map(([type, f]) => [type, f.resources])),
      downloads: await listDownloads(job.outDir, generated),
      previews: await previews(job.outDir),
    };
    await studies.setCohortState(job.id, { status: 'completed', report, progress: { message: 'completed', fraction: 1 } });
    this.deps.log(`cohort ${job.id}: ${cohort.dataset.rows} patients from ${study.id} (${generated.join(', ')})`);
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** Files per requested modality, relative to the cohort folder (served under /api/v1/cohorts/{id}/files/). */
async function listDownloads(
  root: string,
  modalities: readonly string[],
): Promise<Record<string, { files: number; bytes: number; paths: string[] }>> {
  const out: Record<string, { files: number; bytes: number; paths: string[] }> = {};
  for (const m of modalities) {
    const files = (await Promise.all((FOLDERS[m] ?? []).map((f) => walk(join(root, f))))).flat();
    if (files.length === 0) continue;
    let bytes = 0;
    for (const f of files) bytes += (await stat(f)).size;
    out[m] = { files: files.length, bytes, paths: files.map((f) => relative(root, f)) };
  }
  return out;
}

/** One radiograph preview, the start of one note and a VCF excerpt, when the cohort has them. */
async function previews(root: string): Promise<{ radiograph?: string; note?: string; vcf?: string }> {
  const png = (await walk(join(root, 'previews'))).find((f) => f.endsWith('.png'));
  const note = (await walk(join(root, 'notes'))).find((f) => f.endsWith('.txt'));
  const vcfPath = join(root, 'vcf', 'cohort.vcf');
  const vcf = await readFile(vcfPath, 'utf8').catch(() => undefined);
  return {
    ...(png ? { radiograph: relative(root, png) } : {}),
    ...(note ? { note: (await readFile(note, 'utf8')).slice(0, 1500) } : {}),
    ...(vcf ? { vcf: excerptVcf(vcf) } : {}),
  };
}

/** The header's last line and the first records, each cut to its first sample columns. */
function excerptVcf(text: string): string {
  const lines = text.split('\n');
  const header = lines.filter((l) => l.startsWith('#CHROM'));
  const records = lines.filter((l) => l && !l.startsWith('#')).slice(0, 8);
  return [...header, ...records].map((l) => l.split('\t').slice(0, 12).join('\t')).join('\n');
}
