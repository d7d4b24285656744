/**
 * Arithmetic in GF(p) for p = FIELD_PRIME, the BFV plaintext modulus.
 *
 * p = 4294475777 = 2^32 − 491519 is the prime SEAL's PlainModulus.Batching(8192, 32) returns:
 * p ≡ 1 (mod 2·8192), so BFV batching gives 8192 slots, each an element of this field, and
 * slot-wise homomorphic addition is addition in GF(p). Being < 2^32, elements fit a
 * Uint32Array. Products of two elements exceed 2^53, so mulMod splits one operand into 16-bit
 * limbs; every intermediate stays below 2^49 and double arithmetic is exact.
 * Signed integers v with |v| < p/2 are encoded as v mod p (centred representation), which
 * leaves ±2.1e9 of headroom for noised counts summed over sites.
 */
export const FIELD_PRIME = 4294475777;
export const FIELD_PRIME_BIG = 4294475777n;
const HALF = (FIELD_PRIME - 1) / 2; // largest positive encodable value

/** A vector of field elements, each in [0, p). */
export type FieldVector = Uint32Array;

export function addMod(a: number, b: number): number {
  const s = a + b;
  return s >= FIELD_PRIME ? s - FIELD_PRIME : s;
}
export function subMod(a: number, b: number): number {
  const s = a - b;
  return s < 0 ? s + FIELD_PRIME : s;
}
/** a·b mod p for a, b in [0, p): split b = bh·2^16 + bl so each product is < 2^48. */
export function mulMod(a: number, b: number): number {
  const bh = Math.floor(b / 65536);
  const bl = b - bh * 65536;
  const hi = ((a * bh) % FIELD_PRIME) * 65536; // < 2^48
  return (hi + a * bl) % FIELD_PRIME; // < 2^49
}
export function negMod(a: number): number {
  return a === 0 ? 0 : FIELD_PRIME - a;
}
/** Reduce any safe integer into [0, p). */
export function reduce(x: number): number {
  if (!Number.isSafeInteger(x)) throw new RangeError(`reduce: ${x} is not a safe integer`);
  const r = x % FIELD_PRIME;
  return r < 0 ? r + FIELD_PRIME : r;
}
/** a^e mod p. */
export function powMod(a: number, e: number): number {
  let result = 1;
  let base = a;
  let k = e;
  while (k > 0) {
    if (k % 2 === 1) result = mulMod(result, base);
    base = mulMod(base, base);
    k = Math.floor(k / 2);
  }
  return result;
}
/** Multiplicative inverse (Fermat: a^(p−2)); throws on 0. */
export function invMod(a: number): number {
  if (a % FIELD_PRIME === 0) throw new RangeError('invMod: zero has no inverse');
  return powMod(a, FIELD_PRIME - 2);
}

/** Encodes signed integers (|v| ≤ (p−1)/2) as field elements; throws on anything larger. */
export function encodeSigned(values: BigInt64Array | readonly bigint[]): FieldVector {
  const out = new Uint32Array(values.length);
  const half = BigInt(HALF);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > half || v < -half) throw new RangeError(`encodeSigned: value ${v} at index ${i} is outside ±${HALF}`);
    const n = Number(v);
    out[i] = n < 0 ? n + FIELD_PRIME : n;
  }
  return out;
}

/** Decodes field elements to signed integers in [−(p−1)/2, (p−1)/2]. */
export function decodeSigned(v: FieldVector): BigInt64Array {
  const out = new BigInt64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x >= FIELD_PRIME) throw new RangeError(`decodeSigned: ${x} at index ${i} is not a field element`);
    out[i] = BigInt(x > HALF ? x - FIELD_PRIME : x);
  }
  return out;
}

/** Element-wise a + b mod p (new vector). */
export function addVectors(a: FieldVector, b: FieldVector): FieldVector {
  if (a.length !== b.length) throw new RangeError(`addVectors: length ${a.length} != ${b.length}`);
  const out = new Uint32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const s = a[i] + b[i];
    out[i] = s >= FIELD_PRIME ? s - FIELD_PRIME : s;
  }
  return out;
}

/** True iff every entry is in [0, p). */
export function isFieldVector(v: Uint32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] >= FIELD_PRIME) return false;
  return true;
}
