// The federation's certificate revocation list: an X.509 CRL (PEM) signed by the federation CA,
// written by `fedsynth provision revoke`. The coordinator refuses a revoked site certificate on
// every call (so at registration), and committee members refuse to encrypt to, or decrypt for, a
// committee key signed by a revoked certificate. The list is a file both ends read and re-read
// when it changes: revoking takes effect without a restart. A list that is not signed by this
// federation's CA is refused (and the previous one kept), so a forged file cannot un-revoke.
//
// Lists are ordered by their cRLNumber extension (RFC 5280 §5.2.3; `provision revoke` numbers
// every list it signs one higher than the last). A holder keeps the highest list it accepted and
// refuses a lower number (an older list copied over a newer one would re-admit what the newer one
// revoked) and a different list under the number it holds; a site agent keeps that list in its
// state folder (site-agent/revocation.ts) and the coordinator in its store (coordinator/ops.ts),
// so a restart does not forget it. A list without a
// number (written before lists were numbered) is taken only while no numbered list is held. A list
// whose nextUpdate has passed is refused: `provision revoke` sets it to the CA's notAfter, so this
// is a sanity check, not a freshness guarantee.
import 'reflect-metadata';
import { readFileSync, statSync } from 'node:fs';
import { createHash, webcrypto, X509Certificate as NodeCertificate } from 'node:crypto';
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

export const CRL_NUMBER_OID = '2.5.29.20';
/** RFC 5280 §5.2.3: conforming CRL numbers fit in 20 octets. */
const CRL_NUMBER_MAX_OCTETS = 20;

/** The DER INTEGER of a cRLNumber extension's value. */
export function encodeCrlNumber(n: bigint): ArrayBuffer {
  if (n < 0n) throw new RangeError(`a cRLNumber is non-negative, got ${n}`);
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  // A leading 0x00 keeps a high first bit from reading as a negative INTEGER.
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  if (body.length > CRL_NUMBER_MAX_OCTETS + 1) throw new RangeError(`cRLNumber ${n} does not fit in ${CRL_NUMBER_MAX_OCTETS} octets`);
  const der = Buffer.concat([Buffer.from([0x02, body.length]), body]);
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength);
}

/** The value of a cRLNumber extension (a DER INTEGER); throws on anything else. */
export function decodeCrlNumber(der: ArrayBuffer): bigint {
  const b = Buffer.from(der);
  if (b.length < 3 || b[0] !== 0x02 || b[1] !== b.length - 2 || b[1] > CRL_NUMBER_MAX_OCTETS + 1)
    throw new RangeError('the cRLNumber extension is not a DER INTEGER of at most 20 octets');
  if (b[2] & 0x80) throw new RangeError('the cRLNumber extension is negative');
  return BigInt(`0x${b.subarray(2).toString('hex')}`);
}

export class RevocationList {
  private readonly bySerial: Map<string, RevokedEntry>;
  constructor(
    entries: readonly RevokedEntry[],
    readonly thisUpdate: Date,
    readonly source: string,
    readonly signed: {
      /** cRLNumber; undefined for a list written before lists were numbered. */
      crlNumber?: bigint;
      nextUpdate?: Date;
      /** SHA-256 of the DER: two lists under one number must be the same list. */
      sha256: string;
      /** The PEM as read, which a holder keeps in its state folder. */
      pem: string;
    } = { sha256: '', pem: '' },
  ) {
    this.bySerial = new Map(entries.map((e) => [e.serial, e]));
  }
  get crlNumber(): bigint | undefined {
    return this.signed.crlNumber;
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
  let crlNumber: bigint | undefined;
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  if (ext) {
    try {
      crlNumber = decodeCrlNumber(ext.value);
    } catch (err) {
      throw new RevocationListError(`${where} has an unreadable cRLNumber: ${(err as Error).message}`);
    }
  }
  return new RevocationList(entries, crl.thisUpdate, where, {
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
    sha256: createHash('sha256').update(Buffer.from(crl.rawData)).digest('hex'),
    pem: crlPem,
  });
}

/** "cRLNumber N", or "no cRLNumber" for a list written before lists were numbered. */
export const crlNumberText = (list: Pick<RevocationList, 'crlNumber'>): string =>
  list.crlNumber === undefined ? 'no cRLNumber' : `cRLNumber ${list.crlNumber}`;

/** "cRLNumber N, M revoked certificate(s)": how every holder names the list it holds in its log. */
export const describeRevocationList = (list: RevocationList): string => `${crlNumberText(list)}, ${list.size} revoked certificate(s)`;

/**
 * Why a holder must refuse `next`, having accepted `held` (undefined: nothing yet), or undefined
 * when `next` may replace it (or is the same list). The order is the cRLNumber alone: thisUpdate
 * is the signer's clock, and a list is only ever replaced by a higher number.
 */
export function revocationListProblem(next: RevocationList, held: RevocationList | undefined, now: Date): string | undefined {
  const nextUpdate = next.signed.nextUpdate;
  if (nextUpdate && nextUpdate.getTime() < now.getTime())
    return `${next.source} (${crlNumberText(next)}) expired on ${nextUpdate.toISOString()} (its nextUpdate): ask the federation operator for a current list (fedsynth provision revoke writes one)`;
  if (!held) return undefined;
  if (next.signed.sha256 === held.signed.sha256) return undefined;
  if (held.crlNumber === undefined) return undefined;
  if (next.crlNumber === undefined)
    return `${next.source} has no cRLNumber, while this holder accepted cRLNumber ${held.crlNumber}: refusing a rollback to an unnumbered list`;
  if (next.crlNumber < held.crlNumber)
    return `${next.source} is cRLNumber ${next.crlNumber}, lower than cRLNumber ${held.crlNumber} this holder accepted: refusing a rollback (it would re-admit what the newer list revoked)`;
  if (next.crlNumber === held.crlNumber)
    return `${next.source} is another list under cRLNumber ${held.crlNumber}, which this holder already accepted: refusing it`;
  return undefined;
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

/** How a holder keeps what it accepted beyond its process (a site agent: its state folder). */
export interface RevocationKeeper {
  /** The list accepted before this start, verified; undefined when none was kept. */
  held?: RevocationList;
  /** Makes `list` durable before it is used; throws (or rejects) when it cannot. */
  persist(list: RevocationList): void | Promise<void>;
}

export interface RevocationWatcherOptions {
  intervalMs?: number;
  log?: (line: string) => void;
  keeper?: RevocationKeeper;
  now?: () => Date;
}

/**
 * The list in force from a file, re-read when its size, mtime or inode changes (checked every
 * `intervalMs`). A file that fails to parse or verify, or that `revocationListProblem` refuses
 * (a lower cRLNumber, another list under the held number, an expired one), is reported and
 * ignored: the highest list accepted stays in force, never an older or an empty one.
 */
export class RevocationWatcher {
  private list: RevocationList;
  private stamp = 'missing';
  private timer?: NodeJS.Timeout;
  private readonly log: (line: string) => void;
  private readonly now: () => Date;
  /** The last refusal, for whoever reports the holder's state. */
  lastRefusal: string | undefined;

  private constructor(
    readonly file: string,
    private readonly caPem: string,
    first: RevocationList,
    private readonly opts: RevocationWatcherOptions,
  ) {
    this.list = first;
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Without a kept list, the file must hold a usable list (else RevocationListError). With one,
   * the file is offered like any later change: refused (and logged) when older, the kept list in
   * force.
   */
  static async open(file: string, caPem: string, opts: RevocationWatcherOptions = {}): Promise<RevocationWatcher> {
    const held = opts.keeper?.held;
    let w: RevocationWatcher;
    if (held) {
      w = new RevocationWatcher(file, caPem, held, opts);
      await w.refresh();
    } else {
      const stamp = RevocationWatcher.stampOf(file);
      const first = await readRevocationList(file, caPem);
      const problem = revocationListProblem(first, undefined, opts.now?.() ?? new Date());
      if (problem) throw new RevocationListError(problem);
      await opts.keeper?.persist(first);
      w = new RevocationWatcher(file, caPem, first, opts);
      w.stamp = stamp;
    }
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
      return `${s.size}:${s.mtimeMs}:${s.ino}`;
    } catch {
      return 'missing';
    }
  }

  current(): RevocationList {
    return this.list;
  }

  private refuse(reason: string): void {
    this.lastRefusal = reason;
    this.log(`revocation list refused: ${reason}; keeping the previous one (${describeRevocationList(this.list)})`);
  }

  /** Re-reads the file if it changed; returns the list in force. */
  async refresh(): Promise<RevocationList> {
    const stamp = RevocationWatcher.stampOf(this.file);
    if (stamp === this.stamp) return this.list;
    this.stamp = stamp;
    let next: RevocationList;
    try {
      next = await readRevocationList(this.file, this.caPem);
    } catch (err) {
      this.refuse(`${this.file} changed but is unusable: ${(err as Error).message}`);
      return this.list;
    }
    const problem = revocationListProblem(next, this.list, this.now());
    if (problem) {
      this.refuse(problem);
      return this.list;
    }
    if (next.signed.sha256 === this.list.signed.sha256) return this.list;
    try {
      await this.opts.keeper?.persist(next);
    } catch (err) {
      // Looked at again on the next tick: a list that is not durable is not used.
      this.stamp = 'unpersisted';
      this.refuse(`${this.file} (${crlNumberText(next)}) could not be kept: ${(err as Error).message}`);
      return this.list;
    }
    this.list = next;
    this.lastRefusal = undefined;
    this.log(`revocation list ${this.file} accepted: ${describeRevocationList(next)}`);
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
