/**
 * A noisy marginal measurement as the coordinator hands it to the model layer: the aggregated
 * counts of one marginal plus zero-mean noise of known standard deviation per cell.
 */
import type { Domain } from './domain.ts';

export interface Measurement {
  /** Attributes of the marginal, in the order of `values`' row-major layout (as marginals.ts). */
  attrs: string[];
  /** Noisy counts (records per cell; may be negative or fractional after noise). */
  values: Float64Array;
  /** Standard deviation of the noise on each cell, in records. */
  sigma: number;
}

/** Throws a descriptive error if a measurement does not fit the domain. */
export function validateMeasurement(domain: Domain, m: Measurement): void {
  const label = `measurement [${m.attrs.join(', ')}]`;
  if (new Set(m.attrs).size !== m.attrs.length) throw new Error(`${label}: repeated attribute`);
  for (const a of m.attrs) if (!domain.has(a)) throw new Error(`${label}: unknown attribute "${a}"`);
  const cells = domain.cells(m.attrs);
  if (m.values.length !== cells) throw new Error(`${label}: ${m.values.length} values, expected ${cells}`);
  if (!(m.sigma > 0) || !Number.isFinite(m.sigma)) throw new Error(`${label}: sigma must be a positive finite number, got ${m.sigma}`);
  for (let i = 0; i < m.values.length; i++) if (!Number.isFinite(m.values[i])) throw new Error(`${label}: value ${i} is not finite`);
}

/**
 * Minimum-variance unbiased estimate of the number of records from several measurements:
 * each gives Σ values with variance σ²·cells; combine by inverse variance (as private-pgm does).
 * Returns at least 1 so the model stays a proper distribution.
 */
export function estimateTotal(measurements: readonly Measurement[]): { total: number; variance: number } {
  if (measurements.length === 0) throw new Error('estimateTotal: no measurements');
  let weight = 0;
  let weighted = 0;
  for (const m of measurements) {
    let sum = 0;
    for (let i = 0; i < m.values.length; i++) sum += m.values[i];
    const v = m.sigma * m.sigma * m.values.length;
    weight += 1 / v;
    weighted += sum / v;
  }
  return { total: Math.max(1, weighted / weight), variance: 1 / weight };
}
