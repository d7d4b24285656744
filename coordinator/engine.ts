// The federation's fit, driven entirely by database state so that a restarted coordinator
// resumes where it stopped: committee key generation, then the one fit loop
// (federation/run-fit.ts) over the threshold-HE aggregator (he-aggregator.ts: measure →
// homomorphic sum → threshold decryption → charge-and-release per round), then estimation.
import { randomUUID, X509Certificate } from 'node:crypto';
import type { Store, Task } from './store/index.ts';
import { StoreError, COORDINATOR_PARTY } from './store/index.ts';
import { taskIssuedEvent } from './audit.ts';
import type { TaskBoard } from './task-board.ts';
import type { CoordinatorConfig } from './config.ts';
import { Bfv, BFV_COEFF_MODULUS_BITS, BFV_POLY_MODULUS_DEGREE } from '../privacy/crypto/bfv.ts';
import { FIELD_PRIME, FIELD_PRIME_BIG } from '../privacy/crypto/field.ts';
import { verifyCommitteeKey } from '../privacy/crypto/secure-aggregation.ts';
import { Domain } from '../model/domain.ts';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { parseSchema, schemaAttributes, type Schema } from '../schema/schema.ts';
import { buildFitPlan } from '../federation/plan.ts';
import { runFit } from '../federation/run-fit.ts';
import { WorkerPlanner } from '../federation/plan-worker.ts';
import { certificateProblem } from '../proto/tls-kit.ts';
import { decodeTaskSpec, type BfvParams, type CommitteeMemberSpec, type KeygenSpec } from '../proto/task-spec.ts';
import { CommitteeKeyCodec, ContributionCodec, MalformedBodyError, PartialDecryptionCodec } from '../proto/wire.ts';
import { decodeStoredMeasureRound, FitError, ThresholdHeAggregator } from './he-aggregator.ts';

export { FitError };

/** A result the engine rejects: maps to a gRPC error with this message, with no state change. */
export class RejectedResult extends Error {
  constructor(
    message: string,
    readonly code: 'invalid' | 'precondition' | 'forbidden' | 'conflict',
  ) {
    super(message);
  }
}

export interface FitOutcome {
  modelId: string;
  model: GraphicalModel;
  rounds: { roundId: string; name: string; rho: number; contributors: string[]; sigmaTotal: number }[];
  rhoTotal: number;
  spendBySite: Record<string, number>;
  estimate: { iterations: number; loss: number; total: number };
}

export type ProgressListener = (event: { phase: string; message: string; fraction?: number }) => void;

const POLL_MS = 150;
export const KEYGEN_ROUND = 'keygen';

export function bfvParams(): BfvParams {
  return {
    polyModulusDegree: BFV_POLY_MODULUS_DEGREE,
    coeffModulusBits: [...BFV_COEFF_MODULUS_BITS],
    plainModulus: FIELD_PRIME_BIG.toString(),
  };
}

export class FederationEngine {
  readonly schema: Schema;
  readonly domain: Domain;
  private readonly caCert: X509Certificate;
  private stopped = false;
  private finished = false;
  private readonly listeners: ProgressListener[] = [];

  constructor(
    private readonly store: Store,
    private readonly board: TaskBoard,
    private readonly cfg: CoordinatorConfig,
    private readonly bfv: Bfv,
  ) {
    this.schema = parseSchema(cfg.schemaText);
    const attrs = schemaAttributes(this.schema);
    this.domain = new Domain(
      attrs.map((a) => a.name),
      attrs.map((a) => a.size),
    );
    this.caCert = new X509Certificate(cfg.kit.caPem);
    // Every audit entry the coordinator writes is signed with its certificate key.
    store.setAuditSigner({ party: COORDINATOR_PARTY, privateKeyPem: cfg.kit.keyPem });
  }

  onProgress(listener: ProgressListener): void {
    this.listeners.push(listener);
  }

  private progress(phase: string, message: string, fraction?: number): void {
    for (const l of this.listeners) l({ phase, message, fraction });
  }

  get federationId(): string {
    return this.cfg.federationId;
  }

  /** True once the fit is over: agents polling then learn there is nothing more to do. */
  get done(): boolean {
    return this.finished;
  }

  stop(): void {
    this.stopped = true;
  }

  // ------------------------------------------------------------------ incoming results

  /** Validates and stores one uploaded result body for a task owned by `siteId`. */
  async acceptResult(
    siteId: string,
    task: Task,
    kind: string,
    body: Buffer,
    peerCertPem: string | undefined,
  ): Promise<{ duplicate: boolean }> {
    const expected = { keygen: 'committee-key', measure: 'contribution', decrypt: 'partial' }[task.kind];
    if (kind !== expected)
      throw new RejectedResult(`task ${task.taskId} is a ${task.kind} task: expected a ${expected} body, got ${kind}`, 'invalid');
    try {
      switch (task.kind) {
        case 'keygen':
          return await this.acceptCommitteeKey(siteId, task, body, peerCertPem);
        case 'measure':
          return await this.acceptContribution(siteId, task, body);
        case 'decrypt':
          return await this.acceptPartial(siteId, task, body);
        default:
          throw new RejectedResult(`unknown task kind ${task.kind}`, 'invalid');
      }
    } catch (err) {
      if (err instanceof MalformedBodyError) throw new RejectedResult(err.message, 'invalid');
      if (err instanceof StoreError) {
        const code = err.code === 'conflict' ? 'conflict' : err.code === 'forbidden' ? 'forbidden' : 'precondition';
        throw new RejectedResult(err.message, code);
      }
      throw err;
    }
  }

  private async acceptCommitteeKey(
    siteId: string,
    task: Task,
    body: Buffer,
    peerCertPem: string | undefined,
  ): Promise<{ duplicate: boolean }> {
    const spec = decodeTaskSpec('keygen', task.spec);
    const key = CommitteeKeyCodec.decode(body);
    if (key.member_id !== siteId)
      throw new RejectedResult(`committee key names member ${key.member_id}, but the caller is ${siteId}`, 'forbidden');
    if (key.point !== spec.point)
      throw new RejectedResult(`committee key is for point ${key.point}, task assigned point ${spec.point}`, 'invalid');
    if (key.public_key.length === 0) throw new RejectedResult('committee key has an empty public key', 'invalid');
    const problem = certificateProblem(key.certificate_pem, this.caCert, siteId);
    if (problem === 'unreadable') throw new RejectedResult('committee key carries an unreadable certificate', 'invalid');
    if (problem === 'foreign-ca') throw new RejectedResult('committee key certificate is not issued by this federation', 'forbidden');
    if (problem === 'wrong-party') throw new RejectedResult(`committee key certificate is not ${siteId}'s`, 'forbidden');
    if (
      peerCertPem !== undefined &&
      new X509Certificate(peerCertPem).fingerprint256 !== new X509Certificate(key.certificate_pem).fingerprint256
    ) {
      throw new RejectedResult('committee key certificate differs from the connection certificate', 'forbidden');
    }
    const ok = verifyCommitteeKey(
      key.certificate_pem,
      {
        federationId: this.cfg.federationId,
        schemaHash: this.cfg.schemaHash,
        memberId: siteId,
        point: spec.point,
        publicKey: key.public_key,
      },
      key.signature,
    );
    if (!ok) throw new RejectedResult('committee key signature does not verify against the member certificate', 'forbidden');
    const put = await this.store.putSubmission({ federationId: this.cfg.federationId, taskId: task.taskId, siteId, body });
    if (!put.duplicate) {
      await this.store.putCommitteeKey({
        federationId: this.cfg.federationId,
        memberId: siteId,
        point: spec.point,
        publicKey: key.public_key,
        signature: key.signature,
        certificatePem: key.certificate_pem,
      });
    }
    return put;
  }

  private async acceptContribution(siteId: string, task: Task, body: Buffer): Promise<{ duplicate: boolean }> {
    const stored = decodeStoredMeasureRound(task.spec);
    const spec = stored.measure;
    const c = ContributionCodec.decode(body);
    const length = this.cells(spec.marginals);
    if (c.length !== length) throw new RejectedResult(`contribution has ${c.length} cells, the round measures ${length}`, 'invalid');
    const blocks = Math.ceil(length / BFV_POLY_MODULUS_DEGREE);
    if (c.shares.length !== spec.committee.length) {
      throw new RejectedResult(`contribution has ${c.shares.length} shares for a committee of ${spec.committee.length}`, 'invalid');
    }
    for (const member of spec.committee) {
      const share = c.shares.find((s) => s.member_id === member.memberId);
      if (!share || share.point !== member.point)
        throw new RejectedResult(`contribution has no share for member ${member.memberId}`, 'invalid');
      if (share.ciphertexts.length !== blocks) {
        throw new RejectedResult(`share for ${member.memberId} has ${share.ciphertexts.length} ciphertexts, expected ${blocks}`, 'invalid');
      }
    }
    // Only ciphertexts are stored: the coordinator never holds a site's plaintext vector.
    const put = await this.store.putSubmission({ federationId: this.cfg.federationId, taskId: task.taskId, siteId, body });
    return put;
  }

  private async acceptPartial(siteId: string, task: Task, body: Buffer): Promise<{ duplicate: boolean }> {
    const spec = decodeTaskSpec('decrypt', task.spec);
    const p = PartialDecryptionCodec.decode(body);
    if (p.member_id !== siteId)
      throw new RejectedResult(`partial decryption names ${p.member_id}, but the caller is ${siteId}`, 'forbidden');
    if (p.point !== spec.point) throw new RejectedResult(`partial decryption is for point ${p.point}, expected ${spec.point}`, 'invalid');
    if (p.share.length !== spec.length)
      throw new RejectedResult(`partial decryption has ${p.share.length} values, expected ${spec.length}`, 'invalid');
    const share = new Uint32Array(p.share.length);
    for (let i = 0; i < share.length; i++) {
      const v = Number(p.share[i]);
      if (!Number.isInteger(v) || v < 0 || v >= FIELD_PRIME)
        throw new RejectedResult(`partial decryption value ${i} is not a field element`, 'invalid');
      share[i] = v;
    }
    const put = await this.store.putSubmission({ federationId: this.cfg.federationId, taskId: task.taskId, siteId, body });
    if (!put.duplicate) {
      await this.store.putPartial({
        federationId: this.cfg.federationId,
        roundId: task.roundId,
        memberId: siteId,
        point: spec.point,
        share: new Uint8Array(share.buffer),
      });
    }
    return put;
  }

  async acceptRefusal(siteId: string, task: Task, reason: string): Promise<void> {
    await this.store.markTaskRefused(this.cfg.federationId, task.taskId, reason);
    await this.store.appendAudit(this.cfg.federationId, {
      type: 'task-refused',
      federationId: this.cfg.federationId,
      roundId: task.roundId,
      taskId: task.taskId,
      site: siteId,
      reason,
    });
  }

  // ------------------------------------------------------------------ the fit

  async run(): Promise<FitOutcome> {
    const fed = this.cfg.federationId;
    const existing = await this.store.getFederation(fed);
    if (existing && existing.schemaHash !== this.cfg.schemaHash) {
      throw new FitError(
        `federation ${fed} was created with schema ${existing.schemaHash}, this coordinator is configured with ${this.cfg.schemaHash}`,
      );
    }
    if (!existing) {
      await this.store.upsertFederation({ id: fed, schemaHash: this.cfg.schemaHash, schema: this.schema, config: this.publicConfig() });
    }
    try {
      await this.waitForRegistrations();
      const committee = await this.ensureCommittee();
      const planConfig = {
        plan: this.cfg.fit.plan,
        epsilon: this.cfg.fit.epsilon,
        delta: this.cfg.fit.delta,
        structure: this.schema.structure,
      };
      const plan = buildFitPlan(this.domain, planConfig);
      const aggregator = new ThresholdHeAggregator({
        store: this.store,
        board: this.board,
        cfg: this.cfg,
        bfv: this.bfv,
        domain: this.domain,
        bfvParams,
        committee,
        registeredSites: () => this.registeredSites(),
        waitUntil: (what, deadline, check) => this.waitUntil(what, deadline, check),
        progress: (phase, message) => this.progress(phase, message),
      });
      // Selection and estimation run in a worker thread: agents' pulls and uploads are answered
      // while Private-PGM runs (in-thread it blocked the event loop for 25–50 s at 30 sites).
      const planner = new WorkerPlanner(this.domain, planConfig);
      const fit = await runFit(plan, aggregator, {
        domain: this.domain,
        iterations: this.cfg.fit.iterations,
        planner,
        onProgress: (message) => this.progress('estimate', message),
      }).finally(() => planner.close());
      const model = fit.model!;
      const report = fit.report!;
      const roundsOut: FitOutcome['rounds'] = fit.rounds.map((r) => ({
        roundId: r.roundId,
        name: r.name,
        rho: r.rho,
        contributors: r.contributors,
        sigmaTotal: r.sigma,
      }));
      const spend = await this.store.spendBySite(fed);
      const spendBySite = Object.fromEntries(spend.map((s) => [s.siteId, s.rho]));
      const modelId = `model-${randomUUID()}`;
      const charged = roundsOut.reduce((s, r) => s + r.rho, 0);
      await this.store.putModel({ id: modelId, federationId: fed, rhoTotal: charged, model: model.toJSON() });
      await this.store.appendAudit(fed, {
        type: 'model-fitted',
        federationId: fed,
        modelId,
        rounds: roundsOut.map((r) => r.roundId),
        rhoBySite: spendBySite,
      });
      this.progress('estimate', `model ${modelId} fitted (loss ${report.loss.toFixed(1)}, total ≈ ${Math.round(report.total)})`);
      return {
        modelId,
        model,
        rounds: roundsOut,
        rhoTotal: charged,
        spendBySite,
        estimate: { iterations: report.iterations, loss: report.loss, total: report.total },
      };
    } finally {
      this.finished = true;
      this.board.notifyAll();
    }
  }

  private publicConfig() {
    return {
      sites: this.cfg.sites,
      committee: this.cfg.committee,
      rounds: this.cfg.rounds,
      fit: { epsilon: this.cfg.fit.epsilon, delta: this.cfg.fit.delta },
      bfv: bfvParams(),
    };
  }

  private cells(marginals: string[][]): number {
    return marginals.reduce((s, m) => s + this.domain.cells(m), 0);
  }

  private async waitUntil(what: string, deadline: number, check: () => Promise<boolean>): Promise<boolean> {
    for (;;) {
      if (this.stopped) throw new FitError(`stopped while waiting for ${what}`);
      if (await check()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private async registeredSites(): Promise<string[]> {
    const rows = await this.store.listSites(this.cfg.federationId);
    const known = new Set(rows.map((r) => r.siteId));
    return this.cfg.sites.filter((s) => known.has(s));
  }

  private async waitForRegistrations(): Promise<void> {
    const all = this.cfg.sites.length;
    this.progress('register', `waiting for ${all} sites to register`);
    const deadline = Date.now() + this.cfg.rounds.registrationMs;
    await this.waitUntil('registrations', deadline, async () => (await this.registeredSites()).length === all);
    const sites = await this.registeredSites();
    if (sites.length < this.cfg.rounds.quorum) {
      throw new FitError(
        `only ${sites.length} of ${all} sites registered (${sites.join(', ') || 'none'}); the quorum is ${this.cfg.rounds.quorum}`,
      );
    }
    this.progress('register', `${sites.length}/${all} sites registered: ${sites.join(', ')}`);
  }

  /** Committee keys: one keygen round; members that never answer fail the fit with a reason. */
  private async ensureCommittee(): Promise<CommitteeMemberSpec[]> {
    const fed = this.cfg.federationId;
    const members = this.cfg.committee.members;
    let round = await this.store.getRound(fed, KEYGEN_ROUND);
    if (!round) {
      const deadlineAt = new Date(Date.now() + this.cfg.rounds.deadlineMs);
      round = await this.store.createRound({
        federationId: fed,
        roundId: KEYGEN_ROUND,
        kind: 'keygen',
        spec: { members },
        quorum: members.length,
        deadlineAt,
      });
      const tasks = members.map((memberId, i) => ({
        federationId: fed,
        taskId: randomUUID(),
        roundId: KEYGEN_ROUND,
        siteId: memberId,
        kind: 'keygen' as const,
        spec: { kind: 'keygen', point: i + 1, bfv: bfvParams() } satisfies KeygenSpec,
      }));
      await this.store.createTasks(tasks);
      for (const t of tasks) await this.store.appendAudit(fed, taskIssuedEvent(t));
      for (const m of members) this.board.notify(m);
    }
    this.progress('keygen', `committee of ${members.length} (threshold ${this.cfg.committee.threshold}) generating BFV keys`);
    if (round.state === 'open') {
      await this.waitUntil(
        'committee keys',
        round.deadlineAt.getTime(),
        async () => (await this.store.listCommitteeKeys(fed)).length === members.length,
      );
      const keys = await this.store.listCommitteeKeys(fed);
      if (keys.length < members.length) {
        const missing = members.filter((m) => !keys.some((k) => k.memberId === m));
        await this.store.setRoundState(fed, KEYGEN_ROUND, 'failed', { failureReason: `no committee key from ${missing.join(', ')}` });
        throw new FitError(`committee members ${missing.join(', ')} published no key before the deadline`);
      }
      await this.store.expireTasks(fed, KEYGEN_ROUND);
      await this.store.setRoundState(fed, KEYGEN_ROUND, 'closed');
      await this.store.setRoundState(fed, KEYGEN_ROUND, 'released');
    } else if (round.state === 'failed') {
      throw new FitError(`committee key generation failed earlier: ${round.failureReason}`);
    }
    const keys = await this.store.listCommitteeKeys(fed);
    return keys
      .sort((a, b) => a.point - b.point)
      .map((k) => ({
        memberId: k.memberId,
        point: k.point,
        publicKey: Buffer.from(k.publicKey).toString('base64'),
        signature: Buffer.from(k.signature).toString('base64'),
        certificatePem: k.certificatePem,
      }));
  }
}
