/**
 * Randomness for privacy code. Everything that feeds DP noise or secret sharing draws bytes
 * from a `RandomSource`; production uses the operating system CSPRNG (node:crypto). Sampling
 * is exact: integers are drawn by rejection so no modulo bias, and Bernoulli trials use exact
 * rational comparison, never floating point.
 */
import { createHash, randomFillSync } from 'node:crypto';

export interface RandomSource {
  /** `n` independent uniformly random bytes. */
  randomBytes(n: number): Uint8Array;
}

/** The production source: the OS CSPRNG via node:crypto. */
export const cryptoRandomSource: RandomSource = {
  randomBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // randomFillSync is limited to 2^31-1 bytes per call; callers never ask for that much.
    randomFillSync(out);
    return out;
  },
};

/**
 * Deterministic source for tests and reproducible simulations ONLY (SHA-256 in counter mode
 * over a seed). It is never the default anywhere in privacy/; DP noise drawn from it is not
 * private because the seed determines it.
 */
export function seededRandomSourceForTests(seed: string): RandomSource {
  let counter = 0;
  return {
    randomBytes(n: number): Uint8Array {
      const out = new Uint8Array(n);
      let off = 0;
      while (off < n) {
        const block = createHash('sha256').update(seed).update(String(counter++)).digest();
        const take = Math.min(block.length, n - off);
        out.set(block.subarray(0, take), off);
        off += take;
      }
      return out;
    },
  };
}

const POOL_BYTES = 1 << 14;

/**
 * Buffered reader over a RandomSource: samplers draw millions of small integers and one
 * crypto call per draw would dominate their cost. Bytes are consumed exactly once.
 */
export class RandomReader {
  private pool: Uint8Array = new Uint8Array(0);
  private pos = 0;
  constructor(readonly source: RandomSource = cryptoRandomSource) {}

  private refill(): void {
    this.pool = this.source.randomBytes(POOL_BYTES);
    if (this.pool.length !== POOL_BYTES) throw new Error('RandomSource returned the wrong number of bytes');
    this.pos = 0;
  }

  /** Uniform integer in [0, 2^32). */
  uint32(): number {
    if (this.pos + 4 > this.pool.length) this.refill();
    const p = this.pool;
    const i = this.pos;
    this.pos += 4;
    return (p[i] | (p[i + 1] << 8) | (p[i + 2] << 16)) + p[i + 3] * 0x1000000;
  }

  /** Uniform bytes (copied out of the pool). */
  bytes(n: number): Uint8Array {
    if (n > POOL_BYTES) return this.source.randomBytes(n);
    if (this.pos + n > this.pool.length) this.refill();
    const out = this.pool.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * Exactly uniform integer in [0, n) for 1 <= n <= 2^53 (a safe integer), by rejection on
   * the smallest power of two >= n, so the expected number of draws is < 2.
   */
  uniformSafeInt(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`uniformSafeInt: bad bound ${n}`);
    if (n === 1) return 0;
    if (n <= 0x100000000) {
      const bits = Math.ceil(Math.log2(n));
      // Math.log2 is exact on powers of two and monotone, but guard the edge anyway.
      const b = 2 ** bits >= n ? bits : bits + 1;
      const mask = b >= 32 ? 0x100000000 : 2 ** b;
      for (;;) {
        const x = this.uint32() % mask; // mask is a power of two dividing 2^32: no bias
        if (x < n) return x;
      }
    }
    const hiBits = Math.ceil(Math.log2(n / 0x100000000)) + 1;
    const hiMod = 2 ** Math.min(hiBits, 21);
    for (;;) {
      const x = (this.uint32() % hiMod) * 0x100000000 + this.uint32();
      if (x < n) return x;
    }
  }
}

/** Exactly uniform bigint in [0, n), n >= 1, by rejection on byte strings masked to bitlength(n). */
export function uniformBigInt(n: bigint, source: RandomSource | RandomReader = cryptoRandomSource): bigint {
  if (n < 1n) throw new RangeError('uniformBigInt: bound must be >= 1');
  if (n === 1n) return 0n;
  const bits = (n - 1n).toString(2).length;
  const nbytes = Math.ceil(bits / 8);
  const topMask = (1 << (bits - 8 * (nbytes - 1))) - 1;
  for (;;) {
    const b = source instanceof RandomReader ? source.bytes(nbytes) : source.randomBytes(nbytes);
    b[0] &= topMask;
    let x = 0n;
    for (let i = 0; i < nbytes; i++) x = (x << 8n) | BigInt(b[i]);
    if (x < n) return x;
  }
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Bernoulli(num/den), exactly, for integers 0 <= num <= den, den >= 1: draw U uniform in
 * [0, den) and return U < num. With a RandomReader and a safe-integer den it stays on the
 * (exact) number fast path; samplers in hot loops pass a reader.
 */
export function bernoulliRational(num: bigint, den: bigint, source: RandomSource | RandomReader = cryptoRandomSource): boolean {
  if (den < 1n || num < 0n || num > den) throw new RangeError(`bernoulliRational: need 0 <= ${num} <= ${den}, den >= 1`);
  if (num === 0n) return false;
  if (num === den) return true;
  if (source instanceof RandomReader && den <= SAFE) {
    return source.uniformSafeInt(Number(den)) < Number(num);
  }
  return uniformBigInt(den, source) < num;
}
