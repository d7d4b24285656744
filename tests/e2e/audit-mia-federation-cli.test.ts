// `fedsynth audit mia --federation` as an auditor runs it: the CLI in its own process provisions a
// temporary federation (cli/audit/audited-federation.ts `withAuditFederation`, as the canary audit
// does: tests/e2e/audit-federation-cli.test.ts covers its failure paths) and runs the coordinator
// and one agent per site as further processes over gRPC with mutual TLS; each site answers the
// audited fit and one noised score histogram per statistic under its own policy and ledger.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MiaFederationReport } from '../../cli/audit/mia-federation.ts';
import { leftInTmp, runCliWithOwnTmp } from '../support/cli-process.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-audit-mia-cli-'));

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fedsynth audit mia --federation, as separate processes', () => {
  it('runs the audited fit and both histogram rounds, writes AUC and advantage in range, exits 0 and leaves no temporary folder', async () => {
    const out = join(root, 'mia.json');
    // Each site can afford the fit (ε 1) and both histograms (ρ 1/128 each at σ² 64) under its ε 2 cap:
    // no round can fail for budget, so exit 0 is not a matter of chance.
    const r = await runCliWithOwnTmp(root, [
      'audit',
      'mia',
      '--federation',
      ...['--sites', '2', '--patients', '150', '--cohort', '300', '--seed', '3', '--out', out],
    ]);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as MiaFederationReport;
    expect(report).toMatchObject({ claimedEpsilon: 1, sites: 2, cohortRows: 300, bins: 8, histogramSigmaSite: 8 });
    expect(report.work).toBeUndefined();
    for (const score of ['dcr', 'density'] as const) {
      const round = report.federation.rounds[score];
      expect(round.state, score).toBe('released');
      expect(round.refused).toEqual([]);
      expect([...round.sites].sort()).toEqual(['hospital-a', 'hospital-b']);
      expect(round.rhoPerSite).toBeCloseTo(1 / 128, 15);
      const a = report.attacks[score];
      for (const v of [a.auc, a.advantage]) {
        expect(Number.isFinite(v), score).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(r.stdout).toContain(
        `${score}: AUC ${a.auc.toFixed(3)}, advantage ${a.advantage.toFixed(3)} (2 site(s) charged ρ 0.00781 each)`,
      );
    }
    // Each site: the fit's measure rounds plus the two histograms, within its ε 2 cap (δ of the report).
    for (const site of ['hospital-a', 'hospital-b']) {
      const s = report.spend[site];
      expect(s.epsilon, site).toBeGreaterThan(1);
      expect(s.epsilon).toBeLessThan(2);
    }
    expect(r.stdout).toMatch(/written to /);
    expect(leftInTmp(r.tmp)).toEqual([]);
  }, 180_000);
});
