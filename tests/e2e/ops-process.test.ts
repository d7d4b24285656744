// The operations surface of the real processes (`fedsynth coordinator` and `fedsynth agent` as OS
// processes, mTLS on loopback): their metrics and health endpoints are scraped over HTTP, their
// stdout is structured JSON (one object per line with level, time, msg, component) when piped,
// and human lines with --log-format pretty.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { prepareFederation, spawnFedsynth, exited, type FederationFiles } from '../../cli/demo.ts';
import { scrape, sum } from '../support/prometheus.ts';
import { seedPgliteDir } from '../support/db.ts';

const work = mkdtempSync(join(tmpdir(), 'fedsynth-ops-e2e-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function run(args: string[]): { child: ChildProcess; lines: string[] } {
  const lines: string[] = [];
  const child = spawnFedsynth(args, (l) => lines.push(l));
  children.push(child);
  return { child, lines };
}

interface LogLine {
  level: string;
  time: string;
  msg: string;
  component: string;
  [k: string]: unknown;
}

function metricsUrl(lines: string[]): string | undefined {
  for (const l of lines) {
    const m = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

describe('a coordinator and an agent process', () => {
  let files: FederationFiles;

  it('serve metrics and health on --metrics-port, and log JSON lines on a pipe', async () => {
    files = await prepareFederation({
      work,
      outDir: join(work, 'out'),
      sites: 2,
      patients: 40,
      cohortSize: 0,
      epsilon: 1,
      delta: 1e-9,
      seed: 2,
      deadlineSeconds: 30,
      multimodal: false,
    });
    // The coordinator process opens a migrated store instead of running initdb.
    await seedPgliteDir(join(work, 'coordinator-db'));
    const coord = run(['coordinator', '--config', files.coordinatorConfig, '--metrics-port', '0']);
    const cUrl = await until('the coordinator metrics URL', () => metricsUrl(coord.lines));
    expect((await fetch(`${cUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${cUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { store: 'ok', grpc: 'ok', keys: 'ok' } });

    const [site, cfg] = Object.entries(files.siteConfigs)[0];
    const agent = run(['agent', '--config', cfg, '--metrics-port', '0']);
    const aUrl = await until('the agent metrics URL', () => metricsUrl(agent.lines));
    await until('the agent to be ready', async () => ((await fetch(`${aUrl}/readyz`)).status === 200 ? true : undefined));
    const a = await scrape(aUrl);
    expect(sum(a, 'fedsynth_budget_cap_rho', { federation: 'demo' })).toBeGreaterThan(0);
    expect(sum(a, 'fedsynth_budget_spent_rho')).toBe(0);
    // The coordinator learns the agent's published cap from its registration.
    const c = await until('the published cap', async () => {
      const e = await scrape(cUrl);
      return sum(e, 'fedsynth_site_cap_rho', { site }) > 0 ? e : undefined;
    });
    expect(sum(c, 'fedsynth_site_cap_rho', { site })).toBeCloseTo(sum(a, 'fedsynth_budget_cap_rho'), 12);
    expect(c.types.fedsynth_rounds_started_total).toBe('counter');
    expect(sum(c, 'fedsynth_coordinator_process_resident_memory_bytes')).toBeGreaterThan(1e6);

    for (const [who, lines] of [
      ['coordinator', coord.lines],
      ['agent', agent.lines],
    ] as const) {
      expect(lines.length, who).toBeGreaterThan(1);
      for (const l of lines) {
        const o = JSON.parse(l) as LogLine;
        expect(o.component, l).toBe(who);
        expect(['info', 'warn', 'error']).toContain(o.level);
        expect(Number.isNaN(Date.parse(o.time))).toBe(false);
        expect(typeof o.msg).toBe('string');
      }
    }
    const parsed = agent.lines.map((l) => JSON.parse(l) as LogLine);
    expect(parsed.some((o) => o.site === site && /^registered with /.test(o.msg))).toBe(true);

    coord.child.kill('SIGTERM');
    agent.child.kill('SIGTERM');
    await Promise.all([exited(coord.child), exited(agent.child)]);
    // Gone with its process: a probe fails, so an orchestrator restarts it.
    await expect(fetch(`${cUrl}/healthz`)).rejects.toThrow();
  }, 120_000);

  it('writes human lines with --log-format pretty, and a failing registration at warn', async () => {
    // No coordinator is running now: the agent reads its data, then retries registering.
    const cfg = Object.values(files.siteConfigs)[1];
    const agent = run(['agent', '--config', cfg, '--log-format', 'pretty']);
    await until('a register failure', () => agent.lines.find((l) => /register attempt \d+ failed/.test(l)), 60_000);
    agent.child.kill('SIGTERM');
    await exited(agent.child);
    for (const l of agent.lines) expect(l).toMatch(/^\d\d:\d\d:\d\d (WARN |ERROR )?agent: .+/);
    expect(agent.lines.find((l) => /register attempt \d+ failed/.test(l))).toMatch(
      /^\d\d:\d\d:\d\d WARN agent: register attempt 1 failed .*\(site=hospital-b\)$/,
    );
  }, 90_000);
});
