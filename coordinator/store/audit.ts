// The coordinator's audit log: append-only, hash-chained and signed. Each row is a
// privacy/audit-log/chain.ts entry signed with the coordinator's certificate key; appends are
// serialised per federation, and `exportAudit` gives the exact chain an auditor verifies.
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  appendEntry,
  parseChainLines,
  verifyChain,
  type AuditEntry,
  type AuditEvent,
  type KeysByParty,
} from '../../privacy/audit-log/chain.ts';
import { LOCK_SQL } from './migrations.ts';
import { toAudit } from './rows.ts';
import type { SqlClient } from './sql.ts';
import type { AuditVerification } from './types.ts';

export interface AuditKey {
  party: string;
  key: KeyObject;
}

const GENESIS = '0'.repeat(64);

/** Signs and appends an event to the federation's chain (serialised: concurrent appends stay linear). */
export function appendAudit(sql: SqlClient, federationId: string, event: AuditEvent, signer: AuditKey): Promise<AuditEntry> {
  return sql.transaction((tx) => appendAuditTx(tx, federationId, event, signer));
}

/** Appends inside the caller's transaction, so the entry commits (or rolls back) with its cause. */
export async function appendAuditTx(tx: SqlClient, federationId: string, event: AuditEvent, signer: AuditKey): Promise<AuditEntry> {
  // Serialise appends per federation (and schema): concurrent appenders queue here.
  await tx.query(LOCK_SQL, [`fedsynth.audit:${federationId}`]);
  const head = await tx.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq DESC LIMIT 1', [federationId]);
  const tail = head.rows.length ? toAudit(head.rows[0]) : null;
  // Timestamps never go backwards within the chain, even if the wall clock does.
  let now = new Date();
  if (tail && Date.parse(tail.timestamp) > now.getTime()) now = new Date(tail.timestamp);
  // appendEntry validates the event's shape and throws before anything is written.
  const entry = appendEntry(tail, event, signer.party, signer.key, now);
  const text = JSON.stringify(entry);
  await tx.query(
    `INSERT INTO audit_log (federation_id, seq, prev_hash, hash, party, event_type, entry_text)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [federationId, entry.seq, entry.prevHash, entry.hash, entry.party, entry.event.type, text],
  );
  return entry;
}

/** The latest entry's seq and hash (what sites countersign each round), or null for an empty chain. */
export async function auditHead(sql: SqlClient, federationId: string): Promise<{ seq: number; hash: string } | null> {
  const { rows } = await sql.query('SELECT seq, hash FROM audit_log WHERE federation_id = $1 ORDER BY seq DESC LIMIT 1', [federationId]);
  return rows.length ? { seq: Number(rows[0].seq), hash: String(rows[0].hash) } : null;
}

export async function listAudit(sql: SqlClient, federationId: string): Promise<AuditEntry[]> {
  const { rows } = await sql.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq', [federationId]);
  return rows.map(toAudit);
}

/** The federation's log as JSON lines, exactly as signed (what `fedsynth audit export` writes). */
export async function exportAudit(sql: SqlClient, federationId: string): Promise<string> {
  const { rows } = await sql.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 ORDER BY seq', [federationId]);
  return rows.map((r) => `${String(r.entry_text)}\n`).join('');
}

/**
 * Verifies the stored chain with privacy/audit-log/chain.ts `verifyChain`: hashes, links, seq and
 * signatures, under `keys` or else the signer's public key (signatures are not checked when
 * neither is given).
 */
export async function verifyAuditChain(
  sql: SqlClient,
  federationId: string,
  keys: KeysByParty | undefined,
  signer: AuditKey | null,
): Promise<AuditVerification> {
  const entries = parseChainLines(await exportAudit(sql, federationId));
  const k: KeysByParty | null = keys ?? (signer ? new Map([[signer.party, createPublicKey(signer.key)]]) : null);
  // Without any key (a store opened only to inspect), hashes, links and seq are still checked;
  // signatures are then left to `fedsynth audit verify`, which checks them against the CA.
  const findings = k ? verifyChain(entries, k) : verifyChain(entries, new Map()).filter((f) => f.kind !== 'unknown-party');
  if (findings.length === 0) {
    const last = entries[entries.length - 1] as AuditEntry | undefined;
    return { ok: true, length: entries.length, head: last?.hash ?? GENESIS };
  }
  const f = findings[0];
  return { ok: false, length: entries.length, badSeq: f.seq ?? f.index, reason: f.message, findings };
}
