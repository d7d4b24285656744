/**
 * The fit's plan and estimator in a worker thread, so that a coordinator's gRPC event loop keeps
 * answering agents (pulls, uploads, registrations) while Private-PGM runs for tens of seconds.
 * The worker builds the plan from the same public configuration (`buildFitPlan`) and is asked the
 * same questions in the same order as an in-thread plan, so it returns the same rounds and the
 * same model: both are deterministic functions of the released measurements (no randomness, and
 * structured cloning and the model's JSON form carry every float exactly).
 */
import { Worker } from 'node:worker_threads';
import type { Domain } from '../model/domain.ts';
import { GraphicalModel, type GraphicalModelJSON } from '../model/pgm/model.ts';
import type { EstimateReport } from '../model/pgm/estimate.ts';
import type { RoundResult, RoundSpec } from '../model/plans/plan.ts';
import type { FitPlanConfig } from './plan.ts';
import type { FitPlanner } from './run-fit.ts';

export interface PlanWorkerData {
  domain: { attrs: string[]; sizes: number[] };
  config: FitPlanConfig;
}

/**
 * The worker keeps its own copy of the completed rounds and is sent only what changed: rounds
 * from index `from` on. Plans cache their selection models by the identity of the RoundResult
 * objects (model/plans/aim.ts), so resending clones each time would drop the warm start and
 * change the results.
 */
export type PlanWorkerRequest =
  | { t: 'next'; rid: number; from: number; append: readonly RoundResult[] }
  | { t: 'estimate'; rid: number; from: number; append: readonly RoundResult[]; iterations: number };

export type PlanWorkerReply =
  | { t: 'spec'; rid: number; spec: RoundSpec | null }
  | { t: 'model'; rid: number; model: GraphicalModelJSON; report: EstimateReport }
  | { t: 'error'; rid: number; message: string; name: string };

const ENTRY = new URL('./plan-worker-entry.mjs', import.meta.url);

/** A planner whose selection and estimation run in their own worker thread; close() ends it. */
export class WorkerPlanner implements FitPlanner {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: PlanWorkerReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failed: Error | undefined;
  /** The rounds the worker holds, as the caller's objects (to find what changed). */
  private sent: readonly RoundResult[] = [];

  constructor(domain: Domain, config: FitPlanConfig) {
    const data: PlanWorkerData = { domain: { attrs: [...domain.attrs], sizes: [...domain.sizes] }, config };
    // execArgv: [] — the entry registers the TypeScript loader itself (tsx, the CLI and vitest alike).
    this.worker = new Worker(ENTRY, { workerData: data, execArgv: [] });
    this.worker.unref();
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('message', (m: PlanWorkerReply) => {
      const w = this.waiting.get(m.rid);
      if (!w) return;
      this.waiting.delete(m.rid);
      if (this.waiting.size === 0) this.worker.unref();
      if (m.t === 'error') w.reject(Object.assign(new Error(m.message), { name: m.name }));
      else w.resolve(m);
    });
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`plan worker exited with code ${code}`)));
  }

  private request(msg: PlanWorkerRequest): Promise<PlanWorkerReply> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.set(msg.rid, { resolve, reject });
      // Referenced only while a request is outstanding: an idle planner never keeps a process alive.
      this.worker.ref();
      this.worker.postMessage(msg);
    });
  }

  /** The rounds the worker lacks: from the first one that differs from what it was sent. */
  private delta(done: readonly RoundResult[]): { from: number; append: RoundResult[] } {
    let from = 0;
    while (from < done.length && from < this.sent.length && done[from] === this.sent[from]) from++;
    this.sent = [...done];
    return { from, append: done.slice(from) };
  }

  async next(done: readonly RoundResult[]): Promise<RoundSpec | undefined> {
    const r = await this.request({ t: 'next', rid: this.nextId++, ...this.delta(done) });
    if (r.t !== 'spec') throw new Error(`plan worker: unexpected reply ${r.t}`);
    return r.spec ?? undefined;
  }

  async estimate(done: readonly RoundResult[], iterations: number): Promise<{ model: GraphicalModel; report: EstimateReport }> {
    const r = await this.request({ t: 'estimate', rid: this.nextId++, ...this.delta(done), iterations });
    if (r.t !== 'model') throw new Error(`plan worker: unexpected reply ${r.t}`);
    return { model: GraphicalModel.fromJSON(r.model), report: r.report };
  }

  async close(): Promise<void> {
    this.failed ??= new Error('plan worker closed');
    await this.worker.terminate();
  }
}
