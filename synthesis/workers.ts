/**
 * Worker threads that prepare cohort patients (synthesis/patient.ts) in parallel. The
 * pool is shared by the process and kept between cohorts, so a worker's start-up (loading the
 * modules and indexing the R4 definitions, ~1 s) is paid once; idle workers do not keep the
 * process alive. A patient's artefacts depend only on (schema, seed, options, k, attempt, row),
 * so which worker prepares it changes nothing in the cohort.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { Schema } from '../schema/schema.ts';
import type { SeedLike } from '../model/rng.ts';
import type { DraftOutcome, PatientOptions, PatientPreparer } from './patient.ts';

export interface CohortJob {
  k: number;
  attempt: number;
  row: number[];
}

/** Prepares patients of one cohort: in this thread or on the worker pool. */
export interface PatientExecutor {
  prepare(jobs: CohortJob[]): Promise<DraftOutcome[]>;
  /** Ends the cohort; returns the resource shapes its Bundles had. */
  finish(): Promise<string[]>;
}

/** Runs the preparer in this thread; with `dir`, writes each validated patient's files at once, as the workers do. */
export function localExecutor(preparer: PatientPreparer, withResources: boolean, dir?: string): PatientExecutor {
  return {
    prepare: async (jobs) =>
      jobs.map((j) =>
        dir ? preparer.prepareAndWrite(j.k, j.row, j.attempt, dir, withResources) : preparer.prepare(j.k, j.row, j.attempt, withResources),
      ),
    finish: async () => [...preparer.validator.shapes],
  };
}

/** Worker count used when a cohort does not say: the machine's cores, at most 8. */
export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

export type WorkerRequest =
  | { t: 'begin'; sid: number; schema: Schema; seed: SeedLike; opts: PatientOptions; withResources: boolean; dir?: string }
  | { t: 'jobs'; sid: number; rid: number; jobs: CohortJob[] }
  | { t: 'end'; sid: number; rid: number };

export type WorkerReply =
  | { t: 'done'; rid: number; outcomes: DraftOutcome[] }
  | { t: 'shapes'; rid: number; shapes: string[] }
  | { t: 'error'; rid: number; message: string };

interface Slot {
  worker: Worker;
  /** Outstanding jobs (for choosing the least loaded worker). */
  load: number;
  waiting: Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void; jobs: number }>;
  failed?: Error;
}

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

export class CohortWorkerPool {
  private static sharedPool: CohortWorkerPool | undefined;
  private readonly slots: Slot[] = [];
  private nextId = 1;

  /** The process's pool, grown to at least `size` workers (started now, so start-up overlaps other work). */
  static shared(size: number): CohortWorkerPool {
    if (!Number.isInteger(size) || size < 1) throw new Error(`cohort workers must be a positive integer, got ${size}`);
    const pool = (CohortWorkerPool.sharedPool ??= new CohortWorkerPool());
    pool.slots.splice(0, pool.slots.length, ...pool.slots.filter((s) => !s.failed));
    while (pool.slots.length < size) pool.slots.push(pool.spawn());
    return pool;
  }

  private spawn(): Slot {
    // execArgv: [] — the entry registers the TypeScript loader itself, so this works under tsx,
    // the installed CLI and vitest alike.
    const worker = new Worker(ENTRY, { execArgv: [] });
    const slot: Slot = { worker, load: 0, waiting: new Map() };
    worker.unref();
    const fail = (e: Error) => {
      slot.failed = e;
      for (const w of slot.waiting.values()) w.reject(e);
      slot.waiting.clear();
    };
    worker.on('message', (m: WorkerReply) => {
      const w = slot.waiting.get(m.rid);
      if (!w) return;
      slot.waiting.delete(m.rid);
      slot.load -= w.jobs;
      if (slot.waiting.size === 0) worker.unref();
      if (m.t === 'error') w.reject(new Error(`cohort worker: ${m.message}`));
      else w.resolve(m);
    });
    worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    worker.on('exit', (code) => fail(new Error(`cohort worker exited with code ${code}`)));
    return slot;
  }

  private request(slot: Slot, msg: WorkerRequest & { rid: number }, jobs: number): Promise<WorkerReply> {
    if (slot.failed) return Promise.reject(slot.failed);
    return new Promise((resolve, reject) => {
      slot.waiting.set(msg.rid, { resolve, reject, jobs });
      slot.load += jobs;
      slot.worker.ref();
      slot.worker.postMessage(msg);
    });
  }

  /**
   * Starts a cohort on `workers` of the pool's workers. With `dir`, the workers write each
   * validated patient's files under it themselves (only when every validated draft is released).
   */
  begin(workers: number, schema: Schema, seed: SeedLike, opts: PatientOptions, withResources: boolean, dir?: string): PatientExecutor {
    const slots = this.slots.filter((s) => !s.failed).slice(0, workers);
    if (slots.length === 0) throw new Error('no cohort worker is running');
    const sid = this.nextId++;
    for (const s of slots) s.worker.postMessage({ t: 'begin', sid, schema, seed, opts, withResources, dir } satisfies WorkerRequest);
    return {
      prepare: async (jobs) => {
        const slot = slots.reduce((a, b) => (b.load < a.load ? b : a));
        const reply = await this.request(slot, { t: 'jobs', sid, rid: this.nextId++, jobs }, jobs.length);
        if (reply.t !== 'done') throw new Error(`cohort worker: unexpected reply ${reply.t}`);
        return reply.outcomes;
      },
      finish: async () => {
        const replies = await Promise.all(slots.map((s) => this.request(s, { t: 'end', sid, rid: this.nextId++ }, 0)));
        const shapes = new Set<string>();
        for (const r of replies) if (r.t === 'shapes') for (const s of r.shapes) shapes.add(s);
        return [...shapes];
      },
    };
  }
}
