// Store.openRound on PGlite and PostgreSQL: a round, its tasks and their audit entries commit
// together or not at all (what makes the engine's crash windows safe), and a task for a site that
// never registered is refused with a clear error instead of a raw foreign-key failure.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, type Store } from '../../coordinator/store/index.ts';
import { BACKENDS, type TestDb } from '../support/db.ts';

const signer = {
  party: 'coordinator',
  privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
};

async function federation(store: Store, sites: string[]): Promise<string> {
  const fed = `engine-fed-${randomBytes(4).toString('hex')}`;
  await store.upsertFederation({ id: fed, schemaHash: 'h1', schema: {}, config: {} });
  for (const s of sites) await store.registerSite(fed, s);
  return fed;
}

const round = (fed: string, roundId = 'r1') => ({
  federationId: fed,
  roundId,
  kind: 'measure' as const,
  spec: { m: 1 },
  quorum: 2,
  deadlineAt: new Date(Date.now() + 60_000),
});
const task = (fed: string, site: string, roundId = 'r1') => ({
  federationId: fed,
  taskId: `${fed}-${roundId}-${site}`,
  roundId,
  siteId: site,
  kind: 'measure',
  spec: { m: 1 },
});
const issued = (t: ReturnType<typeof task>) => ({
  type: 'task-issued' as const,
  federationId: t.federationId,
  roundId: t.roundId,
  taskId: t.taskId,
  site: t.siteId,
  kind: t.kind,
  specSha256: '0'.repeat(64),
});

describe.each(BACKENDS)('Store.openRound ($name)', (backend) => {
  let db: TestDb;
  beforeAll(async () => {
    db = await backend.fresh();
    db.store.setAuditSigner(signer);
  }, 60_000);
  afterAll(async () => {
    await db?.dispose();
  });

  it('writes the round, every task and their audit entries together', async () => {
    const fed = await federation(db.store, ['a', 'b']);
    const tasks = [task(fed, 'a'), task(fed, 'b')];
    const { round: r, tasks: created } = await db.store.openRound(round(fed), tasks, { auditEvents: tasks.map(issued) });
    expect(r.state).toBe('open');
    expect(created.map((t) => t.siteId)).toEqual(['a', 'b']);
    expect((await db.store.listAudit(fed)).map((e) => e.event.type)).toEqual(['task-issued', 'task-issued']);
  });

  it('a crash before commit (beforeCommit throws) leaves no round, no task, no audit entry', async () => {
    const fed = await federation(db.store, ['a', 'b']);
    const tasks = [task(fed, 'a'), task(fed, 'b')];
    await expect(
      db.store.openRound(round(fed), tasks, {
        auditEvents: tasks.map(issued),
        beforeCommit: () => {
          throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(await db.store.getRound(fed, 'r1')).toBeNull();
    expect(await db.store.listTasks(fed, 'r1')).toEqual([]);
    expect(await db.store.listAudit(fed)).toEqual([]);
  });

  it('refuses a task for a site that never registered, naming it, and writes nothing', async () => {
    const fed = await federation(db.store, ['a']);
    const err = await db.store.openRound(round(fed), [task(fed, 'a'), task(fed, 'ghost')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toBe(`site(s) ghost never registered in federation ${fed}: no task can be issued to them`);
    expect((err as Error).message).not.toMatch(/fkey/);
    expect(await db.store.getRound(fed, 'r1')).toBeNull();
  });

  it('moves an open round’s deadline only later', async () => {
    const fed = await federation(db.store, ['a']);
    const { round: r } = await db.store.openRound(round(fed), [task(fed, 'a')]);
    const earlier = await db.store.extendRoundDeadline(fed, 'r1', new Date(r.deadlineAt.getTime() - 30_000));
    expect(earlier.deadlineAt.getTime()).toBe(r.deadlineAt.getTime());
    const later = await db.store.extendRoundDeadline(fed, 'r1', new Date(r.deadlineAt.getTime() + 30_000));
    expect(later.deadlineAt.getTime()).toBe(r.deadlineAt.getTime() + 30_000);
    await db.store.setRoundState(fed, 'r1', 'closed');
    await expect(db.store.extendRoundDeadline(fed, 'r1', new Date())).rejects.toThrow(/is closed, not open/);
  });
});
