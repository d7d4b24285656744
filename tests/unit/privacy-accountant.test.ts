import { describe, expect, it } from 'vitest';
import {
  composeRho,
  deltaFromRhoEpsilon,
  epsilonFromRho,
  planDistributedNoise,
  rhoDistributedDiscreteGaussian,
  rhoFromEpsilonDelta,
  rhoGaussian,
  rhoGaussianFromSigma2,
  sigmaSite2ForRho,
} from '../../privacy/dp/accountant.ts';
import { rational, rationalToNumber } from '../../privacy/dp/rational.ts';

const sig6 = (x: number): string => x.toPrecision(6);

describe('zCDP composition and Gaussian ρ', () => {
  it('composes by summation and keeps small charges', () => {
    expect(composeRho([])).toBe(0);
    expect(composeRho([0.1, 0.2, 0.3])).toBeCloseTo(0.6, 15);
    expect(composeRho([1, ...new Array(1000).fill(1e-17)])).toBeGreaterThan(1);
    expect(() => composeRho([-1])).toThrow();
    expect(() => composeRho([NaN])).toThrow();
  });
  it('rhoGaussian = Δ²/(2σ²)', () => {
    expect(rhoGaussian(1, 1)).toBe(0.5);
    expect(rhoGaussian(2, 4)).toBe(0.125);
    expect(rhoGaussianFromSigma2(1, rational(25n, 4n))).toBe(0.08);
    expect(() => rhoGaussian(1, 0)).toThrow();
  });
});

describe('CKS ρ ↔ (ε, δ) conversion', () => {
  it('matches the published values (ε=1, δ=1e-9) → ρ=0.0149731 and (ε=1, δ=1e-6) → ρ=0.0243560', () => {
    expect(sig6(rhoFromEpsilonDelta(1, 1e-9))).toBe('0.0149731');
    expect(sig6(rhoFromEpsilonDelta(1, 1e-6))).toBe('0.0243560');
  });

  it("matches OpenDP's zCDP_to_approxDP test values (ρ = (1/4)²/2)", () => {
    // opendp src/combinators/measure_cast/zCDP_to_approxDP/test.rs:
    //   cdp_epsilon(ρ, 1e-3) = 0.6880024554878086; δ(ε=0) = 0.1508457845622862
    const rho = 0.25 ** 2 / 2;
    expect(epsilonFromRho(rho, 1e-3)).toBeCloseTo(0.6880024554878086, 12);
    expect(deltaFromRhoEpsilon(rho, 0)).toBeCloseTo(0.1508457845622862, 12);
    expect(deltaFromRhoEpsilon(rho, 0.6880024554878086)).toBeCloseTo(1e-3, 12);
  });

  it('is tighter than the classic ε = ρ + 2√(ρ log(1/δ)) bound and round-trips', () => {
    for (const rho of [1e-4, 0.01, 0.5, 3, 50]) {
      for (const delta of [1e-12, 1e-9, 1e-6, 1e-2]) {
        const eps = epsilonFromRho(rho, delta);
        expect(eps).toBeLessThanOrEqual(rho + 2 * Math.sqrt(rho * Math.log(1 / delta)) + 1e-12);
        if (eps === 0) {
          // Tiny ρ with large δ: (0, δ)-DP already holds.
          expect(deltaFromRhoEpsilon(rho, 0)).toBeLessThanOrEqual(delta * (1 + 1e-9));
          continue;
        }
        // δ(ρ, ε(ρ, δ)) ≈ δ: both are the same inf over α.
        expect(Math.abs(Math.log(deltaFromRhoEpsilon(rho, eps)) - Math.log(delta))).toBeLessThan(1e-6);
        const back = rhoFromEpsilonDelta(eps, delta);
        expect(Math.abs(back - rho) / rho).toBeLessThan(1e-9);
        expect(epsilonFromRho(back, delta)).toBeLessThanOrEqual(eps);
      }
    }
  });

  it('is monotone and handles edges', () => {
    expect(epsilonFromRho(0, 1e-9)).toBe(0);
    expect(deltaFromRhoEpsilon(0, 1)).toBe(0);
    expect(rhoFromEpsilonDelta(0, 1e-9)).toBe(0);
    expect(epsilonFromRho(0.02, 1e-9)).toBeGreaterThan(epsilonFromRho(0.01, 1e-9));
    expect(deltaFromRhoEpsilon(0.1, 1)).toBeLessThan(deltaFromRhoEpsilon(0.1, 0.5));
    expect(() => epsilonFromRho(1, 0)).toThrow();
    expect(() => epsilonFromRho(1, 1)).toThrow();
    expect(() => epsilonFromRho(-1, 1e-6)).toThrow();
  });
});

describe('distributed discrete Gaussian (Kairouz–Liu–Steinke 2021)', () => {
  it('one party is exactly the discrete Gaussian Δ²/(2σ²)', () => {
    expect(rhoDistributedDiscreteGaussian({ l2Sensitivity: 1, l1Sensitivity: 1, sigmaSite2: 4, parties: 1, dimension: 100 })).toBe(1 / 8);
  });

  it('n parties with large σ behave like one Gaussian of variance nσ²', () => {
    const rho = rhoDistributedDiscreteGaussian({
      l2Sensitivity: 1,
      l1Sensitivity: 1,
      sigmaSite2: rational(100n),
      parties: 5,
      dimension: 10_000,
    });
    expect(rho).toBeCloseTo(1 / (2 * 500), 15); // τ ≈ 10·Σ e^{−987·…} underflows to 0
  });

  it('charges for τ when σ is small, never less than the Gaussian term, and the minimum is taken', () => {
    const p = { l2Sensitivity: 1, l1Sensitivity: 2, sigmaSite2: 0.5, parties: 10, dimension: 50 };
    const n = 10;
    let tau = 0;
    for (let k = 1; k < n; k++) tau += Math.exp((-2 * Math.PI ** 2 * 0.5 * k) / (k + 1));
    tau *= 10;
    const a = 1 / (n * 0.5);
    const expected = Math.min(
      a / 2 + tau * 50,
      (a + (2 * 2 * tau) / Math.sqrt(n * 0.5) + tau * tau * 50) / 2,
      (Math.sqrt(a) + tau * Math.sqrt(50)) ** 2 / 2,
    );
    const rho = rhoDistributedDiscreteGaussian(p);
    expect(rho).toBeCloseTo(expected, 14);
    expect(rho).toBeGreaterThan(a / 2);
    // Never looser than Theorem 1's second branch ½(Δ1/(√n σ) + τ√d)².
    expect(rho).toBeLessThanOrEqual((2 / Math.sqrt(n * 0.5) + tau * Math.sqrt(50)) ** 2 / 2 + 1e-15);
    expect(() => rhoDistributedDiscreteGaussian({ ...p, sigmaSite2: 0.2 })).toThrow(/1\/4/);
    expect(() => rhoDistributedDiscreteGaussian({ ...p, parties: 0 })).toThrow();
  });

  it('planner: σ² meets the target, is nearly minimal, and the charge is recomputed from the exact rational', () => {
    const base = { l2Sensitivity: Math.SQRT2, l1Sensitivity: 2, parties: 3, dimension: 4096 };
    for (const targetRho of [1e-4, 0.005, 0.05, 1]) {
      const s2 = sigmaSite2ForRho({ ...base, targetRho });
      expect(rhoDistributedDiscreteGaussian({ ...base, sigmaSite2: s2 })).toBeLessThanOrEqual(targetRho);
      if (s2 > 0.25) expect(rhoDistributedDiscreteGaussian({ ...base, sigmaSite2: s2 * (1 - 1e-6) })).toBeGreaterThan(targetRho);
      const plan = planDistributedNoise({ ...base, targetRho });
      expect(plan.sigmaSite2.den <= 1024n).toBe(true);
      expect(rationalToNumber(plan.sigmaSite2)).toBeGreaterThanOrEqual(s2);
      expect(plan.rho).toBeLessThanOrEqual(targetRho);
      expect(plan.rho).toBe(rhoDistributedDiscreteGaussian({ ...base, sigmaSite2: plan.sigmaSite2 }));
    }
    // Gaussian regime sanity: 3 parties, Δ2 = √2, ρ = 0.01 → σ² ≈ 2/(2·3·0.01) = 33.3.
    expect(sigmaSite2ForRho({ ...base, targetRho: 0.01 })).toBeCloseTo(100 / 3, 6);
  });
});
