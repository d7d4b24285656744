// Bad input against a live coordinator: each gets a clear gRPC error and changes no state.
// hospital-c is driven by hand from this test with its real certificate; hospital-b runs a real
// agent whose policy cap is too small for the whole fit, so it must refuse a later round;
// hospital-a and hospital-d keep the quorum.
import { generateKeyPairSync } from 'node:crypto';
import { signContributionShare } from '../../privacy/crypto/verifiable-sum.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { createFederationClient } from '../../site-agent/transport.ts';
import type { FederationClient } from '../../proto/generated/fedsynth/v1/Federation.ts';
import type { Header } from '../../proto/generated/fedsynth/v1/Header.ts';
import type { Task__Output } from '../../proto/generated/fedsynth/v1/Task.ts';
import { ContributionCodec } from '../../proto/wire.ts';
import { parseTaskSpec } from '../../proto/task-spec.ts';
import { Bfv } from '../../privacy/crypto/bfv.ts';
import { prepareContribution } from '../../privacy/crypto/secure-aggregation.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';

let fed: TestFederation;
let client: FederationClient;
let bfv: Bfv;
let fit: Promise<FitReport>;
const MAX_BODY = 2 * 1024 * 1024;

function header(task?: Task__Output, over: Partial<Header> = {}): Header {
  return {
    federation_id: fed.cfg.federationId,
    schema_hash: fed.cfg.schemaHash,
    round_id: task?.header?.round_id ?? '',
    task_id: task?.header?.task_id ?? '',
    ...over,
  };
}

function call<T>(method: 'Register' | 'PullTask' | 'RefuseTask', req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    (client[method] as unknown as (r: unknown, cb: (e: grpc.ServiceError | null, r: T) => void) => void).call(client, req, (e, r) =>
      e ? reject(e) : resolve(r),
    );
  });
}

function push(
  chunks: { header?: Header | null; kind?: string; total_bytes?: string; sha256?: string; data: Buffer }[],
): Promise<{ accepted: boolean; duplicate: boolean }> {
  return new Promise((resolve, reject) => {
    const stream = client.PushResult((e, r) => (e ? reject(e) : resolve(r as { accepted: boolean; duplicate: boolean })));
    for (const c of chunks) stream.write({ header: null, kind: '', total_bytes: '0', sha256: '', ...c });
    stream.end();
  });
}

function bodyChunks(task: Task__Output, body: Buffer, over: Partial<Header> = {}, kind = 'contribution') {
  return [
    {
      header: header(task, over),
      kind,
      total_bytes: String(body.length),
      sha256: createHash('sha256').update(body).digest('hex'),
      data: body,
    },
  ];
}

async function pullMeasureTask(): Promise<Task__Output> {
  for (let i = 0; i < 60; i++) {
    const res = await call<{ task: Task__Output | null }>('PullTask', { header: header(), wait_ms: 2000 });
    if (res.task?.kind === 'measure') return res.task;
    if (res.task?.kind === 'preflight') {
      // The free pre-flight round comes first: this hand-driven site can afford the plan.
      const spec = JSON.parse(res.task.spec_json) as { rhoTotal: number };
      const answer = Buffer.from(JSON.stringify({ contribute: { ok: true }, remainingRho: 10 * spec.rhoTotal, neededRho: spec.rhoTotal }));
      await push(bodyChunks(res.task, answer, {}, 'preflight-answer'));
    }
  }
  throw new Error('no measure task arrived');
}

async function taskState(taskId: string) {
  return (await fed.coordinator.store.getTask(fed.cfg.federationId, taskId))!;
}

let firstTask: Task__Output;
let validBody: Buffer;
let otherValidBody: Buffer;

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 4,
    patients: 150,
    committee: ['hospital-a', 'hospital-b'],
    threshold: 2,
    manualSites: ['hospital-c'],
    deadlineMs: 15_000,
    maxBodyBytes: MAX_BODY,
    policy: { 'hospital-b': { epsilon: 0.5, delta: 1e-6 } },
  });
  bfv = await Bfv.create();
  const kit = fed.siteCfgs['hospital-c'].kit;
  client = createFederationClient(fed.siteCfgs['hospital-c'].coordinator, {
    ca: Buffer.from(kit.caPem),
    cert: Buffer.from(kit.certPem),
    key: Buffer.from(kit.keyPem),
  });
  fit = runFitAndCohort(fed.cfg, fed.coordinator);
  fit.catch(() => undefined);
}, 120_000);

afterAll(async () => {
  client?.close();
  bfv?.dispose();
  await fed?.close();
});

describe('bad input to a live coordinator', () => {
  it('refuses a registration with the wrong schema hash', async () => {
    await expect(
      call('Register', { header: header(undefined, { schema_hash: 'ab'.repeat(32) }), agent_version: 't', protocol_version: 1 }),
    ).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('schema hash'),
    });
    await expect(
      call('Register', { header: header(undefined, { federation_id: 'other' }), agent_version: 't', protocol_version: 1 }),
    ).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
    });
    expect((await fed.coordinator.store.listSites(fed.cfg.federationId)).map((s) => s.siteId)).not.toContain('hospital-c');
    const ok = await call<{ site_id: string }>('Register', { header: header(), agent_version: 't', protocol_version: 1 });
    expect(ok.site_id).toBe('hospital-c');
  });

  it('rejects a malformed protobuf body without changing the task', async () => {
    firstTask = await pullMeasureTask();
    const garbage = Buffer.from('this is not a protobuf message \xff\xff\xff\xff\x0f', 'latin1');
    await expect(push(bodyChunks(firstTask, garbage))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect((await taskState(firstTask.header!.task_id)).state).toBe('delivered');
    expect(await fed.coordinator.store.listSubmissions(fed.cfg.federationId, firstTask.header!.round_id)).not.toContainEqual(
      expect.objectContaining({ siteId: 'hospital-c' }),
    );
  });

  it("rejects a body with the wrong schema hash, another site's task, or a bad digest", async () => {
    const spec = parseTaskSpec('measure', firstTask.spec_json);
    const committee = spec.committee.map((m) => ({
      memberId: m.memberId,
      point: m.point,
      publicKey: new Uint8Array(Buffer.from(m.publicKey, 'base64')),
    }));
    const tasks = await fed.coordinator.store.listTasks(fed.cfg.federationId, firstTask.header!.round_id);
    const dimension = spec.marginals.reduce((s, m) => s + m.reduce((p, a) => p * fed.siteData['hospital-c'].data.domain.sizeOf(a), 1), 0);
    // A well-formed contribution of the right length (zeros: its content is irrelevant here).
    const contribution = prepareContribution(bfv, new BigInt64Array(dimension), committee, spec.threshold);
    const kit = fed.siteCfgs['hospital-c'].kit;
    const encode = (signedBy: string) =>
      Buffer.from(
        ContributionCodec.encode({
          length: contribution.length,
          site_id: 'hospital-c',
          certificate_pem: kit.certPem,
          quorum: spec.quorum,
          shares: contribution.shares.map((s) => ({
            member_id: s.memberId,
            point: s.point,
            ciphertexts: s.ciphertexts.map((c) => Buffer.from(c)),
            signature: signContributionShare(signedBy, {
              fitId: fed.cfg.federationId,
              roundId: firstTask.header!.round_id,
              siteId: 'hospital-c',
              memberId: s.memberId,
              point: s.point,
              length: contribution.length,
              quorum: spec.quorum,
              ciphertexts: s.ciphertexts,
            }),
          })),
        }),
      );
    validBody = encode(kit.keyPem);
    // ECDSA signatures are randomised: a second signing gives a different, equally valid body.
    otherValidBody = encode(kit.keyPem);
    // Signed with another key than the site certificate's: members would refuse the whole sum,
    // so the coordinator refuses this one upload.
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(push(bodyChunks(firstTask, encode(otherKey)))).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringContaining("is not signed by hospital-c's certificate"),
    });
    await expect(push(bodyChunks(firstTask, validBody, { schema_hash: '00'.repeat(32) }))).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
    });
    const othersTask = tasks.find((t) => t.siteId === 'hospital-a')!;
    await expect(push(bodyChunks(firstTask, validBody, { task_id: othersTask.taskId }))).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    await expect(push(bodyChunks(firstTask, validBody, { task_id: 'no-such-task' }))).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    const bad = bodyChunks(firstTask, validBody);
    bad[0].sha256 = '0'.repeat(64);
    await expect(push(bad)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('sha256') });
    const truncated = bodyChunks(firstTask, validBody);
    truncated[0].data = validBody.subarray(0, 1000);
    await expect(push(truncated)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect((await taskState(firstTask.header!.task_id)).state).toBe('delivered');
  });

  it('rejects oversized uploads: a declared size over the limit and a message over the gRPC cap', async () => {
    await expect(
      push([
        {
          header: header(firstTask),
          kind: 'contribution',
          total_bytes: String(MAX_BODY + 1),
          sha256: 'a'.repeat(64),
          data: Buffer.alloc(10),
        },
      ]),
    ).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    const huge = Buffer.alloc(3 * 1024 * 1024, 7);
    await expect(push(bodyChunks(firstTask, huge))).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    expect((await taskState(firstTask.header!.task_id)).state).toBe('delivered');
  });

  it('accepts a valid contribution once; a replay is a duplicate, a different body a conflict', async () => {
    const first = await push(bodyChunks(firstTask, validBody));
    expect(first).toMatchObject({ accepted: true, duplicate: false });
    const replay = await push(bodyChunks(firstTask, validBody));
    expect(replay).toMatchObject({ accepted: true, duplicate: true });
    expect(otherValidBody.equals(validBody)).toBe(false);
    await expect(push(bodyChunks(firstTask, otherValidBody))).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    const subs = await fed.coordinator.store.listSubmissions(fed.cfg.federationId, firstTask.header!.round_id);
    expect(subs.filter((s) => s.siteId === 'hospital-c')).toHaveLength(1);
  });

  it('a refusal needs a reason and is recorded; the fit completes with the quorum', async () => {
    const task = await pullMeasureTask();
    await expect(call('RefuseTask', { header: header(task), reason: '   ' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await call('RefuseTask', { header: header(task), reason: 'test site declines' });
    expect((await taskState(task.header!.task_id)).state).toBe('refused');
    // Keep declining until the fit is over.
    const drain = (async () => {
      for (;;) {
        const res = await call<{ task: Task__Output | null; federation_done: boolean }>('PullTask', {
          header: header(),
          wait_ms: 1000,
        }).catch(() => null);
        if (!res || res.federation_done) return;
        if (res.task) await call('RefuseTask', { header: header(res.task), reason: 'test site declines' });
      }
    })();
    const report = await fit;
    await drain;
    expect(report.perSite['hospital-c'].rounds).toBe(1);
    expect(report.perSite['hospital-a'].rounds).toBe(report.rounds.length);
  }, 180_000);

  it('an agent over its own cap refuses with a precise reason, and is never charged past it', async () => {
    await fit;
    const b = fed.agents['hospital-b'];
    expect(b.refused.length).toBeGreaterThan(0);
    expect(b.refused[0].reason).toMatch(/cap/);
    const rounds = await fed.coordinator.store.listRounds(fed.cfg.federationId, { kind: 'measure' });
    const tasks = (await Promise.all(rounds.map((r) => fed.coordinator.store.listTasks(fed.cfg.federationId, r.roundId)))).flat();
    const refused = tasks.find((t) => t.siteId === 'hospital-b' && t.state === 'refused')!;
    expect(refused.state).toBe('refused');
    expect(refused.refusalReason).toMatch(/cap/);
    await Promise.race([fed.agentRuns['hospital-b'], new Promise((r) => setTimeout(r, 5000))]);
    const ledger = openLedger(fed.siteCfgs['hospital-b'].stateDir);
    try {
      expect(ledger.totalRho()).toBeLessThanOrEqual(rhoFromEpsilonDelta(0.5, 1e-6));
      const charges = (await fed.coordinator.store.chargesByRound(fed.cfg.federationId)).filter((c) => c.siteId === 'hospital-b');
      expect(charges.reduce((s, c) => s + c.rho, 0)).toBeCloseTo(ledger.totalRho(), 12);
    } finally {
      ledger.close();
    }
    const audit = (await fed.coordinator.store.listAudit(fed.cfg.federationId)).map((e) => e.event as { type: string; site?: string });
    expect(audit.some((e) => e.type === 'task-refused' && e.site === 'hospital-b')).toBe(true);
  }, 60_000);
});
