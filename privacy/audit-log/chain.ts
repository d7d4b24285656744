/**
 * Tamper-evident audit trail: an append-only, hash-chained, signed list of privacy-relevant events.
 *
 * Every entry is `{ seq, prevHash, timestamp, party, event, hash, signature }` where
 *
 *   - `seq` counts from 0 (or the chain's first seq) without gaps;
 *   - `prevHash` is the previous entry's `hash` (GENESIS_HASH, 64 zeros, for the first entry);
 *   - `hash` = lowercase hex SHA-256 of `canonicalJson({ seq, prevHash, timestamp, party, event })`
 *     (keys sorted recursively, no whitespace, see `canonicalJson`);
 *   - `signature` = base64 of the DER-encoded ECDSA P-256 / SHA-256 signature, by the party's
 *     certificate key, over the 32 raw bytes of `hash`.
 *
 * So changing any byte of an entry breaks its hash or its signature, and dropping, inserting or
 * reordering entries breaks the `prevHash` links and the `seq` sequence. `verifyChain` reports all of
 * these as findings and never throws: a malformed entry (wrong shape, not JSON, unknown event type)
 * is itself a finding.
 *
 * Pure: node:crypto only, no I/O. File handling lives in site-agent/audit-log.ts (and the
 * coordinator's store).
 */
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, sha256Hex } from './canonical.ts';
import {
  describeType,
  entryProblem,
  eventProblem,
  GENESIS_HASH,
  isObj,
  type AuditEntry,
  type AuditEvent,
  type ChainFinding,
  type FindingKind,
} from './events.ts';

export * from './events.ts';
export { canonicalJson, sha256Hex } from './canonical.ts';

// ---------------------------------------------------------------- hashing

/** The hash an entry must carry: SHA-256 over the canonical JSON of all fields but hash/signature. */
export function entryHash(entry: Pick<AuditEntry, 'seq' | 'prevHash' | 'timestamp' | 'party' | 'event'>): string {
  return sha256Hex(
    canonicalJson({ seq: entry.seq, prevHash: entry.prevHash, timestamp: entry.timestamp, party: entry.party, event: entry.event }),
  );
}

// ---------------------------------------------------------------- keys

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** A private key from PEM (PKCS#8 or SEC1); must be ECDSA P-256. Throws with a clear reason otherwise. */
export function loadSigningKey(privateKeyPem: string | KeyObject): KeyObject {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  if (key.type !== 'private') throw new Error('audit chain: signing key must be a private key');
  if (!isP256(key)) throw new Error(`audit chain: signing key must be ECDSA P-256, got ${key.asymmetricKeyType}`);
  return key;
}

/** A verification key from a public key PEM, a certificate PEM, or a KeyObject. */
export function loadVerifyKey(pemOrKey: string | KeyObject): KeyObject {
  if (typeof pemOrKey !== 'string') return pemOrKey.type === 'private' ? createPublicKey(pemOrKey) : pemOrKey;
  if (pemOrKey.includes('BEGIN CERTIFICATE')) return new X509Certificate(pemOrKey).publicKey;
  return createPublicKey(pemOrKey);
}

function signHash(hash: string, key: KeyObject): string {
  return sign('sha256', Buffer.from(hash, 'hex'), { key, dsaEncoding: 'der' }).toString('base64');
}

// ---------------------------------------------------------------- append

/**
 * The next entry after `chainTail` (null for the first entry of a chain). Validates the event's
 * shape first, so a chain can only ever be extended with well-formed events.
 */
export function appendEntry(
  chainTail: AuditEntry | null,
  event: AuditEvent,
  party: string,
  privateKeyPem: string | KeyObject,
  now: Date,
): AuditEntry {
  if (typeof party !== 'string' || party.length === 0) throw new Error('audit chain: party must be a non-empty string');
  const problem = eventProblem(event);
  if (problem) throw new Error(`audit chain: invalid ${describeType(event)} event: ${problem}`);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new Error('audit chain: now must be a valid Date');
  const key = loadSigningKey(privateKeyPem);
  const body = {
    seq: chainTail ? chainTail.seq + 1 : 0,
    prevHash: chainTail ? chainTail.hash : GENESIS_HASH,
    timestamp: now.toISOString(),
    party,
    // A deep copy through JSON, so later mutation by the caller cannot desynchronise the hash.
    event: JSON.parse(JSON.stringify(event)) as AuditEvent,
  };
  const hash = entryHash(body);
  return { ...body, hash, signature: signHash(hash, key) };
}

// ---------------------------------------------------------------- verify

export interface VerifyOptions {
  /** prevHash the first entry must carry (default GENESIS_HASH; pass a checkpoint hash to verify a suffix). */
  firstPrevHash?: string;
  /** seq the first entry must carry (default 0). */
  firstSeq?: number;
}

/**
 * A party's key, or its keys in order of use when it rotated its certificate: an entry verifies
 * if any one of them signed it (a site's older entries were signed with its previous key).
 */
export type PartyKeys = string | KeyObject | readonly (string | KeyObject)[];
export type KeysByParty = ReadonlyMap<string, PartyKeys> | Readonly<Record<string, PartyKeys>>;

function lookupKey(keys: KeysByParty, party: string): PartyKeys | undefined {
  if (keys instanceof Map) return keys.get(party);
  const rec = keys as Readonly<Record<string, PartyKeys>>;
  return Object.prototype.hasOwnProperty.call(rec, party) ? rec[party] : undefined;
}

/**
 * Verifies a chain (entries in file order) against each party's public key or certificate (PEM).
 * Returns every finding; an empty list means the chain is intact. Never throws: malformed
 * entries, unparseable keys and unknown parties are findings.
 */
export function verifyChain(
  entries: readonly unknown[],
  publicKeyOrCertPemByParty: KeysByParty,
  options: VerifyOptions = {},
): ChainFinding[] {
  const findings: ChainFinding[] = [];
  const keyCache = new Map<string, KeyObject[] | Error>();
  const getKey = (party: string): KeyObject[] | Error | undefined => {
    if (keyCache.has(party)) return keyCache.get(party);
    const pem = lookupKey(publicKeyOrCertPemByParty, party);
    if (pem === undefined) return undefined;
    let k: KeyObject[] | Error;
    try {
      k = (Array.isArray(pem) ? pem : [pem as string | KeyObject]).map((one) => loadVerifyKey(one));
    } catch (e) {
      k = new Error(`key for party ${JSON.stringify(party)} cannot be loaded: ${(e as Error).message}`);
    }
    keyCache.set(party, k);
    return k;
  };

  const readSeq = (e: unknown): number | undefined =>
    isObj(e) && typeof e.seq === 'number' && Number.isSafeInteger(e.seq) ? e.seq : undefined;
  const readHash = (e: unknown): string | undefined => (isObj(e) && typeof e.hash === 'string' ? e.hash : undefined);
  const allSeqs = entries.map(readSeq);

  let lastTime = -Infinity;
  for (let i = 0; i < entries.length; i++) {
    const raw = entries[i];
    const seq = readSeq(raw);
    const add = (kind: FindingKind, message: string) => findings.push({ index: i, ...(seq !== undefined ? { seq } : {}), kind, message });
    const where = `entry ${i}${seq !== undefined ? ` (seq ${seq})` : ''}`;

    const problem = entryProblem(raw);
    if (problem) add('malformed', `${where} is malformed: ${problem}`);
    if (NON_CANONICAL_LINES.has(raw as object))
      add(
        'malformed',
        `${where} is not written in its canonical encoding (a value, e.g. a number, was re-written in another textual form): the line differs from the bytes that were hashed and signed`,
      );
    const e = raw as Partial<AuditEntry>;

    // Hash and signature (only meaningful on a well-formed entry).
    if (!problem) {
      const entry = raw as AuditEntry;
      let expected: string | null = null;
      try {
        expected = entryHash(entry);
      } catch (err) {
        add('malformed', `${where} cannot be hashed: ${(err as Error).message}`);
      }
      if (expected !== null && expected !== entry.hash) {
        add(
          'bad-hash',
          `${where}: stored hash ${entry.hash.slice(0, 12)}… does not match its content (${expected.slice(0, 12)}…): the entry was altered`,
        );
      }
      const key = getKey(entry.party);
      if (key === undefined) {
        add('unknown-party', `${where} is signed by party ${JSON.stringify(entry.party)}, for which no key or certificate was given`);
      } else if (key instanceof Error) {
        add('unknown-party', `${where}: ${key.message}`);
      } else {
        const ok = key.some((k) => {
          try {
            return verify('sha256', Buffer.from(entry.hash, 'hex'), { key: k, dsaEncoding: 'der' }, Buffer.from(entry.signature, 'base64'));
          } catch {
            return false;
          }
        });
        if (!ok) add('bad-signature', `${where}: signature does not verify under party ${JSON.stringify(entry.party)}'s key`);
      }
      const t = Date.parse(entry.timestamp);
      if (t < lastTime) add('timestamp-regression', `${where}: timestamp ${entry.timestamp} is earlier than the previous entry's`);
      lastTime = Math.max(lastTime, t);
    }

    // Link to the previous entry in file order.
    const expectedPrev = i === 0 ? (options.firstPrevHash ?? GENESIS_HASH) : readHash(entries[i - 1]);
    if (isObj(raw) && typeof e.prevHash === 'string' && expectedPrev !== undefined && e.prevHash !== expectedPrev) {
      add(
        'broken-link',
        i === 0
          ? `${where}: prevHash ${e.prevHash.slice(0, 12)}… is not the chain start ${expectedPrev.slice(0, 12)}…`
          : `${where}: prevHash ${e.prevHash.slice(0, 12)}… does not match entry ${i - 1}'s hash ${expectedPrev.slice(0, 12)}… (an entry was removed, inserted or moved)`,
      );
    }

    // Sequence numbers.
    if (seq !== undefined) {
      const prevSeq = i === 0 ? undefined : allSeqs[i - 1];
      const expectedSeq = i === 0 ? (options.firstSeq ?? 0) : prevSeq !== undefined ? prevSeq + 1 : undefined;
      if (expectedSeq !== undefined && seq !== expectedSeq) {
        const missing: number[] = [];
        for (let s = expectedSeq; s < seq && missing.length < 1000; s++) missing.push(s);
        const missingElsewhere = missing.some((s) => allSeqs.includes(s));
        const seenBefore = allSeqs.slice(0, i).includes(seq);
        if (seq < expectedSeq || missingElsewhere || seenBefore) {
          add(
            'reordered',
            `${where}: seq ${seq} follows seq ${prevSeq ?? '(start)'}; entries are out of order${seenBefore ? ' or duplicated' : ''}`,
          );
        } else {
          const m = seq - expectedSeq;
          add('seq-gap', `${where}: seq jumps from ${expectedSeq - 1} to ${seq}; ${m} entr${m === 1 ? 'y is' : 'ies are'} missing`);
        }
      }
    }
  }
  return findings;
}

/**
 * Parsed entries whose line is not `JSON.stringify` of its content, the one encoding every writer
 * uses: the hash covers parsed values, so `0.001` re-written as `1e-3` would otherwise verify.
 */
const NON_CANONICAL_LINES = new WeakSet<object>();

/**
 * Parses a JSON-lines audit log text into entries; an unparseable line becomes a `{ __unparseable }`
 * placeholder, and a line not in canonical encoding is flagged, both reported by verifyChain.
 */
export function parseChainLines(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null && JSON.stringify(parsed) !== line) NON_CANONICAL_LINES.add(parsed);
      out.push(parsed);
    } catch {
      out.push({ __unparseable: line.length > 80 ? `${line.slice(0, 80)}…` : line });
    }
  }
  return out;
}
