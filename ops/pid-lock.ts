// One process at a time per lock file, for state that has exactly one writer: a site's ledger
// folder (site-agent/state-lock.ts) and a PGlite data directory (coordinator/store/store-lock.ts).
// The file names the holding process; a file left by a dead process is taken over.
import * as fs from 'node:fs';

/** Lock files this process holds: a second take in the same process is refused too. */
const held = new Set<string>();

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type PidLockOutcome =
  | { taken: true }
  | { taken: false; why: 'held-here' }
  | { taken: false; why: 'held-by'; pid: number; text: string }
  | { taken: false; why: 'raced' };

/**
 * Creates `lock` holding `content`, unless a live process other than this one holds it
 * (`pidOf` reads the holder's pid from the file's text).
 */
export function takePidLock(lock: string, content: string, pidOf: (text: string) => number | null): PidLockOutcome {
  if (held.has(lock)) return { taken: false, why: 'held-here' };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lock, 'wx');
      try {
        fs.writeSync(fd, content);
        fs.fsyncSync(fd);
      } catch (err) {
        // A full disk must not leave an empty lock that names no process.
        fs.closeSync(fd);
        fs.rmSync(lock, { force: true });
        throw err;
      }
      fs.closeSync(fd);
      held.add(lock);
      return { taken: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let text = '';
      try {
        text = fs.readFileSync(lock, 'utf8');
      } catch {
        // Removed between our open and this read: the next attempt creates it.
      }
      const pid = pidOf(text);
      // Our own pid in a lock we do not hold is stale (e.g. a container's PID 1 after a restart).
      if (pid !== null && Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid))
        return { taken: false, why: 'held-by', pid, text };
      fs.rmSync(lock, { force: true });
    }
  }
  return { taken: false, why: 'raced' };
}

/** Gives the lock up: forgets it in this process and removes the file. */
export function releasePidLock(lock: string): void {
  held.delete(lock);
  fs.rmSync(lock, { force: true });
}
