/**
 * The coordinator's data access: `openStore()` and the typed repository `Store`, identical on
 * embedded PGlite and on a PostgreSQL server, over the SQL of migrations.ts. `Store` is the one
 * public surface; each group of tables has its own module (federations.ts, rounds.ts,
 * submissions.ts, charges.ts, artifacts.ts, audit.ts) and rows are mapped in rows.ts.
 *
 * Rules kept in the store, not in callers:
 * - Every multi-row or read-check-write operation runs in one transaction, with row locks
 *   (`FOR UPDATE` / `FOR SHARE`) or advisory locks where concurrent callers could race.
 * - Retries are idempotent by key (site registration, committee keys, submissions by task id,
 *   aggregates, partials; idempotent.ts); a *different* value under the same key is an error
 *   and changes nothing.
 * - A round's privacy spend is written in the same transaction as its release
 *   (`recordChargesAndRelease`): a crash can never leave a released result without its charges.
 * - Submission bodies are ciphertexts only; the coordinator never stores a single site's
 *   plaintext vector.
 * - The audit log is append-only, hash-chained and signed with the coordinator's certificate key
 *   (`setAuditSigner`); appends are serialised per federation, and `exportAudit` gives the
 *   exact chain an auditor verifies.
 */
import path from 'node:path';
import { loadSigningKey, type AuditEntry, type AuditEvent, type KeysByParty } from '../../privacy/audit-log/chain.ts';
import * as artifacts from './artifacts.ts';
import * as audit from './audit.ts';
import * as charges from './charges.ts';
import * as federations from './federations.ts';
import { migrate } from './migrations.ts';
import * as revocation from './revocation.ts';
import * as rounds from './rounds.ts';
import { openPglite, openPostgres, type SqlClient } from './sql.ts';
import * as submissions from './submissions.ts';
import {
  StoreError,
  type Aggregate,
  type AggregateInput,
  type AuditSigner,
  type AuditVerification,
  type Charge,
  type ChargeInput,
  type Cohort,
  type CohortInput,
  type CommitteeKey,
  type CommitteeKeyInput,
  type Federation,
  type Measurement,
  type MeasurementInput,
  type Model,
  type ModelInput,
  type Partial,
  type PartialInput,
  type PutResult,
  type Round,
  type RoundInput,
  type RoundKind,
  type RoundState,
  type Site,
  type SiteSpend,
  type Submission,
  type SubmissionInput,
  type Task,
  type TaskInput,
  type TaskStatus,
} from './types.ts';

export * from './types.ts';

export type StoreOptions =
  | {
      /** PGlite data directory (default `./fedsynth-data/coordinator-db`), or `memory://`. */
      pglite?: string;
      /** `dumpDataDir()` tarball to initialise an empty data directory (skips initdb). */
      initFrom?: Blob | Uint8Array;
      /** Who opens it (named to another process that finds the directory locked). */
      holder?: string;
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
      : await openPglite({ dir: opts.pglite ?? DEFAULT_PGLITE_DIR, initFrom: opts.initFrom, holder: opts.holder });
  try {
    await migrate(sql);
  } catch (err) {
    await sql.close();
    throw err;
  }
  return new Store(sql);
}

export class Store {
  private auditSigner: audit.AuditKey | null = null;

  constructor(readonly sql: SqlClient) {}

  /** Sets the key that signs every audit entry this store appends (the coordinator's certificate key). */
  setAuditSigner(signer: AuditSigner): void {
    this.auditSigner = { party: signer.party, key: loadSigningKey(signer.privateKeyPem) };
  }

  private signer(): audit.AuditKey {
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

  // ----- federations, sites, committee keys (federations.ts) -----

  /** Creates the federation or updates its config; its schema hash can never change. */
  async upsertFederation(f: { id: string; schemaHash: string; schema: unknown; config?: unknown }): Promise<Federation> {
    return federations.upsertFederation(this.sql, f);
  }
  async getFederation(id: string): Promise<Federation | null> {
    return federations.getFederation(this.sql, id);
  }
  /** Idempotent: re-registering updates last_seen_at / agent_version. */
  async registerSite(federationId: string, siteId: string, agentVersion?: string | null): Promise<{ site: Site; created: boolean }> {
    return federations.registerSite(this.sql, federationId, siteId, agentVersion);
  }
  async touchSite(federationId: string, siteId: string, agentVersion?: string): Promise<void> {
    return federations.touchSite(this.sql, federationId, siteId, agentVersion);
  }
  async listSites(federationId: string): Promise<Site[]> {
    return federations.listSites(this.sql, federationId);
  }
  /** Idempotent if identical; a different key (or point) for the same member is a conflict. */
  async putCommitteeKey(k: CommitteeKeyInput): Promise<PutResult> {
    return federations.putCommitteeKey(this.sql, k);
  }
  async listCommitteeKeys(federationId: string): Promise<CommitteeKey[]> {
    return federations.listCommitteeKeys(this.sql, federationId);
  }

  // ----- the revocation list held (revocation.ts) -----

  async heldRevocationList(federationId: string): Promise<revocation.HeldRevocationList | null> {
    return revocation.heldRevocationList(this.sql, federationId);
  }
  async keepRevocationList(federationId: string, list: revocation.HeldRevocationList): Promise<void> {
    return revocation.keepRevocationList(this.sql, federationId, list);
  }

  // ----- rounds and tasks (rounds.ts) -----

  /** Creates an open round; seq is the next number in the federation. */
  async createRound(r: RoundInput): Promise<Round> {
    return rounds.createRound(this.sql, r);
  }
  async getRound(federationId: string, roundId: string): Promise<Round | null> {
    return rounds.getRound(this.sql, federationId, roundId);
  }
  async listRounds(federationId: string, filter: { state?: RoundState; kind?: RoundKind } = {}): Promise<Round[]> {
    return rounds.listRounds(this.sql, federationId, filter);
  }
  /** Moves a round along ROUND_TRANSITIONS; a measure round is released only by recordChargesAndRelease. */
  async setRoundState(federationId: string, roundId: string, to: RoundState, opts: { failureReason?: string } = {}): Promise<Round> {
    return rounds.setRoundState(this.sql, federationId, roundId, to, opts);
  }
  /**
   * A round with all its tasks and their audit entries in one transaction (`opts.before` writes
   * what the tasks read, e.g. a decrypt round's aggregates, in that same transaction).
   */
  async openRound(
    r: RoundInput,
    tasks: readonly TaskInput[],
    opts: rounds.OpenRoundOptions = {},
  ): Promise<{ round: Round; tasks: Task[] }> {
    return rounds.openRound(this.sql, r, tasks, opts, () => this.signer());
  }
  /** Moves an open round's deadline later (a resumed round whose tasks are created only now). */
  async extendRoundDeadline(federationId: string, roundId: string, deadlineAt: Date): Promise<Round> {
    return rounds.extendRoundDeadline(this.sql, federationId, roundId, deadlineAt);
  }
  /** Bulk create (all or nothing). Every task's round must exist and be open. */
  async createTasks(tasks: readonly TaskInput[]): Promise<Task[]> {
    return rounds.createTasks(this.sql, tasks);
  }
  /** The site's oldest undone task in an open, unexpired round; marks it delivered. */
  async nextTaskForSite(federationId: string, siteId: string): Promise<Task | null> {
    return rounds.nextTaskForSite(this.sql, federationId, siteId);
  }
  async getTask(federationId: string, taskId: string): Promise<Task | null> {
    return rounds.getTask(this.sql, federationId, taskId);
  }
  async listTasks(federationId: string, roundId: string): Promise<Task[]> {
    return rounds.listTasks(this.sql, federationId, roundId);
  }
  /** A round's task states without specs or payloads (cheap enough to poll). */
  async taskStates(federationId: string, roundId: string): Promise<TaskStatus[]> {
    return rounds.taskStates(this.sql, federationId, roundId);
  }
  /** pending/delivered → done; idempotent on done; refused/expired tasks cannot be done. */
  async markTaskDone(federationId: string, taskId: string): Promise<Task> {
    return rounds.markTaskDone(this.sql, federationId, taskId);
  }
  /** A site refused the task (e.g. over its own budget cap). Idempotent on refused. */
  async markTaskRefused(federationId: string, taskId: string, reason: string): Promise<Task> {
    return rounds.markTaskRefused(this.sql, federationId, taskId, reason);
  }
  /** Expires every pending/delivered task of the round; returns how many. */
  async expireTasks(federationId: string, roundId: string): Promise<number> {
    return rounds.expireTasks(this.sql, federationId, roundId);
  }

  // ----- uploads: submissions, aggregates, partial decryptions (submissions.ts) -----

  /** Stores a site's ciphertext result and marks its task done, atomically; idempotent by task id. */
  async putSubmission(s: SubmissionInput): Promise<PutResult & { bodySha256: string }> {
    return submissions.putSubmission(this.sql, s);
  }
  async listSubmissions(federationId: string, roundId: string): Promise<Submission[]> {
    return submissions.listSubmissions(this.sql, federationId, roundId);
  }
  /** Idempotent if identical; a different aggregate for the same (round, member) is a conflict. */
  async putAggregate(a: AggregateInput): Promise<PutResult> {
    return submissions.putAggregate(this.sql, a);
  }
  /** Aggregates of a round written inside the caller's transaction (Store.openRound's `before`). */
  putAggregateTx(tx: SqlClient, a: AggregateInput): Promise<PutResult> {
    return submissions.putAggregateTx(tx, a);
  }
  /** Measure rounds not released whose contributors already charged their ledgers, with those sites. */
  async unreleasedContributions(
    federationId: string,
  ): Promise<{ roundId: string; state: string; failureReason: string | null; sites: string[] }[]> {
    return submissions.unreleasedContributions(this.sql, federationId);
  }
  async listAggregates(federationId: string, roundId: string): Promise<Aggregate[]> {
    return submissions.listAggregates(this.sql, federationId, roundId);
  }
  /** Idempotent if identical; a different share for the same (round, member) is a conflict. */
  async putPartial(p: PartialInput): Promise<PutResult> {
    return submissions.putPartial(this.sql, p);
  }
  async listPartials(federationId: string, roundId: string): Promise<Partial[]> {
    return submissions.listPartials(this.sql, federationId, roundId);
  }

  // ----- charges, release, measurements (charges.ts) -----

  /**
   * In ONE transaction: every site's charge, the released measurements, the audit events, then
   * the round state `released`; if anything fails nothing is written. The round must be
   * `closed` or `decrypting`. `opts.beforeRelease` runs just before the state change (fault
   * injection in tests; throwing from it rolls everything back).
   */
  async recordChargesAndRelease(
    federationId: string,
    roundId: string,
    chargeList: readonly ChargeInput[],
    measurements: readonly MeasurementInput[],
    opts: { auditEvents?: readonly AuditEvent[]; beforeRelease?: (tx: SqlClient) => Promise<void> } = {},
  ): Promise<{ round: Round; audit: AuditEntry[] }> {
    return charges.recordChargesAndRelease(this.sql, federationId, roundId, chargeList, measurements, opts, () => this.signer());
  }
  async listMeasurements(federationId: string, roundId?: string): Promise<Measurement[]> {
    return charges.listMeasurements(this.sql, federationId, roundId);
  }
  async chargesByRound(federationId: string, roundId?: string): Promise<Charge[]> {
    return charges.chargesByRound(this.sql, federationId, roundId);
  }
  /** Total ρ charged per site (zCDP composes additively). */
  async spendBySite(federationId: string): Promise<SiteSpend[]> {
    return charges.spendBySite(this.sql, federationId);
  }

  // ----- models and cohorts (artifacts.ts) -----

  async putModel(m: ModelInput): Promise<Model> {
    return artifacts.putModel(this.sql, m);
  }
  async getModel(id: string): Promise<Model | null> {
    return artifacts.getModel(this.sql, id);
  }
  async listModels(federationId: string): Promise<Model[]> {
    return artifacts.listModels(this.sql, federationId);
  }
  async putCohort(c: CohortInput): Promise<Cohort> {
    return artifacts.putCohort(this.sql, c);
  }
  async getCohort(id: string): Promise<Cohort | null> {
    return artifacts.getCohort(this.sql, id);
  }
  async listCohorts(federationId: string, modelId?: string): Promise<Cohort[]> {
    return artifacts.listCohorts(this.sql, federationId, modelId);
  }

  // ----- audit log (audit.ts) -----

  /** Signs and appends an event to the federation's chain (serialised: concurrent appends stay linear). */
  async appendAudit(federationId: string, event: AuditEvent): Promise<AuditEntry> {
    return audit.appendAudit(this.sql, federationId, event, this.signer());
  }
  /** The chain's latest seq and hash, which each measure task carries for its sites to countersign. */
  async auditHead(federationId: string): Promise<{ seq: number; hash: string } | null> {
    return audit.auditHead(this.sql, federationId);
  }
  async listAudit(federationId: string): Promise<AuditEntry[]> {
    return audit.listAudit(this.sql, federationId);
  }
  /** The federation's log as JSON lines, exactly as signed (what `fedsynth audit export` writes). */
  async exportAudit(federationId: string): Promise<string> {
    return audit.exportAudit(this.sql, federationId);
  }
  /**
   * Verifies hashes, links, seq and signatures of the stored chain, by default under this store's
   * signer's public key (signatures are not checked when neither keys nor a signer are given).
   */
  async verifyAuditChain(federationId: string, keys?: KeysByParty): Promise<AuditVerification> {
    return audit.verifyAuditChain(this.sql, federationId, keys, this.auditSigner);
  }
}
