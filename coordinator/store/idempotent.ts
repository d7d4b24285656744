// Idempotent insert, written once: a retried write (a site resending after a lost response) must
// succeed without writing twice, and a *different* value under the same key must fail and change
// nothing. Insert first, so concurrent writers of the same key serialise on the unique index.
import type { Row, SqlClient } from './sql.ts';
import { StoreError, type PutResult } from './types.ts';

export interface InsertOnce<T> {
  /** `INSERT … ON CONFLICT DO NOTHING RETURNING <any column>` and its parameters. */
  insert: readonly [sql: string, params: unknown[]];
  /** `SELECT *` of the stored row under the same key, and its parameters. */
  stored: readonly [sql: string, params: unknown[]];
  toRow: (r: Row) => T;
  /** Whether the stored row holds exactly the value being written. */
  same: (stored: T) => boolean;
  /** Error message when the stored value differs. */
  conflict: string;
  /** Error message when the insert hit another unique key than `stored` selects by (none found). */
  otherKey?: string;
}

/** Runs inside the caller's transaction; a conflict throws, so the caller's other writes roll back. */
export async function insertOnce<T>(tx: SqlClient, o: InsertOnce<T>): Promise<PutResult> {
  const ins = await tx.query(o.insert[0], o.insert[1]);
  if (ins.rows.length === 1) return { duplicate: false };
  const { rows } = await tx.query(o.stored[0], o.stored[1]);
  if (rows.length === 0) throw new StoreError('conflict', o.otherKey ?? o.conflict);
  if (!o.same(o.toRow(rows[0]))) throw new StoreError('conflict', o.conflict);
  return { duplicate: true };
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
