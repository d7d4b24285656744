/**
 * How sure the federated AIM plan must be that a screened pair the model lacks is really
 * misfitted before counting its misfit (model/plans/aim.ts, `Stats`): the plan's `confidence`
 * in standard deviations of the excess statistic, lowered on tables where the screening noise
 * hides even strong dependences. Pure arithmetic on released quantities.
 */

/**
 * The confidence at which a dependence of L1 size N/2 (total variation ¼: a strong pair; Adult's
 * pairs sit at 0.05–0.28 against the model of its 1-way answers) would just clear the excess bar
 * of a pair: under the misfit's own model (deviations ∝ √μ, misfit = √(excess/N)·Σ√μ) such a
 * misfit has squared norm N³/(4·(Σ√μ)²), against the excess statistic's sd.
 */
export function confidenceCap(excessSd: number, total: number, rootMass: number): number {
  if (!(rootMass > 0) || !(excessSd > 0)) return Infinity;
  return total ** 3 / (4 * rootMass * rootMass) / excessSd;
}

/**
 * The confidence the plan demands of every pair it lacks: its `confidence`, or the median
 * `confidenceCap` of the pairs with evidence if that is lower. When the screen cannot certify
 * a strong dependence for most pairs (a small table: 1,300 records against a screening σ of
 * ≈ 170 per cell), a 2-sd bar lets only the few pairs through that noise happens to lift, and the
 * plan spent the rest of its budget re-measuring 1-ways (docs/benchmarks.md, "Against the real
 * private-pgm"); at the median cap the ranking follows the excess itself. One value for the
 * table, not per pair, so pairs are still ranked on one scale. On Adult the bar stayed 2 in
 * every round at ε = 0.1 and 0.3 (measured), and above, where the caps grow as 1/σ²: nothing
 * changes there. Post-processing of released sums: no budget is spent.
 */
export function barConfidence(confidence: number, caps: readonly number[]): number {
  if (caps.length === 0) return confidence;
  const sorted = [...caps].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return Math.min(confidence, median);
}
