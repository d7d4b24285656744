// The federation's revocation list a site holds (proto/revocation.ts). The file named by
// `revocationList:` is re-read when it changes; the highest list the site accepted is kept in
// <state>/revoked.crl.pem, written durably before it is used. So an older list copied over the
// configured file (a lower cRLNumber: fewer entries, re-admitting a revoked certificate) is
// refused, at once and after a restart, and the kept list stays in force.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeRevocationList,
  parseRevocationList,
  RevocationListError,
  RevocationWatcher,
  type RevocationKeeper,
  type RevocationList,
} from '../proto/revocation.ts';
import { asDiskError, writeFileDurable } from './audit-log.ts';

export const HELD_REVOCATION_FILE = 'revoked.crl.pem';

/** The list accepted before (verified against the CA), and how a newer one is kept. */
export async function stateRevocationKeeper(stateDir: string, caPem: string): Promise<RevocationKeeper> {
  const file = join(stateDir, HELD_REVOCATION_FILE);
  let held: RevocationList | undefined;
  if (existsSync(file)) {
    try {
      held = await parseRevocationList(readFileSync(file, 'utf8'), caPem, `accepted revocation list ${file}`);
    } catch (err) {
      throw new RevocationListError(
        `${(err as Error).message}. Only this agent writes that file; put it back from a backup of the state folder, or the latest revoked.crl.pem the federation operator handed out`,
      );
    }
  }
  return {
    ...(held ? { held } : {}),
    persist(list) {
      try {
        mkdirSync(stateDir, { recursive: true });
      } catch (err) {
        throw asDiskError(err, file);
      }
      writeFileDurable(file, Buffer.from(list.signed.pem, 'utf8'));
    },
  };
}

/** The watcher of `file`, monotonic across restarts through the state folder. */
export async function openSiteRevocation(opts: {
  file: string;
  stateDir: string;
  caPem: string;
  log: (line: string) => void;
  intervalMs?: number;
  now?: () => Date;
}): Promise<RevocationWatcher> {
  const keeper = await stateRevocationKeeper(opts.stateDir, opts.caPem);
  const w = await RevocationWatcher.open(opts.file, opts.caPem, {
    keeper,
    log: opts.log,
    ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  opts.log(`revocation list ${opts.file}: ${describeRevocationList(w.current())}`);
  return w;
}
