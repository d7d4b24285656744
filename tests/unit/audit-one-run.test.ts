// The one-run audit statistics (Steinke–Nasr–Jagielski 2023) against values computed
// independently: exact binomial sums with bigint coefficients, closed forms, and the authors'
// reference procedure (p_value_DP_audit / get_eps_audit, run with scipy to produce the constants).
import { describe, expect, it } from 'vitest';
import {
  binomialPmf,
  binomialSf,
  guessTopBottom,
  oneRunAudit,
  oneRunEpsilonLowerBound,
  oneRunPValue,
} from '../../privacy/empirical/one-run.ts';
import { Rng } from '../../model/rng.ts';

function choose(n: number, k: number): bigint {
  let c = 1n;
  for (let i = 0; i < k; i++) c = (c * BigInt(n - i)) / BigInt(i + 1);
  return c;
}
const exactPmf = (k: number, n: number, q: number) => Number(choose(n, k)) * q ** k * (1 - q) ** (n - k);
function bruteP(m: number, r: number, v: number, eps: number, delta: number): number {
  const q = Math.exp(eps) / (1 + Math.exp(eps));
  let beta = 0;
  for (let j = v; j <= r; j++) beta += exactPmf(j, r, q);
  let alpha = 0;
  for (let i = 1; i <= v; i++) {
    let s = 0;
    for (let j = v - i; j < v; j++) s += exactPmf(j, r, q);
    alpha = Math.max(alpha, s / i);
  }
  return Math.min(1, beta + 2 * m * delta * alpha);
}

describe('binomial sums', () => {
  it('pmf and tail agree with exact bigint-coefficient sums', () => {
    for (const [n, q] of [
      [10, 0.3],
      [25, 0.5],
      [40, 0.9],
      [60, 0.73],
    ] as const) {
      let total = 0;
      for (let k = 0; k <= n; k++) {
        expect(binomialPmf(k, n, q)).toBeCloseTo(exactPmf(k, n, q), 12);
        total += binomialPmf(k, n, q);
        let tail = 0;
        for (let j = k; j <= n; j++) tail += exactPmf(j, n, q);
        expect(Math.abs(binomialSf(k, n, q) - tail)).toBeLessThan(1e-12);
      }
      expect(total).toBeCloseTo(1, 12);
    }
  });
});

describe('one-run p-value and ε lower bound', () => {
  it('p-value equals the brute-force formula, with and without δ', () => {
    for (const [m, r, v, eps, delta] of [
      [10, 10, 10, 1, 0],
      [20, 12, 9, 0.5, 0.001],
      [50, 20, 12, 1.5, 0.01],
      [30, 30, 25, 2, 1e-5],
    ] as const) {
      expect(oneRunPValue(m, r, v, eps, delta)).toBeCloseTo(bruteP(m, r, v, eps, delta), 12);
    }
  });

  it('all-correct guesses with δ = 0 have the closed form ε = logit(β^(1/r))', () => {
    for (const r of [5, 10, 40]) {
      const q = 0.05 ** (1 / r);
      expect(oneRunEpsilonLowerBound(r, r, r, 0)).toBeCloseTo(Math.log(q / (1 - q)), 7);
    }
    expect(oneRunEpsilonLowerBound(10, 10, 10, 0)).toBeCloseTo(1.0518732331693172, 7);
  });

  it("matches the authors' reference procedure (scipy) on larger cases", () => {
    const cases: [number, number, number, number, number][] = [
      [1000, 600, 600, 1e-5, 5.270399462431669],
      [100, 100, 100, 1e-5, 3.490215953439474],
      [200, 100, 90, 1e-9, 1.6308230981230736],
      [1000, 200, 150, 1e-6, 0.8212544862180948],
      [50, 20, 12, 0.01, 0],
    ];
    for (const [m, r, v, delta, want] of cases) expect(oneRunEpsilonLowerBound(m, r, v, delta)).toBeCloseTo(want, 6);
  });

  it('is monotone: more correct guesses never lower the bound; chance-level guessing gives 0', () => {
    let last = 0;
    for (let v = 50; v <= 100; v += 5) {
      const e = oneRunEpsilonLowerBound(200, 100, v, 1e-9);
      expect(e).toBeGreaterThanOrEqual(last);
      last = e;
    }
    expect(oneRunEpsilonLowerBound(200, 100, 50, 1e-9)).toBe(0);
    expect(() => oneRunEpsilonLowerBound(10, 11, 5, 0)).toThrow(RangeError);
  });

  it('top/bottom guessing counts correct guesses; randomized response at ε = 1 is rarely over-claimed', () => {
    const g = guessTopBottom([5, 1, 3, 9, 0, 2], [true, false, false, true, true, false], 2, 2);
    expect(Array.from(g.guesses)).toEqual([1, -1, 0, 1, -1, 0]);
    expect(g).toMatchObject({ r: 4, v: 3 });

    // ε-DP randomized response on each canary's bit: the 95% bound must exceed ε in ≤ ~5% of runs.
    const rng = new Rng('rr');
    const eps = 1;
    const keep = Math.exp(eps) / (1 + Math.exp(eps));
    let over = 0;
    const runs = 40;
    for (let t = 0; t < runs; t++) {
      const m = 500;
      const included = Array.from({ length: m }, () => rng.next() < 0.5);
      const scores = included.map((b) => (rng.next() < keep === b ? 1 : 0) + rng.next() * 1e-3);
      const res = oneRunAudit(scores, included, { kPlus: 100, kMinus: 100, delta: 0 });
      if (res.epsilonLower > eps) over++;
    }
    expect(over).toBeLessThanOrEqual(6);
  });
});
