/**
 * A cohort's rows drawn in a worker thread (sampling from the model, then plausibility
 * resampling), so that a coordinator serving agents keeps answering them while a large cohort is
 * drawn. The draw is a pure function of (schema, model, n, seed, filter, retries): the worker
 * returns the same rows as the calling thread would.
 */
import { Worker } from 'node:worker_threads';
import { Dataset, type Column } from '../model/domain.ts';
import type { GraphicalModel, GraphicalModelJSON } from '../model/pgm/model.ts';
import type { Schema } from '../schema/schema.ts';
import type { PlausibilityReport } from './cohort.ts';

export interface DrawRequest {
  schema: Schema;
  model: GraphicalModelJSON;
  n: number;
  seed: number | string;
  where?: Record<string, number[]>;
  retries?: number;
}

export type DrawReply = { ok: true; rows: number; columns: Column[]; report: PlausibilityReport } | { ok: false; message: string };

const ENTRY = new URL('./draw-worker-entry.mjs', import.meta.url);

/** Cohorts at least this large are drawn in a worker (smaller ones take well under a second in-thread). */
export const DRAW_WORKER_MIN_ROWS = 5000;

export function drawInWorker(
  schema: Schema,
  model: GraphicalModel,
  n: number,
  seed: number | string,
  where: Record<string, number[]> | undefined,
  retries: number | undefined,
): Promise<{ dataset: Dataset; report: PlausibilityReport }> {
  const req: DrawRequest = {
    schema,
    model: model.toJSON(),
    n,
    seed,
    ...(where ? { where } : {}),
    ...(retries !== undefined ? { retries } : {}),
  };
  return new Promise((resolve, reject) => {
    // execArgv: [] — the entry registers the TypeScript loader itself (tsx, the CLI and vitest alike).
    const worker = new Worker(ENTRY, { workerData: req, execArgv: [] });
    let settled = false;
    worker.once('message', (m: DrawReply) => {
      settled = true;
      void worker.terminate();
      if (m.ok) resolve({ dataset: new Dataset(model.domain, m.columns, m.rows), report: m.report });
      else reject(new Error(`cohort draw: ${m.message}`));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`cohort draw worker exited with code ${code}`));
    });
  });
}
