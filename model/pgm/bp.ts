/**
 * Sum-product belief propagation on a junction tree (two passes, Hugin-style division with
 * 0/0 := 0 so that -Infinity potentials from conditioning are handled exactly). Potentials are
 * log tables; propagation runs on a rescaled linear scale (see `calibrate`).
 */
import type { Domain } from '../domain.ts';
import type { JunctionTree } from './junction-tree.ts';

/** A junction tree with its index maps precomputed (they are reused at every BP call). */
export interface CompiledTree {
  readonly tree: JunctionTree;
  readonly cells: readonly number[];
  /** Per edge k: maps from cliques[edges[k][0]] and cliques[edges[k][1]] onto separators[k]. */
  readonly sepMaps: readonly (readonly [Int32Array, Int32Array])[];
  readonly sepCells: readonly number[];
  /** Cliques in BFS order from the root (clique 0), with the edge to their parent (-1 at the root). */
  readonly bfs: readonly number[];
  readonly parentEdge: readonly number[];
  /** Edges incident to each clique. */
  readonly incident: readonly (readonly number[])[];
}

export function compileTree(domain: Domain, tree: JunctionTree): CompiledTree {
  const n = tree.cliques.length;
  const cells = tree.cliques.map((c) => domain.cells(c));
  const sepMaps = tree.edges.map(
    ([a, b], k) => [domain.indexMap(tree.cliques[a], tree.separators[k]), domain.indexMap(tree.cliques[b], tree.separators[k])] as const,
  );
  const sepCells = tree.separators.map((s) => domain.cells(s));
  const incident: number[][] = Array.from({ length: n }, () => []);
  tree.edges.forEach(([a, b], k) => {
    incident[a].push(k);
    incident[b].push(k);
  });
  const parentEdge = new Array<number>(n).fill(-2);
  const bfs: number[] = [];
  if (n > 0) {
    parentEdge[0] = -1;
    bfs.push(0);
    for (let q = 0; q < bfs.length; q++) {
      const c = bfs[q];
      for (const k of incident[c]) {
        const other = tree.edges[k][0] === c ? tree.edges[k][1] : tree.edges[k][0];
        if (parentEdge[other] !== -2) continue;
        parentEdge[other] = k;
        bfs.push(other);
      }
    }
  }
  if (bfs.length !== n) throw new Error('junction tree is not connected');
  return { tree, cells, sepMaps, sepCells, bfs, parentEdge, incident };
}

export interface Calibrated {
  /**
   * Per clique: its calibrated belief on a linear scale, proportional to the clique's marginal
   * (each is rescaled during propagation, so only ratios within a clique carry meaning).
   */
  readonly beliefs: Float64Array[];
  /** Log partition function of the model exp(Σ potentials). */
  readonly logZ: number;
}

/**
 * Below this largest cell a belief is rescaled to a largest cell of 1: a product of many
 * messages, each with largest cell 1, could otherwise underflow where the ratios it holds do not.
 */
const RESCALE_BELOW = 2 ** -400;

/**
 * Runs BP; `logPotentials[i]` is the log potential over cliques[i] (not modified).
 *
 * Each potential is exponentiated once, relative to its largest cell, and the messages are then
 * sums of products on that linear scale, each rescaled to a largest cell of 1, with the log of
 * every scale factor of the upward pass kept for logZ. The log-space version (a max, an exp per
 * cell and a log per separator cell for every message, then a log-sum-exp and an exp per cell to
 * normalise every belief) spent most of the estimator's time in Math.exp; this computes the same
 * marginals to within rounding (cells below 2^-1074 of a clique's largest one become 0, which in
 * records is below any float's resolution of the total). A −∞ potential cell is an exact 0.
 */
export function calibrate(ct: CompiledTree, logPotentials: readonly Float64Array[]): Calibrated {
  const { tree, sepMaps, sepCells, bfs, parentEdge, incident } = ct;
  const n = tree.cliques.length;
  const beliefs: Float64Array[] = new Array<Float64Array>(n);
  const logScale = new Float64Array(n);
  let zero = false;
  for (let c = 0; c < n; c++) {
    const p = logPotentials[c];
    let m = -Infinity;
    for (let i = 0; i < p.length; i++) if (p[i] > m) m = p[i];
    const b = new Float64Array(p.length);
    if (m === -Infinity) zero = true;
    else for (let i = 0; i < p.length; i++) b[i] = Math.exp(p[i] - m);
    beliefs[c] = b;
    logScale[c] = m;
  }
  if (zero || n === 0) return { beliefs, logZ: n === 0 ? 0 : -Infinity };
  const side = (k: number, c: number): 0 | 1 => (tree.edges[k][0] === c ? 0 : 1);
  // up[k]: the upward message along edge k (child to parent), kept for the Hugin division.
  const up: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(tree.edges.length);

  // Upward: leaves to root. beliefs[c] accumulates messages from children.
  for (let q = n - 1; q > 0; q--) {
    const c = bfs[q];
    const k = parentEdge[c];
    const s = side(k, c);
    const m = sumProject(beliefs[c], sepMaps[k][s], sepCells[k]);
    const mx = maxOf(m);
    if (!(mx > 0)) return { beliefs, logZ: -Infinity };
    scaleInPlace(m, 1 / mx);
    up[k] = m;
    const parent = tree.edges[k][1 - s];
    logScale[parent] += logScale[c] + Math.log(mx) + multiplyMessage(beliefs[parent], m, sepMaps[k][1 - s]);
  }
  const root = beliefs[0];
  let z = 0;
  for (let i = 0; i < root.length; i++) z += root[i];
  if (!(z > 0)) return { beliefs, logZ: -Infinity };
  const logZ = logScale[0] + Math.log(z);

  // Downward: root to leaves. A clique's belief is complete once its parent's message is added.
  for (let q = 0; q < n; q++) {
    const c = bfs[q];
    for (const k of incident[c]) {
      if (k === parentEdge[c]) continue;
      const s = side(k, c);
      // Message to the child = belief of c with the child's own upward message divided out
      // (0/0 := 0: a separator cell the child gave 0 is 0 in c's belief too).
      const u = up[k]!;
      const b = beliefs[c];
      const map = sepMaps[k][s];
      const m = new Float64Array(sepCells[k]);
      const inv = new Float64Array(u.length);
      let finite = true;
      for (let j = 0; j < u.length; j++) {
        inv[j] = u[j] > 0 ? 1 / u[j] : 0;
        if (inv[j] === Infinity) finite = false;
      }
      if (finite) {
        for (let i = 0; i < b.length; i++) {
          const j = map[i];
          m[j] += b[i] * inv[j];
        }
      } else {
        // A subnormal message cell has no finite reciprocal: divide instead.
        for (let i = 0; i < b.length; i++) {
          const j = map[i];
          if (u[j] > 0) m[j] += b[i] / u[j];
        }
      }
      const mx = maxOf(m);
      if (mx > 0) scaleInPlace(m, 1 / mx);
      multiplyMessage(beliefs[tree.edges[k][1 - s]], m, sepMaps[k][1 - s]);
    }
  }
  return { beliefs, logZ };
}

/** out[j] = Σ_{i: map[i]=j} src[i]. */
function sumProject(src: Float64Array, map: Int32Array, outSize: number): Float64Array {
  const out = new Float64Array(outSize);
  for (let i = 0; i < src.length; i++) out[map[i]] += src[i];
  return out;
}

function maxOf(x: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  return m;
}

function scaleInPlace(x: Float64Array, f: number): void {
  for (let i = 0; i < x.length; i++) x[i] *= f;
}

/**
 * target[i] *= m[map[i]]; when the product's largest cell falls below RESCALE_BELOW the target is
 * rescaled to a largest cell of 1. Returns the log of the factor the target was divided by (0
 * when not rescaled), which the caller adds to the target's log scale.
 */
function multiplyMessage(target: Float64Array, m: Float64Array, map: Int32Array): number {
  let mx = 0;
  for (let i = 0; i < target.length; i++) {
    const v = target[i] * m[map[i]];
    target[i] = v;
    if (v > mx) mx = v;
  }
  if (mx >= RESCALE_BELOW || mx === 0) return 0;
  scaleInPlace(target, 1 / mx);
  return Math.log(mx);
}
