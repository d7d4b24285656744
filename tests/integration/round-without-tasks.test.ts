// The crash of issue 17 item 2, reproduced on the real engine (PGlite and PostgreSQL): a
// coordinator that wrote a round's row and died before its tasks (what the coordinator did before
// a round and its tasks shared one transaction) left a measure round, or a decrypt round, that no
// site could answer; every restart failed ("only 0 of the required 2 committee members
// decrypted") while every site had paid for the round. The database is put in exactly that state
// and the restarted engine must finish the fit, with every ledger equal to the coordinator's charges.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { subsetSchemaText } from '../../coordinator/studies.ts';
import type { Store } from '../../coordinator/store/index.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { expectLedgersMatchCharges } from '../support/crash-windows.ts';
import { dropSchema, TEST_PG_URL } from '../support/db.ts';
import { startTestFederation, type TestFederation } from '../support/federation.ts';

const SMALL_SCHEMA = subsetSchemaText(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'), ['age', 'sex', 'hypertension', 'type2_diabetes']);

/** Makes `store` write the round's row alone for rounds of `kind`, then "crash" (as the old engine could). */
function rowWithoutTasks(store: Store, kind: 'measure' | 'decrypt'): void {
  const open = store.openRound.bind(store);
  store.openRound = async (r, tasks, opts) => {
    if (r.kind !== kind) return open(r, tasks, opts);
    await store.createRound(r);
    throw new Error(`simulated crash after the ${kind} round's row, before its tasks`);
  };
}

/** A coordinator restart; agents that left when the failed run ended come back. */
async function restart(f: TestFederation): Promise<void> {
  for (const a of Object.values(f.agents)) a.stop();
  await Promise.all(Object.values(f.agentRuns));
  await f.restartCoordinator();
  for (const s of f.cfg.sites) f.startAgent(s);
}

let fed: TestFederation | undefined;
let schema: string | undefined;
afterEach(async () => {
  await fed?.close();
  if (schema) await dropSchema(schema);
  fed = undefined;
  schema = undefined;
});

describe.each(['pglite', 'postgres'] as const)('a round left without tasks by a crash (%s)', (backend) => {
  it('is re-issued on restart (measure round, then decrypt round) and the fit finishes, nothing charged twice', async () => {
    schema = backend === 'postgres' ? `engine_legacy_${randomBytes(5).toString('hex')}` : undefined;
    fed = await startTestFederation({
      sites: 3,
      patients: 80,
      plan: 'mst',
      schemaText: SMALL_SCHEMA,
      cohortSize: 0,
      iterations: 20,
      deadlineMs: 30_000,
      storage: schema ? { kind: 'postgres', url: TEST_PG_URL, schema } : undefined,
    });
    const f = fed;
    const fedId = f.cfg.federationId;

    rowWithoutTasks(f.coordinator.store, 'measure');
    await expect(f.coordinator.engine.run()).rejects.toThrow(/simulated crash after the measure round's row/);
    const [m1] = await f.coordinator.store.listRounds(fedId, { kind: 'measure' });
    expect(m1.state).toBe('open');
    expect(await f.coordinator.store.listTasks(fedId, m1.roundId)).toEqual([]);

    await restart(f);
    rowWithoutTasks(f.coordinator.store, 'decrypt');
    await expect(f.coordinator.engine.run()).rejects.toThrow(/simulated crash after the decrypt round's row/);
    const [d1] = await f.coordinator.store.listRounds(fedId, { kind: 'decrypt' });
    expect(d1.state).toBe('open');
    expect(await f.coordinator.store.listTasks(fedId, d1.roundId)).toEqual([]);
    expect(await f.coordinator.store.listAggregates(fedId, m1.roundId)).toEqual([]);

    await restart(f);
    const outcome = await f.coordinator.engine.run();
    expect(outcome.rounds.map((r) => r.roundId)[0]).toBe(m1.roundId);
    expect(await f.coordinator.store.listTasks(fedId, m1.roundId)).toHaveLength(3);
    expect(await f.coordinator.store.listTasks(fedId, d1.roundId)).toHaveLength(3);
    await Promise.race([Promise.all(Object.values(f.agentRuns)), new Promise((r) => setTimeout(r, 5000))]);
    await expectLedgersMatchCharges(f, f.coordinator.store);
  }, 300_000);
});
