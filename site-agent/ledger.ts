/**
 * The site's own durable privacy ledger. The coordinator cannot override it: a site charges its
 * own budget, from its own computation of ρ, before any answer leaves the site.
 *
 * Layout of the ledger directory:
 *
 *   ledger.jsonl          one JSON line per charge, hash-chained (`prev`/`sum`), fsynced
 *   answers/<h>.bin       the exact answer bytes sent for a charged task (h = sha256(taskId))
 *   audit.jsonl           the site's signed audit log (site-agent/audit-log.ts), when a key is given
 *   LOCK                  pid of the process holding the ledger
 *
 * Order of a charge (`charge()`), and why every crash point is safe:
 *
 *   1. the answer body is written to answers/<h>.bin.tmp, fsynced, renamed, directory fsynced;
 *   2. the charge line (which names the answer file and its SHA-256) is appended and fsynced;
 *   3. the audit log gets `charge` and `task-answered` entries (each fsynced);
 *   4. only then does `charge()` return the bytes, and only then does the agent send them.
 *
 * A disk that refuses a write (full, read-only, quota, file-size limit) while the agent runs is
 * not a crash: `charge()` takes back whatever it had written (the temp file, the answer file, the
 * ledger line, the audit entries) and throws DiskWriteError, and the agent sends nothing. The rule
 * is: a charge that cannot be durably recorded in full is never spent. If even the taking back
 * fails, the charge stays recorded and unsent (counted against the budget: the safe direction).
 *
 *   - Crash before 2 completes: the ledger ends in no line or a torn line (no trailing newline).
 *     The answer was never sent (sending happens after 2's fsync returned), so nothing was
 *     released and no budget was spent: dropping the torn line is safe. `openLedger` truncates it,
 *     reports it in `recovery.tornTail`, and deletes the orphan answer file. A retry of the task
 *     computes a fresh answer (fresh noise) — also safe, since the first one never left the site.
 *   - Crash after 2, before 3: the charge is durable; on open, the audit log is caught up with
 *     `charge` entries marked `recovered: true` (`recovery.auditEntriesRecovered`).
 *   - Crash after 2 or 3, before or during the send: the task is charged and its answer cached;
 *     the coordinator's retry gets the SAME bytes back (`charge()` / `cachedAnswer()`), so a retry
 *     releases nothing new and is never charged twice.
 *
 * Only the bytes after the last newline are treated as torn. A complete line that does not parse
 * or whose checksum/chain does not verify is corruption (disk fault or tampering), which could be
 * hiding spent budget: the ledger refuses to open with LedgerCorruptError, naming the line.
 *
 * The ledger does not decide policy; `options.guard` (see site-agent/policy.ts `budgetGuard`) is
 * consulted inside `charge()` right before the line is written, so two tasks computed
 * concurrently can never both slip under a cap. The whole of `charge()` is synchronous, which
 * makes it atomic with respect to the rest of the (single-threaded) agent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { canonicalJson, GENESIS_HASH, sha256Hex } from '../privacy/audit-log/chain.ts';
import { composeRho } from '../privacy/dp/accountant.ts';
import {
  appendDurable,
  ensureDirDurable,
  openAppendDurable,
  readJsonLinesFile,
  truncateDurable,
  writeFileDurable,
  asDiskError,
  diskErrno,
  AuditLog,
  type TornTail,
} from './audit-log.ts';
import { acquireLock, LedgerLockedError, LOCK_FILE, releaseLock } from './state-lock.ts';

export { LedgerLockedError, LOCK_FILE };

export const LEDGER_FILE = 'ledger.jsonl';
export const ANSWERS_DIR = 'answers';
export const AUDIT_FILE = 'audit.jsonl';

export class LedgerCorruptError extends Error {
  override name = 'LedgerCorruptError';
}
/** A charge refused by the budget guard; `reason` is the precise, human-readable reason. */
export class LedgerRefusedError extends Error {
  override name = 'LedgerRefusedError';
  constructor(readonly reason: string) {
    super(reason);
  }
}
/** The same task id was charged before with different parameters: nothing may be sent. */
export class LedgerConflictError extends Error {
  override name = 'LedgerConflictError';
}

export interface ChargeInput {
  taskId: string;
  roundId: string;
  federationId: string;
  /** zCDP ρ this answer costs, as computed by the site itself. */
  rho: number;
  /** e.g. 'distributed-discrete-gaussian'. */
  mechanism: string;
  /** The exact bytes that will be sent. */
  answer: Uint8Array;
  /** The fit within the federation, when not the federation itself (audit log only). */
  fitId?: string;
  /** The coordinator chain head the task carried, countersigned in the site's audit log. */
  coordinatorHead?: { seq: number; hash: string };
  /** Canary rows the answer's counts include (a canary audit; audit log only). */
  canaryRows?: number;
}

export interface ChargeRecord {
  v: 1;
  seq: number;
  type: 'charge';
  taskId: string;
  roundId: string;
  federationId: string;
  rho: number;
  mechanism: string;
  /** ISO-8601 UTC time of the charge (its calendar month is the month it counts against). */
  at: string;
  answer: { file: string; sha256: string; bytes: number };
  /** `sum` of the previous line (GENESIS_HASH for the first). */
  prev: string;
  /** SHA-256 of the canonical JSON of this record without `sum`. */
  sum: string;
}

/** Spend so far, in ρ. Month keys are UTC calendar months, 'YYYY-MM'. */
export interface LedgerState {
  totalRho: number;
  byFederation: Readonly<Record<string, number>>;
  byMonth: Readonly<Record<string, number>>;
  charges: number;
}

export interface PendingCharge {
  taskId: string;
  federationId: string;
  rho: number;
  now: Date;
}

export type GuardResult = { ok: true } | { ok: false; reason: string };
/** Decides, from the spend so far, whether a new charge may be made. */
export type BudgetGuard = (state: LedgerState, charge: PendingCharge) => GuardResult;

export interface OpenLedgerOptions {
  /** The site's audit log identity; when given, every charge and refusal is appended to audit.jsonl. */
  audit?: { party: string; privateKeyPem: string; previousKeys?: readonly string[] };
  /** Consulted inside charge(); a refusal throws LedgerRefusedError and writes nothing but the audit refusal. */
  guard?: BudgetGuard;
  /** Clock, for tests. */
  now?: () => Date;
}

export interface LedgerRecovery {
  /** A partial final line that was dropped on open (a crash mid-append; never sent). */
  tornTail: TornTail | null;
  /** Torn final line of the audit log, dropped on open. */
  auditTornTail: TornTail | null;
  /** Answer files with no charge line (written before a crash; never sent), deleted on open. */
  orphanAnswersRemoved: string[];
  /** Charges that were missing from the audit log and were appended on open. */
  auditEntriesRecovered: number;
  /** Charges whose cached answer file is missing or the wrong size (cachedAnswer throws for them). */
  damagedAnswers: string[];
}

export type ChargeResult =
  | { charged: true; record: ChargeRecord; answer: Buffer }
  /** The task was charged before: nothing new was charged and `answer` is the cached bytes. */
  | { charged: false; record: ChargeRecord; answer: Buffer };

export interface Ledger {
  readonly dir: string;
  readonly recovery: LedgerRecovery;
  /** The audit log, when opened with `audit`. */
  readonly auditLog: AuditLog | null;
  totalRho(): number;
  state(): LedgerState;
  charged(taskId: string): boolean;
  record(taskId: string): ChargeRecord | undefined;
  records(): readonly ChargeRecord[];
  charge(input: ChargeInput): ChargeResult;
  /** The exact bytes sent for a charged task (hash-checked), or undefined if it was never charged. */
  cachedAnswer(taskId: string): Buffer | undefined;
  /** Records a refusal in the audit log (no budget effect). */
  refuse(r: { taskId: string; roundId: string; federationId: string; reason: string; fitId?: string }): void;
  close(): void;
}

/** Cuts an open file back to `bytes` and fsyncs it. */
function truncateFd(fd: number, bytes: number): void {
  fs.ftruncateSync(fd, bytes);
  fs.fsyncSync(fd);
}

export function monthKey(d: Date): string {
  return d.toISOString().slice(0, 7);
}

function answerFileName(taskId: string): string {
  return `${ANSWERS_DIR}/${createHash('sha256').update(taskId, 'utf8').digest('hex')}.bin`;
}

function recordSum(r: Omit<ChargeRecord, 'sum'>): string {
  return sha256Hex(canonicalJson(r));
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Why a parsed line is not a valid ChargeRecord at position `seq` after `prev`, or null. */
function recordProblem(r: unknown, seq: number, prev: string): string | null {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not a JSON object';
  const o = r as Record<string, unknown>;
  if (o.v !== 1) return `unsupported record version ${JSON.stringify(o.v)}`;
  if (o.type !== 'charge') return `unknown record type ${JSON.stringify(o.type)}`;
  for (const f of ['taskId', 'roundId', 'federationId', 'mechanism', 'at', 'sum', 'prev'] as const) {
    if (!isStr(o[f])) return `${f} missing or not a string`;
  }
  if (typeof o.rho !== 'number' || !Number.isFinite(o.rho) || o.rho < 0) return `rho ${JSON.stringify(o.rho)} is not a finite number ≥ 0`;
  if (Number.isNaN(Date.parse(o.at as string))) return `at ${JSON.stringify(o.at)} is not a date`;
  const a = o.answer as Record<string, unknown> | undefined;
  if (typeof a !== 'object' || a === null || !isStr(a.file) || !isStr(a.sha256) || typeof a.bytes !== 'number')
    return 'answer reference missing or malformed';
  if (a.file !== answerFileName(o.taskId as string))
    return `answer file ${JSON.stringify(a.file)} does not belong to task ${JSON.stringify(o.taskId)}`;
  if (o.seq !== seq) return `seq ${JSON.stringify(o.seq)} where ${seq} was expected (a line is missing or out of order)`;
  if (o.prev !== prev) return 'prev does not match the previous line (a line was removed, inserted or altered)';
  const { sum, ...rest } = o;
  let expected: string;
  try {
    expected = recordSum(rest as Omit<ChargeRecord, 'sum'>);
  } catch (e) {
    return (e as Error).message;
  }
  if (expected !== sum) return 'checksum mismatch (the line was altered)';
  return null;
}

// ---------------------------------------------------------------- open

/** Opens (creating if needed) the ledger in `dir`. Throws LedgerCorruptError on corruption before the last line. */
export function openLedger(dir: string, options: OpenLedgerOptions = {}): Ledger {
  const root = path.resolve(dir);
  ensureDirDurable(root);
  let lock: string;
  try {
    lock = acquireLock(root);
  } catch (e) {
    throw asDiskError(e, path.join(root, LOCK_FILE));
  }
  try {
    return new FileLedger(root, lock, options);
  } catch (e) {
    try {
      releaseLock(lock);
    } catch {
      // A read-only folder keeps its LOCK; the pid in it is this (exiting) process, so it is taken over.
    }
    throw asDiskError(e, root);
  }
}

class FileLedger implements Ledger {
  readonly recovery: LedgerRecovery;
  readonly auditLog: AuditLog | null;
  private fd: number | null;
  private readonly list: ChargeRecord[] = [];
  private readonly byTask = new Map<string, ChargeRecord>();
  private readonly damaged = new Set<string>();
  private readonly now: () => Date;

  constructor(
    readonly dir: string,
    private readonly lockFile: string,
    private readonly options: OpenLedgerOptions,
  ) {
    this.now = options.now ?? (() => new Date());
    const file = path.join(dir, LEDGER_FILE);
    const read = readJsonLinesFile(file);
    let prev = GENESIS_HASH;
    read.lines.forEach((line, i) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new LedgerCorruptError(
          `ledger ${file} line ${i + 1} of ${read.lines.length} is not valid JSON; refusing to start (only a partial last line without a newline is tolerated): ${line.slice(0, 80)}`,
        );
      }
      const problem = recordProblem(parsed, i, prev);
      if (problem)
        throw new LedgerCorruptError(`ledger ${file} line ${i + 1} of ${read.lines.length} is corrupt: ${problem}; refusing to start`);
      const rec = parsed as ChargeRecord;
      if (this.byTask.has(rec.taskId))
        throw new LedgerCorruptError(
          `ledger ${file} line ${i + 1} charges task ${JSON.stringify(rec.taskId)} a second time; refusing to start`,
        );
      this.list.push(rec);
      this.byTask.set(rec.taskId, rec);
      prev = rec.sum;
    });
    if (read.tornTail) truncateDurable(file, read.completeBytes);

    // Answer files: the referenced ones must be there; unreferenced ones were never sent.
    const answersDir = path.join(dir, ANSWERS_DIR);
    ensureDirDurable(answersDir);
    const referenced = new Set(this.list.map((r) => path.basename(r.answer.file)));
    const orphanAnswersRemoved: string[] = [];
    for (const name of fs.readdirSync(answersDir)) {
      if (!referenced.has(name)) {
        fs.rmSync(path.join(answersDir, name), { force: true });
        orphanAnswersRemoved.push(name);
      }
    }
    for (const r of this.list) {
      const p = path.join(dir, r.answer.file);
      if (!fs.existsSync(p) || fs.statSync(p).size !== r.answer.bytes) this.damaged.add(r.taskId);
    }

    // The audit log, caught up with any charge a crash kept out of it.
    let auditEntriesRecovered = 0;
    this.auditLog = null;
    if (options.audit) {
      this.auditLog = AuditLog.open(path.join(dir, AUDIT_FILE), { ...options.audit, now: this.now });
      const logged = new Set(
        this.auditLog
          .entries()
          .filter((e) => e.event.type === 'charge')
          .map((e) => (e.event as { taskId: string }).taskId),
      );
      for (const r of this.list) {
        if (logged.has(r.taskId)) continue;
        this.auditLog.append({
          type: 'charge',
          federationId: r.federationId,
          roundId: r.roundId,
          taskId: r.taskId,
          site: options.audit.party,
          rho: r.rho,
          mechanism: r.mechanism,
          recovered: true,
        });
        auditEntriesRecovered++;
      }
    }
    this.fd = openAppendDurable(file);
    this.recovery = {
      tornTail: read.tornTail,
      auditTornTail: this.auditLog?.tornTail ?? null,
      orphanAnswersRemoved,
      auditEntriesRecovered,
      damagedAnswers: [...this.damaged],
    };
  }

  totalRho(): number {
    return composeRho(this.list.map((r) => r.rho));
  }

  state(): LedgerState {
    const fed = new Map<string, number[]>();
    const month = new Map<string, number[]>();
    for (const r of this.list) {
      (fed.get(r.federationId) ?? fed.set(r.federationId, []).get(r.federationId)!).push(r.rho);
      const m = monthKey(new Date(r.at));
      (month.get(m) ?? month.set(m, []).get(m)!).push(r.rho);
    }
    const sumAll = (m: Map<string, number[]>) => Object.fromEntries([...m].map(([k, v]) => [k, composeRho(v)]));
    return { totalRho: this.totalRho(), byFederation: sumAll(fed), byMonth: sumAll(month), charges: this.list.length };
  }

  charged(taskId: string): boolean {
    return this.byTask.has(taskId);
  }

  record(taskId: string): ChargeRecord | undefined {
    return this.byTask.get(taskId);
  }

  records(): readonly ChargeRecord[] {
    return this.list;
  }

  cachedAnswer(taskId: string): Buffer | undefined {
    const r = this.byTask.get(taskId);
    if (!r) return undefined;
    const p = path.join(this.dir, r.answer.file);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(p);
    } catch {
      throw new LedgerCorruptError(
        `cached answer for charged task ${JSON.stringify(taskId)} is missing (${p}); the task must not be answered again`,
      );
    }
    if (sha256Hex(bytes) !== r.answer.sha256) {
      throw new LedgerCorruptError(
        `cached answer for charged task ${JSON.stringify(taskId)} does not match its recorded SHA-256 (${p}); the task must not be answered again`,
      );
    }
    return bytes;
  }

  charge(input: ChargeInput): ChargeResult {
    if (this.fd === null) throw new Error(`ledger ${this.dir} is closed`);
    for (const f of ['taskId', 'roundId', 'federationId', 'mechanism'] as const) {
      if (!isStr(input[f])) throw new TypeError(`charge: ${f} must be a non-empty string`);
    }
    if (typeof input.rho !== 'number' || !Number.isFinite(input.rho) || input.rho < 0)
      throw new TypeError(`charge: rho must be a finite number ≥ 0, got ${input.rho}`);
    if (!(input.answer instanceof Uint8Array)) throw new TypeError('charge: answer must be bytes');

    const existing = this.byTask.get(input.taskId);
    if (existing) {
      const diffs: string[] = [];
      if (existing.federationId !== input.federationId) diffs.push(`federation ${existing.federationId} → ${input.federationId}`);
      if (existing.roundId !== input.roundId) diffs.push(`round ${existing.roundId} → ${input.roundId}`);
      if (existing.rho !== input.rho) diffs.push(`rho ${existing.rho} → ${input.rho}`);
      if (existing.mechanism !== input.mechanism) diffs.push(`mechanism ${existing.mechanism} → ${input.mechanism}`);
      if (diffs.length) {
        throw new LedgerConflictError(
          `task ${JSON.stringify(input.taskId)} was already charged with different parameters (${diffs.join(', ')}); refusing to answer it again`,
        );
      }
      return { charged: false, record: existing, answer: this.cachedAnswer(input.taskId)! };
    }

    const now = this.now();
    if (this.options.guard) {
      const verdict = this.options.guard(this.state(), { taskId: input.taskId, federationId: input.federationId, rho: input.rho, now });
      if (!verdict.ok) {
        try {
          this.refuse({ taskId: input.taskId, roundId: input.roundId, federationId: input.federationId, reason: verdict.reason });
        } catch (err) {
          // The budget reason is the answer; a disk that cannot log it must not replace it.
          if (!diskErrno(err)) throw err;
        }
        throw new LedgerRefusedError(verdict.reason);
      }
    }

    // All or nothing: a charge counts once its answer file, its ledger line and its audit
    // entries are all durable. If the disk refuses any of them, what was written is taken back
    // and DiskWriteError is thrown, so nothing is sent: a charge that cannot be recorded is
    // never spent. (A crash in the middle is the recovery case of the header comment.)
    const answer = Buffer.from(input.answer);
    const file = answerFileName(input.taskId);
    const answerPath = path.join(this.dir, file);
    const ledgerFile = path.join(this.dir, LEDGER_FILE);
    // 1. the answer body, durable before any line refers to it.
    writeFileDurable(answerPath, answer);

    // 2. the charge line.
    const last = this.list[this.list.length - 1];
    const body: Omit<ChargeRecord, 'sum'> = {
      v: 1,
      seq: this.list.length,
      type: 'charge',
      taskId: input.taskId,
      roundId: input.roundId,
      federationId: input.federationId,
      rho: input.rho,
      mechanism: input.mechanism,
      at: now.toISOString(),
      answer: { file, sha256: sha256Hex(answer), bytes: answer.length },
      prev: last ? last.sum : GENESIS_HASH,
    };
    const record: ChargeRecord = { ...body, sum: recordSum(body) };
    const ledgerBytes = fs.fstatSync(this.fd).size;
    try {
      appendDurable(this.fd, `${JSON.stringify(record)}\n`, ledgerFile);
    } catch (err) {
      // appendDurable already cut the ledger back; the answer file now belongs to no charge.
      fs.rmSync(answerPath, { force: true });
      throw err;
    }

    // 3. the audit log.
    this.auditCharge(record, ledgerBytes, answerPath, input);
    this.list.push(record);
    this.byTask.set(record.taskId, record);
    return { charged: true, record, answer };
  }

  /** Appends a new charge's audit entries; on a disk failure takes the whole charge back and rethrows. */
  private auditCharge(
    record: ChargeRecord,
    ledgerBytes: number,
    answerPath: string,
    input: Pick<ChargeInput, 'coordinatorHead' | 'fitId' | 'canaryRows'>,
  ): void {
    if (!this.auditLog || !this.options.audit) return;
    const site = this.options.audit.party;
    const mark = this.auditLog.mark();
    try {
      this.auditLog.append({
        type: 'charge',
        federationId: record.federationId,
        roundId: record.roundId,
        taskId: record.taskId,
        site,
        rho: record.rho,
        mechanism: record.mechanism,
        ...(input.coordinatorHead ? { coordinatorHead: input.coordinatorHead } : {}),
        ...(input.fitId ? { fitId: input.fitId } : {}),
      });
      this.auditLog.append({
        type: 'task-answered',
        federationId: record.federationId,
        roundId: record.roundId,
        taskId: record.taskId,
        site,
        answerSha256: record.answer.sha256,
        ...(input.fitId ? { fitId: input.fitId } : {}),
        ...(input.canaryRows ? { canaryRows: input.canaryRows } : {}),
      });
    } catch (err) {
      if (!diskErrno(err)) throw err;
      this.undoCharge(record, ledgerBytes, answerPath, mark);
      throw err;
    }
  }

  /**
   * Takes back a charge line whose audit entries could not be written. If the ledger cannot be
   * cut back either, the charge stays on record (counted, never sent: the safe direction) and the
   * next open catches the audit log up with it.
   */
  private undoCharge(record: ChargeRecord, ledgerBytes: number, answerPath: string, mark: { bytes: number; entries: number }): void {
    try {
      this.auditLog?.rollback(mark);
      truncateFd(this.fd!, ledgerBytes);
      fs.rmSync(answerPath, { force: true });
    } catch {
      this.list.push(record);
      this.byTask.set(record.taskId, record);
    }
  }

  refuse(r: { taskId: string; roundId: string; federationId: string; reason: string; fitId?: string }): void {
    if (this.auditLog && this.options.audit) {
      this.auditLog.append({
        type: 'task-refused',
        federationId: r.federationId,
        roundId: r.roundId,
        taskId: r.taskId,
        site: this.options.audit.party,
        reason: r.reason,
        ...(r.fitId ? { fitId: r.fitId } : {}),
      });
    }
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    this.auditLog?.close();
    releaseLock(this.lockFile);
  }
}
