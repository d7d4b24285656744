// The worker side of synthesis/draw-worker.ts: one cohort draw (sample, then plausibility
// resampling), its columns handed back without copying.
import { parentPort, workerData } from 'node:worker_threads';
import { GraphicalModel } from '../model/pgm/model.ts';
import { drawPlausible } from './cohort.ts';
import type { DrawReply, DrawRequest } from './draw-worker.ts';

if (!parentPort) throw new Error('synthesis/draw-worker-thread.ts runs only as a worker thread');
const req = workerData as DrawRequest;
let reply: DrawReply;
let transfer: ArrayBuffer[] = [];
try {
  const { dataset, report } = drawPlausible(req.schema, GraphicalModel.fromJSON(req.model), req.n, req.seed, req.where, req.retries);
  const columns = dataset.columns.map((c) => c);
  transfer = columns.map((c) => c.buffer as ArrayBuffer).filter((b, i, all) => all.indexOf(b) === i);
  reply = { ok: true, rows: dataset.rows, columns, report };
} catch (e) {
  reply = { ok: false, message: e instanceof Error ? e.message : String(e) };
}
parentPort.postMessage(reply, transfer);
