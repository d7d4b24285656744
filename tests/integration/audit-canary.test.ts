// The one-run canary audit on the one fit loop (plan, noise sizing, each site's exact discrete
// Gaussian share through the production site path; seeded so the run is reproducible): with the noise switched off (test-only hook) the audit must catch it with an
// ε lower bound far above the claimed ε; with the noise on, ε_lower stays ≤ the claimed ε.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditData, type AuditData } from '../../cli/audit/data.ts';
import { runAuditCanary } from '../../cli/audit/canary.ts';
import { runCanaryAudit } from '../../federation/audits/canary.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';

let data: AuditData;
beforeAll(async () => {
  data = await auditData({ sites: 3, patients: 400, seed: 1 });
}, 60_000);

describe('canary audit (Steinke–Nasr–Jagielski one-run)', () => {
  it('without noise, the measurement attacker guesses every canary and ε_lower is far above the claimed ε', async () => {
    const r = await runCanaryAudit(data, {
      canaries: 200,
      epsilon: 1,
      delta: 1e-9,
      seed: 2,
      cohortRows: 5000,
      random: seededRandomSourceForTests('canary-off-2'),
      unsafeDisableNoiseForAudit: true,
    });
    expect(r.noise).toMatch(/^off/);
    expect(r.fromMeasurements.r).toBe(100);
    expect(r.fromMeasurements.v).toBe(100);
    expect(r.fromMeasurements.epsilonLower).toBeGreaterThan(3 * r.claimedEpsilon);
    expect(r.passed).toBe(false);
  });

  it('with the real noise, ε_lower ≤ claimed ε (from the measurements and from the cohort)', async () => {
    const r = await runCanaryAudit(data, {
      canaries: 200,
      epsilon: 1,
      delta: 1e-9,
      seed: 3,
      cohortRows: 5000,
      random: seededRandomSourceForTests('canary-on-3'),
    });
    expect(r.noise).toBe('on');
    expect(r.fromMeasurements.epsilonLower).toBeLessThanOrEqual(1);
    expect(r.fromCohort!.epsilonLower).toBeLessThanOrEqual(1);
    expect(r.passed).toBe(true);
    expect(r.rhoSpent).toBeGreaterThan(0);
  });

  it('fedsynth audit canary writes its result and exits 0 when the bound holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedsynth-canary-'));
    try {
      const out = join(dir, 'canary.json');
      const code = await runAuditCanary(['--patients', '200', '--sites', '2', '--canaries', '100', '--cohort', '2000', '--out', out]);
      const res = JSON.parse(readFileSync(out, 'utf8'));
      expect(code).toBe(res.passed ? 0 : 1);
      expect(res).toMatchObject({ claimedEpsilon: 1, canaries: 100, sites: 2, noise: 'on' });
      expect(res.fromMeasurements.epsilonLower).toBeLessThanOrEqual(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
