// The one mechanism definition: sensitivity from the contribution bound under the neighbouring
// relation, ρ per round, the per-site noise plan; and a scan that no other module re-derives them.
import { describe, expect, it } from 'vitest';
import { code, sources } from '../support/sources.ts';
import {
  answerSensitivity,
  fitRhoBudget,
  marginalsSensitivity,
  mechanismRecord,
  NEIGHBOURING_RELATION,
  planRoundNoise,
  privacyUnit,
  releasedSigma,
  roundRho,
} from '../../privacy/dp/mechanisms.ts';
import { rhoDistributedDiscreteGaussian, rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';
import { rational, rationalToNumber } from '../../privacy/dp/rational.ts';

describe('sensitivity from the contribution bound', () => {
  it('add/remove one patient: m marginals give Δ2 = √m, Δ1 = m; a histogram Δ2 = Δ1 = 1', () => {
    expect(NEIGHBOURING_RELATION).toBe('add-remove');
    expect(marginalsSensitivity(7)).toEqual({ l2Sensitivity: Math.sqrt(7), l1Sensitivity: 7 });
    expect(answerSensitivity(1)).toEqual({ l2Sensitivity: 1, l1Sensitivity: 1 });
    expect(privacyUnit()).toBe('patient (add/remove)');
  });

  it('replace-one doubles the cells one patient moves: Δ1 × 2, Δ2 × √2', () => {
    for (const m of [1, 3, 14]) {
      const a = marginalsSensitivity(m, 'add-remove');
      const r = marginalsSensitivity(m, 'replace-one');
      expect(r.l1Sensitivity).toBe(2 * a.l1Sensitivity);
      expect(r.l2Sensitivity).toBeCloseTo(Math.SQRT2 * a.l2Sensitivity, 14);
    }
    expect(privacyUnit('replace-one')).toBe('patient (replace one)');
  });

  it('switching the relation changes the plan and the site charge together', () => {
    const shape = { cellsPerRow: 5, dimension: 120, parties: 3 };
    const add = planRoundNoise({ ...shape, targetRho: 0.004 }, 'add-remove');
    const rep = planRoundNoise({ ...shape, targetRho: 0.004 }, 'replace-one');
    // ρ ∝ Δ2²/σ² at this σ (the τ terms vanish), so the same ρ needs twice the variance.
    expect(rationalToNumber(rep.sigmaSite2) / rationalToNumber(add.sigmaSite2)).toBeCloseTo(2, 3);
    // The site recomputes exactly the planned ρ under the same relation …
    expect(roundRho({ ...shape, sigmaSite2: rep.sigmaSite2 }, 'replace-one')).toBe(rep.rho);
    expect(roundRho({ ...shape, sigmaSite2: add.sigmaSite2 })).toBe(add.rho);
    // … and the add/remove noise would be under-sized for replace-one neighbours.
    expect(roundRho({ ...shape, sigmaSite2: add.sigmaSite2 }, 'replace-one')).toBeGreaterThan(1.99 * add.rho);
    expect(rep.l1Sensitivity).toBe(10);
  });

  it('rejects a contribution bound that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) expect(() => answerSensitivity(bad)).toThrow(/cellsPerRow/);
    expect(() => releasedSigma(rational(4n, 1n), 0)).toThrow(/contributors/);
    expect(() => releasedSigma(rational(4n, 1n), 2.5)).toThrow(/contributors/);
  });
});

describe('ρ per round and the noise plan', () => {
  it('the plan meets the target with an exact rational σ² rounded up, and ρ is the accountant’s', () => {
    const noise = planRoundNoise({ cellsPerRow: 3, dimension: 40, parties: 3, targetRho: 0.0173 });
    expect(noise.rho).toBeLessThanOrEqual(0.0173);
    expect(noise.rho).toBeGreaterThan(0.0173 * 0.99);
    expect(1024n % noise.sigmaSite2.den).toBe(0n);
    expect(noise).toMatchObject({ l2Sensitivity: Math.sqrt(3), l1Sensitivity: 3, dimension: 40, parties: 3 });
    expect(noise.rho).toBe(
      rhoDistributedDiscreteGaussian({
        l2Sensitivity: Math.sqrt(3),
        l1Sensitivity: 3,
        sigmaSite2: noise.sigmaSite2,
        parties: 3,
        dimension: 40,
      }),
    );
    expect(releasedSigma(noise.sigmaSite2, 4)).toBeCloseTo(Math.sqrt(4 * rationalToNumber(noise.sigmaSite2)), 12);
    expect(fitRhoBudget(1, 1e-9)).toBe(rhoFromEpsilonDelta(1, 1e-9));
  });

  it('the recorded mechanism carries what an auditor needs to recompute ρ', () => {
    const noise = planRoundNoise({ cellsPerRow: 2, dimension: 10, parties: 2, targetRho: 0.01 });
    const rec = mechanismRecord(noise, 3);
    expect(rec).toMatchObject({
      name: 'distributed-discrete-gaussian',
      unit: 'patient (add/remove)',
      parties: 2,
      contributors: 3,
      dimension: 10,
    });
    expect(rec.sigmaSite2).toEqual({ num: noise.sigmaSite2.num.toString(), den: noise.sigmaSite2.den.toString() });
  });
});

describe('nothing else re-derives the mechanism', () => {
  const files = ['privacy', 'federation', 'site-agent', 'coordinator', 'cli', 'bench', 'model'].flatMap(sources);
  const read = code;

  it('the relation is one line of privacy/dp/mechanisms.ts', () => {
    const src = read('privacy/dp/mechanisms.ts');
    expect(src.match(/export const NEIGHBOURING_RELATION: NeighbouringRelation = '(add-remove|replace-one)';/g)).toHaveLength(1);
  });

  it('noise planning and the distributed-Gaussian ρ are called only through mechanisms.ts', () => {
    // The reconciler recomputes ρ from the sensitivities a release RECORDED (to check them).
    const allowed: Record<string, RegExp> = {
      'privacy/dp/accountant.ts': /./,
      'privacy/dp/mechanisms.ts': /./,
      'privacy/audit-log/reconcile.ts': /rhoDistributedDiscreteGaussian/,
    };
    const offenders: string[] = [];
    for (const f of files) {
      const src = read(f);
      for (const fn of ['planDistributedNoise', 'rhoDistributedDiscreteGaussian', 'sigmaSite2ForRho']) {
        if (new RegExp(`\\b${fn}\\s*\\(`).test(src) && !allowed[f]?.test(fn)) offenders.push(`${f}: ${fn}`);
      }
      if (/l[12]Sensitivity:\s*(Math\.sqrt\(|[a-z]+\.marginals\.length|m\b)/.test(src) && f !== 'privacy/dp/mechanisms.ts')
        offenders.push(`${f}: derives a sensitivity`);
      if (/Math\.sqrt\([^)]*marginals\.length/.test(src)) offenders.push(`${f}: √(number of marginals)`);
    }
    expect(offenders).toEqual([]);
  });

  it('the fit budget from (ε, δ) is derived in one place (sites convert only their own caps)', () => {
    const users = files.filter((f) => /\brhoFromEpsilonDelta\s*\(/.test(read(f)));
    expect(users.sort()).toEqual(['privacy/dp/accountant.ts', 'privacy/dp/mechanisms.ts', 'site-agent/policy-file.ts']);
  });
});
