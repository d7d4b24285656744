/**
 * Sum-product belief propagation on a junction tree, in log space (two passes, Hugin-style
 * division with 0/0 := 0 so that -Infinity potentials from conditioning are handled exactly).
 */
import type { Domain } from '../domain.ts';
import { logProject, logSumExp } from './factor.ts';
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
  /** Unnormalised log marginals per clique (each sums, in exp, to exp(logZ)). */
  readonly logBeliefs: Float64Array[];
  /** Log partition function of the model exp(Σ potentials). */
  readonly logZ: number;
}

/** Runs BP; `logPotentials[i]` is the log potential over cliques[i] (not modified). */
export function calibrate(ct: CompiledTree, logPotentials: readonly Float64Array[]): Calibrated {
  const { tree, sepMaps, sepCells, bfs, parentEdge, incident } = ct;
  const n = tree.cliques.length;
  // msg[k][0]: message along edge k from edges[k][0] to edges[k][1]; msg[k][1]: the reverse.
  const msg: [Float64Array | undefined, Float64Array | undefined][] = tree.edges.map(() => [undefined, undefined]);
  const side = (k: number, c: number): 0 | 1 => (tree.edges[k][0] === c ? 0 : 1);
  const beliefs = logPotentials.map((p) => Float64Array.from(p));

  // Upward: leaves to root. beliefs[c] accumulates messages from children.
  for (let q = n - 1; q > 0; q--) {
    const c = bfs[q];
    const k = parentEdge[c];
    const s = side(k, c);
    const m = logProject(beliefs[c], sepMaps[k][s], sepCells[k]);
    msg[k][s] = m;
    const parent = tree.edges[k][1 - s];
    addMessage(beliefs[parent], m, sepMaps[k][1 - s]);
  }
  // Downward: root to leaves. A clique's belief is complete once its parent's message is added.
  for (let q = 0; q < n; q++) {
    const c = bfs[q];
    for (const k of incident[c]) {
      if (k === parentEdge[c]) continue;
      const s = side(k, c);
      // Message to the child = belief of c with the child's own upward message divided out.
      const m = logProject(beliefs[c], sepMaps[k][s], sepCells[k], msg[k][1 - s], sepMaps[k][s]);
      msg[k][s] = m;
      addMessage(beliefs[tree.edges[k][1 - s]], m, sepMaps[k][1 - s]);
    }
  }
  const logZ = n > 0 ? logSumExp(beliefs[0]) : 0;
  return { logBeliefs: beliefs, logZ };
}

function addMessage(target: Float64Array, m: Float64Array, map: Int32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += m[map[i]];
}
