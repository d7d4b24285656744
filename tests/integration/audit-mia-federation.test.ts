// Membership inference as a task kind of a real federation (mTLS gRPC, BFV, PGlite, real agents,
// ledgers and signed audit logs): an audited fit, in which every site holds out a CSPRNG split of
// its patients from every measure round, then one `mia-histogram` round per score on the drawn
// cohort. Each site answers under its own policy and ledger, charged at single-party ρ; a site
// whose budget cannot afford it, or whose policy does not allow the statistic, refuses, both logs
// record it, and the coordinator reports which site refused and why. The charges reconcile
// two-sided with `reconcileAuditLogs`, which also checks the release is recorded as released alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { parseChainLines, type AuditEntry, type ChargeEvent, type TaskRefusedEvent } from '../../privacy/audit-log/chain.ts';
import { reconcileAuditLogs } from '../../privacy/audit-log/reconcile.ts';
import { SCORE_HISTOGRAM_MECHANISM } from '../../privacy/dp/mechanisms.ts';
import { holdoutSize } from '../../site-agent/audit-tasks.ts';

const AUDIT = ['marginal', 'mia-histogram'];
const PATIENTS = 60;
let fed: TestFederation;
let report: FitReport;

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 4,
    patients: PATIENTS,
    plan: 'mst',
    committee: ['hospital-a', 'hospital-b', 'hospital-c'],
    threshold: 2,
    quorum: 2,
    cohortSize: 0,
    iterations: 50,
    policy: {
      'hospital-a': { allowedStatistics: AUDIT },
      'hospital-b': { allowedStatistics: AUDIT },
      // Affords the fit (ε 1 at δ 1e-9: ρ ≈ 0.011), not a histogram on top (ρ 1/8).
      'hospital-c': { allowedStatistics: AUDIT, epsilon: 1.5 },
      // hospital-d: the default policy, which does not allow the audit statistic.
    },
  });
  fed.cfg.fit.audit = { holdoutFraction: 0.5, mia: { bins: 8, sigmaSite2: { num: '4', den: '1' }, cohortRows: 300 } };
  report = await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
}, 120_000);

afterAll(async () => {
  await fed?.close();
});

const state = (s: string) => fed.siteCfgs[s].stateDir;
const siteLog = (s: string) => parseChainLines(readFileSync(join(state(s), 'audit.jsonl'), 'utf8')) as AuditEntry[];
const ledger = (s: string) =>
  readFileSync(join(state(s), 'ledger.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { roundId: string; rho: number; mechanism: string });

describe('membership inference as a task kind of a real federation', () => {
  it('every site drew and stored its holdout when the audited fit began', () => {
    for (const s of fed.cfg.sites) {
      const dir = join(state(s), 'holdout');
      expect(existsSync(dir)).toBe(true);
      const [file] = readdirSync(dir);
      const rec = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { fraction: number; heldOut: string[]; rows: number };
      expect(rec.fraction).toBe(0.5);
      expect(rec.heldOut).toHaveLength(holdoutSize(fed.siteData[s].data.rows, 0.5));
    }
  });

  it("a and b answer both rounds, charged at single-party ρ in their own ledger and signed log, countersigning the coordinator's head", async () => {
    const rho = 1 / (2 * 4); // Δ2 = 1, σ² = 4, one party: ρ = Δ²/(2σ²)
    for (const score of ['dcr', 'density'] as const) {
      const r = report.mia!.rounds[score];
      expect(r.state).toBe('released');
      expect(r.sites).toEqual(['hospital-a', 'hospital-b']);
      expect(r.rhoPerSite).toBeCloseTo(rho, 12);
      const total = r.histogram!.members.reduce((a, b) => a + b, 0) + r.histogram!.holdout.reduce((a, b) => a + b, 0);
      // Two sites' rows, plus noise of σ 2 on 32 cells (sd ≈ 11): far inside ± 120.
      expect(Math.abs(total - 2 * PATIENTS)).toBeLessThan(120);
      expect(r.stats!.auc).toBeGreaterThanOrEqual(0);
      expect(r.stats!.auc).toBeLessThanOrEqual(1);
    }
    for (const s of ['hospital-a', 'hospital-b']) {
      const mia = ledger(s).filter((l) => l.mechanism === SCORE_HISTOGRAM_MECHANISM);
      expect(mia.map((l) => l.roundId).sort()).toEqual(['mia-dcr', 'mia-density']);
      for (const l of mia) expect(l.rho).toBeCloseTo(rho, 12);
      const charges = siteLog(s)
        .filter((e) => e.event.type === 'charge' && e.event.mechanism === SCORE_HISTOGRAM_MECHANISM)
        .map((e) => e.event as ChargeEvent);
      expect(charges).toHaveLength(2);
      for (const c of charges) {
        expect(c.rho).toBeCloseTo(rho, 12);
        expect(c.coordinatorHead?.hash).toMatch(/^[0-9a-f]{64}$/);
      }
    }
    const coordCharges = (await fed.coordinator.store.chargesByRound(fed.cfg.federationId, 'mia-dcr')).map((c) => [c.siteId, c.rho]);
    expect(coordCharges).toEqual([
      ['hospital-a', rho],
      ['hospital-b', rho],
    ]);
  });

  it('c cannot afford the histogram and d does not allow it: both refuse, log it, are never charged, and the coordinator names them', () => {
    for (const score of ['dcr', 'density'] as const) {
      const refused = report.mia!.rounds[score].refused;
      expect(refused.map((r) => r.site)).toEqual(['hospital-c', 'hospital-d']);
      expect(refused[0].reason).toMatch(/^task would spend rho 0\.125 but only [\d.e-]+ of the site's total 1\.5-epsilon cap/);
      expect(refused[1].reason).toBe('statistic "mia-histogram" is not allowed by this site\'s policy (allowed: marginal)');
    }
    for (const s of ['hospital-c', 'hospital-d']) {
      const refusals = siteLog(s)
        .filter((e) => e.event.type === 'task-refused' && e.event.roundId.startsWith('mia-'))
        .map((e) => e.event as TaskRefusedEvent);
      expect(refusals.map((r) => r.roundId).sort()).toEqual(['mia-dcr', 'mia-density']);
      expect(ledger(s).some((l) => l.mechanism === SCORE_HISTOGRAM_MECHANISM)).toBe(false);
    }
    // c and d still paid for and contributed to the fit itself.
    expect(report.sitesContributed).toEqual(fed.cfg.sites);
  });

  it("the sites' logs reconcile with the coordinator's both ways, MIA rounds included", async () => {
    const keys = new Map<string, string>([
      ['coordinator', fed.cfg.kit.certPem],
      ...fed.cfg.sites.map((s) => [s, fed.siteCfgs[s].kit.certPem] as [string, string]),
    ]);
    const coord = parseChainLines(await fed.coordinator.store.exportAudit(fed.cfg.federationId)) as AuditEntry[];
    const logs = [{ name: 'coordinator', entries: coord }, ...fed.cfg.sites.map((s) => ({ name: s, entries: siteLog(s) }))];
    const r = reconcileAuditLogs(logs, keys, { delta: 1e-6 });
    expect(r.findings).toEqual([]);
    const release = r.mechanisms.find((m) => m.roundId === 'mia-dcr')!;
    expect(release).toMatchObject({ mechanism: SCORE_HISTOGRAM_MECHANISM, quorum: 1, l2Sensitivity: 1, dimension: 16 });
    expect(release.rhoRecomputed).toBeCloseTo(1 / 8, 12);

    // A release that claims the histograms were protected by every answering site's noise
    // (the under-charge of the in-process audit this replaces) is caught.
    const forged = coord.map((e) =>
      e.event.type === 'measurement-released' && e.event.roundId === 'mia-dcr' ? { ...e, event: { ...e.event, quorum: 2 } } : e,
    );
    const f = reconcileAuditLogs([{ name: 'coordinator', entries: forged }], keys, { delta: 1e-6 });
    expect(f.findings.map((x) => x.kind)).toEqual(expect.arrayContaining(['sensitivity-mismatch']));
  });
});
