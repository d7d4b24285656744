// A real federation inside one test process: provisioned certificates, simulated sites, the
// coordinator (real gRPC server with mutual TLS on loopback, real store) and site agents
// (real gRPC clients, real ledgers, real BFV). Nothing is mocked.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionFederation } from '../../pki/index.ts';
import { simulateFederation, DEFAULT_SCHEMA_PATH, siteId } from '../../simulator/index.ts';
import { parseSchema, schemaHash } from '../../schema/schema.ts';
import type { CoordinatorConfig } from '../../coordinator/config.ts';
import { bfvParams } from '../../coordinator/engine.ts';
import { startCoordinator, type RunningCoordinator, type StartOptions } from '../../coordinator/coordinator.ts';
import { loadSiteData, SiteAgent, type LoadedSiteData } from '../../site-agent/agent.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { seedPgliteDir } from './db.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestFederationOptions {
  sites?: number;
  patients?: number;
  committee?: string[];
  threshold?: number;
  quorum?: number;
  deadlineMs?: number;
  epsilon?: number;
  cohortSize?: number;
  storage?: CoordinatorConfig['storage'];
  /** Per-site policy overrides (merged over a permissive default). */
  policy?: Record<string, Record<string, unknown>>;
  /** Sites whose agents the test drives itself (no SiteAgent is started for them). */
  manualSites?: string[];
  maxBodyBytes?: number;
  uploadLimits?: StartOptions['uploadLimits'];
  plan?: 'aim' | 'mst';
  /** Schema text for the coordinator and every site (default: hospital-v1.yaml). */
  schemaText?: string;
  registrationMs?: number;
  /** Estimation iterations (default 300). */
  iterations?: number;
  /**
   * The test runs the coordinator itself (e.g. as a child process, tests/support/coordinator-child.ts):
   * no coordinator is started here; `coordinator` and `restartCoordinator` must not be used.
   */
  externalCoordinator?: boolean;
  /** Names and addresses the coordinator certificate is issued for (default: localhost, 127.0.0.1). */
  coordinatorHosts?: string[];
  /**
   * The agents' longest wait between retries (default here 500 ms; SiteAgent's own is 5 s). The
   * agents start before the fit and retry Register until it has begun (the coordinator refuses it
   * before): with 5 s waits every fit started up to 5 s after its coordinator was ready.
   */
  agentRetryMaxMs?: number;
  /** How often agents look at their revocation list file (default: SiteAgent's 5 s). */
  agentRevocationRefreshMs?: number;
}

export interface TestFederation {
  dir: string;
  kitsDir: string;
  cfg: CoordinatorConfig;
  siteCfgs: Record<string, SiteConfig>;
  siteData: Record<string, LoadedSiteData>;
  truth: { marginals: { n: number; oneWay: Record<string, number[]> | number[][]; twoWay: Record<string, number[]> } };
  coordinator: RunningCoordinator;
  agents: Record<string, SiteAgent>;
  agentRuns: Record<string, Promise<void>>;
  noisedVectors: Record<string, BigInt64Array[]>;
  logs: string[];
  startAgent(site: string): void;
  restartCoordinator(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestFederation(opts: TestFederationOptions = {}): Promise<TestFederation> {
  const nSites = opts.sites ?? 3;
  const sites = Array.from({ length: nSites }, (_, i) => siteId(i));
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-fed-'));
  const kitsDir = join(dir, 'kits');
  await provisionFederation({
    outDir: kitsDir,
    federationId: 'test-fed',
    sites,
    validityDays: 2,
    ...(opts.coordinatorHosts ? { coordinatorHosts: opts.coordinatorHosts } : {}),
  });
  await simulateFederation({ sites: nSites, patients: opts.patients ?? 300, seed: 11, outDir: join(dir, 'data') });
  const schemaText = opts.schemaText ?? readFileSync(DEFAULT_SCHEMA_PATH, 'utf8');
  const hash = schemaHash(parseSchema(schemaText));
  const kit = (d: string) => ({
    caPem: readFileSync(join(d, 'ca.pem'), 'utf8'),
    certPem: readFileSync(join(d, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(d, 'key.pem'), 'utf8'),
  });
  const port = await freePort();
  const committee = opts.committee ?? sites.slice(0, 3);
  let storage = opts.storage;
  let seedPglite = false;
  if (!storage) {
    storage = { kind: 'pglite', dataDir: join(dir, 'coordinator-db') };
    seedPglite = true;
  }
  const cfg: CoordinatorConfig = {
    federationId: 'test-fed',
    schemaText,
    schemaHash: hash,
    listen: `127.0.0.1:${port}`,
    kit: kit(join(kitsDir, 'coordinator')),
    storage,
    sites,
    committee: { members: committee, threshold: opts.threshold ?? Math.min(2, committee.length) },
    bfv: bfvParams(),
    rounds: {
      quorum: opts.quorum ?? Math.min(2, nSites),
      deadlineMs: opts.deadlineMs ?? 20_000,
      registrationMs: opts.registrationMs ?? 30_000,
    },
    fit: {
      epsilon: opts.epsilon ?? 1,
      delta: 1e-9,
      cohortSize: opts.cohortSize ?? 200,
      seed: 3,
      outDir: join(dir, 'out'),
      iterations: opts.iterations ?? 300,
      plan: opts.plan ?? 'aim',
    },
  };
  const siteCfgs: Record<string, SiteConfig> = {};
  const siteData: Record<string, LoadedSiteData> = {};
  for (const s of sites) {
    siteCfgs[s] = {
      siteId: s,
      federationId: 'test-fed',
      coordinator: `localhost:${port}`,
      kit: kit(join(kitsDir, 'sites', s)),
      rosterFile: join(kitsDir, 'sites', s, 'roster.json'),
      schemaText,
      schemaHash: hash,
      data: { kind: 'fhir-ndjson', dir: join(dir, 'data', s) },
      stateDir: join(dir, 'state', s),
      policy: parsePolicy({ epsilon: 5, delta: 1e-6, minQuorum: 1, minThreshold: 1, ...(opts.policy?.[s] ?? {}) }),
      exitWhenDone: true,
    };
    siteData[s] = await loadSiteData(siteCfgs[s]);
  }
  const logs: string[] = [];
  const log = (who: string) => (line: string) => logs.push(`${who}: ${line}`);
  const initStorage = async () => {
    if (seedPglite && storage.kind === 'pglite') {
      await seedPgliteDir(storage.dataDir);
      seedPglite = false;
    }
  };
  const start = async () => {
    await initStorage();
    return startCoordinator(cfg, {
      log: log('coordinator'),
      onProgress: (e) => logs.push(`[${e.phase}] ${e.message}`),
      maxBodyBytes: opts.maxBodyBytes,
      uploadLimits: opts.uploadLimits,
    });
  };
  const fed: TestFederation = {
    dir,
    kitsDir,
    cfg,
    siteCfgs,
    siteData,
    truth: JSON.parse(readFileSync(join(dir, 'data', 'truth.json'), 'utf8')),
    coordinator: opts.externalCoordinator ? (await initStorage(), undefined as unknown as RunningCoordinator) : await start(),
    agents: {},
    agentRuns: {},
    noisedVectors: {},
    logs,
    startAgent(site: string) {
      fed.noisedVectors[site] ??= [];
      const agent = new SiteAgent(siteCfgs[site], siteData[site], log(site), {
        onNoisedVector: (_task, v) => fed.noisedVectors[site].push(v.slice()),
        retryMaxMs: opts.agentRetryMaxMs ?? 500,
        ...(opts.agentRevocationRefreshMs !== undefined ? { revocationRefreshMs: opts.agentRevocationRefreshMs } : {}),
      });
      fed.agents[site] = agent;
      fed.agentRuns[site] = agent.run().catch((err) => {
        logs.push(`${site}: agent stopped: ${(err as Error).message}`);
      });
    },
    async restartCoordinator() {
      await fed.coordinator.close();
      fed.coordinator = await start();
    },
    async close() {
      for (const a of Object.values(fed.agents)) a.stop();
      await fed.coordinator?.close().catch(() => undefined);
      await Promise.race([Promise.all(Object.values(fed.agentRuns)), new Promise((r) => setTimeout(r, 3000))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const s of sites) if (!opts.manualSites?.includes(s)) fed.startAgent(s);
  return fed;
}
