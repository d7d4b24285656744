/**
 * The worker-thread side of synthesis/workers.ts: one PatientPreparer per cohort,
 * patients prepared on request. With a cohort folder (`dir`), a patient's files are written here
 * as soon as all its artefacts validated (every validated draft is released when the cohort has
 * no release check), so the images never cross threads; otherwise their bytes are handed back
 * without copying.
 */
import { parentPort } from 'node:worker_threads';
import { loadR4Definitions } from '../modalities/fhir/bundle.ts';
import { PatientPreparer, type DraftOutcome } from './patient.ts';
import type { WorkerReply, WorkerRequest } from './workers.ts';

if (!parentPort) throw new Error('synthesis/worker.ts runs only as a worker thread');
const port = parentPort;
// Indexed now, while the coordinator is still sampling the cohort's rows.
loadR4Definitions();

const cohorts = new Map<number, { preparer: PatientPreparer; withResources: boolean; dir?: string }>();

/** ArrayBuffers that can move to the main thread (whole buffers only: small Buffers share a pool). */
function transferables(outcomes: DraftOutcome[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const o of outcomes) {
    if (!o.ok) continue;
    const parts: Uint8Array[] = o.ndjson ? [o.ndjson.bytes] : [];
    for (const [, bytes] of o.files) if (typeof bytes !== 'string') parts.push(bytes);
    for (const bytes of parts) {
      const buf = bytes.buffer;
      if (buf instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buf.byteLength && !out.includes(buf)) out.push(buf);
    }
  }
  return out;
}

port.on('message', (m: WorkerRequest) => {
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    if (m.t === 'begin') {
      cohorts.set(m.sid, { preparer: new PatientPreparer(m.schema, m.seed, m.opts), withResources: m.withResources, dir: m.dir });
      return;
    }
    const c = cohorts.get(m.sid);
    if (!c) throw new Error(`unknown cohort ${m.sid}`);
    if (m.t === 'jobs') {
      const dir = c.dir;
      const outcomes = m.jobs.map((j) =>
        dir
          ? c.preparer.prepareAndWrite(j.k, j.row, j.attempt, dir, c.withResources)
          : c.preparer.prepare(j.k, j.row, j.attempt, c.withResources),
      );
      transfer = transferables(outcomes);
      reply = { t: 'done', rid: m.rid, outcomes };
    } else {
      cohorts.delete(m.sid);
      reply = { t: 'shapes', rid: m.rid, shapes: [...c.preparer.validator.shapes] };
    }
  } catch (e) {
    reply = { t: 'error', rid: 'rid' in m ? m.rid : -1, message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  port.postMessage(reply, transfer);
});
