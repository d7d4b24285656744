/**
 * Federated AIM-style adaptive plan (issue 4). See docs/synthesis.md for the design and the
 * privacy analysis; in short:
 *
 *   round 1  "one-way"      every 1-way marginal                         share `oneWayShare` of ρ
 *   round 2  "screen"       every candidate 2-way marginal, small budget  share `screenShare` of ρ
 *   round 3… "measure-k"    a batch of chosen 2-/3-way cliques            the rest, adaptively
 *
 * Every round is one distributed measurement (sites answer marginals, the coordinator sees only
 * the noised sum over sites). Selection is pure post-processing of the POOLED noisy answers of
 * earlier rounds: before each measurement round the plan fits the graphical model to what has
 * been measured, estimates for every candidate pair its current error ‖D_r − M_r(p̂)‖₁ from the
 * pooled noisy pair answers (minus the expected noise, as AIM's quality score does), scores a
 * candidate clique by the error it would fix minus the noise its own measurement would add
 * (AIM's "quality minus expected noise"), and picks a batch greedily with diminishing returns.
 * Because the scores come from pooled sums, the choice reflects the pooled error however
 * heterogeneous the sites are (FLAIM's point), and selection costs no budget beyond the
 * measurements themselves — no exponential mechanism is run.
 *
 * Annealing as in AIM: when most marginals of the last batch did not move the model by more
 * than their expected noise, the per-marginal ρ of the next batch is multiplied by
 * `annealFactor`. The last round always takes exactly the remaining budget, so the rounds'
 * ρ sum to `rhoTotal` (up to float rounding of one subtraction, < 1e-15·ρ).
 *
 * Junction-tree cap: a candidate is only chosen if the model over everything measured so far
 * plus the candidate stays within `maxCliqueCells` per clique and `maxTotalCells` in total.
 *
 * Pure: no I/O, no data access.
 */
import type { Dataset, Domain } from './domain.ts';
import { marginal } from './marginals.ts';
import { sample } from './sample.ts';
import type { Measurement } from './measurement.ts';
import { kWayWorkload } from './metrics.ts';
import type { FitPlan, RoundResult, RoundSpec } from './plan.ts';
import { estimateWithReport } from './pgm/estimate.ts';
import { buildJunctionTree, treeSize } from './pgm/junction-tree.ts';
import type { GraphicalModel } from './pgm/model.ts';

export interface AimPlanOptions {
  /** Hard cap on the number of rounds (network round trips), at least 3. Default 12. */
  maxRounds?: number;
  /** Share of ρ for the 1-way round. Default 0.15. */
  oneWayShare?: number;
  /** Share of ρ for the pair-screening round. Default 0.1. */
  screenShare?: number;
  /** Marginals per measurement round. Default ⌈d/2⌉ (d attributes), at least 2. */
  batch?: number;
  /**
   * Initial per-marginal ρ of the measurement rounds, as a fraction of the measurement budget
   * (ρ after the first two rounds). Default 1/(2d).
   */
  initialFraction?: number;
  /** Multiplier of the per-marginal ρ when a batch stops moving the model (AIM: σ/2 ⇒ ×4). Default 2. */
  annealFactor?: number;
  /** Largest marginal (cells) that may be measured. Default 100,000. */
  maxMarginalCells?: number;
  /** Junction-tree cap per clique (cells). Default 50,000. */
  maxCliqueCells?: number;
  /** Junction-tree cap over all cliques (cells). Default 150,000 (keeps a fit of ~1000 iterations well under a minute). */
  maxTotalCells?: number;
  /** Largest cliques considered: 2 (pairs only) or 3 (pairs and triples). Default 3. */
  maxCliqueSize?: 2 | 3;
  /** Mirror-descent iterations of the selection fit before each measurement round. Default 150. */
  selectionIterations?: number;
}

export interface AimPlan extends FitPlan {
  /** The model fitted for selection after `done` (a warm start for the final fit), if one was fitted. */
  selectionModel(done: readonly RoundResult[]): GraphicalModel | undefined;
  readonly options: Readonly<Required<AimPlanOptions>>;
}

const key = (attrs: readonly string[]): string => [...attrs].sort().join('\u0000');
const SQRT_2_PI = Math.sqrt(2 / Math.PI);

export function aimPlan(domain: Domain, rhoTotal: number, options: AimPlanOptions = {}): AimPlan {
  if (!(rhoTotal > 0) || !Number.isFinite(rhoTotal)) throw new Error(`aimPlan: rho must be positive, got ${rhoTotal}`);
  const d = domain.length;
  const o: Required<AimPlanOptions> = {
    maxRounds: options.maxRounds ?? 12,
    oneWayShare: options.oneWayShare ?? 0.15,
    screenShare: options.screenShare ?? 0.1,
    batch: options.batch ?? Math.max(2, Math.ceil(d / 2)),
    initialFraction: options.initialFraction ?? 1 / (2 * Math.max(1, d)),
    annealFactor: options.annealFactor ?? 2,
    maxMarginalCells: options.maxMarginalCells ?? 100_000,
    maxCliqueCells: options.maxCliqueCells ?? 50_000,
    maxTotalCells: options.maxTotalCells ?? 150_000,
    maxCliqueSize: options.maxCliqueSize ?? 3,
    selectionIterations: options.selectionIterations ?? 150,
  };
  if (!Number.isInteger(o.maxRounds) || o.maxRounds < 3) throw new Error(`aimPlan: maxRounds must be an integer >= 3, got ${o.maxRounds}`);
  if (!(o.oneWayShare > 0 && o.screenShare >= 0 && o.oneWayShare + o.screenShare < 1)) throw new Error('aimPlan: need oneWayShare > 0, screenShare >= 0 and their sum < 1');
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new Error(`aimPlan: batch must be a positive integer, got ${o.batch}`);
  if (!(o.initialFraction > 0 && o.initialFraction <= 1)) throw new Error('aimPlan: initialFraction must be in (0, 1]');
  if (!(o.annealFactor >= 1)) throw new Error('aimPlan: annealFactor must be >= 1');

  const oneWay = domain.attrs.map((a) => [a]);
  const pairs = kWayWorkload(domain, 2).filter((p) => domain.cells(p) <= Math.min(o.maxMarginalCells, o.maxCliqueCells));
  const triples = o.maxCliqueSize >= 3 ? kWayWorkload(domain, 3).filter((t) => domain.cells(t) <= Math.min(o.maxMarginalCells, o.maxCliqueCells)) : [];
  const rhoOne = pairs.length === 0 ? rhoTotal : rhoTotal * o.oneWayShare;
  const rhoScreen = rhoTotal * o.screenShare;
  const hasScreen = pairs.length > 0 && rhoScreen > 0;

  // Cache of derived state, keyed by the number of completed rounds; valid while the caller
  // passes the same RoundResult objects (a coordinator restart rebuilds it deterministically).
  const models: (GraphicalModel | undefined)[] = [];
  const rhoPer: number[] = []; // per-marginal ρ planned for the round at that index
  const specs: (RoundSpec | undefined)[] = [];
  let seen: readonly RoundResult[] = [];

  const sync = (done: readonly RoundResult[]): void => {
    let same = 0;
    while (same < done.length && same < seen.length && done[same] === seen[same]) same++;
    if (same < seen.length) {
      models.length = Math.min(models.length, same + 1);
      rhoPer.length = Math.min(rhoPer.length, same + 1);
      specs.length = Math.min(specs.length, same + 1);
    }
    seen = [...done];
  };

  const estimationInputs = (done: readonly RoundResult[]): Measurement[] => {
    const out: Measurement[] = [];
    const measuredSets: string[][] = [];
    done.forEach((r, i) => {
      if (i === 1 && hasScreen) return;
      out.push(...r.measurements);
      if (i >= 1) measuredSets.push(...r.measurements.map((m) => m.attrs));
    });
    if (hasScreen && done.length >= 2) {
      // Screening answers of pairs inside a measured clique are free information that does not
      // enlarge the model; the others stay out (they would densify the junction tree).
      const inside = (p: readonly string[]) => measuredSets.some((s) => p.every((a) => s.includes(a)));
      out.push(...done[1].measurements.filter((m) => inside(m.attrs)));
    }
    return out;
  };

  const fitModel = (done: readonly RoundResult[]): GraphicalModel => {
    const n = done.length;
    const cached = models[n];
    if (cached) return cached;
    let warm: GraphicalModel | undefined;
    for (let i = n - 1; i >= 0 && !warm; i--) warm = models[i];
    const { model } = estimateWithReport(domain, estimationInputs(done), {
      iterations: o.selectionIterations,
      warmStart: warm,
      maxCliqueCells: o.maxCliqueCells,
      maxTotalCells: o.maxTotalCells,
      onOversize: 'drop',
    });
    models[n] = model;
    return model;
  };

  const plan: AimPlan = {
    rhoTotal,
    options: o,
    selectionModel(done) {
      sync(done);
      return models[done.length];
    },
    estimationInputs,
    next(done) {
      sync(done);
      const n = done.length;
      if (specs[n] !== undefined || n < specs.length) return specs[n];
      const spec = decide(done);
      specs[n] = spec;
      return spec;
    },
  };

  function decide(done: readonly RoundResult[]): RoundSpec | undefined {
    const n = done.length;
    if (n === 0) return { name: 'one-way', marginals: oneWay, rho: rhoOne };
    if (n === 1 && hasScreen) return { name: 'screen-pairs', marginals: pairs, rho: rhoScreen };
    const spent = done.reduce((s, r) => s + r.spec.rho, 0);
    const remaining = rhoTotal - spent;
    if (!(remaining > rhoTotal * 1e-12) || pairs.length === 0) return undefined;
    if (n >= o.maxRounds) return undefined;

    const measureBudget = rhoTotal - rhoOne - (hasScreen ? rhoScreen : 0);
    const firstMeasure = hasScreen ? 2 : 1;
    let per = rhoPer[n - 1] ?? measureBudget * o.initialFraction;
    const model = fitModel(done);
    if (n > firstMeasure) {
      // Annealing: did the last batch move the model by more than its own noise?
      const prev = models[n - 1] ?? fitModel(done.slice(0, n - 1));
      const last = done[n - 1].measurements;
      let still = 0;
      for (const m of last) {
        const before = prev.marginal(m.attrs);
        const after = model.marginal(m.attrs);
        let moved = 0;
        for (let i = 0; i < before.length; i++) moved += Math.abs(after[i] - before[i]);
        if (moved <= SQRT_2_PI * m.sigma * m.values.length) still++;
      }
      if (still * 2 >= last.length) per *= o.annealFactor;
    }
    per = Math.min(per, remaining);

    const sel = selectAnnealed(done, model, per, remaining);
    const chosen = sel.chosen;
    per = sel.per;
    if (chosen.length === 0) return undefined;
    const roundsLeft = o.maxRounds - n;
    let rho = chosen.length * per;
    // Last round: the remainder, exactly, if this is the last allowed round or what would be
    // left could not pay for a meaningful batch.
    if (roundsLeft <= 1 || remaining - rho < 0.5 * o.batch * per || rho >= remaining) rho = remaining;
    rhoPer[n] = rho / chosen.length;
    return { name: `measure-${n - firstMeasure + 1}`, marginals: chosen, rho };
  }

  /**
   * Greedy batch selection on pooled noisy answers (post-processing only). If fewer than half a
   * batch is worth measuring at this ρ, the per-marginal ρ is raised (annealing) and selection
   * repeats, up to the remaining budget. Returns the chosen sets and the per-marginal ρ.
   */
  function selectAnnealed(done: readonly RoundResult[], model: GraphicalModel, per: number, remaining: number): { chosen: string[][]; per: number } {
    const all = done.flatMap((r) => r.measurements);
    const stats = new Stats(domain, all, model);
    for (;;) {
      const chosen = select(done, stats, per);
      if (chosen.length * 2 >= Math.min(o.batch, candidatesCount) || per * o.annealFactor > remaining || o.annealFactor === 1) return { chosen, per };
      per *= o.annealFactor;
    }
  }
  const candidatesCount = oneWay.length + pairs.length + triples.length;

  function select(done: readonly RoundResult[], stats: Stats, per: number): string[][] {
    const sigmaNext = Math.sqrt(1 / (2 * per));
    const cands = [...oneWay, ...pairs, ...triples];
    const excluded = new Set<string>();
    const consumed = new Set<string>();
    const chosen: string[][] = [];
    const inModel = estimationInputs(done).filter((m) => m.attrs.length >= 2).map((m) => [...m.attrs]);
    const gainOf = (c: readonly string[]): number => {
      const k = key(c);
      if (consumed.has(k)) return -Infinity;
      const s = stats.get(c);
      if (s.sigma < Infinity) {
        // Measured (or covered) before: structural misfit + inherited noise, minus the noise left after pooling one more answer.
        const after = 1 / Math.sqrt(1 / (s.sigma * s.sigma) + 1 / (sigmaNext * sigmaNext));
        let gain = Math.max(0, s.resid) + SQRT_2_PI * s.effCells(s.sigma) * (s.sigma - after);
        return gain;
      }
      // Never covered (triples): the misfit of its pairs it would fix, minus its own noise.
      let err = 0;
      for (const p of subPairs(c)) if (!consumed.has(key(p))) err += Math.max(0, stats.get(p).resid);
      return err - SQRT_2_PI * sigmaNext * domain.cells(c);
    };
    while (chosen.length < o.batch) {
      let best: string[] | undefined;
      let bestGain = 0;
      for (const c of cands) {
        if (excluded.has(key(c))) continue;
        const g = gainOf(c);
        if (g > bestGain) {
          best = c;
          bestGain = g;
        }
      }
      if (!best) break;
      const k = key(best);
      excluded.add(k);
      if (best.length >= 2) {
        const size = treeSize(domain, buildJunctionTree(domain, [...inModel, ...chosen, best]));
        if (size.maxCliqueCells > o.maxCliqueCells || size.totalCells > o.maxTotalCells) continue;
      }
      chosen.push(best);
      consumed.add(k);
      for (const p of subPairs(best)) consumed.add(key(p));
    }
    return chosen;
  }

  return plan;
}

function subPairs(c: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < c.length; i++) for (let j = i + 1; j < c.length; j++) out.push([c[i], c[j]]);
  return out;
}

/**
 * Pooled evidence about attribute set r from every measurement whose attributes contain r: each
 * is projected onto r (per-cell noise variance σ²·cells(m)/cells(r)) and they are averaged by
 * inverse variance. `resid` estimates the model's structural misfit ‖D_r − M_r(p̂)‖₁ beyond noise
 * (observed L1 minus the expected L1 of the pooled noise); `sigma` is the pooled per-cell σ
 * (Infinity when nothing covers r).
 */
export class Stats {
  private readonly cache = new Map<string, { resid: number; sigma: number; effCells: (sigma: number) => number }>();
  constructor(
    private readonly domain: Domain,
    private readonly measurements: readonly Measurement[],
    private readonly model: GraphicalModel,
  ) {}

  get(r: readonly string[]): { resid: number; sigma: number; effCells: (sigma: number) => number } {
    const k = key(r);
    let s = this.cache.get(k);
    if (!s) {
      s = this.compute(r);
      this.cache.set(k, s);
    }
    return s;
  }

  private synthetic: Dataset | undefined;

  /**
   * The model's marginal over r: exact when a junction-tree clique holds r or variable
   * elimination stays small, else from a large rounding sample of the model (its sampling error
   * is far below the measurement noise the score is compared with).
   */
  private modelMarginal(r: readonly string[]): Float64Array {
    try {
      return this.model.marginal(r, 1_000_000);
    } catch {
      const rows = Math.min(1_000_000, Math.max(200_000, Math.round(4 * this.model.total)));
      this.synthetic ??= sample(this.model, { rows, seed: 'aim-selection' });
      const counts = marginal(this.synthetic, r);
      const scale = this.model.total / rows;
      for (let i = 0; i < counts.length; i++) counts[i] *= scale;
      return counts;
    }
  }

  private compute(r: readonly string[]): { resid: number; sigma: number; effCells: (sigma: number) => number } {
    const domain = this.domain;
    const cells = domain.cells(r);
    const acc = new Float64Array(cells);
    let wsum = 0;
    for (const m of this.measurements) {
      if (!r.every((a) => m.attrs.includes(a))) continue;
      const map = domain.indexMap(m.attrs, r);
      const w = cells / (m.sigma * m.sigma * m.values.length);
      for (let i = 0; i < m.values.length; i++) acc[map[i]] += w * m.values[i];
      wsum += w;
    }
    if (wsum === 0) return { resid: -Infinity, sigma: Infinity, effCells: () => cells };
    const mu = this.modelMarginal(r);
    const sigma = Math.sqrt(1 / wsum);
    let l1 = 0;
    for (let i = 0; i < cells; i++) l1 += Math.abs(acc[i] / wsum - mu[i]);
    // Cells where the truth is well below the noise are mostly fixed by non-negativity in the
    // estimator, so noise costs about min(1, μ/σ) of a full cell there.
    const effCells = (sg: number): number => {
      let e = 0;
      for (let i = 0; i < cells; i++) e += Math.min(1, Math.max(0, mu[i]) / sg);
      return Math.max(1, e);
    };
    // Lower confidence bound: minus one standard deviation of the pure-noise L1, against the
    // winner's curse of taking the best of many noisy scores (as select-mst.ts does).
    const sd = sigma * Math.sqrt(cells * (1 - 2 / Math.PI));
    return { resid: l1 - SQRT_2_PI * sigma * cells - sd, sigma, effCells };
  }
}

/** Baseline plan: every 1-way marginal, once, with the whole budget (independent attributes). */
export function independentPlan(domain: Domain, rhoTotal: number): FitPlan {
  if (!(rhoTotal > 0) || !Number.isFinite(rhoTotal)) throw new Error(`independentPlan: rho must be positive, got ${rhoTotal}`);
  const oneWay = domain.attrs.map((a) => [a]);
  return {
    rhoTotal,
    next: (done) => (done.length === 0 ? { name: 'one-way', marginals: oneWay, rho: rhoTotal } : undefined),
    estimationInputs: (done) => done.flatMap((r) => r.measurements),
  };
}
