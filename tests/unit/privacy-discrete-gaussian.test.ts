import { describe, expect, it } from 'vitest';
import {
  DiscreteGaussianSampler,
  bernoulliExpMinus,
  discreteGaussianPmf,
  discreteGaussianVariance,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianVector,
} from '../../privacy/dp/discrete-gaussian.ts';
import { RandomReader, seededRandomSourceForTests } from '../../privacy/random.ts';
import { rational, rationalFromNumber } from '../../privacy/dp/rational.ts';

function chi2Crit(df: number): number {
  const z = 3.09; // upper 0.1%
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

describe('Bernoulli(exp(−γ))', () => {
  it.each([
    [0n, 1n],
    [1n, 3n],
    [1n, 1n],
    [5n, 2n],
    [7n, 3n],
  ])('γ = %s/%s has rate exp(−γ)', (num, den) => {
    const r = new RandomReader(seededRandomSourceForTests(`bexp${num}/${den}`));
    const N = 40_000;
    let hits = 0;
    for (let i = 0; i < N; i++) if (bernoulliExpMinus(num, den, r)) hits++;
    const p = Math.exp(-Number(num) / Number(den));
    expect(Math.abs(hits / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N) + 1e-9);
  });

  it('works with a huge denominator (bigint path)', () => {
    const r = new RandomReader(seededRandomSourceForTests('bexp-big'));
    const den = 10n ** 30n;
    const num = den / 2n; // γ = 1/2
    let hits = 0;
    const N = 20_000;
    for (let i = 0; i < N; i++) if (bernoulliExpMinus(num, den, r)) hits++;
    const p = Math.exp(-0.5);
    expect(Math.abs(hits / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
  });
});

describe('discrete Gaussian sampler', () => {
  it('exact variance helper matches known values', () => {
    // For σ ≥ 2 the discrete Gaussian's variance is σ² to within 1e-10 relative (CKS Prop 19-ish).
    expect(discreteGaussianVariance(100)).toBeCloseTo(100, 8);
    // For small σ it is strictly smaller than σ².
    expect(discreteGaussianVariance(0.25)).toBeLessThan(0.25);
    let s = 0;
    for (let x = -50; x <= 50; x++) s += discreteGaussianPmf(4, x);
    expect(s).toBeCloseTo(1, 12);
  });

  it('σ = 10: 100k samples in a few seconds of CPU, mean, variance, tails, chi-square', () => {
    const sigma2 = rational(100n);
    const sampler = new DiscreteGaussianSampler(sigma2, seededRandomSourceForTests('dg-10'));
    const N = 100_000;
    // CPU time, not wall time: a loaded CI box (12 s wall seen at load 15) delays the test without
    // making the sampler do more work. The bound only catches a sampler gone super-linear (≈1 s here).
    const cpu0 = process.cpuUsage();
    const v = sampler.sampleVector(N);
    const cpu = process.cpuUsage(cpu0);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(10_000);
    let m = 0;
    for (const x of v) m += Number(x);
    m /= N;
    let q = 0;
    for (const x of v) q += (Number(x) - m) ** 2;
    q /= N - 1;
    const exactVar = discreteGaussianVariance(100);
    expect(Math.abs(m)).toBeLessThan(5 * Math.sqrt(exactVar / N));
    // Var of the sample variance ≈ 2σ⁴/N → sd ≈ 0.447 at σ²=100, N=1e5.
    expect(Math.abs(q - exactVar)).toBeLessThan(5 * Math.sqrt((2 * exactVar * exactVar) / N));

    // Tails: P[|X| ≥ 2σ] and P[|X| ≥ 3σ] against the exact pmf.
    for (const k of [20, 30]) {
      let pTail = 0;
      for (let x = k; x < 400; x++) pTail += 2 * discreteGaussianPmf(100, x);
      let cnt = 0;
      for (const x of v) if (x >= BigInt(k) || x <= BigInt(-k)) cnt++;
      expect(Math.abs(cnt / N - pTail)).toBeLessThan(5 * Math.sqrt((pTail * (1 - pTail)) / N));
    }

    // Chi-square on the central support [−25, 25], the rest pooled into one bin.
    const lo = -25;
    const hi = 25;
    const counts = new Array(hi - lo + 2).fill(0);
    for (const x of v) {
      const n = Number(x);
      counts[n < lo || n > hi ? hi - lo + 1 : n - lo]++;
    }
    let chi2 = 0;
    let pIn = 0;
    for (let x = lo; x <= hi; x++) {
      const e = N * discreteGaussianPmf(100, x);
      pIn += e / N;
      chi2 += (counts[x - lo] - e) ** 2 / e;
    }
    const eOut = N * (1 - pIn);
    chi2 += (counts[hi - lo + 1] - eOut) ** 2 / eOut;
    expect(chi2).toBeLessThan(chi2Crit(hi - lo + 1));
  });

  it('small σ² = 1/4: matches the pmf exactly (chi-square) including the variance below σ²', () => {
    const v = sampleDiscreteGaussianVector(rational(1n, 4n), 50_000, seededRandomSourceForTests('dg-small'));
    const counts = new Map<number, number>();
    for (const x of v) counts.set(Number(x), (counts.get(Number(x)) ?? 0) + 1);
    let chi2 = 0;
    for (let x = -2; x <= 2; x++) {
      const e = 50_000 * discreteGaussianPmf(0.25, x);
      chi2 += ((counts.get(x) ?? 0) - e) ** 2 / e;
    }
    let outside = 0;
    for (const [x, c] of counts) if (Math.abs(x) > 2) outside += c;
    expect(outside).toBeLessThan(10); // P[|X|>2] ≈ 2e-8·… effectively 0
    expect(chi2).toBeLessThan(chi2Crit(4));
  });

  it('non-integer rational σ² (dyadic from a double) and big σ² (bigint path) have the right variance', () => {
    const s2 = rationalFromNumber(12.345);
    const v = sampleDiscreteGaussianVector(s2, 40_000, seededRandomSourceForTests('dg-dyadic'));
    let q = 0;
    for (const x of v) q += Number(x) ** 2;
    q /= v.length;
    const ev = discreteGaussianVariance(12.345);
    expect(Math.abs(q - ev)).toBeLessThan(5 * Math.sqrt((2 * ev * ev) / v.length));

    const big = rational(10n ** 14n, 3n);
    const w = sampleDiscreteGaussianVector(big, 20_000, seededRandomSourceForTests('dg-big'));
    let qb = 0;
    for (const x of w) qb += Number(x) ** 2;
    qb /= w.length;
    const evb = 1e14 / 3;
    expect(Math.abs(qb - evb) / evb).toBeLessThan(5 * Math.sqrt(2 / w.length));
  });

  it('default source is the CSPRNG and single draws work; bad σ² is refused', () => {
    const x = sampleDiscreteGaussian(rational(9n));
    expect(typeof x).toBe('bigint');
    const a = sampleDiscreteGaussianVector(rational(1000n), 64);
    const b = sampleDiscreteGaussianVector(rational(1000n), 64);
    expect(a).not.toEqual(b);
    expect(() => new DiscreteGaussianSampler(rational(0n))).toThrow();
    expect(() => new DiscreteGaussianSampler(rational(-1n, 2n))).toThrow();
  });
});
