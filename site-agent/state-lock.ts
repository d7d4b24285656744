// The LOCK file of a site's state folder: one agent process at a time may own the ledger and
// the audit log, or two writers could each append a charge the other does not see.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LOCK_FILE = 'LOCK';

export class LedgerLockedError extends Error {
  override name = 'LedgerLockedError';
}

const heldLocks = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the LOCK file of `dir` for this process; a lock left by a dead process is taken over. */
export function acquireLock(dir: string): string {
  const lock = path.join(dir, LOCK_FILE);
  if (heldLocks.has(lock)) throw new LedgerLockedError(`ledger ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lock, 'wx');
      try {
        fs.writeSync(fd, `${process.pid}\n`);
        fs.fsyncSync(fd);
      } catch (err) {
        // A full disk must not leave an empty LOCK that names no process.
        fs.closeSync(fd);
        fs.rmSync(lock, { force: true });
        throw err;
      }
      fs.closeSync(fd);
      heldLocks.add(lock);
      return lock;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(fs.readFileSync(lock, 'utf8'), 10);
      // Our own pid in a lock we do not hold is stale (e.g. a container's PID 1 after a restart).
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new LedgerLockedError(
          `ledger ${dir} is in use by process ${pid} (remove ${lock} only if that process is not a fedsynth agent)`,
        );
      }
      fs.rmSync(lock, { force: true });
    }
  }
  throw new LedgerLockedError(`could not take the lock ${lock}`);
}

/** Gives the lock up: forgets it in this process and removes the file. */
export function releaseLock(lock: string): void {
  heldLocks.delete(lock);
  fs.rmSync(lock, { force: true });
}
