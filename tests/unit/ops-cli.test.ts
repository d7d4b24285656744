// The operations flags and settings (--metrics-port, --log-format, --revocation-list, metrics:,
// revocationList:), `provision rotate-site` and `provision revoke`, and the JSON logger: each
// answers --help, and malformed input gets a clear error and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { AGENT, COORDINATOR } from '../../cli/commands.ts';
import { SERVE } from '../../cli/serve.ts';
import { applyOpsFlags } from '../../cli/ops-flags.ts';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { HelpRequest, parseArgs, UsageError, type CommandSpec } from '../../cli/args.ts';
import type { OpsConfig } from '../../cli/ops-flags.ts';
import { ConfigError } from '../../cli/config-file.ts';
import { parseProvisionArgs, runProvisionCommand } from '../../cli/provision.ts';
import { loadPartyCertificates } from '../../cli/audit/verify.ts';
import { provisionFederation } from '../../pki/index.ts';
import { REVOCATION_FILE } from '../../pki/rotate.ts';
import { parseRevocationList, readRevocationList, RevocationWatcher } from '../../proto/revocation.ts';
import { createLogger, lineLogger, prettyLine } from '../../ops/log.ts';
import { parseListen, startOpsServer } from '../../ops/http.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-ops-cli-'));
const kits = join(root, 'kits');
const otherKits = join(root, 'other');
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await provisionFederation({ outDir: kits, federationId: 'f', sites: ['a', 'b'], validityDays: 5 });
  await provisionFederation({ outDir: otherKits, federationId: 'g', sites: ['a'], validityDays: 5 });
});

function io() {
  const captured = { out: '', err: '' };
  return { captured, io: { out: (t: string) => void (captured.out += t), err: (t: string) => void (captured.err += t) } };
}

describe('--metrics-port, --log-format, --revocation-list', () => {
  for (const spec of [COORDINATOR, AGENT, SERVE] as CommandSpec[]) {
    it(`${spec.command} --help lists them`, () => {
      let help = '';
      try {
        parseArgs(spec, ['--help']);
      } catch (e) {
        help = (e as HelpRequest).text;
      }
      expect(help).toMatch(/--metrics-port PORT/);
      expect(help).toMatch(/--log-format json\|pretty/);
      expect(help).toMatch(/--revocation-list FILE/);
    });

    it(`${spec.command} refuses malformed values with the flag named`, () => {
      const bad: [string[], RegExp][] = [
        [['--metrics-port', 'abc'], /--metrics-port/],
        [['--metrics-port', '70000'], /--metrics-port/],
        [['--metrics-port', '-1'], /--metrics-port/],
        [['--metrics-port', '1.5'], /--metrics-port/],
        [['--metrics-port'], /--metrics-port/],
        [['--log-format', 'xml'], /--log-format must be one of json, pretty/],
        [['--revocation-list'], /--revocation-list/],
      ];
      for (const [args, msg] of bad) expect(() => parseArgs(spec, ['--config', 'x.yaml', ...args]), args.join(' ')).toThrow(msg);
      expect(() => parseArgs(spec, ['--config', 'x.yaml', '--metrics-port', 'abc'])).toThrow(UsageError);
    });
  }

  it('a port on the command line keeps the configured host; agents default to loopback, coordinators to all interfaces', () => {
    expect(applyOpsFlags({} as OpsConfig, { 'metrics-port': 9100 }, '127.0.0.1').metrics).toEqual({ listen: '127.0.0.1:9100' });
    expect(applyOpsFlags({} as OpsConfig, { 'metrics-port': 9100 }, '0.0.0.0').metrics).toEqual({ listen: '0.0.0.0:9100' });
    expect(applyOpsFlags({ metrics: { listen: '10.1.2.3:1' } }, { 'metrics-port': 9 }, '127.0.0.1').metrics).toEqual({
      listen: '10.1.2.3:9',
    });
    expect(applyOpsFlags({ metrics: { listen: '[::1]:1' } }, { 'metrics-port': 9 }, '127.0.0.1').metrics).toEqual({ listen: '[::1]:9' });
    expect(applyOpsFlags({} as OpsConfig, {}, '127.0.0.1').metrics).toBeUndefined();
  });
});

describe('metrics: and revocationList: in coordinator.yaml', () => {
  const base = () => ({
    federationId: 'f',
    schema: DEFAULT_SCHEMA_PATH,
    kit: join(kits, 'coordinator'),
    storage: { pglite: join(root, 'db') },
    sites: ['a', 'b'],
    committee: { members: ['a', 'b'], threshold: 2 },
    fit: { epsilon: 1, delta: 1e-9 },
  });
  const write = (doc: object) => {
    const p = join(root, `c-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(p, YAML.stringify(doc));
    return p;
  };

  it('reads them, relative to the config file', () => {
    const cfg = parseCoordinatorConfig(write({ ...base(), metrics: { listen: '0.0.0.0:9464' }, revocationList: 'kits/revoked.crl.pem' }));
    expect(cfg.metrics).toEqual({ listen: '0.0.0.0:9464' });
    expect(cfg.revocationListFile).toBe(join(root, 'kits/revoked.crl.pem'));
    expect(parseCoordinatorConfig(write(base())).metrics).toBeUndefined();
  });

  it('refuses malformed settings with the key named', () => {
    const bad: [object, RegExp][] = [
      [{ metrics: { listen: 'nonsense' } }, /metrics\.listen: "nonsense" is not host:port/],
      [{ metrics: { listen: 'host:99999' } }, /metrics\.listen: "host:99999" is not host:port/],
      [{ metrics: { listen: 9464 } }, /metrics\.listen must be a non-empty string/],
      [{ metrics: '0.0.0.0:9464' }, /metrics must be a mapping/],
      [{ metrics: { listen: '0.0.0.0:1', port: 2 } }, /metrics\.port is not a known setting/],
      [{ revocationList: '' }, /revocationList must be a non-empty string/],
    ];
    for (const [extra, msg] of bad) {
      const p = write({ ...base(), ...extra });
      expect(() => parseCoordinatorConfig(p), JSON.stringify(extra)).toThrow(ConfigError);
      expect(() => parseCoordinatorConfig(p), JSON.stringify(extra)).toThrow(msg);
    }
  });

  it('parseListen refuses what is not host:port', () => {
    for (const s of ['', ':80', 'a:b', 'a:1:2', '1.2.3.4', '[::1]', 'h:123456'])
      expect(() => parseListen(s, 'x'), s).toThrow(/not host:port/);
    expect(parseListen('[::1]:80', 'x')).toEqual({ host: '::1', port: 80 });
  });

  it('a port already in use is a clear start-up error', async () => {
    const first = await startOpsServer({ listen: '127.0.0.1:0', ready: {} });
    try {
      await expect(startOpsServer({ listen: `127.0.0.1:${first.port}`, ready: {} })).rejects.toThrow(
        /cannot listen on 127\.0\.0\.1:\d+ for metrics: .*EADDRINUSE/,
      );
    } finally {
      await first.close();
    }
  });
});

describe('provision rotate-site and revoke', () => {
  it('answer --help', () => {
    for (const sub of ['rotate-site', 'revoke']) expect(() => parseProvisionArgs([sub, '--help'])).toThrow(HelpRequest);
  });

  it('refuse malformed arguments before touching the kit', async () => {
    const before = readFileSync(join(kits, 'sites/a/cert.pem'), 'utf8');
    const usage: [string[], RegExp][] = [
      [['rotate-site', '--out', kits], /NAME/],
      [['rotate-site', 'a', 'b', '--out', kits], /NAME|argument/],
      [['rotate-site', 'a'], /--out/],
      [['rotate-site', 'a', '--out', kits, '--days', '0'], /--days/],
      [['revoke', '--out', kits], /exactly one of --site NAME or --cert FILE\.pem/],
      [['revoke', '--out', kits, '--site', 'a', '--cert', 'x.pem'], /exactly one/],
      [['revoke', '--out', kits, '--cert', 'x.pem', '--previous'], /--previous goes with --site/],
      [['revoke', '--out', kits, '--site', 'a', '--reason', 'bogus'], /--reason must be one of/],
    ];
    for (const [args, msg] of usage) expect(() => parseProvisionArgs(args), args.join(' ')).toThrow(msg);
    const failures: [string[], RegExp][] = [
      [['rotate-site', 'nope', '--out', kits], /site nope has no kit/],
      [['rotate-site', 'Bad_Id', '--out', kits], /invalid site id/],
      [['rotate-site', 'a', '--out', join(root, 'missing')], /not a provisioned federation/],
      [['revoke', '--out', kits, '--cert', join(root, 'missing.pem')], /cannot read .*missing\.pem: ENOENT/],
      [['revoke', '--out', kits, '--cert', join(otherKits, 'sites/a/cert.pem')], /was not issued by this federation's CA/],
      [['revoke', '--out', kits, '--site', 'a', '--previous'], /site a has no previous certificate/],
    ];
    for (const [args, msg] of failures) {
      const { captured, io: out } = io();
      expect(await runProvisionCommand(args, out), args.join(' ')).toBe(1);
      expect(captured.err).toMatch(msg);
    }
    expect(readFileSync(join(kits, 'sites/a/cert.pem'), 'utf8')).toBe(before);
    expect(existsSync(join(kits, REVOCATION_FILE))).toBe(false);
  });

  it('rotate, then revoke the previous certificate; revoking again adds nothing; the list verifies only under its CA', async () => {
    const caPem = readFileSync(join(kits, 'ca/ca.pem'), 'utf8');
    const old = readFileSync(join(kits, 'sites/a/cert.pem'), 'utf8');
    let r = io();
    expect(await runProvisionCommand(['rotate-site', 'a', '--out', kits], r.io)).toBe(0);
    expect(r.captured.out).toMatch(/Rotated site a: new certificate serial/);
    r = io();
    expect(await runProvisionCommand(['revoke', '--out', kits, '--site', 'a', '--previous', '--reason', 'superseded'], r.io)).toBe(0);
    expect(r.captured.out).toMatch(/Revoked CN=a, O=f .*now lists 1 certificate/s);
    r = io();
    expect(await runProvisionCommand(['revoke', '--out', kits, '--site', 'a', '--previous'], r.io)).toBe(0);
    expect(r.captured.out).toMatch(/Nothing new to revoke.*now lists 1/s);
    const list = await readRevocationList(join(kits, REVOCATION_FILE), caPem);
    expect(list.lookupPem(old)?.reason).toBe('superseded');
    // audit verify keeps both certificates of the rotated site, so its older entries still verify.
    const certs = loadPartyCertificates(caPem, [
      join(kits, 'sites/a/cert.pem'),
      join(kits, `sites/a/previous`, readdirSync(join(kits, 'sites/a/previous'))[0]),
    ]);
    expect(certs.keys.get('a')).toEqual(
      [readFileSync(join(kits, 'sites/a/cert.pem'), 'utf8').trim(), old.trim()].map((p) => expect.stringContaining(p.slice(30, 200))),
    );
    expect(certs.notes.join('\n')).toMatch(/another certificate of a \(a rotation\)/);
    expect(list.lookupPem(readFileSync(join(kits, 'sites/a/cert.pem'), 'utf8'))).toBeUndefined();
    const text = readFileSync(join(kits, REVOCATION_FILE), 'utf8');
    await expect(parseRevocationList(text, readFileSync(join(otherKits, 'ca/ca.pem'), 'utf8'), 'list')).rejects.toThrow(
      /not signed by this federation's CA/,
    );
    await expect(parseRevocationList('hello', caPem, 'list')).rejects.toThrow(/not a PEM certificate revocation list/);
    await expect(parseRevocationList('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n', caPem, 'list')).rejects.toThrow(/corrupt/);
    await expect(readRevocationList(join(root, 'none.pem'), caPem)).rejects.toThrow(/cannot read the revocation list .*ENOENT/);
  });

  it('a watcher keeps the last good list when the file is replaced by garbage, and picks up a new good one', async () => {
    const caPem = readFileSync(join(kits, 'ca/ca.pem'), 'utf8');
    const file = join(root, 'watched.crl.pem');
    copyFileSync(join(kits, REVOCATION_FILE), file);
    const logs: string[] = [];
    const w = await RevocationWatcher.open(file, caPem, { intervalMs: 0, log: (l) => logs.push(l) });
    expect(w.current().size).toBe(1);
    writeFileSync(file, 'garbage, e.g. a half-copied file');
    expect((await w.refresh()).size).toBe(1);
    expect(logs.join('\n')).toMatch(/changed but is unusable: .*keeping the previous one/);
    expect(await runProvisionCommand(['revoke', '--out', kits, '--site', 'b'], io().io)).toBe(0);
    copyFileSync(join(kits, REVOCATION_FILE), file);
    expect((await w.refresh()).size).toBe(2);
    w.close();
  });
});

describe('structured logs', () => {
  function capture(): { stream: Writable; lines: string[] } {
    const lines: string[] = [];
    let buf = '';
    const stream = new Writable({
      write(chunk: Buffer, _e, done) {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
        done();
      },
    });
    return { stream, lines };
  }

  it('JSON lines carry level, time, msg, component and the base fields; failures go out at warn', async () => {
    const { stream, lines } = capture();
    const logger = createLogger({ component: 'agent', format: 'json', base: { site: 'a' }, destination: stream });
    const log = lineLogger(logger);
    log('registered with localhost:7443 as a');
    log('register failed (connect ECONNREFUSED); retrying');
    logger.error({ round: 'm1' }, 'fit failed: "quoted"');
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((o) => o.level)).toEqual(['info', 'warn', 'error']);
    for (const o of parsed) {
      expect(o.component).toBe('agent');
      expect(o.site).toBe('a');
      expect(new Date(o.time as string).toISOString()).toBe(o.time);
    }
    expect(parsed[2]).toMatchObject({ msg: 'fit failed: "quoted"', round: 'm1' });
  });

  it('the pretty format is one readable line per entry', async () => {
    const { stream, lines } = capture();
    const logger = createLogger({ component: 'coordinator', format: 'pretty', destination: stream });
    logger.info({ phase: 'measure' }, 'round m1 released');
    logger.warn('site b refused m2');
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d coordinator: round m1 released \(phase=measure\)$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d WARN coordinator: site b refused m2$/);
    expect(prettyLine('not json')).toBe('not json');
  });
});
