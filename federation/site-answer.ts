/**
 * What a site releases for a measure round, computed next to its data: the marginals of its rows
 * (one row per patient, the contribution bound the mechanism's sensitivity rests on), concatenated
 * in the round's order, plus the site's own exact discrete Gaussian share. The site agent and the
 * in-process aggregator both call this, so benchmarks and audits exercise the production noise.
 */
import { compressDataset, type ValueMap } from '../model/compress.ts';
import type { Dataset } from '../model/domain.ts';
import { marginals as computeMarginals } from '../model/marginals.ts';
import { sampleDiscreteGaussianVector } from '../privacy/dp/discrete-gaussian.ts';
import type { Rational } from '../privacy/dp/rational.ts';
import { cryptoRandomSource, type RandomSource } from '../privacy/random.ts';

/**
 * The exact (un-noised) answer: the site's marginals concatenated, as integers. With a value map
 * (rare-value compression, or declared band queries: age bins into bands) the rows are recoded
 * first; each still counts once.
 */
export function siteCounts(data: Dataset, marginals: readonly (readonly string[])[], valueMap?: ValueMap): BigInt64Array {
  const tables = computeMarginals(valueMap ? compressDataset(data, valueMap) : data, marginals);
  const out = new BigInt64Array(tables.reduce((s, t) => s + t.length, 0));
  let off = 0;
  for (const t of tables) for (let i = 0; i < t.length; i++, off++) out[off] = BigInt(t[i]);
  return out;
}

/**
 * Clips every cell of `exact` to [0, maxCellCount] in place, the contribution bound a measure task
 * declares; returns how many cells changed (an honest site whose rows never exceed the bound
 * changes none). Clipping moves a neighbouring pair of answers no further apart, so the
 * sensitivity the noise is sized for still holds.
 */
export function clipCounts(exact: BigInt64Array, maxCellCount: number): number {
  const max = BigInt(maxCellCount);
  let clipped = 0;
  for (let i = 0; i < exact.length; i++) {
    if (exact[i] > max) {
      exact[i] = max;
      clipped++;
    } else if (exact[i] < 0n) {
      exact[i] = 0n;
      clipped++;
    }
  }
  return clipped;
}

/**
 * `exact` plus one N_Z(0, σ²) draw per cell. Production never passes `random`: the OS CSPRNG is
 * the default; only tests pass a seeded source, to make a fit reproducible.
 */
export function addNoiseShare(exact: BigInt64Array, sigmaSite2: Rational, random: RandomSource = cryptoRandomSource): BigInt64Array {
  const noised = sampleDiscreteGaussianVector(sigmaSite2, exact.length, random);
  for (let i = 0; i < exact.length; i++) noised[i] += exact[i];
  return noised;
}

export interface SiteAnswerOptions {
  /** Production never passes it (the OS CSPRNG is the default); tests pass a seeded source. */
  random?: RandomSource;
  /** The round's contribution bound: each exact cell is clipped to [0, maxCellCount] first. */
  maxCellCount?: number;
  /** A round on a rare-value-compressed domain: the rows are recoded with it before counting. */
  valueMap?: ValueMap;
}

/**
 * The site's noised answer for one round: its counts, clipped to the round's bound, plus its own
 * noise share; `clippedCells` says how many counts the bound changed (0 for an honest site within it).
 */
export function siteAnswer(
  data: Dataset,
  marginals: readonly (readonly string[])[],
  sigmaSite2: Rational,
  opts: SiteAnswerOptions = {},
): { values: BigInt64Array; clippedCells: number } {
  const exact = siteCounts(data, marginals, opts.valueMap);
  const clippedCells = opts.maxCellCount === undefined ? 0 : clipCounts(exact, opts.maxCellCount);
  return { values: addNoiseShare(exact, sigmaSite2, opts.random), clippedCells };
}
