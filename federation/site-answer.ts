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
 * (a round on a rare-value-compressed domain) the rows are recoded first; each still counts once.
 */
export function siteCounts(data: Dataset, marginals: readonly (readonly string[])[], valueMap?: ValueMap): BigInt64Array {
  const tables = computeMarginals(valueMap ? compressDataset(data, valueMap) : data, marginals);
  const out = new BigInt64Array(tables.reduce((s, t) => s + t.length, 0));
  let off = 0;
  for (const t of tables) for (let i = 0; i < t.length; i++, off++) out[off] = BigInt(t[i]);
  return out;
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

/** The site's noised answer vector for one round. */
export function siteAnswer(
  data: Dataset,
  marginals: readonly (readonly string[])[],
  sigmaSite2: Rational,
  random: RandomSource = cryptoRandomSource,
  valueMap?: ValueMap,
): BigInt64Array {
  return addNoiseShare(siteCounts(data, marginals, valueMap), sigmaSite2, random);
}
