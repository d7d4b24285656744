// Selection and estimation in a worker thread (federation/plan-worker.ts): the same fit as in the
// caller's thread — same rounds, same released values, bit-identical model — while the caller's
// event loop stays responsive (in-thread, the same work blocks it).
import { afterAll, describe, expect, it } from 'vitest';
import { Dataset, Domain, allocColumn } from '../../model/domain.ts';
import { Rng } from '../../model/rng.ts';
import { buildFitPlan, type FitPlanConfig } from '../../federation/plan.ts';
import { inThreadPlanner, runFit, type FitPlanner, type FitResult } from '../../federation/run-fit.ts';
import { WorkerPlanner } from '../../federation/plan-worker.ts';
import { inProcessAggregator } from '../../federation/in-process.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';

/** Attribute j copies a noisy function of attribute ⌊(j−1)/2⌋: real pairwise structure to select. */
function treeData(rows: number, attrs: number, seed: number): Dataset {
  const sizes = Array.from({ length: attrs }, (_, j) => 3 + ((j * 5) % 6));
  const domain = new Domain(
    sizes.map((_, j) => `x${j}`),
    sizes,
  );
  const rng = new Rng(seed);
  const cols = sizes.map((s) => allocColumn(s, rows));
  for (let j = 0; j < attrs; j++) {
    const parent = j === 0 ? undefined : cols[(j - 1) >> 1];
    for (let r = 0; r < rows; r++) cols[j][r] = parent && rng.next() < 0.8 ? (parent[r] * 3 + j) % sizes[j] : rng.nextInt(sizes[j]);
  }
  return new Dataset(domain, cols, rows);
}

/** Wraps a planner, measuring the caller's longest event-loop stall while each call is pending. */
function timed(inner: FitPlanner): FitPlanner & { maxStallMs: number; busyMs: number } {
  const out = {
    maxStallMs: 0,
    busyMs: 0,
    async during<T>(work: () => Promise<T>): Promise<T> {
      let last = performance.now();
      const t0 = last;
      const tick = setInterval(() => {
        const now = performance.now();
        out.maxStallMs = Math.max(out.maxStallMs, now - last);
        last = now;
      }, 5);
      try {
        return await work();
      } finally {
        clearInterval(tick);
        out.maxStallMs = Math.max(out.maxStallMs, performance.now() - last);
        out.busyMs += performance.now() - t0;
      }
    },
    next: (done: Parameters<FitPlanner['next']>[0]) => out.during(() => inner.next(done)),
    estimate: (done: Parameters<FitPlanner['estimate']>[0], it: number) => out.during(() => inner.estimate(done, it)),
  };
  return out;
}

const siteA = treeData(2000, 7, 7);
const siteB = treeData(2000, 7, 8);
const data = siteA;
const config: FitPlanConfig = { plan: 'aim', epsilon: 1, delta: 1e-9 };
const workers: WorkerPlanner[] = [];
afterAll(async () => Promise.all(workers.map((w) => w.close())));

async function fit(kind: 'thread' | 'worker'): Promise<{ result: FitResult; planner: ReturnType<typeof timed> }> {
  const sites = [
    { id: 'a', data: siteA },
    { id: 'b', data: siteB },
  ];
  // The same seeded noise both times, so any difference comes from where the planner ran.
  const aggregator = await inProcessAggregator(sites, { random: seededRandomSourceForTests('plan-worker') });
  const plan = buildFitPlan(data.domain, config);
  const inner = kind === 'thread' ? inThreadPlanner(plan, data.domain) : new WorkerPlanner(data.domain, config);
  if (inner instanceof WorkerPlanner) workers.push(inner);
  const planner = timed(inner);
  const result = await runFit(plan, aggregator, { domain: data.domain, iterations: 300, planner });
  return { result, planner };
}

describe('the plan worker', () => {
  it('fits exactly what the in-thread planner fits, without stalling the caller', { timeout: 120_000 }, async () => {
    const thread = await fit('thread');
    const worker = await fit('worker');
    expect(worker.result.rounds.map((r) => [r.name, r.marginals, r.cells, r.rho])).toEqual(
      thread.result.rounds.map((r) => [r.name, r.marginals, r.cells, r.rho]),
    );
    expect(worker.result.rounds.length).toBeGreaterThan(2);
    expect(worker.result.released.map((m) => [m.attrs, Array.from(m.values)])).toEqual(
      thread.result.released.map((m) => [m.attrs, Array.from(m.values)]),
    );
    expect(JSON.stringify(worker.result.model!.toJSON())).toBe(JSON.stringify(thread.result.model!.toJSON()));
    expect(worker.result.report).toEqual(thread.result.report);
    // The work is real (in-thread it stalls the loop for long), the worker's caller never waits.
    // On a loaded machine the caller is also descheduled now and then (a 205 ms stall measured
    // at load 17 on 2 cores, while the in-thread stall there was 7.8 s): the bound is 200 ms or a
    // tenth of the in-thread stall measured here, whichever is larger; a planner that ran in the
    // caller's thread stalls it as long as the in-thread one and fails either way.
    expect(thread.planner.maxStallMs).toBeGreaterThan(300);
    expect(worker.planner.maxStallMs).toBeLessThan(Math.max(200, thread.planner.maxStallMs / 10));
    expect(worker.planner.busyMs).toBeGreaterThan(300);
  });

  it('reports an estimation failure as an error, and a closed worker refuses further work', async () => {
    const planner = new WorkerPlanner(data.domain, config);
    workers.push(planner);
    await expect(planner.estimate([], 10)).rejects.toThrow(/no measurements/);
    await planner.close();
    await expect(planner.next([])).rejects.toThrow(/closed|exited/);
  });
});
