/**
 * The fixed structure of a graphical model: its parameter cliques (the measured attribute sets,
 * plus a singleton for every attribute nobody measured), the junction tree built from them, and
 * which tree clique holds each parameter clique. Shared by the estimator (hot loop) and the model.
 */
import type { Domain } from '../domain.ts';
import { broadcastAdd, project } from './factor.ts';
import { type CompiledTree, type Calibrated, compileTree } from './bp.ts';
import { buildJunctionTree, containingClique, isSubset, type JunctionTree } from './junction-tree.ts';

export class Structure {
  readonly domain: Domain;
  /** Parameter cliques in domain order; potentials live on these. */
  readonly cliques: readonly (readonly string[])[];
  readonly tree: JunctionTree;
  readonly compiled: CompiledTree;
  /** assign[c] = index of the tree clique that contains parameter clique c. */
  readonly assign: readonly number[];
  /** maps[c] = for each cell of tree clique assign[c], the cell of parameter clique c. */
  readonly maps: readonly Int32Array[];
  readonly cliqueCells: readonly number[];
  /**
   * via[c] = a parameter clique strictly containing c with fewer cells than c's tree clique (the
   * smallest such), or -1. Clique c's marginal is projected from via[c]'s and its potential is
   * folded into via[c]'s before the tree: on the demo's model 186 parameter cliques sit in 37
   * tree cliques, and projecting each from its tree clique touched 3× the tree's cells.
   */
  private readonly via: readonly number[];
  /** viaMaps[c] = for each cell of parameter clique via[c], the cell of c (when via[c] ≥ 0). */
  private readonly viaMaps: readonly (Int32Array | undefined)[];
  /** Parameter cliques, most attributes first (a clique before every clique it contains). */
  private readonly topDown: readonly number[];

  constructor(domain: Domain, cliques: readonly (readonly string[])[], order?: readonly string[]) {
    this.domain = domain;
    this.cliques = cliques.map((c) => domain.canonical(c));
    this.tree = buildJunctionTree(domain, this.cliques, order);
    this.compiled = compileTree(domain, this.tree);
    this.assign = this.cliques.map((c) => {
      const j = containingClique(domain, this.tree, c);
      if (j < 0) throw new Error(`internal: parameter clique [${c.join(', ')}] is in no junction-tree clique`);
      return j;
    });
    this.maps = this.cliques.map((c, i) => domain.indexMap(this.tree.cliques[this.assign[i]], c));
    this.cliqueCells = this.cliques.map((c) => domain.cells(c));
    const treeCells = this.compiled.cells;
    this.via = this.cliques.map((c, i) => {
      let best = -1;
      let bestCells = treeCells[this.assign[i]];
      this.cliques.forEach((p, j) => {
        if (p.length > c.length && this.cliqueCells[j] < bestCells && isSubset(c, p)) {
          best = j;
          bestCells = this.cliqueCells[j];
        }
      });
      return best;
    });
    this.viaMaps = this.cliques.map((c, i) => (this.via[i] >= 0 ? domain.indexMap(this.cliques[this.via[i]], c) : undefined));
    this.topDown = this.cliques.map((_, i) => i).sort((a, b) => this.cliques[b].length - this.cliques[a].length || a - b);
  }

  /** Parameter cliques for a list of attribute sets: unique canonical sets + singletons for uncovered attributes. */
  static parameterCliques(domain: Domain, attrSets: readonly (readonly string[])[]): string[][] {
    const seen = new Map<string, string[]>();
    for (const s of attrSets) {
      const c = domain.canonical(s);
      seen.set(c.join('\u0000'), c);
    }
    const covered = new Set([...seen.values()].flat());
    for (const a of domain.attrs) if (!covered.has(a)) seen.set(a, [a]);
    return [...seen.values()];
  }

  /** Index of a parameter clique equal to the canonical form of `attrs`, or -1. */
  indexOfClique(attrs: readonly string[]): number {
    const key = this.domain.canonical(attrs).join('\u0000');
    return this.cliques.findIndex((c) => c.join('\u0000') === key);
  }

  /** Log potentials on the tree cliques: the sum of the parameter potentials each holds. */
  treePotentials(theta: readonly Float64Array[]): Float64Array[] {
    const pots = this.compiled.cells.map((n) => new Float64Array(n));
    // Smallest cliques first: each is folded into its `via` clique (a copy of that θ) or added to its tree clique.
    const folded: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(theta.length);
    for (let q = this.topDown.length - 1; q >= 0; q--) {
      const c = this.topDown[q];
      const t = folded[c] ?? theta[c];
      const v = this.via[c];
      if (v < 0) broadcastAdd(pots[this.assign[c]], t, this.maps[c]);
      else broadcastAdd((folded[v] ??= Float64Array.from(theta[v])), t, this.viaMaps[c]!);
    }
    return pots;
  }

  /** Counts (summing to `total`) of every tree clique from calibrated beliefs. */
  treeMarginals(cal: Calibrated, total: number): Float64Array[] {
    if (!Number.isFinite(cal.logZ)) throw new Error(`cannot normalise a model whose log partition function is ${cal.logZ}`);
    return cal.beliefs.map((b) => {
      let s = 0;
      for (let i = 0; i < b.length; i++) s += b[i];
      const f = total / s;
      const out = new Float64Array(b.length);
      for (let i = 0; i < b.length; i++) out[i] = b[i] * f;
      return out;
    });
  }

  /** Counts of every parameter clique, projected from the tree-clique counts. */
  cliqueMarginals(treeMarginals: readonly Float64Array[]): Float64Array[] {
    const out: Float64Array[] = new Array<Float64Array>(this.cliques.length);
    for (const c of this.topDown) {
      const v = this.via[c];
      out[c] =
        v < 0
          ? project(treeMarginals[this.assign[c]], this.maps[c], this.cliqueCells[c])
          : project(out[v], this.viaMaps[c]!, this.cliqueCells[c]);
    }
    return out;
  }
}
