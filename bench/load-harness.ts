/**
 * Load harness: N site agents in this process against a real coordinator process, over mTLS
 * gRPC on loopback, for a whole fit (committee keys, every measure round with threshold-HE
 * aggregation and decryption, release, estimation). Reports per-round latency (p50/p99), the
 * coordinator's overhead per round beyond its slowest site and committee member, and the peak RSS
 * of the coordinator and of this harness. Baseline measured in the same run: the same fit's
 * rounds at `--baseline-sites` (default 3), so the output shows how each number grows with N.
 *
 *   npx tsx bench/load-harness.ts --sites 100 [--patients 40] [--postgres postgres://…] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import pg from 'pg';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command, parseArgs, processIo, runCommand, UsageError } from '../cli/args.ts';
import {
  loadSiteData,
  openStore,
  percentile,
  prepareFederation,
  roundTimings,
  runAgents,
  spawnCoordinator,
  type LoadOptions,
  type RoundTiming,
} from './support/load-federation.ts';

const LOAD_HARNESS = command({
  command: 'bench/load-harness.ts',
  summary: 'N site agents in one process against a real coordinator process: round latency, coordinator overhead, peak RSS.',
  flags: {
    sites: { type: 'int', min: 2, max: 1000, default: 100, help: 'site agents run in this process' },
    'baseline-sites': { type: 'int', min: 0, max: 1000, default: 3, help: 'sites of the baseline fit run first (0: none)' },
    patients: { type: 'int', min: 1, max: 100_000, default: 40, help: 'patients per site (a small table each)' },
    epsilon: { type: 'number', min: 0, minExclusive: true, max: 100, default: 1, help: "the fit's ε (δ = 1e-9)" },
    plan: { type: 'enum', values: ['aim', 'mst'], default: 'aim', help: 'the measurement plan' },
    committee: { type: 'int', min: 1, max: 20, default: 3, help: 'committee members (a majority of them decrypts)' },
    iterations: { type: 'int', min: 1, max: 100_000, default: 300, help: 'final Private-PGM iterations' },
    'deadline-seconds': { type: 'int', min: 10, max: 86_400, default: 600, help: 'round deadline' },
    postgres: { type: 'string', value: 'URL', help: 'PostgreSQL URL for the coordinator (default: PGlite in a temp folder)' },
    json: { type: 'boolean', help: 'print only the JSON result' },
    keep: { type: 'boolean', help: 'keep the temp folder (kits, state, database)' },
  },
});

export interface HarnessArgs {
  sites: number;
  baselineSites: number;
  patients: number;
  epsilon: number;
  plan: 'aim' | 'mst';
  committee: number;
  iterations: number;
  deadlineSeconds: number;
  postgresUrl?: string;
  json: boolean;
  keep: boolean;
}

/** Flags of the harness; malformed or unknown flags throw a UsageError naming them. */
export function parseHarnessArgs(argv: string[]): HarnessArgs {
  const { flags } = parseArgs(LOAD_HARNESS, argv);
  if (flags.committee > flags.sites)
    throw new UsageError(`--committee ${flags.committee} exceeds --sites ${flags.sites}`, LOAD_HARNESS.command);
  if (flags.postgres !== undefined && !/^postgres(ql)?:\/\//.test(flags.postgres))
    throw new UsageError(`--postgres must be a postgres:// URL, got ${JSON.stringify(flags.postgres)}`, LOAD_HARNESS.command);
  return {
    sites: flags.sites,
    baselineSites: flags['baseline-sites'],
    patients: flags.patients,
    epsilon: flags.epsilon,
    plan: flags.plan,
    committee: flags.committee,
    iterations: flags.iterations,
    deadlineSeconds: flags['deadline-seconds'],
    ...(flags.postgres ? { postgresUrl: flags.postgres } : {}),
    json: flags.json,
    keep: flags.keep,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface LoadRun {
  sites: number;
  patientsPerSite: number;
  ok: boolean;
  wallSeconds: number;
  /** Provisioning start → the fit's model written (the coordinator's own log). */
  rounds: number;
  roundLatencyMs: { p50: number; p99: number; max: number };
  overheadMs: { p50: number; p99: number; max: number };
  aggregateMs: { p50: number; max: number };
  releaseMs: { p50: number; max: number };
  selectionMs: { p50: number; max: number };
  slowestSiteMs: { p50: number; max: number };
  coordinatorPeakRssMiB: number;
  harnessPeakRssMiB: number;
  agentErrors: string[];
  coordinatorExit: number;
  perRound: RoundTiming[];
}

const stat = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : NaN });

/** One fit with `sites` agents; returns its timings (from the coordinator's database) and peaks. */
export async function loadRun(a: HarnessArgs, sites: number, say: (line: string) => void): Promise<LoadRun> {
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-load-'));
  const t0 = performance.now();
  let pgSchema: string | undefined;
  try {
    const o: LoadOptions = {
      sites,
      patientsPerSite: a.patients,
      epsilon: a.epsilon,
      delta: 1e-9,
      plan: a.plan,
      committee: Math.min(a.committee, sites),
      // A majority of the committee decrypts: 2 of 3 by default.
      threshold: Math.floor(Math.min(a.committee, sites) / 2) + 1,
      quorumFraction: 0.9,
      deadlineSeconds: a.deadlineSeconds,
      iterations: a.iterations,
      postgresUrl: a.postgresUrl,
      dir,
      port: await freePort(),
      seed: 1,
    };
    const fed = await prepareFederation(o);
    pgSchema = fed.storeOptions.schema;
    say(`${sites} sites provisioned (${((performance.now() - t0) / 1000).toFixed(1)} s); starting the coordinator process`);
    const coord = spawnCoordinator(fed.configPath, (line) => {
      if (/\[(keygen|release|estimate)\]|fit (done|failed)|^MEM /.test(line)) say(`  coordinator ${line.slice(0, 160)}`);
    });
    const agentErrors: string[] = [];
    const { agents, done } = runAgents(
      fed.siteCfgs,
      (cfg) => loadSiteData(cfg.schemaText, a.patients, `load/${cfg.siteId}`),
      (site, line) => {
        // Retries while the coordinator process starts are expected; refusals and lost answers are not.
        if (/(^|[^A-Z])REFUSED |not delivered|task \S+ failed/.test(line)) agentErrors.push(`${site}: ${line}`);
      },
    );
    const code = await coord.exited;
    const coordinatorPeakRssMiB = coord.peakRssMiB();
    // Agents leave when told the fit is done; any left after the coordinator exits are stopped.
    const left = await Promise.race([done, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    if (!left) for (const ag of agents) ag.stop();
    for (const r of (left ?? (await done)).filter((r) => r.error)) agentErrors.push(`${r.site}: ${r.error}`);
    if (code !== 0) say(coord.output.slice(-15).join('\n'));
    const store = await openStore(fed.storeOptions);
    let perRound: RoundTiming[];
    try {
      perRound = await roundTimings(store, fed.federationId);
    } finally {
      await store.close();
    }
    const pick = (f: (r: RoundTiming) => number | undefined) => perRound.map(f).filter((x): x is number => x !== undefined);
    return {
      sites,
      patientsPerSite: a.patients,
      ok: code === 0 && agentErrors.length === 0,
      wallSeconds: (performance.now() - t0) / 1000,
      rounds: perRound.length,
      roundLatencyMs: stat(pick((r) => r.latencyMs)),
      overheadMs: stat(pick((r) => r.overheadMs)),
      aggregateMs: stat(pick((r) => r.aggregateMs)),
      releaseMs: stat(pick((r) => r.releaseMs)),
      selectionMs: stat(pick((r) => r.selectionMs)),
      slowestSiteMs: stat(pick((r) => r.slowestSiteMs)),
      coordinatorPeakRssMiB,
      harnessPeakRssMiB: process.resourceUsage().maxRSS / 1024,
      agentErrors: agentErrors.slice(0, 20),
      coordinatorExit: code,
      perRound,
    };
  } finally {
    if (!a.keep) {
      rmSync(dir, { recursive: true, force: true });
      if (a.postgresUrl && pgSchema) {
        const client = new pg.Client({ connectionString: a.postgresUrl });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).finally(() => client.end());
      }
    } else say(`kept ${dir}${pgSchema ? ` and PostgreSQL schema ${pgSchema}` : ''}`);
  }
}

function line(r: LoadRun): string {
  const f = (x: number) => (Number.isFinite(x) ? (x / 1000).toFixed(2) : '—');
  return (
    `${String(r.sites).padStart(4)} sites: ${r.rounds} rounds, round latency p50 ${f(r.roundLatencyMs.p50)} s p99 ${f(r.roundLatencyMs.p99)} s; ` +
    `overhead p50 ${f(r.overheadMs.p50)} s p99 ${f(r.overheadMs.p99)} s (aggregate ${f(r.aggregateMs.p50)}, release ${f(r.releaseMs.p50)}); ` +
    `selection p50 ${f(r.selectionMs.p50)} s; peak RSS coordinator ${r.coordinatorPeakRssMiB.toFixed(0)} MiB, harness ${r.harnessPeakRssMiB.toFixed(0)} MiB; ` +
    `wall ${r.wallSeconds.toFixed(0)} s${r.ok ? '' : ' — NOT OK'}`
  );
}

async function main(argv: string[]): Promise<number> {
  const a = parseHarnessArgs(argv);
  const say = (s: string) => console.error(s);
  const runs: LoadRun[] = [];
  if (a.baselineSites > 0) runs.push(await loadRun(a, a.baselineSites, say));
  runs.push(await loadRun(a, a.sites, say));
  const [base, main] = runs.length === 2 ? runs : [undefined, runs[0]];
  const ratio = base
    ? {
        roundLatencyP50: main.roundLatencyMs.p50 / base.roundLatencyMs.p50,
        overheadP50: main.overheadMs.p50 / base.overheadMs.p50,
        coordinatorPeakRss: main.coordinatorPeakRssMiB / base.coordinatorPeakRssMiB,
      }
    : undefined;
  const targets = {
    coordinatorPeakRssUnder1GiB: main.coordinatorPeakRssMiB < 1024,
    overheadP99Under2s: main.overheadMs.p99 < 2000,
  };
  if (a.json) console.log(JSON.stringify({ runs, ratioToBaseline: ratio, targets, node: process.version }, null, 2));
  else {
    for (const r of runs) console.log(line(r));
    if (ratio)
      console.log(
        `ratio ${main.sites}/${base!.sites} sites: round latency ×${ratio.roundLatencyP50.toFixed(2)}, overhead ×${ratio.overheadP50.toFixed(2)}, coordinator RSS ×${ratio.coordinatorPeakRss.toFixed(2)}`,
      );
    console.log(
      `targets: coordinator peak RSS < 1 GiB ${targets.coordinatorPeakRssUnder1GiB ? 'met' : 'NOT met'}; overhead p99 < 2 s ${targets.overheadP99Under2s ? 'met' : 'NOT met'}`,
    );
    for (const e of main.agentErrors) console.log(`agent: ${e}`);
  }
  return runs.every((r) => r.ok) ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runCommand(LOAD_HARNESS.command, processIo, () => main(process.argv.slice(2))).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exit(1);
    },
  );
}
