/**
 * Exact rationals over bigint. DP parameters that drive samplers (σ², Bernoulli
 * probabilities) are rationals so that sampling never touches floating point.
 * Invariant: den > 0 and gcd(|num|, den) = 1.
 */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

export function rational(num: bigint | number, den: bigint | number = 1n): Rational {
  let n = BigInt(num);
  let d = BigInt(den);
  if (d === 0n) throw new RangeError('rational: zero denominator');
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d);
  return g > 1n ? { num: n / g, den: d / g } : { num: n, den: d };
}

/**
 * The exact value of a finite double. Every finite double is m·2^e, so doubling until the
 * value is an integer terminates (at most 1074 steps) and each doubling is exact.
 */
export function rationalFromNumber(x: number): Rational {
  if (!Number.isFinite(x)) throw new RangeError(`rationalFromNumber: ${x} is not finite`);
  let den = 1n;
  let v = x;
  while (!Number.isInteger(v)) {
    v *= 2;
    den *= 2n;
  }
  return rational(BigInt(v), den);
}

/** A double close to r (for reporting/accounting; never for sampling). Exact for dyadic rationals. */
export function rationalToNumber(r: Rational): number {
  if (r.num === 0n) return 0;
  const neg = r.num < 0n;
  const n = neg ? -r.num : r.num;
  // Normalise both operands to 64 significant bits so Number() can neither overflow nor lose
  // the ratio, then reapply the binary exponent in steps that cannot overflow.
  const nb = n.toString(2).length;
  const db = r.den.toString(2).length;
  const ns = nb > 64 ? n >> BigInt(nb - 64) : n << BigInt(64 - nb);
  const ds = db > 64 ? r.den >> BigInt(db - 64) : r.den << BigInt(64 - db);
  let v = Number(ns) / Number(ds);
  let e = nb - db;
  while (e > 1000) {
    v *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    v *= 2 ** -1000;
    e += 1000;
  }
  v *= 2 ** e;
  return neg ? -v : v;
}

export function add(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den + b.num * a.den, a.den * b.den);
}
export function sub(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den - b.num * a.den, a.den * b.den);
}
export function mul(a: Rational, b: Rational): Rational {
  return rational(a.num * b.num, a.den * b.den);
}
export function div(a: Rational, b: Rational): Rational {
  if (b.num === 0n) throw new RangeError('rational div by zero');
  return rational(a.num * b.den, a.den * b.num);
}
/** -1, 0, 1 as a <, =, > b. */
export function compare(a: Rational, b: Rational): -1 | 0 | 1 {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}
/** floor(a) as a bigint (rounds towards −∞). */
export function floor(a: Rational): bigint {
  const q = a.num / a.den;
  return a.num < 0n && q * a.den !== a.num ? q - 1n : q;
}
/** Integer square root floor(sqrt(n)) for n >= 0 (Newton on bigint). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of negative');
  if (n < 2n) return n;
  const bits = n.toString(2).length;
  if (bits < 1000) {
    // Float estimate (within a few units), then corrected exactly.
    let x = BigInt(Math.floor(Math.sqrt(Number(n))));
    while (x * x > n) x -= 1n;
    while ((x + 1n) * (x + 1n) <= n) x += 1n;
    return x;
  }
  // Newton from above: decreasing sequence that stops at floor(sqrt(n)).
  let x = 1n << BigInt(Math.ceil(bits / 2) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}
/** floor(sqrt(a)) for a rational a >= 0, exactly. */
export function floorSqrt(a: Rational): bigint {
  if (a.num < 0n) throw new RangeError('floorSqrt of negative');
  // floor(sqrt(n/d)) = floor(isqrt(n*d)/d)  since sqrt(n/d) = sqrt(n*d)/d
  return isqrt(a.num * a.den) / a.den;
}
export function toString(r: Rational): string {
  return r.den === 1n ? `${r.num}` : `${r.num}/${r.den}`;
}
