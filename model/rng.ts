/**
 * The project's one seeded PRNG, for post-processing and test data: sampling synthetic rows from
 * an already-private model, decoding them into artefacts, simulating hospitals. NEVER for privacy
 * noise: that is sampled exactly with a CSPRNG in privacy/. Speed and reproducibility (same seed,
 * same output) are what matter here.
 *
 * sfc32 (Doty-Humphrey) seeded through splitmix32 from a number or an FNV-1a hash of a string, so
 * `fork(label)` gives independent, reproducible sub-streams (one per site, per patient, ...)
 * whatever order they are consumed in.
 */

export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a over UTF-16 code units: turns a string seed into 32 bits. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

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

  /** Uniform integer in [0, n) from one 53-bit draw (bias below 2^-20 for n < 2^32). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [0, n), exactly unbiased (rejection), for 1 <= n <= 2^32. */
  nextInt(n: number): number {
    if (!(n >= 1 && n <= 0x100000000) || !Number.isInteger(n)) throw new Error(`Rng.nextInt: bad bound ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
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
    let u: number;
    let v: number;
    let s: number;
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
