// The revocation list the coordinator holds: the highest it accepted, one per federation.
import type { SqlClient } from './sql.ts';

export interface HeldRevocationList {
  /** Decimal cRLNumber, or '' for an unnumbered list. */
  crlNumber: string;
  sha256: string;
  pem: string;
}

export async function heldRevocationList(sql: SqlClient, federationId: string): Promise<HeldRevocationList | null> {
  const { rows } = await sql.query('SELECT crl_number, sha256, pem FROM revocation_lists WHERE federation_id = $1', [federationId]);
  if (!rows.length) return null;
  const r = rows[0] as { crl_number: string; sha256: string; pem: string };
  return { crlNumber: r.crl_number, sha256: r.sha256, pem: r.pem };
}

/** Replaces the held list; the caller (proto/revocation.ts) has checked it is newer. */
export async function keepRevocationList(sql: SqlClient, federationId: string, list: HeldRevocationList): Promise<void> {
  await sql.query(
    `INSERT INTO revocation_lists (federation_id, crl_number, sha256, pem) VALUES ($1, $2, $3, $4)
     ON CONFLICT (federation_id) DO UPDATE
       SET crl_number = EXCLUDED.crl_number, sha256 = EXCLUDED.sha256, pem = EXCLUDED.pem, accepted_at = now()`,
    [federationId, list.crlNumber, list.sha256, list.pem],
  );
}
