// A federation served by `fedsynth serve` inside the test process: the files of the demo
// (prepareFederation), the coordinator as a service with its HTTP API, and the site agents as
// daemons (real gRPC with mTLS, real ledgers). Tokens for the three roles.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { prepareFederation, type FederationFiles } from '../../cli/demo.ts';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { parseSiteConfig } from '../../cli/agent-config.ts';
import { startService, type RunningService } from '../../coordinator/serve.ts';
import { loadSiteData, SiteAgent } from '../../site-agent/agent.ts';
import type { Role } from '../../coordinator/store/index.ts';
import { freePort } from './federation.ts';
import { seedPgliteDir } from './db.ts';

export interface TestService {
  work: string;
  files: FederationFiles;
  url: string;
  service: RunningService;
  tokens: Record<Role, string>;
  agents: SiteAgent[];
  logs: string[];
  api(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; body: any }>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestService(
  opts: { sites?: number; patients?: number; siteEpsilon?: number; deadlineSeconds?: number } = {},
): Promise<TestService> {
  const work = mkdtempSync(join(tmpdir(), 'fedsynth-svc-'));
  const files = await prepareFederation({
    work,
    outDir: join(work, 'out'),
    sites: opts.sites ?? 3,
    patients: opts.patients ?? 200,
    cohortSize: 100,
    epsilon: 1,
    delta: 1e-9,
    seed: 3,
    deadlineSeconds: opts.deadlineSeconds ?? 30,
    multimodal: false,
  });
  const httpPort = await freePort();
  const raw = YAML.parse(readFileSync(files.coordinatorConfig, 'utf8'));
  raw.http = { listen: `127.0.0.1:${httpPort}` };
  raw.rounds.registrationSeconds = 30;
  writeFileSync(files.coordinatorConfig, YAML.stringify(raw));
  await seedPgliteDir(raw.storage.pglite);
  for (const path of Object.values(files.siteConfigs)) {
    const site = YAML.parse(readFileSync(path, 'utf8'));
    site.policy.epsilon = opts.siteEpsilon ?? 4;
    writeFileSync(path, YAML.stringify(site));
  }
  const cfg = parseCoordinatorConfig(files.coordinatorConfig);
  const logs: string[] = [];
  const log = (who: string) => (l: string) => logs.push(`${who}: ${l}`);
  let service = await startService(cfg, { log: log('serve') });
  const tokens = {} as Record<Role, string>;
  for (const role of ['researcher', 'operator', 'auditor'] as const)
    tokens[role] = (await service.studies.createApiKey(`test ${role}`, role)).token;
  const agents: SiteAgent[] = [];
  for (const [site, path] of Object.entries(files.siteConfigs)) {
    const sc = parseSiteConfig(path);
    const agent = new SiteAgent(sc, await loadSiteData(sc), log(site));
    agents.push(agent);
    void agent.run().catch((err: Error) => logs.push(`${site} stopped: ${err.message}`));
  }
  const url = `http://127.0.0.1:${httpPort}`;
  const t: TestService = {
    work,
    files,
    url,
    get service() {
      return service;
    },
    tokens,
    agents,
    logs,
    async api(method, path, o = {}) {
      const token = o.token === undefined ? tokens.researcher : o.token;
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(o.body !== undefined || o.raw !== undefined ? { 'content-type': 'application/json' } : {}),
          ...o.headers,
        },
        ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON: the text */
      }
      return { status: res.status, headers: res.headers, body };
    },
    async restart() {
      await service.close();
      service = await startService(cfg, { log: log('serve') });
    },
    async close() {
      for (const a of agents) a.stop();
      await service.close();
      if (!process.env.FEDSYNTH_KEEP_TEST) rmSync(work, { recursive: true, force: true });
    },
  };
  return t;
}

/** Polls until `done` holds for the GET body (or the timeout). */
export async function pollUntil(
  t: TestService,
  path: string,
  done: (body: any) => boolean,
  timeoutMs = 120_000,
  token?: string,
): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.api('GET', path, { token });
    if (done(res.body)) return res.body;
    if (Date.now() > until) throw new Error(`timed out waiting on ${path}: ${JSON.stringify(res.body).slice(0, 500)}`);
    // A GET is cheap: a short interval keeps the test from waiting up to half a second past the state.
    await new Promise((r) => setTimeout(r, 100));
  }
}
