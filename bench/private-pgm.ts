/**
 * Federated AIM against the REAL central peers (issue 13): Ryan McKenna's private-pgm
 * (github.com/ryan112358/private-pgm) AIM and MST, run centrally on the same table at the same
 * ε and δ, scored with fedsynth's own metric (model/metrics.ts: mean over all 2-way / 3-way
 * marginals of ‖p − q‖₁, both normalised, no ½) against the same real data, next to federated
 * AIM (federation/utility-bench.ts runUtility, heterogeneous split) run in the same session on
 * the same run numbers, interleaved run by run.
 *
 * private-pgm is not part of fedsynth and nothing of it is committed here: this script runs its
 * own command-line mechanisms (`mechanisms/aim.py`, `mechanisms/mst.py`, with `--save`) from a
 * checkout named by PRIVATE_PGM, reads the synthetic CSV they write back and scores it.
 * Without PRIVATE_PGM the script says how to get it and exits 0 (nothing is run).
 *
 *   npx tsx bench/private-pgm.ts export --dir DIR          the tables as CSV + domain JSON
 *   npx tsx bench/private-pgm.ts run --data wide-small|adult [--runs 1,2,3]
 *        [--only pgm-aim,pgm-mst,fed-aim] [--aim-degree 3] [--sites 3|10] [--out FILE.jsonl]
 *   npx tsx bench/private-pgm.ts score --data wide-small|adult --synthetic FILE.csv
 *
 * Tables: "wide-small" is model/wide-small.ts at its default seed (the table bench/rare-values.ts
 * scores); "adult" is FEDSYNTH_ADULT / FEDSYNTH_ADULT_DOMAIN (default the shared sample data).
 * The run number is the federated run's seed (split and sampler); private-pgm's command line
 * draws from numpy's unseeded global generator, so its runs are independent repetitions.
 * Federated sites: 3 for wide/small, 10 for Adult (as bench/rare-values.ts), unless --sites.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCsvDataset, parseDomainJson, type Dataset } from '../model/domain.ts';
import { allThreeWay, allTwoWay, datasetWorkloadError } from '../model/metrics.ts';
import { wideSmallTable } from '../model/wide-small.ts';
import { runUtility } from '../federation/utility-bench.ts';
import { fitRhoBudget } from '../privacy/dp/mechanisms.ts';
import { positiveIntegers } from './support/int-list.ts';

const EPSILON = 1;
/** fedsynth's δ for every utility benchmark (bench/utility-table.ts, bench/rare-values.ts). */
const DELTA = 1e-9;
/** The last private-pgm commit whose `mbi` is numpy/scipy only (JAX from 395885b on). */
const PGM_COMMIT = '514dea358e91432ea5d5e41b16acb601d8266d99';
const ADULT = process.env.FEDSYNTH_ADULT ?? '/work/shared/data/tabular/adult.csv';
const ADULT_DOMAIN = process.env.FEDSYNTH_ADULT_DOMAIN ?? '/work/shared/data/tabular/adult-domain.json';

export const HOW_TO_GET = `private-pgm is not present: set PRIVATE_PGM to a checkout of
https://github.com/ryan112358/private-pgm at commit ${PGM_COMMIT}
(the last one whose mbi runs on numpy/scipy alone; later ones need JAX), e.g.
  git clone https://github.com/ryan112358/private-pgm /tmp/pgm && git -C /tmp/pgm checkout ${PGM_COMMIT}
  PRIVATE_PGM=/tmp/pgm npx tsx bench/private-pgm.ts run --data wide-small
Python 3 needs numpy, scipy, pandas, networkx, attrs and matplotlib (Debian: python3-numpy
python3-scipy python3-pandas python3-networkx python3-attr python3-matplotlib), plus on
PYTHONPATH the two modules its mechanisms import: autodp.privacy_calibrator
(github.com/yuxiangw/autodp; imported, never called by AIM or MST; importing it first trips a
circular import with autodp.rdp_acct, so a stand-in module will do) and hdmm.matrix.Identity
(github.com/ryan112358/hdmm; AIM's identity measurement matrix, the same as scipy.sparse.eye(n),
which MST passes). PRIVATE_PGM_PYTHON overrides the interpreter.
Skipped: nothing was run.
`;

type Mech = 'pgm-aim' | 'pgm-mst' | 'fed-aim';
const MECHS: readonly Mech[] = ['pgm-aim', 'pgm-mst', 'fed-aim'];

function flag(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

export interface Table {
  name: string;
  data: Dataset;
  sites: number;
}

export function loadTable(which: string): Table {
  if (which === 'wide-small') return { name: 'wide-small', data: wideSmallTable(), sites: 3 };
  if (which === 'adult')
    return {
      name: 'adult',
      data: parseCsvDataset(readFileSync(ADULT, 'utf8'), parseDomainJson(readFileSync(ADULT_DOMAIN, 'utf8'))),
      sites: 10,
    };
  throw new Error(`--data must be wide-small or adult, got ${which}`);
}

/** The table in private-pgm's format: integer-coded CSV with a header, domain {"attr": size}. */
export function exportTable(t: Table, dir: string): { csv: string; domain: string } {
  mkdirSync(dir, { recursive: true });
  const { domain, columns, rows } = t.data;
  const lines = [domain.attrs.join(',')];
  for (let r = 0; r < rows; r++) lines.push(columns.map((c) => c[r]).join(','));
  const csv = join(dir, `${t.name}.csv`);
  const dom = join(dir, `${t.name}-domain.json`);
  writeFileSync(csv, `${lines.join('\n')}\n`);
  writeFileSync(dom, JSON.stringify(Object.fromEntries(domain.attrs.map((a, i) => [a, domain.sizes[i]]))));
  return { csv, domain: dom };
}

export function scoreSynthetic(t: Table, file: string): { l1TwoWay: number; l1ThreeWay: number; rows: number } {
  const synth = parseCsvDataset(readFileSync(file, 'utf8'), t.data.domain);
  synth.validate();
  return {
    l1TwoWay: datasetWorkloadError(t.data, synth, allTwoWay(t.data.domain)).l1,
    l1ThreeWay: datasetWorkloadError(t.data, synth, allThreeWay(t.data.domain)).l1,
    rows: synth.rows,
  };
}

interface RunResult {
  l1TwoWay: number;
  l1ThreeWay: number;
  rows: number;
  wallS: number;
  cpuS: number;
}

/**
 * One private-pgm mechanism through its own command line. `bash -c time` reports the child's
 * user + system CPU seconds, which (unlike wall time) the other load on the machine barely moves.
 */
function runPgm(
  pgm: string,
  mech: 'aim' | 'mst',
  t: Table,
  files: { csv: string; domain: string },
  out: string,
  degree: number,
): RunResult {
  const python = process.env.PRIVATE_PGM_PYTHON ?? 'python3';
  // AIM is given the workload the metric scores: every k-way marginal (no cap on its cells);
  // MST's command line takes the same flags but only uses them for its own printed error.
  const args = [
    join(pgm, 'mechanisms', `${mech}.py`),
    '--dataset',
    files.csv,
    '--domain',
    files.domain,
    '--epsilon',
    String(EPSILON),
    '--delta',
    String(DELTA),
    '--degree',
    String(degree),
    '--max_cells',
    String(2 ** 62),
    '--save',
    out,
  ];
  const env = {
    ...process.env,
    PYTHONPATH: [join(pgm, 'src'), pgm, process.env.PYTHONPATH].filter(Boolean).join(':'),
    MPLBACKEND: 'Agg',
    PYTHONUNBUFFERED: '1',
    // One thread, as fedsynth's fit, so that CPU seconds compare.
    OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1',
    OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
  };
  // Its output goes straight to the log, so a long run can be watched.
  const log = `${out}.log`;
  writeFileSync(log, `$ ${python} ${args.join(' ')}\n`);
  const fd = openSync(log, 'a');
  const t0 = performance.now();
  let r;
  try {
    r = spawnSync('bash', ['-c', 'TIMEFORMAT="cpu %U %S"; time "$@"', 'bash', python, ...args], { env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`private-pgm ${mech} exited with ${r.status}; its output is in ${log}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(readFileSync(log, 'utf8'));
  if (!m) throw new Error(`private-pgm ${mech}: no CPU time at the end of ${log}`);
  return { ...scoreSynthetic(t, out), wallS, cpuS: Number(m[1]) + Number(m[2]) };
}

async function runFederatedAim(t: Table, seed: number, sites: number): Promise<RunResult> {
  const c0 = process.cpuUsage();
  const r = await runUtility(t.data, {
    sites,
    split: 'heterogeneous',
    epsilon: EPSILON,
    delta: DELTA,
    seed,
    plan: 'aim',
    iterations: 1000,
  });
  const c = process.cpuUsage(c0);
  return {
    l1TwoWay: r.l1TwoWay,
    l1ThreeWay: r.l1ThreeWay,
    rows: r.syntheticRows,
    wallS: r.wallMs / 1000,
    cpuS: (c.user + c.system) / 1e6,
  };
}

export function pgmCheckout(): string | undefined {
  const pgm = process.env.PRIVATE_PGM;
  if (!pgm) return undefined;
  for (const f of ['mechanisms/aim.py', 'mechanisms/mst.py', 'src/mbi/inference.py'])
    if (!existsSync(join(pgm, f))) throw new Error(`PRIVATE_PGM=${pgm} has no ${f}: not a private-pgm checkout at ${PGM_COMMIT}`);
  return resolve(pgm);
}

async function run(): Promise<void> {
  const t = loadTable(flag('data'));
  const runs = positiveIntegers('runs', flag('runs', '1,2,3'));
  const only = flag('only', MECHS.join(','))
    .split(',')
    .map((m) => {
      if (!(MECHS as readonly string[]).includes(m)) throw new Error(`--only: ${m} is not one of ${MECHS.join(', ')}`);
      return m as Mech;
    });
  const degree = Number(flag('aim-degree', '3'));
  if (degree !== 2 && degree !== 3) throw new Error('--aim-degree must be 2 or 3');
  const sites = Number(flag('sites', String(t.sites)));
  if (!Number.isInteger(sites) || sites < 2) throw new Error('--sites must be an integer >= 2');
  const out = process.argv.includes('--out') ? flag('out') : undefined;
  const pgm = only.some((m) => m !== 'fed-aim') ? pgmCheckout() : undefined;
  if (only.some((m) => m !== 'fed-aim') && pgm === undefined) {
    process.stdout.write(HOW_TO_GET);
    return;
  }
  const dir = resolve(flag('work', '.tmp/private-pgm'));
  const files = exportTable(t, dir);
  process.stderr.write(
    `${t.name}: ${t.data.rows} rows, ε = ${EPSILON}, δ = ${DELTA} (ρ = ${fitRhoBudget(EPSILON, DELTA).toPrecision(6)}), runs ${runs.join(',')}\n`,
  );
  const results = new Map<Mech, RunResult[]>(only.map((m) => [m, []]));
  // Runs outside, mechanisms inside: a change of load affects every mechanism alike.
  for (const run of runs)
    for (const m of only) {
      const r =
        m === 'fed-aim'
          ? await runFederatedAim(t, run, sites)
          : runPgm(pgm!, m === 'pgm-aim' ? 'aim' : 'mst', t, files, join(dir, `${t.name}-${m}-${run}.csv`), degree);
      results.get(m)!.push(r);
      const line = { data: t.name, mech: m, run, ...(m === 'pgm-aim' ? { degree } : {}), ...(m === 'fed-aim' ? { sites } : {}), ...r };
      if (out) appendFileSync(out, `${JSON.stringify(line)}\n`);
      process.stderr.write(
        `${t.name} | ${m} | run ${run}: 3-way ${r.l1ThreeWay.toFixed(4)} 2-way ${r.l1TwoWay.toFixed(4)} (${r.rows} rows, ${r.wallS.toFixed(0)} s wall, ${r.cpuS.toFixed(0)} s CPU)\n`,
      );
    }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  process.stdout.write(
    `\n${t.name}, ε = ${EPSILON}, δ = ${DELTA}, runs ${runs.join(', ')}\n\n| mechanism | 3-way L1 | 2-way L1 | runs (3-way) | mean CPU |\n|---|---|---|---|---|\n`,
  );
  for (const [m, rs] of results)
    process.stdout.write(
      `| ${m} | ${mean(rs.map((r) => r.l1ThreeWay)).toFixed(4)} | ${mean(rs.map((r) => r.l1TwoWay)).toFixed(4)} | ${rs.map((r) => r.l1ThreeWay.toFixed(3)).join(' ')} | ${mean(rs.map((r) => r.cpuS)).toFixed(0)} s |\n`,
    );
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  if (cmd === undefined || process.argv.includes('--help')) {
    process.stdout.write(`${readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]}*/\n`);
    return;
  }
  if (cmd === 'export') {
    const dir = resolve(flag('dir'));
    for (const which of ['wide-small', 'adult']) {
      const f = exportTable(loadTable(which), dir);
      process.stdout.write(`${f.csv}\n${f.domain}\n`);
    }
  } else if (cmd === 'score') {
    const t = loadTable(flag('data'));
    const s = scoreSynthetic(t, flag('synthetic'));
    process.stdout.write(`${JSON.stringify({ data: t.name, ...s })}\n`);
  } else if (cmd === 'run') await run();
  else throw new Error(`unknown command ${cmd}: export, run or score (--help)`);
}

if (import.meta.url === `file://${process.argv[1]}`)
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
