// The empirical audit rounds of an audited fit (config `fit.audit`), run by the coordinator after
// the cohort is drawn, on the same round machinery as the fit: one `mia-histogram` round per
// membership-inference score. Every registered site gets the cohort (the task's payload) and
// answers under its own policy and ledger (site-agent/audit-tasks.ts) with its noised histogram
// over [members | holdout], or refuses. Each histogram is released alone, so each answering site
// is charged at single-party ρ (privacy/dp/mechanisms.ts `scoreHistogramRho`), recorded like
// any round's charges (one transaction with the release and its audit entries) so that
// `fedsynth audit verify` reconciles them with the sites' logs. The auditor's statistics are the
// summed histograms' ROC AUC and advantage (privacy/empirical/mia.ts).
import { createHash, randomUUID } from 'node:crypto';
import type { Dataset, Domain } from '../model/domain.ts';
import { privacyUnit, SCORE_HISTOGRAM_MECHANISM, answerSensitivity, scoreHistogramRho } from '../privacy/dp/mechanisms.ts';
import { rational, rationalToNumber } from '../privacy/dp/rational.ts';
import { miaFromHistograms, type MiaStats } from '../privacy/empirical/mia.ts';
import { decodeHistogram, encodeCohort, MalformedHistogramError } from '../proto/mia-wire.ts';
import { decodeTaskSpec, MIA_SCORES, type MiaHistogramSpec, type MiaScore } from '../proto/task-spec.ts';
import { taskIssuedEvent } from './audit.ts';
import type { CoordinatorConfig } from './config.ts';
import type { Store } from './store/index.ts';
import type { TaskBoard } from './task-board.ts';

export { MalformedHistogramError };

export interface AuditRoundContext {
  store: Store;
  board: TaskBoard;
  cfg: CoordinatorConfig;
  domain: Domain;
  registeredSites(): Promise<string[]>;
  waitUntil(what: string, deadline: number, check: () => Promise<boolean>): Promise<boolean>;
  progress(phase: string, message: string): void;
}

export interface MiaRoundResult {
  roundId: string;
  /** `released` when at least one site answered and was charged; `failed` when none did. */
  state: 'released' | 'failed';
  /** Sites whose histogram is in the sum, each charged rhoPerSite. */
  sites: string[];
  /** Sites that refused, with the reason each gave (its policy, its budget, a missing holdout, …). */
  refused: { site: string; reason: string }[];
  /** Sites that neither answered nor refused before the deadline. */
  missing: string[];
  rhoPerSite: number;
  /** The summed noisy histograms and the attack's statistics on them (absent when none answered). */
  histogram?: { members: number[]; holdout: number[] };
  stats?: MiaStats;
}

export interface MiaAuditReport {
  audit: 'membership inference (DCR and density), site-computed noised histograms, charged per site';
  holdoutFraction: number;
  cohortRows: number;
  cohortSha256: string;
  bins: number;
  sigmaSite: number;
  rounds: Record<MiaScore, MiaRoundResult>;
}

export const miaRoundId = (score: MiaScore): string => `mia-${score}`;

/** Checks an uploaded histogram against its task: exactly 2·bins integer cells. */
export function checkMiaHistogramBody(spec: MiaHistogramSpec, body: Uint8Array): void {
  decodeHistogram(body, 2 * spec.bins);
}

function cohortPayload(domain: Domain, cohort: Dataset): Buffer {
  if (cohort.domain.attrs.join('\u0000') !== domain.attrs.join('\u0000'))
    throw new Error("the cohort's attributes are not the federation schema's");
  return encodeCohort({ attrs: [...domain.attrs], rows: cohort.rows, columns: cohort.columns.map((c) => Array.from(c)) });
}

/**
 * Runs (or, after a restart, resumes) the membership-inference rounds of an audited fit against
 * `cohort`. A round no site answers is `failed` and reported with each site's refusal; it never
 * stops the other round or the fit, whose model and cohort are already released.
 */
export async function runMiaRounds(ctx: AuditRoundContext, cohort: Dataset): Promise<MiaAuditReport> {
  const audit = ctx.cfg.fit.audit;
  if (!audit?.mia) throw new Error('the fit is not configured for a membership-inference audit (fit.audit.mia)');
  const { bins } = audit.mia;
  const sigmaSite2 = rational(BigInt(audit.mia.sigmaSite2.num), BigInt(audit.mia.sigmaSite2.den));
  const rho = scoreHistogramRho({ bins, sigmaSite2 });
  const payload = cohortPayload(ctx.domain, cohort);
  const cohortSha256 = createHash('sha256').update(payload).digest('hex');
  const rounds = {} as Record<MiaScore, MiaRoundResult>;
  for (const score of MIA_SCORES) {
    const spec: MiaHistogramSpec = {
      kind: 'mia-histogram',
      score,
      bins,
      sigmaSite2: audit.mia.sigmaSite2,
      rho,
      holdoutFraction: audit.holdoutFraction,
      cohortRows: cohort.rows,
      cohortSha256,
    };
    rounds[score] = await runOneRound(ctx, spec, payload);
  }
  return {
    audit: 'membership inference (DCR and density), site-computed noised histograms, charged per site',
    holdoutFraction: audit.holdoutFraction,
    cohortRows: cohort.rows,
    cohortSha256,
    bins,
    sigmaSite: Math.sqrt(rationalToNumber(sigmaSite2)),
    rounds,
  };
}

async function runOneRound(ctx: AuditRoundContext, planned: MiaHistogramSpec, payload: Buffer): Promise<MiaRoundResult> {
  const { store, cfg } = ctx;
  const fed = cfg.federationId;
  const roundId = miaRoundId(planned.score);
  let round = await store.getRound(fed, roundId);
  if (!round) {
    const head = await store.auditHead(fed);
    // The site countersigns the coordinator's chain head in its charge entry, as in a measure round.
    const spec: MiaHistogramSpec = { ...planned, ...(head ? { coordinatorHead: head } : {}) };
    const sites = await ctx.registeredSites();
    const tasks = sites.map((siteId) => ({
      federationId: fed,
      taskId: randomUUID(),
      roundId,
      siteId,
      kind: 'mia-histogram' as const,
      spec,
      payload,
    }));
    ({ round } = await store.openRound(
      {
        federationId: fed,
        roundId,
        kind: 'mia-histogram',
        spec,
        quorum: 1,
        deadlineAt: new Date(Date.now() + cfg.rounds.deadlineMs),
      },
      tasks,
      { auditEvents: tasks.map(taskIssuedEvent) },
    ));
    for (const s of sites) ctx.board.notify(s);
    ctx.progress('audit', `${roundId}: asking ${sites.length} site(s) for their noised ${planned.score} histogram`);
  }
  const spec = decodeTaskSpec('mia-histogram', round.spec);
  if (round.state === 'open') {
    await ctx.waitUntil(`${roundId} histograms`, round.deadlineAt.getTime(), async () =>
      (await store.listTasks(fed, roundId)).every((t) => t.state === 'done' || t.state === 'refused'),
    );
    round = await store.setRoundState(fed, roundId, 'closed');
  }
  if (round.state === 'closed') await store.expireTasks(fed, roundId);
  const tasks = await store.listTasks(fed, roundId);
  const subs = (await store.listSubmissions(fed, roundId)).sort((a, b) => a.siteId.localeCompare(b.siteId));
  const refused = tasks
    .filter((t) => t.state === 'refused')
    .map((t) => ({ site: t.siteId, reason: t.refusalReason ?? 'refused' }))
    .sort((a, b) => a.site.localeCompare(b.site));
  const answered = new Set(subs.map((s) => s.siteId));
  const missing = tasks
    .filter((t) => t.state !== 'refused' && !answered.has(t.siteId))
    .map((t) => t.siteId)
    .sort();
  const base = { roundId, refused, missing, rhoPerSite: spec.rho };
  const why = [...refused.map((r) => `${r.site} refused: ${r.reason}`), ...missing.map((s) => `${s} did not answer`)].join('; ');
  if (subs.length === 0) {
    const reason = `no site answered the ${spec.score} membership-inference histogram${why ? ` (${why})` : ''}`;
    if (round.state !== 'failed') await store.setRoundState(fed, roundId, 'failed', { failureReason: reason.slice(0, 4000) });
    ctx.progress('audit', `${roundId}: ${reason}`);
    return { ...base, state: 'failed', sites: [] };
  }
  const sites = subs.map((s) => s.siteId);
  if (round.state !== 'released') {
    const sensitivity = answerSensitivity(1);
    const dimension = 2 * spec.bins;
    const mechanism = {
      name: SCORE_HISTOGRAM_MECHANISM,
      reference: "each site's own histogram, released alone: discrete Gaussian (Canonne, Kamath, Steinke 2020), one party",
      unit: privacyUnit(),
      ...sensitivity,
      dimension,
      sigmaSite2: spec.sigmaSite2,
      parties: 1,
      contributors: 1,
    };
    const taskOf = new Map(tasks.map((t) => [t.siteId, t.taskId]));
    // The histograms stay in the submissions they arrived as: they are not measurements of the model.
    await store.recordChargesAndRelease(
      fed,
      roundId,
      sites.map((siteId) => ({ siteId, rho: spec.rho, mechanism })),
      [],
      {
        auditEvents: [
          {
            type: 'measurement-released',
            federationId: fed,
            roundId,
            mechanism: SCORE_HISTOGRAM_MECHANISM,
            ...sensitivity,
            dimension,
            sigmaSite2: spec.sigmaSite2,
            parties: sites,
            quorum: 1,
            rho: spec.rho,
          },
          ...sites.map((siteId) => ({
            type: 'charge' as const,
            federationId: fed,
            roundId,
            taskId: taskOf.get(siteId)!,
            site: siteId,
            rho: spec.rho,
            mechanism: SCORE_HISTOGRAM_MECHANISM,
          })),
        ],
      },
    );
  }
  const total = new Float64Array(2 * spec.bins);
  for (const s of subs) decodeHistogram(s.body, 2 * spec.bins).forEach((v, i) => (total[i] += Number(v)));
  const members = Array.from(total.subarray(0, spec.bins));
  const holdout = Array.from(total.subarray(spec.bins));
  // Density: a higher score means more synthetic records near the patient (more "member-like").
  const stats = miaFromHistograms(members, holdout, spec.score === 'density');
  ctx.progress(
    'audit',
    `${roundId}: ${sites.length} site(s) charged ρ ${spec.rho.toPrecision(4)} each; AUC ${stats.auc.toFixed(3)}, advantage ${stats.advantage.toFixed(3)}` +
      (why ? ` (${why})` : ''),
  );
  return { ...base, state: 'released', sites, histogram: { members, holdout }, stats };
}
