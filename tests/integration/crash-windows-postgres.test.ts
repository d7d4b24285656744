// Every crash window of the fit engine on PostgreSQL (127.0.0.1:5432): the coordinator (its own process) is killed with
// SIGKILL at each fault point in turn and restarted; the fit completes with one charge per site
// per released round, equal to every site's ledger, and nothing charged for an unreleased round.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS } from '../../coordinator/fault.ts';
import {
  AFTER_CRASH,
  expectLedgersMatchCharges,
  openFedStore,
  runCoordinatorChild,
  startCrashFederation,
} from '../support/crash-windows.ts';
import type { TestFederation } from '../support/federation.ts';
import { dropSchema, TEST_PG_URL } from '../support/db.ts';
import { randomBytes } from 'node:crypto';

const schema = `engine_crash_${randomBytes(5).toString('hex')}`;

let fed: TestFederation;
let cfgFile: string;

beforeAll(async () => {
  ({ fed, cfgFile } = await startCrashFederation({ kind: 'postgres', url: TEST_PG_URL, schema }));
}, 60_000);

afterAll(async () => {
  if (process.env.FEDSYNTH_TEST_LOGS) (await import('node:fs')).writeFileSync(process.env.FEDSYNTH_TEST_LOGS, fed.logs.join('\n'));
  await fed?.close();
  await dropSchema(schema);
});

// The PGlite campaign kills the coordinator at every point; here, at the ones inside or right
// after a transaction, where the two stores' transaction semantics could differ (the engine code
// between them is the same). Each restart runs on to the next chosen point.
const POSTGRES_POINTS = new Set([
  'preflight.open-tx',
  'keygen.open-tx',
  'measure.open-tx',
  'decrypt.open-tx',
  'decrypt.closed',
  'release.tx',
]);

describe('crash windows (PostgreSQL, coordinator killed with SIGKILL)', () => {
  for (const point of CRASH_POINTS.filter((p) => POSTGRES_POINTS.has(p))) {
    it(`killed at ${point}: the database holds what it should, and the restart goes past it`, async () => {
      const run = await runCoordinatorChild(cfgFile, point);
      expect(run.signal, `${run.stdout}\n${run.stderr}`).toBe('SIGKILL');
      expect(run.stderr).toContain(`FEDSYNTH_CRASH_AT=${point}`);
      const store = await openFedStore(fed.cfg);
      try {
        await AFTER_CRASH[point](store, fed.cfg.federationId);
      } finally {
        await store.close();
      }
    }, 180_000);
  }

  it('a restart without a fault completes the fit: no double charge, no charge for an unreleased round', async () => {
    const agentsLeft = () => Promise.race([Promise.all(Object.values(fed.agentRuns)), new Promise((r) => setTimeout(r, 5000))]);
    const run = await runCoordinatorChild(cfgFile, undefined, { beforeClose: agentsLeft });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/FIT-DONE \d+ rounds/);
    await agentsLeft();
    const store = await openFedStore(fed.cfg);
    try {
      expect((await store.listRounds(fed.cfg.federationId, { kind: 'measure' })).length).toBeGreaterThanOrEqual(2);
      await expectLedgersMatchCharges(fed, store);
    } finally {
      await store.close();
    }
  }, 180_000);
});
