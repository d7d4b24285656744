// The one-run canary audit through real site agents (mTLS gRPC, BFV, PGlite, real ledgers and
// signed audit logs): an audited fit whose measure tasks carry, for each site, only the canaries
// the auditor included there. Each site adds exactly those rows to every measure answer of the
// fit (its audit log says how many, its state folder stores their digest), is charged what a fit
// without canaries charges, and the charges reconcile two-sided. The auditor then scores the
// canaries from the released noisy marginals with the offline audit's code (scoreCanaries).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { parseChainLines, type AuditEntry, type ChargeEvent, type TaskAnsweredEvent } from '../../privacy/audit-log/chain.ts';
import { reconcileAuditLogs } from '../../privacy/audit-log/reconcile.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';
import { concatDatasets } from '../../federation/audits/sites.ts';
import { planCanaries, scoreCanaries, siteCanaryRows, type CanaryPlan } from '../../federation/audits/canary.ts';
import { fitSplit } from '../../site-agent/audit-tasks.ts';
import type { MeasureSpec } from '../../proto/task-spec.ts';

const ALLOW = ['marginal', 'canary'];
const CANARIES = 24;
let fed: TestFederation;
let report: FitReport;
let plan: CanaryPlan;
const rowsOf = (k: number) => siteCanaryRows(plan, k).map((r) => Array.from(r));

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 3,
    patients: 60,
    plan: 'mst',
    cohortSize: 0,
    iterations: 30,
    policy: Object.fromEntries(['hospital-a', 'hospital-b', 'hospital-c'].map((s) => [s, { allowedStatistics: ALLOW }])),
  });
  const sites = fed.cfg.sites;
  const real = concatDatasets(
    fed.siteData[sites[0]].data.domain,
    sites.map((s) => fed.siteData[s].data),
  );
  plan = planCanaries(real, CANARIES, sites.length, 5, seededRandomSourceForTests('canary-federation-5'));
  fed.cfg.fit.audit = { holdoutFraction: 0.1, canaries: Object.fromEntries(sites.map((s, k) => [s, rowsOf(k)])) };
  report = await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
}, 120_000);

afterAll(async () => {
  await fed?.close();
});

const state = (s: string) => fed.siteCfgs[s].stateDir;
const siteLog = (s: string) => parseChainLines(readFileSync(join(state(s), 'audit.jsonl'), 'utf8')) as AuditEntry[];

describe('the canary audit through real site agents', () => {
  it('the seeded plan puts canaries at every site (else this test would check nothing there)', () => {
    for (let k = 0; k < 3; k++) expect(rowsOf(k).length).toBeGreaterThan(0);
    expect(plan.included.filter(Boolean).length).toBe([0, 1, 2].reduce((a, k) => a + rowsOf(k).length, 0));
  });

  it("each site's measure tasks carry exactly its own included canaries, never another site's", async () => {
    const measureRounds = report.rounds.map((r) => r.roundId);
    expect(measureRounds.length).toBeGreaterThan(0);
    for (const roundId of measureRounds) {
      const tasks = await fed.coordinator.store.listTasks(fed.cfg.federationId, roundId);
      expect(tasks).toHaveLength(3);
      for (const t of tasks) {
        const spec = (t.spec as { measure: MeasureSpec }).measure;
        expect(spec.canaryRows).toEqual(rowsOf(fed.cfg.sites.indexOf(t.siteId)));
      }
    }
  });

  it('each site added exactly its canary rows to every measure answer of the fit, logged the count and stored their digest', () => {
    fed.cfg.sites.forEach((s, k) => {
      const log = siteLog(s).map((e) => e.event);
      const charged = new Set(log.filter((e): e is ChargeEvent => e.type === 'charge').map((e) => e.taskId));
      const answers = log.filter((e): e is TaskAnsweredEvent => e.type === 'task-answered' && charged.has(e.taskId));
      expect(answers).toHaveLength(report.rounds.length);
      for (const a of answers) expect(a.canaryRows).toBe(rowsOf(k).length);
      const dir = join(state(s), 'canaries');
      const rec = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as { rows: number; sha256: string };
      expect(rec.rows).toBe(rowsOf(k).length);
      expect(rec.sha256).toBe(
        createHash('sha256')
          .update(JSON.stringify(rowsOf(k)))
          .digest('hex'),
      );
    });
  });

  it("canaries change no charge: each site's ledger matches the coordinator's charges and the rounds' ρ, reconciled both ways", async () => {
    const keys = new Map<string, string>([
      ['coordinator', fed.cfg.kit.certPem],
      ...fed.cfg.sites.map((s) => [s, fed.siteCfgs[s].kit.certPem] as [string, string]),
    ]);
    const coord = parseChainLines(await fed.coordinator.store.exportAudit(fed.cfg.federationId)) as AuditEntry[];
    const logs = [{ name: 'coordinator', entries: coord }, ...fed.cfg.sites.map((s) => ({ name: s, entries: siteLog(s) }))];
    const r = reconcileAuditLogs(logs, keys, { delta: 1e-6 });
    expect(r.findings).toEqual([]);
    const charges = await fed.coordinator.store.chargesByRound(fed.cfg.federationId);
    for (const s of fed.cfg.sites) {
      const ledger = readFileSync(join(state(s), 'ledger.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { roundId: string; rho: number });
      const theirs = charges.filter((c) => c.siteId === s).map((c) => [c.roundId, c.rho]);
      expect(ledger.map((l) => [l.roundId, l.rho])).toEqual(theirs);
      // Each charge is the round's planned ρ: the canaries neither add noise nor a charge.
      for (const round of report.rounds) expect(theirs).toContainEqual([round.roundId, round.rho]);
    }
  });

  it("the auditor scores the canaries from the released marginals, knowing every member's record", async () => {
    const members = fed.cfg.sites.map(
      (s) => fitSplit({ stateDir: state(s), federationId: fed.cfg.federationId, ...fed.siteData[s] }, undefined, false)!.members,
    );
    const real = concatDatasets(members[0].domain, members);
    // The holdout (10 %) is out of the input: the attacker's baseline is the members only.
    expect(real.rows).toBeLessThan(180);
    const released = (await fed.coordinator.store.listMeasurements(fed.cfg.federationId)).map((m) => ({
      attrs: m.attrs,
      values: Float64Array.from(m.values),
      sigma: m.sigmaTotal,
    }));
    const s = scoreCanaries(real, plan, released, null, { epsilon: fed.cfg.fit.epsilon, delta: fed.cfg.fit.delta });
    expect(s.fromMeasurements.m).toBe(CANARIES);
    expect(s.fromMeasurements.r).toBe(2 * Math.floor(CANARIES / 4));
    expect(s.fromMeasurements.v).toBeLessThanOrEqual(s.fromMeasurements.r);
    expect(Number.isFinite(s.fromMeasurements.epsilonLower)).toBe(true);
    expect(s.fromCohort).toBeNull();
  });
});
