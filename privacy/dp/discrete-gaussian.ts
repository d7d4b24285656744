/**
 * Exact sampler for the discrete Gaussian N_Z(0, σ²): P[X = x] ∝ exp(−x²/(2σ²)), x ∈ Z.
 *
 * Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020,
 * arXiv:2004.00010), Algorithms 1–3: Bernoulli(exp(−γ)) for rational γ, the discrete Laplace
 * by rejection, then the discrete Gaussian by rejection from the discrete Laplace with scale
 * t = ⌊σ⌋ + 1. All arithmetic is integer (bigint, or JS numbers only while they are exact
 * safe integers); randomness comes from a RandomSource (the OS CSPRNG by default). There is
 * no floating point anywhere on the sampling path, so none of Mironov's floating-point attacks
 * apply.
 */
import { RandomReader, cryptoRandomSource, type RandomSource } from '../random.ts';
import { floorSqrt, type Rational } from './rational.ts';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Bernoulli(exp(−num/den)) for num/den in [0, 1] (CKS Algorithm 1): K ← 1; while
 * Bernoulli(γ/K) K ← K+1; return K odd. Exact. Number path; `den·k` stays a safe integer
 * because the caller only uses it with den ≤ 2^40 and k is tiny (P[k > 30] < 1/30!).
 */
function bernExpSmallNum(num: number, den: number, r: RandomReader): boolean {
  let k = 1;
  for (;;) {
    const d = den * k;
    if (d > MAX_SAFE) return bernExpSmallBig(BigInt(num), BigInt(den), BigInt(k), r);
    if (!(r.uniformSafeInt(d) < num)) break;
    k++;
  }
  return (k & 1) === 1;
}

function bernExpSmallBig(num: bigint, den: bigint, k0: bigint, r: RandomReader): boolean {
  let k = k0;
  for (;;) {
    const d = den * k;
    const u = d <= BigInt(MAX_SAFE) ? BigInt(r.uniformSafeInt(Number(d))) : uniformBigIntReader(d, r);
    if (!(u < num)) break;
    k++;
  }
  return (k & 1n) === 1n;
}

function uniformBigIntReader(n: bigint, r: RandomReader): bigint {
  const bits = (n - 1n).toString(2).length;
  const nbytes = Math.ceil(bits / 8);
  const topMask = (1 << (bits - 8 * (nbytes - 1))) - 1;
  for (;;) {
    const b = r.bytes(nbytes);
    b[0] &= topMask;
    let x = 0n;
    for (let i = 0; i < nbytes; i++) x = (x << 8n) | BigInt(b[i]);
    if (x < n) return x;
  }
}

const SMALL_DEN = 2 ** 40;

/** Bernoulli(exp(−num/den)) for any rational num/den ≥ 0 (CKS Algorithm 1, γ > 1 split into ⌊γ⌋ factors of exp(−1)). */
export function bernoulliExpMinus(num: bigint, den: bigint, reader: RandomReader): boolean {
  if (den <= 0n || num < 0n) throw new RangeError('bernoulliExpMinus: need num >= 0, den > 0');
  // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)); stop at the first failure.
  let n = num;
  while (n > den) {
    if (!bernExpSmallNum(1, 1, reader)) return false;
    n -= den;
  }
  if (den <= BigInt(SMALL_DEN)) return bernExpSmallNum(Number(n), Number(den), reader);
  return bernExpSmallBig(n, den, 1n, reader);
}

/** Number version of bernoulliExpMinus for safe-integer inputs (hot path of the samplers). */
function bernoulliExpMinusNum(num: number, den: number, reader: RandomReader): boolean {
  let n = num;
  if (n > den) {
    // ⌊γ⌋ exp(−1) trials; exact since num, den are safe integers.
    const whole = Math.floor(n / den);
    for (let i = 0; i < whole; i++) if (!bernExpSmallNum(1, 1, reader)) return false;
    n -= whole * den;
  }
  return bernExpSmallNum(n, den, reader);
}

/**
 * Discrete Laplace with scale t (P[X = x] ∝ exp(−|x|/t)), integer t ≥ 1 (CKS Algorithm 2
 * with s = 1). Returned as a number: its magnitude is far below 2^53 with overwhelming
 * probability for any t the service uses (t ≤ 2^40 is enforced by the caller).
 */
function discreteLaplaceNum(t: number, reader: RandomReader): number {
  for (;;) {
    const u = reader.uniformSafeInt(t);
    if (!bernExpSmallNum(u, t, reader)) continue;
    let v = 0;
    while (bernExpSmallNum(1, 1, reader)) v++;
    const x = u + t * v;
    const negative = (reader.uint32() & 1) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

function discreteLaplaceBig(t: bigint, reader: RandomReader): bigint {
  for (;;) {
    const u = uniformBigIntReader(t, reader);
    if (!bernoulliExpMinus(u, t, reader)) continue;
    let v = 0n;
    while (bernExpSmallNum(1, 1, reader)) v++;
    const x = u + t * v;
    const negative = (reader.uint32() & 1) === 1;
    if (negative && x === 0n) continue;
    return negative ? -x : x;
  }
}

/** A prepared sampler for one σ² (precomputes t and the acceptance test's constants). */
export class DiscreteGaussianSampler {
  readonly sigma2: Rational;
  private readonly t: bigint;
  private readonly reader: RandomReader;
  // Number fast path: γ = (|y|·t·sd − sn)² / (2·t²·sd·sn); used when every intermediate for
  // |y| ≤ yMaxFast is a safe integer.
  private readonly fast: boolean;
  private readonly tN: number;
  private readonly sdN: number;
  private readonly snN: number;
  private readonly gammaDenN: number;
  private readonly yMaxFast: number;
  private readonly gammaDenBig: bigint;

  constructor(sigma2: Rational, source: RandomSource | RandomReader = cryptoRandomSource) {
    if (sigma2.den <= 0n || sigma2.num <= 0n) throw new RangeError('discrete Gaussian: σ² must be a positive rational');
    this.sigma2 = sigma2;
    this.reader = source instanceof RandomReader ? source : new RandomReader(source);
    this.t = floorSqrt(sigma2) + 1n; // t = ⌊σ⌋ + 1
    const { num: sn, den: sd } = sigma2;
    this.gammaDenBig = 2n * this.t * this.t * sd * sn;
    this.tN = Number(this.t);
    this.sdN = Number(sd);
    this.snN = Number(sn);
    this.gammaDenN = Number(this.gammaDenBig);
    // Largest |y| for which (|y|·t·sd − sn)² ≤ 2^52: |y|·t·sd ≤ 2^26 + sn.
    this.yMaxFast = Math.floor((2 ** 26 - 0) / Math.max(1, this.tN * this.sdN));
    this.fast = this.gammaDenBig <= BigInt(SMALL_DEN) && this.t <= BigInt(SMALL_DEN) && this.snN < 2 ** 26 && this.yMaxFast >= 1;
  }

  /** One exact sample of N_Z(0, σ²) (CKS Algorithm 3). */
  sampleBig(): bigint {
    if (this.fast) return BigInt(this.sampleNumber());
    const { num: sn, den: sd } = this.sigma2;
    for (;;) {
      const y = discreteLaplaceBig(this.t, this.reader);
      const a = (y < 0n ? -y : y) * this.t * sd - sn;
      if (bernoulliExpMinus(a * a, this.gammaDenBig, this.reader)) return y;
    }
  }

  private sampleNumber(): number {
    for (;;) {
      const y = discreteLaplaceNum(this.tN, this.reader);
      const ay = y < 0 ? -y : y;
      if (ay <= this.yMaxFast) {
        const a = ay * this.tN * this.sdN - this.snN;
        if (bernoulliExpMinusNum(a * a, this.gammaDenN, this.reader)) return y;
      } else {
        // Far tail (astronomically rare for sane σ): redo the test exactly in bigint.
        const a = BigInt(ay) * this.t * this.sigma2.den - this.sigma2.num;
        if (bernoulliExpMinus(a * a, this.gammaDenBig, this.reader)) return y;
      }
    }
  }

  /** `length` independent samples. Values outside int64 are impossible in practice and rejected loudly. */
  sampleVector(length: number): BigInt64Array {
    const out = new BigInt64Array(length);
    for (let i = 0; i < length; i++) out[i] = BigInt.asIntN(64, this.checkedInt64(this.sampleBig()));
    return out;
  }

  private checkedInt64(x: bigint): bigint {
    if (x > 0x7fffffffffffffffn || x < -0x8000000000000000n) throw new RangeError('discrete Gaussian sample outside int64');
    return x;
  }
}

/** One sample of N_Z(0, σ²). Prefer DiscreteGaussianSampler for many samples. */
export function sampleDiscreteGaussian(sigma2: Rational, source: RandomSource | RandomReader = cryptoRandomSource): bigint {
  return new DiscreteGaussianSampler(sigma2, source).sampleBig();
}

/** `length` i.i.d. samples of N_Z(0, σ²) as a BigInt64Array. */
export function sampleDiscreteGaussianVector(
  sigma2: Rational,
  length: number,
  source: RandomSource | RandomReader = cryptoRandomSource,
): BigInt64Array {
  return new DiscreteGaussianSampler(sigma2, source).sampleVector(length);
}

/**
 * Exact-as-doubles variance of N_Z(0, σ²), by summing the pmf (used by tests and utility
 * estimates, never by sampling). Terms beyond ±(σ·40 + 10) are below double precision.
 */
export function discreteGaussianVariance(sigma2: number): number {
  const lim = Math.ceil(Math.sqrt(sigma2) * 40 + 10);
  let z = 1;
  let m2 = 0;
  for (let x = 1; x <= lim; x++) {
    const w = Math.exp((-x * x) / (2 * sigma2));
    z += 2 * w;
    m2 += 2 * x * x * w;
  }
  return m2 / z;
}

/** pmf of N_Z(0, σ²) at x (doubles; tests and reporting only). */
export function discreteGaussianPmf(sigma2: number, x: number): number {
  const lim = Math.ceil(Math.sqrt(sigma2) * 40 + 10);
  let z = 1;
  for (let k = 1; k <= lim; k++) z += 2 * Math.exp((-k * k) / (2 * sigma2));
  return Math.exp((-x * x) / (2 * sigma2)) / z;
}
