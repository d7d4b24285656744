// Malformed CLI flags and config files get a clear error naming the flag, file and setting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { parseSiteConfig } from '../../cli/agent-config.ts';
import { ConfigError } from '../../cli/config-file.ts';
import { provisionFederation } from '../../pki/index.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-cli-'));
const coordinatorBase = () => ({
  federationId: 'f',
  schema: DEFAULT_SCHEMA_PATH,
  listen: '127.0.0.1:7443',
  kit: join(dir, 'kits', 'coordinator'),
  storage: { pglite: join(dir, 'db') },
  sites: ['hospital-a', 'hospital-b'],
  committee: { members: ['hospital-a', 'hospital-b'], threshold: 2 },
  rounds: { quorum: 2, deadlineSeconds: 30 },
  fit: { epsilon: 1, delta: 1e-9 },
});
const siteBase = () => ({
  siteId: 'hospital-a',
  federationId: 'f',
  coordinator: 'localhost:7443',
  kit: join(dir, 'kits', 'sites', 'hospital-a'),
  schema: DEFAULT_SCHEMA_PATH,
  data: { fhirNdjson: join(dir, 'data') },
  state: join(dir, 'state'),
  policy: { epsilon: 2, delta: 1e-8 },
});

function write(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : YAML.stringify(value));
  return path;
}

beforeAll(async () => {
  await provisionFederation({ outDir: join(dir, 'kits'), federationId: 'f', sites: ['hospital-a', 'hospital-b'], validityDays: 1 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('coordinator.yaml', () => {
  it('parses a valid file', () => {
    const cfg = parseCoordinatorConfig(write('c-ok.yaml', coordinatorBase()));
    expect(cfg.sites).toEqual(['hospital-a', 'hospital-b']);
    expect(cfg.rounds.deadlineMs).toBe(30_000);
    expect(cfg.schemaHash).toMatch(/^[0-9a-f]{64}$/);
    expect(cfg.fit.audit).toBeUndefined();
  });

  it('parses an audited fit, its σ² exact', () => {
    const base = coordinatorBase();
    const cfg = parseCoordinatorConfig(
      write('c-audit.yaml', { ...base, fit: { ...base.fit, audit: { holdout: 0.3, mia: { bins: 6, sigma2: '9/4', cohortRows: 500 } } } }),
    );
    expect(cfg.fit.audit).toEqual({ holdoutFraction: 0.3, mia: { bins: 6, sigmaSite2: { num: '9', den: '4' }, cohortRows: 500 } });
  });

  it("reads a canary audit's rows by site from the auditor's file, each checked as a task spec's canaryRows", () => {
    const base = coordinatorBase();
    const withFile = (name: string, rows: unknown) => {
      write(name, JSON.stringify(rows));
      return write(`c-${name}.yaml`, { ...base, fit: { ...base.fit, audit: { holdout: 0.1, canaries: name } } });
    };
    const rows = { 'hospital-a': [[1, 0, 2]], 'hospital-b': [] as number[][] };
    expect(() => parseCoordinatorConfig(withFile('can-empty.json', rows))).toThrow(
      /fit\.audit\.canaries: .*can-empty\.json, site hospital-b: canaryRows must be a non-empty array/,
    );
    const ok = {
      'hospital-a': [[1, 0, 2]],
      'hospital-b': [
        [0, 0, 0],
        [3, 1, 0],
      ],
    };
    expect(parseCoordinatorConfig(withFile('can-ok.json', ok)).fit.audit).toEqual({ holdoutFraction: 0.1, canaries: ok });
    expect(() => parseCoordinatorConfig(withFile('can-bad.json', { 'hospital-a': [[1, -2, 0]] }))).toThrow(
      /site hospital-a: canaryRows\[0\]\[1\] must be a non-negative integer, got -2/,
    );
    expect(() => parseCoordinatorConfig(withFile('can-who.json', { 'hospital-z': [[1]] }))).toThrow(
      /names site hospital-z, which is not in sites/,
    );
    expect(() => parseCoordinatorConfig(withFile('can-list.json', [[1]]))).toThrow(/must hold an object \{site:/);
  });

  const cases: [string, (c: Record<string, any>) => unknown, RegExp][] = [
    ['not YAML', () => 'federationId: [unclosed', /not valid YAML/],
    ['a list', () => '- a\n- b\n', /must be a mapping/],
    ['a typo', (c) => ({ ...c, fitt: {} }), /fitt is not a known setting/],
    ['missing sites', (c) => ({ ...c, sites: undefined }), /sites is required/],
    ['duplicate sites', (c) => ({ ...c, sites: ['hospital-a', 'hospital-a'] }), /twice/],
    ['both storages', (c) => ({ ...c, storage: { pglite: 'x', postgres: 'postgres://x' } }), /exactly one/],
    ['committee outsider', (c) => ({ ...c, committee: { members: ['zed'], threshold: 1 } }), /not in sites/],
    ['threshold too high', (c) => ({ ...c, committee: { members: ['hospital-a'], threshold: 2 } }), /threshold must be ≤ 1/],
    ['epsilon a string', (c) => ({ ...c, fit: { epsilon: 'one', delta: 1e-9 } }), /epsilon must be a number/],
    ['delta too big', (c) => ({ ...c, fit: { epsilon: 1, delta: 0.5 } }), /delta must be ≤ 0.1/],
    ['an unknown plan', (c) => ({ ...c, fit: { epsilon: 1, delta: 1e-9, plan: 'gan' } }), /fit.plan must be aim or mst/],
    ['quorum above sites', (c) => ({ ...c, rounds: { quorum: 5 } }), /quorum must be ≤ 2/],
    ['a fractional row bound', (c) => ({ ...c, rounds: { maxRowsPerSite: 2.5 } }), /maxRowsPerSite must be an integer/],
    ['a row bound of zero', (c) => ({ ...c, rounds: { maxRowsPerSite: 0 } }), /maxRowsPerSite must be ≥ 1/],
    ['a holdout of 1', (c) => ({ ...c, fit: { ...c.fit, audit: { holdout: 1 } } }), /fit\.audit\.holdout must be ≤ 0\.99/],
    [
      'a histogram noise below 1/4',
      (c) => ({ ...c, fit: { ...c.fit, audit: { mia: { sigma2: '1/5' } } } }),
      /fit\.audit\.mia\.sigma2 must be at least 1\/4/,
    ],
    [
      'a histogram noise of 0',
      (c) => ({ ...c, fit: { ...c.fit, audit: { mia: { sigma2: 0 } } } }),
      /fit\.audit\.mia\.sigma2 must be a positive/,
    ],
    ['a typo in the audit', (c) => ({ ...c, fit: { ...c.fit, audit: { holdot: 0.5 } } }), /fit\.audit\.holdot is not a known setting/],
    ['missing kit', (c) => ({ ...c, kit: join(dir, 'nowhere') }), /cannot read .*ca\.pem/],
    ['missing schema', (c) => ({ ...c, schema: join(dir, 'none.yaml') }), /cannot read schema/],
  ];
  for (const [name, make, message] of cases) {
    it(`rejects ${name}`, () => {
      const path = write(`c-${name.replace(/\W/g, '-')}.yaml`, make(coordinatorBase()));
      expect(() => parseCoordinatorConfig(path)).toThrow(ConfigError);
      expect(() => parseCoordinatorConfig(path)).toThrow(message);
    });
  }
  it('rejects a missing file', () => {
    expect(() => parseCoordinatorConfig(join(dir, 'absent.yaml'))).toThrow(/cannot read config/);
  });
});

describe('site.yaml', () => {
  it('parses a valid file', () => {
    const cfg = parseSiteConfig(write('s-ok.yaml', siteBase()));
    expect(cfg.data).toEqual({ kind: 'fhir-ndjson', dir: join(dir, 'data') });
    expect(cfg.policy.epsilon).toBe(2);
  });
  it('parses an OMOP CDM source', () => {
    const cfg = parseSiteConfig(
      write('s-omop.yaml', {
        ...siteBase(),
        data: { omop: { url: 'postgres://reader@db.local/cdm', schema: 'cdm_54', vocabularySchema: 'vocab' } },
      }),
    );
    expect(cfg.data).toEqual({ kind: 'omop', url: 'postgres://reader@db.local/cdm', schema: 'cdm_54', vocabularySchema: 'vocab' });
  });

  const cases: [string, (c: Record<string, any>) => unknown, RegExp][] = [
    ['no policy', (c) => ({ ...c, policy: undefined }), /policy is missing/],
    ['a policy typo', (c) => ({ ...c, policy: { epsilon: 1, delta: 1e-8, minQorum: 2 } }), /minQorum is not a known policy field/],
    ['two data sources', (c) => ({ ...c, data: { fhirNdjson: 'a', fhirRest: { baseUrl: 'http://x' } } }), /exactly one/],
    ['a bad page size', (c) => ({ ...c, data: { fhirRest: { baseUrl: 'http://x', pageSize: 0 } } }), /pageSize must be ≥ 1/],
    ['FHIR and OMOP at once', (c) => ({ ...c, data: { fhirNdjson: 'a', omop: { url: 'postgres://h/db', schema: 'cdm' } } }), /exactly one/],
    ['an OMOP URL that is not postgres', (c) => ({ ...c, data: { omop: { url: 'mysql://h/db', schema: 'cdm' } } }), /postgres:\/\//],
    [
      'an OMOP schema that is not an identifier',
      (c) => ({ ...c, data: { omop: { url: 'postgres://h/db', schema: 'cdm; drop' } } }),
      /plain SQL identifier/,
    ],
    ['an OMOP typo', (c) => ({ ...c, data: { omop: { url: 'postgres://h/db', schema: 'cdm', vocabSchema: 'v' } } }), /vocabSchema/],
    ['OMOP without a schema', (c) => ({ ...c, data: { omop: { url: 'postgres://h/db' } } }), /schema/],
    ['an unknown key', (c) => ({ ...c, coordinatr: 'x' }), /coordinatr is not a known setting/],
    ['a missing kit', (c) => ({ ...c, kit: join(dir, 'none') }), /startup kit/],
  ];
  for (const [name, make, message] of cases) {
    it(`rejects ${name}`, () => {
      const path = write(`s-${name.replace(/\W/g, '-')}.yaml`, make(siteBase()));
      expect(() => parseSiteConfig(path)).toThrow(message);
    });
  }
});

describe('the fedsynth command', () => {
  const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000 });
  it('exits 2 with a message on an unknown command, a bad flag, or a bad config', () => {
    const unknown = run('frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const noConfig = run('coordinator');
    expect(noConfig.status).toBe(2);
    expect(noConfig.stderr).toMatch(/missing required flag --config/);
    const badConfig = run('agent', '--config', join(dir, 'absent.yaml'));
    expect(badConfig.status).toBe(2);
    expect(badConfig.stderr).toMatch(/cannot read config/);
    const badDemo = run('demo', '--sites', 'many');
    expect(badDemo.status).toBe(2);
    expect(badDemo.stderr).toMatch(/--sites must be an integer/);
  }, 120_000);
});
