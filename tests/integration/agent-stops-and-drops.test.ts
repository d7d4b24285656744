// What a site agent does with failures no retry can fix, against the real coordinator over mutual
// TLS (issue 17, items 3, 8 and 9): an answer that arrives after its round's deadline is rejected
// once and the agent goes back to pulling (its charge stays spent); a kit of another federation
// (wrong CA), another site's certificate, another schema stop the agent at once with a distinct
// exit code instead of retrying forever; a full state folder makes the agent refuse what it cannot
// record (nothing charged, nothing sent, no torn line, no temp file) and keep serving; a coordinator
// that is away is retried with backoff and logged at a bounded rate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startTestFederation, type TestFederation } from '../support/federation.ts';
import { provisionFederation } from '../../pki/index.ts';
import { runFitAndCohort } from '../../coordinator/coordinator.ts';
import { SiteAgent } from '../../site-agent/agent.ts';
import { AGENT_EXIT_CODES, AgentStopError } from '../../site-agent/agent-errors.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { parseChainLines, verifyChain, type AuditEntry } from '../../privacy/audit-log/chain.ts';

const LATE = 'hospital-c';
const FULL = 'hospital-d';
let fed: TestFederation;
let fit: Promise<unknown>;
let lateTask: { taskId: string; roundId: string } | undefined;
let tmpfs: string | undefined;

const kitOf = (d: string) => ({
  caPem: readFileSync(join(d, 'ca.pem'), 'utf8'),
  certPem: readFileSync(join(d, 'cert.pem'), 'utf8'),
  keyPem: readFileSync(join(d, 'key.pem'), 'utf8'),
});

/** A tmpfs of `size` at `dir` (root only); undefined when this machine does not allow it. */
function mountTmpfs(dir: string, size: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Resolves with what run() ended with, or fails the test if it is still retrying after `ms`. */
function settlesWithin(run: Promise<void>, ms: number): Promise<unknown> {
  return Promise.race([
    run.then(
      () => 'resolved',
      (err: unknown) => err,
    ),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`agent still running (retrying) after ${ms} ms`)), ms)),
  ]);
}

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 4,
    patients: 60,
    plan: 'mst',
    committee: ['hospital-a', 'hospital-b'],
    threshold: 2,
    quorum: 2,
    cohortSize: 0,
    // The late site's first measure task waits out this deadline; the others answer in ~1 s.
    deadlineMs: 8000,
    manualSites: [LATE, FULL],
  });
  // hospital-d's state folder is a 256 KiB tmpfs: room for its ledger and audit log, not for a
  // contribution (a BFV ciphertext answer is far larger).
  tmpfs = mountTmpfs(join(fed.dir, 'full-state'), '256k');
  if (tmpfs) {
    fed.siteCfgs[FULL].stateDir = tmpfs;
    fed.startAgent(FULL);
  }
  // hospital-c answers its first measure task only once the coordinator has expired it.
  const late = new SiteAgent(fed.siteCfgs[LATE], fed.siteData[LATE], (l) => fed.logs.push(`${LATE}: ${l}`), {
    beforePush: async (t) => {
      if (lateTask || t.kind !== 'measure') return;
      lateTask = { taskId: t.taskId, roundId: t.roundId };
      await waitFor(
        'the late task to expire',
        async () =>
          (await fed.coordinator.store.listTasks(fed.cfg.federationId, t.roundId)).find((x) => x.taskId === t.taskId)?.state ===
            'expired' || undefined,
        60_000,
      );
    },
  });
  fed.agents[LATE] = late;
  fed.agentRuns[LATE] = late.run().catch((err) => {
    fed.logs.push(`${LATE}: agent stopped: ${(err as Error).message}`);
  });
  fit = runFitAndCohort(fed.cfg, fed.coordinator).catch((err: Error) => err);
}, 120_000);

afterAll(async () => {
  fed?.agents[FULL]?.stop();
  // Lazily, so the mount goes even while the stopping agent still holds its files open.
  if (tmpfs) execFileSync('umount', ['-l', tmpfs], { stdio: 'ignore' });
  await fed?.close();
  await fit;
});

describe('an answer after the deadline (item 3)', () => {
  it('is uploaded once, rejected, dropped, and the agent pulls and answers the next round', async () => {
    const agent = fed.agents[LATE];
    await waitFor('the late site to drop its expired task', () => agent.dropped[0], 90_000);
    expect(agent.dropped[0].taskId).toBe(lateTask!.taskId);
    expect(agent.dropped[0].reason).toMatch(/expired/);
    // It pulls again: a later measure round gets its answer.
    const later = await waitFor(
      'the late site to answer a later round',
      () => agent.answered.find((a) => a.kind === 'contribution' && a.taskId !== lateTask!.taskId),
      90_000,
    );
    expect(later.fresh).toBe(true);
    // The coordinator saw the late upload once (a retry, if any, would be a second line).
    const rejected = fed.logs.filter((l) => l.startsWith('coordinator: rejected upload') && l.includes(lateTask!.taskId));
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    expect(rejected.length).toBeLessThanOrEqual(2);
    expect(fed.logs.some((l) => l.startsWith(`${LATE}: dropped task ${lateTask!.taskId}`) && /stays spent in the ledger/.test(l))).toBe(
      true,
    );
    // Its charge stays in the ledger, truthfully: the answer left the site.
    const ledger = readFileSync(join(fed.siteCfgs[LATE].stateDir, 'ledger.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(ledger.some((r: { taskId: string; rho: number }) => r.taskId === lateTask!.taskId && r.rho > 0)).toBe(true);
  }, 200_000);
});

describe('failures no retry can fix stop the agent with their exit code (item 9)', () => {
  it("a kit of another federation's CA: the TLS handshake fails and the agent stops (exit 11)", async () => {
    const other = join(fed.dir, 'other-kits');
    await provisionFederation({ outDir: other, federationId: 'test-fed', sites: ['hospital-a'], validityDays: 2 });
    const cfg: SiteConfig = {
      ...fed.siteCfgs['hospital-a'],
      kit: kitOf(join(other, 'sites', 'hospital-a')),
      rosterFile: join(other, 'sites', 'hospital-a', 'roster.json'),
      stateDir: join(fed.dir, 'wrong-ca'),
    };
    const agent = new SiteAgent(cfg, fed.siteData['hospital-a']);
    const err = await settlesWithin(agent.run(), 20_000);
    expect(err).toBeInstanceOf(AgentStopError);
    expect((err as AgentStopError).exitCode).toBe(AGENT_EXIT_CODES.tls);
    expect((err as Error).message).toMatch(/TLS handshake with the coordinator at .* failed: .*certificate.*same `fedsynth provision`/);
  });

  it("another site's certificate: the agent refuses to connect (exit 10) and the coordinator sees no registration", async () => {
    const registrations = () => fed.logs.filter((l) => /^coordinator: site hospital-b registered/.test(l)).length;
    const before = registrations();
    const cfg: SiteConfig = { ...fed.siteCfgs['hospital-a'], kit: fed.siteCfgs['hospital-b'].kit, stateDir: join(fed.dir, 'other-site') };
    let err: unknown;
    try {
      const agent = new SiteAgent(cfg, fed.siteData['hospital-a']);
      err = await settlesWithin(agent.run(), 5000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentStopError);
    expect((err as AgentStopError).exitCode).toBe(AGENT_EXIT_CODES.identity);
    expect((err as Error).message).toMatch(/kit holds the certificate of site hospital-b, but the config names site hospital-a/);
    await new Promise((r) => setTimeout(r, 1500));
    expect(registrations()).toBe(before);
    // Its state folder was not even created: nothing ran.
    expect(existsSync(cfg.stateDir)).toBe(false);
  });

  it('another schema: the coordinator refuses the registration and the agent stops (exit 12)', async () => {
    const cfg: SiteConfig = { ...fed.siteCfgs['hospital-a'], schemaHash: 'ab'.repeat(32), stateDir: join(fed.dir, 'other-schema') };
    const agent = new SiteAgent(cfg, fed.siteData['hospital-a']);
    const err = await settlesWithin(agent.run(), 20_000);
    expect(err).toBeInstanceOf(AgentStopError);
    expect((err as AgentStopError).exitCode).toBe(AGENT_EXIT_CODES.mismatch);
    expect((err as Error).message).toMatch(/schema hash abababababababab… does not match/);
  });

  it('a coordinator that is away is retried with backoff, one log line per interval counting the attempts between', async () => {
    const lines: { at: number; line: string }[] = [];
    const cfg: SiteConfig = {
      ...fed.siteCfgs['hospital-a'],
      coordinator: `localhost:${await freePort()}`,
      stateDir: join(fed.dir, 'away'),
    };
    // Backoff waits of 125–250, 250–500, 500–1000 ms: the third or fourth attempt is the first
    // one logged after the interval, with the ones before it counted.
    const intervalMs = 600;
    const agent = new SiteAgent(cfg, fed.siteData['hospital-a'], (line) => lines.push({ at: Date.now(), line }), {
      retryLogIntervalMs: intervalMs,
    });
    const run = agent.run();
    const retries = () => lines.filter((l) => /^register attempt \d+ failed \(.*ECONNREFUSED.*\)/.test(l.line));
    await waitFor('a retry line that counts attempts it did not show', () => retries().some((l) => /not shown/.test(l.line)), 30_000);
    const stoppedAt = Date.now();
    agent.stop();
    await settlesWithin(run, 3000);
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    const shown = retries();
    // Never two lines within the interval; the attempts between them are counted, not lost.
    for (let i = 1; i < shown.length; i++) expect(shown[i].at - shown[i - 1].at).toBeGreaterThanOrEqual(intervalMs);
    const attempts = Math.max(...shown.map((l) => Number(/attempt (\d+)/.exec(l.line)![1])));
    expect(attempts).toBeGreaterThan(shown.length);
    expect(shown.every((l) => !/Resolution note/.test(l.line))).toBe(true);
  });
});

describe('a full state folder (item 8)', () => {
  it.skipIf(!process.getuid || process.getuid() !== 0)(
    'the agent refuses what it cannot record, charges nothing, leaves no torn line or temp file, and keeps serving',
    async () => {
      if (!tmpfs) {
        console.warn('skipped: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)');
        return;
      }
      const agent = fed.agents[FULL];
      const refusals = await waitFor(
        'two disk refusals (it keeps pulling after the first)',
        () =>
          agent.refused.filter((r) => /cannot durably record this task \(ENOSPC/.test(r.reason)).length >= 2 ? agent.refused : undefined,
        120_000,
      );
      expect(refusals[0].reason).toMatch(/nothing was charged or sent/);
      expect(agent.answered.filter((a) => a.kind === 'contribution')).toEqual([]);
      // Nothing charged, no half-written answer, and every audit line whole and verified.
      expect(readFileSync(join(tmpfs, 'ledger.jsonl'), 'utf8')).toBe('');
      expect(readdirSync(join(tmpfs, 'answers'))).toEqual([]);
      const audit = readFileSync(join(tmpfs, 'audit.jsonl'), 'utf8');
      expect(audit.endsWith('\n')).toBe(true);
      const entries = parseChainLines(audit) as AuditEntry[];
      expect(verifyChain(entries, new Map([[FULL, createPublicKey(fed.siteCfgs[FULL].kit.certPem)]]))).toEqual([]);
      expect(entries.some((e) => e.event.type === 'charge')).toBe(false);
      // The coordinator recorded the refusals, and no charge for this site.
      const charges = await fed.coordinator.store.chargesByRound(fed.cfg.federationId);
      expect(charges.filter((c) => c.siteId === FULL)).toEqual([]);
      expect(
        fed.logs.some((l) => l.startsWith(`${FULL}: task `) && /not answered: cannot write .*no space left on device \(ENOSPC\)/.test(l)),
      ).toBe(true);
      expect(fed.logs.filter((l) => l.startsWith(`${FULL}:`) && /\n\s+at /.test(l))).toEqual([]);
    },
    150_000,
  );
});
