// `fedsynth serve`: the long-running coordinator. gRPC with mTLS for the agents, serving one study
// after another (each its own fit), and the HTTP API and web page for people. A restart resumes
// unfinished studies and cohort requests from the database.
import { join } from 'node:path';
import type { Server } from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import { parseSchema } from '../schema/schema.ts';
import type { CoordinatorConfig } from './config.ts';
import { readinessChecks, serveGrpc, shutdownGrpc } from './coordinator.ts';
import { openCoordinatorOps, type CoordinatorOps } from './ops.ts';
import { CohortWorker } from './cohort-jobs.ts';
import { COORDINATOR_PARTY, openStore, StudyStore, type Store } from './store/index.ts';
import { StudyRunner } from './studies.ts';
import { TaskBoard } from './task-board.ts';
import { createGrpcServer } from './transport.ts';
import { createHttpServer, listen } from './http/server.ts';

export interface RunningService {
  grpcPort: number;
  /** Where /metrics, /healthz and /readyz answer (cfg.metrics set). */
  opsUrl?: string;
  httpPort: number;
  store: Store;
  studies: StudyStore;
  close(): Promise<void>;
}

export async function startService(cfg: CoordinatorConfig, opts: { log?: (line: string) => void } = {}): Promise<RunningService> {
  const log = opts.log ?? (() => undefined);
  if (!cfg.http) throw new Error('fedsynth serve needs an http section in the coordinator config (http.listen)');
  const http = cfg.http;
  const holder = `fedsynth serve (HTTP ${http.publicUrl ?? `on ${http.listen}`})`;
  const store = await openStore(
    cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir, holder } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
  );
  store.setAuditSigner({ party: COORDINATOR_PARTY, privateKeyPem: cfg.kit.keyPem });
  let grpcServer: grpc.Server | undefined;
  let httpServer: Server | undefined;
  let ops: CoordinatorOps | undefined;
  try {
    ops = await openCoordinatorOps(cfg, store, log);
    const schema = parseSchema(cfg.schemaText);
    // The federation row anchors site registrations and the service's audit log.
    const existing = await store.getFederation(cfg.federationId);
    if (existing && existing.schemaHash !== cfg.schemaHash)
      throw new Error(`federation ${cfg.federationId} was created with schema ${existing.schemaHash}, this config has ${cfg.schemaHash}`);
    if (!existing) await store.upsertFederation({ id: cfg.federationId, schemaHash: cfg.schemaHash, schema, config: { service: true } });
    const board = new TaskBoard();
    const studies = new StudyStore(store.sql);
    const runner = new StudyRunner({ store, studies, board, cfg, log });
    const cohorts = new CohortWorker({ store, studies, cfg, log });
    grpcServer = createGrpcServer({ 'grpc.max_receive_message_length': undefined } as grpc.ServerOptions);
    const grpcPort = await serveGrpc(grpcServer, cfg, { store, board, fits: runner, log, ops });
    httpServer = createHttpServer({ store, studies, cfg, schema, runner, cohorts, cohortsDir: http.cohortsDir }, { log });
    const httpPort = await listen(httpServer, http.listen);
    log(`HTTP API and web page on ${http.publicUrl ?? `http://${http.listen.replace(/:\d+$/, '')}:${httpPort}`}/`);
    runner.start();
    await cohorts.resume();
    const g = grpcServer;
    const h = httpServer;
    const o = ops;
    let closing = false;
    const opsServer = await ops.serve(
      readinessChecks(
        store,
        () => !closing && h.listening,
        () => !closing,
      ),
    );
    return {
      grpcPort,
      ...(opsServer ? { opsUrl: opsServer.url } : {}),
      httpPort,
      store,
      studies,
      async close() {
        closing = true;
        h.closeAllConnections();
        await new Promise<void>((resolve) => h.close(() => resolve()));
        await runner.stop();
        await cohorts.stop();
        board.notifyAll();
        await shutdownGrpc(g);
        await o.close();
        await store.close();
      },
    };
  } catch (err) {
    grpcServer?.forceShutdown();
    httpServer?.close();
    await ops?.close();
    await store.close();
    throw err;
  }
}

export const defaultCohortsDir = (outDir: string) => join(outDir, 'cohorts');
