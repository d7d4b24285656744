// The federation's certificate revocation list: an X.509 CRL (PEM) signed by the federation CA,
// written by `fedsynth provision revoke`. The coordinator refuses a revoked site certificate on
// every call (so at registration), and committee members refuse to encrypt to, or decrypt for, a
// committee key signed by a revoked certificate. The list is a file both ends read and re-read
// when it changes: revoking takes effect without a restart. A list that is not signed by this
// federation's CA is refused (and the previous one kept), so a forged file cannot un-revoke.
import 'reflect-metadata';
import { readFileSync, statSync } from 'node:fs';
import { webcrypto, X509Certificate as NodeCertificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export class RevocationListError extends Error {
  override name = 'RevocationListError';
}

export interface RevokedEntry {
  /** Upper-case hex without leading zeros (node's X509Certificate.serialNumber form). */
  serial: string;
  revokedAt: Date;
  reason?: string;
}

/** Serial numbers compare in one form whichever library printed them. */
export function normaliseSerial(hex: string): string {
  const s = hex
    .replace(/[^0-9a-f]/gi, '')
    .toUpperCase()
    .replace(/^0+/, '');
  return s === '' ? '0' : s;
}

export class RevocationList {
  private readonly bySerial: Map<string, RevokedEntry>;
  constructor(
    entries: readonly RevokedEntry[],
    readonly thisUpdate: Date,
    readonly source: string,
  ) {
    this.bySerial = new Map(entries.map((e) => [e.serial, e]));
  }
  get size(): number {
    return this.bySerial.size;
  }
  entries(): RevokedEntry[] {
    return [...this.bySerial.values()];
  }
  /** The revocation of the certificate with this serial, if any. */
  lookup(serialHex: string): RevokedEntry | undefined {
    return this.bySerial.get(normaliseSerial(serialHex));
  }
  /** Of a PEM certificate (e.g. a committee member's), or undefined when it is not revoked or unreadable. */
  lookupPem(certPem: string): RevokedEntry | undefined {
    try {
      return this.lookup(new NodeCertificate(certPem).serialNumber);
    } catch {
      return undefined;
    }
  }
  static empty(source = '(none)'): RevocationList {
    return new RevocationList([], new Date(0), source);
  }
}

const REASONS: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
};

/** Parses a PEM CRL and checks it is signed by `caPem`; throws RevocationListError saying why not. */
export async function parseRevocationList(crlPem: string, caPem: string, where: string): Promise<RevocationList> {
  if (!/-----BEGIN (X509 )?CRL-----/.test(crlPem))
    throw new RevocationListError(
      `${where} is not a PEM certificate revocation list (no BEGIN X509 CRL block); write it with fedsynth provision revoke`,
    );
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(crlPem);
  } catch (err) {
    throw new RevocationListError(`${where} is a corrupt revocation list: ${(err as Error).message}`);
  }
  const ca = new x509.X509Certificate(caPem);
  const signed = await crl.verify({ publicKey: ca }, webcrypto).catch(() => false);
  if (!signed) throw new RevocationListError(`${where} is not signed by this federation's CA (${ca.subject}); refusing to use it`);
  const entries = crl.entries.map((e) => ({
    serial: normaliseSerial(e.serialNumber),
    revokedAt: e.revocationDate,
    ...(e.reason !== undefined ? { reason: REASONS[e.reason] ?? String(e.reason) } : {}),
  }));
  return new RevocationList(entries, crl.thisUpdate, where);
}

export async function readRevocationList(file: string, caPem: string): Promise<RevocationList> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RevocationListError(
      `cannot read the revocation list ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseRevocationList(text, caPem, `revocation list ${file}`);
}

/**
 * The current list of a file, re-read when its size or mtime changes (checked every
 * `intervalMs`). A newer file that fails to parse or verify is reported and ignored: the last
 * good list stays in force, never an empty one.
 */
export class RevocationWatcher {
  private list: RevocationList;
  private stamp: string;
  private timer?: NodeJS.Timeout;
  private constructor(
    readonly file: string,
    private readonly caPem: string,
    first: RevocationList,
    private readonly log: (line: string) => void,
  ) {
    this.list = first;
    this.stamp = RevocationWatcher.stampOf(file);
  }

  static async open(
    file: string,
    caPem: string,
    opts: { intervalMs?: number; log?: (line: string) => void } = {},
  ): Promise<RevocationWatcher> {
    const w = new RevocationWatcher(file, caPem, await readRevocationList(file, caPem), opts.log ?? (() => undefined));
    const interval = opts.intervalMs ?? 5000;
    if (interval > 0) {
      w.timer = setInterval(() => void w.refresh(), interval);
      w.timer.unref();
    }
    return w;
  }

  private static stampOf(file: string): string {
    try {
      const s = statSync(file);
      return `${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  current(): RevocationList {
    return this.list;
  }

  /** Re-reads the file if it changed; returns the list in force. */
  async refresh(): Promise<RevocationList> {
    const stamp = RevocationWatcher.stampOf(this.file);
    if (stamp === this.stamp) return this.list;
    this.stamp = stamp;
    try {
      const next = await readRevocationList(this.file, this.caPem);
      if (next.size !== this.list.size || next.thisUpdate.getTime() !== this.list.thisUpdate.getTime())
        this.log(`revocation list ${this.file} reloaded: ${next.size} revoked certificate(s)`);
      this.list = next;
    } catch (err) {
      this.log(`revocation list ${this.file} changed but is unusable, keeping the previous one: ${(err as Error).message}`);
    }
    return this.list;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** The sentence a refused party sees. */
export function revokedMessage(who: string, entry: RevokedEntry): string {
  return `the certificate of ${who} (serial ${entry.serial}) was revoked on ${entry.revokedAt.toISOString()}${entry.reason ? ` (${entry.reason})` : ''} by the federation's revocation list; ask the federation operator for a new certificate (fedsynth provision rotate-site)`;
}
