// FHIR REST connector against a real FHIR server (Medplum router, in memory): paging,
// incremental reads, bearer-token auth and Binary attachments.
import { afterEach, describe, expect, it } from 'vitest';
import { FHIR_REST_RESOURCE_TYPES, FhirRestError, FhirRestSource } from '../../site-agent/connectors/fhir-rest.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';
import { startFhirServer, type FhirServer } from '../support/fhir-server.ts';

const servers: FhirServer[] = [];
async function server(opts: Parameters<typeof startFhirServer>[0] = {}): Promise<FhirServer> {
  const s = await startFhirServer(opts);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function collect(src: AsyncIterable<FhirResource>): Promise<FhirResource[]> {
  const out: FhirResource[] = [];
  for await (const r of src) out.push(r);
  return out;
}

function patients(n: number, tag = 'a') {
  return Array.from({ length: n }, (_, i) => ({
    resourceType: 'Patient',
    identifier: [{ system: 'urn:test', value: `${tag}${i}` }],
    birthDate: '1970-01-01',
  }));
}

describe('FHIR REST connector: paging', () => {
  it('follows next links across several small pages and yields every resource exactly once', async () => {
    const conditions = Array.from({ length: 11 }, (_, i) => ({
      resourceType: 'Condition',
      code: { coding: [{ system: 'http://snomed.info/sct', code: String(44054006 + i) }] },
      subject: { reference: 'Patient/x' },
    }));
    const s = await server({ resources: [...patients(23), ...conditions] });
    const src = new FhirRestSource({ baseUrl: s.url, pageSize: 5 });
    const q = new Quarantine();
    const got = await collect(src.resources(FHIR_REST_RESOURCE_TYPES, q));

    expect(q.records).toEqual([]);
    const byType = (t: string) => got.filter((r) => r.resourceType === t);
    expect(byType('Patient')).toHaveLength(23);
    expect(byType('Condition')).toHaveLength(11);
    expect(got).toHaveLength(34);
    expect(new Set(got.map((r) => `${r.resourceType}/${r.id}`)).size).toBe(34);

    // 23 Patients at 5 per page = 5 pages; 11 Conditions = 3 pages; 4 empty types = 1 each.
    const searches = s.log.map((l) => l.url);
    expect(searches.filter((u) => u.startsWith('/Patient?'))).toHaveLength(5);
    expect(searches.filter((u) => u.startsWith('/Condition?'))).toHaveLength(3);
    expect(s.requests).toBe(5 + 3 + 4);
    expect(searches.every((u) => u.includes('_count=5'))).toBe(true);
  });

  it('streams: the first resource arrives after one page request, not after all pages', async () => {
    const s = await server({ resources: patients(12) });
    const src = new FhirRestSource({ baseUrl: s.url, pageSize: 4 });
    const it = src.resources(['Patient'], new Quarantine())[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect(s.requests).toBe(1);
    let n = 1;
    while (!(await it.next()).done) n++;
    expect(n).toBe(12);
    expect(s.requests).toBe(3);
  });

  it('pages() yields one array per page', async () => {
    const s = await server({ resources: patients(7) });
    const src = new FhirRestSource({ baseUrl: s.url, pageSize: 3 });
    const sizes: number[] = [];
    for await (const page of src.pages('Patient')) sizes.push(page.length);
    expect(sizes).toEqual([3, 3, 1]);
  });

  it('a next link that loops back is quarantined as a paging error, not followed forever', async () => {
    const s = await server({ resources: patients(4) });
    // Every page after the first claims that the next page is itself.
    s.setFault((r) =>
      r.url.includes('_offset=')
        ? { json: { resourceType: 'Bundle', type: 'searchset', entry: [], link: [{ relation: 'next', url: `${s.url}${r.url}` }] } }
        : undefined,
    );
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, pageSize: 2 }).resources(['Patient', 'Condition'], q));
    expect(got).toHaveLength(2);
    expect(s.requests).toBe(2 + 1); // Patient page 1, page 2 (whose next is itself), Condition
    expect(q.records).toHaveLength(1);
    expect(q.records[0]).toMatchObject({ modality: 'fhir', reason: 'paging error' });
    expect(q.records[0].detail).toMatch(/paging loop/);
  });
});

describe('FHIR REST connector: incremental reads with _lastUpdated', () => {
  it('since returns only resources updated after the instant', async () => {
    const s = await server({ resources: patients(6, 'old') });
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date();
    await new Promise((r) => setTimeout(r, 20));
    await s.create(patients(4, 'new'));
    await s.create([{ resourceType: 'Condition', subject: { reference: 'Patient/x' }, code: { text: 'new' } }]);

    const all = await collect(new FhirRestSource({ baseUrl: s.url, pageSize: 3 }).resources(['Patient', 'Condition'], new Quarantine()));
    expect(all).toHaveLength(11);

    const before = s.requests;
    const src = new FhirRestSource({ baseUrl: s.url, pageSize: 3, since: cut });
    const q = new Quarantine();
    const got = await collect(src.resources(['Patient', 'Condition'], q));
    expect(q.records).toEqual([]);
    expect(got.map((r) => r.resourceType).sort()).toEqual(['Condition', 'Patient', 'Patient', 'Patient', 'Patient']);
    for (const r of got.filter((x) => x.resourceType === 'Patient')) {
      expect((r.identifier as Array<{ value: string }>)[0].value).toMatch(/^new/);
    }
    const sent = s.log.slice(before).map((l) => decodeURIComponent(l.url));
    expect(sent[0]).toContain(`_lastUpdated=gt${cut.toISOString()}`);

    // An ISO string works the same; a later instant returns nothing.
    const none = await collect(
      new FhirRestSource({ baseUrl: s.url, since: new Date(Date.now() + 60_000).toISOString() }).resources(['Patient'], new Quarantine()),
    );
    expect(none).toEqual([]);
  });

  it('rejects an invalid since instant at construction', () => {
    expect(() => new FhirRestSource({ baseUrl: 'http://127.0.0.1:1', since: 'yesterday-ish' })).toThrow(/since/);
  });
});

describe('FHIR REST connector: bearer-token auth', () => {
  it('sends the bearer token on every request, including next-page requests', async () => {
    const s = await server({ bearerToken: 's3cret-token', resources: patients(5) });
    const src = new FhirRestSource({ baseUrl: s.url, bearerToken: 's3cret-token', pageSize: 2 });
    const q = new Quarantine();
    const got = await collect(src.resources(['Patient'], q));
    expect(got).toHaveLength(5);
    expect(q.records).toEqual([]);
    expect(s.requests).toBe(3);
    expect(s.log.every((l) => l.authorization === 'Bearer s3cret-token')).toBe(true);
  });

  it('without a token the server answers 401: quarantined with a clear reason, no retry', async () => {
    const s = await server({ bearerToken: 's3cret-token', resources: patients(2) });
    const src = new FhirRestSource({ baseUrl: s.url, retryBaseMs: 10 });
    const q = new Quarantine();
    const got = await collect(src.resources(FHIR_REST_RESOURCE_TYPES, q));
    expect(got).toEqual([]);
    // One request only: 401 is not retried, and the other types are not tried against a
    // server that refused us.
    expect(s.requests).toBe(1);
    expect(q.records).toHaveLength(FHIR_REST_RESOURCE_TYPES.length);
    expect(q.countsByReason()).toEqual({ 'fhir: unauthorized (HTTP 401)': FHIR_REST_RESOURCE_TYPES.length });
    expect(q.records[0].source).toBe(`${s.url}/Patient?_count=100`);
    expect(q.records[0].detail).toMatch(/401 Unauthorized.*no bearer token configured.*bearer token required/);
  });

  it('a wrong token in strict mode throws FhirRestError(kind unauthorized) after one request', async () => {
    const s = await server({ bearerToken: 's3cret-token', resources: patients(2) });
    const src = new FhirRestSource({ baseUrl: s.url, bearerToken: 'wrong', strict: true });
    const err = await collect(src.resources(['Patient'], new Quarantine())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirRestError);
    expect((err as FhirRestError).kind).toBe('unauthorized');
    expect((err as FhirRestError).status).toBe(401);
    expect((err as FhirRestError).message).toMatch(/bearer token was rejected.*invalid bearer token/);
    expect(s.requests).toBe(1);
  });

  it('403 is reported as forbidden and not retried', async () => {
    const s = await server({ fault: () => ({ status: 403 }) });
    const q = new Quarantine();
    await collect(new FhirRestSource({ baseUrl: s.url, bearerToken: 't' }).resources(['Patient', 'Condition'], q));
    expect(s.requests).toBe(1);
    expect(q.countsByReason()).toEqual({ 'fhir: forbidden (HTTP 403)': 2 });
  });

  it('does not follow (or send the token to) a next link on another origin', async () => {
    const s = await server({ resources: patients(3) });
    // A misconfigured proxy returns next links on another host.
    s.setFault((r) =>
      r.index === 1
        ? {
            json: {
              resourceType: 'Bundle',
              type: 'searchset',
              entry: [{ resource: { resourceType: 'Patient', id: 'p1' } }],
              link: [{ relation: 'next', url: 'http://127.0.0.2:9/fhir/Patient?page=2' }],
            },
          }
        : undefined,
    );
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, bearerToken: 'tok', pageSize: 2 }).resources(['Patient'], q));
    expect(got.map((r) => r.id)).toEqual(['p1']);
    expect(q.records).toHaveLength(1);
    expect(q.records[0].reason).toBe('paging error');
    expect(q.records[0].detail).toMatch(/another origin \(http:\/\/127\.0\.0\.2:9/);
    expect(q.records[0].detail).toMatch(/after 1 resources/);
    expect(s.requests).toBe(1);
  });
});

describe('FHIR REST connector: Binary attachments', () => {
  it('fetchBinary reads a Binary by absolute or relative URL with the same auth', async () => {
    const s = await server({ bearerToken: 'tok' });
    const text = 'Assessment: community-acquired pneumonia.\n';
    const [bin] = await s.create([{ resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(text).toString('base64') }]);
    const src = new FhirRestSource({ baseUrl: s.url, bearerToken: 'tok' });
    const a = await src.fetchBinary(`${s.url}/Binary/${bin.id as string}`);
    expect(a.contentType).toBe('text/plain');
    expect(a.data.toString('utf8')).toBe(text);
    const b = await src.fetchBinary(`Binary/${bin.id as string}`);
    expect(b.data.toString('utf8')).toBe(text);
    expect(s.log.every((l) => l.authorization === 'Bearer tok')).toBe(true);

    // Raw content (server returns the bytes with their own Content-Type).
    const raw = await fetch(`${s.url}/Binary/${bin.id as string}`, { headers: { authorization: 'Bearer tok', accept: 'text/plain' } });
    expect(await raw.text()).toBe(text);

    const unauth = new FhirRestSource({ baseUrl: s.url });
    const err = await unauth.fetchBinary(`Binary/${bin.id as string}`).catch((e: unknown) => e);
    expect((err as FhirRestError).kind).toBe('unauthorized');
    const missing = await src.fetchBinary('Binary/does-not-exist').catch((e: unknown) => e);
    expect((missing as FhirRestError).kind).toBe('http');
    expect((missing as FhirRestError).status).toBe(404);
  });
});
