// Operations of a real federation (gRPC with mTLS on loopback, BFV, PGlite, durable ledgers):
// Prometheus metrics and readiness scraped over HTTP from the coordinator and the agents and
// compared with the store and the ledgers; then a site's certificate is rotated (it keeps its
// identity, ledger and spend) and its old certificate revoked (the coordinator refuses it by
// name, committee members refuse to encrypt to it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { scrape, sum, type Exposition } from '../support/prometheus.ts';
import { runFitAndCohort } from '../../coordinator/coordinator.ts';
import { wireTaskSpec } from '../../coordinator/audit.ts';
import { SiteAgent } from '../../site-agent/agent.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { openCheckedLedger } from '../../site-agent/ledger-check.ts';
import { CERTS_DIR } from '../../site-agent/previous-certs.ts';
import { TaskRefusal, verifyCommittee } from '../../site-agent/tasks.ts';
import { createAgentMetrics, type AgentMetrics } from '../../ops/metrics.ts';
import { revokeCertificates, rotateSite, REVOCATION_FILE } from '../../pki/rotate.ts';
import { readRevocationList } from '../../proto/revocation.ts';
import { parseRoster, type FederationRoster } from '../../proto/roster.ts';
import { parseTaskSpec } from '../../proto/task-spec.ts';

const SITES = ['hospital-a', 'hospital-b', 'hospital-c'];
let fed: TestFederation;
const agentMetrics: Record<string, AgentMetrics> = {};
let crlFile: string;

function startAgent(site: string, cfg: SiteConfig, metrics?: AgentMetrics): { agent: SiteAgent; run: Promise<string> } {
  const agent = new SiteAgent(cfg, fed.siteData[site], (l) => fed.logs.push(`${site}: ${l}`), metrics ? { metrics } : {});
  fed.agents[site] = agent;
  const run = agent.run().then(
    () => 'stopped',
    (err: Error) => err.message,
  );
  fed.agentRuns[site] = run.then(() => undefined);
  return { agent, run };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 3,
    patients: 60,
    plan: 'mst',
    committee: SITES,
    threshold: 2,
    quorum: 2,
    cohortSize: 0,
    manualSites: SITES,
  });
  // An empty list first: the coordinator reads it at start and re-reads it when it changes.
  crlFile = (await revokeCertificates({ outDir: fed.kitsDir, certPems: [] })).file;
  fed.cfg.metrics = { listen: '127.0.0.1:0' };
  fed.cfg.revocationListFile = crlFile;
  await fed.restartCoordinator();
  for (const s of SITES) {
    agentMetrics[s] = createAgentMetrics();
    // Agents keep serving after the fit, so their endpoints can be scraped.
    fed.siteCfgs[s] = { ...fed.siteCfgs[s], exitWhenDone: false, metrics: { listen: '127.0.0.1:0' }, revocationListFile: crlFile };
    startAgent(s, fed.siteCfgs[s], agentMetrics[s]);
  }
  await runFitAndCohort(fed.cfg, fed.coordinator);
}, 180_000);

afterAll(async () => {
  await fed?.close();
});

describe('metrics and health scraped from a running federation', () => {
  let coord: Exposition;
  beforeAll(async () => {
    coord = await scrape(fed.coordinator.opsUrl!);
  });

  it("the coordinator's round counters equal the rounds in its store, and its latency histogram counts each", async () => {
    const rounds = await fed.coordinator.store.listRounds(fed.cfg.federationId);
    const released = rounds.filter((r) => r.state === 'released');
    expect(released.length).toBeGreaterThan(2);
    for (const kind of ['keygen', 'measure', 'decrypt']) {
      const ofKind = rounds.filter((r) => r.kind === kind);
      expect(sum(coord, 'fedsynth_rounds_started_total', { kind }), kind).toBe(ofKind.length);
      expect(sum(coord, 'fedsynth_rounds_released_total', { kind }), kind).toBe(ofKind.filter((r) => r.state === 'released').length);
    }
    expect(sum(coord, 'fedsynth_round_duration_seconds_count', { outcome: 'released' })).toBe(released.length);
    expect(coord.types.fedsynth_round_duration_seconds).toBe('histogram');
    expect(sum(coord, 'fedsynth_round_duration_seconds_sum')).toBeGreaterThan(0);
  });

  it("the coordinator's spend per site equals its charges, and the sites' published caps are shown", async () => {
    const spend = await fed.coordinator.store.spendBySite(fed.cfg.federationId);
    expect(spend.length).toBe(3);
    for (const s of spend) {
      expect(sum(coord, 'fedsynth_site_spent_rho', { site: s.siteId })).toBeCloseTo(s.rho, 12);
      expect(sum(coord, 'fedsynth_site_cap_rho', { site: s.siteId })).toBeCloseTo(fed.siteCfgs[s.siteId].policy.rhoCap, 12);
    }
  });

  it('bytes crossing the wire are counted on both ends and agree', async () => {
    const agents = await Promise.all(SITES.map((s) => scrape(fed.agents[s].opsUrl!)));
    const upAgents = agents.reduce((a, e) => a + sum(e, 'fedsynth_bytes_uploaded_total'), 0);
    const downAgents = agents.reduce((a, e) => a + sum(e, 'fedsynth_bytes_downloaded_total'), 0);
    expect(sum(coord, 'fedsynth_bytes_uploaded_total')).toBeGreaterThan(100_000);
    expect(sum(coord, 'fedsynth_bytes_uploaded_total')).toBe(upAgents);
    // Decrypt tasks carry the summed ciphertexts as payload.
    expect(sum(coord, 'fedsynth_bytes_downloaded_total')).toBeGreaterThan(0);
    expect(sum(coord, 'fedsynth_bytes_downloaded_total')).toBe(downAgents);
  });

  it("each agent's budget gauges equal its own ledger", async () => {
    for (const s of SITES) {
      const e = await scrape(fed.agents[s].opsUrl!);
      const spent = sum(e, 'fedsynth_budget_spent_rho', { federation: 'test-fed' });
      const cap = sum(e, 'fedsynth_budget_cap_rho', { federation: 'test-fed' });
      const coordinatorSpend = (await fed.coordinator.store.spendBySite(fed.cfg.federationId)).find((x) => x.siteId === s)!.rho;
      expect(spent, s).toBeCloseTo(coordinatorSpend, 12);
      expect(cap).toBe(fed.siteCfgs[s].policy.rhoCap);
      expect(sum(e, 'fedsynth_budget_remaining_rho')).toBeCloseTo(cap - spent, 12);
      expect(sum(e, 'fedsynth_tasks_total', { outcome: 'answered' })).toBe(sum(e, 'fedsynth_rounds_started_total'));
      // Process metrics come along (RSS is what an operator watches on a busy coordinator).
      expect(sum(e, 'fedsynth_agent_process_resident_memory_bytes')).toBeGreaterThan(1e6);
    }
  });

  it('/healthz and /readyz answer on coordinator and agents; readiness names each check', async () => {
    for (const url of [fed.coordinator.opsUrl!, ...SITES.map((s) => fed.agents[s].opsUrl!)]) {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const r = await fetch(`${url}/readyz`);
      const body = (await r.json()) as { ready: boolean; checks: Record<string, string> };
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(body.ready).toBe(true);
      expect(Object.values(body.checks).every((v) => v === 'ok')).toBe(true);
    }
    const c = (await (await fetch(`${fed.coordinator.opsUrl}/readyz`)).json()) as { checks: Record<string, string> };
    expect(Object.keys(c.checks).sort()).toEqual(['grpc', 'keys', 'store']);
    expect((await fetch(`${fed.coordinator.opsUrl}/nothing`)).status).toBe(404);
    expect((await fetch(`${fed.coordinator.opsUrl}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('an agent that cannot reach its coordinator is alive but not ready, and says why', async () => {
    const cfg: SiteConfig = { ...fed.siteCfgs['hospital-a'], coordinator: 'localhost:1', stateDir: join(fed.dir, 'state', 'unreachable') };
    const agent = new SiteAgent(cfg, fed.siteData['hospital-a'], () => undefined, { metrics: createAgentMetrics() });
    const run = agent.run().catch(() => undefined);
    try {
      const url = await until('the ops endpoint', () => agent.opsUrl);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const r = await fetch(`${url}/readyz`);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { checks: Record<string, string> }).checks.coordinator).toMatch(/not registered with localhost:1/);
    } finally {
      agent.stop();
      await run;
    }
  });
});

describe('certificate rotation keeps a site its identity, ledger and spend; revocation is honoured', () => {
  const site = 'hospital-c';
  let spendBefore: number;
  let ledgerRhoBefore: number;
  let oldKit: SiteConfig['kit'];
  /** The roster the fit ran under: hospital-c's old key is listed there. */
  let rosterBefore: FederationRoster;

  beforeAll(async () => {
    spendBefore = (await fed.coordinator.store.spendBySite(fed.cfg.federationId)).find((x) => x.siteId === site)!.rho;
    fed.agents[site].stop();
    await fed.agentRuns[site];
    const ledger = openLedger(fed.siteCfgs[site].stateDir);
    ledgerRhoBefore = ledger.state().totalRho;
    ledger.close();
    oldKit = fed.siteCfgs[site].kit;
    rosterBefore = parseRoster(readFileSync(join(fed.kitsDir, 'roster.json'), 'utf8'), oldKit.caPem, 'roster before rotation');
  }, 60_000);

  it('a rotated kit keeps the site id, moves the old certificate to previous/, and changes the key', async () => {
    const r = await rotateSite({ outDir: fed.kitsDir, siteId: site });
    const dir = join(fed.kitsDir, 'sites', site);
    const next = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    expect(next.subject).toContain(`CN=${site}`);
    expect(r.oldSerial).toBe(new X509Certificate(oldKit.certPem).serialNumber);
    expect(readFileSync(r.previousCertPath, 'utf8')).toBe(oldKit.certPem);
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).not.toBe(oldKit.keyPem);
  });

  it('without its previous certificate the agent refuses its own audit log: the rotation support is what keeps the ledger', () => {
    const copy = join(fed.dir, 'state', 'copy-without-certs');
    cpSync(fed.siteCfgs[site].stateDir, copy, { recursive: true });
    rmSync(join(copy, CERTS_DIR), { recursive: true, force: true });
    rmSync(join(copy, 'LOCK'), { force: true });
    const newKey = readFileSync(join(fed.kitsDir, 'sites', site, 'key.pem'), 'utf8');
    expect(() => openCheckedLedger(copy, { audit: { party: site, privateKeyPem: newKey } })).toThrow(/signature does not verify/);
  });

  it('the agent restarts with the new kit and the same state folder: same ledger, registered as itself, same spend', async () => {
    const dir = join(fed.kitsDir, 'sites', site);
    const newKit = {
      caPem: oldKit.caPem,
      certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
      previousCertPems: [readFileSync(join(dir, 'previous', `${new X509Certificate(oldKit.certPem).serialNumber}.pem`), 'utf8')],
    };
    fed.siteCfgs[site] = { ...fed.siteCfgs[site], kit: newKit };
    const before = fed.logs.length;
    startAgent(site, fed.siteCfgs[site], createAgentMetrics());
    await until('re-registration', () => fed.logs.slice(before).find((l) => l.startsWith(`${site}: registered with`)));
    expect(fed.logs.slice(before).some((l) => /also verified under 1 earlier certificate/.test(l))).toBe(true);
    const scraped = await scrape(await until('ops', () => fed.agents[site].opsUrl));
    expect(sum(scraped, 'fedsynth_budget_spent_rho')).toBeCloseTo(ledgerRhoBefore, 12);
    const spendAfter = (await fed.coordinator.store.spendBySite(fed.cfg.federationId)).find((x) => x.siteId === site)!.rho;
    expect(spendAfter).toBe(spendBefore);
    expect(ledgerRhoBefore).toBeCloseTo(spendBefore, 12);
    const sites = await fed.coordinator.store.listSites(fed.cfg.federationId);
    expect(sites.filter((s) => s.siteId === site)).toHaveLength(1);
  });

  it('after revoking the old certificate the coordinator refuses it by name at registration, and counts the refusal', async () => {
    await revokeCertificates({ outDir: fed.kitsDir, certPems: [oldKit.certPem], reason: 'superseded' });
    expect(crlFile).toBe(join(fed.kitsDir, REVOCATION_FILE));
    // The coordinator re-reads the list when it changes; refresh now rather than wait for the poll.
    const list = await readRevocationList(crlFile, oldKit.caPem);
    expect(list.lookupPem(oldKit.certPem)?.reason).toBe('superseded');
    const before = sum(await scrape(fed.coordinator.opsUrl!), 'fedsynth_refusals_total', { reason: 'revoked' });
    await until(
      'the coordinator to reload the list',
      () => fed.logs.find((l) => /^coordinator: revocation list .* accepted: cRLNumber \d+, 1 revoked/.test(l)),
      15_000,
    );
    // A stale copy of the old kit somewhere: its agent must stop with the reason, not retry forever.
    const stale: SiteConfig = { ...fed.siteCfgs[site], kit: oldKit, stateDir: join(fed.dir, 'state', 'stale-c'), metrics: undefined };
    const outcome = await new SiteAgent(stale, fed.siteData[site]).run().then(
      () => 'no refusal',
      (err: Error) => err.message,
    );
    expect(outcome).toMatch(
      /the coordinator at .* refuses this site: the certificate of site hospital-c \(serial [0-9A-F]+\) was revoked on .* \(superseded\)/,
    );
    const after = sum(await scrape(fed.coordinator.opsUrl!), 'fedsynth_refusals_total', { reason: 'revoked' });
    expect(after).toBeGreaterThan(before);
  });

  it('committee members refuse to encrypt to a committee key signed by a revoked certificate', async () => {
    const list = await readRevocationList(crlFile, oldKit.caPem);
    const rounds = await fed.coordinator.store.listRounds(fed.cfg.federationId, { kind: 'measure' });
    const task = (await fed.coordinator.store.listTasks(fed.cfg.federationId, rounds[0].roundId)).find((t) => t.siteId === 'hospital-a')!;
    const spec = parseTaskSpec('measure', JSON.stringify(wireTaskSpec(task)));
    if (spec.kind !== 'measure') throw new Error('not a measure spec');
    // hospital-c's committee key was signed with the key of its now revoked certificate.
    expect(spec.committee.find((m) => m.memberId === site)!.certificatePem).toBe(oldKit.certPem);
    const ctx = {
      caCert: new X509Certificate(oldKit.caPem),
      federationId: fed.cfg.federationId,
      schemaHash: fed.cfg.schemaHash,
      now: () => new Date(),
      roster: () => rosterBefore,
    };
    expect(verifyCommittee(ctx, spec)).toHaveLength(3);
    // Under the roster rotate-site wrote, the old key is no longer hospital-c's, revoked or not.
    const rotated = parseRoster(readFileSync(join(fed.kitsDir, 'roster.json'), 'utf8'), oldKit.caPem, 'roster after rotation');
    expect(rotated.version).toBe(rosterBefore.version + 1);
    expect(() => verifyCommittee({ ...ctx, roster: () => rotated }, spec)).toThrow(
      /committee member hospital-c has a certificate whose key is not the one the federation roster lists for it \(roster version 2\)/,
    );
    expect(() => verifyCommittee({ ...ctx, revocation: () => list }, spec)).toThrow(TaskRefusal);
    expect(() => verifyCommittee({ ...ctx, revocation: () => list }, spec)).toThrow(
      /committee member hospital-c: .*revoked.*refusing to encrypt to it/,
    );
  });
});
