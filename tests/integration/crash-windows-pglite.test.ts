// Every crash window of the fit engine on PGlite: the coordinator (its own process) is killed with
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

let fed: TestFederation;
let cfgFile: string;

beforeAll(async () => {
  ({ fed, cfgFile } = await startCrashFederation());
}, 60_000);

afterAll(async () => {
  if (process.env.FEDSYNTH_TEST_LOGS) (await import('node:fs')).writeFileSync(process.env.FEDSYNTH_TEST_LOGS, fed.logs.join('\n'));
  await fed?.close();
});

describe('crash windows (PGlite, coordinator killed with SIGKILL)', () => {
  for (const point of CRASH_POINTS) {
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
