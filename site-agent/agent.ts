// The site agent: reads its patients once, then dials out to the coordinator, long-polls for
// tasks and answers them. It opens no port. Transient network errors are retried with
// exponential backoff and jitter; errors no retry can fix stop the agent with a distinct exit
// code, and a task the coordinator will never take is dropped (site-agent/agent-errors.ts).
// A task is never answered twice with different bytes (the ledger caches answers).
import { createHash, randomInt, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { FederationClient } from '../proto/generated/fedsynth/v1/Federation.ts';
import type { Header } from '../proto/generated/fedsynth/v1/Header.ts';
import type { Task__Output } from '../proto/generated/fedsynth/v1/Task.ts';
import type { PushAck__Output } from '../proto/generated/fedsynth/v1/PushAck.ts';
import type { RegisterResponse__Output } from '../proto/generated/fedsynth/v1/RegisterResponse.ts';
import type { PullTaskResponse__Output } from '../proto/generated/fedsynth/v1/PullTaskResponse.ts';
import type { Chunk, Chunk__Output } from '../proto/generated/fedsynth/v1/Chunk.ts';
import { parseTaskSpec, InvalidTaskSpecError } from '../proto/task-spec.ts';
import { sliceBody } from '../proto/wire.ts';
import { Bfv } from '../privacy/crypto/bfv.ts';
import type { Dataset } from '../model/domain.ts';
import { parseSchema } from '../schema/schema.ts';
import type { SiteConfig } from './config.ts';
import { checkSiteMaterial, createFederationClient, TransportConfigError } from './transport.ts';
import { AgentStopError, classifyCallError, describeCallError, TaskDroppedError, type CallKind } from './agent-errors.ts';
import { diskErrno, DiskWriteError } from './audit-log.ts';
import type { Ledger } from './ledger.ts';
import { openCheckedLedger } from './ledger-check.ts';
import { budgetGuard } from './policy.ts';
import { Quarantine } from './connectors/types.ts';
import { loadMultimodalSiteData, type MultimodalSiteData } from './site-data.ts';
import { auditFitId, decrypt, keygen, measure, preflight, TaskRefusal, type TaskAnswer, type TaskContext } from './tasks.ts';
import { miaHistogram } from './audit-tasks.ts';
import { previousSiteCertificates, recordCertificate } from './previous-certs.ts';
import { refusalReason, type AgentMetrics, type AgentBudget } from '../ops/metrics.ts';
import { startOpsServer, type RunningOpsServer } from '../ops/http.ts';
import type { RevocationWatcher } from '../proto/revocation.ts';
import { openSiteRevocation } from './revocation.ts';
import { SiteRoster, SiteRosterError } from './roster.ts';

export const AGENT_VERSION = '0.1.0';
const POLL_WAIT_MS = 20_000;
/** Backoff of a retried call: doubles from the base to the cap; each wait is drawn in [d/2, d]. */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5000;
/** At most one line per retried call per this interval; the lines count the attempts in between. */
const RETRY_LOG_INTERVAL_MS = 30_000;

/** Test and operations seams of an agent (no effect on what it computes or sends). */
export interface AgentHooks extends Pick<TaskContext, 'onNoisedVector'> {
  /** Awaited before each answer's upload (fault injection: a site that answers late). */
  beforePush?: (task: { taskId: string; roundId: string; kind: string }) => Promise<void>;
  /** Rate of the retry log lines (default 30 s). */
  retryLogIntervalMs?: number;
  /**
   * Longest wait between retries (default 5 s). Tests that restart the coordinator many times set
   * it lower, so that each restart is not followed by a wait of up to 5 s for the sites to return.
   */
  retryMaxMs?: number;
  /** How often the revocation list file is looked at for a change (default 5 s). */
  revocationRefreshMs?: number;
  /** Prometheus metrics of this agent (ops/metrics.ts), when it serves them. */
  metrics?: AgentMetrics;
}

export interface AgentEvents {
  log: (line: string) => void;
}

export interface LoadedSiteData {
  data: Dataset;
  patients: number;
  /** Local patient ids in row order (an audited fit's holdout is stored by them); never sent. */
  patientIds?: string[];
  quarantine: Quarantine;
}

/**
 * Reads and encodes the site's patients into the public schema (one row per patient), across
 * every modality the config names (FHIR, DICOM, VCF, notes; site-agent/site-data.ts). A
 * FHIR-only config reads FHIR only.
 */
export async function loadSiteData(cfg: SiteConfig): Promise<LoadedSiteData & { stats?: MultimodalSiteData['stats'] }> {
  const schema = parseSchema(cfg.schemaText);
  const loaded = await loadMultimodalSiteData(cfg, schema);
  loaded.data.validate();
  return {
    data: loaded.data,
    patients: loaded.patients,
    patientIds: loaded.patientIds,
    quarantine: loaded.quarantine,
    stats: loaded.stats,
  };
}

export class SiteAgent {
  private readonly client: FederationClient;
  private readonly ledger: Ledger;
  private bfv?: Bfv;
  private stopped = false;
  private readonly caCert: X509Certificate;
  private readonly attributeKinds: Record<string, string>;
  /** SHA-256 of the certificate the coordinator presented (TLS), checked against the policy's pin. */
  private coordinatorFingerprint: string | undefined;
  readonly answered: { taskId: string; kind: string; rho?: number; fresh: boolean }[] = [];
  readonly refused: { taskId: string; reason: string }[] = [];
  /** Tasks whose answer or refusal the coordinator would never take (e.g. expired): forgotten, not retried. */
  readonly dropped: { taskId: string; reason: string }[] = [];
  /** Calls in flight, cancelled by stop() so a signal does not wait out a long poll. */
  private readonly inflight = new Set<{ cancel(): void }>();
  private wakeSleep: (() => void) | undefined;
  private revocation?: RevocationWatcher;
  private readonly roster: SiteRoster;
  private ops?: RunningOpsServer;
  private registered = false;

  constructor(
    private readonly cfg: SiteConfig,
    private readonly site: LoadedSiteData,
    private readonly log: (line: string) => void = () => undefined,
    private readonly hooks: AgentHooks = {},
  ) {
    this.caCert = new X509Certificate(cfg.kit.caPem);
    this.attributeKinds = Object.fromEntries(parseSchema(cfg.schemaText).attributes.map((a) => [a.name, a.kind]));
    const material = { ca: Buffer.from(cfg.kit.caPem), cert: Buffer.from(cfg.kit.certPem), key: Buffer.from(cfg.kit.keyPem) };
    checkOwnCertificate(cfg, material);
    this.client = createFederationClient(cfg.coordinator, material, {
      serverCertificate: {
        onServerCertificate: (fp) => (this.coordinatorFingerprint = fp),
        // Read on every handshake: the list is opened in startOps, before the first call, and re-read when it changes.
        revoked: (serial) => this.revocation?.current().lookup(serial),
      },
    });
    let ledger: Ledger | undefined;
    try {
      const previousKeys = previousSiteCertificates({
        stateDir: cfg.stateDir,
        siteId: cfg.siteId,
        caPem: cfg.kit.caPem,
        certPem: cfg.kit.certPem,
        kitPrevious: cfg.kit.previousCertPems,
      });
      this.ledger = ledger = openCheckedLedger(cfg.stateDir, {
        audit: { party: cfg.siteId, privateKeyPem: cfg.kit.keyPem, previousKeys },
        guard: budgetGuard(cfg.policy),
      });
      recordCertificate(cfg.stateDir, cfg.kit.certPem);
      // An agent without a federation roster it can verify does not start.
      this.roster = SiteRoster.open({
        stateDir: cfg.stateDir,
        kitRosterFile: cfg.rosterFile,
        caPem: cfg.kit.caPem,
        federationId: cfg.federationId,
        log: this.log,
      });
      if (previousKeys.length) this.log(`audit log: also verified under ${previousKeys.length} earlier certificate(s) of ${cfg.siteId}`);
    } catch (err) {
      this.client.close();
      ledger?.close();
      if (err instanceof DiskWriteError)
        throw new AgentStopError('disk', `cannot open the ledger in ${cfg.stateDir}: ${err.message}`, { cause: err });
      if (err instanceof SiteRosterError) throw new AgentStopError('tls', err.message, { cause: err });
      throw err;
    }
    hooks.metrics?.setBudgetSource(() => this.budget());
    const rec = this.ledger.recovery;
    if (rec.tornTail) this.log(`ledger: dropped a torn final line (a crash mid-write; that answer was never sent)`);
    if (rec.orphanAnswersRemoved.length) this.log(`ledger: removed ${rec.orphanAnswersRemoved.length} unsent answer file(s)`);
  }

  private header(roundId = '', taskId = '', fitId = this.cfg.federationId): Header {
    return { federation_id: fitId, schema_hash: this.cfg.schemaHash, round_id: roundId, task_id: taskId };
  }

  /** A task of this federation: its own fit, or one of the fits a long-running coordinator runs per study. */
  private ownsFit(fitId: string): boolean {
    return fitId === this.cfg.federationId || fitId.startsWith(`${this.cfg.federationId}/`);
  }

  /**
   * What this site lets the coordinator show researchers before a study is approved: the cap that
   * applies to this federation and what is left of it now. The ledger still decides every charge.
   */
  private publishedPolicy(): string {
    const p = this.cfg.policy;
    const b = this.budget();
    return JSON.stringify({ epsilon: p.epsilon, delta: p.delta, rhoCap: b.capRho, remainingRho: b.remainingRho });
  }

  /** This federation's cap, spend and remainder from the policy and the ledger. */
  private budget(): AgentBudget {
    const p = this.cfg.policy;
    const state = this.ledger.state();
    const fedCap = p.federationCaps ? (p.federationCaps.byId[this.cfg.federationId] ?? p.federationCaps.other) : undefined;
    let rhoCap = p.rhoCap;
    let remaining = p.rhoCap - state.totalRho;
    if (fedCap === null) rhoCap = remaining = 0;
    else if (fedCap) {
      rhoCap = Math.min(rhoCap, fedCap.rho);
      remaining = Math.min(remaining, fedCap.rho - (state.byFederation[this.cfg.federationId] ?? 0));
    }
    const spentRho = state.byFederation[this.cfg.federationId] ?? 0;
    return { federationId: this.cfg.federationId, capRho: rhoCap, spentRho, remainingRho: Math.max(0, remaining) };
  }

  /** The revocation list and the metrics endpoint, when the config asks for them. */
  private async startOps(): Promise<void> {
    if (this.cfg.revocationListFile) {
      this.revocation = await openSiteRevocation({
        file: this.cfg.revocationListFile,
        stateDir: this.cfg.stateDir,
        caPem: this.cfg.kit.caPem,
        log: this.log,
        intervalMs: this.hooks.revocationRefreshMs,
      });
    }
    if (this.cfg.metrics) {
      this.ops = await startOpsServer({
        listen: this.cfg.metrics.listen,
        registry: this.hooks.metrics?.registry,
        ready: {
          ledger: () => !this.stopped || 'the agent is stopping',
          keys: () => this.bfv !== undefined || 'the BFV context is not loaded',
          coordinator: () => this.registered || `not registered with ${this.cfg.coordinator}`,
        },
      });
      this.log(`metrics on ${this.ops.url}/metrics, health on ${this.ops.url}/healthz and ${this.ops.url}/readyz`);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const call of this.inflight) call.cancel();
    this.wakeSleep?.();
  }

  private track<C extends { cancel(): void }>(call: C, done: Promise<unknown>): C {
    this.inflight.add(call);
    void done.finally(() => this.inflight.delete(call)).catch(() => undefined);
    return call;
  }

  /** Waits `ms`, or less if stop() is called. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  /** Where /metrics, /healthz and /readyz answer once run() started them (cfg.metrics set). */
  get opsUrl(): string | undefined {
    return this.ops?.url;
  }

  /** Runs until the coordinator reports the federation done (if exitWhenDone) or stop(). */
  async run(): Promise<void> {
    this.bfv = await Bfv.create();
    try {
      await this.startOps();
      await this.register();
      while (!this.stopped) {
        let lost = false;
        const res = await this.withRetry(
          'pull',
          () =>
            this.unary<PullTaskResponse__Output>(
              (opts, cb) => this.client.PullTask({ header: this.header(), wait_ms: POLL_WAIT_MS }, opts, cb),
              POLL_WAIT_MS + 15_000,
            ),
          () => (lost = true),
        );
        // A coordinator that went away (a restart) gets this site's registration and current budget again.
        if (lost) {
          this.registered = false;
          await this.register();
        }
        if (res.task) await this.handle(res.task);
        else if (res.federation_done && this.cfg.exitWhenDone) {
          this.log('coordinator reports the federation done; leaving');
          break;
        }
      }
    } catch (err) {
      // A daemon told to stop while a call is in flight ends cleanly: that call's error is moot.
      if (!this.stopped) throw err;
    } finally {
      this.close();
    }
  }

  /** Registers (again), publishing the site's cap and remaining budget for this federation. */
  private async register(): Promise<void> {
    await this.withRetry('register', async () => {
      const metadata = new grpc.Metadata();
      metadata.set('fedsynth-policy', this.publishedPolicy());
      const res = await this.unary<RegisterResponse__Output>(
        (opts, cb) =>
          this.client.Register({ header: this.header(), agent_version: AGENT_VERSION, protocol_version: 1 }, metadata, opts, cb),
        10_000,
      );
      if (res.site_id !== this.cfg.siteId)
        throw new AgentStopError(
          'identity',
          `the coordinator identifies this site's certificate as ${res.site_id}, but the config names site ${this.cfg.siteId}`,
        );
      this.registered = true;
      this.log(`registered with ${this.cfg.coordinator} as ${res.site_id} (${this.site.patients} patients)`);
    });
  }

  close(): void {
    this.stopped = true;
    this.revocation?.close();
    void this.ops?.close();
    this.client.close();
    this.ledger.close();
    this.bfv?.dispose();
    this.bfv = undefined;
  }

  /** One unary call with a deadline, cancelled by stop(). */
  private unary<Res>(
    call: (opts: grpc.CallOptions, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall,
    timeoutMs: number,
  ): Promise<Res> {
    let handle: grpc.ClientUnaryCall | undefined;
    const done = new Promise<Res>((resolve, reject) => {
      handle = call({ deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as Res)));
    });
    this.track(handle!, done);
    return done;
  }

  /**
   * Runs `fn` until it succeeds. A failure no retry can fix throws at once: AgentStopError (the
   * agent stops; the CLI exits with its code) or TaskDroppedError (the caller forgets the task).
   * Anything else is retried with exponential backoff, each wait drawn in [d/2, d] from the CSPRNG
   * (nothing in the agent uses Math.random), logged at most once per interval with a count of the
   * attempts in between, so a coordinator that is away for hours costs a few lines an hour.
   */
  private async withRetry<T>(kind: CallKind, fn: () => Promise<T>, onFailure?: () => void): Promise<T> {
    const interval = this.hooks.retryLogIntervalMs ?? RETRY_LOG_INTERVAL_MS;
    let delayMs = RETRY_BASE_MS;
    let lastLogAt = -Infinity;
    let unlogged = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fn();
        if (attempt > 1) this.log(`${kind} succeeded at attempt ${attempt}`);
        return res;
      } catch (err) {
        if (this.stopped) throw err;
        onFailure?.();
        const verdict = classifyCallError(kind, err, this.cfg.coordinator);
        if (verdict.action !== 'retry') throw verdict.error;
        const waitMs = Math.floor(delayMs / 2) + randomInt(Math.floor(delayMs / 2) + 1);
        if (Date.now() - lastLogAt >= interval) {
          const skipped = unlogged ? `; ${unlogged} earlier failed attempt(s) not shown` : '';
          this.log(`${kind} attempt ${attempt} failed (${describeCallError(err)})${skipped}; retrying in ${(waitMs / 1000).toFixed(1)} s`);
          lastLogAt = Date.now();
          unlogged = 0;
        } else unlogged++;
        await this.sleep(waitMs);
        if (this.stopped) throw err;
        delayMs = Math.min(delayMs * 2, this.hooks.retryMaxMs ?? RETRY_MAX_MS);
      }
    }
  }

  private context(task: Task__Output): TaskContext {
    return {
      siteId: this.cfg.siteId,
      federationId: this.cfg.federationId,
      fitId: task.header!.federation_id,
      schemaHash: this.cfg.schemaHash,
      taskId: task.header!.task_id,
      roundId: task.header!.round_id,
      bfv: this.bfv!,
      ledger: this.ledger,
      attributeKinds: this.attributeKinds,
      policy: this.cfg.policy,
      data: this.site.data,
      patientIds: this.site.patientIds,
      caCert: this.caCert,
      certPem: this.cfg.kit.certPem,
      keyPem: this.cfg.kit.keyPem,
      stateDir: this.cfg.stateDir,
      coordinatorFingerprint: this.coordinatorFingerprint,
      now: () => new Date(),
      onNoisedVector: this.hooks.onNoisedVector,
      revocation: this.revocation ? () => this.revocation!.current() : undefined,
      roster: () => this.roster.current(),
    };
  }

  private async handle(task: Task__Output): Promise<void> {
    const h = task.header;
    if (!h || !this.ownsFit(h.federation_id) || h.schema_hash !== this.cfg.schemaHash) {
      this.log(`ignoring a task for another federation or schema`);
      return;
    }
    const ctx = this.context(task);
    const metrics = this.hooks.metrics;
    const startedAt = performance.now();
    const cpuAt = process.cpuUsage();
    const elapsed = () => (performance.now() - startedAt) / 1000;
    const took = () => `${elapsed().toFixed(1)} s, cpu ${cpuSeconds(process.cpuUsage(cpuAt)).toFixed(1)} s`;
    metrics?.taskStarted(task.kind);
    let answer: TaskAnswer;
    try {
      const spec = parseTaskSpec(task.kind, task.spec_json);
      switch (spec.kind) {
        case 'preflight':
          answer = preflight(ctx, spec);
          break;
        case 'keygen':
          answer = keygen(ctx, spec);
          break;
        case 'measure':
          answer = measure(ctx, spec);
          break;
        case 'decrypt': {
          const payload = await this.withRetry('fetch', () =>
            this.fetchPayload(h.federation_id, h.round_id, h.task_id, task.payload_sha256),
          );
          answer = decrypt(ctx, spec, payload);
          break;
        }
        case 'mia-histogram': {
          const payload = await this.withRetry('fetch', () =>
            this.fetchPayload(h.federation_id, h.round_id, h.task_id, task.payload_sha256),
          );
          answer = miaHistogram(ctx, spec, payload);
          break;
        }
      }
    } catch (err) {
      if (err instanceof TaskRefusal || err instanceof InvalidTaskSpecError) {
        await this.refuse(ctx, err.message);
        metrics?.taskFinished(task.kind, 'refused', elapsed());
        return;
      }
      if (err instanceof AgentStopError) throw err;
      if (err instanceof TaskDroppedError) {
        this.log(`dropped task ${h.task_id} of ${h.round_id}: the coordinator no longer serves it (${err.message})`);
        this.dropped.push({ taskId: h.task_id, reason: err.message });
        return;
      }
      const disk = diskErrno(err);
      if (disk) {
        // The ledger took back whatever it had begun: nothing was charged, nothing is sent.
        this.log(`task ${h.task_id} of ${h.round_id} not answered: ${(err as Error).message}; nothing was charged or sent`);
        await this.refuse(ctx, `site cannot durably record this task (${disk} on its state folder); nothing was charged or sent`);
        return;
      }
      // An unexpected failure must not take the agent down: decline the task so the
      // coordinator does not wait for its deadline, and keep serving.
      this.log(`task ${h.task_id} failed: ${(err as Error).stack ?? err}`);
      await this.refuse(ctx, `site could not process the task: ${(err as Error).message}`);
      metrics?.taskFinished(task.kind, 'refused', elapsed());
      return;
    }
    await this.hooks.beforePush?.({ taskId: h.task_id, roundId: h.round_id, kind: task.kind });
    const ack = await this.withRetry('push', () => this.push(h.federation_id, h.round_id, h.task_id, answer)).catch((err: Error) => {
      if (err instanceof AgentStopError) throw err;
      if (err instanceof TaskDroppedError) {
        // The coordinator will never take this answer (its round closed, ...). The bytes left the
        // site, so a charge for them stays spent in the ledger: that is the truth, not a leak.
        const spent = answer.rho !== undefined ? `; its charge of ρ ${answer.rho.toFixed(5)} stays spent in the ledger` : '';
        this.log(`dropped task ${h.task_id} of ${h.round_id}: the coordinator will not take its answer (${err.message})${spent}`);
        this.dropped.push({ taskId: h.task_id, reason: err.message });
        return undefined;
      }
      this.log(`answer to ${h.round_id} not delivered: ${err.message}`);
      return undefined;
    });
    metrics?.taskFinished(task.kind, ack ? 'answered' : 'undelivered', elapsed());
    if (ack) this.answeredTask(task.kind, h.round_id, h.task_id, answer, ack.duplicate, took());
  }

  private answeredTask(kind: string, roundId: string, taskId: string, answer: TaskAnswer, resent: boolean, took: string): void {
    this.hooks.metrics?.uploaded(answer.body.length);
    this.answered.push({ taskId, kind: answer.kind, rho: answer.rho, fresh: answer.fresh });
    const spend = answer.rho !== undefined ? `, charged ρ ${answer.rho.toFixed(5)} (total ${this.ledger.totalRho().toFixed(5)})` : '';
    this.log(`answered ${kind} task of ${roundId} (${answer.body.length} bytes${resent ? ', resent' : ''}${spend}; ${took})`);
    if (answer.clippedCells) {
      this.log(
        `NOTE ${roundId}: ${answer.clippedCells} cell(s) of this site's counts exceeded the task's contribution bound and were clipped to it before noise`,
      );
    }
  }

  private async refuse(ctx: TaskContext, reason: string): Promise<void> {
    this.log(`REFUSED ${ctx.roundId}: ${reason}`);
    this.hooks.metrics?.refused(refusalReason(reason));
    this.refused.push({ taskId: ctx.taskId, reason });
    try {
      this.ledger.refuse({ taskId: ctx.taskId, roundId: ctx.roundId, federationId: ctx.federationId, reason, fitId: auditFitId(ctx) });
    } catch (err) {
      // A refusal releases and spends nothing, so it is still sent when the audit log cannot take it.
      if (!diskErrno(err)) throw err;
      this.log(`refusal of ${ctx.roundId} not in the audit log: ${(err as Error).message}`);
    }
    await this.withRetry('refuse', () =>
      this.unary<PushAck__Output>(
        (opts, cb) => this.client.RefuseTask({ header: this.header(ctx.roundId, ctx.taskId, ctx.fitId), reason }, opts, cb),
        10_000,
      ),
    ).catch((err: Error) => {
      if (err instanceof AgentStopError) throw err;
      this.log(`refusal not delivered: ${err.message}`);
    });
  }

  private fetchPayload(fitId: string, roundId: string, taskId: string, sha256: string): Promise<Uint8Array> {
    let call: grpc.ClientReadableStream<Chunk__Output> | undefined;
    const done = new Promise<Uint8Array>((resolve, reject) => {
      const parts: Buffer[] = [];
      call = this.client.FetchPayload({ header: this.header(roundId, taskId, fitId) }, { deadline: Date.now() + 120_000 });
      call.on('data', (c: Chunk__Output) => parts.push(c.data));
      call.on('error', reject);
      call.on('end', () => {
        const body = Buffer.concat(parts);
        this.hooks.metrics?.downloaded(body.length);
        const digest = createHash('sha256').update(body).digest('hex');
        if (sha256 && digest !== sha256) reject(new TaskRefusal('task payload does not match its announced sha256'));
        else resolve(body);
      });
    });
    this.track(call!, done);
    return done;
  }

  private push(fitId: string, roundId: string, taskId: string, answer: TaskAnswer): Promise<PushAck__Output> {
    let call: grpc.ClientWritableStream<Chunk> | undefined;
    const done = new Promise<PushAck__Output>((resolve, reject) => {
      const stream = this.client.PushResult({ deadline: Date.now() + 300_000 }, (err, res) => (err ? reject(err) : resolve(res!)));
      call = stream;
      const sha256 = createHash('sha256').update(answer.body).digest('hex');
      let first = true;
      for (const slice of sliceBody(answer.body)) {
        stream.write({
          header: first ? this.header(roundId, taskId, fitId) : null,
          kind: first ? answer.kind : '',
          total_bytes: first ? String(answer.body.length) : '0',
          sha256: first ? sha256 : '',
          data: Buffer.from(slice),
        });
        first = false;
      }
      stream.end();
    });
    this.track(call!, done);
    return done;
  }
}

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

/**
 * The kit must be this site's, of this federation, before anything is dialled: with another
 * site's certificate the coordinator would take this agent for that site (and record the policy
 * this config publishes as that site's), so no call is made at all.
 */
function checkOwnCertificate(cfg: SiteConfig, material: { ca: Buffer; cert: Buffer; key: Buffer }): void {
  let certSite: string;
  try {
    certSite = checkSiteMaterial(material, `site kit of ${cfg.siteId}`);
  } catch (err) {
    if (err instanceof TransportConfigError) throw new AgentStopError('tls', err.message, { cause: err });
    throw err;
  }
  if (certSite !== cfg.siteId)
    throw new AgentStopError(
      'identity',
      `this site's kit holds the certificate of site ${certSite}, but the config names site ${cfg.siteId}: not connecting (the coordinator would take this agent for ${certSite}); use the kit \`fedsynth provision\` made for ${cfg.siteId}`,
    );
  const certFederation = /(?:^|\n)O=([^\n]*)/.exec(new X509Certificate(material.cert).subject)?.[1];
  if (certFederation !== undefined && certFederation !== cfg.federationId)
    throw new AgentStopError(
      'identity',
      `this site's certificate belongs to federation ${certFederation}, but the config names federation ${cfg.federationId}: not connecting`,
    );
}
