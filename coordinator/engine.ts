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
import { BFV_COEFF_MODULUS_BITS, BFV_POLY_MODULUS_DEGREE } from '../privacy/crypto/bfv.ts';
import { FIELD_PRIME, FIELD_PRIME_BIG } from '../privacy/crypto/field.ts';
import { verifyCommitteeKey } from '../privacy/crypto/secure-aggregation.ts';
import { Domain } from '../model/domain.ts';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { parseSchema, schemaAttributes, type Schema } from '../schema/schema.ts';
import { buildFitPlan } from '../federation/plan.ts';
import { roundDomain, runFit } from '../federation/run-fit.ts';
import { WorkerPlanner } from '../federation/plan-worker.ts';
import { certificateProblem } from '../proto/tls-kit.ts';
import {
  decodeTaskSpec,
  InvalidTaskSpecError,
  parsePreflightAnswer,
  type BfvParams,
  type CommitteeMemberSpec,
  type KeygenSpec,
  type PreflightSpec,
} from '../proto/task-spec.ts';
import { verifyContributionShare } from '../privacy/crypto/verifiable-sum.ts';
import { fitRhoBudget } from '../privacy/dp/mechanisms.ts';
import { crashPoint } from './fault.ts';
import { CommitteeKeyCodec, ContributionCodec, MalformedBodyError, PartialDecryptionCodec } from '../proto/wire.ts';
import { decodeStoredMeasureRound, FitError, ThresholdHeAggregator } from './he-aggregator.ts';
import { checkMiaHistogramBody, MalformedHistogramError, type AuditRoundContext } from './audit-rounds.ts';

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
  private finishedAt: number | undefined;
  private readonly listeners: ProgressListener[] = [];
  /** The sleeps of waitUntil in progress, ended early by wake(). */
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly board: TaskBoard,
    private readonly cfg: CoordinatorConfig,
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

  /** When the fit ended (performance.now()), once done: since then polling agents are told so. */
  get doneAt(): number | undefined {
    return this.finishedAt;
  }

  stop(): void {
    this.stopped = true;
    this.wake();
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
    const expected = {
      preflight: 'preflight-answer',
      keygen: 'committee-key',
      measure: 'contribution',
      decrypt: 'partial',
      'mia-histogram': 'mia-histogram',
    }[task.kind];
    if (kind !== expected)
      throw new RejectedResult(`task ${task.taskId} is a ${task.kind} task: expected a ${expected} body, got ${kind}`, 'invalid');
    try {
      const accepted = await this.acceptBody(siteId, task, body, peerCertPem);
      this.wake();
      return accepted;
    } catch (err) {
      if (err instanceof MalformedBodyError || err instanceof InvalidTaskSpecError || err instanceof MalformedHistogramError)
        throw new RejectedResult(err.message, 'invalid');
      if (err instanceof StoreError) {
        const code = err.code === 'conflict' ? 'conflict' : err.code === 'forbidden' ? 'forbidden' : 'precondition';
        throw new RejectedResult(err.message, code);
      }
      throw err;
    }
  }

  private async acceptBody(siteId: string, task: Task, body: Buffer, peerCertPem: string | undefined): Promise<{ duplicate: boolean }> {
    switch (task.kind) {
      case 'preflight':
        // Checked here so that a malformed answer is refused at upload, not when the round is read.
        parsePreflightAnswer(body);
        return await this.store.putSubmission({ federationId: this.cfg.federationId, taskId: task.taskId, siteId, body });
      case 'keygen':
        return await this.acceptCommitteeKey(siteId, task, body, peerCertPem);
      case 'measure':
        return await this.acceptContribution(siteId, task, body);
      case 'decrypt':
        return await this.acceptPartial(siteId, task, body);
      case 'mia-histogram':
        checkMiaHistogramBody(decodeTaskSpec('mia-histogram', task.spec), body);
        return await this.store.putSubmission({ federationId: this.cfg.federationId, taskId: task.taskId, siteId, body });
      default:
        throw new RejectedResult(`unknown task kind ${task.kind}`, 'invalid');
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
    const length = this.cells(spec.marginals, spec.valueMap);
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
    // Members will refuse a sum with one unverifiable share in it, so a bad one is refused here,
    // at upload, where only its own site is affected.
    if (c.site_id !== siteId) throw new RejectedResult(`contribution names ${c.site_id}, but the caller is ${siteId}`, 'forbidden');
    if (c.quorum !== spec.quorum)
      throw new RejectedResult(`contribution is signed for quorum ${c.quorum}, the round's is ${spec.quorum}`, 'invalid');
    const problem = certificateProblem(c.certificate_pem, this.caCert, siteId);
    if (problem) throw new RejectedResult(`contribution carries a certificate that is ${problem} for ${siteId}`, 'forbidden');
    for (const share of c.shares) {
      const signed = verifyContributionShare(
        c.certificate_pem,
        {
          fitId: this.cfg.federationId,
          roundId: task.roundId,
          siteId,
          memberId: share.member_id,
          point: share.point,
          length,
          quorum: spec.quorum,
          ciphertexts: share.ciphertexts,
        },
        share.signature,
      );
      if (!signed)
        throw new RejectedResult(`share for ${share.member_id} is not signed by ${siteId}'s certificate for this round`, 'forbidden');
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
    this.wake();
  }

  // ------------------------------------------------------------------ the fit

  /**
   * The round machinery audit rounds run on (coordinator/audit-rounds.ts), after the fit, while
   * the engine is kept open (`run({ keepOpen: true })`, then `finish()`).
   */
  auditRoundContext(): AuditRoundContext {
    return {
      store: this.store,
      board: this.board,
      cfg: this.cfg,
      domain: this.domain,
      registeredSites: () => this.registeredSites(),
      waitUntil: (what, deadline, check) => this.waitUntil(what, deadline, check),
      progress: (phase, message) => this.progress(phase, message),
    };
  }

  /** Ends a fit run with `keepOpen`: agents polling then learn there is nothing more to do. */
  finish(): void {
    this.finished = true;
    this.finishedAt = performance.now();
    this.board.notifyAll();
  }

  /** The fit; with `keepOpen` the agents keep being served after it (audit rounds) until finish(). */
  async run(opts: { keepOpen?: boolean } = {}): Promise<FitOutcome> {
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
    const planConfig = this.planConfig();
    // Selection and estimation run in a worker thread: agents' pulls and uploads are answered
    // while Private-PGM runs (in-thread it blocked the event loop for 25–50 s at 30 sites). It is
    // started before the agents register so that its start-up (loading the model code) overlaps
    // their reading of their data instead of delaying round 1.
    const planner = new WorkerPlanner(this.domain, planConfig);
    try {
      await this.waitForRegistrations();
      await this.checkCommitteeRegistered();
      const plan = buildFitPlan(this.domain, planConfig);
      await this.preflight();
      const committee = await this.ensureCommittee();
      const aggregator = new ThresholdHeAggregator({
        store: this.store,
        board: this.board,
        cfg: this.cfg,
        domain: this.domain,
        bfvParams,
        committee,
        registeredSites: () => this.registeredSites(),
        waitUntil: (what, deadline, check) => this.waitUntil(what, deadline, check),
        progress: (phase, message) => this.progress(phase, message),
      });
      let selections = 0;
      const fit = await runFit(plan, aggregator, {
        domain: this.domain,
        iterations: this.cfg.fit.iterations,
        planner: {
          next: (done) => {
            this.progress('select', `choosing round ${++selections} from the ${done.length} released so far`);
            return planner.next(done);
          },
          estimate: (done, iterations) => planner.estimate(done, iterations),
        },
        onProgress: (message) => this.progress('estimate', message),
      });
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
    } catch (err) {
      this.finish();
      throw err;
    } finally {
      if (!opts.keepOpen) this.finish();
      await planner.close();
    }
  }

  private planConfig() {
    return { plan: this.cfg.fit.plan, epsilon: this.cfg.fit.epsilon, delta: this.cfg.fit.delta, structure: this.schema.structure };
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

  /** Cells of a round's answer, over the domain its value map counts on (band queries: fewer). */
  private cells(marginals: string[][], valueMap?: Record<string, number[]>): number {
    const domain = roundDomain(this.domain, { valueMap });
    return marginals.reduce((s, m) => s + domain.cells(m), 0);
  }

  /**
   * Polls `check` until it holds or `deadline` passes. A result or refusal stored for this fit
   * re-checks at once (wake()), so a round moves on as soon as its last answer is in; the poll
   * interval only bounds how late a deadline, a stop or an expiry is noticed.
   */
  private async waitUntil(what: string, deadline: number, check: () => Promise<boolean>): Promise<boolean> {
    for (;;) {
      if (this.stopped) throw new FitError(`stopped while waiting for ${what}`);
      if (await check()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, POLL_MS);
        this.waiters.add(done);
      });
    }
  }

  /** Ends every waitUntil's current sleep: an answer was stored, or the engine stops. */
  private wake(): void {
    for (const done of [...this.waiters]) done();
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

  /**
   * Key generation needs every committee member. A member that has not registered when the
   * registration deadline passes refuses the fit here, before any task is written, so that a
   * restart once it has registered starts cleanly (a keygen task for an unknown site would fail
   * on the tasks→sites foreign key, and an empty keygen round would fail every restart).
   */
  private async checkCommitteeRegistered(): Promise<void> {
    const keygen = await this.store.getRound(this.cfg.federationId, KEYGEN_ROUND);
    if (keygen && keygen.state !== 'open') return;
    const registered = new Set((await this.store.listSites(this.cfg.federationId)).map((s) => s.siteId));
    const missing = this.cfg.committee.members.filter((m) => !registered.has(m));
    if (missing.length === 0) return;
    throw new FitError(
      `committee member${missing.length > 1 ? 's' : ''} ${missing.join(', ')} had not registered when the registration deadline ` +
        `(${this.cfg.rounds.registrationMs / 1000} s) passed: key generation needs every member of the committee ` +
        `(${this.cfg.committee.members.join(', ')}, threshold ${this.cfg.committee.threshold}), so the fit is refused before ` +
        `any task is written or any budget spent; start ${missing.length > 1 ? 'their agents' : 'its agent'} (or change committee.members) and run the fit again`,
    );
  }

  /**
   * Pre-flight, before any budget is spent: every registered site answers a free "can you afford
   * this plan?" task (its policy and remaining budget against the plan's whole ρ; a committee
   * member also whether it will decrypt). The fit is refused, naming each site and why, when it
   * cannot finish: fewer sites than the quorum can contribute to every round, a committee member
   * cannot be reached (key generation needs every member), or fewer members than the threshold
   * will decrypt. A site that cannot afford the whole plan still gets its tasks: it answers those
   * its budget covers (each of them released, if the fit can finish) and refuses the rest.
   * Once a measure round exists the fit is past this point, and a restart does not ask again.
   */
  private async preflight(): Promise<void> {
    const fed = this.cfg.federationId;
    const rounds = await this.store.listRounds(fed, { kind: 'preflight' });
    let round = rounds.at(-1);
    if (round?.state === 'released') return;
    if ((await this.store.listRounds(fed, { kind: 'measure' })).length > 0) return;
    // A refused preflight stays in the record; asking again (caps raised, agents back) is a new round.
    if (!round || round.state === 'failed') round = await this.openPreflight(`preflight-${rounds.length + 1}`);
    const roundId = round.roundId;
    if (round.state === 'open') {
      this.progress('preflight', `asking every site whether it can afford the plan before round 1`);
      await this.waitUntil('preflight answers', round.deadlineAt.getTime(), async () =>
        (await this.store.listTasks(fed, roundId)).every((t) => t.state === 'done' || t.state === 'refused'),
      );
      await this.store.setRoundState(fed, roundId, 'closed');
    }
    await this.store.expireTasks(fed, roundId);
    const verdicts = await this.preflightVerdicts(roundId);
    const contributors = [...verdicts].filter(([, v]) => v.contribute === null).map(([site]) => site);
    const problems: string[] = [];
    if (contributors.length < this.cfg.rounds.quorum) {
      problems.push(
        `only ${contributors.length} site(s) (${contributors.join(', ') || 'none'}) can contribute to every round of the plan, ` +
          `the quorum is ${this.cfg.rounds.quorum}`,
      );
    }
    const { members, threshold } = this.cfg.committee;
    const unreachable = members.filter((m) => verdicts.get(m)?.reachable === false);
    if (unreachable.length > 0) {
      problems.push(`committee member(s) ${unreachable.join(', ')} cannot be reached, and key generation needs every member`);
    }
    const decrypting = members.filter((m) => verdicts.get(m)?.decrypt === null);
    if (decrypting.length < threshold) {
      problems.push(
        `the committee cannot reach its threshold: only ${decrypting.length} of its ${members.length} members ` +
          `(${decrypting.join(', ') || 'none'}) will decrypt, the threshold is ${threshold}`,
      );
    }
    const bySite = [...verdicts]
      .flatMap(([site, v]) => [
        ...(v.contribute ? [`${site}: ${v.contribute}`] : []),
        ...(v.decrypt && v.decrypt !== v.contribute ? [`${site} (committee): ${v.decrypt}`] : []),
      ])
      .join('; ');
    if (problems.length > 0) {
      const reason = `pre-flight: the fit cannot finish, refused before round 1 (no budget spent): ${problems.join('; ')}. ${bySite}`;
      await this.store.setRoundState(fed, roundId, 'failed', { failureReason: reason.slice(0, 4000) });
      throw new FitError(reason);
    }
    await this.store.setRoundState(fed, roundId, 'released');
    this.progress(
      'preflight',
      `${contributors.length} site(s) can afford the whole plan, ${decrypting.length} committee member(s) will decrypt` +
        (bySite ? ` (${bySite})` : ''),
    );
  }

  private async openPreflight(roundId: string) {
    const fed = this.cfg.federationId;
    const spec: PreflightSpec = {
      kind: 'preflight',
      epsilon: this.cfg.fit.epsilon,
      delta: this.cfg.fit.delta,
      rhoTotal: fitRhoBudget(this.cfg.fit.epsilon, this.cfg.fit.delta),
      quorum: this.cfg.rounds.quorum,
      threshold: this.cfg.committee.threshold,
      committee: [...this.cfg.committee.members],
    };
    const sites = await this.registeredSites();
    const tasks = sites.map((siteId) => ({ federationId: fed, taskId: randomUUID(), roundId, siteId, kind: 'preflight' as const, spec }));
    const { round } = await this.store.openRound(
      {
        federationId: fed,
        roundId,
        kind: 'preflight',
        spec,
        quorum: Math.max(1, this.cfg.rounds.quorum),
        deadlineAt: new Date(Date.now() + this.cfg.rounds.deadlineMs),
      },
      tasks,
      { auditEvents: tasks.map(taskIssuedEvent), beforeCommit: () => crashPoint('preflight.open-tx') },
    );
    crashPoint('preflight.opened');
    for (const s of sites) this.board.notify(s);
    return round;
  }

  /** Per site of a preflight round: null where it will, else why not (to contribute; to decrypt). */
  private async preflightVerdicts(
    roundId: string,
  ): Promise<Map<string, { contribute: string | null; decrypt: string | null; reachable: boolean }>> {
    const fed = this.cfg.federationId;
    const subs = new Map((await this.store.listSubmissions(fed, roundId)).map((s) => [s.siteId, s]));
    const tasks = new Map((await this.store.listTasks(fed, roundId)).map((t) => [t.siteId, t]));
    const registered = new Set((await this.store.listSites(fed)).map((s) => s.siteId));
    const out = new Map<string, { contribute: string | null; decrypt: string | null; reachable: boolean }>();
    for (const site of this.cfg.sites) {
      const member = this.cfg.committee.members.includes(site);
      const sub = subs.get(site);
      if (sub) {
        const a = parsePreflightAnswer(sub.body);
        out.set(site, {
          contribute: a.contribute.ok ? null : (a.contribute.reason ?? 'declined'),
          decrypt: !member ? null : a.decrypt?.ok ? null : (a.decrypt?.reason ?? 'did not say it will decrypt'),
          reachable: true,
        });
        continue;
      }
      const task = tasks.get(site);
      const why = !registered.has(site)
        ? 'not registered'
        : !task
          ? 'registered after the preflight was asked'
          : task.state === 'refused'
            ? `refused the preflight: ${task.refusalReason}`
            : 'did not answer the preflight before its deadline';
      out.set(site, { contribute: why, decrypt: member ? why : null, reachable: false });
    }
    return out;
  }

  /** Committee keys: one keygen round; members that never answer fail the fit with a reason. */
  private async ensureCommittee(): Promise<CommitteeMemberSpec[]> {
    const fed = this.cfg.federationId;
    const members = this.cfg.committee.members;
    let round = await this.store.getRound(fed, KEYGEN_ROUND);
    const keygenTasks = (ids: readonly string[]) =>
      ids.map((memberId) => ({
        federationId: fed,
        taskId: randomUUID(),
        roundId: KEYGEN_ROUND,
        siteId: memberId,
        kind: 'keygen' as const,
        spec: { kind: 'keygen', point: members.indexOf(memberId) + 1, bfv: bfvParams() } satisfies KeygenSpec,
      }));
    if (!round) {
      const tasks = keygenTasks(members);
      ({ round } = await this.store.openRound(
        {
          federationId: fed,
          roundId: KEYGEN_ROUND,
          kind: 'keygen',
          spec: { members },
          quorum: members.length,
          deadlineAt: new Date(Date.now() + this.cfg.rounds.deadlineMs),
        },
        tasks,
        { auditEvents: tasks.map(taskIssuedEvent), beforeCommit: () => crashPoint('keygen.open-tx') },
      ));
      crashPoint('keygen.opened');
      for (const m of members) this.board.notify(m);
    } else if (round.state === 'open') {
      round = await this.reissueMissingTasks(KEYGEN_ROUND, members, keygenTasks);
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
      crashPoint('keygen.keys-stored');
      await this.store.expireTasks(fed, KEYGEN_ROUND);
      round = await this.store.setRoundState(fed, KEYGEN_ROUND, 'closed');
    }
    if (round.state === 'closed') {
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

  /**
   * A round left open without tasks for some of `sites` (written by a coordinator that crashed
   * between the round's row and its tasks, before both went into one transaction): the missing
   * tasks are created now and the deadline moved so that they can still be answered.
   */
  private async reissueMissingTasks(
    roundId: string,
    sites: readonly string[],
    make: (sites: readonly string[]) => Parameters<Store['createTasks']>[0],
  ) {
    const fed = this.cfg.federationId;
    const have = new Set((await this.store.listTasks(fed, roundId)).map((t) => t.siteId));
    const missing = sites.filter((s) => !have.has(s));
    const round = (await this.store.getRound(fed, roundId))!;
    if (missing.length === 0) return round;
    const tasks = make(missing);
    await this.store.createTasks(tasks);
    for (const t of tasks) await this.store.appendAudit(fed, taskIssuedEvent(t));
    this.progress('resume', `${roundId}: re-issued the missing task(s) of ${missing.join(', ')}`);
    for (const s of missing) this.board.notify(s);
    return this.store.extendRoundDeadline(fed, roundId, new Date(Date.now() + this.cfg.rounds.deadlineMs));
  }
}
