import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RandomReader, bernoulliRational, cryptoRandomSource, seededRandomSourceForTests, uniformBigInt } from '../../privacy/random.ts';
import {
  add,
  compare,
  div,
  floor,
  floorSqrt,
  isqrt,
  mul,
  rational,
  rationalFromNumber,
  rationalToNumber,
  sub,
} from '../../privacy/dp/rational.ts';

/** Upper 0.1% critical value of χ²(df) (Wilson–Hilferty). */
function chi2Crit(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

describe('random', () => {
  it('uniformBigInt stays in range and is uniform (chi-square)', () => {
    const n = 37n;
    const counts = new Array(37).fill(0);
    const src = seededRandomSourceForTests('uniform');
    const N = 37_000;
    for (let i = 0; i < N; i++) {
      const x = uniformBigInt(n, src);
      expect(x >= 0n && x < n).toBe(true);
      counts[Number(x)]++;
    }
    const e = N / 37;
    const chi2 = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(chi2Crit(36));
  });

  it('uniformBigInt handles bounds beyond 2^64', () => {
    const n = (1n << 100n) + 12345n;
    for (let i = 0; i < 200; i++) {
      const x = uniformBigInt(n);
      expect(x >= 0n && x < n).toBe(true);
    }
    expect(uniformBigInt(1n)).toBe(0n);
    expect(() => uniformBigInt(0n)).toThrow();
  });

  it('RandomReader.uniformSafeInt is uniform for small and > 2^32 bounds', () => {
    const r = new RandomReader(seededRandomSourceForTests('reader'));
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) counts[r.uniformSafeInt(10)]++;
    const chi2 = counts.reduce((s, c) => s + (c - 2000) ** 2 / 2000, 0);
    expect(chi2).toBeLessThan(chi2Crit(9));
    const big = 3 * 2 ** 40 + 7;
    let above = 0;
    for (let i = 0; i < 4000; i++) {
      const x = r.uniformSafeInt(big);
      expect(x >= 0 && x < big && Number.isInteger(x)).toBe(true);
      if (x >= big / 2) above++;
    }
    expect(Math.abs(above - 2000)).toBeLessThan(200);
  });

  it('bernoulliRational has the exact rate (crypto and reader paths) and rejects bad input', () => {
    let hits = 0;
    const N = 30_000;
    for (let i = 0; i < N; i++) if (bernoulliRational(3n, 10n)) hits++;
    // sd = sqrt(N·0.21) ≈ 79; 5 sd
    expect(Math.abs(hits - 0.3 * N)).toBeLessThan(400);
    const r = new RandomReader();
    hits = 0;
    for (let i = 0; i < N; i++) if (bernoulliRational(1n, 7n, r)) hits++;
    expect(Math.abs(hits - N / 7)).toBeLessThan(5 * Math.sqrt((N * 6) / 49));
    expect(bernoulliRational(0n, 5n)).toBe(false);
    expect(bernoulliRational(5n, 5n)).toBe(true);
    expect(() => bernoulliRational(6n, 5n)).toThrow();
    expect(() => bernoulliRational(1n, 0n)).toThrow();
  });

  it('seeded source is deterministic; crypto source is not', () => {
    expect(seededRandomSourceForTests('a').randomBytes(40)).toEqual(seededRandomSourceForTests('a').randomBytes(40));
    expect(cryptoRandomSource.randomBytes(32)).not.toEqual(cryptoRandomSource.randomBytes(32));
  });

  it('privacy/ never uses Math.random and never does file or network I/O', () => {
    const dir = new URL('../../privacy/', import.meta.url);
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      expect(src, f).not.toMatch(/Math\.random/);
      expect(src, f).not.toMatch(/from 'node:(fs|net|http|https|dgram|child_process)/);
    }
  });
});

describe('rational', () => {
  it('rationalFromNumber is exact for dyadics and edge cases', () => {
    expect(rationalFromNumber(0.5)).toEqual({ num: 1n, den: 2n });
    expect(rationalFromNumber(-3)).toEqual({ num: -3n, den: 1n });
    expect(rationalFromNumber(0)).toEqual({ num: 0n, den: 1n });
    const r = rationalFromNumber(0.1);
    expect(r.den).toBe(2n ** 55n);
    expect(r.num).toBe(3602879701896397n);
    expect(rationalToNumber(r)).toBe(0.1);
    const tiny = rationalFromNumber(5e-324);
    expect(tiny).toEqual({ num: 1n, den: 2n ** 1074n });
    expect(rationalToNumber(tiny)).toBe(5e-324);
    for (const x of [Math.PI, 1e300, -1.2345e-200, 2 ** 60 + 2 ** 9]) expect(rationalToNumber(rationalFromNumber(x))).toBe(x);
    expect(() => rationalFromNumber(NaN)).toThrow();
    expect(() => rationalFromNumber(Infinity)).toThrow();
  });

  it('arithmetic, comparison, floor and sqrt are exact', () => {
    const a = rational(1n, 3n);
    const b = rational(1n, 6n);
    expect(add(a, b)).toEqual({ num: 1n, den: 2n });
    expect(sub(b, a)).toEqual({ num: -1n, den: 6n });
    expect(mul(a, b)).toEqual({ num: 1n, den: 18n });
    expect(div(a, b)).toEqual({ num: 2n, den: 1n });
    expect(compare(a, b)).toBe(1);
    expect(compare(b, a)).toBe(-1);
    expect(compare(rational(2n, 4n), rational(1n, 2n))).toBe(0);
    expect(rational(4n, -6n)).toEqual({ num: -2n, den: 3n });
    expect(floor(rational(-7n, 2n))).toBe(-4n);
    expect(floor(rational(7n, 2n))).toBe(3n);
    expect(isqrt(99n)).toBe(9n);
    expect(isqrt(100n)).toBe(10n);
    const huge = (1n << 2000n) + 12345n;
    const s = isqrt(huge);
    expect(s * s <= huge && (s + 1n) * (s + 1n) > huge).toBe(true);
    expect(floorSqrt(rational(100n, 1n))).toBe(10n);
    expect(floorSqrt(rational(99n, 1n))).toBe(9n);
    expect(floorSqrt(rational(1n, 4n))).toBe(0n);
    expect(floorSqrt(rational(401n, 4n))).toBe(10n);
    expect(() => rational(1n, 0n)).toThrow();
  });
});
