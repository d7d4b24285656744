/**
 * The coordinator's single data-access module (DESIGN.md §8): typed repository functions over
 * the SQL of migrations.ts, identical on embedded PGlite and on a PostgreSQL server.
 *
 * Rules kept here, not in callers:
 * - Every multi-row or read-check-write operation runs in one transaction, with row locks
 *   (`FOR UPDATE` / `FOR SHARE`) or advisory locks where concurrent callers could race.
 * - Retries are idempotent by key (site registration, committee keys, submissions by task id,
 *   aggregates, partials); a *different* value under the same key is an error and changes nothing.
 * - A round's privacy spend is written in the same transaction as its release
 *   (`recordChargesAndRelease`): a crash can never leave a released result without its charges.
 * - Submission bodies are ciphertexts only; the coordinator never stores a single site's
 *   plaintext vector (DESIGN.md §4).
 * - The audit log is append-only, hash-chained and signed: each row is a privacy/audit-log/chain.ts
 *   entry signed with the coordinator's certificate key (`setAuditSigner`); appends are
 *   serialised per federation, and `exportAudit` gives the exact chain an auditor verifies.
 */
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  appendEntry,
  loadSigningKey,
  parseChainLines,
  verifyChain,
  type AuditEntry,
  type AuditEvent,
  type ChainFinding,
  type KeysByParty,
} from '../../privacy/audit-log/chain.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { LOCK_SQL, migrate } from './migrations.ts';
import { openPglite, openPostgres, type Row, type SqlClient } from './sql.ts';

// ---------------------------------------------------------------------------------------------
// Errors

export type StoreErrorCode = 'not_found' | 'conflict' | 'invalid_state' | 'forbidden' | 'invalid';

/** Errors the store raises on purpose; `code` lets the gRPC layer map them to status codes. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

// ---------------------------------------------------------------------------------------------
// Types

export type RoundKind = 'keygen' | 'measure' | 'decrypt';
export type RoundState = 'open' | 'closed' | 'decrypting' | 'released' | 'failed';
export type TaskState = 'pending' | 'delivered' | 'done' | 'refused' | 'expired';

export interface Federation {
  id: string;
  schemaHash: string;
  schema: unknown;
  config: unknown;
  createdAt: Date;
}

export interface Site {
  federationId: string;
  siteId: string;
  registeredAt: Date;
  lastSeenAt: Date;
  agentVersion: string | null;
}

export interface CommitteeKeyInput {
  federationId: string;
  memberId: string;
  /** Shamir evaluation point of this member (1-based, unique per federation). */
  point: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
  certificatePem: string;
}
export interface CommitteeKey extends CommitteeKeyInput {
  createdAt: Date;
}

export interface RoundInput {
  federationId: string;
  roundId: string;
  kind: RoundKind;
  spec: unknown;
  quorum: number;
  deadlineAt: Date;
}
export interface Round extends RoundInput {
  seq: number;
  state: RoundState;
  createdAt: Date;
  closedAt: Date | null;
  failureReason: string | null;
}

export interface TaskInput {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  spec: unknown;
  payload?: Uint8Array | null;
}
export interface Task {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  spec: unknown;
  payload: Uint8Array | null;
  payloadSha256: string | null;
  state: TaskState;
  createdAt: Date;
  deliveredAt: Date | null;
  doneAt: Date | null;
  refusalReason: string | null;
}

export interface SubmissionInput {
  federationId: string;
  taskId: string;
  /** The authenticated site (from its client certificate); must own the task. */
  siteId: string;
  /** Ciphertext bytes only. Never a site's plaintext statistics. */
  body: Uint8Array;
}
export interface Submission {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  bodySha256: string;
  bodyBytes: number;
  body: Uint8Array;
  receivedAt: Date;
}
export interface PutResult {
  duplicate: boolean;
}

export interface AggregateInput {
  federationId: string;
  roundId: string;
  memberId: string;
  point: number;
  length: number;
  /** Site ids whose submissions are summed in these ciphertexts. */
  contributors: string[];
  ciphertexts: Uint8Array;
}
export interface Aggregate extends AggregateInput {
  createdAt: Date;
}

export interface PartialInput {
  federationId: string;
  roundId: string;
  memberId: string;
  point: number;
  share: Uint8Array;
}
export interface Partial extends PartialInput {
  createdAt: Date;
}

export interface MeasurementInput {
  /** Position within the round; defaults to index + 1. */
  seq?: number;
  attrs: string[];
  /** The noised totals (post-DP, safe to store and release). */
  values: number[];
  sigmaTotal: number;
}
export interface Measurement {
  federationId: string;
  roundId: string;
  seq: number;
  attrs: string[];
  values: number[];
  sigmaTotal: number;
  releasedAt: Date;
}

export interface ChargeInput {
  siteId: string;
  rho: number;
  /** Mechanism description for the auditor: distribution, sensitivity, σ, … */
  mechanism: unknown;
}
export interface Charge extends ChargeInput {
  federationId: string;
  roundId: string;
  recordedAt: Date;
}
export interface SiteSpend {
  siteId: string;
  rho: number;
  rounds: number;
}

export interface ModelInput {
  id: string;
  federationId: string;
  rhoTotal: number;
  model: unknown;
}
export interface Model extends ModelInput {
  createdAt: Date;
}

export interface CohortInput {
  id: string;
  federationId: string;
  modelId: string;
  n: number;
  seed: string;
  where: unknown;
  outDir: string;
  report: unknown;
}
export interface Cohort extends CohortInput {
  createdAt: Date;
}

export type { AuditEntry, AuditEvent } from '../../privacy/audit-log/chain.ts';
export type AuditVerification =
  { ok: true; length: number; head: string } | { ok: false; length: number; badSeq: number; reason: string; findings: ChainFinding[] };

/** Who signs the coordinator's audit entries: its party id and certificate key. */
export interface AuditSigner {
  party: string;
  privateKeyPem: string;
}

/** The party id of the coordinator in audit logs. */
export const COORDINATOR_PARTY = 'coordinator';

/** Allowed round transitions. `released` and `failed` are final. */
export const ROUND_TRANSITIONS: Readonly<Record<RoundState, readonly RoundState[]>> = {
  open: ['closed', 'failed'],
  closed: ['decrypting', 'released', 'failed'],
  decrypting: ['released', 'failed'],
  released: [],
  failed: [],
};

// ---------------------------------------------------------------------------------------------
// Row mapping

const json = (v: unknown): string => JSON.stringify(v ?? null);
const bytes = (v: unknown): Uint8Array => v as Uint8Array;
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(v as string));
const dateOrNull = (v: unknown): Date | null => (v == null ? null : date(v));
const num = (v: unknown): number => Number(v);
const strOrNull = (v: unknown): string | null => (v == null ? null : String(v));

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function toFederation(r: Row): Federation {
  return {
    id: String(r.id),
    schemaHash: String(r.schema_hash),
    schema: r.schema_json,
    config: r.config_json,
    createdAt: date(r.created_at),
  };
}
function toSite(r: Row): Site {
  return {
    federationId: String(r.federation_id),
    siteId: String(r.site_id),
    registeredAt: date(r.registered_at),
    lastSeenAt: date(r.last_seen_at),
    agentVersion: strOrNull(r.agent_version),
  };
}
function toCommitteeKey(r: Row): CommitteeKey {
  return {
    federationId: String(r.federation_id),
    memberId: String(r.member_id),
    point: num(r.point),
    publicKey: bytes(r.public_key),
    signature: bytes(r.signature),
    certificatePem: String(r.certificate_pem),
    createdAt: date(r.created_at),
  };
}
function toRound(r: Row): Round {
  return {
    federationId: String(r.federation_id),
    roundId: String(r.round_id),
    seq: num(r.seq),
    kind: r.kind as RoundKind,
    spec: r.spec_json,
    state: r.state as RoundState,
    quorum: num(r.quorum),
    deadlineAt: date(r.deadline_at),
    createdAt: date(r.created_at),
    closedAt: dateOrNull(r.closed_at),
    failureReason: strOrNull(r.failure_reason),
  };
}
function toTask(r: Row): Task {
  return {
    federationId: String(r.federation_id),
    taskId: String(r.task_id),
    roundId: String(r.round_id),
    siteId: String(r.site_id),
    kind: String(r.kind),
    spec: r.spec_json,
    payload: r.payload == null ? null : bytes(r.payload),
    payloadSha256: strOrNull(r.payload_sha256),
    state: r.state as TaskState,
    createdAt: date(r.created_at),
    deliveredAt: dateOrNull(r.delivered_at),
    doneAt: dateOrNull(r.done_at),
    refusalReason: strOrNull(r.refusal_reason),
  };
}
function toSubmission(r: Row): Submission {
  return {
    federationId: String(r.federation_id),
    taskId: String(r.task_id),
    roundId: String(r.round_id),
    siteId: String(r.site_id),
    kind: String(r.kind),
    bodySha256: String(r.body_sha256),
    bodyBytes: num(r.body_bytes),
    body: bytes(r.body),
    receivedAt: date(r.received_at),
  };
}
function toAggregate(r: Row): Aggregate {
  return {
    federationId: String(r.federation_id),
    roundId: String(r.round_id),
    memberId: String(r.member_id),
    point: num(r.point),
    length: num(r.length),
    contributors: r.contributors as string[],
    ciphertexts: bytes(r.ciphertexts),
    createdAt: date(r.created_at),
  };
}
function toPartial(r: Row): Partial {
  return {
    federationId: String(r.federation_id),
    roundId: String(r.round_id),
    memberId: String(r.member_id),
    point: num(r.point),
    share: bytes(r.share),
    createdAt: date(r.created_at),
  };
}
function toMeasurement(r: Row): Measurement {
  return {
    federationId: String(r.federation_id),
    roundId: String(r.round_id),
    seq: num(r.seq),
    attrs: r.attrs as string[],
    values: r.values_json as number[],
    sigmaTotal: num(r.sigma_total),
    releasedAt: date(r.released_at),
  };
}
function toCharge(r: Row): Charge {
  return {
    federationId: String(r.federation_id),
    roundId: String(r.round_id),
    siteId: String(r.site_id),
    rho: num(r.rho),
    mechanism: r.mechanism,
    recordedAt: date(r.recorded_at),
  };
}
function toModel(r: Row): Model {
  return {
    id: String(r.id),
    federationId: String(r.federation_id),
    rhoTotal: num(r.rho_total),
    model: r.model_json,
    createdAt: date(r.created_at),
  };
}
function toCohort(r: Row): Cohort {
  return {
    id: String(r.id),
    federationId: String(r.federation_id),
    modelId: String(r.model_id),
    n: num(r.n),
    seed: String(r.seed),
    where: r.where_json,
    outDir: String(r.out_dir),
    report: r.report_json,
    createdAt: date(r.created_at),
  };
}
function toAudit(r: Row): AuditEntry {
  return JSON.parse(String(r.entry_text)) as AuditEntry;
}

function assertFiniteNonNegative(x: number, what: string): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
    throw new StoreError('invalid', `${what} must be a finite number >= 0, got ${String(x)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

export type StoreOptions =
  | {
      /** PGlite data directory (default `./fedsynth-data/coordinator-db`), or `memory://`. */
      pglite?: string;
      /** `dumpDataDir()` tarball to initialise an empty data directory (skips initdb). */
      initFrom?: Blob | Uint8Array;
      postgresUrl?: undefined;
    }
  | {
      postgresUrl: string;
      /** PostgreSQL schema to use (created if missing); default: the server's search_path. */
      schema?: string;
      poolSize?: number;
    };

export const DEFAULT_PGLITE_DIR = path.join('fedsynth-data', 'coordinator-db');

/** Open the store on the configured backend and bring its schema up to date. */
export async function openStore(opts: StoreOptions = {}): Promise<Store> {
  const sql =
    opts.postgresUrl !== undefined
      ? await openPostgres({ url: opts.postgresUrl, schema: opts.schema, max: opts.poolSize })
      : await openPglite({ dir: opts.pglite ?? DEFAULT_PGLITE_DIR, initFrom: opts.initFrom });
  try {
    await migrate(sql);
  } catch (err) {
    await sql.close();
    throw err;
  }
  return new Store(sql);
}

// ---------------------------------------------------------------------------------------------
// Repository

export class Store {
  private auditSigner: { party: string; key: KeyObject } | null = null;

  constructor(readonly sql: SqlClient) {}

  /** Sets the key that signs every audit entry this store appends (the coordinator's certificate key). */
  setAuditSigner(signer: AuditSigner): void {
    this.auditSigner = { party: signer.party, key: loadSigningKey(signer.privateKeyPem) };
  }

  private signer(): { party: string; key: KeyObject } {
    if (!this.auditSigner)
      throw new StoreError('invalid_state', 'no audit signer set: call setAuditSigner() before appending audit entries');
    return this.auditSigner;
  }

  get backend(): SqlClient['backend'] {
    return this.sql.backend;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  // ----- federations -----

  /**
   * Create the federation, or update its config. The public schema of an existing federation
   * cannot change (DP guarantees depend on it): a different schema hash is a conflict.
   */
  async upsertFederation(f: { id: string; schemaHash: string; schema: unknown; config?: unknown }): Promise<Federation> {
    return this.sql.transaction(async (tx) => {
      const existing = await tx.query('SELECT * FROM federations WHERE id = $1 FOR UPDATE', [f.id]);
      if (existing.rows.length === 0) {
        const { rows } = await tx.query(
          `INSERT INTO federations (id, schema_hash, schema_json, config_json)
           VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING *`,
          [f.id, f.schemaHash, json(f.schema), json(f.config ?? {})],
        );
        return toFederation(rows[0]);
      }
      const cur = toFederation(existing.rows[0]);
      if (cur.schemaHash !== f.schemaHash) {
        throw new StoreError('conflict', `federation ${f.id} already exists with schema hash ${cur.schemaHash}, not ${f.schemaHash}`);
      }
      if (f.config === undefined) return cur;
      const { rows } = await tx.query('UPDATE federations SET config_json = $2::jsonb WHERE id = $1 RETURNING *', [f.id, json(f.config)]);
      return toFederation(rows[0]);
    });
  }

  async getFederation(id: string): Promise<Federation | null> {
    const { rows } = await this.sql.query('SELECT * FROM federations WHERE id = $1', [id]);
    return rows.length ? toFederation(rows[0]) : null;
  }

  // ----- sites -----

  /** Idempotent: re-registering updates last_seen_at / agent_version. */
  async registerSite(federationId: string, siteId: string, agentVersion?: string | null): Promise<{ site: Site; created: boolean }> {
    const { rows } = await this.sql.query(
      `INSERT INTO sites (federation_id, site_id, agent_version) VALUES ($1, $2, $3)
       ON CONFLICT (federation_id, site_id) DO UPDATE
         SET last_seen_at = now(), agent_version = COALESCE(EXCLUDED.agent_version, sites.agent_version)
       RETURNING *, (xmax = 0) AS inserted`,
      [federationId, siteId, agentVersion ?? null],
    );
    return { site: toSite(rows[0]), created: rows[0].inserted === true };
  }

  async touchSite(federationId: string, siteId: string, agentVersion?: string): Promise<void> {
    const r = await this.sql.query(
      `UPDATE sites SET last_seen_at = now(), agent_version = COALESCE($3, agent_version)
       WHERE federation_id = $1 AND site_id = $2`,
      [federationId, siteId, agentVersion ?? null],
    );
    if (r.rowCount === 0) throw new StoreError('not_found', `unknown site ${siteId} in federation ${federationId}`);
  }

  async listSites(federationId: string): Promise<Site[]> {
    const { rows } = await this.sql.query('SELECT * FROM sites WHERE federation_id = $1 ORDER BY site_id', [federationId]);
    return rows.map(toSite);
  }

  // ----- committee keys -----

  /** Idempotent if identical; a different key (or point) for the same member is a conflict. */
  async putCommitteeKey(k: CommitteeKeyInput): Promise<PutResult> {
    return this.sql.transaction(async (tx) => {
      const ins = await tx.query(
        `INSERT INTO committee_keys (federation_id, member_id, point, public_key, signature, certificate_pem)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING member_id`,
        [k.federationId, k.memberId, k.point, k.publicKey, k.signature, k.certificatePem],
      );
      if (ins.rows.length === 1) return { duplicate: false };
      const { rows } = await tx.query('SELECT * FROM committee_keys WHERE federation_id = $1 AND member_id = $2', [
        k.federationId,
        k.memberId,
      ]);
      if (rows.length === 0) {
        throw new StoreError('conflict', `committee point ${k.point} is already taken by another member`);
      }
      const cur = toCommitteeKey(rows[0]);
      const same =
        cur.point === k.point &&
        bytesEqual(cur.publicKey, k.publicKey) &&
        bytesEqual(cur.signature, k.signature) &&
        cur.certificatePem === k.certificatePem;
      if (!same) throw new StoreError('conflict', `a different committee key is already stored for member ${k.memberId}`);
      return { duplicate: true };
    });
  }

  async listCommitteeKeys(federationId: string): Promise<CommitteeKey[]> {
    const { rows } = await this.sql.query('SELECT * FROM committee_keys WHERE federation_id = $1 ORDER BY point', [federationId]);
    return rows.map(toCommitteeKey);
  }

  // ----- rounds -----

  /** Creates an open round; seq is the next number in the federation. */
  async createRound(r: RoundInput): Promise<Round> {
    if (!Number.isInteger(r.quorum) || r.quorum < 1) throw new StoreError('invalid', 'quorum must be an integer >= 1');
    if (!(r.deadlineAt instanceof Date) || Number.isNaN(r.deadlineAt.getTime())) {
      throw new StoreError('invalid', 'a round needs a valid deadline (rounds never wait forever)');
    }
    return this.sql.transaction(async (tx) => {
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
    });
  }

  async getRound(federationId: string, roundId: string): Promise<Round | null> {
    const { rows } = await this.sql.query('SELECT * FROM rounds WHERE federation_id = $1 AND round_id = $2', [federationId, roundId]);
    return rows.length ? toRound(rows[0]) : null;
  }

  async listRounds(federationId: string, filter: { state?: RoundState; kind?: RoundKind } = {}): Promise<Round[]> {
    const { rows } = await this.sql.query(
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
  async setRoundState(federationId: string, roundId: string, to: RoundState, opts: { failureReason?: string } = {}): Promise<Round> {
    return this.sql.transaction(async (tx) => {
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

  // ----- tasks -----

  /** Bulk create (all or nothing). Every task's round must exist and be open. */
  async createTasks(tasks: readonly TaskInput[]): Promise<Task[]> {
    if (tasks.length === 0) return Promise.resolve([]);
    return this.sql.transaction(async (tx) => {
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
    });
  }

  /**
   * The site's oldest task that is pending, or delivered but not done (redelivery after a lost
   * response), in an open round whose deadline has not passed. Marks it delivered.
   */
  async nextTaskForSite(federationId: string, siteId: string): Promise<Task | null> {
    const { rows } = await this.sql.query(
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

  async getTask(federationId: string, taskId: string): Promise<Task | null> {
    const { rows } = await this.sql.query('SELECT * FROM tasks WHERE federation_id = $1 AND task_id = $2', [federationId, taskId]);
    return rows.length ? toTask(rows[0]) : null;
  }

  async listTasks(federationId: string, roundId: string): Promise<Task[]> {
    const { rows } = await this.sql.query('SELECT * FROM tasks WHERE federation_id = $1 AND round_id = $2 ORDER BY created_at, task_id', [
      federationId,
      roundId,
    ]);
    return rows.map(toTask);
  }

  /** pending/delivered → done; idempotent on done; refused/expired tasks cannot be done. */
  async markTaskDone(federationId: string, taskId: string): Promise<Task> {
    return this.sql.transaction(async (tx) => {
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
  async markTaskRefused(federationId: string, taskId: string, reason: string): Promise<Task> {
    return this.sql.transaction(async (tx) => {
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
  async expireTasks(federationId: string, roundId: string): Promise<number> {
    return this.sql.transaction(async (tx) => {
      await lockRound(tx, federationId, roundId, 'SHARE');
      const r = await tx.query(
        `UPDATE tasks SET state = 'expired' WHERE federation_id = $1 AND round_id = $2
           AND state IN ('pending', 'delivered')`,
        [federationId, roundId],
      );
      return r.rowCount;
    });
  }

  // ----- submissions -----

  /**
   * Store a site's (ciphertext) result for a task and mark the task done, atomically.
   * Idempotent by task id: the same body again → `{ duplicate: true }`; a different body →
   * `conflicting resubmission`; a closed round, a refused/expired task or another site's task →
   * error. Nothing is written unless everything succeeds.
   *
   * The body is ciphertext (BFV encryptions of Shamir shares): the coordinator never stores a
   * single site's plaintext vector, and nothing here decrypts or inspects it.
   */
  async putSubmission(s: SubmissionInput): Promise<PutResult & { bodySha256: string }> {
    const digest = sha256Hex(s.body);
    return this.sql.transaction(async (tx) => {
      const found = await tx.query<{ round_id: string }>('SELECT round_id FROM tasks WHERE federation_id = $1 AND task_id = $2', [
        s.federationId,
        s.taskId,
      ]);
      if (found.rows.length === 0) throw new StoreError('not_found', `unknown task ${s.taskId}`);
      // Lock order everywhere: round, then task. FOR SHARE lets submissions run concurrently
      // while a close (FOR UPDATE) waits for them, so none can land after the close commits.
      const round = await lockRound(tx, s.federationId, found.rows[0].round_id, 'SHARE');
      const task = await lockTask(tx, s.federationId, s.taskId);
      if (task.siteId !== s.siteId) {
        throw new StoreError('forbidden', `task ${s.taskId} belongs to another site`);
      }
      const prev = await tx.query<{ body_sha256: string }>('SELECT body_sha256 FROM submissions WHERE task_id = $1', [s.taskId]);
      if (prev.rows.length) {
        if (prev.rows[0].body_sha256 === digest) return { duplicate: true, bodySha256: digest };
        throw new StoreError('conflict', `conflicting resubmission for task ${s.taskId}`);
      }
      if (round.state !== 'open') {
        throw new StoreError('invalid_state', `round ${round.roundId} is ${round.state}: submission rejected`);
      }
      if (task.state !== 'pending' && task.state !== 'delivered') {
        throw new StoreError('invalid_state', `task ${s.taskId} is ${task.state}: submission rejected`);
      }
      await tx.query(
        `INSERT INTO submissions (task_id, federation_id, round_id, site_id, kind, body_sha256, body_bytes, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [s.taskId, s.federationId, task.roundId, task.siteId, task.kind, digest, s.body.byteLength, s.body],
      );
      await tx.query(`UPDATE tasks SET state = 'done', done_at = now() WHERE task_id = $1`, [s.taskId]);
      return { duplicate: false, bodySha256: digest };
    });
  }

  async listSubmissions(federationId: string, roundId: string): Promise<Submission[]> {
    const { rows } = await this.sql.query(
      'SELECT * FROM submissions WHERE federation_id = $1 AND round_id = $2 ORDER BY received_at, task_id',
      [federationId, roundId],
    );
    return rows.map(toSubmission);
  }

  // ----- aggregates and partial decryptions -----

  /** Idempotent if identical; a different aggregate for the same (round, member) is a conflict. */
  async putAggregate(a: AggregateInput): Promise<PutResult> {
    return this.sql.transaction(async (tx) => {
      const ins = await tx.query(
        `INSERT INTO aggregates (federation_id, round_id, member_id, point, length, contributors, ciphertexts)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING RETURNING member_id`,
        [a.federationId, a.roundId, a.memberId, a.point, a.length, json(a.contributors), a.ciphertexts],
      );
      if (ins.rows.length) return { duplicate: false };
      const { rows } = await tx.query('SELECT * FROM aggregates WHERE federation_id = $1 AND round_id = $2 AND member_id = $3', [
        a.federationId,
        a.roundId,
        a.memberId,
      ]);
      const cur = toAggregate(rows[0]);
      const same =
        cur.point === a.point &&
        cur.length === a.length &&
        canonicalJson(cur.contributors) === canonicalJson(a.contributors) &&
        bytesEqual(cur.ciphertexts, a.ciphertexts);
      if (!same) throw new StoreError('conflict', `a different aggregate is stored for ${a.roundId}/${a.memberId}`);
      return { duplicate: true };
    });
  }

  async listAggregates(federationId: string, roundId: string): Promise<Aggregate[]> {
    const { rows } = await this.sql.query('SELECT * FROM aggregates WHERE federation_id = $1 AND round_id = $2 ORDER BY point', [
      federationId,
      roundId,
    ]);
    return rows.map(toAggregate);
  }

  /** Idempotent if identical; a different share for the same (round, member) is a conflict. */
  async putPartial(p: PartialInput): Promise<PutResult> {
    return this.sql.transaction(async (tx) => {
      const ins = await tx.query(
        `INSERT INTO partials (federation_id, round_id, member_id, point, share)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING member_id`,
        [p.federationId, p.roundId, p.memberId, p.point, p.share],
      );
      if (ins.rows.length) return { duplicate: false };
      const { rows } = await tx.query('SELECT * FROM partials WHERE federation_id = $1 AND round_id = $2 AND member_id = $3', [
        p.federationId,
        p.roundId,
        p.memberId,
      ]);
      const cur = toPartial(rows[0]);
      if (cur.point !== p.point || !bytesEqual(cur.share, p.share)) {
        throw new StoreError('conflict', `a different partial decryption is stored for ${p.roundId}/${p.memberId}`);
      }
      return { duplicate: true };
    });
  }

  async listPartials(federationId: string, roundId: string): Promise<Partial[]> {
    const { rows } = await this.sql.query('SELECT * FROM partials WHERE federation_id = $1 AND round_id = $2 ORDER BY point', [
      federationId,
      roundId,
    ]);
    return rows.map(toPartial);
  }

  // ----- charges, release, measurements -----

  /**
   * In ONE transaction: write every site's charge for the round, then the released
   * measurements, the caller's audit events (e.g. one `charge` per site and a
   * `measurement-released`), and finally the round state `released`. If anything fails,
   * nothing is written: a result can never be released without its spend recorded.
   * The round must be `closed` or `decrypting`.
   *
   * `opts.beforeRelease` runs inside the transaction just before the state change (fault
   * injection in tests; throwing from it rolls everything back).
   */
  async recordChargesAndRelease(
    federationId: string,
    roundId: string,
    charges: readonly ChargeInput[],
    measurements: readonly MeasurementInput[],
    opts: { auditEvents?: readonly AuditEvent[]; beforeRelease?: (tx: SqlClient) => Promise<void> } = {},
  ): Promise<{ round: Round; audit: AuditEntry[] }> {
    for (const c of charges) assertFiniteNonNegative(c.rho, `rho for site ${c.siteId}`);
    for (const m of measurements) assertFiniteNonNegative(m.sigmaTotal, 'sigmaTotal');
    const seen = new Set<string>();
    for (const c of charges) {
      if (seen.has(c.siteId)) throw new StoreError('invalid', `two charges for site ${c.siteId} in round ${roundId}`);
      seen.add(c.siteId);
    }
    const signer = opts.auditEvents?.length ? this.signer() : null;
    return this.sql.transaction(async (tx) => {
      const round = await lockRound(tx, federationId, roundId, 'UPDATE');
      if (round.state !== 'closed' && round.state !== 'decrypting') {
        throw new StoreError('invalid_state', `round ${roundId} is ${round.state}: cannot release`);
      }
      // 1. charges first
      for (const c of charges) {
        await tx.query(`INSERT INTO charges (federation_id, round_id, site_id, rho, mechanism) VALUES ($1, $2, $3, $4, $5::jsonb)`, [
          federationId,
          roundId,
          c.siteId,
          c.rho,
          json(c.mechanism),
        ]);
      }
      // 2. the released (noised) measurements
      let i = 0;
      for (const m of measurements) {
        i += 1;
        await tx.query(
          `INSERT INTO measurements (federation_id, round_id, seq, attrs, values_json, sigma_total)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)`,
          [federationId, roundId, m.seq ?? i, json(m.attrs), json(m.values), m.sigmaTotal],
        );
      }
      // 3. the audit record of what was spent and released
      const audit: AuditEntry[] = [];
      for (const ev of opts.auditEvents ?? []) audit.push(await appendAuditTx(tx, federationId, ev, signer!));
      if (opts.beforeRelease) await opts.beforeRelease(tx);
      // 4. only now the result becomes released
      assertTransition(round, 'released');
      const { rows } = await tx.query(
        `UPDATE rounds SET state = 'released', closed_at = COALESCE(closed_at, now())
         WHERE federation_id = $1 AND round_id = $2 RETURNING *`,
        [federationId, roundId],
      );
      return { round: toRound(rows[0]), audit };
    });
  }

  async listMeasurements(federationId: string, roundId?: string): Promise<Measurement[]> {
    const { rows } = await this.sql.query(
      `SELECT m.* FROM measurements m
       JOIN rounds r ON r.federation_id = m.federation_id AND r.round_id = m.round_id
       WHERE m.federation_id = $1 AND ($2::text IS NULL OR m.round_id = $2)
       ORDER BY r.seq, m.seq`,
      [federationId, roundId ?? null],
    );
    return rows.map(toMeasurement);
  }

  async chargesByRound(federationId: string, roundId?: string): Promise<Charge[]> {
    const { rows } = await this.sql.query(
      `SELECT c.* FROM charges c
       JOIN rounds r ON r.federation_id = c.federation_id AND r.round_id = c.round_id
       WHERE c.federation_id = $1 AND ($2::text IS NULL OR c.round_id = $2)
       ORDER BY r.seq, c.site_id`,
      [federationId, roundId ?? null],
    );
    return rows.map(toCharge);
  }

  /** Total ρ charged per site (zCDP composes additively). */
  async spendBySite(federationId: string): Promise<SiteSpend[]> {
    const { rows } = await this.sql.query(
      `SELECT site_id, SUM(rho)::float8 AS rho, COUNT(*)::int AS rounds FROM charges
       WHERE federation_id = $1 GROUP BY site_id ORDER BY site_id`,
      [federationId],
    );
    return rows.map((r) => ({ siteId: String(r.site_id), rho: num(r.rho), rounds: num(r.rounds) }));
  }

  // ----- models and cohorts -----

  async putModel(m: ModelInput): Promise<Model> {
    const { rows } = await this.sql.query(
      `INSERT INTO models (id, federation_id, rho_total, model_json) VALUES ($1, $2, $3, $4::jsonb) RETURNING *`,
      [m.id, m.federationId, m.rhoTotal, json(m.model)],
    );
    return toModel(rows[0]);
  }

  async getModel(id: string): Promise<Model | null> {
    const { rows } = await this.sql.query('SELECT * FROM models WHERE id = $1', [id]);
    return rows.length ? toModel(rows[0]) : null;
  }

  async listModels(federationId: string): Promise<Model[]> {
    const { rows } = await this.sql.query('SELECT * FROM models WHERE federation_id = $1 ORDER BY created_at, id', [federationId]);
    return rows.map(toModel);
  }

  async putCohort(c: CohortInput): Promise<Cohort> {
    const { rows } = await this.sql.query(
      `INSERT INTO cohorts (id, federation_id, model_id, n, seed, where_json, out_dir, report_json)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb) RETURNING *`,
      [c.id, c.federationId, c.modelId, c.n, c.seed, json(c.where), c.outDir, json(c.report)],
    );
    return toCohort(rows[0]);
  }

  async getCohort(id: string): Promise<Cohort | null> {
    const { rows } = await this.sql.query('SELECT * FROM cohorts WHERE id = $1', [id]);
    return rows.length ? toCohort(rows[0]) : null;
  }

  async listCohorts(federationId: string, modelId?: string): Promise<Cohort[]> {
    const { rows } = await this.sql.query(
      `SELECT * FROM cohorts WHERE federation_id = $1 AND ($2::text IS NULL OR model_id = $2)
       ORDER BY created_at, id`,
      [federationId, modelId ?? null],
    );
    return rows.map(toCohort);
  }

  // ----- audit log -----

  /** Signs and appends an event to the federation's chain (serialised: concurrent appends stay linear). */
  async appendAudit(federationId: string, event: AuditEvent): Promise<AuditEntry> {
    const signer = this.signer();
    return this.sql.transaction((tx) => appendAuditTx(tx, federationId, event, signer));
  }

  async listAudit(federationId: string): Promise<AuditEntry[]> {
    const { rows } = await this.sql.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq', [federationId]);
    return rows.map(toAudit);
  }

  /** The federation's log as JSON lines, exactly as signed (what `fedsynth audit export` writes). */
  async exportAudit(federationId: string): Promise<string> {
    const { rows } = await this.sql.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq', [federationId]);
    return rows.map((r) => `${String(r.entry_text)}\n`).join('');
  }

  /**
   * Verifies the stored chain with privacy/audit-log/chain.ts `verifyChain`: hashes, links, seq and
   * signatures, by default under this store's signer's public key (signatures are not checked
   * when neither keys nor a signer are given).
   */
  async verifyAuditChain(federationId: string, keys?: KeysByParty): Promise<AuditVerification> {
    const entries = parseChainLines(await this.exportAudit(federationId));
    const k: KeysByParty | null =
      keys ?? (this.auditSigner ? new Map([[this.auditSigner.party, createPublicKey(this.auditSigner.key)]]) : null);
    // Without any key (a store opened only to inspect), hashes, links and seq are still checked;
    // signatures are then left to `fedsynth audit verify`, which checks them against the CA.
    const findings = k ? verifyChain(entries, k) : verifyChain(entries, new Map()).filter((f) => f.kind !== 'unknown-party');
    if (findings.length === 0) {
      const last = entries[entries.length - 1] as AuditEntry | undefined;
      return { ok: true, length: entries.length, head: last?.hash ?? GENESIS };
    }
    const f = findings[0];
    return { ok: false, length: entries.length, badSeq: f.seq ?? f.index, reason: f.message, findings };
  }
}

const GENESIS = '0'.repeat(64);

// ---------------------------------------------------------------------------------------------
// Helpers that run inside a transaction

async function lockRound(tx: SqlClient, federationId: string, roundId: string, mode: 'UPDATE' | 'SHARE'): Promise<Round> {
  const { rows } = await tx.query(`SELECT * FROM rounds WHERE federation_id = $1 AND round_id = $2 FOR ${mode}`, [federationId, roundId]);
  if (rows.length === 0) throw new StoreError('not_found', `unknown round ${roundId} in federation ${federationId}`);
  return toRound(rows[0]);
}

async function lockTask(tx: SqlClient, federationId: string, taskId: string): Promise<Task> {
  const { rows } = await tx.query('SELECT * FROM tasks WHERE federation_id = $1 AND task_id = $2 FOR UPDATE', [federationId, taskId]);
  if (rows.length === 0) throw new StoreError('not_found', `unknown task ${taskId}`);
  return toTask(rows[0]);
}

function assertTransition(round: Round, to: RoundState): void {
  if (!ROUND_TRANSITIONS[round.state].includes(to)) {
    throw new StoreError('invalid_state', `invalid round transition ${round.state} → ${to} for round ${round.roundId}`);
  }
}

async function appendAuditTx(
  tx: SqlClient,
  federationId: string,
  event: AuditEvent,
  signer: { party: string; key: KeyObject },
): Promise<AuditEntry> {
  // Serialise appends per federation (and schema): concurrent appenders queue here.
  await tx.query(LOCK_SQL, [`fedsynth.audit:${federationId}`]);
  const head = await tx.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq DESC LIMIT 1', [federationId]);
  const tail = head.rows.length ? toAudit(head.rows[0]) : null;
  // Timestamps never go backwards within the chain, even if the wall clock does.
  let now = new Date();
  if (tail && Date.parse(tail.timestamp) > now.getTime()) now = new Date(tail.timestamp);
  // appendEntry validates the event's shape and throws before anything is written.
  const entry = appendEntry(tail, event, signer.party, signer.key, now);
  const text = JSON.stringify(entry);
  await tx.query(
    `INSERT INTO audit_log (federation_id, seq, prev_hash, hash, party, event_type, entry_text)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [federationId, entry.seq, entry.prevHash, entry.hash, entry.party, entry.event.type, text],
  );
  return entry;
}
