// The lock file of a PGlite data directory. PGlite is PostgreSQL in one process with no shared
// memory between processes: a second process opening the same directory (a `fedsynth token
// create` while `fedsynth serve` runs) writes pages the first one does not see, and the store is
// corrupted. Every open of a PGlite directory takes this lock; a lock left by a dead process is
// taken over (ops/pid-lock.ts, shared with the site agent's ledger lock).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidAlive, releasePidLock, takePidLock } from '../../ops/pid-lock.ts';

export const STORE_LOCK_FILE = 'fedsynth.lock';

export interface StoreHolder {
  pid: number;
  /** What holds it, e.g. "fedsynth serve (HTTP http://127.0.0.1:8080)". */
  holder: string;
  since: string;
}

export class StoreLockedError extends Error {
  override name = 'StoreLockedError';
  constructor(
    message: string,
    readonly holder: StoreHolder | null,
  ) {
    super(message);
  }
}

function parseHolder(text: string): StoreHolder | null {
  try {
    const v = JSON.parse(text) as Partial<StoreHolder>;
    return typeof v.pid === 'number' ? { pid: v.pid, holder: String(v.holder ?? 'unknown'), since: String(v.since ?? '') } : null;
  } catch {
    return null;
  }
}

function readHolder(lock: string): StoreHolder | null {
  try {
    return parseHolder(fs.readFileSync(lock, 'utf8'));
  } catch {
    return null;
  }
}

/** The process holding the store of `dir`, if a live one does. */
export function storeHolder(dir: string): StoreHolder | null {
  const h = readHolder(path.join(dir, STORE_LOCK_FILE));
  return h && h.pid !== process.pid && pidAlive(h.pid) ? h : null;
}

/** Takes the lock of the PGlite directory `dir` (which exists) for this process as `holder`. */
export function acquireStoreLock(dir: string, holder: string): string {
  const lock = path.join(path.resolve(dir), STORE_LOCK_FILE);
  const got = takePidLock(
    lock,
    JSON.stringify({ pid: process.pid, holder, since: new Date().toISOString() }) + '\n',
    (text) => parseHolder(text)?.pid ?? null,
  );
  if (got.taken) return lock;
  if (got.why === 'held-here')
    throw new StoreLockedError(`the store ${dir} is already open in this process (PGlite allows one opening at a time)`, null);
  if (got.why === 'held-by') {
    const h = parseHolder(got.text)!;
    throw new StoreLockedError(
      `the store ${dir} is in use by ${h.holder} (process ${h.pid}, since ${h.since}); PGlite allows one process at a time, so ` +
        `stop that process first, or use a PostgreSQL store (storage.postgres) for concurrent access ` +
        `(remove ${lock} only if process ${h.pid} is not fedsynth)`,
      h,
    );
  }
  throw new StoreLockedError(`could not take the lock ${lock}`, null);
}

export const releaseStoreLock = releasePidLock;
