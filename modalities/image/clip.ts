/**
 * Contribution bounding of per-patient feature vectors: each patient's coefficient vector is
 * scaled into the L2 ball of radius C, so one patient changes a sum of vectors by at most C
 * (the L2 sensitivity of the sum; C² for a sum of squares). Pure.
 */

export function l2Norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** Returns a copy of `v` scaled so that ‖v‖₂ ≤ C (unchanged when already inside the ball). */
export function clipL2(v: ArrayLike<number>, C: number): Float64Array {
  if (!(C > 0) || !Number.isFinite(C)) throw new Error(`clipL2: bound must be a positive finite number, got ${C}`);
  const out = Float64Array.from(v as ArrayLike<number>);
  const n = l2Norm(out);
  if (n > C) {
    const s = C / n;
    for (let i = 0; i < out.length; i++) out[i] *= s;
  }
  return out;
}

/** Clamps every entry into [-b, b] (per-coordinate bound; used for the squared-coefficient sums). */
export function clipLinf(v: ArrayLike<number>, b: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.max(-b, Math.min(b, v[i]));
  return out;
}
