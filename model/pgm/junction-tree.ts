/**
 * Junction tree over the attributes, built from the attribute sets of the measurements:
 * connect attributes measured together, triangulate by greedy min-fill elimination, keep the
 * maximal elimination cliques and join them by a maximum-weight spanning tree on separator size
 * (which gives the running-intersection property). Attributes never measured become singleton
 * cliques joined by empty separators, so the result is always one tree.
 */
import type { Domain } from '../domain.ts';
import { UnionFind } from '../union-find.ts';

export interface JunctionTree {
  /** Elimination order (first eliminated first). Sampling walks it backwards. */
  readonly order: readonly string[];
  /**
   * For order[i]: the attribute itself followed by its neighbours eliminated after it
   * (its "parents" when sampling in reverse order). Always contained in some maximal clique.
   */
  readonly eliminationCliques: readonly (readonly string[])[];
  /** Maximal cliques, attributes in domain order. */
  readonly cliques: readonly (readonly string[])[];
  /** Tree edges between clique indices; separators[k] is cliques[a] ∩ cliques[b] for edges[k]. */
  readonly edges: readonly (readonly [number, number])[];
  readonly separators: readonly (readonly string[])[];
}

/** Greedy min-fill elimination order; ties broken by the cells of the clique formed, then domain order. */
export function minFillOrder(domain: Domain, attrSets: readonly (readonly string[])[]): string[] {
  const adj = adjacency(domain, attrSets);
  const remaining = new Set(domain.attrs);
  const order: string[] = [];
  while (remaining.size > 0) {
    let best: string | undefined;
    let bestFill = Infinity;
    let bestCells = Infinity;
    for (const v of remaining) {
      const nb = [...adj.get(v)!];
      let fill = 0;
      for (let i = 0; i < nb.length; i++) for (let j = i + 1; j < nb.length; j++) if (!adj.get(nb[i])!.has(nb[j])) fill++;
      if (fill > bestFill) continue;
      const cells = domain.sizeOf(v) * domain.cells(nb);
      if (fill < bestFill || cells < bestCells) {
        best = v;
        bestFill = fill;
        bestCells = cells;
      }
    }
    eliminate(adj, best!);
    remaining.delete(best!);
    order.push(best!);
  }
  return order;
}

/** Builds the junction tree; pass `order` to reproduce a stored tree exactly. */
export function buildJunctionTree(
  domain: Domain,
  attrSets: readonly (readonly string[])[],
  order: readonly string[] = minFillOrder(domain, attrSets),
): JunctionTree {
  if (order.length !== domain.length || new Set(order).size !== domain.length)
    throw new Error('junction tree: elimination order must list every attribute once');
  const adj = adjacency(domain, attrSets);
  const eliminationCliques: string[][] = [];
  for (const v of order) {
    eliminationCliques.push([v, ...domain.canonical(adj.get(v)!)]);
    eliminate(adj, v);
  }
  // Maximal cliques: largest first, drop any contained in one already kept.
  const byCells = eliminationCliques
    .map((c) => domain.canonical(c))
    .sort((a, b) => b.length - a.length || domain.cells(b) - domain.cells(a));
  const cliques: string[][] = [];
  for (const c of byCells) if (!cliques.some((k) => isSubset(c, k))) cliques.push(c);
  // Kruskal on separator size; zero-weight edges connect independent components.
  const candidates: { a: number; b: number; w: number }[] = [];
  for (let a = 0; a < cliques.length; a++)
    for (let b = a + 1; b < cliques.length; b++) candidates.push({ a, b, w: intersect(cliques[a], cliques[b]).length });
  candidates.sort((x, y) => y.w - x.w || x.a - y.a || x.b - y.b);
  const uf = new UnionFind(cliques.length);
  const edges: [number, number][] = [];
  const separators: string[][] = [];
  for (const { a, b } of candidates) {
    if (!uf.union(a, b)) continue;
    edges.push([a, b]);
    separators.push(intersect(cliques[a], cliques[b]));
  }
  return { order: [...order], eliminationCliques, cliques, edges, separators };
}

/** Largest and total clique size (cells) of a tree: what the model-size cap is checked against. */
export function treeSize(domain: Domain, tree: JunctionTree): { maxCliqueCells: number; totalCells: number; largest: readonly string[] } {
  let maxCliqueCells = 0;
  let totalCells = 0;
  let largest: readonly string[] = [];
  for (const c of tree.cliques) {
    const n = domain.cells(c);
    totalCells += n;
    if (n > maxCliqueCells) {
      maxCliqueCells = n;
      largest = c;
    }
  }
  return { maxCliqueCells, totalCells, largest };
}

/** Index of the smallest clique containing every attribute of `attrs`, or -1. */
export function containingClique(domain: Domain, tree: JunctionTree, attrs: readonly string[]): number {
  let best = -1;
  let bestCells = Infinity;
  tree.cliques.forEach((c, i) => {
    if (!isSubset(attrs, c)) return;
    const n = domain.cells(c);
    if (n < bestCells) {
      best = i;
      bestCells = n;
    }
  });
  return best;
}

export function isSubset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((x) => b.includes(x));
}

function intersect(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => b.includes(x));
}

function adjacency(domain: Domain, attrSets: readonly (readonly string[])[]): Map<string, Set<string>> {
  const adj = new Map<string, Set<string>>(domain.attrs.map((a) => [a, new Set<string>()]));
  for (const set of attrSets) {
    for (const a of set) if (!adj.has(a)) throw new Error(`junction tree: unknown attribute "${a}"`);
    for (const a of set) for (const b of set) if (a !== b) adj.get(a)!.add(b);
  }
  return adj;
}

/** Removes v, connecting its neighbours pairwise (the fill-in edges). */
function eliminate(adj: Map<string, Set<string>>, v: string): void {
  const nb = [...adj.get(v)!];
  for (const a of nb) {
    const s = adj.get(a)!;
    s.delete(v);
    for (const b of nb) if (a !== b) s.add(b);
  }
  adj.delete(v);
}
