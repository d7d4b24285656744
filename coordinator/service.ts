// gRPC handlers of the Federation service. Every call is authenticated by the client
// certificate (never by anything in the message), checked against the federation id, the
// schema hash and the task it names; a rejected call changes no state.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { FederationHandlers } from '../proto/generated/fedsynth/v1/Federation.ts';
import type { Header__Output } from '../proto/generated/fedsynth/v1/Header.ts';
import type { Chunk__Output } from '../proto/generated/fedsynth/v1/Chunk.ts';
import type { PushAck } from '../proto/generated/fedsynth/v1/PushAck.ts';
import type { Task as WireTask } from '../proto/generated/fedsynth/v1/Task.ts';
import { CHUNK_BYTES, MAX_BODY_BYTES, sliceBody } from '../proto/wire.ts';
import { wireTaskSpec } from './audit.ts';
import { receiveBody, resultByteBound, UploadError, UploadGate, type UploadSlot } from './chunks.ts';
import { RejectedResult, type FederationEngine } from './engine.ts';
import type { TaskBoard } from './task-board.ts';
import type { Store, Task } from './store/index.ts';
import { PeerIdentityError, type SiteIdentity, type CallWithAuthContext } from './peer-identity.ts';

export const COORDINATOR_VERSION = '0.1.0';
const MAX_WAIT_MS = 30_000;
const PULL_RECHECK_MS = 5_000;
const TOUCH_EVERY_MS = 15_000;
/** Uploads written to the store concurrently (the PostgreSQL pool has 10 connections). */
const STORE_WRITERS = 4;

/** Runs at most `limit` tasks at once, the rest in arrival order. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next in line, so no newcomer slips in between.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }

  get waiting(): number {
    return this.queue.length;
  }
}

class CallError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The fits a long-running coordinator serves besides the federation's own (one per study, stored
 * under the fit id `<federation>/<study>`): agents pull their tasks across all of them.
 */
export interface FitRouter {
  /** Fit ids whose tasks agents may pull now. */
  active(): string[];
  engine(fitId: string): FederationEngine | undefined;
  /** Registration of a site (with the policy it publishes in the call's metadata). */
  onRegister(siteId: string, metadata: grpc.Metadata): Promise<void>;
}

export interface ServiceDeps {
  store: Store;
  board: TaskBoard;
  /** The fit of the federation id itself (the one-shot coordinator); a service may have none. */
  engine?: FederationEngine;
  fits?: FitRouter;
  federationId: string;
  schemaHash: string;
  allowedSites: readonly string[];
  identify: (call: CallWithAuthContext) => SiteIdentity;
  maxBodyBytes?: number;
  /** Per-site caps on upload streams and bytes in flight (default: DEFAULT_UPLOAD_LIMITS). */
  uploads?: UploadGate;
  log?: (line: string) => void;
}

function toServiceError(err: unknown): grpc.ServiceError {
  if (err instanceof CallError || err instanceof PeerIdentityError) {
    return Object.assign(new Error(err.message), {
      code: err.code,
      details: err.message,
      metadata: new grpc.Metadata(),
    }) as grpc.ServiceError;
  }
  if (err instanceof UploadError) {
    const code = {
      'too-large': grpc.status.RESOURCE_EXHAUSTED,
      busy: grpc.status.RESOURCE_EXHAUSTED,
      stalled: grpc.status.DEADLINE_EXCEEDED,
      invalid: grpc.status.INVALID_ARGUMENT,
      digest: grpc.status.INVALID_ARGUMENT,
    }[err.code];
    return Object.assign(new Error(err.message), { code, details: err.message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
  }
  if (err instanceof RejectedResult) {
    const code = {
      invalid: grpc.status.INVALID_ARGUMENT,
      precondition: grpc.status.FAILED_PRECONDITION,
      forbidden: grpc.status.PERMISSION_DENIED,
      conflict: grpc.status.ALREADY_EXISTS,
    }[err.code];
    return Object.assign(new Error(err.message), { code, details: err.message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
  }
  const message = `internal error: ${(err as Error).message}`;
  return Object.assign(new Error(message), {
    code: grpc.status.INTERNAL,
    details: message,
    metadata: new grpc.Metadata(),
  }) as grpc.ServiceError;
}

export function createFederationHandlers(deps: ServiceDeps): FederationHandlers {
  const log = deps.log ?? (() => undefined);
  const maxBody = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const uploads = deps.uploads ?? new UploadGate();
  const touched = new Map<string, number>();
  const storeWriters = new Limiter(STORE_WRITERS);

  const site = (call: CallWithAuthContext): SiteIdentity => {
    const id = deps.identify(call);
    if (id.federationId && id.federationId !== deps.federationId) {
      throw new CallError(
        grpc.status.PERMISSION_DENIED,
        `certificate of ${id.siteId} belongs to federation ${id.federationId}, not ${deps.federationId}`,
      );
    }
    if (!deps.allowedSites.includes(id.siteId)) {
      throw new CallError(grpc.status.PERMISSION_DENIED, `site ${id.siteId} is not a member of federation ${deps.federationId}`);
    }
    return id;
  };

  const checkHeader = (header: Header__Output | null | undefined, needTask: boolean): Header__Output => {
    if (!header) throw new CallError(grpc.status.INVALID_ARGUMENT, 'request carries no header');
    if (header.federation_id !== deps.federationId && !deps.fits?.engine(header.federation_id)) {
      throw new CallError(
        grpc.status.FAILED_PRECONDITION,
        `federation id ${JSON.stringify(header.federation_id)} does not match ${deps.federationId}${deps.fits ? ' or a running study of it' : ''}`,
      );
    }
    if (header.schema_hash !== deps.schemaHash) {
      throw new CallError(
        grpc.status.FAILED_PRECONDITION,
        `schema hash ${header.schema_hash.slice(0, 16) || '(empty)'}… does not match the federation's ${deps.schemaHash.slice(0, 16)}…`,
      );
    }
    if (needTask && !header.task_id) throw new CallError(grpc.status.INVALID_ARGUMENT, 'request names no task id');
    return header;
  };

  const ownedTask = async (siteId: string, header: Header__Output): Promise<Task> => {
    const task = await deps.store.getTask(header.federation_id, header.task_id);
    if (!task) throw new CallError(grpc.status.NOT_FOUND, `unknown task ${header.task_id}`);
    if (task.siteId !== siteId) throw new CallError(grpc.status.PERMISSION_DENIED, `task ${header.task_id} is not addressed to ${siteId}`);
    if (header.round_id !== task.roundId) {
      throw new CallError(
        grpc.status.INVALID_ARGUMENT,
        `round id ${JSON.stringify(header.round_id)} does not match task's round ${task.roundId}`,
      );
    }
    return task;
  };

  const engineFor = (t: Task): FederationEngine => {
    const engine = t.federationId === deps.federationId ? deps.engine : deps.fits?.engine(t.federationId);
    if (!engine) throw new CallError(grpc.status.FAILED_PRECONDITION, `fit ${t.federationId} is not running`);
    return engine;
  };

  const wireTask = (t: Task): WireTask => ({
    header: { federation_id: t.federationId, schema_hash: deps.schemaHash, round_id: t.roundId, task_id: t.taskId },
    kind: t.kind,
    spec_json: JSON.stringify(wireTaskSpec(t)),
    payload_bytes: String(t.payload?.length ?? 0),
    payload_sha256: t.payloadSha256 ?? '',
    deadline_unix_ms: '0',
  });

  return {
    Register(call, callback) {
      (async () => {
        const id = site(call);
        checkHeader(call.request.header, false);
        await deps.store.registerSite(deps.federationId, id.siteId, call.request.agent_version || undefined);
        await deps.fits?.onRegister(id.siteId, call.metadata);
        log(`site ${id.siteId} registered (agent ${call.request.agent_version || 'unknown'})`);
        return {
          site_id: id.siteId,
          federation_id: deps.federationId,
          schema_hash: deps.schemaHash,
          coordinator_version: COORDINATOR_VERSION,
        };
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err)),
      );
    },

    PullTask(call, callback) {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      (async () => {
        const id = site(call);
        checkHeader(call.request.header, false);
        // last_seen_at to within TOUCH_EVERY_MS: one write per pull was a queue of writes at
        // hundreds of sites, all pulling again the moment a round opens.
        const now = Date.now();
        if (now - (touched.get(id.siteId) ?? 0) >= TOUCH_EVERY_MS) {
          touched.set(id.siteId, now);
          await deps.store.touchSite(deps.federationId, id.siteId);
        }
        const waitMs = Math.min(Math.max(call.request.wait_ms, 0), MAX_WAIT_MS);
        const until = Date.now() + waitMs;
        for (;;) {
          // Tasks of fits nobody runs here (a one-shot fit interrupted before a service started) stay put.
          for (const fitId of [...(deps.engine ? [deps.federationId] : []), ...(deps.fits?.active() ?? [])]) {
            const task = await deps.store.nextTaskForSite(fitId, id.siteId);
            if (task) return { task: wireTask(task), federation_done: false };
          }
          // A service keeps its agents for the next study; only a one-shot fit is ever done.
          if (!deps.fits && deps.engine?.done) return { task: null, federation_done: true };
          const left = until - Date.now();
          if (left <= 0 || abort.signal.aborted) return { task: null, federation_done: false };
          // Re-check periodically as well: tasks created by another coordinator process (after
          // a restart) or a round reopening must not wait for a notification that never comes.
          // Every 5 s, not every second: each re-check is a query, and with N agents long-polling
          // that is N/5 queries a second on the store (tasks made here wake the site at once).
          await deps.board.wait(id.siteId, Math.min(left, PULL_RECHECK_MS), abort.signal);
        }
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err)),
      );
    },

    FetchPayload(call) {
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      (async () => {
        const id = site(call);
        const header = checkHeader(call.request.header, true);
        const task = await ownedTask(id.siteId, header);
        if (task.state === 'expired' || task.state === 'refused')
          throw new CallError(grpc.status.FAILED_PRECONDITION, `task ${task.taskId} is ${task.state}: its payload is no longer served`);
        if (!task.payload) {
          // A decrypt task always gets its payload, a mia-histogram task (the cohort) is written with
          // it; the other kinds never have one.
          if (task.kind === 'decrypt') throw new CallError(grpc.status.UNAVAILABLE, `task ${task.taskId}: payload not ready yet`);
          throw new CallError(grpc.status.FAILED_PRECONDITION, `task ${task.taskId} is a ${task.kind} task: it has no payload to fetch`);
        }
        const body = Buffer.from(task.payload);
        const sha256 = createHash('sha256').update(body).digest('hex');
        let first = true;
        for (const slice of sliceBody(body, CHUNK_BYTES)) {
          if (cancelled) return;
          const ok = call.write({
            header: first ? header : null,
            kind: first ? 'payload' : '',
            total_bytes: first ? String(body.length) : '0',
            sha256: first ? sha256 : '',
            data: Buffer.from(slice),
          });
          first = false;
          if (!ok)
            await new Promise<void>((r) => {
              const done = () => {
                call.off('drain', done);
                call.off('cancelled', done);
                r();
              };
              call.once('drain', done);
              call.once('cancelled', done);
            });
        }
        call.end();
        // grpc-js sends a server stream's status only through 'error' (destroy() would drop it and
        // leave the caller waiting for its deadline).
      })().catch((err) => {
        if (!cancelled) call.emit('error', toServiceError(err));
      });
    },

    PushResult(call, callback) {
      let slot: UploadSlot | undefined;
      (async (): Promise<PushAck> => {
        const id = site(call);
        slot = uploads.open(id.siteId);
        const admitted = slot;
        let task: Task | undefined;
        const received = await receiveBody(call as AsyncIterable<Chunk__Output>, maxBody, {
          idleMs: uploads.limits.idleMs,
          onBytes: (n) => (uploads.bytesRead += n),
          // Everything that can refuse the upload is decided from the first chunk, before its body.
          admit: async (first) => {
            const header = checkHeader(first.header, true);
            const t = await ownedTask(id.siteId, header);
            if (t.state === 'expired') {
              throw new CallError(grpc.status.FAILED_PRECONDITION, `task ${t.taskId} expired: its round closed before this result arrived`);
            }
            if (t.state === 'refused') throw new CallError(grpc.status.FAILED_PRECONDITION, `task ${t.taskId} was refused by this site`);
            const engine = engineFor(t);
            const spec = (t.spec ?? {}) as { measure?: { marginals?: string[][]; committee?: unknown[] }; length?: number };
            const marginals = spec.measure?.marginals;
            // Over the original domain: an upper bound for a round with a value map (band queries).
            const cells = Array.isArray(marginals) ? marginals.reduce((n, m) => n + engine.domain.cells(m), 0) : undefined;
            const bound = resultByteBound(t.kind, { length: spec.length, committee: spec.measure?.committee }, cells, maxBody);
            if (first.declaredBytes > bound) {
              throw new UploadError(
                `declared body of ${first.declaredBytes} bytes exceeds the ${bound}-byte bound of a ${t.kind} result for task ${t.taskId}`,
                'too-large',
              );
            }
            admitted.reserve(first.declaredBytes);
            task = t;
          },
        });
        // receiveBody only returns after admit() accepted the task.
        const accepted = task!;
        // At most STORE_WRITERS uploads write at once: with hundreds of sites uploading together,
        // their transactions otherwise fill the store's connection pool and the fit's own queries
        // time out waiting behind them (seen at 300 sites on PostgreSQL).
        const res = await storeWriters.run(() =>
          engineFor(accepted).acceptResult(id.siteId, accepted, received.kind, received.body, id.certificatePem),
        );
        log(
          `${received.kind} from ${id.siteId} for ${accepted.roundId} (${received.body.length} bytes${res.duplicate ? ', duplicate' : ''})`,
        );
        return { accepted: true, duplicate: res.duplicate, message: res.duplicate ? 'identical result already stored' : 'stored' };
      })()
        .then(
          (res) => callback(null, res),
          (err) => {
            log(`rejected upload: ${(err as Error).message}`);
            callback(toServiceError(err));
          },
        )
        .finally(() => slot?.release());
    },

    RefuseTask(call, callback) {
      (async (): Promise<PushAck> => {
        const id = site(call);
        const header = checkHeader(call.request.header, true);
        const task = await ownedTask(id.siteId, header);
        const reason = call.request.reason.trim();
        if (!reason) throw new CallError(grpc.status.INVALID_ARGUMENT, 'a refusal needs a reason');
        if (task.state === 'done') throw new CallError(grpc.status.FAILED_PRECONDITION, `task ${task.taskId} was already answered`);
        await engineFor(task).acceptRefusal(id.siteId, task, reason.slice(0, 2000));
        log(`site ${id.siteId} refused ${task.roundId}: ${reason}`);
        return { accepted: true, duplicate: false, message: 'refusal recorded' };
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err)),
      );
    },
  };
}
