/**
 * Utility metric, exactly: for a workload W of attribute sets,
 *   L1 = mean over r ∈ W of ‖p_r − q_r‖₁,
 * where p_r and q_r are the real and synthetic marginals over r, each normalised by its own total
 * (no ½ factor). TV = L1 / 2. Both lie in [0, 2] and [0, 1] respectively.
 */
import type { Dataset, Domain } from './domain.ts';
import { marginal } from './marginals.ts';

export interface WorkloadError {
  /** Mean normalised L1 distance over the workload. */
  l1: number;
  /** Mean total-variation distance (= l1 / 2). */
  tv: number;
  /** Normalised L1 per workload entry, in workload order. */
  perMarginal: number[];
}

/** ‖p/Σp − q/Σq‖₁ for two count tables of the same layout. */
export function normalisedL1(p: Float64Array, q: Float64Array): number {
  if (p.length !== q.length) throw new Error(`normalisedL1: tables of ${p.length} and ${q.length} cells`);
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  if (!(sp > 0) || !(sq > 0)) throw new Error('normalisedL1: a marginal has no mass (empty data?)');
  let d = 0;
  for (let i = 0; i < p.length; i++) d += Math.abs(p[i] / sp - q[i] / sq);
  return d;
}

/** Workload error between any two sources of marginal counts (datasets, models, ...). */
export function workloadError(
  real: (attrs: readonly string[]) => Float64Array,
  synthetic: (attrs: readonly string[]) => Float64Array,
  workload: readonly (readonly string[])[],
): WorkloadError {
  if (workload.length === 0) throw new Error('workloadError: empty workload');
  const perMarginal = workload.map((r) => normalisedL1(real(r), synthetic(r)));
  const l1 = perMarginal.reduce((a, b) => a + b, 0) / perMarginal.length;
  return { l1, tv: l1 / 2, perMarginal };
}

/** Workload error of a synthetic dataset against the real one. */
export function datasetWorkloadError(real: Dataset, synthetic: Dataset, workload: readonly (readonly string[])[]): WorkloadError {
  return workloadError(
    (r) => marginal(real, r),
    (r) => marginal(synthetic, r),
    workload,
  );
}

/** All k-element attribute sets, in domain order (lexicographic by position). */
export function kWayWorkload(domain: Domain, k: number): string[][] {
  const out: string[][] = [];
  const pick: string[] = [];
  const rec = (from: number) => {
    if (pick.length === k) {
      out.push([...pick]);
      return;
    }
    for (let i = from; i < domain.length; i++) {
      pick.push(domain.attrs[i]);
      rec(i + 1);
      pick.pop();
    }
  };
  rec(0);
  return out;
}

export const allTwoWay = (domain: Domain): string[][] => kWayWorkload(domain, 2);
export const allThreeWay = (domain: Domain): string[][] => kWayWorkload(domain, 3);
