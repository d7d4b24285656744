// Membership inference on a released cohort with a held-out control set; the distances to real
// records are computed at each site and leave it only as a noised histogram charged to the
// site's own ledger (and signed audit log); an over-budget request is refused and logged.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditData, type AuditData } from '../../cli/audit/data.ts';
import { runMiaWithLedgers } from '../../cli/audit/mia.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';
import { DCR_MECHANISM, ScoreHistogramRefused } from '../../site-agent/dcr.ts';
import { parseChainLines, type AuditEntry } from '../../privacy/audit-log/chain.ts';

let data: AuditData;
beforeAll(async () => {
  data = await auditData({ sites: 3, patients: 300, seed: 4 });
}, 60_000);

describe('membership inference audit', () => {
  it('reports AUC and advantage for DCR and density attacks from site-noised histograms, charged to each site', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedsynth-mia-'));
    try {
      const r = await runMiaWithLedgers(data, {
        epsilon: 1,
        delta: 1e-9,
        seed: 5,
        cohortRows: 1500,
        stateDir: dir,
        random: seededRandomSourceForTests('mia-5'),
      });
      expect(r.members + r.holdout).toBe(900);
      for (const kind of ['dcr', 'density'] as const) {
        const a = r.attacks[kind];
        expect(a.auc).toBeGreaterThanOrEqual(0);
        expect(a.auc).toBeLessThanOrEqual(1);
        // At ε = 1 the attacks are near chance (noise on the histogram included).
        expect(Math.abs(a.auc - 0.5)).toBeLessThan(0.15);
        expect(a.advantage).toBeLessThan(0.3);
        expect(a.histogram.members).toHaveLength(r.bins);
        // Δ2 = 1 and σ² = 4: each site's histogram reaches the auditor alone, so it is charged for
        // its own noise (1/(2·4)), not for the three sites' noise the auditor's sum carries (1/(2·3·4)).
        expect(a.rhoPerSite).toBeCloseTo(1 / (2 * 4), 12);
      }
      for (const s of data.sites) {
        expect(r.spend[s.id].charges).toBe(2);
        expect(r.spend[s.id].rho).toBeCloseTo(2 / 8, 12);
        const log = parseChainLines(readFileSync(join(dir, s.id, 'audit.jsonl'), 'utf8')) as AuditEntry[];
        const charges = log.filter((e) => e.event.type === 'charge');
        expect(charges.map((e) => (e.event as { mechanism?: string }).mechanism)).toEqual([DCR_MECHANISM, DCR_MECHANISM]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a site whose budget cannot cover the histogram refuses it and logs the refusal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedsynth-mia-'));
    try {
      await expect(
        runMiaWithLedgers(data, { epsilon: 1, delta: 1e-9, seed: 6, cohortRows: 500, stateDir: dir, policy: { epsilon: 0.01 } }),
      ).rejects.toThrow(ScoreHistogramRefused);
      const log = parseChainLines(readFileSync(join(dir, data.sites[0].id, 'audit.jsonl'), 'utf8')) as AuditEntry[];
      const refusal = log.find((e) => e.event.type === 'task-refused');
      expect((refusal?.event as { reason: string }).reason).toMatch(/site's total 0.01-epsilon cap/);
      expect(log.some((e) => e.event.type === 'charge')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
