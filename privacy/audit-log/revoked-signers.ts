/**
 * Entries signed with a revoked certificate after its revocation (pure: no I/O).
 *
 * An entry names its party, not the certificate that signed it; a party that rotated has several
 * keys and the entry verifies under one of them (chain.ts). So the signer is found by the
 * signature: an entry whose signature verifies under a revoked certificate's key, and whose
 * timestamp falls in a later second than that certificate's revocationDate, was signed by whoever
 * held the key after it was revoked. A CRL records revocation times in whole seconds, so an
 * entry in the very second of the revocation is not flagged.
 *
 * The timestamp is the signer's own claim: a holder of the revoked key can back-date an entry.
 * Within one chain it cannot place a back-dated entry after an entry dated later (a
 * `timestamp-regression` finding of verifyChain), so such an entry can only sit in a chain forked
 * before the first entry dated after the revocation; what catches that fork is the sites' logs
 * (countersigned heads and charges, reconcile.ts), not this check.
 */
import { verify, type KeyObject } from 'node:crypto';
import { loadVerifyKey } from './chain.ts';
import { isObj } from './events.ts';

export interface RevokedSigner {
  party: string;
  /** The revoked certificate (PEM) or its public key. */
  key: string | KeyObject;
  serial: string;
  revokedAt: Date;
  reason?: string;
}

export interface SignedAfterRevocation {
  log: string;
  kind: 'signed-after-revocation';
  index: number;
  seq?: number;
  message: string;
}

const SECOND_MS = 1000;

function signs(key: KeyObject, hash: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', hash, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

export function entriesSignedAfterRevocation(
  logName: string,
  entries: readonly unknown[],
  revoked: readonly RevokedSigner[],
): SignedAfterRevocation[] {
  const out: SignedAfterRevocation[] = [];
  if (revoked.length === 0) return out;
  const keys = revoked.map((r) => ({ ...r, verifyKey: loadVerifyKey(r.key) }));
  entries.forEach((e, index) => {
    if (!isObj(e) || typeof e.party !== 'string' || typeof e.hash !== 'string' || typeof e.signature !== 'string') return;
    if (typeof e.timestamp !== 'string') return;
    const at = Date.parse(e.timestamp);
    if (Number.isNaN(at)) return;
    const hash = Buffer.from(e.hash, 'hex');
    const signature = Buffer.from(e.signature, 'base64');
    for (const r of keys) {
      if (r.party !== e.party) continue;
      if (Math.floor(at / SECOND_MS) <= Math.floor(r.revokedAt.getTime() / SECOND_MS)) continue;
      if (!signs(r.verifyKey, hash, signature)) continue;
      const seq = typeof e.seq === 'number' ? e.seq : undefined;
      const type = isObj(e.event) && typeof e.event.type === 'string' ? e.event.type : '?';
      out.push({
        log: logName,
        kind: 'signed-after-revocation',
        index,
        ...(seq !== undefined ? { seq } : {}),
        message: `${logName} entry ${index}${seq !== undefined ? ` (seq ${seq}, ${type})` : ` (${type})`}, dated ${e.timestamp}, is signed with the certificate of ${r.party} serial ${r.serial}, revoked on ${r.revokedAt.toISOString()}${r.reason ? ` (${r.reason})` : ''}: signed after its certificate was revoked`,
      });
    }
  });
  return out;
}
