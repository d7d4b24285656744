// The coordinator's side of the audit trail: the events it writes (signed by the store with the
// coordinator's certificate key, see store.setAuditSigner) and the export an auditor verifies
// with `fedsynth audit verify`.
import { canonicalJson, sha256Hex, type TaskIssuedEvent } from '../privacy/audit-log/chain.ts';
import type { Store } from './store/index.ts';

/** What the site receives as spec_json for a task (the measure spec without the coordinator's plan). */
export function wireTaskSpec(t: { kind: string; spec: unknown }): unknown {
  const spec = t.spec;
  return t.kind === 'measure' && typeof spec === 'object' && spec !== null && 'measure' in spec && spec.measure ? spec.measure : spec;
}

/** SHA-256 of the canonical JSON of the spec the site receives: both sides can show they saw the same spec. */
export function taskSpecSha256(t: { kind: string; spec: unknown }): string {
  return sha256Hex(canonicalJson(wireTaskSpec(t)));
}

export function taskIssuedEvent(t: {
  federationId: string;
  roundId: string;
  taskId: string;
  siteId: string;
  kind: string;
  spec: unknown;
}): TaskIssuedEvent {
  return {
    type: 'task-issued',
    federationId: t.federationId,
    roundId: t.roundId,
    taskId: t.taskId,
    site: t.siteId,
    kind: t.kind,
    specSha256: taskSpecSha256(t),
  };
}

/** The federation's signed audit log as JSON lines (one privacy/audit-log/chain.ts entry per line). */
export async function exportAuditLog(store: Store, federationId: string): Promise<string> {
  return store.exportAudit(federationId);
}
