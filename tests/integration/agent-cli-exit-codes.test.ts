// `fedsynth agent` as an operator's supervisor runs it: a failure no retry can fix ends the
// process with its own exit code and one line on stderr (no stack trace), instead of retrying
// forever. Real processes, real mutual TLS against a listening coordinator endpoint, real files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { provisionFederation } from '../../pki/index.ts';
import { simulateFederation, DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { bindServer, createGrpcServer, serverCredentialsFromKit } from '../../coordinator/transport.ts';
import { AGENT_EXIT_CODES } from '../../site-agent/agent-errors.ts';

const MAIN = new URL('../../cli/main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const root = mkdtempSync(join(tmpdir(), 'fedsynth-agent-exit-'));
let server: grpc.Server;
let port: number;
let roMount: string | undefined;

function siteYaml(name: string, o: { siteId: string; kit: string; state: string }): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `siteId: ${o.siteId}`,
      'federationId: exit-fed',
      `coordinator: localhost:${port}`,
      `kit: ${o.kit}`,
      `schema: ${DEFAULT_SCHEMA_PATH}`,
      'data:',
      `  fhirNdjson: ${join(root, 'data', 'hospital-a')}`,
      `state: ${o.state}`,
      'policy:',
      '  epsilon: 5',
      '  delta: 0.000001',
      '',
    ].join('\n'),
  );
  return file;
}

function runAgent(config: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', TSX, MAIN, 'agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    // A regression (retrying forever) must fail the test, not hang it.
    const kill = setTimeout(() => p.kill('SIGKILL'), 40_000);
    p.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stderr, stdout });
    });
  });
}

beforeAll(async () => {
  await provisionFederation({ outDir: join(root, 'kits'), federationId: 'exit-fed', sites: ['hospital-a', 'hospital-b'], validityDays: 2 });
  await provisionFederation({ outDir: join(root, 'other'), federationId: 'exit-fed', sites: ['hospital-a'], validityDays: 2 });
  await simulateFederation({ sites: 1, patients: 10, seed: 3, outDir: join(root, 'data') });
  // The coordinator's TLS endpoint: the handshake is all these cases reach.
  server = createGrpcServer();
  port = await bindServer(server, '127.0.0.1:0', serverCredentialsFromKit(join(root, 'kits', 'coordinator')));
}, 60_000);

afterAll(() => {
  server?.forceShutdown();
  if (roMount) execFileSync('umount', ['-l', roMount], { stdio: 'ignore' });
  rmSync(root, { recursive: true, force: true });
});

const oneLine = (stderr: string) => {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
};

describe('fedsynth agent exit codes', () => {
  it('--help lists every exit code', async () => {
    const out = execFileSync(process.execPath, ['--import', TSX, MAIN, 'agent', '--help'], { encoding: 'utf8' });
    for (const code of Object.values(AGENT_EXIT_CODES)) expect(out).toMatch(new RegExp(`^ +${code} `, 'm'));
    expect(out).toMatch(/Exit codes: 0 done/);
  });

  it("a kit of another federation's CA: exit 11 with one line", async () => {
    const res = await runAgent(
      siteYaml('wrong-ca', { siteId: 'hospital-a', kit: join(root, 'other', 'sites', 'hospital-a'), state: join(root, 's1') }),
    );
    expect(res.code, res.stderr).toBe(AGENT_EXIT_CODES.tls);
    oneLine(res.stderr);
    expect(res.stderr).toMatch(/^fedsynth agent: hospital-a: TLS handshake with the coordinator at localhost:\d+ failed: .*\(exit 11\)\n$/);
  }, 60_000);

  it("another site's certificate: exit 10 with one line, before dialling", async () => {
    const res = await runAgent(
      siteYaml('other-site', { siteId: 'hospital-a', kit: join(root, 'kits', 'sites', 'hospital-b'), state: join(root, 's2') }),
    );
    expect(res.code, res.stderr).toBe(AGENT_EXIT_CODES.identity);
    oneLine(res.stderr);
    expect(res.stderr).toMatch(/kit holds the certificate of site hospital-b, but the config names site hospital-a/);
  }, 60_000);

  it.skipIf(process.getuid?.() !== 0)(
    'a read-only state folder: exit 13 with one line',
    async () => {
      const state = join(root, 'ro-state');
      mkdirSync(state, { recursive: true });
      try {
        execFileSync('mount', ['--bind', state, state], { stdio: 'ignore' });
        roMount = state;
        execFileSync('mount', ['-o', 'remount,ro,bind', state], { stdio: 'ignore' });
      } catch {
        console.warn('skipped: this machine does not allow a read-only bind mount');
        return;
      }
      const res = await runAgent(siteYaml('read-only', { siteId: 'hospital-a', kit: join(root, 'kits', 'sites', 'hospital-a'), state }));
      expect(res.code, res.stderr).toBe(AGENT_EXIT_CODES.disk);
      oneLine(res.stderr);
      expect(res.stderr).toMatch(/cannot open the ledger in .*ro-state: cannot write .*LOCK: read-only file system \(EROFS\) \(exit 13\)/);
    },
    60_000,
  );
});
