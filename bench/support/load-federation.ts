/**
 * The load harness's moving parts (bench/load-harness.ts): a provisioned federation of N sites,
 * a real coordinator *process* (`fedsynth coordinator`, mTLS gRPC, PGlite or PostgreSQL), and the N
 * site agents inside this one process — the production SiteAgent (ledger, policy, BFV, Shamir,
 * discrete Gaussian noise), each with its own certificate, state folder and gRPC connection, on
 * small per-site tables — so hundreds of sites fit on a 2-core machine. Round timings are read
 * back from the coordinator's own database afterwards (its clock, not this busy process's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionFederation } from '../../pki/index.ts';
import { parseSchema, schemaHash } from '../../schema/schema.ts';
import { schemaAttributes } from '../../schema/codes.ts';
import { Dataset, Domain, allocColumn } from '../../model/domain.ts';
import { Rng } from '../../model/rng.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { SiteAgent, type LoadedSiteData } from '../../site-agent/agent.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { parsePolicy } from '../../site-agent/policy-file.ts';
import { openStore, type Store } from '../../coordinator/store/index.ts';

export interface LoadOptions {
  sites: number;
  patientsPerSite: number;
  epsilon: number;
  delta: number;
  plan: 'aim' | 'mst';
  committee: number;
  threshold: number;
  /** Fraction of the sites the noise is sized for (the round quorum). */
  quorumFraction: number;
  deadlineSeconds: number;
  iterations: number;
  /** PostgreSQL URL (a fresh schema is used); PGlite in `dir` when absent. */
  postgresUrl?: string;
  dir: string;
  port: number;
  seed: number;
}

export const siteName = (i: number) => `site-${String(i + 1).padStart(3, '0')}`;

/**
 * A small table over the public schema's attributes: attribute j follows attribute j−1 with
 * probability ½ (so selection has structure to find), else is uniform. Not patients, only load.
 */
export function loadSiteData(schemaText: string, patients: number, seed: string): LoadedSiteData {
  const attrs = schemaAttributes(parseSchema(schemaText));
  const domain = new Domain(
    attrs.map((a) => a.name),
    attrs.map((a) => a.size),
  );
  const rng = new Rng(seed);
  const cols = attrs.map((a) => allocColumn(a.size, patients));
  attrs.forEach((a, j) => {
    for (let r = 0; r < patients; r++) cols[j][r] = j > 0 && rng.next() < 0.5 ? cols[j - 1][r] % a.size : rng.nextInt(a.size);
  });
  return { data: new Dataset(domain, cols, patients), patients, quarantine: new Quarantine() };
}

export interface PreparedFederation {
  federationId: string;
  sites: string[];
  configPath: string;
  storeOptions: { pglite?: string; postgresUrl?: string; schema?: string };
  siteCfgs: SiteConfig[];
}

/** Provisions certificates, writes the coordinator's config file and every site's config. */
export async function prepareFederation(o: LoadOptions): Promise<PreparedFederation> {
  const federationId = 'load-fed';
  const sites = Array.from({ length: o.sites }, (_, i) => siteName(i));
  const kits = join(o.dir, 'kits');
  await provisionFederation({ outDir: kits, federationId, sites, validityDays: 2 });
  const schemaText = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8');
  const hash = schemaHash(parseSchema(schemaText));
  const pgSchema = `transport_load_${process.pid}_${Date.now().toString(36)}`;
  const storage = o.postgresUrl ? { postgres: o.postgresUrl, postgresSchema: pgSchema } : { pglite: join(o.dir, 'coordinator-db') };
  const config = {
    federationId,
    schema: DEFAULT_SCHEMA_PATH,
    listen: `127.0.0.1:${o.port}`,
    kit: join(kits, 'coordinator'),
    storage,
    sites,
    committee: { members: sites.slice(0, o.committee), threshold: o.threshold },
    rounds: {
      quorum: Math.max(1, Math.ceil(o.sites * o.quorumFraction)),
      deadlineSeconds: o.deadlineSeconds,
      registrationSeconds: 600,
    },
    fit: {
      epsilon: o.epsilon,
      delta: o.delta,
      cohortSize: 0,
      seed: o.seed,
      out: join(o.dir, 'out'),
      iterations: o.iterations,
      plan: o.plan,
    },
  };
  const configPath = join(o.dir, 'coordinator.yaml');
  // JSON is YAML: the config file parser reads it as is.
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const kit = (d: string) => ({
    caPem: readFileSync(join(d, 'ca.pem'), 'utf8'),
    certPem: readFileSync(join(d, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(d, 'key.pem'), 'utf8'),
  });
  const policy = parsePolicy({ epsilon: Math.max(5, 2 * o.epsilon), delta: 1e-6, minQuorum: 1, minThreshold: 1 });
  const siteCfgs = sites.map((s): SiteConfig => {
    const dataDir = join(o.dir, 'data', s);
    mkdirSync(dataDir, { recursive: true });
    return {
      siteId: s,
      federationId,
      coordinator: `localhost:${o.port}`,
      kit: kit(join(kits, 'sites', s)),
      rosterFile: join(kits, 'sites', s, 'roster.json'),
      schemaText,
      schemaHash: hash,
      // The harness hands each agent its table directly (loadSiteData above); this folder stays empty.
      data: { kind: 'fhir-ndjson', dir: dataDir },
      stateDir: join(o.dir, 'state', s),
      policy,
      exitWhenDone: true,
    };
  });
  return {
    federationId,
    sites,
    configPath,
    storeOptions: o.postgresUrl ? { postgresUrl: o.postgresUrl, schema: pgSchema } : { pglite: join(o.dir, 'coordinator-db') },
    siteCfgs,
  };
}

export interface CoordinatorProcess {
  child: ChildProcess;
  /** Peak resident set of the coordinator process so far (VmHWM, MiB). */
  peakRssMiB(): number;
  exited: Promise<number>;
  output: string[];
}

function vmHwmMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Starts `fedsynth coordinator --config …` as its own node process (not through bin.mjs: its pid is the server's). */
export function spawnCoordinator(configPath: string, onLine: (line: string) => void = () => undefined): CoordinatorProcess {
  const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, 'coordinator', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Diagnosis of the coordinator alone (e.g. --cpu-prof, a --require'd memory logger), not of this process.
    env: { ...process.env, NODE_OPTIONS: process.env.LOAD_COORDINATOR_NODE_OPTIONS ?? '' },
  });
  const output: string[] = [];
  let peak = 0;
  const sample = () => {
    const v = child.pid ? vmHwmMiB(child.pid) : undefined;
    if (v !== undefined) peak = Math.max(peak, v);
  };
  const timer = setInterval(sample, 250);
  const take = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      output.push(line);
      onLine(line);
    }
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  // The last sample is taken while the process still exists (on its 'exit' the /proc entry is gone).
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
  return { child, peakRssMiB: () => (sample(), peak), exited, output };
}

/** Starts one SiteAgent per config in this process; resolves when all have left. */
export function runAgents(
  cfgs: readonly SiteConfig[],
  data: (cfg: SiteConfig) => LoadedSiteData,
  log: (site: string, line: string) => void,
): { agents: SiteAgent[]; done: Promise<{ site: string; error?: string }[]> } {
  const agents = cfgs.map((c) => new SiteAgent(c, data(c), (line) => log(c.siteId, line)));
  const done = Promise.all(
    agents.map((a, i) =>
      a.run().then(
        () => ({ site: cfgs[i].siteId }),
        (err: Error) => ({ site: cfgs[i].siteId, error: err.message }),
      ),
    ),
  );
  return { agents, done };
}

export interface RoundTiming {
  roundId: string;
  contributors: number;
  /** Round opened → released (charges recorded). */
  latencyMs: number;
  /** Round opened → last site's contribution stored. */
  slowestSiteMs: number;
  /** Decrypt round opened → last committee member's partial stored. */
  slowestMemberMs: number;
  /** Last contribution → decrypt tasks issued (detection, homomorphic sum, payload writes). */
  aggregateMs: number;
  /** Last partial → released (detection, interpolation, range check, charge-and-release transaction). */
  releaseMs: number;
  /** latency − slowest site − slowest member: what the coordinator adds to a round. */
  overheadMs: number;
  /** Released → next round opened (the plan's selection, in the coordinator's worker thread). */
  selectionMs?: number;
}

const ms = (a: Date, b: Date) => b.getTime() - a.getTime();
const latest = (ds: (Date | null)[]) => new Date(Math.max(...ds.filter((d): d is Date => d !== null).map((d) => d.getTime())));

/** Per measure round, from the coordinator's database (rounds, tasks and charges carry its timestamps). */
export async function roundTimings(store: Store, federationId: string): Promise<RoundTiming[]> {
  const measures = (await store.listRounds(federationId, { kind: 'measure' })).sort((a, b) => a.seq - b.seq);
  const out: RoundTiming[] = [];
  for (const [i, r] of measures.entries()) {
    const charges = await store.chargesByRound(federationId, r.roundId);
    const decrypt = await store.getRound(federationId, `${r.roundId}.decrypt`);
    if (charges.length === 0 || !decrypt) continue;
    const released = charges[0].recordedAt;
    const measureDone = latest((await store.listTasks(federationId, r.roundId)).filter((t) => t.state === 'done').map((t) => t.doneAt));
    const decryptDone = latest(
      (await store.listTasks(federationId, decrypt.roundId)).filter((t) => t.state === 'done').map((t) => t.doneAt),
    );
    const slowestSiteMs = ms(r.createdAt, measureDone);
    const slowestMemberMs = ms(decrypt.createdAt, decryptDone);
    const latencyMs = ms(r.createdAt, released);
    const next = measures[i + 1];
    out.push({
      roundId: r.roundId,
      contributors: charges.length,
      latencyMs,
      slowestSiteMs,
      slowestMemberMs,
      aggregateMs: ms(measureDone, decrypt.createdAt),
      releaseMs: ms(decryptDone, released),
      overheadMs: latencyMs - slowestSiteMs - slowestMemberMs,
      ...(next ? { selectionMs: ms(released, next.createdAt) } : {}),
    });
  }
  return out;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export { openStore };
