/**
 * The utility grid on UCI Adult: ε ∈ {0.1, 0.3, 1, 3, 10} × {iid, heterogeneous} × 3 seeds ×
 * {aim, mst, independent}, 10 sites, δ = 1e-9, the in-process federated path of
 * `fedsynth bench utility` (federation/runFit over the in-process aggregator, plaintext sum).
 *
 *   npx tsx bench/utility-table.ts run --out results.jsonl [--shard i/n] [--plans aim,mst,independent] [--eps 1,0.3]
 *       (appends one JSON line per run, skips runs already in the file)
 *   npx tsx bench/utility-table.ts render results.jsonl... [--write docs/benchmarks.md]
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCsvDataset, parseDomainJson } from '../model/domain.ts';
import { runUtility, type UtilityResult } from '../federation/utility-bench.ts';
import type { PlanKind } from '../federation/plan.ts';
import type { SplitKind } from '../model/split.ts';

const DATA = process.env.FEDSYNTH_ADULT ?? '/work/shared/data/tabular/adult.csv';
const DOMAIN = process.env.FEDSYNTH_ADULT_DOMAIN ?? '/work/shared/data/tabular/adult-domain.json';
const EPSILONS = [0.1, 0.3, 1, 3, 10];
const SPLITS: SplitKind[] = ['heterogeneous', 'iid'];
const SEEDS = [1, 2, 3];
const PLANS: PlanKind[] = ['aim', 'mst', 'independent'];
const ITERATIONS = 1000;

const id = (plan: string, split: string, eps: number, seed: number) => `${plan}/${split}/${eps}/${seed}`;

async function run(out: string, shard: number, shards: number, plans: PlanKind[], epsilons: number[]): Promise<void> {
  const domain = parseDomainJson(readFileSync(DOMAIN, 'utf8'));
  const data = parseCsvDataset(readFileSync(DATA, 'utf8'), domain);
  const have = new Set(existsSync(out) ? readLines(out).map((r) => id(r.plan, r.split, r.epsilon, r.seed)) : []);
  const jobs: [PlanKind, SplitKind, number, number][] = [];
  // Headline cells first (ε = 1, then 0.3 and 3), every plan per cell, so a partial run still
  // fills whole comparable cells.
  for (const eps of [1, 0.3, 3, 0.1, 10].filter((e) => epsilons.includes(e)))
    for (const split of SPLITS)
      for (const plan of (['independent', 'mst', 'aim'] as PlanKind[]).filter((p) => plans.includes(p)))
        for (const seed of SEEDS) jobs.push([plan, split, eps, seed]);
  let k = 0;
  for (const [plan, split, eps, seed] of jobs) {
    if (k++ % shards !== shard) continue;
    if (have.has(id(plan, split, eps, seed))) continue;
    const r = await runUtility(data, { sites: 10, split, epsilon: eps, delta: 1e-9, seed, plan, iterations: ITERATIONS });
    const line = { ...r, modelCliques: undefined, cpus: os.cpus().length, cpu: os.cpus()[0]?.model };
    appendFileSync(out, `${JSON.stringify(line)}\n`);
    process.stderr.write(
      `${id(plan, split, eps, seed)}: 3-way ${r.l1ThreeWay.toFixed(4)} 2-way ${r.l1TwoWay.toFixed(4)} ${r.rounds.length} rounds ${(r.wallMs / 1000).toFixed(1)} s\n`,
    );
  }
}

function readLines(file: string): UtilityResult[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as UtilityResult);
}

const REFERENCE: Record<string, { mst?: string; aim?: string }> = {
  '0.3': { mst: '0.32', aim: '0.260 (267 s)' },
  '1': { mst: '0.227 (60–115 s)', aim: '0.187 (640 s)' },
  '3': { mst: '0.20–0.21', aim: '0.141 (630 s)' },
};

function meanSd(xs: number[]): string {
  if (xs.length === 0) return '—';
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${m.toFixed(3)} ± ${sd.toFixed(3)}`;
}

export function renderTable(rows: UtilityResult[]): string {
  const out: string[] = [];
  for (const split of SPLITS) {
    out.push(
      `**${split === 'heterogeneous' ? '10 heterogeneous sites' : '10 iid sites'}** — 3-way L1 (mean ± sd over ${SEEDS.length} seeds; 2-way L1 in brackets; rounds and mean wall time of the whole run, final fit in brackets)`,
    );
    out.push('');
    out.push(
      '| ε | fedsynth AIM | fedsynth MST | independent | AIM rounds | AIM time | MST time | central MST (ref) | central AIM (ref) |',
    );
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const eps of EPSILONS) {
      const sel = (plan: string) => rows.filter((r) => r.plan === plan && r.split === split && r.epsilon === eps);
      const cell = (plan: string) => {
        const rs = sel(plan);
        return rs.length === 0
          ? '—'
          : `${meanSd(rs.map((r) => r.l1ThreeWay))} [${meanSd(rs.map((r) => r.l1TwoWay))}]${rs.length < SEEDS.length ? ` (n=${rs.length})` : ''}`;
      };
      const aim = sel('aim');
      const rounds = aim.length ? [...new Set(aim.map((r) => r.rounds.length))].sort().join('/') : '—';
      const time = (rs: UtilityResult[]) => {
        if (rs.length === 0) return '—';
        const mean = (f: (r: UtilityResult) => number) => (rs.reduce((s, r) => s + f(r), 0) / rs.length / 1000).toFixed(0);
        return rs.every((r) => r.fitMs !== undefined)
          ? `${mean((r) => r.wallMs)} s (${mean((r) => r.fitMs)} s)`
          : `${mean((r) => r.wallMs)} s`;
      };
      const ref = REFERENCE[String(eps)] ?? {};
      out.push(
        `| ${eps} | ${cell('aim')} | ${cell('mst')} | ${cell('independent')} | ${rounds} | ${time(aim)} | ${time(sel('mst'))} | ${ref.mst ?? '—'} | ${ref.aim ?? '—'} |`,
      );
    }
    out.push('');
  }
  const maxRho = Math.max(...rows.map((r) => r.rhoSpent / r.rhoBudget));
  out.push(`Every run spent at most its budget: max ρ_spent/ρ_budget = ${maxRho.toFixed(12)}.`);
  return out.join('\n');
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'run') {
    const out = rest[rest.indexOf('--out') + 1];
    if (!rest.includes('--out') || !out) throw new Error('run: --out FILE is required');
    const shardArg = rest.includes('--shard') ? rest[rest.indexOf('--shard') + 1] : '0/1';
    const [i, n] = shardArg.split('/').map(Number);
    const list = (flag: string) => (rest.includes(flag) ? rest[rest.indexOf(flag) + 1].split(',') : undefined);
    const plans = (list('--plans') ?? PLANS) as PlanKind[];
    const epsilons = list('--eps')?.map(Number) ?? EPSILONS;
    await run(out, i, n, plans, epsilons);
  } else if (cmd === 'render') {
    const files = rest.filter((a, j) => !a.startsWith('--') && rest[j - 1] !== '--write');
    const table = renderTable(files.flatMap(readLines));
    const target = rest.includes('--write') ? rest[rest.indexOf('--write') + 1] : undefined;
    if (!target) {
      process.stdout.write(`${table}\n`);
      return;
    }
    const text = readFileSync(target, 'utf8');
    const begin = '<!-- utility-table:begin -->';
    const end = '<!-- utility-table:end -->';
    const a = text.indexOf(begin);
    const b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error(`${target} has no ${begin} … ${end} block`);
    writeFileSync(target, `${text.slice(0, a + begin.length)}\n${table}\n${text.slice(b)}`);
  } else {
    throw new Error('usage: utility-table.ts run --out FILE [--shard i/n] | render FILE... [--write docs/benchmarks.md]');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
