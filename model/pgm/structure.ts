/**
 * The fixed structure of a graphical model: its parameter cliques (the measured attribute sets,
 * plus a singleton for every attribute nobody measured), the junction tree built from them, and
 * which tree clique holds each parameter clique. Shared by the estimator (hot loop) and the model.
 */
import type { Domain } from '../domain.ts';
import { broadcastAdd, project } from './factor.ts';
import { type CompiledTree, type Calibrated, compileTree } from './bp.ts';
import { buildJunctionTree, containingClique, type JunctionTree } from './junction-tree.ts';

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
    theta.forEach((t, c) => broadcastAdd(pots[this.assign[c]], t, this.maps[c]));
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
    return this.cliques.map((_, c) => project(treeMarginals[this.assign[c]], this.maps[c], this.cliqueCells[c]));
  }
}
