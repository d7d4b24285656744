// The installed command (cli/bin.mjs) as a supervisor sees it: signals sent to the wrapper reach
// the real process, the real process's exit code is the wrapper's, and a wrapper killed with
// SIGKILL (which cannot be forwarded) leaves no orphan coordinator holding the port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareFederation, type FederationFiles } from '../../cli/demo.ts';
import { seedPgliteDir } from '../support/db.ts';

const BIN = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'fedsynth-signals-'));
const spawned: number[] = [];
let files: FederationFiles;

/** Running (not zombie) processes whose parent is `ppid`, from /proc. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the parenthesised command: state, ppid, ...
      const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(parent) === ppid && state !== 'Z') out.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** True while `pid` runs (a zombie nobody reaped has stopped running). */
function running(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const s = readFileSync(stat, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Starts `bin.mjs coordinator` and resolves once it listens, with the real process's pid. */
async function startWrappedCoordinator(): Promise<{ wrapper: ChildProcess; child: number; lines: string[] }> {
  const wrapper = spawn(process.execPath, [BIN, 'coordinator', '--config', files.coordinatorConfig], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.push(wrapper.pid!);
  const lines: string[] = [];
  for (const s of [wrapper.stdout!, wrapper.stderr!]) s.on('data', (d: Buffer) => lines.push(...d.toString('utf8').split('\n')));
  await waitFor('the coordinator to listen', () => lines.some((l) => /listening on port/.test(l)), 60_000);
  const kids = childrenOf(wrapper.pid!);
  expect(kids).toHaveLength(1);
  spawned.push(kids[0]);
  return { wrapper, child: kids[0], lines };
}

function exitOf(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
}

beforeAll(async () => {
  files = await prepareFederation({
    work,
    outDir: join(work, 'out'),
    sites: 2,
    patients: 20,
    cohortSize: 0,
    epsilon: 1,
    delta: 1e-9,
    seed: 5,
    multimodal: false,
  });
  // The first coordinator opens a migrated store instead of running initdb.
  await seedPgliteDir(join(work, 'coordinator-db'));
}, 120_000);

afterAll(() => {
  for (const pid of spawned) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(work, { recursive: true, force: true });
});

describe('cli/bin.mjs forwards signals and leaves no orphan', () => {
  it("passes the real process's exit code through (a usage error is 2)", async () => {
    const p = spawn(process.execPath, [BIN, 'agent', '--config'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    expect(await exitOf(p)).toEqual({ code: 2, signal: null });
    expect(err).toMatch(/--config/);
  }, 30_000);

  it('SIGTERM to the wrapper stops the coordinator, frees its port, and a restart listens on it', async () => {
    const port = files.port;
    const first = await startWrappedCoordinator();
    expect(await portFree(port)).toBe(false);
    first.wrapper.kill('SIGTERM');
    // The coordinator's own SIGTERM handler closes and exits 130; that code is the wrapper's.
    expect(await exitOf(first.wrapper)).toEqual({ code: 130, signal: null });
    await waitFor('the coordinator process to end', () => !running(first.child), 10_000);
    expect(await portFree(port)).toBe(true);

    const second = await startWrappedCoordinator();
    expect(second.lines.join('\n')).not.toMatch(/EADDRINUSE/);
    second.wrapper.kill('SIGINT');
    expect(await exitOf(second.wrapper)).toEqual({ code: 130, signal: null });
    await waitFor('the coordinator process to end', () => !running(second.child), 10_000);
  }, 150_000);

  it('SIGKILL of the wrapper: the coordinator notices its parent is gone, stops and frees the port', async () => {
    const { wrapper, child } = await startWrappedCoordinator();
    wrapper.kill('SIGKILL');
    expect(await exitOf(wrapper)).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor('the orphaned coordinator to stop', () => !running(child), 15_000);
    expect(await portFree(files.port)).toBe(true);
  }, 90_000);
});
