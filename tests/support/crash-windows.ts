// The crash-window campaign shared by the PGlite and PostgreSQL tests: a coordinator child process
// is killed at each fault point of coordinator/fault.ts in turn (the next one starts where the
// last died), then one more completes the fit. Agents run in this process and ride out every kill.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { openStore, type Store } from '../../coordinator/store/index.ts';
import type { CoordinatorConfig } from '../../coordinator/config.ts';
import { subsetSchemaText } from '../../coordinator/studies.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { LEDGER_FILE } from '../../site-agent/ledger.ts';
import { startTestFederation, type TestFederation } from './federation.ts';

const CHILD = join(import.meta.dirname, 'coordinator-child.ts');

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the coordinator in a child process until it exits (or `timeoutMs`, then SIGKILL and fail).
 * Once its fit has ended, the child keeps serving until `beforeClose` settles (the agents learning
 * the fit is over), then shuts down.
 */
export function runCoordinatorChild(
  cfgFile: string,
  crashAt: string | undefined,
  { timeoutMs = 150_000, beforeClose }: { timeoutMs?: number; beforeClose?: () => Promise<unknown> } = {},
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.FEDSYNTH_CRASH_AT;
    if (crashAt) env.FEDSYNTH_CRASH_AT = crashAt;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, cfgFile], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let ended = false;
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!ended && /^FIT-(DONE|FAILED)/m.test(stdout)) {
        ended = true;
        void (beforeClose?.() ?? Promise.resolve()).finally(() => child.stdin.end());
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coordinator child (crash at ${crashAt ?? 'none'}) still running after ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A small federation (3 sites, 4 attributes, MST plan) whose coordinator the test runs as a child. */
export async function startCrashFederation(storage?: CoordinatorConfig['storage']): Promise<{ fed: TestFederation; cfgFile: string }> {
  const schemaText = subsetSchemaText(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'), ['age', 'sex', 'hypertension', 'type2_diabetes']);
  const fed = await startTestFederation({
    sites: 3,
    patients: 120,
    plan: 'mst',
    schemaText,
    storage,
    externalCoordinator: true,
    deadlineMs: 60_000,
    iterations: 30,
    cohortSize: 0,
  });
  const cfgFile = join(fed.dir, 'coordinator.json');
  writeFileSync(cfgFile, JSON.stringify(fed.cfg));
  return { fed, cfgFile };
}

export async function openFedStore(cfg: CoordinatorConfig): Promise<Store> {
  return openStore(
    cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
  );
}

/** Every released round charged each contributor once, exactly as every site's ledger recorded it. */
export async function expectLedgersMatchCharges(fed: TestFederation, store: Store): Promise<void> {
  const fedId = fed.cfg.federationId;
  const released = await store.listRounds(fedId, { kind: 'measure', state: 'released' });
  const all = await store.listRounds(fedId, { kind: 'measure' });
  expect(all.map((r) => r.state)).toEqual(all.map(() => 'released'));
  const charges = await store.chargesByRound(fedId);
  expect(new Set(charges.map((c) => `${c.roundId}/${c.siteId}`)).size).toBe(charges.length);
  for (const site of fed.cfg.sites) {
    const records = ledgerRecords(fed.siteCfgs[site].stateDir);
    const mine = charges.filter((c) => c.siteId === site);
    // No double charge, and no charge for a round that was never released.
    expect(new Set(records.map((r) => r.roundId)).size).toBe(records.length);
    expect(records.map((r) => r.roundId).sort()).toEqual(mine.map((c) => c.roundId).sort());
    expect(records.every((r) => released.some((x) => x.roundId === r.roundId))).toBe(true);
    expect(records.reduce((sum, r) => sum + r.rho, 0)).toBeCloseTo(
      mine.reduce((sum, c) => sum + c.rho, 0),
      12,
    );
  }
  expect((await store.verifyAuditChain(fedId)).ok).toBe(true);
}

/**
 * What the database must hold right after the coordinator is killed at each point (round 1 is
 * where every measure-round point is first reached): a point inside a transaction leaves nothing
 * of it behind, a point after one leaves all of it.
 */
export const AFTER_CRASH: Record<string, (store: Store, fedId: string) => Promise<void>> = {
  'preflight.open-tx': async (store, fedId) => {
    expect(await store.listRounds(fedId, { kind: 'preflight' })).toEqual([]);
  },
  'preflight.opened': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'preflight' });
    expect(r.state).toBe('open');
    expect(await store.listTasks(fedId, r.roundId)).toHaveLength(3);
  },
  'keygen.open-tx': async (store, fedId) => {
    expect(await store.getRound(fedId, 'keygen')).toBeNull();
  },
  'keygen.opened': async (store, fedId) => {
    expect((await store.getRound(fedId, 'keygen'))?.state).toBe('open');
    expect(await store.listTasks(fedId, 'keygen')).toHaveLength(3);
  },
  'keygen.keys-stored': async (store, fedId) => {
    expect(await store.listCommitteeKeys(fedId)).toHaveLength(3);
  },
  'measure.open-tx': async (store, fedId) => {
    expect(await store.listRounds(fedId, { kind: 'measure' })).toEqual([]);
    expect(await store.listTasks(fedId, 'm1-one-way')).toEqual([]);
  },
  'measure.opened': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    expect(r.state).toBe('open');
    expect(await store.listTasks(fedId, r.roundId)).toHaveLength(3);
  },
  'measure.closed': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    expect(r.state).toBe('closed');
    expect(await store.listRounds(fedId, { kind: 'decrypt' })).toEqual([]);
  },
  'decrypt.open-tx': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    expect(await store.listRounds(fedId, { kind: 'decrypt' })).toEqual([]);
    expect(await store.listAggregates(fedId, r.roundId)).toEqual([]);
  },
  'decrypt.opened': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    const [d] = await store.listRounds(fedId, { kind: 'decrypt' });
    expect(r.state).toBe('closed');
    expect(await store.listTasks(fedId, d.roundId)).toHaveLength(3);
    expect(await store.listAggregates(fedId, r.roundId)).toHaveLength(3);
  },
  'decrypt.closed': async (store, fedId) => {
    const [d] = await store.listRounds(fedId, { kind: 'decrypt' });
    expect(d.state).toBe('closed');
    expect(await store.chargesByRound(fedId)).toEqual([]);
  },
  'release.tx': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    expect(r.state).toBe('decrypting');
    expect(await store.chargesByRound(fedId)).toEqual([]);
    expect(await store.listMeasurements(fedId)).toEqual([]);
  },
  'release.done': async (store, fedId) => {
    const [r] = await store.listRounds(fedId, { kind: 'measure' });
    expect(r.state).toBe('released');
    expect(new Set((await store.chargesByRound(fedId)).map((c) => c.roundId))).toEqual(new Set([r.roundId]));
  },
};

/**
 * A site's charges as its ledger file holds them, read without opening the ledger (the agent may
 * still hold its lock): one JSON line per charge.
 */
export function ledgerRecords(stateDir: string): { taskId: string; roundId: string; rho: number }[] {
  const file = join(stateDir, LEDGER_FILE);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { taskId: string; roundId: string; rho: number });
}
