// The coordinator process: storage, the mTLS gRPC server, the fit engine and the cohort.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { loadFederationService } from '../proto/wire.ts';
import { Bfv } from '../privacy/bfv.ts';
import { epsilonFromRho } from '../privacy/accountant.ts';
import { marginal } from '../model/marginals.ts';
import { normalisedL1 } from '../model/metrics.ts';
import type { CoordinatorConfig } from './config.ts';
import { openStore, type Store } from './store/index.ts';
import { TaskBoard } from './task-board.ts';
import { FederationEngine, type FitOutcome, type ProgressListener } from './engine.ts';
import { createFederationHandlers } from './service.ts';
import { createGrpcServer, bindServer, serverCredentialsFromKit } from './transport.ts';
import { createPeerIdentityResolver } from './peer-identity.ts';
import { writeCohort } from './cohort.ts';

export interface RunningCoordinator {
  port: number;
  store: Store;
  engine: FederationEngine;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
  onProgress?: ProgressListener;
  /** Test hook: an upload larger than this is refused (default: the wire limit). */
  maxBodyBytes?: number;
}

export async function startCoordinator(cfg: CoordinatorConfig, opts: StartOptions = {}): Promise<RunningCoordinator> {
  const log = opts.log ?? (() => undefined);
  const store = await openStore(cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema });
  let server: grpc.Server | undefined;
  let bfv: Bfv | undefined;
  try {
    bfv = await Bfv.create();
    const board = new TaskBoard();
    const engine = new FederationEngine(store, board, cfg, bfv);
    if (opts.onProgress) engine.onProgress(opts.onProgress);
    server = createGrpcServer({ 'grpc.max_receive_message_length': undefined } as grpc.ServerOptions);
    const handlers = createFederationHandlers({
      store,
      board,
      engine,
      federationId: cfg.federationId,
      schemaHash: cfg.schemaHash,
      allowedSites: cfg.sites,
      identify: createPeerIdentityResolver(cfg.kit.caPem),
      maxBodyBytes: opts.maxBodyBytes,
      log,
    });
    server.addService(loadFederationService().fedsynth.v1.Federation.service, handlers);
    const port = await bindServer(server, cfg.listen, serverCredentialsFromKit({ ca: Buffer.from(cfg.kit.caPem), cert: Buffer.from(cfg.kit.certPem), key: Buffer.from(cfg.kit.keyPem) }));
    log(`coordinator for federation ${cfg.federationId} listening on port ${port} (mTLS)`);
    const srv = server;
    const b = bfv;
    return {
      port,
      store,
      engine,
      async close() {
        engine.stop();
        board.notifyAll();
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
        b.dispose();
        await store.close();
      },
    };
  } catch (err) {
    server?.forceShutdown();
    bfv?.dispose();
    await store.close();
    throw err;
  }
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
  cohort?: { n: number; seed: number | string; files: Record<string, { path: string; resources: number }> };
  utility: {
    /** Mean L1 distance between the cohort's marginals and the released (noisy) measurements. */
    meanL1VsReleasedMeasurements?: number;
    note: string;
  };
  estimate: FitOutcome['estimate'];
}

/** Runs the fit to completion, writes the cohort and report.json, returns the report. */
export async function runFitAndCohort(cfg: CoordinatorConfig, running: RunningCoordinator): Promise<FitReport> {
  const outcome = await running.engine.run();
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
  };
  await mkdir(cfg.fit.outDir, { recursive: true });
  if (cfg.fit.cohortSize > 0) {
    const cohort = await writeCohort(running.engine.schema, outcome.model, { n: cfg.fit.cohortSize, seed: cfg.fit.seed, outDir: cfg.fit.outDir });
    report.cohort = { n: cfg.fit.cohortSize, seed: cfg.fit.seed, files: cohort.files };
    const released = await running.store.listMeasurements(cfg.federationId);
    const twoWay = released.filter((m) => m.attrs.length === 2);
    if (twoWay.length > 0) {
      let sum = 0;
      for (const m of twoWay) {
        const noisy = Float64Array.from(m.values, (v) => Math.max(0, v));
        sum += normalisedL1(noisy, marginal(cohort.dataset, m.attrs));
      }
      report.utility.meanL1VsReleasedMeasurements = sum / twoWay.length;
    }
    await running.store.putCohort({
      id: `cohort-${outcome.modelId}-${cfg.fit.seed}`,
      federationId: cfg.federationId,
      modelId: outcome.modelId,
      n: cfg.fit.cohortSize,
      seed: String(cfg.fit.seed),
      where: {},
      outDir: cfg.fit.outDir,
      report: { files: cohort.files },
    });
    await running.store.appendAudit(cfg.federationId, {
      type: 'cohort-emitted',
      federationId: cfg.federationId,
      modelId: outcome.modelId,
      cohortId: `cohort-${outcome.modelId}-${cfg.fit.seed}`,
      size: cfg.fit.cohortSize,
    });
  }
  await writeFile(join(cfg.fit.outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}
