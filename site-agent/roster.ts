// The federation roster a site holds (proto/roster.ts): which site ids, with which public keys,
// may hold decryption shares or contribute. It arrives with the kit only: `fedsynth provision`
// writes <kit>/roster.json and the federation operator hands every new version to every site,
// like a kit. The coordinator plays no part, so it can neither forge a roster (it does not hold
// the CA key) nor withhold a newer one from a site.
//
// The site keeps the highest version it has accepted in <state>/roster.json, so a kit folder put
// back to an older version (a rollback that would re-admit a revoked site's key) is refused, as
// is a different roster under an already accepted version number. The kit file is re-read when
// it changes, so a new version takes effect at the next task without a restart.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseRoster, RosterError, ROSTER_FILE, type FederationRoster } from '../proto/roster.ts';
import { asDiskError, writeFileDurable } from './audit-log.ts';

/** The site has no roster it can use: the agent does not start. */
export class SiteRosterError extends Error {
  override name = 'SiteRosterError';
}

export type RosterVerdict = { accepted: true; roster: FederationRoster } | { accepted: false; reason: string };

function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return 'missing';
  }
}

export class SiteRoster {
  private accepted?: FederationRoster;
  private kitStamp = 'missing';

  private constructor(
    private readonly opts: {
      stateDir: string;
      kitRosterFile?: string;
      caPem: string;
      federationId: string;
      log: (line: string) => void;
    },
  ) {}

  get stateFile(): string {
    return join(this.opts.stateDir, ROSTER_FILE);
  }

  /**
   * The roster accepted before (state folder) and the kit's, whichever is newer. Throws
   * SiteRosterError when there is neither, or when the state folder's copy does not verify.
   */
  static open(opts: {
    stateDir: string;
    kitRosterFile?: string;
    caPem: string;
    federationId: string;
    log?: (line: string) => void;
  }): SiteRoster {
    const r = new SiteRoster({ ...opts, log: opts.log ?? (() => undefined) });
    if (existsSync(r.stateFile)) {
      try {
        r.accepted = r.parse(readFileSync(r.stateFile, 'utf8'), `accepted roster ${r.stateFile}`);
      } catch (err) {
        throw new SiteRosterError(
          `${(err as Error).message}. Only this agent writes that file; put back the state folder's copy from a backup, or the latest roster.json the federation operator handed out`,
        );
      }
    }
    r.refresh();
    if (!r.accepted)
      throw new SiteRosterError(
        opts.kitRosterFile
          ? `no federation roster this site can use: ${opts.kitRosterFile} is missing or refused and the state folder holds none; ask the federation operator for the roster.json of your kit (fedsynth provision writes it)`
          : `no federation roster: the state folder holds none and no kit roster file is configured; ask the federation operator for the roster.json of your kit (fedsynth provision writes it)`,
      );
    return r;
  }

  private parse(text: string, where: string): FederationRoster {
    const roster = parseRoster(text, this.opts.caPem, where);
    if (roster.federationId !== this.opts.federationId)
      throw new RosterError(`${where} is the roster of federation ${roster.federationId}, not ${this.opts.federationId}`);
    return roster;
  }

  /**
   * Offers a roster file's text: accepted (and kept in the state folder) when it verifies and is
   * newer than the one accepted; refused when it is older, or another roster of the same version.
   */
  offer(text: string, where: string): RosterVerdict {
    let roster: FederationRoster;
    try {
      roster = this.parse(text, where);
    } catch (err) {
      if (err instanceof RosterError) return this.refused(err.message);
      throw err;
    }
    const held = this.accepted;
    if (held) {
      if (roster.version < held.version)
        return this.refused(
          `${where} is version ${roster.version}, older than version ${held.version} this site accepted: refusing a rollback`,
        );
      if (roster.version === held.version) {
        if (roster.payload === held.payload) return { accepted: true, roster: held };
        return this.refused(`${where} is another roster under version ${held.version}, which this site already accepted: refusing it`);
      }
    }
    this.persist(roster.fileText);
    this.accepted = roster;
    this.opts.log(
      `federation roster version ${roster.version} accepted from ${where} (issued ${roster.issuedAt.toISOString()}): ${roster.sites.map((s) => s.siteId).join(', ')}`,
    );
    return { accepted: true, roster };
  }

  private refused(reason: string): RosterVerdict {
    this.opts.log(`federation roster refused: ${reason}${this.accepted ? `; keeping version ${this.accepted.version}` : ''}`);
    return { accepted: false, reason };
  }

  /**
   * Durable before it is used: a crash leaves the old accepted roster or the new one. A disk
   * failure is a DiskWriteError, and the roster is then not taken.
   */
  private persist(text: string): void {
    try {
      mkdirSync(this.opts.stateDir, { recursive: true });
    } catch (err) {
      throw asDiskError(err, this.stateFile);
    }
    writeFileDurable(this.stateFile, Buffer.from(text, 'utf8'));
  }

  /** Re-reads the kit's roster file when it changed since the last look. */
  private refresh(): void {
    const file = this.opts.kitRosterFile;
    if (!file) return;
    const stamp = stampOf(file);
    if (stamp === this.kitStamp) return;
    this.kitStamp = stamp;
    if (stamp === 'missing') return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      this.refused(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    this.offer(text, `roster ${file}`);
  }

  /** The roster in force: the highest version accepted, after a look at the kit's file. */
  current(): FederationRoster {
    this.refresh();
    return this.accepted!;
  }
}
