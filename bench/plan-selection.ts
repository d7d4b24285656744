/**
 * The demo's fit in one process, timed per step: the simulated federation of `npm run demo`
 * (3 sites × 5,000 patients of the multimodal schema, the simulator's encoded rows), the
 * coordinator's plan (declared structure, then AIM at ε = 1, δ = 1e-9) over the in-process
 * aggregator, and the final 600-iteration estimate warm-started from the last selection model.
 * Prints wall and CPU seconds of every `plan.next` (the selection) and of the estimate, and a
 * fingerprint of the rounds chosen and of the fitted model, so that a speed change can be shown
 * to be exact: with `--noise-seed` the sites' noise comes from a seeded source (not private; a
 * benchmark only), and two trees that print the same fingerprints chose the same rounds and
 * fitted the same model bit for bit.
 *
 *   npx tsx bench/plan-selection.ts [--noise-seed S] [--cache FILE] [--patients 5000] [--json]
 *
 * `--cache FILE` keeps the simulated rows between runs (the simulation takes ≈ 25 s).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { command, parseArgs } from '../cli/args.ts';
import { inProcessAggregator } from '../federation/in-process.ts';
import { buildFitPlan } from '../federation/plan.ts';
import { inThreadPlanner, runFit, type FitPlanner } from '../federation/run-fit.ts';
import { Dataset, Domain, allocColumn } from '../model/domain.ts';
import type { GraphicalModel } from '../model/pgm/model.ts';
import type { RoundSpec } from '../model/plans/plan.ts';
import { marginal } from '../model/marginals.ts';
import { sample } from '../model/sample.ts';
import { splitSites } from '../model/split.ts';
import { cryptoRandomSource, seededRandomSourceForTests } from '../privacy/random.ts';
import { parseSchema } from '../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../simulator/index.ts';
import { fidelityTable, fidelityVsTruth, HEADLINE_FAMILY, schemaWorkload } from '../synthesis/fidelity.ts';
import { simulatedTruth } from './clinical-fidelity.ts';

const BENCH = command({
  command: 'bench/plan-selection.ts',
  summary: "The demo's plan selection and final estimate in one process, timed, with fingerprints of the result.",
  flags: {
    patients: { type: 'int', min: 10, max: 1_000_000, default: 5000, help: 'patients per site' },
    sites: { type: 'int', min: 1, max: 26, default: 3, help: 'simulated sites' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 7, help: 'seed of the simulated data' },
    'noise-seed': { type: 'string', value: 'S', help: 'seeded (non-private) noise, for exact comparisons' },
    cache: { type: 'path', value: 'FILE', help: 'read or write the simulated rows here' },
    iterations: { type: 'int', min: 0, max: 100_000, default: 600, help: "the final estimate's iterations (the demo's 600)" },
    json: { type: 'boolean', help: 'print JSON' },
  },
});

interface Step {
  step: string;
  wallS: number;
  cpuS: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function loadData(schemaPath: string, sites: number, patients: number, seed: number, cache?: string): Promise<Dataset> {
  if (cache && existsSync(cache)) {
    const j = JSON.parse(await readFile(cache, 'utf8')) as { attrs: string[]; sizes: number[]; rows: number; cols: number[][] };
    const domain = new Domain(j.attrs, j.sizes);
    const cols = j.sizes.map((s, i) => {
      const c = allocColumn(s, j.rows);
      c.set(j.cols[i]);
      return c;
    });
    return new Dataset(domain, cols, j.rows);
  }
  const data = await simulatedTruth(parseSchema(await readFile(schemaPath, 'utf8')), sites, patients, seed);
  if (cache) {
    const json = { attrs: data.domain.attrs, sizes: data.domain.sizes, rows: data.rows, cols: data.columns.map((c) => Array.from(c)) };
    await writeFile(cache, JSON.stringify(json));
  }
  return data;
}

function hashFloats(h: ReturnType<typeof createHash>, a: Float64Array): void {
  h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function modelFingerprint(model: GraphicalModel): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.cliques));
  h.update(String(model.total));
  for (const p of model.potentials) hashFloats(h, p);
  return h.digest('hex').slice(0, 16);
}

function roundsFingerprint(specs: readonly RoundSpec[]): string {
  return createHash('sha256').update(JSON.stringify(specs)).digest('hex').slice(0, 16);
}

async function main(argv: string[]): Promise<void> {
  const { flags } = parseArgs(BENCH, argv);
  const schemaPath = MULTIMODAL_SCHEMA_PATH;
  const schema = parseSchema(await readFile(schemaPath, 'utf8'));
  const data = await loadData(schemaPath, flags.sites, flags.patients, flags.seed, flags.cache);
  const domain = data.domain;
  const { sites } = splitSites(data, { sites: flags.sites, kind: 'iid', seed: flags.seed });
  const random = flags['noise-seed'] !== undefined ? seededRandomSourceForTests(flags['noise-seed']) : cryptoRandomSource;
  const aggregator = await inProcessAggregator(
    sites.map((d, i) => ({ id: `site-${i + 1}`, data: d })),
    { random },
  );
  // The coordinator's plan for the demo's configuration (coordinator/engine.ts → buildFitPlan).
  const plan = buildFitPlan(domain, { plan: 'aim', epsilon: 1, delta: 1e-9, ...(schema.structure ? { structure: schema.structure } : {}) });
  const inner = inThreadPlanner(plan, domain);
  const steps: Step[] = [];
  const specs: RoundSpec[] = [];
  const timed = async <T>(step: string, f: () => Promise<T>): Promise<T> => {
    const w0 = performance.now();
    const c0 = cpuSeconds();
    const out = await f();
    steps.push({ step, wallS: (performance.now() - w0) / 1000, cpuS: cpuSeconds() - c0 });
    if (!flags.json) console.log(`${step.padEnd(24)} wall ${steps.at(-1)!.wallS.toFixed(2)} s  cpu ${steps.at(-1)!.cpuS.toFixed(2)} s`);
    return out;
  };
  const planner: FitPlanner = {
    next: (done) =>
      timed(`next(${done.length})`, async () => {
        const s = await inner.next(done);
        if (s) specs.push(s);
        return s;
      }),
    estimate: (done, iterations) => timed('estimate', () => inner.estimate(done, iterations)),
  };
  let fit;
  try {
    fit = await runFit(plan, aggregator, { domain, planner, iterations: flags.iterations });
  } finally {
    aggregator.dispose();
  }
  // The demo's clinical fidelity, from a model sample of 20,000 rows (seeded) against the pooled truth.
  let fidelity: { maxError: number; meanError: number } | undefined;
  const w = schemaWorkload(schema, domain);
  if (fit.model && w) {
    const synth = sample(fit.model, { rows: 20_000, seed: 'plan-selection-fidelity' });
    const { summary } = fidelityTable(
      fidelityVsTruth(
        w,
        (a) => marginal(synth, a),
        (a) => marginal(data, a),
      ),
      HEADLINE_FAMILY,
    );
    fidelity = { maxError: summary.maxError, meanError: summary.meanError };
  }
  const selection = steps.filter((s) => s.step.startsWith('next'));
  const sum = (xs: Step[], k: 'wallS' | 'cpuS') => xs.reduce((s, x) => s + x[k], 0);
  const out = {
    selectionWallS: sum(selection, 'wallS'),
    selectionCpuS: sum(selection, 'cpuS'),
    estimateWallS: steps.find((s) => s.step === 'estimate')?.wallS ?? 0,
    estimateCpuS: steps.find((s) => s.step === 'estimate')?.cpuS ?? 0,
    rounds: specs.map((s) => `${s.name}:${s.marginals.length}`).join(' '),
    roundsFingerprint: roundsFingerprint(specs),
    modelFingerprint: fit.model ? modelFingerprint(fit.model) : '-',
    loss: fit.report?.loss,
    evaluations: fit.report?.evaluations,
    fidelity,
    steps,
  };
  if (flags.json) console.log(JSON.stringify(out));
  else {
    console.log(
      `selection wall ${out.selectionWallS.toFixed(1)} s cpu ${out.selectionCpuS.toFixed(1)} s; estimate wall ${out.estimateWallS.toFixed(1)} s cpu ${out.estimateCpuS.toFixed(1)} s`,
    );
    console.log(
      `rounds ${out.rounds}\nrounds ${out.roundsFingerprint} model ${out.modelFingerprint} loss ${out.loss} evaluations ${out.evaluations}`,
    );
    if (fidelity)
      console.log(`condition × age band vs the pooled truth (20,000-row sample): max ${fidelity.maxError}, mean ${fidelity.meanError}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });
}
