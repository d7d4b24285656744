// The coordinator process: storage, the mTLS gRPC server, the fit engine and the cohort.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { loadFederationService } from '../proto/wire.ts';
import { epsilonFromRho } from '../privacy/dp/accountant.ts';
import { marginal } from '../model/marginals.ts';
import { normalisedL1 } from '../model/metrics.ts';
import type { CoordinatorConfig } from './config.ts';
import { openStore, type Store } from './store/index.ts';
import { modelMeasurement } from './he-aggregator.ts';
import { TaskBoard } from './task-board.ts';
import { FederationEngine, type FitOutcome, type ProgressListener } from './engine.ts';
import { createFederationHandlers, type ServiceDeps } from './service.ts';
import { DEFAULT_UPLOAD_LIMITS, UploadGate, type UploadLimits } from './chunks.ts';
import { createGrpcServer, bindServer, serverCredentialsFromKit } from './transport.ts';
import { createPeerIdentityResolver } from './peer-identity.ts';
import { instrumentHandlers, openCoordinatorOps, revocationCheckedIdentity, type CoordinatorMetrics, type CoordinatorOps } from './ops.ts';
import type { ReadinessCheck } from '../ops/http.ts';
import { writeCohort, type CohortRequest, type CohortResult } from '../synthesis/cohort.ts';
import { clinicalWorkloadReport, type ClinicalWorkloadReport } from '../synthesis/fidelity.ts';
import type { GraphicalModel } from '../model/pgm/index.ts';
import type { Schema } from '../schema/schema.ts';
import type { Dataset } from '../model/domain.ts';
import { sample } from '../model/sample.ts';
import { runMiaRounds, type MiaAuditReport } from './audit-rounds.ts';
import { PhaseClock, type PhaseTiming } from '../ops/phase-clock.ts';

export interface RunningCoordinator {
  port: number;
  /** Where /metrics, /healthz and /readyz answer (cfg.metrics set), e.g. http://127.0.0.1:9464. */
  opsUrl?: string;
  store: Store;
  engine: FederationEngine;
  /** Per-site upload accounting (open streams, bytes in flight, bytes read). */
  uploads: UploadGate;
  /** Wall and CPU seconds of opening the store and starting the server. */
  startup: PhaseTiming[];
  close(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
  onProgress?: ProgressListener;
  /** Test hook: an upload larger than this is refused (default: the wire limit). */
  maxBodyBytes?: number;
  /** Metrics to record into (default: a registry of its own when cfg.metrics is set). */
  metrics?: CoordinatorMetrics;
  /** Per-site upload caps (merged over DEFAULT_UPLOAD_LIMITS). */
  uploadLimits?: Partial<UploadLimits>;
}

export async function startCoordinator(cfg: CoordinatorConfig, opts: StartOptions = {}): Promise<RunningCoordinator> {
  const log = opts.log ?? (() => undefined);
  const clock = new PhaseClock();
  const store = await clock.time('open the store', () =>
    openStore(
      cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
    ),
  );
  clock.start('start the gRPC server');
  let server: grpc.Server | undefined;
  let ops: CoordinatorOps | undefined;
  try {
    ops = await openCoordinatorOps(cfg, store, log, opts.metrics);
    const board = new TaskBoard();
    const engine = new FederationEngine(store, board, cfg);
    if (opts.onProgress) engine.onProgress(opts.onProgress);
    server = createGrpcServer({ 'grpc.max_receive_message_length': undefined } as grpc.ServerOptions);
    const uploads = new UploadGate({ ...DEFAULT_UPLOAD_LIMITS, ...opts.uploadLimits });
    const port = await serveGrpc(server, cfg, { store, board, engine, maxBodyBytes: opts.maxBodyBytes, uploads, log, ops });
    const srv = server;
    let closing = false;
    const opsServer = await ops.serve(
      readinessChecks(
        store,
        () => !closing,
        () => !closing,
      ),
    );
    const o = ops;
    clock.end();
    return {
      port,
      ...(opsServer ? { opsUrl: opsServer.url } : {}),
      store,
      engine,
      uploads,
      startup: clock.phases(),
      async close() {
        closing = true;
        engine.stop();
        board.notifyAll();
        await shutdownGrpc(srv);
        await o.close();
        await store.close();
      },
    };
  } catch (err) {
    server?.forceShutdown();
    await ops?.close();
    await store.close();
    throw err;
  }
}

/** Adds the Federation service to `server` and binds it with mTLS; returns the port. */
export async function serveGrpc(
  server: grpc.Server,
  cfg: CoordinatorConfig,
  deps: Pick<ServiceDeps, 'store' | 'board' | 'engine' | 'fits' | 'maxBodyBytes' | 'uploads'> & {
    log: (line: string) => void;
    ops?: CoordinatorOps;
  },
): Promise<number> {
  const handlers = createFederationHandlers({
    ...deps,
    federationId: cfg.federationId,
    schemaHash: cfg.schemaHash,
    allowedSites: cfg.sites,
    identify: revocationCheckedIdentity(createPeerIdentityResolver(cfg.kit.caPem), deps.ops?.revocation),
  });
  const metrics = deps.ops?.metrics;
  server.addService(loadFederationService().fedsynth.v1.Federation.service, metrics ? instrumentHandlers(handlers, metrics) : handlers);
  const port = await bindServer(
    server,
    cfg.listen,
    serverCredentialsFromKit({ ca: Buffer.from(cfg.kit.caPem), cert: Buffer.from(cfg.kit.certPem), key: Buffer.from(cfg.kit.keyPem) }),
  );
  deps.log(`coordinator for federation ${cfg.federationId} listening on port ${port} (mTLS)`);
  return port;
}

/**
 * Ready = the store answers a query, the gRPC port is bound and not shutting down, and the
 * kit's keys are loaded (before the port is bound, so a bound port implies them). The
 * coordinator holds no BFV context: committee members sum and decrypt (verifiable sums).
 */
export function readinessChecks(store: Store, grpcUp: () => boolean, keysLoaded: () => boolean): Record<string, ReadinessCheck> {
  return {
    store: async () => {
      await store.sql.query('SELECT 1');
      return true as const;
    },
    grpc: () => grpcUp() || 'the gRPC server is not listening',
    keys: () => keysLoaded() || 'the TLS kit is not loaded',
  };
}

/** Lets calls in flight finish for up to 2 s, then cuts the rest. */
export async function shutdownGrpc(srv: grpc.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      srv.forceShutdown();
      resolve();
    }, 2000);
    srv.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export interface FitReport {
  federationId: string;
  schemaHash: string;
  modelId: string;
  delta: number;
  perSite: Record<string, { rho: number; epsilon: number; rounds: number }>;
  /** The guarantee every contributing site got: the sum of per-round charges. */
  total: { rho: number; epsilon: number; delta: number };
  rounds: FitOutcome['rounds'];
  sitesContributed: string[];
  cohort?: {
    n: number;
    seed: number | string;
    files: Record<string, { path: string; resources: number }>;
    plausibility?: CohortResult['plausibility'];
    rejected?: CohortResult['rejected'];
    clinical?: CohortResult['clinical'];
    modalities?: CohortResult['modalities'];
  };
  utility: {
    /** Mean L1 distance between the cohort's marginals and the released (noisy) measurements. */
    meanL1VsReleasedMeasurements?: number;
    note: string;
  };
  estimate: FitOutcome['estimate'];
  /** The schema's clinical workload against the released measurements (synthesis/fidelity.ts). */
  workload?: ClinicalWorkloadReport;
  /** An audited fit's membership-inference rounds (coordinator/audit-rounds.ts). */
  mia?: MiaAuditReport;
  /**
   * Wall and CPU seconds of the coordinator's phases, in order (CPU: the coordinator process only;
   * the sites' work shows as the wall time of the phases that wait for them).
   */
  timings: PhaseTiming[];
}

/** The coordinator-side name of each fit phase the engine reports (engine.ts progress events). */
const FIT_PHASES: Record<string, string> = {
  register: 'agents start and register',
  preflight: 'pre-flight',
  keygen: 'committee keygen',
  select: 'plan selection',
  measure: 'sites measure, noise, encrypt, sign, upload',
  aggregate: 'shares forwarded to members',
  decrypt: 'members verify, re-sum, decrypt',
  release: 'combine, charge, release',
  estimate: 'estimate (mirror descent)',
  resume: 'resume',
};

/** Runs the fit to completion, writes the cohort and report.json, returns the report. */
export async function runFitAndCohort(cfg: CoordinatorConfig, running: RunningCoordinator): Promise<FitReport> {
  // An audited fit keeps its agents served after the model, for the audit rounds on its cohort.
  const audited = cfg.fit.audit?.mia !== undefined;
  const clock = new PhaseClock();
  for (const t of running.startup) clock.add(t.phase, t.wallSeconds, t.cpuSeconds, t.count);
  running.engine.onProgress((e) => clock.start(FIT_PHASES[e.phase] ?? e.phase));
  const outcome = await running.engine.run({ keepOpen: audited });
  clock.end();
  try {
    return await reportAndCohort(cfg, running, outcome, clock);
  } finally {
    if (audited) running.engine.finish();
  }
}

async function reportAndCohort(
  cfg: CoordinatorConfig,
  running: RunningCoordinator,
  outcome: FitOutcome,
  clock: PhaseClock,
): Promise<FitReport> {
  const charges = await running.store.chargesByRound(cfg.federationId);
  const perSite: FitReport['perSite'] = {};
  for (const c of charges) {
    const p = (perSite[c.siteId] ??= { rho: 0, epsilon: 0, rounds: 0 });
    p.rho += c.rho;
    p.rounds += 1;
  }
  for (const p of Object.values(perSite)) p.epsilon = epsilonFromRho(p.rho, cfg.fit.delta);
  const report: FitReport = {
    federationId: cfg.federationId,
    schemaHash: cfg.schemaHash,
    modelId: outcome.modelId,
    delta: cfg.fit.delta,
    perSite,
    total: { rho: outcome.rhoTotal, epsilon: epsilonFromRho(outcome.rhoTotal, cfg.fit.delta), delta: cfg.fit.delta },
    rounds: outcome.rounds,
    sitesContributed: Object.keys(perSite).sort(),
    utility: { note: 'measured against DP-released marginals only; the coordinator never sees real data' },
    estimate: outcome.estimate,
    timings: [],
  };
  const released = (await running.store.listMeasurements(cfg.federationId)).map(modelMeasurement);
  clock.start('clinical workload report');
  report.workload = clinicalWorkloadReport(running.engine.schema, outcome.model, released, cfg.fit.seed);
  clock.end();
  await mkdir(cfg.fit.outDir, { recursive: true });
  let cohortDataset: Dataset | undefined;
  if (cfg.fit.cohortSize > 0) {
    clock.start('cohort draw and write');
    const cohort = await emitCohort(cfg, running.store, running.engine.schema, outcome.modelId, outcome.model, {
      n: cfg.fit.cohortSize,
      seed: cfg.fit.seed,
      dir: join(cfg.fit.outDir, 'cohort'),
    });
    cohortDataset = cohort.dataset;
    report.cohort = {
      n: cohort.dataset.rows,
      seed: cfg.fit.seed,
      files: cohort.files,
      plausibility: cohort.plausibility,
      rejected: cohort.rejected,
      clinical: cohort.clinical,
      ...(cohort.modalities ? { modalities: cohort.modalities } : {}),
    };
    report.utility.meanL1VsReleasedMeasurements = cohort.meanL1VsReleasedMeasurements;
    clock.end();
  }
  if (cfg.fit.audit?.mia) {
    // The cohort as released is what the audit attacks; a fit that writes none audits a sample.
    const attacked = cohortDataset ?? sample(outcome.model, { rows: cfg.fit.audit.mia.cohortRows, seed: cfg.fit.seed });
    clock.start('membership-inference rounds');
    report.mia = await runMiaRounds(running.engine.auditRoundContext(), attacked);
    clock.end();
  }
  report.timings = clock.phases();
  await writeFile(join(cfg.fit.outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

export interface EmittedCohort extends CohortResult {
  cohortId: string;
  /** Mean L1 between the cohort's 2-way marginals and the released noisy ones (none: undefined). */
  meanL1VsReleasedMeasurements?: number;
}

/**
 * Samples and writes a cohort from a stored model, records it and its audit entry. Cohorts are
 * post-processing of DP output: they cost no budget, whatever their size or filter.
 */
export async function emitCohort(
  cfg: Pick<CoordinatorConfig, 'federationId'>,
  store: Store,
  schema: Schema,
  modelId: string,
  model: GraphicalModel,
  req: CohortRequest & { whereText?: string },
): Promise<EmittedCohort> {
  const cohort = await writeCohort(schema, model, req);
  const released = await store.listMeasurements(cfg.federationId);
  // A noisy marginal whose cells are all ≤ 0 after clipping has no distribution to compare with
  // (small sites, large noise): it is left out rather than failing the cohort.
  // Band queries (coarsened measurements) have no fine cells to compare with a cohort marginal.
  const twoWay = released
    .filter((m) => m.attrs.length === 2 && !m.coarsen)
    .map((m) => ({ attrs: m.attrs, clipped: Float64Array.from(m.values, (v) => Math.max(0, v)) }))
    .filter((m) => m.clipped.some((v) => v > 0));
  let meanL1: number | undefined;
  if (twoWay.length > 0 && !req.where) {
    let sum = 0;
    for (const m of twoWay) sum += normalisedL1(m.clipped, marginal(cohort.dataset, m.attrs));
    meanL1 = sum / twoWay.length;
  }
  // Same model, seed, size and filter give the same rows; each emission is still its own record.
  const contentId = createHash('sha256')
    .update(JSON.stringify([modelId, req.seed, req.n, req.where ?? {}]))
    .digest('hex')
    .slice(0, 12);
  const cohortId = `cohort-${contentId}-${randomUUID().slice(0, 8)}`;
  await store.putCohort({
    id: cohortId,
    federationId: cfg.federationId,
    modelId,
    n: req.n,
    seed: String(req.seed),
    where: { text: req.whereText ?? '', allowed: req.where ?? {} },
    outDir: req.dir,
    report: {
      files: cohort.files,
      plausibility: cohort.plausibility,
      rejected: cohort.rejected,
      clinical: cohort.clinical,
      ...(cohort.modalities ? { modalities: cohort.modalities } : {}),
    },
  });
  await store.appendAudit(cfg.federationId, { type: 'cohort-emitted', federationId: cfg.federationId, modelId, cohortId, size: req.n });
  return { ...cohort, cohortId, meanL1VsReleasedMeasurements: meanL1 };
}
