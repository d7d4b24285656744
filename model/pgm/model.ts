/**
 * A fitted graphical model: p(x) ∝ exp(Σ_c θ_c(x_c)) over parameter cliques c, scaled to an
 * estimated number of records `total`. Marginals come from calibrated junction-tree beliefs
 * (or variable elimination when the attributes span several cliques). Immutable; conditioning
 * returns a new model.
 */
import { Domain } from '../domain.ts';
import { type Calibrated, calibrate } from './bp.ts';
import { broadcastAdd, expNormalised, logProject, project } from './factor.ts';
import { containingClique } from './junction-tree.ts';
import { Structure } from './structure.ts';

/** JSON form for storage; potentials are little-endian Float64 in base64 (exact, and -Infinity survives). */
export interface GraphicalModelJSON {
  format: 'fedsynth-pgm';
  version: 1;
  domain: { attrs: string[]; sizes: number[] };
  /** Estimated number of records. */
  total: number;
  cliques: string[][];
  potentials: string[];
  /** Elimination order, so the junction tree (and hence sampling) is reproduced exactly. */
  order: string[];
}

/** Largest intermediate table variable elimination may build for an out-of-clique marginal. */
const DEFAULT_MAX_QUERY_CELLS = 1e7;

export class GraphicalModel {
  readonly structure: Structure;
  /** Log potentials θ_c per parameter clique (structure.cliques). Treat as read-only. */
  readonly potentials: readonly Float64Array[];
  /** Number of records the model stands for (sum of every marginal). */
  readonly total: number;
  private cal: Calibrated | undefined;
  private treeCounts: Float64Array[] | undefined;

  constructor(structure: Structure, potentials: readonly Float64Array[], total: number, calibrated?: Calibrated) {
    if (potentials.length !== structure.cliques.length) throw new Error('GraphicalModel: one potential per clique expected');
    potentials.forEach((p, i) => {
      if (p.length !== structure.cliqueCells[i])
        throw new Error(`GraphicalModel: potential ${i} has ${p.length} cells, expected ${structure.cliqueCells[i]}`);
    });
    if (!(total > 0) || !Number.isFinite(total)) throw new Error(`GraphicalModel: total must be a positive number, got ${total}`);
    this.structure = structure;
    this.potentials = potentials;
    this.total = total;
    this.cal = calibrated;
  }

  get domain(): Domain {
    return this.structure.domain;
  }

  get cliques(): readonly (readonly string[])[] {
    return this.structure.cliques;
  }

  private calibrated(): Calibrated {
    if (!this.cal) {
      this.cal = calibrate(this.structure.compiled, this.structure.treePotentials(this.potentials));
      if (!Number.isFinite(this.cal.logZ)) throw new Error('GraphicalModel: the potentials give every record zero probability');
    }
    return this.cal;
  }

  /** Log partition function of exp(Σ θ). */
  get logZ(): number {
    return this.calibrated().logZ;
  }

  /** Counts over each junction-tree clique (structure.tree.cliques), summing to total. */
  treeMarginals(): readonly Float64Array[] {
    if (!this.treeCounts) this.treeCounts = this.structure.treeMarginals(this.calibrated(), this.total);
    return this.treeCounts;
  }

  /**
   * Expected counts over `attrs` (row-major in the order given), summing to `total`.
   * Exact: from one clique's belief when some clique covers `attrs`, else by variable elimination
   * (throws if that would build a table above `maxCells`).
   */
  marginal(attrs: readonly string[], maxCells = DEFAULT_MAX_QUERY_CELLS): Float64Array {
    const domain = this.domain;
    if (new Set(attrs).size !== attrs.length) throw new Error(`marginal: repeated attribute in [${attrs.join(', ')}]`);
    const j = containingClique(domain, this.structure.tree, attrs);
    if (j >= 0) {
      const clique = this.structure.tree.cliques[j];
      return project(this.treeMarginals()[j], domain.indexMap(clique, attrs), domain.cells(attrs));
    }
    const pots = this.structure.treePotentials(this.potentials);
    const factors = this.structure.tree.cliques.map((c, i) => ({ attrs: c, values: pots[i] }));
    return expNormalised(eliminate(domain, factors, attrs, maxCells), this.total);
  }

  /** Probability under the model that every attribute in `where` takes one of its listed values. */
  probability(where: Readonly<Record<string, readonly number[]>>): number {
    const cond = this.conditionedPotentials(where);
    const logZ = calibrate(this.structure.compiled, this.structure.treePotentials(cond)).logZ;
    return Math.exp(logZ - this.logZ);
  }

  /**
   * The model restricted to records where each listed attribute takes one of its allowed values:
   * disallowed cells get potential −∞ and BP is re-run. The new total is the expected number of
   * matching records (total × P(where)). Throws when the condition has probability zero.
   */
  condition(where: Readonly<Record<string, readonly number[]>>): GraphicalModel {
    const cond = this.conditionedPotentials(where);
    const cal = calibrate(this.structure.compiled, this.structure.treePotentials(cond));
    if (!Number.isFinite(cal.logZ)) throw new Error(`condition ${JSON.stringify(where)} has probability zero under the model`);
    const total = this.total * Math.exp(cal.logZ - this.logZ);
    // A vanishingly rare condition still yields a valid (tiny) model; callers choose the row count.
    return new GraphicalModel(this.structure, cond, total > 0 ? total : Number.MIN_VALUE, cal);
  }

  private conditionedPotentials(where: Readonly<Record<string, readonly number[]>>): Float64Array[] {
    const domain = this.domain;
    const out = this.potentials.map((p) => Float64Array.from(p));
    for (const [attr, allowed] of Object.entries(where)) {
      const size = domain.sizeOf(attr);
      const indicator = new Float64Array(size).fill(-Infinity);
      for (const v of allowed) {
        if (!Number.isInteger(v) || v < 0 || v >= size) throw new Error(`condition: value ${v} of "${attr}" is outside 0..${size - 1}`);
        indicator[v] = 0;
      }
      // The smallest parameter clique holding attr (every attribute is in one by construction).
      let best = -1;
      this.structure.cliques.forEach((c, i) => {
        if (c.includes(attr) && (best < 0 || this.structure.cliqueCells[i] < this.structure.cliqueCells[best])) best = i;
      });
      broadcastAdd(out[best], indicator, domain.indexMap(this.structure.cliques[best], [attr]));
    }
    return out;
  }

  toJSON(): GraphicalModelJSON {
    return {
      format: 'fedsynth-pgm',
      version: 1,
      domain: { attrs: [...this.domain.attrs], sizes: [...this.domain.sizes] },
      total: this.total,
      cliques: this.structure.cliques.map((c) => [...c]),
      potentials: this.potentials.map(encodeFloat64),
      order: [...this.structure.tree.order],
    };
  }

  static fromJSON(json: GraphicalModelJSON): GraphicalModel {
    if (json?.format !== 'fedsynth-pgm' || json.version !== 1) throw new Error('GraphicalModel.fromJSON: not a fedsynth-pgm v1 document');
    const domain = new Domain(json.domain.attrs, json.domain.sizes);
    const structure = new Structure(domain, json.cliques, json.order);
    return new GraphicalModel(structure, json.potentials.map(decodeFloat64), json.total);
  }
}

interface LogFactor {
  readonly attrs: readonly string[];
  readonly values: Float64Array;
}

/** Variable elimination in log space; returns the unnormalised log table over `keep` (in that order). */
function eliminate(domain: Domain, factors: readonly LogFactor[], keep: readonly string[], maxCells: number): Float64Array {
  let fs = [...factors];
  const keepSet = new Set(keep);
  const toEliminate = new Set(fs.flatMap((f) => f.attrs).filter((a) => !keepSet.has(a)));
  while (toEliminate.size > 0) {
    // Greedy: eliminate the variable whose combined factor is smallest.
    let best = '';
    let bestCells = Infinity;
    for (const v of toEliminate) {
      const cells = domain.cells(domain.canonical(fs.filter((f) => f.attrs.includes(v)).flatMap((f) => f.attrs)));
      if (cells < bestCells) {
        best = v;
        bestCells = cells;
      }
    }
    if (bestCells > maxCells) throw new Error(`marginal: variable elimination needs a table of ${bestCells} cells (> ${maxCells})`);
    const group = fs.filter((f) => f.attrs.includes(best));
    const union = domain.canonical(group.flatMap((f) => f.attrs));
    const joint = new Float64Array(bestCells);
    for (const f of group) broadcastAdd(joint, f.values, domain.indexMap(union, f.attrs));
    const rest = union.filter((a) => a !== best);
    fs = fs.filter((f) => !f.attrs.includes(best));
    fs.push({ attrs: rest, values: logProject(joint, domain.indexMap(union, rest), domain.cells(rest)) });
    toEliminate.delete(best);
  }
  const out = new Float64Array(domain.cells(keep));
  for (const f of fs) broadcastAdd(out, f.values, domain.indexMap(keep, f.attrs));
  return out;
}

function encodeFloat64(a: Float64Array): string {
  const bytes = new Uint8Array(a.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat64(i * 8, a[i], true);
  return Buffer.from(bytes).toString('base64');
}

function decodeFloat64(s: string): Float64Array {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length % 8 !== 0) throw new Error('GraphicalModel.fromJSON: potential is not a whole number of float64 values');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}
