/**
 * Splitting one dataset into simulated sites (benchmarks and tests; a real federation has its
 * sites already). Pure: the only randomness is a seeded Rng.
 *
 * - 'iid': rows shuffled, then dealt into `sites` blocks of (almost) equal size. Every site sees
 *   the same distribution up to sampling error.
 * - 'heterogeneous': rows sorted by a key attribute (ties broken randomly), optionally refined
 *   by a second attribute, then cut into `sites` contiguous blocks of equal size. Site 1 gets
 *   the lowest key values, site n the highest, so each site covers a narrow slice of the key and
 *   every attribute correlated with it shifts too (on Adult, keyed by age: marital status,
 *   relationship, income and hours differ strongly between sites). This is the "skewed key
 *   attribute" split of FLAIM (Maddock et al., KDD 2024) in its most extreme form: no site is
 *   representative of the pooled data, so any purely local choice of marginals is biased.
 */
import { Dataset, allocColumn, type Column } from './domain.ts';
import { Rng, type SeedLike } from './rng.ts';

export type SplitKind = 'iid' | 'heterogeneous';

export interface SplitOptions {
  sites: number;
  kind: SplitKind;
  seed: SeedLike;
  /** Key attribute of the heterogeneous split; default the first attribute with more than 2 values. */
  key?: string;
  /** Optional secondary key (heterogeneous split only). */
  secondaryKey?: string;
}

export interface SiteSplit {
  sites: Dataset[];
  /** The key used ('iid' splits have none). */
  key?: string;
}

export function splitSites(data: Dataset, options: SplitOptions): SiteSplit {
  const { sites, kind } = options;
  if (!Number.isInteger(sites) || sites < 1) throw new Error(`splitSites: sites must be a positive integer, got ${sites}`);
  if (sites > data.rows) throw new Error(`splitSites: ${sites} sites but only ${data.rows} rows`);
  const rng = new Rng(options.seed);
  const order = new Int32Array(data.rows);
  for (let i = 0; i < order.length; i++) order[i] = i;
  rng.shuffle(order);
  let key: string | undefined;
  if (kind === 'heterogeneous') {
    const domain = data.domain;
    key = options.key ?? domain.attrs.find((a) => domain.sizeOf(a) > 2) ?? domain.attrs[0];
    const k1 = data.column(key);
    const k2 = options.secondaryKey ? data.column(options.secondaryKey) : undefined;
    // Stable sort of the shuffled order: ties in the key stay in random order.
    const sorted = Array.from(order).sort((a, b) => k1[a] - k1[b] || (k2 ? k2[a] - k2[b] : 0));
    order.set(sorted);
  } else if (kind !== 'iid') {
    throw new Error(`splitSites: unknown split "${kind as string}"`);
  }
  const out: Dataset[] = [];
  for (let s = 0; s < sites; s++) {
    const lo = Math.floor((s * data.rows) / sites);
    const hi = Math.floor(((s + 1) * data.rows) / sites);
    out.push(subset(data, order.subarray(lo, hi)));
  }
  return { sites: out, key };
}

/** The rows `rows` of `data`, in that order, as a new dataset. */
export function subset(data: Dataset, rows: ArrayLike<number>): Dataset {
  const cols: Column[] = data.columns.map((c, j) => {
    const out = allocColumn(data.domain.sizes[j], rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = c[rows[i]];
    return out;
  });
  return new Dataset(data.domain, cols, rows.length);
}
