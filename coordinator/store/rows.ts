// Row mapping, written once: each table's mapper is a declaration of which column feeds which
// field through which conversion. Column names default to the field name in snake_case.
import type { AuditEntry } from '../../privacy/audit-log/chain.ts';
import type { Row } from './sql.ts';
import type {
  Aggregate,
  Charge,
  Cohort,
  CommitteeKey,
  Federation,
  Measurement,
  Model,
  Partial,
  Round,
  RoundKind,
  RoundState,
  Site,
  SiteSpend,
  Submission,
  Task,
  TaskState,
} from './types.ts';

type Conv<V> = (v: unknown) => V;

// Conversions of column values as both drivers return them (sql.ts: bytea → Uint8Array,
// jsonb → parsed value, timestamptz → Date).
const str: Conv<string> = (v) => String(v);
const strOrNull: Conv<string | null> = (v) => (v == null ? null : String(v));
const num: Conv<number> = (v) => Number(v);
const date: Conv<Date> = (v) => (v instanceof Date ? v : new Date(v as string));
const dateOrNull: Conv<Date | null> = (v) => (v == null ? null : date(v));
const bytes: Conv<Uint8Array> = (v) => v as Uint8Array;
const bytesOrNull: Conv<Uint8Array | null> = (v) => (v == null ? null : bytes(v));
/** A column whose values are restricted to V by a CHECK constraint (text enums) or by the one writer (jsonb). */
const checked =
  <V>(): Conv<V> =>
  (v) =>
    v as V;
const raw: Conv<unknown> = (v) => v;

type FieldSpec<V> = Conv<V> | readonly [column: string, conv: Conv<V>];

/** Builds a mapper from a field → conversion (or [column, conversion]) declaration. */
export function rowMapper<T>(spec: { [K in keyof T]-?: FieldSpec<T[K]> }): (r: Row) => T {
  const fields = Object.entries(spec as Record<string, FieldSpec<unknown>>).map(([field, s]) =>
    typeof s === 'function' ? { field, column: snakeCase(field), conv: s } : { field, column: s[0], conv: s[1] },
  );
  return (r) => {
    const out: Record<string, unknown> = {};
    for (const f of fields) out[f.field] = f.conv(r[f.column]);
    return out as T;
  };
}

function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Parameter for a jsonb column (`$n::jsonb`); undefined is stored as JSON null. */
export const json = (v: unknown): string => JSON.stringify(v ?? null);

export const toFederation = rowMapper<Federation>({
  id: str,
  schemaHash: str,
  schema: ['schema_json', raw],
  config: ['config_json', raw],
  createdAt: date,
});

export const toSite = rowMapper<Site>({
  federationId: str,
  siteId: str,
  registeredAt: date,
  lastSeenAt: date,
  agentVersion: strOrNull,
});

export const toCommitteeKey = rowMapper<CommitteeKey>({
  federationId: str,
  memberId: str,
  point: num,
  publicKey: bytes,
  signature: bytes,
  certificatePem: str,
  createdAt: date,
});

export const toRound = rowMapper<Round>({
  federationId: str,
  roundId: str,
  seq: num,
  kind: checked<RoundKind>(),
  spec: ['spec_json', raw],
  state: checked<RoundState>(),
  quorum: num,
  deadlineAt: date,
  createdAt: date,
  closedAt: dateOrNull,
  failureReason: strOrNull,
});

export const toTask = rowMapper<Task>({
  federationId: str,
  taskId: str,
  roundId: str,
  siteId: str,
  kind: str,
  spec: ['spec_json', raw],
  payload: bytesOrNull,
  payloadSha256: ['payload_sha256', strOrNull],
  state: checked<TaskState>(),
  createdAt: date,
  deliveredAt: dateOrNull,
  doneAt: dateOrNull,
  refusalReason: strOrNull,
});

export const toSubmission = rowMapper<Submission>({
  federationId: str,
  taskId: str,
  roundId: str,
  siteId: str,
  kind: str,
  bodySha256: ['body_sha256', str],
  bodyBytes: num,
  body: bytes,
  receivedAt: date,
});

export const toAggregate = rowMapper<Aggregate>({
  federationId: str,
  roundId: str,
  memberId: str,
  point: num,
  length: num,
  contributors: checked<string[]>(),
  ciphertexts: bytes,
  createdAt: date,
});

export const toPartial = rowMapper<Partial>({
  federationId: str,
  roundId: str,
  memberId: str,
  point: num,
  share: bytes,
  createdAt: date,
});

export const toMeasurement = rowMapper<Measurement>({
  federationId: str,
  roundId: str,
  seq: num,
  attrs: checked<string[]>(),
  values: ['values_json', checked<number[]>()],
  sigmaTotal: num,
  coarsen: ['coarsen_json', checked<Record<string, number[]> | null>()],
  releasedAt: date,
});

export const toCharge = rowMapper<Charge>({
  federationId: str,
  roundId: str,
  siteId: str,
  rho: num,
  mechanism: raw,
  recordedAt: date,
});

export const toSiteSpend = rowMapper<SiteSpend>({ siteId: str, rho: num, rounds: num });

export const toModel = rowMapper<Model>({
  id: str,
  federationId: str,
  rhoTotal: num,
  model: ['model_json', raw],
  createdAt: date,
});

export const toCohort = rowMapper<Cohort>({
  id: str,
  federationId: str,
  modelId: str,
  n: num,
  seed: str,
  where: ['where_json', raw],
  outDir: str,
  report: ['report_json', raw],
  createdAt: date,
});

/** Audit rows keep the entry exactly as signed; the typed columns are for queries only. */
export function toAudit(r: Row): AuditEntry {
  return JSON.parse(String(r.entry_text)) as AuditEntry;
}
