// The audit events and the shape of a chain entry: the types every party writes, and the checks
// that reject a malformed event before it is signed or when it is read back. Pure.
import { canonicalJson } from './canonical.ts';
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
  /** The fit the task belongs to (`<federation>/<study>` under `fedsynth serve`) when it is not the federation itself. */
  fitId?: string;
  /** A canary audit: how many of the auditor's canary rows the site added to this answer's counts. */
  canaryRows?: number;
}

export interface TaskRefusedEvent {
  type: 'task-refused';
  federationId: string;
  roundId: string;
  taskId: string;
  site: string;
  /** The precise, human-readable reason the site gave. */
  reason: string;
  /** The fit the task belongs to (`<federation>/<study>` under `fedsynth serve`) when it is not the federation itself. */
  fitId?: string;
}

/**
 * A site's answer to a preflight task ("can you afford this plan?"): a non-spending event, so an
 * auditor sees what the site told the coordinator before any budget was spent.
 */
export interface PreflightAnsweredEvent {
  type: 'preflight-answered';
  federationId: string;
  roundId: string;
  taskId: string;
  site: string;
  /** ρ the plan would charge the site at most, and ρ the site had left when it answered. */
  neededRho: number;
  remainingRho: number;
  /** Whether the site will contribute to every round, and (a committee member) decrypt. */
  contribute: boolean;
  decrypt?: boolean;
  /** Why not, when it will not. */
  reason?: string;
}

export interface MeasurementReleasedEvent {
  type: 'measurement-released';
  federationId: string;
  roundId: string;
  /**
   * The sum of the sites' shares under threshold HE, or (score-histogram-discrete-gaussian) each
   * site's own membership-inference histogram, released alone: quorum 1, one cell per patient.
   */
  mechanism: 'distributed-discrete-gaussian' | 'score-histogram-discrete-gaussian';
  /** Marginals measured (attribute lists), when the measurement is a set of marginals. */
  marginals?: string[][];
  /**
   * The round's value map, when its sites recoded rows before counting (declared band queries,
   * rare-value compression): per attribute, the code of each value. `dimension` counts the
   * recoded cells; the sensitivity is that of the marginals either way.
   */
  valueMap?: Record<string, number[]>;
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
  /** The fit the task belongs to (`<federation>/<study>` under `fedsynth serve`) when it is not the federation itself. */
  fitId?: string;
  /** The coordinator chain's head the task carried: a site's countersignature of it. */
  coordinatorHead?: { seq: number; hash: string };
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
  | PreflightAnsweredEvent
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
  'preflight-answered',
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

// ---------------------------------------------------------------- shape validation

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describeType(e: unknown): string {
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
  ['fitId', (v) => v === undefined || nonEmptyString(v), 'a non-empty string'],
];

const EVENT_CHECKS: Record<AuditEventType, Check[]> = {
  'task-issued': [...TASK, ['kind', nonEmptyString, 'a non-empty string'], ['specSha256', hex64, '64 lowercase hex digits']],
  'task-answered': [
    ...TASK,
    ['answerSha256', hex64, '64 lowercase hex digits'],
    ['canaryRows', (v) => v === undefined || posInt(v), 'a positive integer'],
  ],
  'task-refused': [...TASK, ['reason', nonEmptyString, 'a non-empty string']],
  'preflight-answered': [
    ...TASK,
    ['neededRho', nonNegNumber, 'a finite number ≥ 0'],
    ['remainingRho', nonNegNumber, 'a finite number ≥ 0'],
    ['contribute', (v) => typeof v === 'boolean', 'a boolean'],
    ['decrypt', (v) => v === undefined || typeof v === 'boolean', 'a boolean'],
    ['reason', (v) => v === undefined || nonEmptyString(v), 'a non-empty string'],
  ],
  'measurement-released': [
    ...COMMON,
    ['roundId', nonEmptyString, 'a non-empty string'],
    [
      'mechanism',
      (v) => v === 'distributed-discrete-gaussian' || v === 'score-histogram-discrete-gaussian',
      '"distributed-discrete-gaussian" or "score-histogram-discrete-gaussian"',
    ],
    [
      'marginals',
      (v) => v === undefined || (Array.isArray(v) && v.every((m) => Array.isArray(m) && m.every(nonEmptyString))),
      'a list of attribute lists',
    ],
    [
      'valueMap',
      (v) =>
        v === undefined ||
        (isObj(v) &&
          Object.values(v).every((c) => Array.isArray(c) && c.length > 0 && c.every((x) => Number.isSafeInteger(x) && (x as number) >= 0))),
      'an object {attribute: [code per value]}',
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
    [
      'coordinatorHead',
      (v) => v === undefined || (isObj(v) && Number.isSafeInteger(v.seq) && (v.seq as number) >= 0 && hex64(v.hash)),
      '{seq, hash} of the coordinator chain',
    ],
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
