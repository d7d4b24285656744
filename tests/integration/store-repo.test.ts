/**
 * The coordinator store, the same suite on embedded PGlite (from a snapshot) and on the real
 * PostgreSQL server (a fresh schema for this file). Each test uses its own federation id.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, type Store } from '../../coordinator/store/index.ts';
import { entryHash, type AuditEntry, type AuditEvent } from '../../privacy/audit-log/chain.ts';
import { BACKENDS, type TestDb } from '../support/db.ts';

let counter = 0;
const signer = {
  party: 'coordinator',
  privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
};
const charge = (fed: string, site: string, rho: number, taskId = `t-${site}`): AuditEvent => ({
  type: 'charge',
  federationId: fed,
  roundId: 'r1',
  taskId,
  site,
  rho,
});
const released = (fed: string): AuditEvent => ({
  type: 'measurement-released',
  federationId: fed,
  roundId: 'r1',
  mechanism: 'distributed-discrete-gaussian',
  l2Sensitivity: 1,
  l1Sensitivity: 1,
  dimension: 3,
  sigmaSite2: { num: '9', den: '1' },
  parties: ['a', 'b'],
  quorum: 2,
  rho: 0.01,
});
const uid = (p: string) => `${p}-${++counter}-${randomBytes(3).toString('hex')}`;
const inOneHour = () => new Date(Date.now() + 3_600_000);
const bytes = (...b: number[]) => new Uint8Array(b);

async function expectStoreError(p: Promise<unknown>, code: StoreError['code'], message?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a StoreError').toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  if (message) expect((err as StoreError).message).toMatch(message);
}

/** A federation with sites a, b, c and one open measure round with one task per site. */
async function setup(store: Store, opts: { sites?: string[] } = {}) {
  const fed = uid('fed');
  const sites = opts.sites ?? ['a', 'b', 'c'];
  await store.upsertFederation({ id: fed, schemaHash: 'h1', schema: { attrs: ['age', 'sex'] }, config: { k: 3 } });
  for (const s of sites) await store.registerSite(fed, s, '0.1.0');
  const round = await store.createRound({
    federationId: fed,
    roundId: 'r1',
    kind: 'measure',
    spec: { marginals: [['age'], ['age', 'sex']] },
    quorum: 2,
    deadlineAt: inOneHour(),
  });
  const tasks = await store.createTasks(
    sites.map((s) => ({
      federationId: fed,
      taskId: `${fed}-t-${s}`,
      roundId: 'r1',
      siteId: s,
      kind: 'measure',
      spec: { marginals: [['age']] },
      payload: bytes(1, 2, 3),
    })),
  );
  return { fed, round, tasks, taskOf: (s: string) => `${fed}-t-${s}` };
}

async function snapshotRound(store: Store, fed: string, roundId: string) {
  return {
    round: await store.getRound(fed, roundId),
    tasks: await store.listTasks(fed, roundId),
    submissions: (await store.listSubmissions(fed, roundId)).map((s) => ({ ...s, body: Buffer.from(s.body).toString('hex') })),
    charges: await store.chargesByRound(fed, roundId),
    measurements: await store.listMeasurements(fed, roundId),
    audit: await store.listAudit(fed),
  };
}

describe.each(BACKENDS)('store on $name', (backend) => {
  let db: TestDb;
  let store: Store;

  beforeAll(async () => {
    db = await backend.fresh();
    store = db.store;
    store.setAuditSigner(signer);
  });
  afterAll(async () => {
    await db?.dispose();
  });

  it('federations: upsert is idempotent, config updates, schema hash cannot change', async () => {
    const id = uid('fed');
    const f1 = await store.upsertFederation({ id, schemaHash: 'abc', schema: { a: [1, 2] }, config: { x: 1 } });
    expect(f1).toMatchObject({ id, schemaHash: 'abc', schema: { a: [1, 2] }, config: { x: 1 } });
    expect(f1.createdAt).toBeInstanceOf(Date);
    const f2 = await store.upsertFederation({ id, schemaHash: 'abc', schema: { a: [1, 2] }, config: { x: 2 } });
    expect(f2.config).toEqual({ x: 2 });
    await expectStoreError(store.upsertFederation({ id, schemaHash: 'other', schema: {} }), 'conflict');
    expect((await store.getFederation(id))?.schemaHash).toBe('abc');
    expect(await store.getFederation(uid('nope'))).toBeNull();
  });

  it('sites: registration is idempotent, touch updates last_seen', async () => {
    const fed = uid('fed');
    await store.upsertFederation({ id: fed, schemaHash: 'h', schema: {} });
    const r1 = await store.registerSite(fed, 's1', '1.0');
    expect(r1.created).toBe(true);
    const r2 = await store.registerSite(fed, 's1', '1.1');
    expect(r2.created).toBe(false);
    expect(r2.site.agentVersion).toBe('1.1');
    expect(r2.site.registeredAt.getTime()).toBe(r1.site.registeredAt.getTime());
    await store.registerSite(fed, 's0');
    await store.touchSite(fed, 's1');
    const sites = await store.listSites(fed);
    expect(sites.map((s) => s.siteId)).toEqual(['s0', 's1']);
    expect(sites[1].lastSeenAt.getTime()).toBeGreaterThanOrEqual(r1.site.lastSeenAt.getTime());
    await expectStoreError(store.touchSite(fed, 'ghost'), 'not_found');
  });

  it('committee keys: identical re-put is a duplicate, a different key is a conflict', async () => {
    const { fed } = await setup(store);
    const key = { federationId: fed, memberId: 'a', point: 1, publicKey: bytes(9, 9), signature: bytes(7), certificatePem: 'PEM-A' };
    expect(await store.putCommitteeKey(key)).toEqual({ duplicate: false });
    expect(await store.putCommitteeKey({ ...key, publicKey: bytes(9, 9) })).toEqual({ duplicate: true });
    await expectStoreError(store.putCommitteeKey({ ...key, publicKey: bytes(9, 8) }), 'conflict');
    await expectStoreError(store.putCommitteeKey({ ...key, memberId: 'b', certificatePem: 'PEM-B' }), 'conflict', /point 1/);
    await store.putCommitteeKey({ ...key, memberId: 'b', point: 2, certificatePem: 'PEM-B' });
    const keys = await store.listCommitteeKeys(fed);
    expect(keys.map((k) => [k.memberId, k.point])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(Buffer.from(keys[0].publicKey)).toEqual(Buffer.from([9, 9]));
  });

  it('rounds: seq increments, listRounds filters, transitions are enforced', async () => {
    const { fed } = await setup(store);
    const r2 = await store.createRound({ federationId: fed, roundId: 'k1', kind: 'keygen', spec: {}, quorum: 1, deadlineAt: inOneHour() });
    expect(r2.seq).toBe(2);
    expect(r2.state).toBe('open');
    await expectStoreError(
      store.createRound({ federationId: fed, roundId: 'k1', kind: 'keygen', spec: {}, quorum: 1, deadlineAt: inOneHour() }),
      'conflict',
    );
    expect((await store.listRounds(fed)).map((r) => r.roundId)).toEqual(['r1', 'k1']);
    expect((await store.listRounds(fed, { kind: 'keygen' })).map((r) => r.roundId)).toEqual(['k1']);

    // open -> released / decrypting are not allowed
    await expectStoreError(store.setRoundState(fed, 'k1', 'released'), 'invalid_state', /open → released/);
    await expectStoreError(store.setRoundState(fed, 'k1', 'decrypting'), 'invalid_state');
    const closed = await store.setRoundState(fed, 'k1', 'closed');
    expect(closed.state).toBe('closed');
    expect(closed.closedAt).toBeInstanceOf(Date);
    await expectStoreError(store.setRoundState(fed, 'k1', 'open'), 'invalid_state');
    await expectStoreError(store.setRoundState(fed, 'k1', 'closed'), 'invalid_state');
    const released = await store.setRoundState(fed, 'k1', 'released');
    expect(released.state).toBe('released');
    // released is final
    for (const to of ['open', 'closed', 'decrypting', 'failed', 'released'] as const) {
      await expectStoreError(store.setRoundState(fed, 'k1', to, { failureReason: 'x' }), 'invalid_state');
    }
    // a measure round is released only together with its charges
    await store.setRoundState(fed, 'r1', 'closed');
    await expectStoreError(store.setRoundState(fed, 'r1', 'released'), 'invalid_state', /recordChargesAndRelease/);
    await expectStoreError(store.setRoundState(fed, 'r1', 'failed'), 'invalid', /reason/);
    const failed = await store.setRoundState(fed, 'r1', 'failed', { failureReason: 'quorum not reached by deadline' });
    expect(failed).toMatchObject({ state: 'failed', failureReason: 'quorum not reached by deadline' });
    await expectStoreError(store.setRoundState(fed, 'r1', 'closed'), 'invalid_state');
    await expectStoreError(store.setRoundState(fed, 'nope', 'closed'), 'not_found');
  });

  it('tasks: delivery order, redelivery, done/refused, expiry, closed rounds deliver nothing', async () => {
    const { fed, taskOf } = await setup(store);
    const t = await store.nextTaskForSite(fed, 'a');
    expect(t).toMatchObject({ taskId: taskOf('a'), state: 'delivered', siteId: 'a' });
    expect(t!.payloadSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(t!.payload!)).toEqual(Buffer.from([1, 2, 3]));
    // delivered but not done: redelivered (the response may have been lost)
    expect((await store.nextTaskForSite(fed, 'a'))?.taskId).toBe(taskOf('a'));
    await store.markTaskDone(fed, taskOf('a'));
    expect(await store.markTaskDone(fed, taskOf('a'))).toMatchObject({ state: 'done' }); // idempotent
    expect(await store.nextTaskForSite(fed, 'a')).toBeNull();

    const refused = await store.markTaskRefused(fed, taskOf('b'), 'over budget cap');
    expect(refused).toMatchObject({ state: 'refused', refusalReason: 'over budget cap' });
    await expectStoreError(store.markTaskDone(fed, taskOf('b')), 'invalid_state');
    expect(await store.nextTaskForSite(fed, 'b')).toBeNull();

    // tasks of a round that is not open are not delivered
    await store.setRoundState(fed, 'r1', 'closed');
    expect(await store.nextTaskForSite(fed, 'c')).toBeNull();
    await expectStoreError(
      store.createTasks([{ federationId: fed, taskId: uid('t'), roundId: 'r1', siteId: 'c', kind: 'measure', spec: {} }]),
      'invalid_state',
    );
    expect(await store.expireTasks(fed, 'r1')).toBe(1);
    expect((await store.getTask(fed, taskOf('c')))?.state).toBe('expired');
    expect(await store.getTask(fed, 'missing')).toBeNull();
  });

  it('tasks: bulk create is all-or-nothing; rounds past their deadline deliver nothing', async () => {
    const { fed, taskOf } = await setup(store);
    const before = await store.listTasks(fed, 'r1');
    await expect(
      store.createTasks([
        { federationId: fed, taskId: uid('t'), roundId: 'r1', siteId: 'a', kind: 'measure', spec: {} },
        { federationId: fed, taskId: taskOf('b'), roundId: 'r1', siteId: 'b', kind: 'measure', spec: {} }, // duplicate id
      ]),
    ).rejects.toThrow();
    expect(await store.listTasks(fed, 'r1')).toEqual(before);

    await store.createRound({
      federationId: fed,
      roundId: 'late',
      kind: 'measure',
      spec: {},
      quorum: 1,
      deadlineAt: new Date(Date.now() + 300),
    });
    await store.createTasks([{ federationId: fed, taskId: `${fed}-late-a`, roundId: 'late', siteId: 'a', kind: 'measure', spec: {} }]);
    await store.markTaskDone(fed, taskOf('a'));
    await new Promise((r) => setTimeout(r, 400));
    expect(await store.nextTaskForSite(fed, 'a')).toBeNull();
  });

  it('submissions: idempotent resubmission, conflicting resubmission rejected with no state change', async () => {
    const { fed, taskOf } = await setup(store);
    const body = randomBytes(4096);
    const r1 = await store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body });
    expect(r1.duplicate).toBe(false);
    expect((await store.getTask(fed, taskOf('a')))?.state).toBe('done');

    const before = await snapshotRound(store, fed, 'r1');
    const r2 = await store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body: Buffer.from(body) });
    expect(r2).toEqual({ duplicate: true, bodySha256: r1.bodySha256 });

    const other = Buffer.from(body);
    other[0] ^= 1;
    await expectStoreError(
      store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body: other }),
      'conflict',
      /conflicting resubmission/,
    );
    expect(await snapshotRound(store, fed, 'r1')).toEqual(before);

    const subs = await store.listSubmissions(fed, 'r1');
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatchObject({ taskId: taskOf('a'), siteId: 'a', roundId: 'r1', kind: 'measure', bodyBytes: 4096 });
    expect(Buffer.from(subs[0].body).equals(body)).toBe(true);
  });

  it('submissions: another site, unknown task, refused task, and a closed round are rejected', async () => {
    const { fed, taskOf } = await setup(store);
    await expectStoreError(store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'b', body: bytes(1) }), 'forbidden');
    await expectStoreError(store.putSubmission({ federationId: fed, taskId: 'nope', siteId: 'a', body: bytes(1) }), 'not_found');
    await store.markTaskRefused(fed, taskOf('c'), 'cap');
    await expectStoreError(store.putSubmission({ federationId: fed, taskId: taskOf('c'), siteId: 'c', body: bytes(1) }), 'invalid_state');

    await store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body: bytes(5) });
    await store.setRoundState(fed, 'r1', 'closed');
    const before = await snapshotRound(store, fed, 'r1');
    await expectStoreError(
      store.putSubmission({ federationId: fed, taskId: taskOf('b'), siteId: 'b', body: bytes(1) }),
      'invalid_state',
      /closed/,
    );
    // a retry of an already accepted submission is still recognised as a duplicate
    expect((await store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body: bytes(5) })).duplicate).toBe(true);
    expect(await snapshotRound(store, fed, 'r1')).toEqual(before);
    expect((await store.getTask(fed, taskOf('b')))?.state).toBe('pending');
  });

  it('aggregates and partials: idempotent put, conflicts rejected', async () => {
    const { fed } = await setup(store);
    const agg = {
      federationId: fed,
      roundId: 'r1',
      memberId: 'a',
      point: 1,
      length: 20,
      contributors: ['a', 'b'],
      ciphertexts: bytes(1, 2),
    };
    expect(await store.putAggregate(agg)).toEqual({ duplicate: false });
    expect(await store.putAggregate({ ...agg, contributors: ['a', 'b'] })).toEqual({ duplicate: true });
    await expectStoreError(store.putAggregate({ ...agg, contributors: ['a', 'b', 'c'] }), 'conflict');
    await store.putAggregate({ ...agg, memberId: 'b', point: 2 });
    expect((await store.listAggregates(fed, 'r1')).map((a) => [a.memberId, a.contributors])).toEqual([
      ['a', ['a', 'b']],
      ['b', ['a', 'b']],
    ]);

    const part = { federationId: fed, roundId: 'r1', memberId: 'a', point: 1, share: bytes(4, 4) };
    expect(await store.putPartial(part)).toEqual({ duplicate: false });
    expect(await store.putPartial({ ...part })).toEqual({ duplicate: true });
    await expectStoreError(store.putPartial({ ...part, share: bytes(4, 5) }), 'conflict');
    const parts = await store.listPartials(fed, 'r1');
    expect(parts).toHaveLength(1);
    expect(Buffer.from(parts[0].share)).toEqual(Buffer.from([4, 4]));
  });

  it('charges and release are atomic: a failure inside the transaction writes neither', async () => {
    const { fed } = await setup(store);
    await store.setRoundState(fed, 'r1', 'closed');
    const charges = [
      { siteId: 'a', rho: 0.01, mechanism: { kind: 'ddg', sigma: 3 } },
      { siteId: 'b', rho: 0.01, mechanism: { kind: 'ddg', sigma: 3 } },
    ];
    // The second is a band query: its coarsening is stored with it (migration 7).
    const measurements = [
      { attrs: ['age'], values: [10, 20, 30], sigmaTotal: 4.5 },
      { attrs: ['age', 'sex'], values: [7, 8, 9, 10], sigmaTotal: 4.5, coarsen: { age: [0, 0, 1] } },
    ];
    const before = await snapshotRound(store, fed, 'r1');

    // (1) a failure injected after charges, measurements and audit rows were written
    await expect(
      store.recordChargesAndRelease(fed, 'r1', charges, measurements, {
        auditEvents: [released(fed)],
        beforeRelease: async (tx) => {
          const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM charges WHERE federation_id = $1', [fed]);
          expect(rows[0].n).toBe(2); // they were written inside the transaction…
          throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    expect(await snapshotRound(store, fed, 'r1')).toEqual(before); // …and rolled back

    // (2) a database error half-way (duplicate measurement seq) after the charges were inserted
    await expect(
      store.recordChargesAndRelease(fed, 'r1', charges, [
        { seq: 1, attrs: ['age'], values: [1], sigmaTotal: 1 },
        { seq: 1, attrs: ['sex'], values: [2], sigmaTotal: 1 },
      ]),
    ).rejects.toThrow();
    expect(await snapshotRound(store, fed, 'r1')).toEqual(before);

    // (3) invalid input is refused before anything is written
    await expectStoreError(
      store.recordChargesAndRelease(fed, 'r1', [{ siteId: 'a', rho: Number.NaN, mechanism: {} }], measurements),
      'invalid',
    );
    await expectStoreError(store.recordChargesAndRelease(fed, 'r1', [charges[0], charges[0]], measurements), 'invalid');
    expect(await snapshotRound(store, fed, 'r1')).toEqual(before);

    // (4) success: everything at once
    const { round, audit } = await store.recordChargesAndRelease(fed, 'r1', charges, measurements, {
      auditEvents: [released(fed)],
    });
    expect(round.state).toBe('released');
    expect(audit).toHaveLength(1);
    expect((await store.chargesByRound(fed, 'r1')).map((c) => [c.siteId, c.rho])).toEqual([
      ['a', 0.01],
      ['b', 0.01],
    ]);
    const ms = await store.listMeasurements(fed);
    expect(ms).toHaveLength(2);
    expect(ms[0]).toMatchObject({ roundId: 'r1', seq: 1, attrs: ['age'], values: [10, 20, 30], sigmaTotal: 4.5, coarsen: null });
    expect(ms[1]).toMatchObject({ seq: 2, attrs: ['age', 'sex'], values: [7, 8, 9, 10], coarsen: { age: [0, 0, 1] } });
    // released is final: no second release, no double charge
    await expectStoreError(store.recordChargesAndRelease(fed, 'r1', charges, measurements), 'invalid_state');

    // spend composes additively across rounds
    await store.createRound({ federationId: fed, roundId: 'r2', kind: 'measure', spec: {}, quorum: 1, deadlineAt: inOneHour() });
    await store.setRoundState(fed, 'r2', 'closed');
    await store.setRoundState(fed, 'r2', 'decrypting');
    await store.recordChargesAndRelease(fed, 'r2', [{ siteId: 'a', rho: 0.02, mechanism: { kind: 'ddg' } }], []);
    const spend = await store.spendBySite(fed);
    expect(spend.map((s) => s.siteId)).toEqual(['a', 'b']);
    expect(spend[0].rho).toBeCloseTo(0.03, 12);
    expect(spend[0].rounds).toBe(2);
    expect(spend[1]).toEqual({ siteId: 'b', rho: 0.01, rounds: 1 });
    expect((await store.chargesByRound(fed)).map((c) => c.roundId)).toEqual(['r1', 'r1', 'r2']);
  });

  it('models and cohorts', async () => {
    const { fed } = await setup(store);
    const mid = uid('model');
    await store.putModel({ id: mid, federationId: fed, rhoTotal: 0.5, model: { cliques: [['age', 'sex']], potentials: [[0.1, -0.2]] } });
    expect(await store.getModel(mid)).toMatchObject({ id: mid, rhoTotal: 0.5, model: { cliques: [['age', 'sex']] } });
    const cid = uid('cohort');
    await store.putCohort({
      id: cid,
      federationId: fed,
      modelId: mid,
      n: 2000,
      seed: '42',
      where: { age: [40, 80] },
      outDir: '/tmp/x',
      report: { epsilon: 1 },
    });
    expect(await store.getCohort(cid)).toMatchObject({ id: cid, modelId: mid, n: 2000, where: { age: [40, 80] }, report: { epsilon: 1 } });
    expect((await store.listModels(fed)).map((m) => m.id)).toEqual([mid]);
    expect((await store.listCohorts(fed, mid)).map((c) => c.id)).toEqual([cid]);
    await expect(
      store.putCohort({ id: uid('c'), federationId: fed, modelId: 'missing', n: 1, seed: '1', where: {}, outDir: '.', report: {} }),
    ).rejects.toThrow();
  });

  it('audit chain: signed audit-chain entries link, verification recomputes, a tampered row is detected', async () => {
    const fed = uid('fed');
    const events: AuditEvent[] = [
      { type: 'task-issued', federationId: fed, roundId: 'r1', taskId: 't1', site: 'a', kind: 'measure', specSha256: 'a'.repeat(64) },
      charge(fed, 'a', 0.0149731),
      { type: 'task-refused', federationId: fed, roundId: 'r1', taskId: 't2', site: 'b', reason: 'ünïcode ✓ "quoted"' },
    ];
    const entries = [];
    for (const e of events) entries.push(await store.appendAudit(fed, e));
    expect(entries.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(entries[0].prevHash).toBe('0'.repeat(64));
    expect(entries[1].prevHash).toBe(entries[0].hash);
    expect(entries[0].hash).toBe(entryHash(entries[0]));
    expect(entries[0].party).toBe('coordinator');
    expect(await store.verifyAuditChain(fed)).toEqual({ ok: true, length: 3, head: entries[2].hash });
    expect(await store.verifyAuditChain(uid('empty'))).toEqual({ ok: true, length: 0, head: '0'.repeat(64) });
    await expect(
      store.appendAudit(fed, { type: 'charge', federationId: fed, roundId: 'r', taskId: 't', site: 'a', rho: Number.POSITIVE_INFINITY }),
    ).rejects.toThrow(/rho/);
    await expect(store.appendAudit(fed, { type: 'tick' } as unknown as AuditEvent)).rejects.toThrow(/unknown event type/);
    expect((await store.listAudit(fed)).length).toBe(3);
    expect(
      (await store.exportAudit(fed))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(entries);

    // tamper with the event of row 1 (as someone with database access could)
    const tamper = async (f: string, seq: number, edit: (e: AuditEntry) => void) => {
      const { rows } = await store.sql.query('SELECT entry_text FROM audit_log WHERE federation_id = $1 AND seq = $2', [f, seq]);
      const e = JSON.parse(String(rows[0].entry_text)) as AuditEntry;
      edit(e);
      await store.sql.query('UPDATE audit_log SET entry_text = $3 WHERE federation_id = $1 AND seq = $2', [f, seq, JSON.stringify(e)]);
    };
    await tamper(fed, 1, (e) => ((e.event as { rho: number }).rho = 0.0001));
    expect(await store.verifyAuditChain(fed)).toMatchObject({ ok: false, badSeq: 1, reason: /altered/ });

    // re-hashing the tampered row is not enough: its signature no longer verifies, the next link breaks
    const fed2 = uid('fed');
    for (const e of events) await store.appendAudit(fed2, e);
    await tamper(fed2, 1, (e) => {
      (e.event as { rho: number }).rho = 0;
      e.hash = entryHash(e);
    });
    const v2 = await store.verifyAuditChain(fed2);
    expect(v2.ok).toBe(false);
    if (!v2.ok) expect(v2.findings.map((f) => f.kind).sort()).toEqual(['bad-signature', 'broken-link']);

    // deleting a row is a gap
    const fed3 = uid('fed');
    for (const e of events) await store.appendAudit(fed3, e);
    await store.sql.query('DELETE FROM audit_log WHERE federation_id = $1 AND seq = 1', [fed3]);
    expect(await store.verifyAuditChain(fed3)).toMatchObject({ ok: false, badSeq: 2 });
  });

  it('audit chain: concurrent appends keep one linear chain', async () => {
    const fed = uid('fed');
    const stores = [store];
    if (db.backend === 'postgres') {
      const other = await db.openAnother(); // a second pool, as a second process would
      other.setAuditSigner(signer);
      stores.push(other);
    }
    const N = 40;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => stores[i % stores.length].appendAudit(fed, charge(fed, 'a', 0.001, `t${i}`))),
    );
    expect(new Set(results.map((r) => r.seq)).size).toBe(N);
    const entries = await store.listAudit(fed);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(new Set(entries.map((e) => (e.event as { taskId: string }).taskId)).size).toBe(N);
    expect(await store.verifyAuditChain(fed)).toMatchObject({ ok: true, length: N });
  });

  it('concurrent identical submissions store one row; a close racing with submissions never loses or admits late ones', async () => {
    const { fed, taskOf } = await setup(store);
    const body = randomBytes(256);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => store.putSubmission({ federationId: fed, taskId: taskOf('a'), siteId: 'a', body })),
    );
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);

    const settled = await Promise.allSettled([
      store.putSubmission({ federationId: fed, taskId: taskOf('b'), siteId: 'b', body: bytes(2) }),
      store.setRoundState(fed, 'r1', 'closed'),
      store.putSubmission({ federationId: fed, taskId: taskOf('c'), siteId: 'c', body: bytes(3) }),
    ]);
    expect(settled[1].status).toBe('fulfilled');
    const accepted = (await store.listSubmissions(fed, 'r1')).map((s) => s.siteId).sort();
    for (const r of settled) {
      if (r.status === 'rejected') expect(String(r.reason)).toMatch(/closed/);
    }
    for (const [i, site] of [
      [0, 'b'],
      [2, 'c'],
    ] as const) {
      expect(accepted.includes(site)).toBe(settled[i].status === 'fulfilled');
    }
  });
});
