/**
 * A noisy marginal measurement as the coordinator hands it to the model layer: the aggregated
 * counts of one marginal plus zero-mean noise of known standard deviation per cell.
 *
 * A measurement may be a linear query coarser than its marginal: `coarsen` recodes some of its
 * attributes (e.g. age's 11 bins into the workload's 4 bands) before counting, so each measured
 * cell is the sum of the fine cells that map to it. This is what a round with a value map
 * releases (proto/task-spec.ts `valueMap`, federation/site-answer.ts): a patient is still one
 * row and adds one count to exactly one measured cell, so the sensitivity is that of any marginal.
 */
import type { Domain } from './domain.ts';

/**
 * Per coarsened attribute, the measured code of each of its values (array index = value):
 * codes 0..k−1 without gaps, k the attribute's measured size. Attributes absent are measured as is.
 */
export type Coarsening = Readonly<Record<string, readonly number[]>>;

export interface Measurement {
  /** Attributes of the marginal, in the order of `values`' row-major layout (as marginals.ts). */
  attrs: string[];
  /**
   * Noisy counts (records per cell; may be negative or fractional after noise), over the
   * measured sizes of `attrs` (coarsened ones at their coarse size).
   */
  values: Float64Array;
  /** Standard deviation of the noise on each cell, in records. */
  sigma: number;
  /** Attributes of `attrs` measured coarser than the domain (absent or empty: an identity marginal). */
  coarsen?: Coarsening;
}

/** True when the measurement sums fine cells (some attribute is coarsened). */
export function isCoarsened(m: Pick<Measurement, 'coarsen'>): boolean {
  return m.coarsen !== undefined && Object.keys(m.coarsen).length > 0;
}

/** Measured size of `attr` in `m`: its coarse size if coarsened, else the domain's. */
export function measuredSize(domain: Domain, m: Pick<Measurement, 'coarsen'>, attr: string): number {
  const codes = m.coarsen?.[attr];
  return codes ? Math.max(...codes) + 1 : domain.sizeOf(attr);
}

/** Number of measured cells of `m` (product of measured sizes). */
export function measuredCells(domain: Domain, m: Pick<Measurement, 'attrs' | 'coarsen'>): number {
  let n = 1;
  for (const a of m.attrs) n *= measuredSize(domain, m, a);
  return n;
}

/** Why `coarsen` does not fit `attrs` over `domain`: the first problem, naming the attribute. */
export function coarseningProblem(domain: Domain, attrs: readonly string[], coarsen: unknown): string | undefined {
  if (typeof coarsen !== 'object' || coarsen === null || Array.isArray(coarsen)) return 'coarsen must be an object {attribute: codes}';
  for (const [attr, codes] of Object.entries(coarsen as Record<string, unknown>)) {
    if (!attrs.includes(attr)) return `coarsen names "${attr}", which is not one of the measured attributes`;
    if (!domain.has(attr)) return `coarsen names unknown attribute "${attr}"`;
    const size = domain.sizeOf(attr);
    if (!Array.isArray(codes) && !ArrayBuffer.isView(codes)) return `coarsen of "${attr}" must be an array of codes`;
    const list = Array.from(codes as ArrayLike<unknown>);
    if (list.length !== size) return `coarsen of "${attr}" has ${list.length} codes, the attribute has ${size} values`;
    let max = -1;
    for (let v = 0; v < size; v++) {
      const c = list[v];
      if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0 || c >= size)
        return `coarsen of "${attr}": code of value ${v} must be an integer in 0..${size - 1}, got ${JSON.stringify(c)}`;
      max = Math.max(max, c);
    }
    const seen = new Uint8Array(max + 1);
    for (const c of list as number[]) seen[c] = 1;
    const missing = seen.indexOf(0);
    if (missing >= 0) return `coarsen of "${attr}": no value maps to code ${missing} (codes must be 0..${max} without gaps)`;
  }
  return undefined;
}

/** Throws a descriptive error if a measurement does not fit the domain. */
export function validateMeasurement(domain: Domain, m: Measurement): void {
  const label = `measurement [${m.attrs.join(', ')}]`;
  if (new Set(m.attrs).size !== m.attrs.length) throw new Error(`${label}: repeated attribute`);
  for (const a of m.attrs) if (!domain.has(a)) throw new Error(`${label}: unknown attribute "${a}"`);
  if (m.coarsen !== undefined) {
    const problem = coarseningProblem(domain, m.attrs, m.coarsen);
    if (problem) throw new Error(`${label}: ${problem}`);
  }
  const cells = measuredCells(domain, m);
  if (m.values.length !== cells)
    throw new Error(`${label}: ${m.values.length} values, expected ${cells}${isCoarsened(m) ? ' (the coarsened cells)' : ''}`);
  if (!(m.sigma > 0) || !Number.isFinite(m.sigma)) throw new Error(`${label}: sigma must be a positive finite number, got ${m.sigma}`);
  for (let i = 0; i < m.values.length; i++) if (!Number.isFinite(m.values[i])) throw new Error(`${label}: value ${i} is not finite`);
}

/**
 * For every cell of the table over `from` (row-major, a superset of `m.attrs` in any order), the
 * measured cell of `m` it counts in. For an identity marginal this is `domain.indexMap`; with a
 * coarsening several fine cells share a measured cell (the linear query sums them).
 */
export function measuredCellMap(domain: Domain, from: readonly string[], m: Pick<Measurement, 'attrs' | 'coarsen'>): Int32Array {
  if (!isCoarsened(m)) return domain.indexMap(from, m.attrs);
  for (const a of m.attrs) if (!from.includes(a)) throw new Error(`measuredCellMap: "${a}" is not in [${from.join(', ')}]`);
  const sizes = from.map((a) => domain.sizeOf(a));
  // Measured strides of `m.attrs` (last fastest), read at `from`'s positions.
  const stride = new Map<string, number>();
  for (let i = m.attrs.length - 1, s = 1; i >= 0; i--) {
    stride.set(m.attrs[i], s);
    s *= measuredSize(domain, m, m.attrs[i]);
  }
  const step = from.map((a) => stride.get(a) ?? 0);
  const codes = from.map((a) => m.coarsen?.[a]);
  const n = domain.cells(from);
  const out = new Int32Array(n);
  const digit = new Int32Array(from.length);
  for (let i = 0; i < n; i++) {
    let idx = 0;
    for (let d = 0; d < from.length; d++) idx += (codes[d] ? codes[d]![digit[d]] : digit[d]) * step[d];
    out[i] = idx;
    for (let d = from.length - 1; d >= 0; d--) {
      if (++digit[d] < sizes[d]) break;
      digit[d] = 0;
    }
  }
  return out;
}

/**
 * Minimum-variance unbiased estimate of the number of records from several measurements:
 * each gives Σ values with variance σ²·cells (its measured cells, coarsened or not); combine by
 * inverse variance (as private-pgm does). Returns at least 1 so the model stays a proper distribution.
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
