// The worker-thread side of federation/plan-worker.ts: builds the same plan from the same public
// configuration and answers `next` and `estimate` for it, one request at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { Domain } from '../model/domain.ts';
import type { RoundResult } from '../model/plans/plan.ts';
import { buildFitPlan } from './plan.ts';
import { estimateInThread } from './run-fit.ts';
import type { PlanWorkerData, PlanWorkerReply, PlanWorkerRequest } from './plan-worker.ts';

if (!parentPort) throw new Error('federation/plan-worker-thread.ts runs only as a worker thread');
const port = parentPort;
const init = workerData as PlanWorkerData;
const domain = new Domain(init.domain.attrs, init.domain.sizes);
const plan = buildFitPlan(domain, init.config);
// Kept across requests so the plan sees the same RoundResult objects it cached its models by.
const done: RoundResult[] = [];

port.on('message', (m: PlanWorkerRequest) => {
  let reply: PlanWorkerReply;
  try {
    done.length = m.from;
    done.push(...m.append);
    if (m.t === 'next') {
      reply = { t: 'spec', rid: m.rid, spec: plan.next(done) ?? null };
    } else {
      const { model, report } = estimateInThread(plan, domain, done, m.iterations);
      reply = { t: 'model', rid: m.rid, model: model.toJSON(), report };
    }
  } catch (err) {
    reply = { t: 'error', rid: m.rid, message: (err as Error).message, name: (err as Error).name };
  }
  port.postMessage(reply);
});
