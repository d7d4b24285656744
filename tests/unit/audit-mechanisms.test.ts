// Mechanism checks: no privacy path draws randomness from Math.random, a seeded PRNG
// or floating-point sampling; and the production noise path (default CSPRNG source, the exact
// rational σ² the planner produces, shares summed over sites) has the claimed distribution.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT, sources, strip } from '../support/sources.ts';
import { discreteGaussianPmf, discreteGaussianVariance, sampleDiscreteGaussianVector } from '../../privacy/dp/discrete-gaussian.ts';
import { planDistributedNoise } from '../../privacy/dp/accountant.ts';
import { rationalToNumber } from '../../privacy/dp/rational.ts';

// The fit loop's noise path in federation/ is scanned too; the audits and the benchmark there
// use the seeded PRNG for post-processing (canaries, splits), which is not noise.
const FIT_NOISE_PATH = ['federation/site-answer.ts', 'federation/in-process.ts', 'federation/run-fit.ts', 'federation/plan.ts'];
const PRIVACY_PATHS = [...['privacy', 'site-agent', 'coordinator'].flatMap(sources), ...FIT_NOISE_PATH];
/** Takes a random source as a parameter whose default is the OS CSPRNG, so tests can seed a fit. */
const SOURCE_PARAMETER_ALLOWED = new Set(['privacy/dp/discrete-gaussian.ts', 'federation/site-answer.ts']);

/** Legitimately non-private uses, each with its reason (none today: even retry jitter uses the CSPRNG). */
const MATH_RANDOM_ALLOWED: Record<string, string> = {};

describe('no privacy path uses non-cryptographic or floating-point randomness', () => {
  it('scans privacy/, site-agent/, coordinator/ and the fit loop’s noise path', () => {
    expect(PRIVACY_PATHS.length).toBeGreaterThan(30);
    const offenders: string[] = [];
    for (const f of PRIVACY_PATHS) {
      const src = strip(readFileSync(join(ROOT, f), 'utf8'));
      const rel = relative(ROOT, join(ROOT, f));
      if (/Math\.random\s*\(/.test(src) && !MATH_RANDOM_ALLOWED[rel]) offenders.push(`${rel}: Math.random`);
      if (/from ['"][./]*model\/rng\.ts['"]/.test(src)) offenders.push(`${rel}: imports the seeded PRNG`);
      if (/seededRandomSourceForTests/.test(src) && rel !== 'privacy/random.ts')
        offenders.push(`${rel}: uses the seeded test random source`);
      // Floating-point Gaussian/Laplace sampling (Box–Muller, inverse CDF on uniforms, …).
      if (/Math\.(cos|sin)\s*\(\s*2\s*\*\s*Math\.PI/.test(src) || /Math\.log\s*\(\s*(1\s*-\s*)?(u|rand|uniform|Math\.random)/i.test(src))
        offenders.push(`${rel}: floating-point noise sampling`);
      // Every discrete Gaussian draw on these paths uses the default source (the OS CSPRNG).
      for (const m of src.matchAll(/sampleDiscreteGaussian(?:Vector)?\(([^()]*(?:\([^()]*\))?[^()]*)\)/g)) {
        if (SOURCE_PARAMETER_ALLOWED.has(rel)) continue;
        if (m[1].split(',').length > 2) offenders.push(`${rel}: passes its own random source to the sampler`);
      }
    }
    expect(offenders).toEqual([]);
    for (const f of SOURCE_PARAMETER_ALLOWED) {
      const src = strip(readFileSync(join(ROOT, f), 'utf8'));
      // Every exported sampler-calling function defaults its source to the OS CSPRNG.
      for (const m of src.matchAll(/(\w+): RandomSource(?: \| RandomReader)?( = cryptoRandomSource)?/g))
        expect(m[2], `${f}: parameter ${m[1]}`).toBeDefined();
    }
    // The site agent and the in-process aggregator (benchmarks, audits) answer through one function.
    // (In an audited fit, over the members plus its canaries: site-agent/audit-tasks.ts `measureRows`.)
    expect(strip(readFileSync(join(ROOT, 'site-agent/tasks.ts'), 'utf8'))).toMatch(
      /\bsiteAnswer\(measureRows\(ctx, spec\), spec\.marginals, /,
    );
    expect(strip(readFileSync(join(ROOT, 'federation/in-process.ts'), 'utf8'))).toMatch(/\bsiteAnswer\(s\.data, spec\.marginals, /);
    // The site agent never passes a source: its noise always comes from the OS CSPRNG.
    for (const f of sources('site-agent')) {
      const src = strip(readFileSync(join(ROOT, f), 'utf8'));
      for (const m of src.matchAll(/\b(siteAnswer|addNoiseShare)\(([^()]*(?:\([^()]*\))?[^()]*)\)/g)) {
        const tooMany = m[1] === 'addNoiseShare' && m[2].split(',').length > 2;
        if (tooMany || /\brandom\b/.test(m[2])) offenders.push(`${f}: passes a random source to ${m[1]}`);
      }
    }
    expect(offenders).toEqual([]);
    // The allow-list is not stale.
    for (const f of Object.keys(MATH_RANDOM_ALLOWED)) expect(/Math\.random/.test(readFileSync(join(ROOT, f), 'utf8'))).toBe(true);
  });

  it('the discrete Gaussian sampling path has no floating-point arithmetic on random values', () => {
    const src = strip(readFileSync(join(ROOT, 'privacy/dp/discrete-gaussian.ts'), 'utf8'));
    // Only the analysis helpers (variance, pmf) at the end of the file use exp/sqrt.
    const samplingPart = src.slice(0, src.indexOf('export function discreteGaussianVariance'));
    expect(samplingPart).not.toMatch(/Math\.(exp|log|sqrt|random|pow|cos|sin)\b/);
    expect(samplingPart).toMatch(/cryptoRandomSource/);
  });
});

describe('the production noise path has the claimed distribution', () => {
  it('planned σ² (a rational), default CSPRNG: variance, tails and chi-square of one share and of the summed shares', () => {
    const { sigmaSite2 } = planDistributedNoise({
      l2Sensitivity: Math.sqrt(3),
      l1Sensitivity: 3,
      parties: 3,
      dimension: 40,
      targetRho: 0.0173,
    });
    const s2 = rationalToNumber(sigmaSite2);
    expect(1024n % sigmaSite2.den).toBe(0n);
    expect(sigmaSite2.den > 1n).toBe(true); // a non-integer σ², the general case
    const N = 60_000;
    const shares = [0, 1, 2].map(() => sampleDiscreteGaussianVector(sigmaSite2, N));
    const one = Array.from(shares[0], Number);
    const sum = one.map((x, i) => x + Number(shares[1][i]) + Number(shares[2][i]));
    const varOf = (v: number[]) => {
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      return { m, q: v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1) };
    };
    const exactVar = discreteGaussianVariance(s2);
    for (const [v, target] of [
      [one, exactVar],
      [sum, 3 * exactVar],
    ] as const) {
      const { m, q } = varOf(v);
      expect(Math.abs(m)).toBeLessThan(5 * Math.sqrt(target / N));
      expect(Math.abs(q - target)).toBeLessThan(5 * Math.sqrt((2 * target * target) / N));
    }
    // Tails and χ² of one share against the exact pmf.
    const sd = Math.sqrt(s2);
    const lo = -Math.ceil(3 * sd);
    const hi = Math.ceil(3 * sd);
    const counts = new Map<number, number>();
    for (const x of one) counts.set(x, (counts.get(x) ?? 0) + 1);
    let chi2 = 0;
    let pIn = 0;
    for (let x = lo; x <= hi; x++) {
      const p = discreteGaussianPmf(s2, x);
      pIn += p;
      chi2 += ((counts.get(x) ?? 0) - N * p) ** 2 / (N * p);
    }
    const outObs = one.filter((x) => x < lo || x > hi).length;
    chi2 += (outObs - N * (1 - pIn)) ** 2 / (N * (1 - pIn));
    const df = hi - lo + 1;
    // χ² critical value at α ≈ 1e-4 (Wilson–Hilferty).
    const crit = df * (1 - 2 / (9 * df) + 3.719 * Math.sqrt(2 / (9 * df))) ** 3;
    expect(chi2).toBeLessThan(crit);
    const tail = one.filter((x) => Math.abs(x) >= 2 * sd).length / N;
    let pTail = 0;
    for (let x = Math.ceil(2 * sd); x < 50 * sd; x++) pTail += 2 * discreteGaussianPmf(s2, x);
    expect(Math.abs(tail - pTail)).toBeLessThan(5 * Math.sqrt((pTail * (1 - pTail)) / N));
  });
});
