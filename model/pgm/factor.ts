/**
 * Numeric kernels over flat tables, driven by index maps from Domain.indexMap.
 * "log" tables hold natural logs of non-negative numbers; -Infinity encodes an exact zero
 * (disallowed cells after conditioning), so every kernel treats -Infinity carefully: the
 * arithmetic must never produce NaN from (-Infinity) - (-Infinity).
 */

/** log Σ exp(x) over a whole table; -Infinity when every entry is -Infinity. */
export function logSumExp(x: Float64Array): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  if (m === -Infinity) return -Infinity;
  if (m === Infinity) return Infinity;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  return m + Math.log(s);
}

/**
 * Log-space projection (marginalisation): out[j] = log Σ_{i: map[i]=j} exp(src[i] − sub[subMap[i]]).
 * The optional `sub` term is a message divided out Hugin-style; where src is -Infinity the result
 * term is zero regardless of `sub` (0/0 := 0, which is exact for junction-tree propagation).
 */
export function logProject(src: Float64Array, map: Int32Array, outSize: number, sub?: Float64Array, subMap?: Int32Array): Float64Array {
  const max = new Float64Array(outSize).fill(-Infinity);
  const n = src.length;
  const val = sub ? new Float64Array(n) : src;
  if (sub && subMap) {
    for (let i = 0; i < n; i++) {
      const s = src[i];
      val[i] = s === -Infinity ? -Infinity : s - sub[subMap[i]];
    }
  }
  for (let i = 0; i < n; i++) {
    const v = val[i];
    const j = map[i];
    if (v > max[j]) max[j] = v;
  }
  const sum = new Float64Array(outSize);
  for (let i = 0; i < n; i++) {
    const j = map[i];
    const m = max[j];
    if (m !== -Infinity) sum[j] += Math.exp(val[i] - m);
  }
  const out = new Float64Array(outSize);
  for (let j = 0; j < outSize; j++) out[j] = max[j] === -Infinity ? -Infinity : max[j] + Math.log(sum[j]);
  return out;
}

/** Linear projection: out[j] = Σ_{i: map[i]=j} src[i]. */
export function project(src: Float64Array, map: Int32Array, outSize: number): Float64Array {
  const out = new Float64Array(outSize);
  for (let i = 0; i < src.length; i++) out[map[i]] += src[i];
  return out;
}

/** Broadcast-add in place: target[i] += src[map[i]]. */
export function broadcastAdd(target: Float64Array, src: Float64Array, map: Int32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += src[map[i]];
}

/** exp(x − logNorm + log(total)) elementwise: a log table turned into counts summing to `total`. */
export function expNormalised(x: Float64Array, total: number): Float64Array {
  const z = logSumExp(x);
  if (!Number.isFinite(z)) throw new Error(`cannot normalise a table whose log-sum is ${z}`);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.exp(x[i] - z) * total;
  return out;
}
