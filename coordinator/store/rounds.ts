// Rounds and their tasks: creation, the round state machine, task delivery and completion.
// Lock order everywhere: round, then task.
import type { AuditEvent } from '../../privacy/audit-log/chain.ts';
import { appendAuditTx, type AuditKey } from './audit.ts';
import { sha256Hex } from './canonical.ts';
import { json, toRound, toTask } from './rows.ts';
import type { SqlClient } from './sql.ts';
import {
  ROUND_TRANSITIONS,
  StoreError,
  type Round,
  type RoundInput,
  type RoundKind,
  type RoundState,
  type Task,
  type TaskInput,
  type TaskStatus,
  type TaskState,
} from './types.ts';

/** Creates an open round; seq is the next number in the federation. */
export async function createRound(sql: SqlClient, r: RoundInput): Promise<Round> {
  checkRoundInput(r);
  return sql.transaction((tx) => createRoundTx(tx, r));
}

function checkRoundInput(r: RoundInput): void {
  if (!Number.isInteger(r.quorum) || r.quorum < 1) throw new StoreError('invalid', 'quorum must be an integer >= 1');
  if (!(r.deadlineAt instanceof Date) || Number.isNaN(r.deadlineAt.getTime())) {
    throw new StoreError('invalid', 'a round needs a valid deadline (rounds never wait forever)');
  }
}

async function createRoundTx(tx: SqlClient, r: RoundInput): Promise<Round> {
  const fed = await tx.query('SELECT id FROM federations WHERE id = $1 FOR UPDATE', [r.federationId]);
  if (fed.rows.length === 0) throw new StoreError('not_found', `unknown federation ${r.federationId}`);
  const dup = await tx.query('SELECT 1 FROM rounds WHERE federation_id = $1 AND round_id = $2', [r.federationId, r.roundId]);
  if (dup.rows.length) throw new StoreError('conflict', `round ${r.roundId} already exists`);
  const { rows } = await tx.query(
    `INSERT INTO rounds (federation_id, round_id, seq, kind, spec_json, quorum, deadline_at)
     VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rounds WHERE federation_id = $1), $3, $4::jsonb, $5, $6)
     RETURNING *`,
    [r.federationId, r.roundId, r.kind, json(r.spec), r.quorum, r.deadlineAt],
  );
  return toRound(rows[0]);
}

export interface OpenRoundOptions {
  /** Written in the same transaction before the round (a decrypt round's summed ciphertexts). */
  before?: (tx: SqlClient) => Promise<void>;
  /** One per task, appended to the audit chain in the same transaction. */
  auditEvents?: readonly AuditEvent[];
  /** Runs last inside the transaction (fault injection: a crash here leaves nothing behind). */
  beforeCommit?: () => void;
}

/**
 * A round and all its tasks (and their `task-issued` audit entries) in ONE transaction: a crash
 * never leaves a round that no site can answer, which a restart would wait out and then fail.
 */
export async function openRound(
  sql: SqlClient,
  r: RoundInput,
  tasks: readonly TaskInput[],
  opts: OpenRoundOptions,
  signer: () => AuditKey,
): Promise<{ round: Round; tasks: Task[] }> {
  checkRoundInput(r);
  for (const t of tasks) {
    if (t.federationId !== r.federationId || t.roundId !== r.roundId)
      throw new StoreError('invalid', `task ${t.taskId} is not of round ${r.roundId} in federation ${r.federationId}`);
  }
  const key = opts.auditEvents?.length ? signer() : null;
  return sql.transaction(async (tx) => {
    if (opts.before) await opts.before(tx);
    const round = await createRoundTx(tx, r);
    const created = await createTasksTx(tx, tasks);
    for (const ev of opts.auditEvents ?? []) await appendAuditTx(tx, r.federationId, ev, key!);
    opts.beforeCommit?.();
    return { round, tasks: created };
  });
}

/**
 * Moves an open round's deadline (only ever later): a round re-opened after a crash left it
 * without tasks, so that the tasks created now can still be answered.
 */
export async function extendRoundDeadline(sql: SqlClient, federationId: string, roundId: string, deadlineAt: Date): Promise<Round> {
  return sql.transaction(async (tx) => {
    const round = await lockRound(tx, federationId, roundId, 'UPDATE');
    if (round.state !== 'open') throw new StoreError('invalid_state', `round ${roundId} is ${round.state}, not open`);
    const { rows } = await tx.query(
      `UPDATE rounds SET deadline_at = GREATEST(deadline_at, $3) WHERE federation_id = $1 AND round_id = $2 RETURNING *`,
      [federationId, roundId, deadlineAt],
    );
    return toRound(rows[0]);
  });
}

export async function getRound(sql: SqlClient, federationId: string, roundId: string): Promise<Round | null> {
  const { rows } = await sql.query('SELECT * FROM rounds WHERE federation_id = $1 AND round_id = $2', [federationId, roundId]);
  return rows.length ? toRound(rows[0]) : null;
}

export async function listRounds(
  sql: SqlClient,
  federationId: string,
  filter: { state?: RoundState; kind?: RoundKind } = {},
): Promise<Round[]> {
  const { rows } = await sql.query(
    `SELECT * FROM rounds WHERE federation_id = $1
       AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR kind = $3)
     ORDER BY seq`,
    [federationId, filter.state ?? null, filter.kind ?? null],
  );
  return rows.map(toRound);
}

/**
 * Move a round along ROUND_TRANSITIONS; anything else throws `invalid_state`. A measure round
 * can only be released by `recordChargesAndRelease` (its spend must be recorded with it).
 */
export async function setRoundState(
  sql: SqlClient,
  federationId: string,
  roundId: string,
  to: RoundState,
  opts: { failureReason?: string } = {},
): Promise<Round> {
  return sql.transaction(async (tx) => {
    const round = await lockRound(tx, federationId, roundId, 'UPDATE');
    assertTransition(round, to);
    if (to === 'released' && round.kind === 'measure') {
      throw new StoreError('invalid_state', `measure round ${roundId} is released only by recordChargesAndRelease`);
    }
    if (to === 'failed' && !opts.failureReason) {
      throw new StoreError('invalid', 'failing a round needs a failure reason');
    }
    const { rows } = await tx.query(
      `UPDATE rounds SET state = $3,
         closed_at = CASE WHEN closed_at IS NULL AND $3 <> 'open' THEN now() ELSE closed_at END,
         failure_reason = CASE WHEN $3 = 'failed' THEN $4 ELSE failure_reason END
       WHERE federation_id = $1 AND round_id = $2 RETURNING *`,
      [federationId, roundId, to, opts.failureReason ?? null],
    );
    return toRound(rows[0]);
  });
}

/** Bulk create (all or nothing). Every task's round must exist and be open. */
export async function createTasks(sql: SqlClient, tasks: readonly TaskInput[]): Promise<Task[]> {
  if (tasks.length === 0) return [];
  return sql.transaction((tx) => createTasksTx(tx, tasks));
}

async function createTasksTx(tx: SqlClient, tasks: readonly TaskInput[]): Promise<Task[]> {
  if (tasks.length === 0) return [];
  const seen = new Set<string>();
  for (const t of tasks) {
    const key = JSON.stringify([t.federationId, t.roundId]);
    if (seen.has(key)) continue;
    seen.add(key);
    const round = await lockRound(tx, t.federationId, t.roundId, 'SHARE');
    if (round.state !== 'open') {
      throw new StoreError('invalid_state', `round ${t.roundId} is ${round.state}, not open`);
    }
  }
  // A task for a site that never registered would fail on the foreign key with a raw error.
  const fedSites = new Map<string, Set<string>>();
  for (const t of tasks) (fedSites.get(t.federationId) ?? fedSites.set(t.federationId, new Set()).get(t.federationId)!).add(t.siteId);
  for (const [federationId, wanted] of fedSites) {
    const { rows } = await tx.query<{ site_id: string }>(
      'SELECT site_id FROM sites WHERE federation_id = $1 AND site_id = ANY($2::text[])',
      [federationId, [...wanted]],
    );
    const known = new Set(rows.map((r) => r.site_id));
    const missing = [...wanted].filter((s) => !known.has(s)).sort();
    if (missing.length)
      throw new StoreError(
        'invalid',
        `site(s) ${missing.join(', ')} never registered in federation ${federationId}: no task can be issued to them`,
      );
  }
  const out: Task[] = [];
  const CHUNK = 200;
  for (let i = 0; i < tasks.length; i += CHUNK) {
    const chunk = tasks.slice(i, i + CHUNK);
    const params: unknown[] = [];
    const values = chunk.map((t) => {
      const payload = t.payload ?? null;
      params.push(t.taskId, t.federationId, t.roundId, t.siteId, t.kind, json(t.spec), payload, payload ? sha256Hex(payload) : null);
      const b = params.length - 8;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}::jsonb, $${b + 7}::bytea, $${b + 8})`;
    });
    const { rows } = await tx.query(
      `INSERT INTO tasks (task_id, federation_id, round_id, site_id, kind, spec_json, payload, payload_sha256)
       VALUES ${values.join(', ')} RETURNING *`,
      params,
    );
    out.push(...rows.map(toTask));
  }
  return out;
}

/**
 * The site's oldest task that is pending, or delivered but not done (redelivery after a lost
 * response), in an open round whose deadline has not passed. Marks it delivered.
 */
export async function nextTaskForSite(sql: SqlClient, federationId: string, siteId: string): Promise<Task | null> {
  const { rows } = await sql.query(
    `UPDATE tasks SET state = 'delivered', delivered_at = now()
     WHERE task_id = (
       SELECT t.task_id FROM tasks t
       JOIN rounds r ON r.federation_id = t.federation_id AND r.round_id = t.round_id
       WHERE t.federation_id = $1 AND t.site_id = $2 AND t.state IN ('pending', 'delivered')
         AND r.state = 'open' AND r.deadline_at > now()
       ORDER BY r.seq, t.created_at, t.task_id
       LIMIT 1
       FOR UPDATE OF t SKIP LOCKED)
     RETURNING *`,
    [federationId, siteId],
  );
  return rows.length ? toTask(rows[0]) : null;
}

export async function getTask(sql: SqlClient, federationId: string, taskId: string): Promise<Task | null> {
  const { rows } = await sql.query('SELECT * FROM tasks WHERE federation_id = $1 AND task_id = $2', [federationId, taskId]);
  return rows.length ? toTask(rows[0]) : null;
}

/**
 * A round's tasks without their specs or payloads: what a waiting round polls. A measure task's
 * spec carries every committee key (~1 MB of JSON), so polling full rows of a 100-site round
 * parsed ~100 MB per poll.
 */
export async function taskStates(sql: SqlClient, federationId: string, roundId: string): Promise<TaskStatus[]> {
  const { rows } = await sql.query<{ task_id: string; site_id: string; state: TaskState }>(
    'SELECT task_id, site_id, state FROM tasks WHERE federation_id = $1 AND round_id = $2 ORDER BY created_at, task_id',
    [federationId, roundId],
  );
  return rows.map((r) => ({ taskId: r.task_id, siteId: r.site_id, state: r.state }));
}

export async function listTasks(sql: SqlClient, federationId: string, roundId: string): Promise<Task[]> {
  const { rows } = await sql.query('SELECT * FROM tasks WHERE federation_id = $1 AND round_id = $2 ORDER BY created_at, task_id', [
    federationId,
    roundId,
  ]);
  return rows.map(toTask);
}

/** pending/delivered → done; idempotent on done; refused/expired tasks cannot be done. */
export async function markTaskDone(sql: SqlClient, federationId: string, taskId: string): Promise<Task> {
  return sql.transaction(async (tx) => {
    const task = await lockTask(tx, federationId, taskId);
    if (task.state === 'done') return task;
    if (task.state !== 'pending' && task.state !== 'delivered') {
      throw new StoreError('invalid_state', `task ${taskId} is ${task.state}`);
    }
    const { rows } = await tx.query(`UPDATE tasks SET state = 'done', done_at = now() WHERE task_id = $1 RETURNING *`, [taskId]);
    return toTask(rows[0]);
  });
}

/** A site refused the task (e.g. over its own budget cap). Idempotent on refused. */
export async function markTaskRefused(sql: SqlClient, federationId: string, taskId: string, reason: string): Promise<Task> {
  return sql.transaction(async (tx) => {
    const task = await lockTask(tx, federationId, taskId);
    if (task.state === 'refused') return task;
    if (task.state !== 'pending' && task.state !== 'delivered') {
      throw new StoreError('invalid_state', `task ${taskId} is ${task.state}`);
    }
    const { rows } = await tx.query(
      `UPDATE tasks SET state = 'refused', done_at = now(), refusal_reason = $2 WHERE task_id = $1 RETURNING *`,
      [taskId, reason],
    );
    return toTask(rows[0]);
  });
}

/** Expire every pending/delivered task of the round; returns how many. */
export async function expireTasks(sql: SqlClient, federationId: string, roundId: string): Promise<number> {
  return sql.transaction(async (tx) => {
    await lockRound(tx, federationId, roundId, 'SHARE');
    const r = await tx.query(
      `UPDATE tasks SET state = 'expired' WHERE federation_id = $1 AND round_id = $2
         AND state IN ('pending', 'delivered')`,
      [federationId, roundId],
    );
    return r.rowCount;
  });
}

// Helpers that run inside a transaction

export async function lockRound(tx: SqlClient, federationId: string, roundId: string, mode: 'UPDATE' | 'SHARE'): Promise<Round> {
  const { rows } = await tx.query(`SELECT * FROM rounds WHERE federation_id = $1 AND round_id = $2 FOR ${mode}`, [federationId, roundId]);
  if (rows.length === 0) throw new StoreError('not_found', `unknown round ${roundId} in federation ${federationId}`);
  return toRound(rows[0]);
}

export async function lockTask(tx: SqlClient, federationId: string, taskId: string): Promise<Task> {
  const { rows } = await tx.query('SELECT * FROM tasks WHERE federation_id = $1 AND task_id = $2 FOR UPDATE', [federationId, taskId]);
  if (rows.length === 0) throw new StoreError('not_found', `unknown task ${taskId}`);
  return toTask(rows[0]);
}

export function assertTransition(round: Round, to: RoundState): void {
  if (!ROUND_TRANSITIONS[round.state].includes(to)) {
    throw new StoreError('invalid_state', `invalid round transition ${round.state} → ${to} for round ${round.roundId}`);
  }
}
