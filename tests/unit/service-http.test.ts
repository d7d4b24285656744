// The HTTP layer without a federation: the OpenAPI document matches the router exactly, request
// validation (bodies, filters, ages inside a bin), body limits, tokens, and the http config key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import YAML from 'yaml';
import { allRoutes } from '../../coordinator/http/server.ts';
import { openApiDocument } from '../../coordinator/http/openapi.ts';
import { compile, HttpError, matchRoute, readJson } from '../../coordinator/http/router.ts';
import { ageEdgeProblem, parseCohortRequest, parseStudyRequest, schemaModalities } from '../../coordinator/http/validate.ts';
import type { ApiDeps } from '../../coordinator/http/api.ts';
import { parseToken, StudyStore, type Role, type Store } from '../../coordinator/store/index.ts';
import { openPgliteFromSnapshot } from '../support/db.ts';
import { budgetProblem, subsetSchemaText, type SiteBudget } from '../../coordinator/studies.ts';
import { parseSchema } from '../../schema/schema.ts';
import { DEFAULT_SCHEMA_PATH, MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { ConfigError } from '../../cli/config-file.ts';
import { provisionFederation } from '../../pki/index.ts';
import { rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';

const schemaText = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8');
const schema = parseSchema(schemaText);
const names = schema.attributes.map((a) => a.name);

describe('OpenAPI document', () => {
  it('describes exactly the routes the router serves, method by method', () => {
    const routes = allRoutes({ cfg: { federationId: 'f' } } as unknown as ApiDeps);
    const served = routes.map((r) => `${r.method} ${r.path}`).sort();
    const doc = openApiDocument('f') as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(served);
    // Public routes are marked as such, the others need the bearer scheme.
    for (const r of routes) {
      const op = doc.paths[r.path][r.method.toLowerCase()] as { security?: unknown[] };
      expect(op.security === undefined ? 'bearer' : 'public', r.path).toBe(r.roles.length ? 'bearer' : 'public');
    }
  });

  it('matches path templates with parameters and reports other methods', () => {
    const routes = allRoutes({ cfg: { federationId: 'f' } } as unknown as ApiDeps);
    const m = matchRoute(routes, 'GET', '/fhir/Group/cohort-1/$export');
    expect(m && 'route' in m && m.params).toEqual({ id: 'cohort-1' });
    expect(matchRoute(routes, 'PUT', '/api/v1/studies')).toEqual({ allowed: ['POST', 'GET'] });
    expect(matchRoute(routes, 'GET', '/api/v1/studies/a/b')).toBeNull();
    expect(compile('/a/{x}/b').test('/a/1/b')).toBe(true);
    expect(compile('/a/{x}/b').test('/a/1/2/b')).toBe(false);
  });
});

function fakeRequest(body: string, headers: Record<string, string>): IncomingMessage {
  return Object.assign(Readable.from([Buffer.from(body)]), { headers }) as unknown as IncomingMessage;
}

describe('request bodies', () => {
  it('reads JSON objects and refuses oversize, non-JSON and non-object bodies', async () => {
    const json = { 'content-type': 'application/json' };
    expect(await readJson(fakeRequest('{"a":1}', json))).toEqual({ a: 1 });
    await expect(readJson(fakeRequest('x'.repeat(100), json), 50)).rejects.toMatchObject({ status: 413 });
    await expect(readJson(fakeRequest('{}', { ...json, 'content-length': '999999' }), 50)).rejects.toMatchObject({ status: 413 });
    await expect(readJson(fakeRequest('{"a":', json))).rejects.toMatchObject({ status: 400 });
    await expect(readJson(fakeRequest('"text"', json))).rejects.toMatchObject({ status: 400 });
    await expect(readJson(fakeRequest('{}', { 'content-type': 'text/plain' }))).rejects.toMatchObject({ status: 415 });
  });

  it('validates study requests and names the valid attributes', () => {
    expect(parseStudyRequest({ title: ' t ', epsilon: 1 }, names, 1e-9)).toEqual({
      title: 't',
      epsilon: 1,
      delta: 1e-9,
      attributes: null,
      plan: 'aim',
    });
    const subset = parseStudyRequest({ title: 't', epsilon: 1, attributes: ['sex', 'age', 'sex'] }, names, 1e-9);
    expect(subset.attributes).toEqual(['age', 'sex']);
    const err = (() => {
      try {
        parseStudyRequest({ title: 't', epsilon: 1, attributes: ['agee', 'sex'] }, names, 1e-9);
      } catch (e) {
        return e as HttpError;
      }
    })();
    expect(err?.status).toBe(400);
    expect(err?.message).toMatch(/unknown attribute "agee" \(valid: age, sex/);
    for (const bad of [
      { title: '', epsilon: 1 },
      { title: 't', epsilon: 0 },
      { title: 't', epsilon: Infinity },
      { title: 't', epsilon: 1, delta: 0 },
      { title: 't', epsilon: 1, attributes: 'age' },
      { title: 't', epsilon: 1, extra: 1 },
    ])
      expect(() => parseStudyRequest(bad, names, 1e-9), JSON.stringify(bad)).toThrow(HttpError);
  });

  it('refuses age cuts inside a bin and ages compared with = instead of rounding them', () => {
    expect(ageEdgeProblem(schema, 'age>=40,age<70')).toBeNull();
    expect(ageEdgeProblem(schema, 'age>39')).toBeNull();
    expect(ageEdgeProblem(schema, 'age<=69')).toBeNull();
    expect(ageEdgeProblem(schema, 'age>=45')).toMatch(/cuts inside an age bin/);
    expect(ageEdgeProblem(schema, 'age<=45')).toMatch(/cuts inside/);
    expect(ageEdgeProblem(schema, 'age=45')).toMatch(/whole age bin/);
    expect(ageEdgeProblem(schema, 'sex=female')).toBeNull();
  });

  it('validates cohort requests: filters through the schema, modalities of the study', () => {
    const ok = parseCohortRequest({ study: 's', n: 10, where: 'age>=60,sex=female' }, schema, ['fhir']);
    expect(ok.allowed.sex).toEqual([0]);
    expect(ok.seed).toBe(1);
    expect(() => parseCohortRequest({ study: 's', n: 10, where: 'agge>=60' }, schema, ['fhir'])).toThrow(
      /unknown attribute "agge".*known: condition, age/,
    );
    expect(() => parseCohortRequest({ study: 's', n: 10, modalities: ['vcf'] }, schema, ['fhir'])).toThrow(/valid: fhir/);
    expect(() => parseCohortRequest({ study: 's', n: 10, modalities: [] }, schema, ['fhir'])).toThrow(HttpError);
    expect(() => parseCohortRequest({ study: 's', n: 10_000_000 }, schema, ['fhir'])).toThrow(/n must be/);
    expect(() => parseCohortRequest({ study: 's', n: 10, where: 5 }, schema, ['fhir'])).toThrow(/where must be/);
    expect(schemaModalities(schema)).toEqual(['fhir']);
    expect(schemaModalities(parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8')))).toEqual(['fhir', 'dicom', 'vcf', 'notes']);
  });
});

describe('studies', () => {
  it('subsets a schema, keeping declared structure only where all its attributes remain', () => {
    const multi = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');
    const s = parseSchema(subsetSchemaText(multi, ['age', 'sex', 'img_opacity', 'pneumonia']));
    expect(s.attributes.map((a) => a.name).sort()).toEqual(['age', 'img_opacity', 'pneumonia', 'sex']);
    // The cross-modal round keeps the finding's link; the clinical round its sex link, the band
    // round its age link, still in bands.
    expect(s.structure?.marginals).toEqual([
      ['img_opacity', 'pneumonia'],
      ['sex', 'pneumonia'],
      ['age', 'pneumonia'],
    ]);
    expect(s.structure?.groups?.[2].coarsen).toEqual({ age: [0, 18, 40, 65] });
    // Without age the band round has nothing to measure: dropped, not left without its attribute.
    const noAge = parseSchema(subsetSchemaText(multi, ['sex', 'img_opacity', 'pneumonia']));
    expect(noAge.structure?.groups?.some((g) => g.coarsen)).toBe(false);
    expect(s.workload?.queries.map((q) => q.family)).not.toContain('comorbidity');
    expect(parseSchema(subsetSchemaText(multi, ['age', 'sex'])).structure).toBeUndefined();
  });

  it('refuses a study that one site cannot afford, naming it', () => {
    const b = (siteId: string, remainingRho: number): SiteBudget => ({
      siteId,
      epsilonCap: 1,
      delta: 1e-9,
      rhoCap: 1,
      spentRho: 1 - remainingRho,
      remainingRho,
      remainingEpsilon: 0.5,
      chargedRho: 0,
      publishedAt: '',
    });
    const need = rhoFromEpsilonDelta(0.5, 1e-9);
    expect(budgetProblem([b('a', need * 2), b('b', need * 2)], ['a', 'b'], 0.5, 1e-9)).toBeNull();
    expect(budgetProblem([b('a', need * 2), b('b', need / 2)], ['a', 'b'], 0.5, 1e-9)?.siteId).toBe('b');
    expect(budgetProblem([b('a', need * 2)], ['a', 'b'], 0.5, 1e-9)?.message).toMatch(/b has not registered/);
  });
});

describe('API keys', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteFromSnapshot('memory://');
  });
  afterAll(async () => store.close());

  it('stores only a scrypt hash, verifies the token, refuses wrong secrets and revoked keys', async () => {
    const keys = new StudyStore(store.sql);
    const { key, token } = await keys.createApiKey('alice', 'researcher');
    expect(parseToken(token)?.id).toBe(key.id);
    const row = (await store.sql.query('SELECT * FROM api_keys WHERE id = $1', [key.id])).rows[0];
    expect(JSON.stringify(row)).not.toContain(parseToken(token)!.secret);
    expect((await keys.verifyToken(token))?.role).toBe('researcher');
    const wrong = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(await keys.verifyToken(wrong)).toBeNull();
    expect(await keys.verifyToken('garbage')).toBeNull();
    expect(await keys.revokeApiKey(key.id)).toBe(true);
    expect(await keys.verifyToken(token)).toBeNull();
    await expect(keys.createApiKey('x', 'admin' as Role)).rejects.toThrow(/unknown role/);
  });
});

describe('coordinator.yaml http section', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-httpcfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = () => ({
    federationId: 'f',
    schema: DEFAULT_SCHEMA_PATH,
    kit: join(dir, 'kits', 'coordinator'),
    storage: { pglite: join(dir, 'db') },
    sites: ['hospital-a', 'hospital-b'],
    committee: { members: ['hospital-a', 'hospital-b'], threshold: 2 },
    fit: { epsilon: 1, delta: 1e-9, out: join(dir, 'out') },
  });
  const parse = (http: unknown) => {
    const path = join(dir, 'c.yaml');
    writeFileSync(path, YAML.stringify({ ...base(), http }));
    return parseCoordinatorConfig(path);
  };
  beforeAll(async () =>
    provisionFederation({ outDir: join(dir, 'kits'), federationId: 'f', sites: ['hospital-a', 'hospital-b'], validityDays: 1 }),
  );

  it('reads listen, publicUrl, cohorts and the body limit; refuses malformed values', () => {
    const cfg = parse({ listen: '127.0.0.1:8080', publicUrl: 'https://fedsynth.example.org/', maxBodyKiB: 16 });
    expect(cfg.http).toEqual({
      listen: '127.0.0.1:8080',
      publicUrl: 'https://fedsynth.example.org',
      cohortsDir: join(dir, 'out', 'cohorts'),
      maxBodyBytes: 16 * 1024,
    });
    for (const bad of [
      { listen: '8080' },
      { listen: 'host:99999' },
      { listen: '127.0.0.1:80', publicUrl: 'ftp://x' },
      { listen: '127.0.0.1:80', typo: 1 },
      { listen: '127.0.0.1:80', maxBodyKiB: 0 },
      {},
    ])
      expect(() => parse(bad), JSON.stringify(bad)).toThrow(ConfigError);
  });
  it('reads http.oidc (issuer, audience, JWKS URL or file, algorithms, role claim and values); refuses malformed values', () => {
    const listen = '127.0.0.1:8080';
    const cfg = parse({
      listen,
      oidc: {
        issuer: 'https://idp/x',
        audience: 'api',
        jwksUrl: 'https://idp/x/certs',
        roleClaim: 'groups',
        roles: { operator: ['ops', 'admins'] },
      },
    });
    expect(cfg.http?.oidc).toEqual({
      issuer: 'https://idp/x',
      audience: ['api'],
      jwks: { url: 'https://idp/x/certs' },
      algorithms: ['RS256', 'ES256'],
      roleClaim: 'groups',
      roleValues: { researcher: ['researcher'], operator: ['ops', 'admins'], auditor: ['auditor'] },
      clockToleranceSeconds: 30,
    });
    expect(
      parse({ listen, oidc: { issuer: 'i', audience: ['a', 'b'], jwksFile: 'jwks.json', algorithms: ['ES256'] } }).http?.oidc,
    ).toMatchObject({
      audience: ['a', 'b'],
      jwks: { file: join(dir, 'jwks.json') },
      algorithms: ['ES256'],
    });
    for (const [oidc, why] of [
      [{ audience: 'a', jwksFile: 'j' }, /oidc.issuer is required/],
      [{ issuer: 'i', jwksFile: 'j' }, /oidc.audience is required/],
      [{ issuer: 'i', audience: [], jwksFile: 'j' }, /at least one audience/],
      [{ issuer: 'i', audience: 'a' }, /exactly one of jwksUrl/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', jwksUrl: 'https://x' }, /exactly one of jwksUrl/],
      [{ issuer: 'i', audience: 'a', jwksUrl: 'file:///etc/passwd' }, /jwksUrl must be an http\(s\) URL/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', algorithms: ['HS256'] }, /algorithms must be a non-empty list from RS256, ES256/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', algorithms: [] }, /algorithms must be a non-empty list/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', roles: { admin: 'x' } }, /roles.admin is not a known setting/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', clockToleranceSeconds: 9999 }, /clockToleranceSeconds must be ≤ 300/],
      [{ issuer: 'i', audience: 'a', jwksFile: 'j', secret: 'x' }, /oidc.secret is not a known setting/],
    ] as const)
      expect(() => parse({ listen, oidc }), JSON.stringify(oidc)).toThrow(why);
  });
});
