/**
 * The coordinator's SQL seam: one tiny interface, two backends.
 *
 * - Embedded PGlite (PostgreSQL compiled to WASM, in-process) over a data directory: the default.
 * - A real PostgreSQL server through a `pg.Pool` when a URL is configured.
 *
 * Both run the exact same SQL (see migrations.ts / store.ts). The adapters normalise the few
 * result-type differences so callers see the same JS values on both:
 *   int8 -> number, bytea -> Uint8Array (a Buffer on pg, which is a Uint8Array),
 *   timestamptz -> Date, json/jsonb -> parsed value, float8 -> number.
 *
 * Parameter conventions used by the store (they behave identically on both drivers):
 *   - JSON values are passed as `JSON.stringify(...)` strings and cast with `$n::jsonb`
 *     (node-postgres would otherwise turn JS arrays into PostgreSQL arrays).
 *   - Binary values are passed as Uint8Array (converted to Buffer for pg).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { acquireStoreLock, releaseStoreLock } from './store-lock.ts';

/** Names the opening process in the lock file (the command line's fedsynth command). */
const defaultHolder = () => `fedsynth ${process.argv.slice(2, 4).join(' ')}`.trim();

export type Row = Record<string, unknown>;

export interface QueryResult<T> {
  rows: T[];
  /** Rows affected by INSERT/UPDATE/DELETE (0 for plain SELECT on some drivers). */
  rowCount: number;
}

export type Backend = 'pglite' | 'postgres';

export interface SqlClient {
  readonly backend: Backend;
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /**
   * Run `fn` in one transaction (BEGIN … COMMIT, ROLLBACK if `fn` throws; the error is rethrown).
   * On a client that is already a transaction, `fn` runs inside the enclosing transaction
   * (flattened: there is no partial rollback).
   */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Close the underlying database / pool. Calling it on a transaction client throws. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// PGlite

type PgliteLike = Pick<PGlite, 'query'>;

function normaliseParams(params: readonly unknown[] | undefined, forPg: boolean): unknown[] {
  if (!params) return [];
  return params.map((p) => {
    if (p === undefined) return null;
    if (forPg && p instanceof Uint8Array && !Buffer.isBuffer(p)) {
      return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    }
    return p;
  });
}

class PgliteTx implements SqlClient {
  readonly backend = 'pglite' as const;
  constructor(private readonly tx: PgliteLike) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const r = await this.tx.query<T>(sql, normaliseParams(params, false));
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {
    throw new Error('close() called on a transaction client');
  }
}

class PgliteClient implements SqlClient {
  readonly backend = 'pglite' as const;
  constructor(
    readonly db: PGlite,
    /** The data directory's lock file, released on close. */
    private lock?: string,
  ) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const r = await this.db.query<T>(sql, normaliseParams(params, false));
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    // PGlite serialises transactions with its own mutex: only one runs at a time.
    return this.db.transaction((tx) => fn(new PgliteTx(tx)));
  }
  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
    if (this.lock) releaseStoreLock(this.lock);
    this.lock = undefined;
  }
}

export interface PgliteOpenOptions {
  /** Data directory (created if missing), or `memory://` for an in-memory database. */
  dir: string;
  /**
   * A tarball made by `PGlite.dumpDataDir()` used to initialise a data directory that does not
   * hold a database yet. Skips initdb (~5–8 s on a first open). Ignored if the directory
   * already holds a database.
   */
  initFrom?: Blob | Uint8Array;
  /** Who opens it, written in the directory's lock file for the error another opener gets. */
  holder?: string;
}

const BYTEA_OID = 17;

/**
 * bytea to and from PostgreSQL's hex text form with Buffer's native hex codec. PGlite's own maps
 * every byte through a string of its own (about 0.18 s of CPU per 400 kB ciphertext stored, 5×
 * this), and the coordinator stores several such blobs per round. Same text, same bytes.
 */
const PGLITE_BYTEA_CODEC = {
  serializers: {
    [BYTEA_OID]: (x: unknown): string => {
      if (!(x instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
      return '\\x' + Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');
    },
  },
  parsers: {
    // A plain Uint8Array (a copy, not a view of Buffer's shared pool), as PGlite's own parser gives.
    [BYTEA_OID]: (text: string): Uint8Array => new Uint8Array(Buffer.from(text.slice(2), 'hex')),
  },
};

function pgliteDirHasDatabase(dir: string): boolean {
  if (dir.startsWith('memory://')) return false;
  return fs.existsSync(path.join(dir, 'PG_VERSION'));
}

export async function openPglite(opts: PgliteOpenOptions): Promise<SqlClient> {
  const { dir } = opts;
  let lock: string | undefined;
  if (!dir.startsWith('memory://')) {
    fs.mkdirSync(dir, { recursive: true });
    lock = acquireStoreLock(dir, opts.holder ?? defaultHolder());
  }
  try {
    let loadDataDir: Blob | undefined;
    if (opts.initFrom && !pgliteDirHasDatabase(dir)) {
      loadDataDir = opts.initFrom instanceof Blob ? opts.initFrom : new Blob([opts.initFrom]);
    }
    const db = await PGlite.create(dir, { ...(loadDataDir ? { loadDataDir } : {}), ...PGLITE_BYTEA_CODEC });
    return new PgliteClient(db, lock);
  } catch (err) {
    if (lock) releaseStoreLock(lock);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// node-postgres

const PG_INT8 = 20;
const pgTypes = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    // int8 as a JS number, like PGlite (our counters stay far below 2^53).
    if (oid === PG_INT8) return (v: string) => Number(v);
    return (pg.types.getTypeParser as (oid: number, format?: string) => (v: string) => unknown)(oid, format);
  },
};

class PgTx implements SqlClient {
  readonly backend = 'postgres' as const;
  constructor(private readonly client: pg.PoolClient) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const r = await this.client.query(sql, normaliseParams(params, true));
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {
    throw new Error('close() called on a transaction client');
  }
}

class PgPoolClient implements SqlClient {
  readonly backend = 'postgres' as const;
  private closed = false;
  constructor(readonly pool: pg.Pool) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const r = await this.pool.query(sql, normaliseParams(params, true));
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }
  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    // Every statement of the transaction runs on the same pooled connection.
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(new PgTx(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error; // connection is unusable: destroy it instead of reusing
        }
        throw err;
      }
    } finally {
      client.release(broken ?? undefined);
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

export interface PostgresOpenOptions {
  url: string;
  /**
   * Use this schema (created if missing) instead of the server's default search_path. Every
   * pooled connection gets `search_path=<schema>` as a startup option.
   */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name: ${JSON.stringify(schema)}`);
}

export async function openPostgres(opts: PostgresOpenOptions): Promise<SqlClient> {
  const base: pg.PoolConfig = {
    connectionString: opts.url,
    max: opts.max ?? 10,
    types: pgTypes,
    connectionTimeoutMillis: 10_000,
  };
  if (opts.schema !== undefined) {
    assertSchemaName(opts.schema);
    const admin = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: 10_000 });
    await admin.connect();
    try {
      try {
        await admin.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema}"`);
      } catch (err) {
        // Two openers racing on IF NOT EXISTS can collide on the catalog's unique index; the
        // schema then exists, which is all we need.
        const { rows } = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [opts.schema]);
        if (rows.length === 0) throw err;
      }
    } finally {
      await admin.end();
    }
    base.options = `-c search_path=${opts.schema}`;
  }
  const pool = new pg.Pool(base);
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // Fail fast (and loudly) if the server is unreachable.
  try {
    const probe = await pool.connect();
    probe.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return new PgPoolClient(pool);
}
