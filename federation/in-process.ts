/**
 * The in-process aggregator: every site's data is in this process (a benchmark's split, an
 * audit's federation), and each site answers through the production site path
 * (site-answer.ts: its marginals plus its own exact discrete Gaussian share as planned). The
 * quorum is every site, so each share is the smallest that meets ρ when all n are in the sum.
 *
 * Summation: 'plain' adds the noised integer vectors in the clear; 'he' runs the threshold BFV
 * secure aggregation of privacy/crypto (Shamir shares encrypted per committee member,
 * homomorphic sums, t partial decryptions, interpolation). Both give the identical integer total;
 * 'he' measures what the cryptography costs.
 */
import type { Dataset } from '../model/domain.ts';
import type { Bfv } from '../privacy/crypto/bfv.ts';
import { accumulate, combine, partialDecrypt, prepareContribution, type Contribution } from '../privacy/crypto/secure-aggregation.ts';
import { releasedSigma } from '../privacy/dp/mechanisms.ts';
import { cryptoRandomSource, type RandomSource } from '../privacy/random.ts';
import { roundDomain, toMeasurements, type Aggregator, type PlannedRound, type ReleasedRound } from './run-fit.ts';
import { siteAnswer, siteCounts } from './site-answer.ts';

export interface InProcessSite {
  id: string;
  data: Dataset;
}

export interface InProcessOptions {
  /** How the noised vectors are summed (default 'plain'). */
  summation?: 'plain' | 'he';
  /**
   * Source of every site's noise. Default and production: the OS CSPRNG. Tests pass a seeded
   * source (privacy/random.ts) so a fit is reproducible; noise from it is not private.
   */
  random?: RandomSource;
  /**
   * AUDIT TESTS ONLY: sites release exact counts. Exists so a test can show that an audit fails
   * without noise; the site agent has no such switch.
   */
  unsafeDisableNoiseForAudit?: boolean;
}

export interface InProcessAggregator extends Aggregator {
  /** Time spent in the sites' answers (marginals and noise) and inside secure aggregation, so far (ms). */
  readonly timings: { siteAnswerMs: number; heMs: number };
  dispose(): void;
}

type Summer = ((vectors: BigInt64Array[]) => BigInt64Array) & { dispose(): void };

function plainSum(vectors: BigInt64Array[]): BigInt64Array {
  const total = new BigInt64Array(vectors[0].length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) total[i] += v[i];
  return total;
}

/** Threshold BFV with a committee of min(3, n) members and threshold 2 (1 for a single site). */
async function heSummer(sites: number): Promise<Summer> {
  const { Bfv: BfvClass } = await import('../privacy/crypto/bfv.ts');
  const bfv: Bfv = await BfvClass.create();
  const k = Math.min(3, sites);
  const t = k === 1 ? 1 : 2;
  const keys = Array.from({ length: k }, () => bfv.generateKeyPair());
  const committee = keys.map((kp, j) => ({ memberId: `member-${j + 1}`, point: j + 1, publicKey: kp.publicKey }));
  const sum = (vectors: BigInt64Array[]): BigInt64Array => {
    let acc: Contribution | null = null;
    for (const v of vectors) acc = accumulate(bfv, acc, prepareContribution(bfv, v, committee, t));
    const summed = acc!;
    const partials = summed.shares.slice(0, t).map((s) => ({
      point: s.point,
      share: partialDecrypt(bfv, keys[s.point - 1].secretKey, s.ciphertexts, summed.length),
    }));
    return combine(partials, t);
  };
  return Object.assign(sum, { dispose: () => bfv.dispose() });
}

export async function inProcessAggregator(sites: readonly InProcessSite[], opts: InProcessOptions = {}): Promise<InProcessAggregator> {
  if (sites.length === 0) throw new Error('in-process aggregator: no sites');
  const random = opts.random ?? cryptoRandomSource;
  const summer: Summer = opts.summation === 'he' ? await heSummer(sites.length) : Object.assign(plainSum, { dispose: () => undefined });
  const timings = { siteAnswerMs: 0, heMs: 0 };
  const domain = sites[0].data.domain;
  return {
    parties: sites.length,
    timings,
    dispose: () => summer.dispose(),
    async measure({ index, spec, noise }: PlannedRound): Promise<ReleasedRound> {
      const answers = sites.map((s) => {
        const t0 = performance.now();
        const answer = opts.unsafeDisableNoiseForAudit
          ? siteCounts(s.data, spec.marginals, spec.valueMap)
          : siteAnswer(s.data, spec.marginals, noise.sigmaSite2, { random, valueMap: spec.valueMap }).values;
        timings.siteAnswerMs += performance.now() - t0;
        return answer;
      });
      const t0 = performance.now();
      const total = summer(answers);
      if (opts.summation === 'he') timings.heMs += performance.now() - t0;
      const sigma = releasedSigma(noise.sigmaSite2, sites.length);
      return {
        roundId: `m${index + 1}-${spec.name}`,
        measurements: toMeasurements(roundDomain(domain, spec), spec.marginals, Float64Array.from(total, Number), sigma, spec.valueMap),
        contributors: sites.map((s) => s.id),
      };
    },
  };
}
