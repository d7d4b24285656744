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
import { X509Certificate, createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** Exact rational as decimal strings (the wire form of proto/task-spec.ts `sigmaSite2`). */
export interface DecimalRational {
  num: string;
  den: string;
}

export interface TaskIssuedEvent {
  type: 'task-issued';
  federationId: string;
  roundId: string;
  taskId: string;
  /** The site the task is addressed to. */
  site: string;
  /** Task kind ('measure', 'keygen', 'decrypt', ...). */
  kind: string;
  /** Hex SHA-256 of the task's spec JSON, so both sides can show they saw the same spec. */
  specSha256: string;
}

export interface TaskAnsweredEvent {
  type: 'task-answered';
  federationId: string;
  roundId: string;
  taskId: string;
  site: string;
  /** Hex SHA-256 of the answer body as sent. */
  answerSha256: string;
}

export interface TaskRefusedEvent {
  type: 'task-refused';
  federationId: string;
  roundId: string;
  taskId: string;
  site: string;
  /** The precise, human-readable reason the site gave. */
  reason: string;
}

export interface MeasurementReleasedEvent {
  type: 'measurement-released';
  federationId: string;
  roundId: string;
  mechanism: 'distributed-discrete-gaussian';
  /** Marginals measured (attribute lists), when the measurement is a set of marginals. */
  marginals?: string[][];
  l2Sensitivity: number;
  l1Sensitivity: number;
  /** Number of cells (length of the released vector). */
  dimension: number;
  /** Exact variance of each site's discrete Gaussian share per cell. */
  sigmaSite2: DecimalRational;
  /** Sites whose contributions are in the released sum. */
  parties: string[];
  /** The quorum the noise was sized for (at most parties.length). */
  quorum: number;
  /** zCDP cost of this release for each contributing site. */
  rho: number;
}

export interface ChargeEvent {
  type: 'charge';
  federationId: string;
  roundId: string;
  taskId: string;
  site: string;
  rho: number;
  /** Mechanism name as charged by the site's ledger. */
  mechanism?: string;
  /** True when appended at start-up to catch the audit log up with the ledger after a crash. */
  recovered?: boolean;
}

export interface ModelFittedEvent {
  type: 'model-fitted';
  federationId: string;
  modelId: string;
  /** Rounds whose measurements the model was fitted to. */
  rounds: string[];
  /** Total zCDP spend per site for this model. */
  rhoBySite: Record<string, number>;
}

export interface CohortEmittedEvent {
  type: 'cohort-emitted';
  federationId: string;
  modelId: string;
  cohortId: string;
  size: number;
  /** Hex SHA-256 of the cohort manifest / report. */
  outputSha256?: string;
}

/** One request to the coordinator's HTTP API: who asked for what (and with which cohort filter). */
export interface ApiRequestEvent {
  type: 'api-request';
  federationId: string;
  /** The API key's name and id, or "anonymous" for a refused request without a valid token. */
  requester: string;
  role?: string;
  method: string;
  path: string;
  status: number;
  /** The cohort filter as the requester wrote it. */
  filter?: string;
  studyId?: string;
  cohortId?: string;
}

export type AuditEvent =
  | TaskIssuedEvent
  | TaskAnsweredEvent
  | TaskRefusedEvent
  | MeasurementReleasedEvent
  | ChargeEvent
  | ModelFittedEvent
  | CohortEmittedEvent
  | ApiRequestEvent;

export type AuditEventType = AuditEvent['type'];

export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'task-issued',
  'task-answered',
  'task-refused',
  'measurement-released',
  'charge',
  'model-fitted',
  'cohort-emitted',
  'api-request',
];

export interface AuditEntry {
  seq: number;
  prevHash: string;
  /** ISO-8601 UTC, e.g. 2025-01-31T12:00:00.000Z. */
  timestamp: string;
  /** Party id (site name, or 'coordinator'); selects the verification key. */
  party: string;
  event: AuditEvent;
  hash: string;
  signature: string;
}

export type FindingKind =
  'malformed' | 'bad-hash' | 'bad-signature' | 'unknown-party' | 'broken-link' | 'seq-gap' | 'reordered' | 'timestamp-regression';

export interface ChainFinding {
  /** Position of the entry in the list given to verifyChain. */
  index: number;
  /** The entry's seq, when it has a readable one. */
  seq?: number;
  kind: FindingKind;
  message: string;
}

// ---------------------------------------------------------------- canonical JSON and hashing

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units, i.e. JS default sort), no whitespace,
 * properties whose value is `undefined` omitted (as JSON.stringify does, so a parsed-back entry
 * hashes the same). Throws on values JSON cannot represent faithfully (non-finite numbers, bigint,
 * functions, symbols) so nothing unhashable gets signed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

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

// ---------------------------------------------------------------- shape validation

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeType(e: unknown): string {
  return isObj(e) && typeof e.type === 'string' ? JSON.stringify(e.type) : 'untyped';
}

const nonEmptyString = (v: unknown) => typeof v === 'string' && v.length > 0;
const hex64 = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const nonNegNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const posInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const decimal = (v: unknown) => typeof v === 'string' && /^[0-9]+$/.test(v);

type Check = [field: string, test: (v: unknown) => boolean, what: string];

const COMMON: Check[] = [['federationId', nonEmptyString, 'a non-empty string']];
const TASK: Check[] = [
  ...COMMON,
  ['roundId', nonEmptyString, 'a non-empty string'],
  ['taskId', nonEmptyString, 'a non-empty string'],
  ['site', nonEmptyString, 'a non-empty string'],
];

const EVENT_CHECKS: Record<AuditEventType, Check[]> = {
  'task-issued': [...TASK, ['kind', nonEmptyString, 'a non-empty string'], ['specSha256', hex64, '64 lowercase hex digits']],
  'task-answered': [...TASK, ['answerSha256', hex64, '64 lowercase hex digits']],
  'task-refused': [...TASK, ['reason', nonEmptyString, 'a non-empty string']],
  'measurement-released': [
    ...COMMON,
    ['roundId', nonEmptyString, 'a non-empty string'],
    ['mechanism', (v) => v === 'distributed-discrete-gaussian', '"distributed-discrete-gaussian"'],
    [
      'marginals',
      (v) => v === undefined || (Array.isArray(v) && v.every((m) => Array.isArray(m) && m.every(nonEmptyString))),
      'a list of attribute lists',
    ],
    ['l2Sensitivity', nonNegNumber, 'a finite number ≥ 0'],
    ['l1Sensitivity', nonNegNumber, 'a finite number ≥ 0'],
    ['dimension', posInt, 'a positive integer'],
    [
      'sigmaSite2',
      (v) => isObj(v) && decimal(v.num) && decimal(v.den) && BigInt(v.den as string) > 0n,
      'a rational {num, den} of decimal strings',
    ],
    ['parties', (v) => Array.isArray(v) && v.length > 0 && v.every(nonEmptyString), 'a non-empty list of party ids'],
    ['quorum', posInt, 'a positive integer'],
    ['rho', nonNegNumber, 'a finite number ≥ 0'],
  ],
  charge: [
    ...TASK,
    ['rho', nonNegNumber, 'a finite number ≥ 0'],
    ['mechanism', (v) => v === undefined || nonEmptyString(v), 'a non-empty string'],
    ['recovered', (v) => v === undefined || typeof v === 'boolean', 'a boolean'],
  ],
  'model-fitted': [
    ...COMMON,
    ['modelId', nonEmptyString, 'a non-empty string'],
    ['rounds', (v) => Array.isArray(v) && v.every(nonEmptyString), 'a list of round ids'],
    ['rhoBySite', (v) => isObj(v) && Object.values(v).every(nonNegNumber), 'an object of site → rho'],
  ],
  'cohort-emitted': [
    ...COMMON,
    ['modelId', nonEmptyString, 'a non-empty string'],
    ['cohortId', nonEmptyString, 'a non-empty string'],
    ['size', (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0, 'an integer ≥ 0'],
    ['outputSha256', (v) => v === undefined || hex64(v), '64 lowercase hex digits'],
  ],
  'api-request': [
    ...COMMON,
    ['requester', nonEmptyString, 'a non-empty string'],
    ['method', nonEmptyString, 'a non-empty string'],
    ['path', nonEmptyString, 'a non-empty string'],
    ['status', (v) => typeof v === 'number' && Number.isInteger(v) && v >= 100 && v < 600, 'an HTTP status'],
  ],
};

/** Why `event` is not a well-formed AuditEvent, or null when it is. */
export function eventProblem(event: unknown): string | null {
  if (!isObj(event)) return 'event must be an object';
  const type = event.type;
  if (typeof type !== 'string' || !(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) {
    return `unknown event type ${JSON.stringify(type)}`;
  }
  for (const [field, test, what] of EVENT_CHECKS[type as AuditEventType]) {
    let ok: boolean;
    try {
      ok = test(event[field]);
    } catch {
      ok = false;
    }
    if (!ok) return `${field} must be ${what}, got ${JSON.stringify(event[field]) ?? 'nothing'}`;
  }
  if (type === 'measurement-released' && (event.quorum as number) > (event.parties as unknown[]).length) {
    return `quorum ${event.quorum} exceeds the ${(event.parties as unknown[]).length} parties listed`;
  }
  try {
    canonicalJson(event);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** Why `entry` is not a well-formed AuditEntry, or null when it is. */
export function entryProblem(entry: unknown): string | null {
  if (!isObj(entry)) return 'entry is not a JSON object';
  if (typeof entry.seq !== 'number' || !Number.isSafeInteger(entry.seq) || entry.seq < 0) return 'seq must be an integer ≥ 0';
  if (!hex64(entry.prevHash)) return 'prevHash must be 64 lowercase hex digits';
  if (typeof entry.timestamp !== 'string' || Number.isNaN(Date.parse(entry.timestamp)) || !/^\d{4}-\d\d-\d\dT/.test(entry.timestamp)) {
    return 'timestamp must be an ISO-8601 date-time';
  }
  if (!nonEmptyString(entry.party)) return 'party must be a non-empty string';
  if (!hex64(entry.hash)) return 'hash must be 64 lowercase hex digits';
  if (typeof entry.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(entry.signature)) return 'signature must be base64';
  // Base64 decoders ignore the unused low bits of the last character, so two strings can carry one
  // signature; only the canonical one is accepted, so that no byte of a log can change unnoticed.
  if (Buffer.from(entry.signature, 'base64').toString('base64') !== entry.signature) return 'signature must be canonical base64';
  const ev = eventProblem(entry.event);
  if (ev) return `event: ${ev}`;
  const extra = Object.keys(entry).filter((k) => !['seq', 'prevHash', 'timestamp', 'party', 'event', 'hash', 'signature'].includes(k));
  if (extra.length) return `unexpected field(s) ${extra.join(', ')}`;
  return null;
}

// ---------------------------------------------------------------- verify

export interface VerifyOptions {
  /** prevHash the first entry must carry (default GENESIS_HASH; pass a checkpoint hash to verify a suffix). */
  firstPrevHash?: string;
  /** seq the first entry must carry (default 0). */
  firstSeq?: number;
}

export type KeysByParty = ReadonlyMap<string, string | KeyObject> | Readonly<Record<string, string | KeyObject>>;

function lookupKey(keys: KeysByParty, party: string): string | KeyObject | undefined {
  if (keys instanceof Map) return keys.get(party);
  const rec = keys as Readonly<Record<string, string | KeyObject>>;
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
  const keyCache = new Map<string, KeyObject | Error>();
  const getKey = (party: string): KeyObject | Error | undefined => {
    if (keyCache.has(party)) return keyCache.get(party);
    const pem = lookupKey(publicKeyOrCertPemByParty, party);
    if (pem === undefined) return undefined;
    let k: KeyObject | Error;
    try {
      k = loadVerifyKey(pem);
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
        let ok = false;
        try {
          ok = verify('sha256', Buffer.from(entry.hash, 'hex'), { key, dsaEncoding: 'der' }, Buffer.from(entry.signature, 'base64'));
        } catch {
          ok = false;
        }
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
