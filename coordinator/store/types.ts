// The store's public types: what each table holds, as the rest of the coordinator sees it, and
// the one error class the store raises on purpose.
import type { ChainFinding } from '../../privacy/audit-log/chain.ts';

// ---------------------------------------------------------------------------------------------
// Errors

export type StoreErrorCode = 'not_found' | 'conflict' | 'invalid_state' | 'forbidden' | 'invalid';

/** Errors the store raises on purpose; `code` lets the gRPC layer map them to status codes. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

// ---------------------------------------------------------------------------------------------
// Types

export type RoundKind = 'preflight' | 'keygen' | 'measure' | 'decrypt' | 'mia-histogram';
export type RoundState = 'open' | 'closed' | 'decrypting' | 'released' | 'failed';
export type TaskState = 'pending' | 'delivered' | 'done' | 'refused' | 'expired';

export interface Federation {
  id: string;
  schemaHash: string;
  schema: unknown;
  config: unknown;
  createdAt: Date;
}

export interface Site {
  federationId: string;
  siteId: string;
  registeredAt: Date;
  lastSeenAt: Date;
  agentVersion: string | null;
}

export interface CommitteeKeyInput {
  federationId: string;
  memberId: string;
  /** Shamir evaluation point of this member (1-based, unique per federation). */
  point: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
  certificatePem: string;
}
export interface CommitteeKey extends CommitteeKeyInput {
  createdAt: Date;
}

export interface RoundInput {
  federationId: string;
  roundId: string;
  kind: RoundKind;
  spec: unknown;
  quorum: number;
  deadlineAt: Date;
}
export interface Round extends RoundInput {
  seq: number;
  state: RoundState;
  createdAt: Date;
  closedAt: Date | null;
  failureReason: string | null;
}

/** A task's state without its spec or payload (what a waiting round polls). */
export interface TaskStatus {
  taskId: string;
  siteId: string;
  state: TaskState;
}
export interface TaskInput {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  spec: unknown;
  payload?: Uint8Array | null;
}
export interface Task {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  spec: unknown;
  payload: Uint8Array | null;
  payloadSha256: string | null;
  state: TaskState;
  createdAt: Date;
  deliveredAt: Date | null;
  doneAt: Date | null;
  refusalReason: string | null;
}

export interface SubmissionInput {
  federationId: string;
  taskId: string;
  /** The authenticated site (from its client certificate); must own the task. */
  siteId: string;
  /** Ciphertext bytes only. Never a site's plaintext statistics. */
  body: Uint8Array;
}
export interface Submission {
  federationId: string;
  taskId: string;
  roundId: string;
  siteId: string;
  kind: string;
  bodySha256: string;
  bodyBytes: number;
  body: Uint8Array;
  receivedAt: Date;
}
export interface PutResult {
  duplicate: boolean;
}

export interface AggregateInput {
  federationId: string;
  roundId: string;
  memberId: string;
  point: number;
  length: number;
  /** Site ids whose submissions are summed in these ciphertexts. */
  contributors: string[];
  ciphertexts: Uint8Array;
}
export interface Aggregate extends AggregateInput {
  createdAt: Date;
}

export interface PartialInput {
  federationId: string;
  roundId: string;
  memberId: string;
  point: number;
  share: Uint8Array;
}
export interface Partial extends PartialInput {
  createdAt: Date;
}

export interface MeasurementInput {
  /** Position within the round; defaults to index + 1. */
  seq?: number;
  attrs: string[];
  /** The noised totals (post-DP, safe to store and release). */
  values: number[];
  sigmaTotal: number;
  /** A band query: per coarsened attribute, the measured code of each value (model/measurement.ts). */
  coarsen?: Record<string, number[]>;
}
export interface Measurement {
  federationId: string;
  roundId: string;
  seq: number;
  attrs: string[];
  values: number[];
  sigmaTotal: number;
  /** A band query's coarsening (model/measurement.ts `coarsen`); null for a marginal. */
  coarsen: Record<string, number[]> | null;
  releasedAt: Date;
}

export interface ChargeInput {
  siteId: string;
  rho: number;
  /** Mechanism description for the auditor: distribution, sensitivity, σ, … */
  mechanism: unknown;
}
export interface Charge extends ChargeInput {
  federationId: string;
  roundId: string;
  recordedAt: Date;
}
export interface SiteSpend {
  siteId: string;
  rho: number;
  rounds: number;
}

export interface ModelInput {
  id: string;
  federationId: string;
  rhoTotal: number;
  model: unknown;
}
export interface Model extends ModelInput {
  createdAt: Date;
}

export interface CohortInput {
  id: string;
  federationId: string;
  modelId: string;
  n: number;
  seed: string;
  where: unknown;
  outDir: string;
  report: unknown;
}
export interface Cohort extends CohortInput {
  createdAt: Date;
}

export type { AuditEntry, AuditEvent } from '../../privacy/audit-log/chain.ts';
export type AuditVerification =
  { ok: true; length: number; head: string } | { ok: false; length: number; badSeq: number; reason: string; findings: ChainFinding[] };

/** Who signs the coordinator's audit entries: its party id and certificate key. */
export interface AuditSigner {
  party: string;
  privateKeyPem: string;
}

/** The party id of the coordinator in audit logs. */
export const COORDINATOR_PARTY = 'coordinator';

/** Allowed round transitions. `released` and `failed` are final. */
export const ROUND_TRANSITIONS: Readonly<Record<RoundState, readonly RoundState[]>> = {
  open: ['closed', 'failed'],
  closed: ['decrypting', 'released', 'failed'],
  decrypting: ['released', 'failed'],
  released: [],
  failed: [],
};

// ---------------------------------------------------------------------------------------------
// Row mapping
