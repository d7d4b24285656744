// coordinator.yaml → CoordinatorConfig, with errors that name the file and the setting.
import { decodeCanaryRows, DEFAULT_MAX_CELL_COUNT, InvalidTaskSpecError } from '../proto/task-spec.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditedFitConfig, CoordinatorConfig, HttpConfig, JwtAlgorithm, OidcConfig } from '../coordinator/config.ts';
import { parseSchema, schemaHash } from '../schema/schema.ts';
import { bfvParams } from '../coordinator/engine.ts';
import { ConfigError, Fields, loadConfigFile } from './config-file.ts';
import { parseOpsConfig } from './ops-flags.ts';

function readPem(dir: string, file: string, what: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    throw new ConfigError(`${what}: cannot read ${join(dir, file)} (run fedsynth provision first?)`);
  }
}

export function loadSchemaFile(path: string): { text: string; hash: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read schema ${path}`);
  }
  return { text, hash: schemaHash(parseSchema(text)) };
}

export function parseCoordinatorConfig(path: string): CoordinatorConfig {
  const file = loadConfigFile(path);
  const f = new Fields(file.path, file.raw);
  f.onlyKeys([
    'federationId',
    'schema',
    'listen',
    'kit',
    'storage',
    'sites',
    'committee',
    'rounds',
    'fit',
    'http',
    'metrics',
    'revocationList',
  ]);
  const kitDir = f.path('kit', file.dir);
  const schema = loadSchemaFile(f.path('schema', file.dir));
  const sites = f.stringList('sites');
  if (new Set(sites).size !== sites.length) throw new ConfigError(`${file.path}: sites lists a site twice`);

  const storage = f.section('storage');
  storage.onlyKeys(['pglite', 'postgres', 'postgresSchema']);
  if (storage.has('pglite') === storage.has('postgres'))
    throw new ConfigError(`${file.path}: storage needs exactly one of pglite (a data directory) or postgres (a URL)`);
  const storageCfg: CoordinatorConfig['storage'] = storage.has('pglite')
    ? { kind: 'pglite', dataDir: storage.path('pglite', file.dir) }
    : {
        kind: 'postgres',
        url: storage.string('postgres'),
        schema: storage.has('postgresSchema') ? storage.string('postgresSchema') : undefined,
      };

  const committee = f.section('committee');
  committee.onlyKeys(['members', 'threshold']);
  const members = committee.stringList('members');
  for (const m of members) if (!sites.includes(m)) throw new ConfigError(`${file.path}: committee member ${m} is not in sites`);
  const threshold = committee.number('threshold', undefined, { integer: true, min: 1, max: members.length });

  const rounds = f.section('rounds', false);
  rounds.onlyKeys(['quorum', 'deadlineSeconds', 'registrationSeconds', 'maxRowsPerSite']);
  const quorum = rounds.number('quorum', Math.min(2, sites.length), { integer: true, min: 1, max: sites.length });

  const fit = f.section('fit');
  fit.onlyKeys(['epsilon', 'delta', 'cohortSize', 'seed', 'out', 'iterations', 'plan', 'audit']);
  const plan = fit.string('plan', 'aim');
  if (plan !== 'aim' && plan !== 'mst') throw new ConfigError(`${file.path}: fit.plan must be aim or mst, got ${JSON.stringify(plan)}`);
  const epsilon = fit.number('epsilon', undefined, { min: 1e-6, max: 100 });
  const delta = fit.number('delta', undefined, { min: 1e-300, max: 0.1 });
  const outDir = fit.path('out', file.dir, './out');
  const http = parseHttpSection(f, file.path, file.dir, outDir);
  return {
    ...parseOpsConfig(f, file.path, file.dir),
    federationId: f.string('federationId'),
    schemaText: schema.text,
    schemaHash: schema.hash,
    listen: f.string('listen', '0.0.0.0:7443'),
    kit: {
      caPem: readPem(kitDir, 'ca.pem', file.path),
      certPem: readPem(kitDir, 'cert.pem', file.path),
      keyPem: readPem(kitDir, 'key.pem', file.path),
    },
    storage: storageCfg,
    ...(http ? { http } : {}),
    sites,
    committee: { members, threshold },
    bfv: bfvParams(),
    rounds: {
      quorum,
      deadlineMs: rounds.number('deadlineSeconds', 120, { min: 1, max: 86_400 }) * 1000,
      registrationMs: rounds.number('registrationSeconds', 300, { min: 0, max: 86_400 }) * 1000,
      // The contribution bound: sites clip every cell to it; released sums are range-checked with it.
      maxCellCount: rounds.number('maxRowsPerSite', DEFAULT_MAX_CELL_COUNT, { integer: true, min: 1, max: DEFAULT_MAX_CELL_COUNT }),
    },
    fit: {
      epsilon,
      delta,
      cohortSize: fit.number('cohortSize', 1000, { integer: true, min: 0, max: 10_000_000 }),
      seed: fit.number('seed', 1, { integer: true, min: 0 }),
      outDir,
      iterations: fit.number('iterations', 1000, { integer: true, min: 1, max: 100_000 }),
      plan,
      ...(fit.has('audit') ? { audit: parseAuditedFit(fit.section('audit'), file.path, file.dir, sites) } : {}),
    },
  };
}

/**
 * `fit.audit`: an audited fit (coordinator/audit-rounds.ts). `holdout` is the fraction of each
 * site's patients kept out of every measure round; `mia` asks every site for its noised score
 * histograms on the cohort, with each cell's noise `sigma2` (σ², an integer or "num/den", exact).
 */
function parseAuditedFit(audit: Fields, path: string, dir: string, sites: readonly string[]): AuditedFitConfig {
  audit.onlyKeys(['holdout', 'mia', 'canaries']);
  const holdoutFraction = audit.number('holdout', 0.5, { min: 0.01, max: 0.99 });
  const canaries = audit.has('canaries') ? { canaries: readCanaries(audit.path('canaries', dir), path, sites) } : {};
  if (!audit.has('mia')) return { holdoutFraction, ...canaries };
  const mia = audit.section('mia');
  mia.onlyKeys(['bins', 'sigma2', 'cohortRows']);
  const sigma = String(mia.raw('sigma2') ?? '4');
  const m = /^([0-9]{1,30})(?:\/([0-9]{1,30}))?$/.exec(sigma);
  if (!m || BigInt(m[1]) === 0n || (m[2] !== undefined && BigInt(m[2]) === 0n))
    throw new ConfigError(
      `${path}: fit.audit.mia.sigma2 must be a positive integer or "num/den", got ${JSON.stringify(mia.raw('sigma2'))}`,
    );
  const sigmaSite2 = { num: m[1], den: m[2] ?? '1' };
  // The discrete Gaussian accountant holds for σ ≥ 1/2 (privacy/dp/accountant.ts).
  if (4n * BigInt(sigmaSite2.num) < BigInt(sigmaSite2.den)) throw new ConfigError(`${path}: fit.audit.mia.sigma2 must be at least 1/4`);
  return {
    holdoutFraction,
    ...canaries,
    mia: {
      bins: mia.number('bins', 8, { integer: true, min: 2, max: 64 }),
      sigmaSite2,
      cohortRows: mia.number('cohortRows', 2000, { integer: true, min: 10, max: 1_000_000 }),
    },
  };
}

/**
 * `fit.audit.canaries`: a JSON file the auditor writes (cli/audit/canary-federation.ts), by site
 * the canary rows it included there; each row is checked as a task spec's `canaryRows` is.
 */
function readCanaries(file: string, path: string, sites: readonly string[]): Record<string, number[][]> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: fit.audit.canaries: cannot read ${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(`${path}: fit.audit.canaries: ${file} must hold an object {site: [[value index, ...], ...]}`);
  const out: Record<string, number[][]> = {};
  for (const [site, rows] of Object.entries(raw)) {
    if (!sites.includes(site)) throw new ConfigError(`${path}: fit.audit.canaries: ${file} names site ${site}, which is not in sites`);
    try {
      out[site] = decodeCanaryRows(rows);
    } catch (e) {
      if (e instanceof InvalidTaskSpecError) throw new ConfigError(`${path}: fit.audit.canaries: ${file}, site ${site}: ${e.message}`);
      throw e;
    }
  }
  return out;
}

/** The optional `http:` section of `fedsynth serve`: listen (host:port), publicUrl, cohorts, maxBodyKiB. */
function parseHttpSection(f: Fields, path: string, dir: string, outDir: string): HttpConfig | undefined {
  if (!f.has('http')) return undefined;
  const http = f.section('http');
  http.onlyKeys(['listen', 'publicUrl', 'cohorts', 'maxBodyKiB', 'oidc']);
  const listen = http.string('listen');
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535)
    throw new ConfigError(`${path}: http.listen must be host:port (e.g. 0.0.0.0:8080), got ${JSON.stringify(listen)}`);
  let publicUrl: string | undefined;
  if (http.has('publicUrl')) {
    publicUrl = http.string('publicUrl').replace(/\/+$/, '');
    const ok = URL.canParse(publicUrl) && ['http:', 'https:'].includes(new URL(publicUrl).protocol);
    if (!ok) throw new ConfigError(`${path}: http.publicUrl must be an http(s) URL, got ${JSON.stringify(publicUrl)}`);
  }
  return {
    listen,
    ...(publicUrl ? { publicUrl } : {}),
    cohortsDir: http.has('cohorts') ? http.path('cohorts', dir) : join(outDir, 'cohorts'),
    maxBodyBytes: http.number('maxBodyKiB', 64, { integer: true, min: 1, max: 10_240 }) * 1024,
    ...(http.has('oidc') ? { oidc: parseOidcSection(http.section('oidc'), path, dir) } : {}),
  };
}

const ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256'];
const SERVICE_ROLES = ['researcher', 'operator', 'auditor'] as const;

/**
 * `http.oidc`: JWTs of one issuer accepted as bearer tokens. issuer, audience (one or a list),
 * jwksUrl or jwksFile, algorithms (RS256, ES256), roleClaim, roles (claim values per service
 * role), clockToleranceSeconds.
 */
function parseOidcSection(o: Fields, path: string, dir: string): OidcConfig {
  o.onlyKeys(['issuer', 'audience', 'jwksUrl', 'jwksFile', 'algorithms', 'roleClaim', 'roles', 'clockToleranceSeconds']);
  const issuer = o.string('issuer');
  const audience = typeof o.raw('audience') === 'string' ? [o.string('audience')] : o.stringList('audience');
  if (audience.length === 0) throw new ConfigError(`${path}: http.oidc.audience must name at least one audience`);
  if (o.has('jwksUrl') === o.has('jwksFile'))
    throw new ConfigError(`${path}: http.oidc needs exactly one of jwksUrl (the issuer's JWKS endpoint) or jwksFile (a JWK Set on disk)`);
  let jwks: OidcConfig['jwks'];
  if (o.has('jwksUrl')) {
    const url = o.string('jwksUrl');
    if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol))
      throw new ConfigError(`${path}: http.oidc.jwksUrl must be an http(s) URL, got ${JSON.stringify(url)}`);
    jwks = { url };
  } else jwks = { file: o.path('jwksFile', dir) };
  const algorithms = o.stringList('algorithms', ['RS256', 'ES256']);
  const badAlg = algorithms.filter((a) => !(ALGORITHMS as readonly string[]).includes(a));
  if (badAlg.length || algorithms.length === 0)
    throw new ConfigError(
      `${path}: http.oidc.algorithms must be a non-empty list from ${ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithms)}`,
    );
  const roles = o.section('roles', false);
  roles.onlyKeys([...SERVICE_ROLES]);
  const roleValues = Object.fromEntries(
    SERVICE_ROLES.map((r) => [r, typeof roles.raw(r) === 'string' ? [roles.string(r)] : roles.stringList(r, [r])]),
  ) as OidcConfig['roleValues'];
  return {
    issuer,
    audience,
    jwks,
    algorithms: algorithms as JwtAlgorithm[],
    roleClaim: o.string('roleClaim', 'roles'),
    roleValues,
    clockToleranceSeconds: o.number('clockToleranceSeconds', 30, { integer: true, min: 0, max: 300 }),
  };
}
