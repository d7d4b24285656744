// What the sites and committee members upload: per-task submissions (ciphertexts), the summed
// ciphertexts per committee member, and the members' partial decryptions. Every write is
// idempotent by key, so a retried upload is never stored twice.
import { canonicalJson, sha256Hex } from './canonical.ts';
import { bytesEqual, insertOnce } from './idempotent.ts';
import { lockRound, lockTask } from './rounds.ts';
import { json, toAggregate, toPartial, toSubmission } from './rows.ts';
import type { SqlClient } from './sql.ts';
import {
  StoreError,
  type Aggregate,
  type AggregateInput,
  type Partial,
  type PartialInput,
  type PutResult,
  type Submission,
  type SubmissionInput,
} from './types.ts';

/**
 * Store a site's (ciphertext) result for a task and mark the task done, atomically.
 * Idempotent by task id: the same body again → `{ duplicate: true }`; a different body →
 * `conflicting resubmission`; a closed round, a refused/expired task or another site's task →
 * error. Nothing is written unless everything succeeds.
 *
 * The body is ciphertext (BFV encryptions of Shamir shares): the coordinator never stores a
 * single site's plaintext vector, and nothing here decrypts or inspects it.
 */
export function putSubmission(sql: SqlClient, s: SubmissionInput): Promise<PutResult & { bodySha256: string }> {
  const digest = sha256Hex(s.body);
  return sql.transaction(async (tx) => {
    const found = await tx.query<{ round_id: string }>('SELECT round_id FROM tasks WHERE federation_id = $1 AND task_id = $2', [
      s.federationId,
      s.taskId,
    ]);
    if (found.rows.length === 0) throw new StoreError('not_found', `unknown task ${s.taskId}`);
    // FOR SHARE on the round lets submissions run concurrently while a close (FOR UPDATE) waits
    // for them, so none can land after the close commits.
    const round = await lockRound(tx, s.federationId, found.rows[0].round_id, 'SHARE');
    const task = await lockTask(tx, s.federationId, s.taskId);
    if (task.siteId !== s.siteId) {
      throw new StoreError('forbidden', `task ${s.taskId} belongs to another site`);
    }
    const put = await insertOnce(tx, {
      insert: [
        `INSERT INTO submissions (task_id, federation_id, round_id, site_id, kind, body_sha256, body_bytes, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING task_id`,
        [s.taskId, s.federationId, task.roundId, task.siteId, task.kind, digest, s.body.byteLength, s.body],
      ],
      stored: ['SELECT * FROM submissions WHERE task_id = $1', [s.taskId]],
      toRow: toSubmission,
      same: (cur) => cur.bodySha256 === digest,
      conflict: `conflicting resubmission for task ${s.taskId}`,
    });
    if (put.duplicate) return { duplicate: true, bodySha256: digest };
    // A new body is accepted only into an open round and a live task; throwing here rolls the
    // insert back.
    if (round.state !== 'open') {
      throw new StoreError('invalid_state', `round ${round.roundId} is ${round.state}: submission rejected`);
    }
    if (task.state !== 'pending' && task.state !== 'delivered') {
      throw new StoreError('invalid_state', `task ${s.taskId} is ${task.state}: submission rejected`);
    }
    await tx.query(`UPDATE tasks SET state = 'done', done_at = now() WHERE task_id = $1`, [s.taskId]);
    return { duplicate: false, bodySha256: digest };
  });
}

export async function listSubmissions(sql: SqlClient, federationId: string, roundId: string): Promise<Submission[]> {
  const { rows } = await sql.query('SELECT * FROM submissions WHERE federation_id = $1 AND round_id = $2 ORDER BY received_at, task_id', [
    federationId,
    roundId,
  ]);
  return rows.map(toSubmission);
}

/** Idempotent if identical; a different aggregate for the same (round, member) is a conflict. */
export function putAggregate(sql: SqlClient, a: AggregateInput): Promise<PutResult> {
  return sql.transaction((tx) => putAggregateTx(tx, a));
}

/** putAggregate inside the caller's transaction (written with the decrypt round that reads it). */
export function putAggregateTx(tx: SqlClient, a: AggregateInput): Promise<PutResult> {
  return insertOnce(tx, {
    insert: [
      `INSERT INTO aggregates (federation_id, round_id, member_id, point, length, contributors, ciphertexts)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING RETURNING member_id`,
      [a.federationId, a.roundId, a.memberId, a.point, a.length, json(a.contributors), a.ciphertexts],
    ],
    stored: [
      'SELECT * FROM aggregates WHERE federation_id = $1 AND round_id = $2 AND member_id = $3',
      [a.federationId, a.roundId, a.memberId],
    ],
    toRow: toAggregate,
    same: (cur) =>
      cur.point === a.point &&
      cur.length === a.length &&
      canonicalJson(cur.contributors) === canonicalJson(a.contributors) &&
      bytesEqual(cur.ciphertexts, a.ciphertexts),
    conflict: `a different aggregate is stored for ${a.roundId}/${a.memberId}`,
  });
}

export async function listAggregates(sql: SqlClient, federationId: string, roundId: string): Promise<Aggregate[]> {
  const { rows } = await sql.query('SELECT * FROM aggregates WHERE federation_id = $1 AND round_id = $2 ORDER BY point', [
    federationId,
    roundId,
  ]);
  return rows.map(toAggregate);
}

/** Idempotent if identical; a different share for the same (round, member) is a conflict. */
export function putPartial(sql: SqlClient, p: PartialInput): Promise<PutResult> {
  return sql.transaction((tx) =>
    insertOnce(tx, {
      insert: [
        `INSERT INTO partials (federation_id, round_id, member_id, point, share)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING member_id`,
        [p.federationId, p.roundId, p.memberId, p.point, p.share],
      ],
      stored: [
        'SELECT * FROM partials WHERE federation_id = $1 AND round_id = $2 AND member_id = $3',
        [p.federationId, p.roundId, p.memberId],
      ],
      toRow: toPartial,
      same: (cur) => cur.point === p.point && bytesEqual(cur.share, p.share),
      conflict: `a different partial decryption is stored for ${p.roundId}/${p.memberId}`,
    }),
  );
}

export async function listPartials(sql: SqlClient, federationId: string, roundId: string): Promise<Partial[]> {
  const { rows } = await sql.query('SELECT * FROM partials WHERE federation_id = $1 AND round_id = $2 ORDER BY point', [
    federationId,
    roundId,
  ]);
  return rows.map(toPartial);
}

/**
 * Sites that uploaded a contribution to a measure round that is not released: each of them
 * charged its own ledger before uploading, so a failed round spent their budget for nothing
 * (and an open or closed one has spent it until it is released).
 */
export async function unreleasedContributions(
  sql: SqlClient,
  federationId: string,
): Promise<{ roundId: string; state: string; failureReason: string | null; sites: string[] }[]> {
  const { rows } = await sql.query<{ round_id: string; state: string; failure_reason: string | null; sites: string[] }>(
    `SELECT r.round_id, r.state, r.failure_reason, array_agg(s.site_id ORDER BY s.site_id) AS sites
       FROM rounds r JOIN submissions s ON s.federation_id = r.federation_id AND s.round_id = r.round_id
      WHERE r.federation_id = $1 AND r.kind = 'measure' AND r.state <> 'released'
      GROUP BY r.round_id, r.state, r.failure_reason, r.seq ORDER BY r.seq`,
    [federationId],
  );
  return rows.map((r) => ({ roundId: r.round_id, state: r.state, failureReason: r.failure_reason, sites: r.sites }));
}
