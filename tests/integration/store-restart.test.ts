/**
 * Migrations and restarts of the coordinator store, on both backends: reopening applies no
 * migration twice, a failed migration leaves nothing behind, and a restart (close + reopen of the
 * same PGlite data directory / PostgreSQL schema) keeps every piece of state and resumes from it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { MIGRATIONS, migrate, openStore, type Store } from '../../coordinator/store/index.ts';
import { BACKENDS, TEST_PG_URL, dropSchema, randomSchemaName, type TestDb } from '../support/db.ts';

const FED = 'fed-restart';

const SIGNER = {
  party: 'coordinator',
  privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
};

async function populate(store: Store): Promise<void> {
  store.setAuditSigner(SIGNER);
  await store.upsertFederation({ id: FED, schemaHash: 'sha-1', schema: { attrs: { age: 10, sex: 2 } }, config: { quorum: 2 } });
  for (const s of ['a', 'b', 'c']) await store.registerSite(FED, s, '0.1.0');
  for (const [i, s] of ['a', 'b'].entries()) {
    await store.putCommitteeKey({
      federationId: FED,
      memberId: s,
      point: i + 1,
      publicKey: new Uint8Array([i, 1, 2]),
      signature: new Uint8Array([9]),
      certificatePem: `PEM-${s}`,
    });
  }
  const deadlineAt = new Date(Date.now() + 3_600_000);
  // r1: released with charges; r2: open with one submission and two pending tasks
  await store.createRound({ federationId: FED, roundId: 'r1', kind: 'measure', spec: { m: [['age']] }, quorum: 2, deadlineAt });
  await store.createTasks(
    ['a', 'b', 'c'].map((s) => ({ federationId: FED, taskId: `r1-${s}`, roundId: 'r1', siteId: s, kind: 'measure', spec: {} })),
  );
  await store.putSubmission({ federationId: FED, taskId: 'r1-a', siteId: 'a', body: new Uint8Array([1, 1]) });
  await store.putSubmission({ federationId: FED, taskId: 'r1-b', siteId: 'b', body: new Uint8Array([2, 2]) });
  await store.markTaskRefused(FED, 'r1-c', 'over cap');
  await store.setRoundState(FED, 'r1', 'closed');
  await store.putAggregate({
    federationId: FED,
    roundId: 'r1',
    memberId: 'a',
    point: 1,
    length: 10,
    contributors: ['a', 'b'],
    ciphertexts: new Uint8Array([5, 5, 5]),
  });
  await store.setRoundState(FED, 'r1', 'decrypting');
  await store.putPartial({ federationId: FED, roundId: 'r1', memberId: 'a', point: 1, share: new Uint8Array([6]) });
  await store.recordChargesAndRelease(
    FED,
    'r1',
    [
      { siteId: 'a', rho: 0.0149731, mechanism: { kind: 'ddg', sigma2: '1000/3' } },
      { siteId: 'b', rho: 0.0149731, mechanism: { kind: 'ddg', sigma2: '1000/3' } },
    ],
    [{ attrs: ['age'], values: [3, -1, 7, 12, 0, 0, 1, 2, 3, 4], sigmaTotal: 18.25 }],
    {
      auditEvents: [
        {
          type: 'measurement-released',
          federationId: FED,
          roundId: 'r1',
          mechanism: 'distributed-discrete-gaussian',
          l2Sensitivity: 1,
          l1Sensitivity: 1,
          dimension: 10,
          sigmaSite2: { num: '1000', den: '3' },
          parties: ['a', 'b'],
          quorum: 2,
          rho: 0.0149731,
        },
      ],
    },
  );
  await store.createRound({ federationId: FED, roundId: 'r2', kind: 'measure', spec: { m: [['age', 'sex']] }, quorum: 2, deadlineAt });
  await store.createTasks(
    ['a', 'b', 'c'].map((s) => ({
      federationId: FED,
      taskId: `r2-${s}`,
      roundId: 'r2',
      siteId: s,
      kind: 'measure',
      spec: { i: s },
      payload: new Uint8Array([7]),
    })),
  );
  await store.nextTaskForSite(FED, 'a');
  await store.putSubmission({ federationId: FED, taskId: 'r2-a', siteId: 'a', body: new Uint8Array([3, 3, 3]) });
  await store.nextTaskForSite(FED, 'b'); // delivered, not done
  await store.putModel({ id: 'm1', federationId: FED, rhoTotal: 0.03, model: { cliques: [['age']] } });
  await store.putCohort({
    id: 'c1',
    federationId: FED,
    modelId: 'm1',
    n: 100,
    seed: '7',
    where: {},
    outDir: '/tmp/c1',
    report: { eps: 1 },
  });
  await store.appendAudit(FED, {
    type: 'model-fitted',
    federationId: FED,
    modelId: 'm1',
    rounds: ['r1'],
    rhoBySite: { a: 0.0149731, b: 0.0149731 },
  });
}

async function dump(store: Store) {
  const rounds = await store.listRounds(FED);
  const perRound = [];
  for (const r of rounds) {
    perRound.push({
      tasks: await store.listTasks(FED, r.roundId),
      submissions: await store.listSubmissions(FED, r.roundId),
      aggregates: await store.listAggregates(FED, r.roundId),
      partials: await store.listPartials(FED, r.roundId),
    });
  }
  return {
    federation: await store.getFederation(FED),
    sites: await store.listSites(FED),
    keys: await store.listCommitteeKeys(FED),
    rounds,
    perRound,
    measurements: await store.listMeasurements(FED),
    charges: await store.chargesByRound(FED),
    spend: await store.spendBySite(FED),
    models: await store.listModels(FED),
    cohorts: await store.listCohorts(FED),
    audit: await store.listAudit(FED),
  };
}

async function migrationRows(store: Store) {
  const { rows } = await store.sql.query<{ version: number; name: string; applied_at: Date }>(
    'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
  );
  return rows;
}

describe.each(BACKENDS)('store restart on $name', (backend) => {
  let db: TestDb;

  beforeAll(async () => {
    db = await backend.fresh();
  });
  afterAll(async () => {
    await db?.dispose();
  });

  it('migrations are recorded once and idempotent on reopen; a failing migration leaves nothing', async () => {
    const first = await migrationRows(db.store);
    expect(first.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(db.store.sql)).toEqual([]);
    await db.reopen();
    expect(await migrationRows(db.store)).toEqual(first);

    const extra = [
      ...MIGRATIONS,
      { version: 1000, name: 'extra', sql: 'CREATE TABLE extra_t (x int);\nCREATE INDEX extra_i ON extra_t (x);' },
    ];
    expect(await migrate(db.store.sql, extra)).toEqual([1000]);
    expect(await migrate(db.store.sql, extra)).toEqual([]);

    const broken = [
      ...extra,
      { version: 1001, name: 'ok part', sql: 'CREATE TABLE extra_u (x int)' },
      { version: 1002, name: 'broken', sql: 'CREATE TABLE extra_v (x no_such_type)' },
    ];
    await expect(migrate(db.store.sql, broken)).rejects.toThrow();
    const versions = (await migrationRows(db.store)).map((r) => Number(r.version));
    expect(versions).toEqual([...MIGRATIONS.map((m) => m.version), 1000]);
    const { rows } = await db.store.sql.query<{ t: string | null }>(`SELECT to_regclass('extra_u')::text AS t`);
    expect(rows[0].t).toBeNull();
  });

  it('a restart keeps all state and resumes from it', async () => {
    await populate(db.store);
    const before = await dump(db.store);
    expect(before.rounds.map((r) => r.state)).toEqual(['released', 'open']);
    expect(before.audit).toHaveLength(2);

    const store = await db.reopen();
    expect(await dump(store)).toEqual(before);

    // resume: the round still hands out the delivered-not-done task, accepts it, and the
    // chain continues from its head
    expect((await store.nextTaskForSite(FED, 'b'))?.taskId).toBe('r2-b');
    expect((await store.putSubmission({ federationId: FED, taskId: 'r2-a', siteId: 'a', body: new Uint8Array([3, 3, 3]) })).duplicate).toBe(
      true,
    );
    await store.putSubmission({ federationId: FED, taskId: 'r2-b', siteId: 'b', body: new Uint8Array([4]) });
    store.setAuditSigner(SIGNER);
    const e = await store.appendAudit(FED, { type: 'cohort-emitted', federationId: FED, modelId: 'm1', cohortId: 'c1', size: 100 });
    expect(e.seq).toBe(2);
    expect(e.prevHash).toBe(before.audit[1].hash);
    expect(await store.verifyAuditChain(FED)).toMatchObject({ ok: true, length: 3 });
    expect(
      await store.createRound({
        federationId: FED,
        roundId: 'r3',
        kind: 'keygen',
        spec: {},
        quorum: 1,
        deadlineAt: new Date(Date.now() + 60_000),
      }),
    ).toMatchObject({ seq: 3 });
  });

  // (PGlite is one process per data directory; only a server has concurrent openers.)
  if (backend.name === 'postgres')
    it('concurrent first opens of one schema apply each migration once', async () => {
      const schema = randomSchemaName();
      try {
        const stores = await Promise.all([1, 2, 3].map(() => openStore({ postgresUrl: TEST_PG_URL, schema, poolSize: 2 })));
        try {
          expect((await migrationRows(stores[0])).map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      } finally {
        await dropSchema(schema);
      }
    });
});
