/**
 * The site agent's own audit log: a JSON-lines file of privacy/audit-log/chain.ts entries, each
 * signed with the site's certificate key and fsynced before `append` returns.
 *
 * Also home of the small durable-file helpers the site ledger shares (append + fsync, directory
 * fsync, torn-tail handling).
 *
 * Crash model: a line is appended with one write and then fsynced; nothing that depends on it
 * (sending an answer) happens before the fsync returns. After a crash the file may end in a
 * partial line with no terminating newline; that line was never acknowledged, so it is dropped
 * (truncated away, and reported). A complete line that fails to parse or verify is corruption
 * or tampering and the log refuses to open.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import {
  appendEntry,
  loadSigningKey,
  verifyChain,
  type AuditEntry,
  type AuditEvent,
  type ChainFinding,
} from '../privacy/audit-log/chain.ts';

// ---------------------------------------------------------------- durable-file helpers

/** errno codes that mean "this disk cannot take the write now", not a bug. */
const DISK_ERRNO: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (file-size limit)',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'I/O error',
};

/**
 * A write to the site's state that the disk refused (full, read-only, quota, file-size limit,
 * permissions, I/O error). Its message is one line naming the file and the cause; whatever the
 * write had begun was undone before this was thrown.
 */
export class DiskWriteError extends Error {
  override name = 'DiskWriteError';
  constructor(
    readonly file: string,
    readonly code: string,
    cause: unknown,
  ) {
    super(`cannot write ${file}: ${DISK_ERRNO[code] ?? code} (${code})`, { cause });
  }
}

/** The errno code of `err` when it is a disk-side failure (see DISK_ERRNO), else undefined. */
export function diskErrno(err: unknown): string | undefined {
  if (err instanceof DiskWriteError) return err.code;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && code in DISK_ERRNO ? code : undefined;
}

/** Rethrows a disk-side errno failure on `file` as a DiskWriteError; anything else unchanged. */
export function asDiskError(err: unknown, file: string): unknown {
  if (err instanceof DiskWriteError) return err;
  const code = diskErrno(err);
  return code ? new DiskWriteError(file, code, err) : err;
}

/** fsync a directory so a newly created or renamed entry in it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** mkdir -p that fsyncs the parent of every directory it creates. */
export function ensureDirDurable(dir: string): void {
  const abs = path.resolve(dir);
  if (fs.existsSync(abs)) {
    if (!fs.statSync(abs).isDirectory()) throw new Error(`${abs} exists and is not a directory`);
    return;
  }
  ensureDirDurable(path.dirname(abs));
  try {
    fs.mkdirSync(abs);
    fsyncDir(path.dirname(abs));
  } catch (err) {
    throw asDiskError(err, abs);
  }
}

/**
 * Writes all of `data` at the end of `fd` (opened for append) and fsyncs it. All or nothing: if
 * the disk refuses part of it (full, file-size limit, I/O error), the file is cut back to where
 * it ended before, so a running process never leaves a torn line behind (only a crash in the
 * middle can, and readers drop a torn tail). `file` names it in the error.
 */
export function appendDurable(fd: number, data: string | Uint8Array, file = `fd ${fd}`): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const before = fs.fstatSync(fd).size;
  try {
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
  } catch (err) {
    try {
      fs.ftruncateSync(fd, before);
      fs.fsyncSync(fd);
    } catch {
      // Cannot even cut it back (e.g. the file system went read-only): the next open drops the torn tail.
    }
    throw asDiskError(err, file);
  }
}

/** Writes a whole file atomically and durably: temp file, fsync, rename, fsync directory. */
export function writeFileDurable(file: string, data: Uint8Array): void {
  const tmp = `${file}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < data.byteLength) off += fs.writeSync(fd, data, off, data.byteLength - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(path.dirname(file));
  } catch (err) {
    // A refused write leaves no half-written temp file behind (a full disk stays as full as it was).
    fs.rmSync(tmp, { force: true });
    throw asDiskError(err, file);
  }
}

export interface TornTail {
  /** Bytes dropped from the end of the file. */
  bytes: number;
  /** The start of what was dropped, for the operator's log. */
  preview: string;
}

export interface JsonLinesFile {
  /** Complete (newline-terminated) lines, without the newline, in order. */
  lines: string[];
  /** A partial final line (no newline), if the file ends in one. */
  tornTail: TornTail | null;
  /** Length in bytes of the complete part (where a torn tail starts). */
  completeBytes: number;
}

/** Reads a JSON-lines file, separating its complete lines from a torn final line. Missing file = empty. */
export function readJsonLinesFile(file: string): JsonLinesFile {
  if (!fs.existsSync(file)) return { lines: [], tornTail: null, completeBytes: 0 };
  const buf = fs.readFileSync(file);
  const lastNl = buf.lastIndexOf(0x0a);
  const completeBytes = lastNl + 1;
  const rest = buf.subarray(completeBytes);
  const text = buf.subarray(0, completeBytes).toString('utf8');
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n');
  const tornTail = rest.length > 0 ? { bytes: rest.length, preview: previewBytes(rest) } : null;
  return { lines, tornTail, completeBytes };
}

function previewBytes(b: Uint8Array): string {
  const s = Buffer.from(b.subarray(0, 120))
    .toString('utf8')
    .replace(/[^\x20-\x7e]/g, '·');
  return b.length > 120 ? `${s}…` : s;
}

/** Cuts a torn tail off `file` (to `completeBytes`) and fsyncs, so the next append starts on a line boundary. */
export function truncateDurable(file: string, completeBytes: number): void {
  try {
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, completeBytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw asDiskError(err, file);
  }
}

/** Opens `file` for appending, creating it (and fsyncing its directory) if needed. */
export function openAppendDurable(file: string): number {
  const existed = fs.existsSync(file);
  try {
    const fd = fs.openSync(file, 'a');
    if (!existed) {
      fs.fsyncSync(fd);
      fsyncDir(path.dirname(file));
    }
    return fd;
  } catch (err) {
    throw asDiskError(err, file);
  }
}

// ---------------------------------------------------------------- audit log

export class AuditLogCorruptError extends Error {
  constructor(
    message: string,
    readonly findings: ChainFinding[] = [],
  ) {
    super(message);
    this.name = 'AuditLogCorruptError';
  }
}

export interface AuditLogOptions {
  /** This party's id (the site name from its certificate). */
  party: string;
  /** The party's certificate private key (ECDSA P-256, PEM). */
  privateKeyPem: string | KeyObject;
  /** Clock, for tests. */
  now?: () => Date;
  /**
   * Public keys (or certificates) this party signed with before a certificate rotation; entries
   * they signed still verify. The caller checks they are this party's (site-agent/previous-certs.ts).
   */
  previousKeys?: readonly (string | KeyObject)[];
}

export class AuditLog {
  private fd: number | null;
  private readonly list: AuditEntry[];
  private readonly key: KeyObject;

  private constructor(
    readonly file: string,
    readonly party: string,
    key: KeyObject,
    entries: AuditEntry[],
    fd: number,
    /** What was dropped from the end of the file on open (a crash mid-append), if anything. */
    readonly tornTail: TornTail | null,
    private readonly now: () => Date,
  ) {
    this.key = key;
    this.list = entries;
    this.fd = fd;
  }

  /**
   * Opens (or creates) the log at `file`. Drops and reports a torn final line; verifies the rest
   * of the chain against this party's own key and refuses to open (AuditLogCorruptError) on any
   * finding.
   */
  static open(file: string, options: AuditLogOptions): AuditLog {
    const key = loadSigningKey(typeof options.privateKeyPem === 'string' ? createPrivateKey(options.privateKeyPem) : options.privateKeyPem);
    ensureDirDurable(path.dirname(path.resolve(file)));
    const read = readJsonLinesFile(file);
    const parsed: unknown[] = [];
    read.lines.forEach((line, i) => {
      try {
        parsed.push(JSON.parse(line));
      } catch {
        throw new AuditLogCorruptError(
          `audit log ${file} line ${i + 1} is not valid JSON (corruption in the middle of the log; refusing to start)`,
        );
      }
    });
    const findings = verifyChain(parsed, new Map([[options.party, [createPublicKey(key), ...(options.previousKeys ?? [])]]]));
    if (findings.length > 0) {
      const list = findings
        .slice(0, 5)
        .map((f) => `line ${f.index + 1}: ${f.message}`)
        .join('; ');
      throw new AuditLogCorruptError(
        `audit log ${file} fails verification (${findings.length} finding(s)); refusing to start: ${list}`,
        findings,
      );
    }
    if (read.tornTail) truncateDurable(file, read.completeBytes);
    const fd = openAppendDurable(file);
    return new AuditLog(file, options.party, key, parsed as AuditEntry[], fd, read.tornTail, options.now ?? (() => new Date()));
  }

  entries(): readonly AuditEntry[] {
    return this.list;
  }

  tail(): AuditEntry | null {
    return this.list.length ? this.list[this.list.length - 1] : null;
  }

  /** Signs, appends and fsyncs one event; returns the entry once it is durable. */
  append(event: AuditEvent): AuditEntry {
    if (this.fd === null) throw new Error(`audit log ${this.file} is closed`);
    // Timestamps never go backwards within a log, even if the wall clock does.
    let now = this.now();
    const last = this.tail();
    if (last && Date.parse(last.timestamp) > now.getTime()) now = new Date(last.timestamp);
    const entry = appendEntry(last, event, this.party, this.key, now);
    appendDurable(this.fd, `${JSON.stringify(entry)}\n`, this.file);
    this.list.push(entry);
    return entry;
  }

  /** Where the next entry will start: pass to rollback() to take back entries appended since. */
  mark(): { bytes: number; entries: number } {
    if (this.fd === null) throw new Error(`audit log ${this.file} is closed`);
    return { bytes: fs.fstatSync(this.fd).size, entries: this.list.length };
  }

  /**
   * Takes back the entries appended since `mark` (a charge that could not be completed is not
   * kept half-recorded). Throws DiskWriteError if the file cannot be cut back.
   */
  rollback(mark: { bytes: number; entries: number }): void {
    if (this.fd === null) throw new Error(`audit log ${this.file} is closed`);
    try {
      fs.ftruncateSync(this.fd, mark.bytes);
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw asDiskError(err, this.file);
    }
    this.list.length = mark.entries;
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

export function openAuditLog(file: string, options: AuditLogOptions): AuditLog {
  return AuditLog.open(file, options);
}
