// A cohort's rows drawn in a worker thread (synthesis/draw-worker.ts) are the rows the calling
// thread draws — same model, seed, filter and plausibility rules — while the caller's event loop
// keeps running.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseSchema } from '../../schema/schema.ts';
import { schemaAttributes } from '../../schema/codes.ts';
import { Domain } from '../../model/domain.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { drawPlausible, writeCohort } from '../../synthesis/cohort.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawInWorker } from '../../synthesis/draw-worker.ts';
import { randomModel } from './model-fixtures.ts';

const schema = parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
const attrs = schemaAttributes(schema);
const domain = new Domain(
  attrs.map((a) => a.name),
  attrs.map((a) => a.size),
);
// Pairs along the attribute order: a connected model with dependence the rules can trip over.
const cliques = attrs.slice(1).map((a, i) => [attrs[i].name, a.name]);
const model = randomModel(domain, cliques, 11, 1.5, 40_000);

async function maxStall<T>(work: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  try {
    const value = await work();
    stallMs = Math.max(stallMs, performance.now() - last);
    return { value, stallMs };
  } finally {
    clearInterval(tick);
  }
}

describe('cohort draw in a worker thread', () => {
  it('draws exactly the rows and report of the in-thread draw, without stalling the caller', { timeout: 60_000 }, async () => {
    const n = 15_000;
    const where = { [attrs[0].name]: [0, 1].filter((v) => v < attrs[0].size) };
    const local = await maxStall(async () => drawPlausible(schema, model, n, 'draw-seed', where, 8));
    const worker = await maxStall(() => drawInWorker(schema, model, n, 'draw-seed', where, 8));
    expect(worker.value.dataset.rows).toBe(local.value.dataset.rows);
    expect(local.value.dataset.rows).toBeGreaterThan(n * 0.9);
    expect(worker.value.dataset.columns.map((c) => Array.from(c))).toEqual(local.value.dataset.columns.map((c) => Array.from(c)));
    expect(worker.value.report).toEqual(local.value.report);
    // The draw is real work in-thread; through the worker the loop never waits 200 ms.
    expect(local.stallMs).toBeGreaterThan(200);
    expect(worker.stallMs).toBeLessThan(200);
  });

  it('writes the same cohort whichever thread drew it', { timeout: 60_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'fedsynth-draw-'));
    try {
      const a = await writeCohort(schema, model, { n: 150, seed: 4, dir: join(root, 'a'), drawInWorker: true });
      const b = await writeCohort(schema, model, { n: 150, seed: 4, dir: join(root, 'b'), drawInWorker: false });
      expect(a.dataset.columns.map((c) => Array.from(c))).toEqual(b.dataset.columns.map((c) => Array.from(c)));
      expect(readFileSync(a.files.Patient.path, 'utf8')).toBe(readFileSync(b.files.Patient.path, 'utf8'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reports a failed draw as an error', async () => {
    await expect(drawInWorker(schema, model, -1, 's', undefined, 8)).rejects.toThrow(/cohort draw: .*rows must be a non-negative integer/);
  });
});
