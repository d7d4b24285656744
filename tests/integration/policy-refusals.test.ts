// Site policy end to end on a real in-process federation (mTLS gRPC, BFV, PGlite): a coordinator
// cannot get an answer outside a site's policy. Each refusing site below has one policy (or data)
// that the coordinator's tasks violate; every refusal carries a precise reason, nothing is
// charged, and the refusal is logged on both sides — in the site's signed audit log and in the
// coordinator's (task marked refused + a signed task-refused entry). Sites a and b answer, a with
// the coordinator's real certificate fingerprint pinned (captured from the TLS handshake).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { parseChainLines, type AuditEntry, type TaskRefusedEvent } from '../../privacy/audit-log/chain.ts';
import { reconcileAuditLogs } from '../../privacy/audit-log/reconcile.ts';

const BASE = { epsilon: 5, delta: 1e-6, minQuorum: 1, minThreshold: 1 };
const WRONG_FP = 'ab'.repeat(32);

/** site → [policy override, the reason it must give]. */
const CASES: Record<string, [Record<string, unknown>, RegExp, string]> = {
  'hospital-c': [{ minQuorum: 3 }, /^quorum 2 is below this site's minimum 3$/, 'quorum below minimum'],
  'hospital-d': [
    { epsilon: 0.001 },
    /^task would spend rho [\d.e-]+ but only [\d.e-]+ of the site's total 0\.001-epsilon cap \(rho [\d.e-]+ at delta 0\.000001\) remains; spent so far rho 0/,
    'total cap',
  ],
  'hospital-e': [{ federationEpsilon: 0.001 }, /of the federation "test-fed"'s 0\.001-epsilon cap/, 'per-federation cap'],
  'hospital-f': [{ monthlyEpsilon: 0.001 }, /of the \d{4}-\d\d monthly 0\.001-epsilon cap/, 'monthly cap'],
  'hospital-g': [{ maxMarginalCells: 2 }, /^marginal \[\w+\] has \d+ cells, policy allows at most 2$/, 'marginal too large'],
  'hospital-h': [{}, /^unknown attribute egfr in marginal \[egfr\]: not in the federation's public schema$/, 'unknown attribute'],
  'hospital-i': [
    { minSigmaSite: 100000 },
    /^noise too small: this site's share has sigma [\d.]+ per cell .* policy requires at least 100000$/,
    'noise below minimum',
  ],
  'hospital-k': [
    { allowedModalities: ['genome'] },
    /^marginal \[\w+\] reads \w+ \(fhir data\); this site's policy allows only genome data$/,
    'modality not shared',
  ],
  'hospital-j': [
    { coordinatorFingerprint: WRONG_FP },
    /^coordinator certificate fingerprint [0-9a-f]{64} does not match the fingerprint this site trusts \(abababababababab…\)$/,
    'untrusted coordinator',
  ],
};
const DECRYPT_REASON = /^decryption of a sum of 2 contribution\(s\) is below this site's minimum quorum 3$/;

let fed: TestFederation;
let report: FitReport;
let coordinatorFp: string;

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 11,
    patients: 60,
    // MST measures every attribute in every round, so the site lacking egfr refuses them all.
    plan: 'mst',
    committee: ['hospital-a', 'hospital-b', 'hospital-c'],
    threshold: 2,
    quorum: 2,
    cohortSize: 0,
    policy: Object.fromEntries(Object.entries(CASES).map(([s, [p]]) => [s, p])),
    manualSites: ['hospital-a', 'hospital-h'],
  });
  coordinatorFp = new X509Certificate(fed.cfg.kit.certPem).fingerprint256;
  // a: pins the real coordinator certificate.
  fed.siteCfgs['hospital-a'].policy = parsePolicy({ ...BASE, coordinatorFingerprint: coordinatorFp });
  // h: its data does not have the schema's last attribute (egfr).
  const d = fed.siteData['hospital-h'].data;
  const keep = d.domain.attrs.length - 1;
  expect(d.domain.attrs[keep]).toBe('egfr');
  fed.siteData['hospital-h'] = {
    ...fed.siteData['hospital-h'],
    data: new Dataset(new Domain(d.domain.attrs.slice(0, keep), d.domain.sizes.slice(0, keep)), d.columns.slice(0, keep), d.rows),
  };
  fed.startAgent('hospital-a');
  fed.startAgent('hospital-h');
  report = await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
}, 120_000);

afterAll(async () => {
  await fed?.close();
});

const siteLog = (s: string) => parseChainLines(readFileSync(join(fed.siteCfgs[s].stateDir, 'audit.jsonl'), 'utf8')) as AuditEntry[];
const refusalsIn = (entries: AuditEntry[]) =>
  entries.filter((e) => e.event.type === 'task-refused').map((e) => e.event as TaskRefusedEvent);

describe('a coordinator cannot get an answer outside the site policy', () => {
  it('the fit completes with the two sites whose policy allows it; a answered with the coordinator pinned', () => {
    expect(report.sitesContributed).toEqual(['hospital-a', 'hospital-b']);
    expect(fed.agents['hospital-a'].refused).toEqual([]);
    expect(fed.agents['hospital-a'].answered.some((a) => a.kind === 'contribution')).toBe(true);
  });

  for (const [site, [, reason, what]] of Object.entries(CASES)) {
    it(`${what}: ${site} refuses with a precise reason, is never charged, and both logs record it`, async () => {
      const refused = fed.agents[site].refused;
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0].reason).toMatch(reason);
      expect(fed.agents[site].answered.filter((a) => a.kind === 'contribution')).toEqual([]);

      // The site's own signed audit log: the refusal, and no charge.
      const mine = siteLog(site);
      expect(refusalsIn(mine).some((r) => reason.test(r.reason) && r.site === site)).toBe(true);
      expect(mine.some((e) => e.event.type === 'charge')).toBe(false);

      // The coordinator: the task is marked refused with the reason, and its signed log has it.
      const coord = await fed.coordinator.store.listAudit(fed.cfg.federationId);
      const theirs = refusalsIn(coord).filter((r) => r.site === site);
      expect(theirs.some((r) => reason.test(r.reason))).toBe(true);
      const task = (await fed.coordinator.store.listTasks(fed.cfg.federationId, theirs[0].roundId)).find(
        (t) => t.taskId === theirs[0].taskId,
      )!;
      expect(task.state).toBe('refused');
      expect((await fed.coordinator.store.chargesByRound(fed.cfg.federationId)).filter((c) => c.siteId === site)).toEqual([]);
    });
  }

  it('decryption of too few contributions: committee member c refuses to decrypt a sum of 2', async () => {
    const reasons = fed.agents['hospital-c'].refused.map((r) => r.reason);
    expect(reasons.some((r) => DECRYPT_REASON.test(r))).toBe(true);
    expect(refusalsIn(siteLog('hospital-c')).some((r) => DECRYPT_REASON.test(r.reason))).toBe(true);
    const coord = await fed.coordinator.store.listAudit(fed.cfg.federationId);
    const decryptRefusals = refusalsIn(coord).filter((r) => r.site === 'hospital-c' && DECRYPT_REASON.test(r.reason));
    expect(decryptRefusals.length).toBeGreaterThan(0);
    expect(decryptRefusals.every((r) => r.roundId.endsWith('.decrypt'))).toBe(true);
  });

  it("the logs of all eleven sites reconcile with the coordinator's: every refusal is on both sides, no charge without agreement", async () => {
    const keys = new Map<string, string>([
      ['coordinator', fed.cfg.kit.certPem],
      ...fed.cfg.sites.map((s) => [s, fed.siteCfgs[s].kit.certPem] as [string, string]),
    ]);
    const coord = parseChainLines(await fed.coordinator.store.exportAudit(fed.cfg.federationId));
    const r = reconcileAuditLogs(
      [{ name: 'coordinator', entries: coord }, ...fed.cfg.sites.map((s) => ({ name: s, entries: siteLog(s) }))],
      keys,
      { delta: 1e-6 },
    );
    expect(r.findings).toEqual([]);
    for (const s of Object.keys(CASES)) expect(r.parties[s].ownLog).toMatchObject({ charges: 0 });
    expect(r.parties['hospital-a'].rho).toBeGreaterThan(0);
  });
});
