/**
 * The one definition of the federation's release mechanism: which datasets are neighbours, what
 * that makes the sensitivity of a round's answer vector, the ρ a round costs and the per-site
 * noise planned for it. The site (its charge and policy checks), the coordinator (planning and
 * release), the audit-log reconciler and the in-process fit all call these functions, so a
 * change of the neighbouring relation is one edit here and every caller follows.
 *
 * Pure: accounting in doubles (as `accountant.ts`), the noise parameter itself an exact rational.
 */
import { planDistributedNoise, rhoDistributedDiscreteGaussian, rhoFromEpsilonDelta, type Rho } from './accountant.ts';
import { rationalToNumber, type Rational } from './rational.ts';

/**
 * `add-remove`: neighbouring federations differ by one patient (one row at one site) present or
 * absent. `replace-one`: they differ by one patient's row replaced by another.
 */
export type NeighbouringRelation = 'add-remove' | 'replace-one';

/** The relation every release of this federation is private under. */
export const NEIGHBOURING_RELATION: NeighbouringRelation = 'add-remove';

/** What the audit records as the privacy unit, so a reader knows what ρ protects. */
export function privacyUnit(relation: NeighbouringRelation = NEIGHBOURING_RELATION): string {
  return relation === 'add-remove' ? 'patient (add/remove)' : 'patient (replace one)';
}

export interface Sensitivity {
  /** Δ2 of the whole answer vector, in records. */
  l2Sensitivity: number;
  /** Δ1 of the same. */
  l1Sensitivity: number;
}

/**
 * Sensitivity of an answer vector in which one patient's row adds 1 to exactly `cellsPerRow`
 * cells (the enforced contribution bound: one row per patient, so one cell in each of m
 * marginals, or one bin of a histogram). Add/remove moves those cells by 1: Δ1 = k, Δ2 = √k.
 * Replace-one moves up to 2k cells by 1 (one row out, another in): Δ1 = 2k, Δ2 = √(2k).
 */
export function answerSensitivity(cellsPerRow: number, relation: NeighbouringRelation = NEIGHBOURING_RELATION): Sensitivity {
  if (!Number.isInteger(cellsPerRow) || cellsPerRow < 1) throw new RangeError(`cellsPerRow must be an integer >= 1, got ${cellsPerRow}`);
  const changed = relation === 'add-remove' ? cellsPerRow : 2 * cellsPerRow;
  return { l2Sensitivity: Math.sqrt(changed), l1Sensitivity: changed };
}

/** Sensitivity of m concatenated marginals over one-row-per-patient data. */
export function marginalsSensitivity(marginalCount: number, relation: NeighbouringRelation = NEIGHBOURING_RELATION): Sensitivity {
  return answerSensitivity(marginalCount, relation);
}

/** The fit's total zCDP budget for an (ε, δ) target. */
export function fitRhoBudget(epsilon: number, delta: number): Rho {
  return rhoFromEpsilonDelta(epsilon, delta);
}

export interface RoundShape {
  /** Cells of the answer vector one patient's row adds 1 to (m for m marginals). */
  cellsPerRow: number;
  /** d: the answer vector's length. */
  dimension: number;
  /** Sites whose noise the release counts on (the quorum). */
  parties: number;
}

/** ρ of one distributed release with exact per-site noise σ²: what a site is charged. */
export function roundRho(shape: RoundShape & { sigmaSite2: Rational }, relation: NeighbouringRelation = NEIGHBOURING_RELATION): Rho {
  return rhoDistributedDiscreteGaussian({ ...answerSensitivity(shape.cellsPerRow, relation), ...shape });
}

/**
 * A site's own membership-inference score histogram over [members | holdout] (site-agent/dcr.ts):
 * one patient is one record in one group with one score, so it moves one bin (cellsPerRow 1), and
 * the histogram reaches the auditor alone, protected only by that site's noise (parties 1).
 */
export const SCORE_HISTOGRAM_MECHANISM = 'score-histogram-discrete-gaussian';

/** ρ a site is charged for its own score histogram of `bins` bins per group, noised with σ². */
export function scoreHistogramRho(h: { bins: number; sigmaSite2: Rational }, relation: NeighbouringRelation = NEIGHBOURING_RELATION): Rho {
  if (!Number.isInteger(h.bins) || h.bins < 2) throw new RangeError(`bins must be an integer >= 2, got ${h.bins}`);
  return roundRho({ cellsPerRow: 1, sigmaSite2: h.sigmaSite2, parties: 1, dimension: 2 * h.bins }, relation);
}

export interface RoundNoise extends Sensitivity {
  /** σ² of each site's discrete Gaussian share, exact. */
  sigmaSite2: Rational;
  /** ρ this exact σ² gives (≤ the target): the charge. */
  rho: Rho;
  dimension: number;
  parties: number;
}

/** Per-site σ² for a round so that `parties` sites' shares meet `targetRho`, and its exact ρ. */
export function planRoundNoise(shape: RoundShape & { targetRho: Rho }, relation: NeighbouringRelation = NEIGHBOURING_RELATION): RoundNoise {
  const sensitivity = answerSensitivity(shape.cellsPerRow, relation);
  const { sigmaSite2, rho } = planDistributedNoise({
    ...sensitivity,
    parties: shape.parties,
    dimension: shape.dimension,
    targetRho: shape.targetRho,
  });
  return { ...sensitivity, sigmaSite2, rho, dimension: shape.dimension, parties: shape.parties };
}

/**
 * σ per cell of a released sum, in records: it carries every contributor's share, not only the
 * quorum's the noise was sized for.
 */
export function releasedSigma(sigmaSite2: Rational, contributors: number): number {
  if (!Number.isInteger(contributors) || contributors < 1)
    throw new RangeError(`contributors must be an integer >= 1, got ${contributors}`);
  return Math.sqrt(rationalToNumber(sigmaSite2) * contributors);
}

/** The mechanism a charge and a release record, so an auditor can recompute ρ. */
export interface MechanismRecord extends Sensitivity {
  name: 'distributed-discrete-gaussian';
  reference: string;
  unit: string;
  dimension: number;
  sigmaSite2: { num: string; den: string };
  parties: number;
  contributors: number;
}

export function mechanismRecord(noise: Omit<RoundNoise, 'rho'>, contributors: number): MechanismRecord {
  return {
    name: 'distributed-discrete-gaussian',
    reference: 'Kairouz, Liu, Steinke ICML 2021, Prop. 14',
    unit: privacyUnit(),
    l2Sensitivity: noise.l2Sensitivity,
    l1Sensitivity: noise.l1Sensitivity,
    dimension: noise.dimension,
    sigmaSite2: { num: noise.sigmaSite2.num.toString(), den: noise.sigmaSite2.den.toString() },
    parties: noise.parties,
    contributors,
  };
}
