// Operations of a running coordinator: its Prometheus metrics, the /healthz and /readyz endpoint,
// and the federation's revocation list applied to every caller. The engine and the store are
// observed from outside (instrumentStore), so the round machinery carries no metrics code.
import * as grpc from '@grpc/grpc-js';
import { createCoordinatorMetrics, refusalReason, type CoordinatorMetrics } from '../ops/metrics.ts';
import { startOpsServer, type ReadinessCheck, type RunningOpsServer } from '../ops/http.ts';
import {
  describeRevocationList,
  parseRevocationList,
  RevocationListError,
  RevocationWatcher,
  revokedMessage,
  type RevocationKeeper,
  type RevocationList,
} from '../proto/revocation.ts';
import type { FederationHandlers } from '../proto/generated/fedsynth/v1/Federation.ts';
import type { CoordinatorConfig } from './config.ts';
import { PeerIdentityError, type CallWithAuthContext, type SiteIdentity } from './peer-identity.ts';
import type { Store } from './store/index.ts';

export type { CoordinatorMetrics };

/** Counts rounds opened, released and failed, and times them, by watching the store's calls. */
export function instrumentStore(store: Store, metrics: CoordinatorMetrics): void {
  const setRoundState = store.setRoundState.bind(store);
  const release = store.recordChargesAndRelease.bind(store);
  const seconds = (createdAt: Date) => (Date.now() - createdAt.getTime()) / 1000;
  // The engine opens every round together with its tasks (one transaction, Store.openRound); a
  // round re-opened by a restart keeps its id and is not counted again.
  const openRound = store.openRound.bind(store);
  store.openRound = async (r, tasks, opts) => {
    const before = await store.getRound(r.federationId, r.roundId);
    const out = await openRound(r, tasks, opts);
    if (!before) metrics.roundStarted(out.round.kind);
    return out;
  };
  store.setRoundState = async (fed, roundId, to, opts) => {
    const round = await setRoundState(fed, roundId, to, opts);
    if (to === 'released' || to === 'failed') metrics.roundFinished(round.kind, to, seconds(round.createdAt));
    return round;
  };
  store.recordChargesAndRelease = async (...args) => {
    const out = await release(...args);
    metrics.roundFinished(out.round.kind, 'released', seconds(out.round.createdAt));
    return out;
  };
  metrics.setSpendSource(async () => {
    // Charges of the federation's own fit and of every study fit `<federation>/<study>`.
    const res = await store.sql.query<{ site_id: string; rho: number }>(
      `SELECT site_id, SUM(rho)::float8 AS rho FROM charges WHERE federation_id = $1 OR federation_id LIKE $2 GROUP BY site_id ORDER BY site_id`,
      [storeFederation(store), `${storeFederation(store)}/%`],
    );
    return res.rows.map((r) => ({ siteId: r.site_id, rho: Number(r.rho) }));
  });
}

const federationOf = new WeakMap<Store, string>();
function storeFederation(store: Store): string {
  return federationOf.get(store) ?? '';
}

/** The status name Prometheus shows for a refused call, e.g. permission_denied. */
function codeLabel(code: unknown): string {
  const name = typeof code === 'number' ? grpc.status[code] : undefined;
  return name ? name.toLowerCase() : 'internal';
}

/**
 * Wraps the service's handlers so that every refused call is counted by its status (a revoked
 * certificate by `revoked`), every refusal by a site by its reason family, and payload and
 * result bytes are counted where they cross the wire.
 */
export function instrumentHandlers(h: FederationHandlers, metrics: CoordinatorMetrics): FederationHandlers {
  const count = (err: unknown) => {
    const e = err as { code?: number; details?: string; message?: string } | null;
    if (!e) return;
    metrics.refused(/revoked/.test(e.details ?? e.message ?? '') ? 'revoked' : codeLabel(e.code));
  };
  const unary =
    <Req, Res>(
      fn: grpc.handleUnaryCall<Req, Res>,
      onOk?: (call: grpc.ServerUnaryCall<Req, Res>, res: Res) => void,
    ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) =>
      fn(call, (err, res, ...rest) => {
        if (err) count(err);
        else if (onOk && res) onOk(call, res);
        callback(err, res, ...rest);
      });
  return {
    Register: unary(h.Register, (call, res) => {
      const raw = call.metadata.get('fedsynth-policy')[0];
      if (typeof raw !== 'string' || !res.site_id) return;
      try {
        const p = JSON.parse(raw) as { rhoCap?: unknown; remainingRho?: unknown };
        if (typeof p.rhoCap === 'number' && typeof p.remainingRho === 'number')
          metrics.sitePublished(res.site_id, p.rhoCap, p.remainingRho);
      } catch {
        // The service decides what a malformed policy means; metrics just leave it out.
      }
    }),
    PullTask: unary(h.PullTask),
    RefuseTask: unary(h.RefuseTask, (call) => metrics.refused(`site-${refusalReason(call.request.reason ?? '')}`)),
    PushResult: ((call, callback) => {
      let bytes = 0;
      // Counted as they arrive, through the stream the handler reads, so nothing is buffered twice.
      const stream = call as unknown as { push: (chunk: { data?: Buffer } | null, enc?: BufferEncoding) => boolean };
      const push = stream.push.bind(call);
      stream.push = (chunk, enc) => {
        if (chunk?.data) bytes += chunk.data.length;
        return push(chunk, enc);
      };
      h.PushResult(call, (err, res, ...rest) => {
        if (err) count(err);
        else metrics.uploaded(bytes);
        callback(err, res, ...rest);
      });
    }) as FederationHandlers['PushResult'],
    FetchPayload: ((call) => {
      const write = call.write.bind(call);
      const destroy = call.destroy.bind(call);
      (call as unknown as { write: (chunk: { data?: Buffer }, ...rest: unknown[]) => boolean }).write = (chunk, ...rest) => {
        if (chunk?.data) metrics.downloaded(chunk.data.length);
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      };
      call.destroy = (err?: Error) => {
        count(err);
        return destroy(err);
      };
      h.FetchPayload(call);
    }) as FederationHandlers['FetchPayload'],
  };
}

/** Refuses a caller whose certificate is on the federation's revocation list. */
export function revocationCheckedIdentity(
  identify: (call: CallWithAuthContext) => SiteIdentity,
  revocation: RevocationWatcher | undefined,
): (call: CallWithAuthContext) => SiteIdentity {
  if (!revocation) return identify;
  return (call) => {
    const id = identify(call);
    const entry = revocation.current().lookup(id.serialNumber);
    if (entry) throw new PeerIdentityError(grpc.status.PERMISSION_DENIED, revokedMessage(`site ${id.siteId}`, entry));
    return id;
  };
}

/**
 * The highest list this coordinator accepted, kept in its store, so a restart with an older list
 * in its file refuses it as an agent does. A kept list that no longer verifies stops the start.
 */
async function storeRevocationKeeper(store: Store, federationId: string, caPem: string): Promise<RevocationKeeper> {
  const kept = await store.heldRevocationList(federationId);
  let held: RevocationList | undefined;
  if (kept) {
    try {
      held = await parseRevocationList(kept.pem, caPem, `the revocation list held in the coordinator's store`);
    } catch (err) {
      throw new RevocationListError(
        `${(err as Error).message}. Only this coordinator writes it (table revocation_lists); restore the store from a backup or delete that row to take the file as found`,
      );
    }
  }
  return {
    ...(held ? { held } : {}),
    persist: (list) =>
      store.keepRevocationList(federationId, {
        crlNumber: list.crlNumber?.toString() ?? '',
        sha256: list.signed.sha256,
        pem: list.signed.pem,
      }),
  };
}

export interface CoordinatorOps {
  metrics?: CoordinatorMetrics;
  revocation?: RevocationWatcher;
  /** Starts /metrics, /healthz, /readyz when the config asks for them. */
  serve(ready: Record<string, ReadinessCheck>): Promise<RunningOpsServer | undefined>;
  close(): Promise<void>;
}

/** Metrics and revocation for `cfg`; the endpoint starts once the caller can say what "ready" means. */
export async function openCoordinatorOps(
  cfg: CoordinatorConfig,
  store: Store,
  log: (line: string) => void,
  metrics?: CoordinatorMetrics,
): Promise<CoordinatorOps> {
  const m = metrics ?? (cfg.metrics ? createCoordinatorMetrics() : undefined);
  if (m) {
    federationOf.set(store, cfg.federationId);
    instrumentStore(store, m);
  }
  const revocation = cfg.revocationListFile
    ? await RevocationWatcher.open(cfg.revocationListFile, cfg.kit.caPem, {
        log,
        keeper: await storeRevocationKeeper(store, cfg.federationId, cfg.kit.caPem),
      })
    : undefined;
  if (revocation) log(`revocation list ${cfg.revocationListFile}: ${describeRevocationList(revocation.current())}`);
  // Agents given the same list would refuse every handshake: a coordinator restarted with a kit
  // its operator revoked stops here, with the remedy, rather than run unreachable.
  const own = revocation?.current().lookupPem(cfg.kit.certPem);
  if (own) {
    revocation!.close();
    throw new Error(
      `the coordinator's own certificate (serial ${own.serial}) is on the revocation list ${cfg.revocationListFile} since ${own.revokedAt.toISOString()}${own.reason ? ` (${own.reason})` : ''}: agents given the list refuse it. Start with the kit \`fedsynth provision rotate-coordinator\` issued`,
    );
  }
  let server: RunningOpsServer | undefined;
  return {
    metrics: m,
    revocation,
    async serve(ready) {
      if (!cfg.metrics) return undefined;
      server = await startOpsServer({ listen: cfg.metrics.listen, registry: m?.registry, ready });
      log(`metrics on ${server.url}/metrics, health on ${server.url}/healthz and ${server.url}/readyz`);
      return server;
    },
    async close() {
      revocation?.close();
      await server?.close();
    },
  };
}
