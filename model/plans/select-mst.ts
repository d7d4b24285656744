/**
 * MST-style structure selection (McKenna, Miklau, Sheldon, "Winning the NIST Contest", JPC 2021)
 * as pure post-processing of noisy measurements: no data access, no budget.
 *
 * Each candidate pair (a, b) is scored by how far its noisy 2-way marginal is from the product of
 * the 1-way estimates, i.e. by how much the pair would add over an independence model; the tree
 * is the maximum spanning tree of those scores (Kruskal). Every noisy cell adds E|Z| = σ·√(2/π)
 * to an L1 distance even when the pair is independent, which would favour pairs with many cells,
 * so that expected noise contribution is subtracted (as AIM does for its quality scores).
 */
import type { Domain } from '../domain.ts';
import { type Measurement, estimateTotal, validateMeasurement } from '../measurement.ts';
import { UnionFind } from '../union-find.ts';

export interface PairScore {
  pair: [string, string];
  /** Noise-corrected L1 distance (records) between the pair marginal and the independence estimate. */
  score: number;
}

export interface MstSelection {
  /** Tree edges (attribute pairs), in the order Kruskal accepted them (best first). */
  edges: [string, string][];
  /** Score of every candidate pair, best first. */
  scores: PairScore[];
}

export interface MstOptions {
  /** Skip pairs whose marginal has more cells than this (keeps the fitted model under its cap). */
  maxPairCells?: number;
  /**
   * Standard deviations of the pure-noise L1 to subtract from each score (a lower confidence bound).
   * Large pairs have noisy scores, and taking the maximum favours whichever got lucky noise
   * (winner's curse); default 1.
   */
  confidence?: number;
}

export function selectMstTree(
  domain: Domain,
  oneWay: readonly Measurement[],
  pairs: readonly Measurement[],
  options: MstOptions = {},
): MstSelection {
  for (const m of [...oneWay, ...pairs]) validateMeasurement(domain, m);
  const total = estimateTotal([...oneWay, ...pairs]).total;
  const single = new Map<string, Float64Array>();
  for (const a of domain.attrs) {
    const ms = oneWay.filter((m) => m.attrs.length === 1 && m.attrs[0] === a);
    if (ms.length === 0) throw new Error(`selectMstTree: no 1-way measurement of "${a}"`);
    single.set(a, probabilities(ms));
  }
  const maxCells = options.maxPairCells ?? Infinity;
  const confidence = options.confidence ?? 1;
  const scores: PairScore[] = [];
  for (const m of pairs) {
    if (m.attrs.length !== 2) throw new Error(`selectMstTree: candidate [${m.attrs.join(', ')}] is not a pair`);
    if (m.values.length > maxCells) continue;
    const [a, b] = m.attrs;
    const pa = single.get(a)!;
    const pb = single.get(b)!;
    let l1 = 0;
    for (let i = 0; i < pa.length; i++)
      for (let j = 0; j < pb.length; j++) l1 += Math.abs(m.values[i * pb.length + j] - total * pa[i] * pb[j]);
    const k = m.values.length;
    const noiseSd = m.sigma * Math.sqrt(k * (1 - 2 / Math.PI));
    scores.push({ pair: [a, b], score: l1 - Math.sqrt(2 / Math.PI) * m.sigma * k - confidence * noiseSd });
  }
  scores.sort((x, y) => y.score - x.score);
  const uf = new UnionFind(domain.length);
  const edges: [string, string][] = [];
  for (const { pair } of scores) if (uf.union(domain.indexOf(pair[0]), domain.indexOf(pair[1]))) edges.push(pair);
  return { edges, scores };
}

/**
 * A probability vector from one or more noisy 1-way measurements of the same attribute:
 * inverse-variance average, negatives clipped to zero, renormalised (uniform if nothing is left).
 */
function probabilities(ms: readonly Measurement[]): Float64Array {
  const n = ms[0].values.length;
  const acc = new Float64Array(n);
  let wsum = 0;
  for (const m of ms) {
    const w = 1 / (m.sigma * m.sigma);
    wsum += w;
    for (let i = 0; i < n; i++) acc[i] += w * m.values[i];
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    acc[i] = Math.max(0, acc[i] / wsum);
    s += acc[i];
  }
  for (let i = 0; i < n; i++) acc[i] = s > 0 ? acc[i] / s : 1 / n;
  return acc;
}
