/**
 * Membership-inference statistics computed AT THE SITE: distances from the site's
 * real records to a released synthetic cohort never leave the site; only a histogram of them,
 * noised with the site's own exact discrete Gaussian share and charged to the site's ledger,
 * does.
 *
 * Scores per real record r, against the cohort S (records over the public schema's domain):
 *   - 'dcr':     Hamming distance from r to its closest record in S (0 … d), the
 *                distance-to-closest-record attack;
 *   - 'density': ⌊log2(1 + #{s ∈ S : Hamming(r, s) ≤ 1})⌋, the local density of the cohort
 *                around r (a density-based attack: members sit where the model put mass).
 * Each is clipped to `bins − 1`.
 *
 * The released vector is the concatenation [histogram over members | histogram over holdout]
 * (members: the site's records the fit used; holdout: records it kept out, the control set).
 * Sensitivity: one patient is one record in exactly one of the two groups, and its score falls
 * in exactly one bin, so adding or removing a patient changes ONE cell by 1: Δ1 = Δ2 = 1,
 * whatever the scores are. (The cohort is itself a DP release, so conditioning on it is
 * adaptive composition: the two costs add.) Each site's histogram reaches the auditor on its
 * own, in the clear (it is not summed under encryption first), so only the site's own noise
 * protects it: ρ is charged for one party (privacy/dp/mechanisms.ts `scoreHistogramRho`: one cell
 * per patient, d = 2·bins, parties = 1), never for the number of sites the auditor later adds up.
 */
import { createHash } from 'node:crypto';
import type { Dataset } from '../model/domain.ts';
import { addNoiseShare } from '../federation/site-answer.ts';
import type { MiaScoreKind } from '../federation/audits/mia.ts';
import { SCORE_HISTOGRAM_MECHANISM, scoreHistogramRho as mechanismScoreHistogramRho } from '../privacy/dp/mechanisms.ts';
import type { Rational } from '../privacy/dp/rational.ts';
import { decodeHistogram, encodeHistogram } from '../proto/mia-wire.ts';
import { LedgerRefusedError, type Ledger } from './ledger.ts';

export type { MiaScoreKind };

export const DCR_MECHANISM = SCORE_HISTOGRAM_MECHANISM;

/** Per-record scores of `records` against `cohort` (both over the same domain). */
export function miaScores(records: Dataset, cohort: Dataset, kind: MiaScoreKind): Int32Array {
  const d = records.domain.length;
  if (cohort.domain.length !== d) throw new Error('records and cohort have different domains');
  const n = records.rows;
  const ns = cohort.rows;
  // Row-major copies for a tight inner loop.
  const syn = new Int32Array(ns * d);
  for (let j = 0; j < d; j++) {
    const c = cohort.columns[j];
    for (let s = 0; s < ns; s++) syn[s * d + j] = c[s];
  }
  const row = new Int32Array(d);
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) row[j] = records.columns[j][r];
    if (kind === 'dcr') {
      let best = d;
      for (let s = 0; s < ns && best > 0; s++) {
        let dist = 0;
        const base = s * d;
        for (let j = 0; j < d && dist < best; j++) if (syn[base + j] !== row[j]) dist++;
        if (dist < best) best = dist;
      }
      out[r] = best;
    } else {
      let near = 0;
      for (let s = 0; s < ns; s++) {
        let dist = 0;
        const base = s * d;
        for (let j = 0; j < d && dist <= 1; j++) if (syn[base + j] !== row[j]) dist++;
        if (dist <= 1) near++;
      }
      out[r] = Math.floor(Math.log2(1 + near));
    }
  }
  return out;
}

/** Exact (un-noised) histogram [members | holdout] of the scores, clipped to bins − 1. Never leaves the site. */
export function scoreHistogram(members: Dataset, holdout: Dataset, cohort: Dataset, kind: MiaScoreKind, bins: number): Int32Array {
  if (!Number.isInteger(bins) || bins < 2) throw new RangeError(`bins must be an integer ≥ 2, got ${bins}`);
  const h = new Int32Array(2 * bins);
  for (const [g, data] of [members, holdout].entries()) {
    for (const s of miaScores(data, cohort, kind)) h[g * bins + Math.min(s, bins - 1)]++;
  }
  return h;
}

export interface ScoreHistogramTask {
  federationId: string;
  roundId: string;
  taskId: string;
  kind: MiaScoreKind;
  bins: number;
  /** Exact σ² of this site's discrete Gaussian noise per cell (all the noise its histogram carries). */
  sigmaSite2: Rational;
  /** The fit the audited cohort came from, when it is not the federation itself (audit entries). */
  fitId?: string;
  /** The coordinator chain head the task carried, countersigned in the charge entry. */
  coordinatorHead?: { seq: number; hash: string };
}

/** ρ this site is charged for a score histogram: one patient moves one cell by one; its noise alone protects it. */
export function scoreHistogramRho(task: Pick<ScoreHistogramTask, 'bins' | 'sigmaSite2'>): number {
  return mechanismScoreHistogramRho(task);
}

export class ScoreHistogramRefused extends Error {}

/**
 * The site's answer, the one function both the site agent (site-agent/audit-tasks.ts, a
 * `mia-histogram` task) and the offline `fedsynth audit mia` call: its histogram plus its own
 * discrete Gaussian share, charged to its ledger (the ledger's policy guard refuses over-cap
 * charges; the refusal is written to the site's audit log) BEFORE the vector is returned. A
 * retried task gets the bytes already charged, never a fresh draw.
 */
export function noisedScoreHistogram(
  ledger: Ledger,
  members: Dataset,
  holdout: Dataset,
  cohort: Dataset,
  task: ScoreHistogramTask,
): { values: BigInt64Array; rho: number; answer: Buffer; fresh: boolean } {
  const rho = scoreHistogramRho(task);
  const cached = ledger.cachedAnswer(task.taskId);
  let answer = cached;
  if (!answer) {
    const exact = scoreHistogram(members, holdout, cohort, task.kind, task.bins);
    const noised = addNoiseShare(
      BigInt64Array.from(exact, (v) => BigInt(v)),
      task.sigmaSite2,
    );
    answer = encodeHistogram(noised);
  }
  let charged;
  try {
    charged = ledger.charge({
      taskId: task.taskId,
      roundId: task.roundId,
      federationId: task.federationId,
      rho,
      mechanism: DCR_MECHANISM,
      answer,
      ...(task.coordinatorHead ? { coordinatorHead: task.coordinatorHead } : {}),
      ...(task.fitId ? { fitId: task.fitId } : {}),
    });
  } catch (err) {
    // The ledger has already written the refusal to the site's audit log.
    if (err instanceof LedgerRefusedError) throw new ScoreHistogramRefused(err.reason);
    throw err;
  }
  const values = decodeHistogram(charged.answer, 2 * task.bins);
  return { values, rho, answer: charged.answer, fresh: charged.charged };
}

/** Stable task id for a score histogram request. */
export function scoreTaskId(federationId: string, roundId: string, kind: MiaScoreKind): string {
  return createHash('sha256').update(`${federationId}/${roundId}/${kind}`).digest('hex').slice(0, 32);
}
