/**
 * `fedsynth bench utility`: the federated utility benchmark on a CSV of integer-coded columns and
 * a private-pgm domain JSON. What runs is federation/utility-bench.ts; results in docs/benchmarks.md.
 */
import { readFileSync } from 'node:fs';
import { parseCsvDataset, parseDomainJson } from '../../model/domain.ts';
import { runUtility, type AggregationKind, type UtilityResult } from '../../federation/utility-bench.ts';
import type { PlanKind } from '../../federation/plan.ts';
import type { SplitKind } from '../../model/split.ts';
import { command, parseArgs, processIo, runCommand } from '../args.ts';

export const BENCH_UTILITY = command({
  command: 'fedsynth bench utility',
  summary:
    'The federated utility benchmark: splits a CSV of integer-coded columns into sites, runs the fit, and\nreports the 2-way and 3-way marginal errors of the model against the data (docs/benchmarks.md).',
  flags: {
    data: { type: 'path', value: 'FILE.csv', required: true, help: 'integer-coded CSV with a header row' },
    domain: { type: 'path', value: 'FILE-domain.json', required: true, help: 'private-pgm domain: {"attr": size, ...}' },
    epsilon: { type: 'number', min: 0, max: 100, minExclusive: true, required: true, help: 'ε of the fit' },
    delta: { type: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, default: 1e-9, help: 'δ of the fit' },
    sites: { type: 'int', min: 1, max: 10_000, default: 10, help: 'sites the rows are split into' },
    split: { type: 'enum', values: ['iid', 'heterogeneous'], default: 'iid', help: 'how rows are split' },
    'split-key': { type: 'string', value: 'ATTR', help: 'attribute that drives a heterogeneous split' },
    seed: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, default: 1, help: 'seed of split, noise and sampling' },
    plan: { type: 'enum', values: ['aim', 'mst', 'independent'], default: 'aim', help: 'measurement plan' },
    'secure-aggregation': { type: 'enum', values: ['none', 'he'], default: 'none', help: 'he: real threshold-BFV aggregation' },
    iterations: { type: 'int', min: 1, max: 100_000, default: 1000, help: 'estimator iterations of the final fit' },
    'compress-rare': {
      type: 'number',
      min: 0,
      max: 100,
      value: 'SIGMAS',
      help: "rare-value compression (private-pgm MST): merge values whose noisy 1-way count is below SIGMAS·σ (off unless given; 3 is private-pgm's)",
    },
    json: { type: 'boolean', help: 'print the result as JSON' },
    quiet: { type: 'boolean', help: 'no progress on stderr' },
  },
});

export interface BenchUtilityArgs {
  data: string;
  domain: string;
  sites: number;
  split: SplitKind;
  splitKey?: string;
  epsilon: number;
  delta: number;
  seed: number;
  plan: PlanKind;
  aggregation: AggregationKind;
  iterations: number;
  /** Rare-value compression threshold in σ of the 1-way round; undefined: no compression. */
  compressRare?: number;
  json: boolean;
  quiet: boolean;
}

export function parseBenchUtilityArgs(args: readonly string[]): BenchUtilityArgs {
  const { flags } = parseArgs(BENCH_UTILITY, args);
  return {
    data: flags.data,
    domain: flags.domain,
    sites: flags.sites,
    split: flags.split,
    splitKey: flags['split-key'],
    epsilon: flags.epsilon,
    delta: flags.delta,
    seed: flags.seed,
    plan: flags.plan,
    aggregation: flags['secure-aggregation'] === 'he' ? 'he' : 'plain',
    iterations: flags.iterations,
    compressRare: flags['compress-rare'],
    json: flags.json,
    quiet: flags.quiet,
  };
}

export function runBenchUtilityCommand(args: string[]): Promise<number> {
  return runCommand(BENCH_UTILITY.command, processIo, async () => {
    const opts = parseBenchUtilityArgs(args);
    return runBench(opts);
  });
}

async function runBench(opts: BenchUtilityArgs): Promise<number> {
  try {
    const domain = parseDomainJson(readInput(opts.domain, 'domain'));
    if (opts.splitKey !== undefined && !domain.has(opts.splitKey))
      throw new Error(`--split-key: "${opts.splitKey}" is not an attribute of the domain`);
    const data = parseCsvDataset(readInput(opts.data, 'data'), domain);
    if (data.rows < opts.sites) throw new Error(`data: ${data.rows} rows cannot be split into ${opts.sites} sites`);
    const t0 = performance.now();
    const result = await runUtility(data, {
      sites: opts.sites,
      split: opts.split,
      splitKey: opts.splitKey,
      epsilon: opts.epsilon,
      delta: opts.delta,
      seed: opts.seed,
      plan: opts.plan,
      aggregation: opts.aggregation,
      iterations: opts.iterations,
      ...(opts.compressRare === undefined ? {} : { compress: { thresholdSigmas: opts.compressRare } }),
      onProgress: opts.quiet ? undefined : (m) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${m}\n`),
    });
    process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : formatResult(result));
    return 0;
  } catch (e) {
    process.stderr.write(`fedsynth bench utility: ${(e as Error).message}\n`);
    return 1;
  }
}

function readInput(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot read ${what} file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: e });
  }
}

export function formatResult(r: UtilityResult): string {
  const lines = [
    `plan ${r.plan}, ${r.sites} sites (${r.split}${r.splitKey ? `, key ${r.splitKey}` : ''}), ${r.rows} rows, ε ${r.epsilon}, δ ${r.delta}, seed ${r.seed}`,
    `2-way L1 ${r.l1TwoWay.toFixed(4)} (TV ${r.tvTwoWay.toFixed(4)})`,
    `3-way L1 ${r.l1ThreeWay.toFixed(4)} (TV ${r.tvThreeWay.toFixed(4)})`,
    `rounds ${r.rounds.length}, ρ spent ${r.rhoSpent.toPrecision(6)} of ${r.rhoBudget.toPrecision(6)}`,
    `synthetic rows ${r.syntheticRows} (the model's estimate of the number of records)`,
    `model ${r.modelCliques.length} cliques, ${r.modelCells} cells${r.dropped ? `, ${r.dropped} measurements dropped by the size cap` : ''}`,
    `wall time ${(r.wallMs / 1000).toFixed(1)} s (final fit ${(r.fitMs / 1000).toFixed(1)} s, site answers ${(r.siteAnswerMs / 1000).toFixed(1)} s${r.heMs ? `, secure aggregation ${(r.heMs / 1000).toFixed(1)} s` : ''})`,
  ];
  for (const [i, x] of r.rounds.entries()) {
    lines.push(
      `  round ${i + 1} ${x.name}: ${x.marginals} marginals, ${x.cells} cells, ρ ${x.rho.toPrecision(4)}, σ ${x.sigma.toFixed(1)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
