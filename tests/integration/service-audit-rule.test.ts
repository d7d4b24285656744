// What the HTTP API writes to the audit log (docs/service.md, "What is audited"), over real HTTP
// with a real store: polling status and lists adds no entry, and is answered 304 when nothing
// changed; state changes, refusals and the first read of the audit log are written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../../coordinator/http/server.ts';
import type { ApiDeps } from '../../coordinator/http/api.ts';
import type { CoordinatorConfig } from '../../coordinator/config.ts';
import { COORDINATOR_PARTY, StudyStore, type Store } from '../../coordinator/store/index.ts';
import { openPgliteFromSnapshot } from '../support/db.ts';
import { parseChainLines, type ApiRequestEvent, type AuditEntry } from '../../privacy/audit-log/chain.ts';
import { parseSchema } from '../../schema/schema.ts';
import { readFileSync } from 'node:fs';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const FED = 'fed-audit';
let store: Store;
let server: Server;
let url = '';
const tokens: Record<string, string> = {};

async function call(path: string, token: string | null, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: res.status, etag: res.headers.get('etag'), text: await res.text() };
}

async function requests(): Promise<ApiRequestEvent[]> {
  const entries = parseChainLines(await store.exportAudit(FED)) as AuditEntry[];
  return entries.map((e) => e.event).filter((e): e is ApiRequestEvent => e.type === 'api-request');
}

/** Audit appends run after the response: a refused request is a marker that all before it landed. */
async function settled(): Promise<ApiRequestEvent[]> {
  const marker = `/api/v1/marker-${Math.random().toString(36).slice(2)}`;
  await call('/api/v1/whoami', 'fsk_0000000000000000_' + 'x'.repeat(43));
  await call(marker, null, { method: 'POST' });
  for (let i = 0; i < 200; i++) {
    const all = await requests();
    if (all.some((e) => e.path === marker)) return all.filter((e) => !e.path.startsWith('/api/v1/marker-') && e.status !== 401);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('audit marker never written');
}

beforeAll(async () => {
  store = await openPgliteFromSnapshot('memory://');
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  store.setAuditSigner({ party: COORDINATOR_PARTY, privateKeyPem: signer });
  const studies = new StudyStore(store.sql);
  for (const role of ['researcher', 'operator', 'auditor'] as const) tokens[role] = (await studies.createApiKey(`k ${role}`, role)).token;
  const cfg = {
    federationId: FED,
    sites: ['hospital-a'],
    schemaHash: 'h',
    fit: { delta: 1e-9, plan: 'aim' },
    http: { listen: '127.0.0.1:0', cohortsDir: '/nonexistent', maxBodyBytes: 65536 },
  } as unknown as CoordinatorConfig;
  const schema = parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
  server = createHttpServer({ store, studies, cfg, schema } as unknown as ApiDeps);
  url = `http://127.0.0.1:${await listen(server, '127.0.0.1:0')}`;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await store?.close();
});

describe('the audit rule', () => {
  it('polling status and lists N times adds no audit entry; an unchanged resource is answered 304', async () => {
    const before = (await settled()).length;
    const polled = ['/api/v1/budget', '/api/v1/studies', '/api/v1/cohorts', '/api/v1/whoami', '/api/v1/schema'];
    const etags: Record<string, string> = {};
    for (let n = 0; n < 20; n++) {
      for (const path of polled) {
        const r = await call(path, tokens.researcher, etags[path] ? { headers: { 'if-none-match': etags[path] } } : {});
        if (n === 0) {
          expect(r.status, path).toBe(200);
          expect(r.etag, path).toMatch(/^W\/".+"$/);
          etags[path] = r.etag!;
        } else {
          expect(r.status, path).toBe(304);
          expect(r.text).toBe('');
        }
      }
      expect((await call('/api/v1/studies/study-nope', tokens.auditor)).status).toBe(404);
    }
    expect((await settled()).length).toBe(before);
  });

  it('writes state changes (also refused ones), 401 and 403, and the first read of the audit log per caller', async () => {
    const before = (await settled()).length;
    expect(
      (await call('/api/v1/studies', tokens.researcher, { method: 'POST', body: { title: 'x', epsilon: 1, epsilom: 2 } })).status,
    ).toBe(400);
    expect((await call('/api/v1/studies', tokens.auditor, { method: 'POST', body: { title: 'x', epsilon: 1 } })).status).toBe(403);
    expect((await call('/api/v1/audit', tokens.researcher)).status).toBe(403);
    for (let i = 0; i < 5; i++) expect((await call('/api/v1/audit', tokens.auditor)).status).toBe(200);
    expect((await call('/api/v1/audit', tokens.operator)).status).toBe(200);
    const after = (await settled()).slice(before);
    expect(after.map((e) => `${e.method} ${e.path} ${e.status} ${e.role}`)).toEqual([
      'POST /api/v1/studies 400 researcher',
      'POST /api/v1/studies 403 auditor',
      'GET /api/v1/audit 403 researcher',
      'GET /api/v1/audit 200 auditor',
      'GET /api/v1/audit 200 operator',
    ]);
  });

  it('a changed resource gets a new ETag and a 200', async () => {
    const first = await call('/api/v1/studies', tokens.researcher);
    const created = await call('/api/v1/studies', tokens.operator, { method: 'POST', body: { title: 'refused by budget', epsilon: 1 } });
    // No site has published a budget here: 409, nothing created, the list is unchanged.
    expect(created.status).toBe(409);
    expect((await call('/api/v1/studies', tokens.researcher, { headers: { 'if-none-match': first.etag! } })).status).toBe(304);
    await store.upsertFederation({ id: FED, schemaHash: 'h', schema: parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8')), config: {} });
    await new StudyStore(store.sql).createStudy({
      id: 'study-etag',
      federationId: FED,
      fitId: `${FED}/study-etag`,
      title: 't',
      epsilon: 1,
      delta: 1e-9,
      attributes: null,
      plan: 'aim',
      requester: 'test',
    });
    const again = await call('/api/v1/studies', tokens.researcher, { headers: { 'if-none-match': first.etag! } });
    expect(again.status).toBe(200);
    expect(again.etag).not.toBe(first.etag);
    expect(again.text).toContain('study-etag');
  });
});
