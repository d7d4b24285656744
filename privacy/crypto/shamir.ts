/**
 * Shamir secret sharing of whole vectors over GF(p) (p = FIELD_PRIME). Each entry gets its own
 * random polynomial of degree t−1 with the entry as constant term; share j is the polynomial
 * evaluated at a public non-zero point x_j. Any t shares determine the secret (Lagrange
 * interpolation at 0); any t−1 shares are jointly uniform and independent of it.
 *
 * Shares are linear: the sum of sites' shares at x_j is a share of the sum of their vectors.
 * That is what lets BFV add encrypted shares without ever decrypting one site's vector.
 */
import { FIELD_PRIME, invMod, mulMod, subMod, type FieldVector } from './field.ts';
import { RandomReader, cryptoRandomSource, type RandomSource } from '../random.ts';

export interface ShamirShare {
  /** Public evaluation point x_j (1..k for committee member j). */
  readonly point: number;
  readonly values: FieldVector;
}

/** Points must be distinct integers in [1, 2^16]: non-zero (0 is the secret) and small so Horner stays exact in doubles. */
export const MAX_POINT = 65536;

function checkPoints(points: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of points) {
    if (!Number.isInteger(x) || x < 1 || x > MAX_POINT) throw new RangeError(`Shamir point ${x} must be an integer in [1, ${MAX_POINT}]`);
    if (seen.has(x)) throw new RangeError(`Shamir point ${x} is repeated`);
    seen.add(x);
  }
}

/** Uniform field vector, by rejection on 32-bit words (p < 2^32, so < 0.02% of draws are rejected). */
export function randomFieldVector(length: number, source: RandomSource | RandomReader = cryptoRandomSource): FieldVector {
  const reader = source instanceof RandomReader ? source : new RandomReader(source);
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) {
    let x = reader.uint32();
    while (x >= FIELD_PRIME) x = reader.uint32();
    out[i] = x;
  }
  return out;
}

/**
 * Splits `secret` into one share per point with reconstruction threshold `threshold`
 * (1 ≤ t ≤ number of points). Randomness from the OS CSPRNG unless a source is given.
 */
export function shareVector(
  secret: FieldVector,
  threshold: number,
  points: readonly number[],
  source: RandomSource | RandomReader = cryptoRandomSource,
): ShamirShare[] {
  checkPoints(points);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > points.length) {
    throw new RangeError(`threshold ${threshold} must be an integer in [1, ${points.length}]`);
  }
  for (let i = 0; i < secret.length; i++) if (secret[i] >= FIELD_PRIME) throw new RangeError(`secret[${i}] is not a field element`);
  const reader = source instanceof RandomReader ? source : new RandomReader(source);
  // coeffs[c] holds the degree-(c+1) coefficients of every entry's polynomial.
  const coeffs: FieldVector[] = [];
  for (let c = 1; c < threshold; c++) coeffs.push(randomFieldVector(secret.length, reader));
  return points.map((x) => {
    const values = new Uint32Array(secret.length);
    for (let i = 0; i < secret.length; i++) {
      // Horner: acc < p < 2^32 and x ≤ 2^16, so acc·x + coeff < 2^49: exact in doubles.
      let acc = 0;
      for (let c = coeffs.length - 1; c >= 0; c--) acc = (acc * x + coeffs[c][i]) % FIELD_PRIME;
      values[i] = (acc * x + secret[i]) % FIELD_PRIME;
    }
    return { point: x, values };
  });
}

/** λ_j = Π_{m≠j} x_m / (x_m − x_j) mod p: the weights that interpolate f(0) from f(x_j). */
export function lagrangeCoefficientsAtZero(points: readonly number[]): number[] {
  checkPoints(points);
  return points.map((xj, j) => {
    let num = 1;
    let den = 1;
    points.forEach((xm, m) => {
      if (m === j) return;
      num = mulMod(num, xm);
      den = mulMod(den, subMod(xm, xj));
    });
    return mulMod(num, invMod(den));
  });
}

/**
 * Recovers the secret from at least `threshold` shares (uses the first `threshold` given;
 * with honest shares any subset gives the same answer). Throws with fewer shares or
 * mismatched lengths.
 */
export function reconstructVector(shares: readonly ShamirShare[], threshold: number): FieldVector {
  if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`threshold ${threshold} must be an integer >= 1`);
  if (shares.length < threshold) {
    throw new RangeError(`need at least ${threshold} shares to reconstruct, got ${shares.length}`);
  }
  const used = shares.slice(0, threshold);
  const length = used[0].values.length;
  for (const s of used) if (s.values.length !== length) throw new RangeError('shares have different lengths');
  const lambdas = lagrangeCoefficientsAtZero(used.map((s) => s.point));
  const out = new Uint32Array(length);
  const acc = new Float64Array(length);
  used.forEach((s, j) => {
    const l = lambdas[j];
    // mulMod inlined with λ split once: λ = lh·2^16 + ll.
    const lh = Math.floor(l / 65536);
    const ll = l - lh * 65536;
    const v = s.values;
    for (let i = 0; i < length; i++) {
      const a = v[i];
      const prod = (((a * lh) % FIELD_PRIME) * 65536 + a * ll) % FIELD_PRIME;
      const t = acc[i] + prod;
      acc[i] = t >= FIELD_PRIME ? t - FIELD_PRIME : t;
    }
  });
  for (let i = 0; i < length; i++) out[i] = acc[i];
  return out;
}
