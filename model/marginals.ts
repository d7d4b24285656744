/**
 * Marginal counts of a Dataset: the statistic sites compute and the coordinator measures.
 * Layout: row-major over `attrs` in the order given (see domain.ts).
 */
import type { Column, Dataset } from './domain.ts';

/** Counts (number of rows) per cell of the marginal over `attrs`; one pass over the rows. */
export function marginal(data: Dataset, attrs: readonly string[]): Float64Array {
  const domain = data.domain;
  const cells = domain.cells(attrs);
  if (cells > 0x7fffffff) throw new Error(`marginal over [${attrs.join(', ')}] has ${cells} cells, too many`);
  const counts = new Float64Array(cells);
  const n = data.rows;
  const k = attrs.length;
  if (k === 0) {
    counts[0] = n;
    return counts;
  }
  const cols: Column[] = attrs.map((a) => data.column(a));
  if (k === 1) {
    const c0 = cols[0];
    for (let r = 0; r < n; r++) counts[c0[r]]++;
    return counts;
  }
  if (k === 2) {
    const c0 = cols[0];
    const c1 = cols[1];
    const s1 = domain.sizeOf(attrs[1]);
    for (let r = 0; r < n; r++) counts[c0[r] * s1 + c1[r]]++;
    return counts;
  }
  const strides = domain.strides(attrs);
  for (let r = 0; r < n; r++) {
    let idx = 0;
    for (let j = 0; j < k; j++) idx += cols[j][r] * strides[j];
    counts[idx]++;
  }
  return counts;
}

/** Marginals for a list of attribute sets (the shape of a site's task answer). */
export function marginals(data: Dataset, attrSets: readonly (readonly string[])[]): Float64Array[] {
  return attrSets.map((attrs) => marginal(data, attrs));
}
