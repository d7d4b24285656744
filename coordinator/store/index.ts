/** The coordinator's data-access module: `openStore()` and the typed repository. */
export * from './store.ts';
export { canonicalJson, sha256Hex } from './canonical.ts';
export { MIGRATIONS, migrate, type Migration } from './migrations.ts';
export { openPglite, openPostgres, type Backend, type QueryResult, type Row, type SqlClient } from './sql.ts';
export * from './studies.ts';
export { acquireStoreLock, releaseStoreLock, storeHolder, StoreLockedError, STORE_LOCK_FILE, type StoreHolder } from './store-lock.ts';
