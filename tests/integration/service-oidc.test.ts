// JWT bearer tokens next to API keys, over real HTTP: a locally generated RS256 and ES256 key pair,
// the issuer's JWKS served by a real HTTP server on loopback (and, once, from a file), tokens signed
// with jose. Malformed, expired, not-yet-valid, wrong-audience, wrong-issuer and wrong-signature
// tokens get 401 with the reason; the claim's roles decide what a caller may do; the audit entry
// names the JWT's subject; the OpenAPI document lists both schemes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createHttpServer, listen } from '../../coordinator/http/server.ts';
import type { ApiDeps } from '../../coordinator/http/api.ts';
import type { CoordinatorConfig, OidcConfig } from '../../coordinator/config.ts';
import { COORDINATOR_PARTY, StudyStore, type Store } from '../../coordinator/store/index.ts';
import { openPgliteFromSnapshot } from '../support/db.ts';
import { parseChainLines, type ApiRequestEvent, type AuditEntry } from '../../privacy/audit-log/chain.ts';

const ISSUER = 'https://idp.example.org/realms/fedsynth';
const AUDIENCE = 'fedsynth-api';

let store: Store;
let jwksServer: Server;
let jwksFetches = 0;
let rsa: { privateKey: CryptoKey; jwk: JWK };
let ec: { privateKey: CryptoKey; jwk: JWK };
let stranger: CryptoKey;
let apiKey = '';
const dir = mkdtempSync(join(tmpdir(), 'fedsynth-oidc-'));
const servers: Server[] = [];

async function keyPair(alg: 'RS256' | 'ES256', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

async function startApi(oidc: OidcConfig): Promise<string> {
  const cfg = {
    federationId: 'fed-oidc',
    sites: [],
    fit: { delta: 1e-9, plan: 'aim' },
    http: { listen: '127.0.0.1:0', cohortsDir: join(dir, 'cohorts'), maxBodyBytes: 65536, oidc },
  } as unknown as CoordinatorConfig;
  const studies = new StudyStore(store.sql);
  const server = createHttpServer({ store, studies, cfg } as unknown as ApiDeps);
  servers.push(server);
  return `http://127.0.0.1:${await listen(server, '127.0.0.1:0')}`;
}

const oidcAt = (jwks: OidcConfig['jwks'], extra: Partial<OidcConfig> = {}): OidcConfig => ({
  issuer: ISSUER,
  audience: [AUDIENCE],
  jwks,
  algorithms: ['RS256', 'ES256'],
  roleClaim: 'realm_access.roles',
  roleValues: { researcher: ['fedsynth-researcher'], operator: ['fedsynth-operator'], auditor: ['fedsynth-auditor'] },
  clockToleranceSeconds: 5,
  ...extra,
});

interface Claims {
  roles?: string[];
  aud?: string;
  iss?: string;
  exp?: number | string;
  nbf?: number;
  sub?: string;
}

async function token(key: { privateKey: CryptoKey; jwk: JWK } | CryptoKey, alg: 'RS256' | 'ES256', c: Claims = {}, kid?: string) {
  const privateKey = 'privateKey' in key ? key.privateKey : key;
  const jwt = new SignJWT({ realm_access: { roles: c.roles ?? ['fedsynth-researcher'] }, preferred_username: 'dr.jones' })
    .setProtectedHeader({ alg, kid: kid ?? ('jwk' in key ? key.jwk.kid : undefined) })
    .setIssuer(c.iss ?? ISSUER)
    .setAudience(c.aud ?? AUDIENCE)
    .setSubject(c.sub ?? 'user-42')
    .setIssuedAt()
    .setExpirationTime(c.exp ?? '10m');
  if (c.nbf !== undefined) jwt.setNotBefore(c.nbf);
  return jwt.sign(privateKey);
}

async function call(url: string, path: string, bearer: string | null, method = 'GET', body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* NDJSON or text */
  }
  return { status: res.status, body: json, headers: res.headers };
}

let url = '';
let jwksUrl = '';

beforeAll(async () => {
  store = await openPgliteFromSnapshot('memory://');
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  store.setAuditSigner({ party: COORDINATOR_PARTY, privateKeyPem: signer });
  apiKey = (await new StudyStore(store.sql).createApiKey('ops key', 'operator')).token;
  rsa = await keyPair('RS256', 'rsa-1');
  ec = await keyPair('ES256', 'ec-1');
  stranger = (await generateKeyPair('RS256')).privateKey;
  jwksServer = createServer((req, res) => {
    jwksFetches++;
    if (req.url !== '/certs') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
  });
  jwksUrl = `http://127.0.0.1:${await listen(jwksServer, '127.0.0.1:0')}/certs`;
  url = await startApi(oidcAt({ url: jwksUrl }));
}, 60_000);

afterAll(async () => {
  for (const s of [...servers, jwksServer]) {
    s?.closeAllConnections();
    await new Promise((r) => s?.close(r));
  }
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('JWT bearer tokens of the configured issuer', () => {
  it('accepts RS256 and ES256 tokens whose keys the JWKS server publishes, mapping the role claim', async () => {
    const r = await call(url, '/api/v1/whoami', await token(rsa, 'RS256'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'oidc:user-42', name: 'dr.jones', role: 'researcher' });
    expect(jwksFetches).toBeGreaterThan(0);
    const e = await call(url, '/api/v1/whoami', await token(ec, 'ES256', { roles: ['fedsynth-auditor'], sub: 'aud-7' }));
    expect(e.status).toBe(200);
    expect(e.body).toMatchObject({ id: 'oidc:aud-7', role: 'auditor' });
    // API keys keep working next to JWTs.
    expect((await call(url, '/api/v1/whoami', apiKey)).body.role).toBe('operator');
  });

  it('refuses malformed, expired, not-yet-valid, wrong-audience, wrong-issuer and wrong-signature tokens with 401 and the reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = await token(rsa, 'RS256');
    const [h, p] = good.split('.');
    const cases: [string, RegExp][] = [
      [await token(rsa, 'RS256', { exp: now - 3600 }), /token expired/],
      [await token(rsa, 'RS256', { nbf: now + 3600 }), /not valid yet/],
      [await token(rsa, 'RS256', { aud: 'another-api' }), /audience is not fedsynth-api/],
      [await token(rsa, 'RS256', { iss: 'https://evil.example.org' }), /issuer is not https:\/\/idp\.example\.org/],
      // Signed by a key the issuer never published, claiming the issuer's key id.
      [await token(stranger, 'RS256', {}, 'rsa-1'), /signature does not verify/],
      [await token(stranger, 'RS256', {}, 'rsa-unknown'), /key the issuer does not publish/],
      // The payload changed after signing.
      [
        `${h}.${Buffer.from(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: now + 600 })).toString('base64url')}.${good.split('.')[2]}`,
        /signature does not verify/,
      ],
      [`${h}.${p}.`, /malformed token|signature/],
      ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', /malformed token|algorithm not accepted/],
      ['abc.def.ghi', /malformed token/],
    ];
    for (const [jwt, reason] of cases) {
      const r = await call(url, '/api/v1/whoami', jwt);
      expect(r.status, jwt.slice(0, 60)).toBe(401);
      expect(r.body.error, jwt.slice(0, 60)).toMatch(reason);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    }
    // A valid token whose claim grants no role of the service: 401 naming the claim.
    const none = await call(url, '/api/v1/whoami', await token(rsa, 'RS256', { roles: ['billing'] }));
    expect(none.status).toBe(401);
    expect(none.body.error).toMatch(/grants no role.*realm_access\.roles/);
  });

  it('authorises by the mapped role: 403 for a researcher on an auditor route, the auditor reads the audit log naming the subject', async () => {
    const researcher = await token(rsa, 'RS256', { sub: 'res-1' });
    const denied = await call(url, '/api/v1/audit', researcher);
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatch(/role researcher may not GET \/api\/v1\/audit/);
    // A token granting two roles acts in the one the route allows.
    const both = await token(ec, 'ES256', { roles: ['fedsynth-researcher', 'fedsynth-auditor'], sub: 'both-1' });
    const log = await call(url, '/api/v1/audit', both);
    expect(log.status).toBe(200);
    const events = (parseChainLines(String(log.body)) as AuditEntry[]).map((e) => e.event as ApiRequestEvent);
    expect(events.some((e) => e.requester === 'dr.jones (oidc:res-1)' && e.status === 403)).toBe(true);
    expect(events.some((e) => e.requester === 'anonymous' && e.status === 401)).toBe(true);
  });

  it('reads the JWKS from a file too, and says JWTs are not accepted when no issuer is configured', async () => {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [ec.jwk] }));
    const fromFile = await startApi(oidcAt({ file }, { algorithms: ['ES256'] }));
    expect((await call(fromFile, '/api/v1/whoami', await token(ec, 'ES256'))).status).toBe(200);
    const rs = await call(fromFile, '/api/v1/whoami', await token(rsa, 'RS256'));
    expect(rs.status).toBe(401);
    expect(rs.body.error).toMatch(/algorithm not accepted|does not publish/);
    writeFileSync(join(dir, 'bad.json'), '{"nokeys": 1}');
    expect(() =>
      createHttpServer({ cfg: { federationId: 'f', http: { oidc: oidcAt({ file: join(dir, 'bad.json') }) } } } as unknown as ApiDeps),
    ).toThrow(/not a JWK Set/);
    const noOidc = createHttpServer({
      store,
      studies: new StudyStore(store.sql),
      cfg: { federationId: 'f', sites: [] },
    } as unknown as ApiDeps);
    servers.push(noOidc);
    const plain = `http://127.0.0.1:${await listen(noOidc, '127.0.0.1:0')}`;
    const r = await call(plain, '/api/v1/whoami', await token(rsa, 'RS256'));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/JWT bearer tokens are not accepted here/);
  });

  it('answers 503 when the issuer keys cannot be fetched, not a silent accept or a misleading 401', async () => {
    const dead = await startApi(oidcAt({ url: 'http://127.0.0.1:9/certs' }));
    const r = await call(dead, '/api/v1/whoami', await token(rsa, 'RS256'));
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/issuer keys unavailable/);
  });

  it('states both bearer schemes in the OpenAPI document', async () => {
    const doc = (await call(url, '/api/v1/openapi.json', null)).body;
    expect(doc.security).toEqual([{ bearer: [] }, { oidcJwt: [] }]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes.oidcJwt).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes.oidcJwt.description).toContain(ISSUER);
  });
});
