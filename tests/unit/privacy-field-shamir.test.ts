import { describe, expect, it } from 'vitest';
import {
  FIELD_PRIME,
  FIELD_PRIME_BIG,
  addVectors,
  decodeSigned,
  encodeSigned,
  invMod,
  mulMod,
  powMod,
} from '../../privacy/crypto/field.ts';
import { lagrangeCoefficientsAtZero, randomFieldVector, reconstructVector, shareVector } from '../../privacy/crypto/shamir.ts';
import { seededRandomSourceForTests } from '../../privacy/random.ts';

/** Fast exact equality for big typed arrays (vitest's deep equality is slow on 1M entries). */
function same(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function chi2Crit(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

describe('field GF(p)', () => {
  it('p is a batching-friendly prime for N = 8192 (p ≡ 1 mod 16384) below 2^32', () => {
    expect(FIELD_PRIME).toBeLessThan(2 ** 32);
    expect(FIELD_PRIME_BIG % 16384n).toBe(1n);
    // Fermat witnesses (p is SEAL's PlainModulus.Batching(8192, 32); checked in the BFV test too).
    for (const a of [2, 3, 5, 7, 11, 13]) expect(powMod(a, FIELD_PRIME - 1)).toBe(1);
  });

  it('mulMod agrees with bigint arithmetic on random and extreme operands', () => {
    const src = seededRandomSourceForTests('mulmod');
    const a = randomFieldVector(5000, src);
    const b = randomFieldVector(5000, src);
    const extremes = [0, 1, 2, FIELD_PRIME - 1, FIELD_PRIME - 2, 2 ** 31, 65535, 65536];
    const pairs: [number, number][] = [];
    for (let i = 0; i < a.length; i++) pairs.push([a[i], b[i]]);
    for (const x of extremes) for (const y of extremes) pairs.push([x, y]);
    for (const [x, y] of pairs) expect(BigInt(mulMod(x, y))).toBe((BigInt(x) * BigInt(y)) % FIELD_PRIME_BIG);
    for (const x of [1, 2, 12345, FIELD_PRIME - 1]) expect(mulMod(x, invMod(x))).toBe(1);
    expect(() => invMod(0)).toThrow();
  });

  it('signed encode/decode round-trips the full range and refuses overflow', () => {
    const half = BigInt((FIELD_PRIME - 1) / 2);
    const v = BigInt64Array.from([0n, 1n, -1n, 123456789n, -987654321n, half, -half]);
    expect(decodeSigned(encodeSigned(v))).toEqual(v);
    expect(() => encodeSigned(BigInt64Array.from([half + 1n]))).toThrow(/outside/);
    expect(() => encodeSigned(BigInt64Array.from([-half - 1n]))).toThrow(/outside/);
    // Sums of encodings decode to sums of values (while the sum stays in range).
    const a = BigInt64Array.from([5n, -7n, 1000n]);
    const b = BigInt64Array.from([-10n, -3n, 1n]);
    expect(decodeSigned(addVectors(encodeSigned(a), encodeSigned(b)))).toEqual(BigInt64Array.from([-5n, -10n, 1001n]));
  });
});

describe('Shamir sharing of vectors', () => {
  const secret = encodeSigned(BigInt64Array.from({ length: 1000 }, (_, i) => BigInt((i * 7919) % 20001) - 10000n));

  it('any t of k shares reconstruct (all subsets, several (t, k))', () => {
    for (const [t, k] of [
      [1, 1],
      [1, 3],
      [2, 3],
      [3, 5],
      [5, 5],
    ]) {
      const points = Array.from({ length: k }, (_, i) => i + 1);
      const shares = shareVector(secret, t, points);
      // every subset of size ≥ t
      for (let mask = 1; mask < 1 << k; mask++) {
        const subset = shares.filter((_, i) => mask & (1 << i));
        if (subset.length < t) {
          expect(() => reconstructVector(subset, t)).toThrow(/at least/);
          continue;
        }
        expect(same(reconstructVector(subset, t), secret)).toBe(true);
      }
    }
  });

  it('Lagrange coefficients at 0 for points 1, 2 are 2, −1', () => {
    expect(lagrangeCoefficientsAtZero([1, 2])).toEqual([2, FIELD_PRIME - 1]);
    expect(() => lagrangeCoefficientsAtZero([1, 1])).toThrow(/repeated/);
    expect(() => shareVector(secret, 2, [0, 1])).toThrow();
    expect(() => shareVector(secret, 4, [1, 2, 3])).toThrow();
  });

  it('fewer than t shares look uniform and independent of the secret (chi-square, correlation)', () => {
    // Two very different secrets; look at share 1 of 3 with t = 2 (one share < threshold).
    const L = 40_000;
    const zeros = new Uint32Array(L);
    const big = encodeSigned(BigInt64Array.from({ length: L }, () => 1_000_000_000n));
    const bins = 64;
    for (const s of [zeros, big]) {
      const [share] = shareVector(s, 2, [1, 2, 3]);
      const counts = new Array(bins).fill(0);
      for (const x of share.values) counts[Math.floor((x / FIELD_PRIME) * bins)]++;
      const e = L / bins;
      const chi2 = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
      expect(chi2).toBeLessThan(chi2Crit(bins - 1));
    }
    // With t = 3, two shares jointly: their difference is uniform too, and a share is
    // uncorrelated with a varying secret.
    const varying = encodeSigned(BigInt64Array.from({ length: L }, (_, i) => BigInt(i % 2 === 0 ? 0 : 2_000_000_000)));
    const shares = shareVector(varying, 3, [1, 2, 3]);
    let sx = 0,
      sy = 0,
      sxy = 0,
      sxx = 0,
      syy = 0;
    for (let i = 0; i < L; i++) {
      const x = varying[i] / FIELD_PRIME;
      const y = shares[0].values[i] / FIELD_PRIME;
      sx += x;
      sy += y;
      sxy += x * y;
      sxx += x * x;
      syy += y * y;
    }
    const corr = (sxy / L - (sx / L) * (sy / L)) / Math.sqrt((sxx / L - (sx / L) ** 2) * (syy / L - (sy / L) ** 2));
    expect(Math.abs(corr)).toBeLessThan(5 / Math.sqrt(L));
    const diff = new Array(bins).fill(0);
    for (let i = 0; i < L; i++) {
      const d = (shares[0].values[i] - shares[1].values[i] + FIELD_PRIME) % FIELD_PRIME;
      diff[Math.floor((d / FIELD_PRIME) * bins)]++;
    }
    const chi2d = diff.reduce((acc, c) => acc + (c - L / bins) ** 2 / (L / bins), 0);
    expect(chi2d).toBeLessThan(chi2Crit(bins - 1));
  });

  it('shares are additively homomorphic: sum of shares reconstructs the sum', () => {
    const a = encodeSigned(BigInt64Array.from([1n, -2n, 3n]));
    const b = encodeSigned(BigInt64Array.from([-10n, 20n, 30n]));
    const sa = shareVector(a, 2, [1, 2, 3]);
    const sb = shareVector(b, 2, [1, 2, 3]);
    const sum = sa.map((s, i) => ({ point: s.point, values: addVectors(s.values, sb[i].values) }));
    expect(decodeSigned(reconstructVector([sum[2], sum[0]], 2))).toEqual(BigInt64Array.from([-9n, 18n, 33n]));
  });

  it('shares a 1M-entry vector with t = 2, k = 3 and reconstructs it in reasonable time', () => {
    const L = 1_000_000;
    const v = randomFieldVector(L);
    // CPU time, not wall time, so that a loaded box does not fail it.
    const cpu0 = process.cpuUsage();
    const shares = shareVector(v, 2, [1, 2, 3]);
    const back = reconstructVector([shares[1], shares[2]], 2);
    const cpu = process.cpuUsage(cpu0);
    expect(same(back, v)).toBe(true);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(8000);
  });
});
