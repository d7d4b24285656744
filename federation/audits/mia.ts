// Membership inference against a released cohort, with a held-out control set, OFFLINE: the fit
// and the sites' answers run in the auditor's process (`fedsynth audit mia` without --federation).
// On a real federation the same statistic is the `mia-histogram` task of an audited fit
// (coordinator/audit-rounds.ts, site-agent/audit-tasks.ts); both answer with the one site function,
// site-agent/dcr.ts `noisedScoreHistogram`, at single-party ρ. Each site
// half its patients out of the fit (the control set); the federation fits on the other half
// (the one fit loop over the production site path) and samples a cohort; then every site
// computes, locally, the distance from each of its records to the closest synthetic record and
// the cohort's density around it, and releases only a histogram of those scores over
// [members | holdout], noised with its own discrete Gaussian share and charged to its own ledger
// (site-agent/dcr.ts, passed in as `answer`: this layer never sees a site's ledger). The auditor
// sums the noisy histograms and reports ROC AUC and membership advantage (privacy/empirical/mia.ts).
import { Dataset } from '../../model/domain.ts';
import { subset } from '../../model/split.ts';
import { Rng } from '../../model/rng.ts';
import { sample } from '../../model/sample.ts';
import { miaFromHistograms, type MiaStats } from '../../privacy/empirical/mia.ts';
import { rational, rationalToNumber, type Rational } from '../../privacy/dp/rational.ts';
import type { RandomSource } from '../../privacy/random.ts';
import { auditFit, type AuditSites } from './sites.ts';

export type MiaScoreKind = 'dcr' | 'density';
export const MIA_SCORE_KINDS: readonly MiaScoreKind[] = ['dcr', 'density'];

export interface MiaAuditOptions {
  epsilon: number;
  delta: number;
  seed: number;
  cohortRows?: number;
  bins?: number;
  /** σ² of each site's noise share on the score histograms (exact rational num/den). */
  sigmaSite2?: Rational;
  /** Noise source of the fit's site answers; tests only (default: the OS CSPRNG). */
  random?: RandomSource;
  unsafeDisableNoiseForAudit?: boolean;
}

/** One site's score-histogram request; the answer is the site's noised [members | holdout] histogram. */
export interface ScoreHistogramRequest {
  roundId: string;
  kind: MiaScoreKind;
  bins: number;
  sigmaSite2: Rational;
}

export interface MiaSite {
  id: string;
  members: Dataset;
  holdout: Dataset;
}

/** A site answering a histogram request over its own records: its noised vector and its charge. */
export type HistogramAnswer = (site: MiaSite, cohort: Dataset, request: ScoreHistogramRequest) => { values: BigInt64Array; rho: number };

export interface MiaAuditResult {
  audit: 'membership inference (DCR and density), site-computed noised histograms';
  claimedEpsilon: number;
  delta: number;
  data: string;
  sites: number;
  members: number;
  holdout: number;
  cohortRows: number;
  bins: number;
  histogramSigmaSite: number;
  attacks: Record<MiaScoreKind, MiaStats & { rhoPerSite: number; histogram: { members: number[]; holdout: number[] } }>;
}

function split(data: Dataset, rng: Rng): [Dataset, Dataset] {
  const idx = rng.shuffle(Array.from({ length: data.rows }, (_, i) => i));
  const half = Math.floor(data.rows / 2);
  return [subset(data, idx.slice(0, half)), subset(data, idx.slice(half))];
}

/** Splits every site into members (fitted) and a held-out half, seeded per site. */
export function membersAndHoldout(data: AuditSites, seed: number): MiaSite[] {
  return data.sites.map((s, k) => {
    const [members, holdout] = split(s.data, new Rng(`mia-${seed}-${k}`));
    return { id: s.id, members, holdout };
  });
}

export async function runMiaAudit(data: AuditSites, opts: MiaAuditOptions, answer: HistogramAnswer): Promise<MiaAuditResult> {
  const parts = membersAndHoldout(data, opts.seed);
  const cohortRows = opts.cohortRows ?? 2000;
  const fit = await auditFit(
    parts.map((p) => ({ id: p.id, data: p.members })),
    {
      epsilon: opts.epsilon,
      delta: opts.delta,
      iterations: 300,
      random: opts.random,
      unsafeDisableNoiseForAudit: opts.unsafeDisableNoiseForAudit,
    },
  );
  const cohort = sample(fit.model!, { rows: cohortRows, seed: opts.seed });
  const bins = opts.bins ?? 8;
  const sigmaSite2 = opts.sigmaSite2 ?? rational(4n, 1n);
  const attacks = {} as MiaAuditResult['attacks'];
  for (const kind of MIA_SCORE_KINDS) {
    const request = { roundId: `mia-${kind}-${opts.seed}`, kind, bins, sigmaSite2 };
    const total = new Float64Array(2 * bins);
    let rho = 0;
    for (const p of parts) {
      const a = answer(p, cohort, request);
      if (a.values.length !== 2 * bins) throw new Error(`site ${p.id} answered ${a.values.length} values for ${2 * bins} bins`);
      rho = a.rho;
      a.values.forEach((v, i) => (total[i] += Number(v)));
    }
    const members = Array.from(total.slice(0, bins));
    const holdout = Array.from(total.slice(bins));
    attacks[kind] = { ...miaFromHistograms(members, holdout, kind === 'density'), rhoPerSite: rho, histogram: { members, holdout } };
  }
  return {
    audit: 'membership inference (DCR and density), site-computed noised histograms',
    claimedEpsilon: opts.epsilon,
    delta: opts.delta,
    data: data.source,
    sites: parts.length,
    members: parts.reduce((s, p) => s + p.members.rows, 0),
    holdout: parts.reduce((s, p) => s + p.holdout.rows, 0),
    cohortRows,
    bins,
    histogramSigmaSite: Math.sqrt(rationalToNumber(sigmaSite2)),
    attacks,
  };
}
