// The site's side of the empirical audits run as tasks of a real federation.
//
// An audited fit: its measure tasks carry a holdout fraction, and the site keeps that fraction of
// its patients (drawn with the CSPRNG, stored in its state folder per fit so that a restarted
// agent keeps the same split) out of every measure answer of that fit.
//
// Canaries (a canary audit of an audited fit): the measure tasks of the fit carry the canary
// patients the auditor included at this site. If the site's policy allows canary audits
// (`allowedStatistics: [.., canary]`), it checks them against its schema, stores their digest per
// fit (every answer of the fit must add the same canaries) and adds them to its members' rows.
//
// A `mia-histogram` task: after the cohort is drawn, the site scores each of its records against
// the cohort (site-agent/dcr.ts), histograms the scores over [members | holdout], adds its own
// discrete Gaussian noise and is charged, in its own ledger under its own policy, at single-party
// ρ: the histogram reaches the coordinator alone, so only this site's noise protects it.
import { createHash, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocColumn, Dataset } from '../model/domain.ts';
import { subset } from '../model/split.ts';
import { rational } from '../privacy/dp/rational.ts';
import { decodeCohort, MalformedCohortError } from '../proto/mia-wire.ts';
import type { MeasureSpec, MiaHistogramSpec } from '../proto/task-spec.ts';
import { ensureDirDurable, writeFileDurable } from './audit-log.ts';
import { noisedScoreHistogram, scoreHistogramRho, ScoreHistogramRefused } from './dcr.ts';
import { checkScoreHistogramTask } from './policy.ts';
import { auditFitId, TaskRefusal, type TaskAnswer, type TaskContext } from './tasks.ts';

/** What the site stores of an audited fit's split: enough to rebuild it, nothing to re-identify. */
interface HoldoutRecord {
  v: 1;
  fitId: string;
  fraction: number;
  /** Rows the site had when it drew the split. */
  rows: number;
  /** SHA-256 (hex, 32 digits) of each held-out patient's local id (the row index when ids are unknown). */
  heldOut: string[];
}

function holdoutFile(stateDir: string, fitId: string): string {
  return join(stateDir, 'holdout', `${createHash('sha256').update(fitId).digest('hex').slice(0, 32)}.json`);
}

function rowKey(ids: readonly string[] | undefined, row: number): string {
  return createHash('sha256')
    .update(ids ? `id:${ids[row]}` : `row:${row}`)
    .digest('hex')
    .slice(0, 32);
}

function readHoldout(file: string, fitId: string): HoldoutRecord | null {
  if (!existsSync(file)) return null;
  const rec = JSON.parse(readFileSync(file, 'utf8')) as HoldoutRecord;
  if (rec.v !== 1 || rec.fitId !== fitId || !Array.isArray(rec.heldOut))
    throw new Error(
      `holdout file ${file} is not this fit's (${fitId}); it is never rewritten, so restore it from a backup of the state folder`,
    );
  return rec;
}

/**
 * Number of patients held out of n at fraction f: round(f·n), and at least one on each side when
 * n ≥ 2, so both groups of the audit's histogram exist.
 */
export function holdoutSize(rows: number, fraction: number): number {
  if (rows < 2) return 0;
  return Math.min(rows - 1, Math.max(1, Math.round(fraction * rows)));
}

export interface FitSplit {
  members: Dataset;
  holdout: Dataset;
  fraction: number;
}

/**
 * The split of an audited fit, loaded from the state folder or, the first time (`create`), drawn
 * with the CSPRNG and stored durably before any answer uses it. Returns null when the fit keeps no
 * holdout. A fraction other than the stored one is refused: the fit's rounds must all leave out
 * the same patients.
 */
export function fitSplit(
  ctx: Pick<TaskContext, 'stateDir' | 'fitId' | 'federationId' | 'data' | 'patientIds'>,
  fraction: number | undefined,
  create: boolean,
): FitSplit | null {
  const fitId = ctx.fitId ?? ctx.federationId;
  const file = holdoutFile(ctx.stateDir, fitId);
  let rec = readHoldout(file, fitId);
  if (rec && fraction !== undefined && rec.fraction !== fraction)
    throw new TaskRefusal(
      `the task asks for a holdout fraction of ${fraction}, but this site already holds out ${rec.fraction} of its patients for fit ${fitId}`,
    );
  if (!rec) {
    if (fraction === undefined) return null;
    if (!create) throw new TaskRefusal(`fit ${fitId} kept no holdout at this site: it was not run as an audited fit here`);
    const n = ctx.data.rows;
    const k = holdoutSize(n, fraction);
    // Partial Fisher–Yates with the OS CSPRNG: the first k of a uniform permutation.
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = randomInt(i, n);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    rec = { v: 1, fitId, fraction, rows: n, heldOut: idx.slice(0, k).map((r) => rowKey(ctx.patientIds, r)) };
    ensureDirDurable(join(ctx.stateDir, 'holdout'));
    writeFileDurable(file, Buffer.from(`${JSON.stringify(rec)}\n`, 'utf8'));
  }
  // Patients that arrived after the split are members: only the stored ones are ever held out.
  const held = new Set(rec.heldOut);
  const members: number[] = [];
  const holdout: number[] = [];
  for (let r = 0; r < ctx.data.rows; r++) (held.has(rowKey(ctx.patientIds, r)) ? holdout : members).push(r);
  return { members: subset(ctx.data, members), holdout: subset(ctx.data, holdout), fraction: rec.fraction };
}

/**
 * The rows a measure task of this fit reads: all of them, or, in an audited fit (the task names a
 * holdout fraction, or the site already holds some out for this fit), the members only, plus the
 * fit's canary rows when the task carries them (`checkedCanaries`).
 */
export function measureRows(ctx: TaskContext, spec: Pick<MeasureSpec, 'holdoutFraction' | 'canaryRows'>): Dataset {
  const canaries = checkedCanaries(ctx, spec);
  const members = fitSplit(ctx, spec.holdoutFraction, true)?.members ?? ctx.data;
  return canaries.length === 0 ? members : withCanaries(members, canaries);
}

function canaryFile(stateDir: string, fitId: string): string {
  return join(stateDir, 'canaries', `${createHash('sha256').update(fitId).digest('hex').slice(0, 32)}.json`);
}

/**
 * The canary rows of a measure task, checked before any data is read: refused unless the policy
 * allows canary audits and the fit is audited (the task names its holdout fraction), each value
 * inside the site's schema, and the same set (by SHA-256, stored durably the first time) in every
 * answer of the fit. A fit that started without canaries keeps none, and one with canaries cannot drop them.
 */
export function checkedCanaries(ctx: TaskContext, spec: Pick<MeasureSpec, 'holdoutFraction' | 'canaryRows'>): number[][] {
  const fitId = ctx.fitId ?? ctx.federationId;
  const file = canaryFile(ctx.stateDir, fitId);
  const rows = spec.canaryRows ?? [];
  const digest = createHash('sha256').update(JSON.stringify(rows)).digest('hex');
  const stored = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { fitId: string; rows: number; sha256: string }) : null;
  if (stored && (stored.fitId !== fitId || stored.sha256 !== digest))
    throw new TaskRefusal(
      `the task carries ${rows.length} canary row(s) (SHA-256 ${digest.slice(0, 16)}…), but this site added ${stored.rows} other canary row(s) to the earlier answers of fit ${fitId}: every answer of a fit must add the same canaries`,
    );
  if (rows.length === 0) return rows;
  if (!ctx.policy.allowedStatistics.includes('canary'))
    throw new TaskRefusal(
      `canary rows are not allowed by this site's policy (allowedStatistics: ${ctx.policy.allowedStatistics.join(', ') || 'none'}; add canary to take part in canary audits)`,
    );
  if (spec.holdoutFraction === undefined)
    throw new TaskRefusal(`the task carries canaryRows but is not part of an audited fit (no holdoutFraction): canaries are refused`);
  const d = ctx.data.domain;
  rows.forEach((row, i) => {
    if (row.length !== d.attrs.length)
      throw new TaskRefusal(`canaryRows[${i}] has ${row.length} values, this site's schema has ${d.attrs.length} attributes`);
    row.forEach((v, j) => {
      if (v >= d.sizes[j]) throw new TaskRefusal(`canaryRows[${i}][${j}] is ${v}, outside attribute ${d.attrs[j]}'s ${d.sizes[j]} values`);
    });
  });
  if (!stored) {
    ensureDirDurable(join(ctx.stateDir, 'canaries'));
    writeFileDurable(file, Buffer.from(`${JSON.stringify({ v: 1, fitId, rows: rows.length, sha256: digest })}\n`, 'utf8'));
  }
  return rows;
}

function withCanaries(base: Dataset, rows: readonly number[][]): Dataset {
  const n = base.rows + rows.length;
  return new Dataset(
    base.domain,
    base.columns.map((c, j) => {
      const col = allocColumn(base.domain.sizes[j], n);
      col.set(c.subarray(0, base.rows));
      rows.forEach((row, i) => (col[base.rows + i] = row[j]));
      return col;
    }),
    n,
  );
}

/**
 * A `mia-histogram` task: checked against the policy before the data is read, answered with the
 * shared site function (site-agent/dcr.ts `noisedScoreHistogram`), charged in the ledger (with
 * the fit id and the coordinator head it countersigns) before a byte is returned.
 */
export function miaHistogram(ctx: TaskContext, spec: MiaHistogramSpec, payload: Uint8Array): TaskAnswer {
  const cached = ctx.ledger.cachedAnswer(ctx.taskId);
  if (cached) return { kind: 'mia-histogram', body: cached, fresh: false, rho: ctx.ledger.record(ctx.taskId)?.rho };

  const sigmaSite2 = rational(BigInt(spec.sigmaSite2.num), BigInt(spec.sigmaSite2.den));
  const rho = scoreHistogramRho({ bins: spec.bins, sigmaSite2 });
  const verdict = checkScoreHistogramTask(ctx.policy, spec, {
    federationId: ctx.federationId,
    ledgerState: ctx.ledger.state(),
    now: ctx.now(),
    computedRho: rho,
    coordinatorFingerprint: ctx.coordinatorFingerprint,
  });
  if (!verdict.ok) throw new TaskRefusal(verdict.reason);
  const digest = createHash('sha256').update(payload).digest('hex');
  if (digest !== spec.cohortSha256) throw new TaskRefusal(`the cohort payload's SHA-256 ${digest} is not the task's ${spec.cohortSha256}`);
  let cohortCols;
  try {
    cohortCols = decodeCohort(payload, ctx.data.domain);
  } catch (e) {
    if (e instanceof MalformedCohortError) throw new TaskRefusal(`malformed cohort: ${e.message}`);
    throw e;
  }
  if (cohortCols.rows !== spec.cohortRows)
    throw new TaskRefusal(`the cohort holds ${cohortCols.rows} rows, the task announces ${spec.cohortRows}`);
  const split = fitSplit(ctx, spec.holdoutFraction, false)!;
  const cohort = new Dataset(
    ctx.data.domain,
    cohortCols.columns.map((c, j) => {
      const col = allocColumn(ctx.data.domain.sizes[j], c.length);
      col.set(c);
      return col;
    }),
    cohortCols.rows,
  );
  try {
    const a = noisedScoreHistogram(ctx.ledger, split.members, split.holdout, cohort, {
      federationId: ctx.federationId,
      roundId: ctx.roundId,
      taskId: ctx.taskId,
      kind: spec.score,
      bins: spec.bins,
      sigmaSite2,
      fitId: auditFitId(ctx),
      coordinatorHead: spec.coordinatorHead,
    });
    return { kind: 'mia-histogram', body: a.answer, fresh: a.fresh, rho };
  } catch (e) {
    if (e instanceof ScoreHistogramRefused) throw new TaskRefusal(e.message);
    throw e;
  }
}
