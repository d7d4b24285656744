// A coordinator on the real PostgreSQL server is stopped in the middle of a fit and started
// again: it resumes from the database, agents ride out the outage, nothing is charged twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { TEST_PG_URL, randomSchemaName, dropSchema } from '../support/db.ts';

let fed: TestFederation;
let report: FitReport;
let firstRunError: unknown;
const schema = randomSchemaName();

beforeAll(async () => {
  fed = await startTestFederation({ sites: 3, patients: 200, storage: { kind: 'postgres', url: TEST_PG_URL, schema }, deadlineMs: 30_000 });
  const first = runFitAndCohort(fed.cfg, fed.coordinator).catch((err) => {
    firstRunError = err;
  });
  // Stop the coordinator once the first measurement round has been released.
  for (let i = 0; i < 600; i++) {
    const round = await fed.coordinator.store.getRound(fed.cfg.federationId, 'm1-one-way');
    if (round?.state === 'released') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await fed.restartCoordinator();
  await first;
  report = await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
}, 240_000);

afterAll(async () => {
  await fed?.close();
  await dropSchema(schema);
});

describe('coordinator restart mid-fit (real PostgreSQL)', () => {
  it('the interrupted run stopped, the restarted one finished from the database', async () => {
    expect(String(firstRunError)).toMatch(/stopped/);
    const rounds = await fed.coordinator.store.listRounds(fed.cfg.federationId, { kind: 'measure' });
    expect(rounds.map((r) => r.roundId)).toEqual(report.rounds.map((r) => r.roundId));
    expect(rounds[0].roundId).toBe('m1-one-way');
    expect(rounds.length).toBeGreaterThanOrEqual(3);
    expect(rounds.every((r) => r.state === 'released')).toBe(true);
  });

  it('no double spend: one charge per site per round, matching every site ledger', async () => {
    const charges = await fed.coordinator.store.chargesByRound(fed.cfg.federationId);
    expect(charges).toHaveLength(3 * report.rounds.length);
    for (const site of fed.cfg.sites) {
      const ledger = openLedger(fed.siteCfgs[site].stateDir);
      try {
        expect(ledger.records()).toHaveLength(report.rounds.length);
        expect(new Set(ledger.records().map((r) => r.roundId)).size).toBe(report.rounds.length);
        expect(ledger.totalRho()).toBeCloseTo(report.perSite[site].rho, 12);
      } finally {
        ledger.close();
      }
    }
    expect((await fed.coordinator.store.verifyAuditChain(fed.cfg.federationId)).ok).toBe(true);
  });
});
