/**
 * Federated measurement plans: which marginals to ask the sites for in each round and with what
 * share of the fit's zCDP budget ρ. Pure: a plan looks only at the noisy answers of earlier rounds
 * (post-processing), never at data. The coordinator turns ρ into noise (see `sigmaForRho`), runs
 * the round, and calls `next` again until it returns undefined.
 *
 * The interface is adaptive on purpose: MST needs three fixed rounds, but an AIM-style plan
 * chooses each round from the current model and stops when the budget is spent, which
 * fits the same `next(done)` shape.
 */
import type { Domain } from '../domain.ts';
import type { ValueMap } from '../compress.ts';
import type { Measurement } from '../measurement.ts';
import type { GraphicalModel } from '../pgm/model.ts';
import { kWayWorkload } from '../metrics.ts';
import { selectMstTree } from './select-mst.ts';

export interface RoundSpec {
  /** Stable name of the round's purpose (for logs and the privacy ledger). */
  name: string;
  /** Marginals to measure; each attribute list fixes the layout of its answer (as marginals.ts). */
  marginals: string[][];
  /** zCDP ρ charged for the whole round, split evenly over its marginals. */
  rho: number;
  /**
   * A value map every site applies to its rows before counting: rare-value compression
   * (model/compress.ts, whose plan then works on the compressed domain) or declared band queries
   * (a structure group's `coarsen`). Each marginal naming a mapped attribute is released as a
   * linear query over the original domain (Measurement.coarsen, federation/run-fit.ts
   * `toMeasurements`). Absent: the original domain.
   */
  valueMap?: ValueMap;
}

/** Where the estimator works when a plan measured on a compressed domain, and the way back. */
export interface EstimationDomain {
  domain: Domain;
  /** The model over the plan's original domain from one fitted over `domain` (post-processing). */
  expand(model: GraphicalModel): GraphicalModel;
}

export interface RoundResult {
  spec: RoundSpec;
  /** One noisy measurement per marginal of spec.marginals, same order. */
  measurements: Measurement[];
}

export interface FitPlan {
  /** The total ρ the plan will spend; Σ of every round's ρ equals it exactly. */
  readonly rhoTotal: number;
  /**
   * The next round given the completed ones, or undefined when the plan is done. `prior`:
   * measurements made outside the plan (declared structure, model/plans/structure.ts) that an
   * adaptive plan may use when it selects; plans that do not select may ignore them.
   */
  next(done: readonly RoundResult[], prior?: readonly Measurement[]): RoundSpec | undefined;
  /** The measurements the estimator should be fitted to after the completed rounds. */
  estimationInputs(done: readonly RoundResult[]): Measurement[];
  /** Set by plans whose estimation inputs are over a compressed domain (model/plans/compress.ts). */
  estimationDomain?(done: readonly RoundResult[]): EstimationDomain | undefined;
}

/**
 * Per-cell noise σ (in records) when `marginals` count marginals are measured with equal Gaussian
 * noise for a total of `rho`: one record changes each marginal by 1 in L2, so each costs 1/(2σ²).
 */
export function sigmaForRho(rho: number, marginals: number): number {
  if (!(rho > 0) || !(marginals >= 1))
    throw new Error(`sigmaForRho: need rho > 0 and at least one marginal (rho=${rho}, marginals=${marginals})`);
  return Math.sqrt(marginals / (2 * rho));
}

export interface MstPlanOptions {
  /** Budget shares of the three rounds; they are normalised to sum to 1. Default 0.2 / 0.2 / 0.6. */
  shares?: { oneWay: number; select: number; tree: number };
  /** Leave out candidate pairs with more cells than this (they could not be in a capped model). */
  maxPairCells?: number;
}

/**
 * The first model's plan: round 1 measures every 1-way marginal; round 2 measures every
 * candidate pair at a small share, from which an MST is selected (post-processing); round 3
 * measures the tree's pairs with the rest. The estimator gets the 1-ways, the round-3 pairs and
 * also the round-2 answers of the selected pairs (already paid for, independent noise).
 */
export function mstPlan(domain: Domain, rhoTotal: number, options: MstPlanOptions = {}): FitPlan {
  if (!(rhoTotal > 0) || !Number.isFinite(rhoTotal)) throw new Error(`mstPlan: rho must be positive, got ${rhoTotal}`);
  const raw = options.shares ?? { oneWay: 0.2, select: 0.2, tree: 0.6 };
  const sum = raw.oneWay + raw.select + raw.tree;
  if (!(raw.oneWay > 0 && raw.select > 0 && raw.tree > 0)) throw new Error('mstPlan: every share must be positive');
  const maxCells = options.maxPairCells ?? Infinity;
  const oneWay = domain.attrs.map((a) => [a]);
  const candidates = kWayWorkload(domain, 2).filter((p) => domain.cells(p) <= maxCells);
  const rhoOne = candidates.length === 0 ? rhoTotal : (rhoTotal * raw.oneWay) / sum;
  const rhoSelect = (rhoTotal * raw.select) / sum;

  const selectedPairs = (done: readonly RoundResult[]): string[][] => {
    const sel = selectMstTree(domain, done[0].measurements, done[1].measurements, { maxPairCells: maxCells });
    return sel.edges.map(([a, b]) => [a, b]);
  };

  return {
    rhoTotal,
    next(done) {
      if (done.length === 0) return { name: 'one-way', marginals: oneWay, rho: rhoOne };
      if (candidates.length === 0) return undefined;
      if (done.length === 1) return { name: 'select-pairs', marginals: candidates, rho: rhoSelect };
      if (done.length === 2) {
        const pairs = selectedPairs(done);
        if (pairs.length === 0) return undefined;
        // The remainder, so the rounds sum to rhoTotal exactly whatever the rounding above.
        return { name: 'tree-pairs', marginals: pairs, rho: rhoTotal - done[0].spec.rho - done[1].spec.rho };
      }
      return undefined;
    },
    estimationInputs(done) {
      const out: Measurement[] = [];
      if (done.length >= 1) out.push(...done[0].measurements);
      if (done.length >= 3) {
        const chosen = new Set(done[2].spec.marginals.map((p) => [...p].sort().join('\u0000')));
        out.push(...done[1].measurements.filter((m) => chosen.has([...m.attrs].sort().join('\u0000'))));
        out.push(...done[2].measurements);
      }
      return out;
    },
  };
}
