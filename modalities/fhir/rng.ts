/**
 * A small seeded PRNG for decoding and simulation (post-processing and test data, never privacy
 * noise: that is sampled exactly with a CSPRNG in privacy/). sfc32 seeded through splitmix32
 * from a number or an FNV-1a hash of a string, so `fork(label)` gives independent, reproducible
 * sub-streams (one per site, per patient, …) whatever order they are consumed in.
 */

import { hashString, splitmix32 } from '../../model/prng.ts';

export type SeedLike = number | string;

function seedTo32(seed: SeedLike): number {
  if (typeof seed === 'string') return hashString(seed);
  if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be finite, got ${seed}`);
  return ((seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) >>> 0, 0x9e3779b1)) >>> 0;
}

/** Lowercase hex of a nibble and of a byte. */
const HEX1 = Array.from({ length: 16 }, (_, i) => i.toString(16));
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private readonly seedText: string;
  private spare: number | undefined;

  constructor(seed: SeedLike) {
    this.seedText = String(seed);
    const sm = splitmix32(seedTo32(seed));
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = sm() | 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** An independent stream derived from this stream's seed and a label (does not advance this one). */
  fork(label: string | number): Rng {
    return new Rng(`${this.seedText}/${label}`);
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 bits. */
  next(): number {
    return (this.nextU32() * 0x200000 + (this.nextU32() >>> 11)) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Marsaglia polar). */
  normal(mean = 0, sd = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + sd * z;
    }
    let u = 0;
    let v = 0;
    let s = 0;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    return mean + sd * u * m;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Index drawn with probability proportional to weights. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** A version-4-shaped UUID from this stream (deterministic for a given seed). */
  uuid(): string {
    // The hex of four draws a, b, c, d as a-b[0:4]-4b[5:8]-(8|c[0]&3)c[1:4]-c[4:8]d, by byte table.
    const a = this.nextU32();
    const b = this.nextU32();
    const c = this.nextU32();
    const d = this.nextU32();
    return (
      HEX2[a >>> 24] +
      HEX2[(a >>> 16) & 255] +
      HEX2[(a >>> 8) & 255] +
      HEX2[a & 255] +
      '-' +
      HEX2[b >>> 24] +
      HEX2[(b >>> 16) & 255] +
      '-4' +
      HEX1[(b >>> 8) & 15] +
      HEX2[b & 255] +
      '-' +
      HEX1[((c >>> 28) & 3) | 8] +
      HEX1[(c >>> 24) & 15] +
      HEX2[(c >>> 16) & 255] +
      '-' +
      HEX2[(c >>> 8) & 255] +
      HEX2[c & 255] +
      HEX2[d >>> 24] +
      HEX2[(d >>> 16) & 255] +
      HEX2[(d >>> 8) & 255] +
      HEX2[d & 255]
    );
  }
}
