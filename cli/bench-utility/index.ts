/**
 * `fedsynth bench utility`: the federated utility benchmark on a CSV of integer-coded
 * columns and a private-pgm domain JSON. See run.ts for what runs, docs/benchmarks.md for results.
 */
import { readFileSync } from 'node:fs';
import { parseCsvDataset, parseDomainJson } from '../../model/domain.ts';
import { runUtility, type AggregationKind, type PlanKind, type UtilityResult } from './run.ts';
import type { SplitKind } from '../../model/split.ts';

export const BENCH_UTILITY_USAGE = `usage: fedsynth bench utility --data FILE.csv --domain FILE-domain.json
       [--sites 10] [--split iid|heterogeneous] [--split-key ATTR] --epsilon E [--delta 1e-9]
       [--seed S] [--plan aim|mst|independent] [--secure-aggregation none|he]
       [--iterations N] [--json] [--quiet]`;

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
  json: boolean;
  quiet: boolean;
}

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

const VALUE_FLAGS = new Set([
  '--data',
  '--domain',
  '--sites',
  '--split',
  '--split-key',
  '--epsilon',
  '--delta',
  '--seed',
  '--plan',
  '--secure-aggregation',
  '--iterations',
]);
const BOOL_FLAGS = new Set(['--json', '--quiet']);

export function parseBenchUtilityArgs(args: readonly string[]): BenchUtilityArgs {
  const v = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    let a = args[i];
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (BOOL_FLAGS.has(a)) {
      if (inline !== undefined) throw new BenchUsageError(`${a} takes no value`);
      flags.add(a);
    } else if (VALUE_FLAGS.has(a)) {
      const val = inline ?? args[++i];
      if (val === undefined || (inline === undefined && val.startsWith('--'))) throw new BenchUsageError(`${a} needs a value`);
      if (v.has(a)) throw new BenchUsageError(`${a} given twice`);
      v.set(a, val);
    } else {
      throw new BenchUsageError(`unknown argument ${JSON.stringify(args[i])}`);
    }
  }
  const need = (f: string): string => {
    const x = v.get(f);
    if (x === undefined) throw new BenchUsageError(`missing ${f}`);
    return x;
  };
  const num = (f: string, def: number | undefined, check: (x: number) => boolean, what: string): number => {
    const s = v.get(f);
    if (s === undefined) {
      if (def === undefined) throw new BenchUsageError(`missing ${f}`);
      return def;
    }
    const x = Number(s);
    if (s.trim() === '' || !Number.isFinite(x) || !check(x)) throw new BenchUsageError(`${f} must be ${what}, got ${JSON.stringify(s)}`);
    return x;
  };
  const oneOf = <T extends string>(f: string, def: T, allowed: readonly T[]): T => {
    const s = v.get(f) ?? def;
    if (!allowed.includes(s as T)) throw new BenchUsageError(`${f} must be one of ${allowed.join('|')}, got ${JSON.stringify(s)}`);
    return s as T;
  };
  const secure = oneOf('--secure-aggregation', 'none', ['none', 'he'] as const);
  return {
    data: need('--data'),
    domain: need('--domain'),
    sites: num('--sites', 10, (x) => Number.isInteger(x) && x >= 1 && x <= 10_000, 'an integer in 1..10000'),
    split: oneOf('--split', 'iid', ['iid', 'heterogeneous'] as const),
    splitKey: v.get('--split-key'),
    epsilon: num('--epsilon', undefined, (x) => x > 0 && x <= 100, 'a number in (0, 100]'),
    delta: num('--delta', 1e-9, (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    seed: num('--seed', 1, (x) => Number.isSafeInteger(x) && x >= 0, 'a non-negative integer'),
    plan: oneOf('--plan', 'aim', ['aim', 'mst', 'independent'] as const),
    aggregation: secure === 'he' ? 'he' : 'plain',
    iterations: num('--iterations', 1000, (x) => Number.isInteger(x) && x >= 1 && x <= 100_000, 'an integer in 1..100000'),
    json: flags.has('--json'),
    quiet: flags.has('--quiet'),
  };
}

export async function runBenchUtilityCommand(args: string[]): Promise<number> {
  let opts: BenchUtilityArgs;
  try {
    opts = parseBenchUtilityArgs(args);
  } catch (e) {
    if (e instanceof BenchUsageError) {
      process.stderr.write(`fedsynth bench utility: ${e.message}\n${BENCH_UTILITY_USAGE}\n`);
      return 2;
    }
    throw e;
  }
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
    `wall time ${(r.wallMs / 1000).toFixed(1)} s (final fit ${(r.fitMs / 1000).toFixed(1)} s, noise ${(r.noiseMs / 1000).toFixed(1)} s${r.heMs ? `, secure aggregation ${(r.heMs / 1000).toFixed(1)} s` : ''})`,
  ];
  for (const [i, x] of r.rounds.entries()) {
    lines.push(
      `  round ${i + 1} ${x.name}: ${x.marginals} marginals, ${x.cells} cells, ρ ${x.rho.toPrecision(4)}, σ ${x.sigma.toFixed(1)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
