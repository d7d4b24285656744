// The LOCK file of a site's state folder: one agent process at a time may own the ledger and
// the audit log, or two writers could each append a charge the other does not see.
import * as path from 'node:path';
import { releasePidLock, takePidLock } from '../ops/pid-lock.ts';

export const LOCK_FILE = 'LOCK';

export class LedgerLockedError extends Error {
  override name = 'LedgerLockedError';
}

/** Takes the LOCK file of `dir` for this process; a lock left by a dead process is taken over. */
export function acquireLock(dir: string): string {
  const lock = path.join(dir, LOCK_FILE);
  const got = takePidLock(lock, `${process.pid}\n`, (text) => Number.parseInt(text, 10));
  if (got.taken) return lock;
  if (got.why === 'held-here') throw new LedgerLockedError(`ledger ${dir} is already open in this process`);
  if (got.why === 'held-by')
    throw new LedgerLockedError(
      `ledger ${dir} is in use by process ${got.pid} (remove ${lock} only if that process is not a fedsynth agent)`,
    );
  throw new LedgerLockedError(`could not take the lock ${lock}`);
}

/** Gives the lock up: forgets it in this process and removes the file. */
export const releaseLock = releasePidLock;
