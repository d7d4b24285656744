// The service's CLI commands refuse malformed flags with a usage error (exit 2) and report an
// unreachable or failing service with exit 1; `serve` needs an http section.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { main } from '../../cli/main.ts';
import { exited, spawnFedsynth } from '../../cli/demo.ts';
import { storeHolder, STORE_LOCK_FILE } from '../../coordinator/store/index.ts';
import { freePort } from '../support/federation.ts';
import { seedPgliteDir } from '../support/db.ts';
import { provisionFederation } from '../../pki/index.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-svc-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  try {
    return { code: await main(args), err, out };
  } finally {
    e.mockRestore();
    o.mockRestore();
  }
}

// A port nothing listens on (connection refused).
const DEAD = 'http://127.0.0.1:9';

describe('fedsynth study / cohort clients', () => {
  it('print help and exit 0 with --help', async () => {
    expect((await run(['study', '--help'])).out).toMatch(/study request --title/);
    expect((await run(['cohort', 'request', '--help'])).out).toMatch(/cohort download ID --out DIR/);
  });

  it('refuse missing or malformed flags with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['study', 'list'], /--url or FEDSYNTH_URL/],
      [['study', 'list', '--url', 'not a url', '--token', 't'], /is not a URL/],
      [['study', 'list', '--url', DEAD], /--token or FEDSYNTH_TOKEN/],
      [['study', 'request', '--url', DEAD, '--token', 't', '--epsilon', '1'], /needs --title/],
      [['study', 'request', '--url', DEAD, '--token', 't', '--title', 'x', '--epsilon', 'one'], /--epsilon must be a number/],
      [['study', 'status', '--url', DEAD, '--token', 't'], /one study id/],
      [['study', 'frobnicate', '--url', DEAD, '--token', 't'], /unknown study command/],
      [['study', 'list', '--url', DEAD, '--token', 't', '--bogus'], /unknown flag --bogus/],
      [['cohort', 'request', '--url', DEAD, '--token', 't', '--n', '5'], /needs --study/],
      [['cohort', 'request', '--url', DEAD, '--token', 't', '--study', 's', '--n', '-5'], /--n must be a positive integer/],
      [['cohort', 'request', '--url', DEAD, '--token', 't', '--study', 's', '--n', '5', '--seed', 'x'], /--seed must be an integer/],
      [['cohort', 'download', 'c1', '--url', DEAD, '--token', 't'], /needs --out/],
      [['cohort', 'status', '--url', DEAD, '--token', 't'], /one cohort id/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
    }
  });

  it('exit 1 with the reason when the service cannot be reached', async () => {
    const r = await run(['study', 'list', '--url', DEAD, '--token', 't']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot reach http:\/\/127.0.0.1:9/);
    const c = await run(['cohort', 'status', 'c1', '--url', DEAD, '--token', 't']);
    expect(c.code).toBe(1);
  });
});

describe('fedsynth token / serve', () => {
  const kits = join(dir, 'kits');
  const config = (extra: Record<string, unknown>) => {
    const path = join(dir, `c-${Object.keys(extra).join('-') || 'plain'}.yaml`);
    writeFileSync(
      path,
      YAML.stringify({
        federationId: 'f',
        schema: DEFAULT_SCHEMA_PATH,
        kit: join(kits, 'coordinator'),
        storage: { pglite: join(dir, 'db') },
        sites: ['hospital-a', 'hospital-b'],
        committee: { members: ['hospital-a', 'hospital-b'], threshold: 2 },
        fit: { epsilon: 1, delta: 1e-9, out: join(dir, 'out') },
        ...extra,
      }),
    );
    return path;
  };

  it('token create needs a known role and a name; list and revoke work on the store', async () => {
    await provisionFederation({ outDir: kits, federationId: 'f', sites: ['hospital-a', 'hospital-b'], validityDays: 1 });
    // The commands below open a migrated store instead of running initdb.
    await seedPgliteDir(join(dir, 'db'));
    const cfg = config({});
    expect((await run(['token', 'create', '--config', cfg, '--role', 'admin', '--name', 'x'])).err).toMatch(
      /--role must be one of researcher, operator, auditor/,
    );
    expect((await run(['token', 'create', '--config', cfg, '--role', 'operator'])).code).toBe(2);
    expect((await run(['token', 'revoke', '--config', cfg])).code).toBe(2);
    expect((await run(['token', 'list', '--config', cfg])).code).toBe(1); // no keys yet: an empty result
    const created = await run(['token', 'create', '--config', cfg, '--role', 'operator', '--name', 'ops']);
    expect(created.code).toBe(0);
    expect(created.out.trim()).toMatch(/^fsk_[a-f0-9]{16}_[A-Za-z0-9_-]{43}$/);
    const id = created.out.trim().split('_')[1];
    const listed = await run(['token', 'list', '--config', cfg]);
    expect(listed.out).toContain(`${id}\toperator\tops`);
    expect(listed.out).not.toContain(created.out.trim());
    expect((await run(['token', 'revoke', '--config', cfg, id])).code).toBe(0);
    expect((await run(['token', 'revoke', '--config', cfg, id])).code).toBe(1);
  }, 300_000);

  it(
    'token refuses to write a PGlite store that a running fedsynth serve holds, and works once it stopped',
    { timeout: 180_000 },
    async () => {
      const cfg = config({ http: { listen: `127.0.0.1:${await freePort()}` } });
      const lines: string[] = [];
      const serve = spawnFedsynth(['serve', '--config', cfg], (l) => lines.push(l));
      try {
        const until = Date.now() + 150_000;
        while (!lines.some((l) => /HTTP API and web page/.test(l))) {
          if (serve.exitCode !== null || Date.now() > until) throw new Error(`serve did not start:\n${lines.join('\n')}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(storeHolder(join(dir, 'db'))).toMatchObject({ pid: serve.pid, holder: expect.stringMatching(/^fedsynth serve \(HTTP/) });
        for (const args of [
          ['token', 'create', '--config', cfg, '--role', 'researcher', '--name', 'while serving'],
          ['token', 'list', '--config', cfg],
        ]) {
          const r = await run(args);
          expect(r.code, args.join(' ')).toBe(1);
          expect(r.err).toMatch(
            new RegExp(`cannot (create|list) keys now: the store .* is in use by fedsynth serve \\(HTTP .*\\) \\(process ${serve.pid}`),
          );
          expect(r.err).toMatch(/stop that process first/);
          expect(r.out).toBe('');
        }
      } finally {
        serve.kill('SIGTERM');
        await exited(serve);
      }
      expect(storeHolder(join(dir, 'db'))).toBeNull();
      const created = await run(['token', 'create', '--config', cfg, '--role', 'researcher', '--name', 'after serving']);
      expect(created.code).toBe(0);
      expect((await run(['token', 'list', '--config', cfg])).out).toContain('after serving');
      expect((await run(['token', 'list', '--config', cfg])).out).not.toContain('while serving');
      // A lock left by a process that died (kill -9) is taken over.
      writeFileSync(join(dir, 'db', STORE_LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, holder: 'fedsynth serve', since: 'x' }));
      expect((await run(['token', 'list', '--config', cfg])).code).toBe(0);
    },
  );

  it('serve refuses a config without an http section, and a missing --config', { timeout: 120_000 }, async () => {
    expect((await run(['serve'])).err).toMatch(/missing required flag --config/);
    const r = await run(['serve', '--config', config({})]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no http section/);
  });
});
