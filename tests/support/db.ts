/**
 * Test databases for the coordinator store, on both backends.
 *
 * PGlite: a brand-new data directory costs ~5–8 s of initdb, so the first caller on the machine
 * creates ONE blank data dir, dumps it to a gzip tarball under the OS temp folder (guarded by a
 * lock directory so parallel vitest workers do it once). From that tarball it also makes ONE
 * migrated data directory (the store's migrations run on it, once per machine and migration set),
 * and every test database on disk is then a plain copy of that directory: ~0.4 s of CPU, where
 * loading the tarball and migrating cost 2–3 s per database (measured), and the suite opens
 * about a hundred. In-memory databases (`memory://`) still load the tarball and migrate.
 *
 * PostgreSQL: the server at FEDSYNTH_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test)
 * is part of this machine's test setup; each test database is a fresh schema
 * `fedsynth_test_<random>`, dropped on dispose. If the server is unreachable, opening throws: the
 * tests FAIL, they never skip.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { MIGRATIONS, openStore, STORE_LOCK_FILE, type Store } from '../../coordinator/store/index.ts';

export const TEST_PG_URL = process.env.FEDSYNTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const CACHE_DIR = path.join(os.tmpdir(), 'fedsynth-test-cache');

function pgliteVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve('@electric-sql/pglite'));
    for (let i = 0; i < 5; i++) {
      const p = path.join(dir, 'package.json');
      if (fs.existsSync(p)) {
        const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
      }
      dir = path.dirname(dir);
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let snapshotPromise: Promise<Uint8Array> | undefined;

/** The blank PGlite data-dir tarball (created once per machine and PGlite version). */
export function pgliteSnapshot(): Promise<Uint8Array> {
  snapshotPromise ??= loadOrCreateSnapshot();
  return snapshotPromise;
}

/**
 * Makes `target` (a file or directory in CACHE_DIR) once per machine: the first caller runs `build`
 * under a lock directory, so parallel vitest workers do it once; `build` writes elsewhere and
 * renames into place, so a caller never sees a half-made `target`.
 */
async function buildOnce(target: string, build: () => Promise<void>): Promise<void> {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const lock = `${target}.lock`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (fs.existsSync(target)) return;
    try {
      fs.mkdirSync(lock); // atomic: we own the lock
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Someone else is building it. Break a stale lock (a crashed worker) after 60 s.
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 60_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        // lock vanished meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for PGlite snapshot lock ${lock}`, { cause: err });
      await sleep(200);
      continue;
    }
    try {
      if (fs.existsSync(target)) continue;
      await build();
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

async function loadOrCreateSnapshot(): Promise<Uint8Array> {
  const file = path.join(CACHE_DIR, `pglite-${pgliteVersion()}-blank.tar.gz`);
  await buildOnce(file, async () => {
    const dir = fs.mkdtempSync(path.join(CACHE_DIR, 'initdb-'));
    try {
      const db = await PGlite.create(dir);
      const blob = await db.dumpDataDir('gzip');
      await db.close();
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
      fs.renameSync(tmp, file); // atomic publish
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  return new Uint8Array(fs.readFileSync(file));
}

let migratedDirPromise: Promise<string> | undefined;

/**
 * A closed PGlite data directory holding a migrated, empty store: made once per machine, PGlite
 * version and migration set (their SQL is in the name's hash, so a new or changed migration makes
 * a new directory), by opening a store from the blank snapshot, which runs every migration.
 */
function migratedPgliteDir(): Promise<string> {
  migratedDirPromise ??= (async () => {
    const hash = createHash('sha256').update(JSON.stringify(MIGRATIONS)).digest('hex').slice(0, 16);
    const dir = path.join(CACHE_DIR, `pglite-${pgliteVersion()}-migrated-${hash}`);
    const blank = await pgliteSnapshot();
    await buildOnce(dir, async () => {
      const tmp = `${dir}.${process.pid}.tmp`;
      fs.rmSync(tmp, { recursive: true, force: true });
      const store = await openStore({ pglite: tmp, initFrom: blank });
      await store.close();
      fs.rmSync(path.join(tmp, STORE_LOCK_FILE), { force: true });
      fs.renameSync(tmp, dir); // atomic publish
    });
    return dir;
  })();
  return migratedDirPromise;
}

export interface TestDb {
  readonly backend: 'pglite' | 'postgres';
  store: Store;
  /** Close the store and open the same database again (a coordinator restart). */
  reopen(): Promise<Store>;
  /** Open a second, independent store on the same database (another process / pool). */
  openAnother(): Promise<Store>;
  /** Close and delete the database (temp dir / schema). */
  dispose(): Promise<void>;
}

export interface TestBackend {
  name: 'pglite' | 'postgres';
  /** A store on a fresh, migrated database. */
  fresh(): Promise<TestDb>;
}

export function tempDir(prefix = 'fedsynth-store-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A store on a new database at `dir` (a copy of the migrated one), or in memory (`memory://`). */
export async function openPgliteFromSnapshot(dir: string): Promise<Store> {
  if (dir.startsWith('memory://')) return openStore({ pglite: dir, initFrom: await pgliteSnapshot() });
  await seedPgliteDir(dir);
  return openStore({ pglite: dir });
}

/**
 * Makes `dir` (absent or empty) a migrated PGlite database, a copy of the cached one, for a
 * process the test starts on it (coordinator, serve, a CLI command) or a store the test opens:
 * they then skip initdb (5–8 s of CPU) and the migrations. Opening it still runs the migration
 * check, as every open does.
 */
export async function seedPgliteDir(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    // Already a database: opening it migrates it, as before.
    await (await openStore({ pglite: dir })).close();
    return;
  }
  const template = await migratedPgliteDir();
  fs.cpSync(template, dir, { recursive: true, filter: (src) => path.basename(src) !== STORE_LOCK_FILE });
}

export const pgliteBackend: TestBackend = {
  name: 'pglite',
  async fresh() {
    const root = tempDir();
    const dir = path.join(root, 'db');
    const db: TestDb = {
      backend: 'pglite',
      store: await openPgliteFromSnapshot(dir),
      async reopen() {
        await db.store.close();
        db.store = await openStore({ pglite: dir });
        return db.store;
      },
      async openAnother() {
        throw new Error('PGlite is single-process: one store per data directory');
      },
      async dispose() {
        await db.store.close();
        fs.rmSync(root, { recursive: true, force: true });
      },
    };
    return db;
  },
};

export function randomSchemaName(): string {
  return `fedsynth_test_${randomBytes(6).toString('hex')}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const postgresBackend: TestBackend = {
  name: 'postgres',
  async fresh() {
    const schema = randomSchemaName();
    const others: Store[] = [];
    let store: Store;
    try {
      store = await openStore({ postgresUrl: TEST_PG_URL, schema });
    } catch (err) {
      throw new Error(`PostgreSQL at ${TEST_PG_URL} is required for the store tests and is unreachable: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const db: TestDb = {
      backend: 'postgres',
      store,
      async reopen() {
        await db.store.close();
        db.store = await openStore({ postgresUrl: TEST_PG_URL, schema });
        return db.store;
      },
      async openAnother() {
        const s = await openStore({ postgresUrl: TEST_PG_URL, schema });
        others.push(s);
        return s;
      },
      async dispose() {
        await Promise.all([db.store.close(), ...others.map((s) => s.close())]);
        await dropSchema(schema);
      },
    };
    return db;
  },
};

/** Both backends, for `describe.each(BACKENDS)`. */
export const BACKENDS: readonly TestBackend[] = [pgliteBackend, postgresBackend];
