// Federations, their sites and the decryption committee's public keys.
import { bytesEqual, insertOnce } from './idempotent.ts';
import { json, toCommitteeKey, toFederation, toSite } from './rows.ts';
import type { SqlClient } from './sql.ts';
import { StoreError, type CommitteeKey, type CommitteeKeyInput, type Federation, type PutResult, type Site } from './types.ts';

/**
 * Create the federation, or update its config. The public schema of an existing federation
 * cannot change (DP guarantees depend on it): a different schema hash is a conflict.
 */
export function upsertFederation(
  sql: SqlClient,
  f: { id: string; schemaHash: string; schema: unknown; config?: unknown },
): Promise<Federation> {
  return sql.transaction(async (tx) => {
    const existing = await tx.query('SELECT * FROM federations WHERE id = $1 FOR UPDATE', [f.id]);
    if (existing.rows.length === 0) {
      const { rows } = await tx.query(
        `INSERT INTO federations (id, schema_hash, schema_json, config_json)
         VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING *`,
        [f.id, f.schemaHash, json(f.schema), json(f.config ?? {})],
      );
      return toFederation(rows[0]);
    }
    const cur = toFederation(existing.rows[0]);
    if (cur.schemaHash !== f.schemaHash) {
      throw new StoreError('conflict', `federation ${f.id} already exists with schema hash ${cur.schemaHash}, not ${f.schemaHash}`);
    }
    if (f.config === undefined) return cur;
    const { rows } = await tx.query('UPDATE federations SET config_json = $2::jsonb WHERE id = $1 RETURNING *', [f.id, json(f.config)]);
    return toFederation(rows[0]);
  });
}

export async function getFederation(sql: SqlClient, id: string): Promise<Federation | null> {
  const { rows } = await sql.query('SELECT * FROM federations WHERE id = $1', [id]);
  return rows.length ? toFederation(rows[0]) : null;
}

/** Idempotent: re-registering updates last_seen_at / agent_version. */
export async function registerSite(
  sql: SqlClient,
  federationId: string,
  siteId: string,
  agentVersion?: string | null,
): Promise<{ site: Site; created: boolean }> {
  const { rows } = await sql.query(
    `INSERT INTO sites (federation_id, site_id, agent_version) VALUES ($1, $2, $3)
     ON CONFLICT (federation_id, site_id) DO UPDATE
       SET last_seen_at = now(), agent_version = COALESCE(EXCLUDED.agent_version, sites.agent_version)
     RETURNING *, (xmax = 0) AS inserted`,
    [federationId, siteId, agentVersion ?? null],
  );
  return { site: toSite(rows[0]), created: rows[0].inserted === true };
}

export async function touchSite(sql: SqlClient, federationId: string, siteId: string, agentVersion?: string): Promise<void> {
  const r = await sql.query(
    `UPDATE sites SET last_seen_at = now(), agent_version = COALESCE($3, agent_version)
     WHERE federation_id = $1 AND site_id = $2`,
    [federationId, siteId, agentVersion ?? null],
  );
  if (r.rowCount === 0) throw new StoreError('not_found', `unknown site ${siteId} in federation ${federationId}`);
}

export async function listSites(sql: SqlClient, federationId: string): Promise<Site[]> {
  const { rows } = await sql.query('SELECT * FROM sites WHERE federation_id = $1 ORDER BY site_id', [federationId]);
  return rows.map(toSite);
}

/** Idempotent if identical; a different key (or point) for the same member is a conflict. */
export function putCommitteeKey(sql: SqlClient, k: CommitteeKeyInput): Promise<PutResult> {
  return sql.transaction((tx) =>
    insertOnce(tx, {
      insert: [
        `INSERT INTO committee_keys (federation_id, member_id, point, public_key, signature, certificate_pem)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING member_id`,
        [k.federationId, k.memberId, k.point, k.publicKey, k.signature, k.certificatePem],
      ],
      stored: ['SELECT * FROM committee_keys WHERE federation_id = $1 AND member_id = $2', [k.federationId, k.memberId]],
      toRow: toCommitteeKey,
      same: (cur) =>
        cur.point === k.point &&
        bytesEqual(cur.publicKey, k.publicKey) &&
        bytesEqual(cur.signature, k.signature) &&
        cur.certificatePem === k.certificatePem,
      conflict: `a different committee key is already stored for member ${k.memberId}`,
      otherKey: `committee point ${k.point} is already taken by another member`,
    }),
  );
}

export async function listCommitteeKeys(sql: SqlClient, federationId: string): Promise<CommitteeKey[]> {
  const { rows } = await sql.query('SELECT * FROM committee_keys WHERE federation_id = $1 ORDER BY point', [federationId]);
  return rows.map(toCommitteeKey);
}
