// FHIR REST connector failure handling against a real FHIR server with injected faults:
// 429/503 retried with backoff (Retry-After respected), dropped connections, an unreachable
// server, a hanging server (timeout), malformed Bundle JSON, strict mode.
import { createServer as createNetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FhirRestError, FhirRestSource, parseRetryAfter } from '../../site-agent/connectors/fhir-rest.ts';
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

const patients = (n: number) => Array.from({ length: n }, (_, i) => ({ resourceType: 'Patient', gender: i % 2 ? 'male' : 'female' }));

/** A port that was just free: nothing listens there. */
async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const gaps = (s: FhirServer) => s.log.slice(1).map((l, i) => l.at - s.log[i].at);

describe('FHIR REST connector: retries', () => {
  it('429 is retried with exponential backoff and the read succeeds', async () => {
    const s = await server({ resources: patients(5), failFirst: { count: 3, with: 429 } });
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 40, maxRetries: 4 }).resources(['Patient'], q));
    expect(got).toHaveLength(5);
    expect(q.records).toEqual([]);
    expect(s.log.map((l) => l.outcome)).toEqual(['429', '429', '429', '200']);
    // Waits are base·2^n with jitter in [half, full]: ≥20, ≥40, ≥80 ms.
    const g = gaps(s);
    expect(g[0]).toBeGreaterThanOrEqual(18);
    expect(g[1]).toBeGreaterThanOrEqual(38);
    expect(g[2]).toBeGreaterThanOrEqual(78);
    expect(g[2]).toBeLessThan(2_000);
  });

  it('503 is retried and Retry-After (seconds) is respected', async () => {
    const s = await server({ resources: patients(3), failFirst: { count: 1, with: 503, retryAfter: '1' } });
    const q = new Quarantine();
    const t0 = Date.now();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 10 }).resources(['Patient'], q));
    expect(got).toHaveLength(3);
    expect(q.records).toEqual([]);
    expect(s.log.map((l) => l.outcome)).toEqual(['503', '200']);
    expect(gaps(s)[0]).toBeGreaterThanOrEqual(990);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('a dropped connection is retried', async () => {
    const s = await server({ resources: patients(4), failFirst: { count: 2, with: 'close' } });
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 10, pageSize: 2 }).resources(['Patient'], q));
    expect(got).toHaveLength(4);
    expect(q.records).toEqual([]);
    expect(s.log.map((l) => l.outcome)).toEqual(['close', 'close', '200', '200']);
  });

  it('a failure on a later page is retried too, and no resource is yielded twice', async () => {
    const s = await server({ resources: patients(6) });
    let failed = 0;
    s.setFault((r) => (r.url.includes('_offset=2') && failed++ < 2 ? { status: 502 } : undefined));
    const got = await collect(
      new FhirRestSource({ baseUrl: s.url, retryBaseMs: 10, pageSize: 2 }).resources(['Patient'], new Quarantine()),
    );
    expect(got).toHaveLength(6);
    expect(new Set(got.map((r) => r.id)).size).toBe(6);
    expect(s.log.map((l) => l.outcome)).toEqual(['200', '502', '502', '200', '200']);
  });

  it('when retries run out the type is quarantined with the status and the attempt count; other types go on', async () => {
    const s = await server({ resources: [...patients(2), { resourceType: 'Condition', subject: { reference: 'Patient/x' } }] });
    s.setFault((r) => (r.url.startsWith('/Patient') ? { status: 503 } : undefined));
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 5, maxRetries: 2 }).resources(['Patient', 'Condition'], q));
    expect(got.map((r) => r.resourceType)).toEqual(['Condition']);
    expect(s.log.filter((l) => l.url.startsWith('/Patient'))).toHaveLength(3);
    expect(q.countsByReason()).toEqual({ 'fhir: HTTP 503': 1 });
    expect(q.records[0].source).toBe(`${s.url}/Patient?_count=100`);
    expect(q.records[0].detail).toMatch(/^Patient: HTTP 503 from .*injected HTTP 503 \(after 3 attempts\)/);
  });

  it('400 is not retried', async () => {
    const s = await server({ fault: () => ({ status: 400 }) });
    const q = new Quarantine();
    await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 5 }).resources(['Patient'], q));
    expect(s.requests).toBe(1);
    expect(q.countsByReason()).toEqual({ 'fhir: HTTP 400': 1 });
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(new Date(10_000 + 3_000).toUTCString(), 10_000)).toBe(3000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('FHIR REST connector: unreachable, hanging and malformed servers', () => {
  it('an unreachable server (closed port) gives a clear error quickly, without retries', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/fhir`;
    const q = new Quarantine();
    const t0 = Date.now();
    const got = await collect(new FhirRestSource({ baseUrl: url }).resources(['Patient', 'Condition', 'Observation'], q));
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(got).toEqual([]);
    expect(q.countsByReason()).toEqual({ 'fhir: FHIR server unreachable': 3 });
    expect(q.records[0].source).toBe(`${url}/Patient?_count=100`);
    expect(q.records[0].detail).toMatch(new RegExp(`unreachable at http://127.0.0.1:${port} \\(ECONNREFUSED\\)`));

    const err = await collect(new FhirRestSource({ baseUrl: url, strict: true }).resources(['Patient'], new Quarantine())).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FhirRestError);
    expect((err as FhirRestError).kind).toBe('unreachable');
  });

  it('a hanging server times out per request (and is retried within bounds)', async () => {
    const s = await server({ resources: patients(2), failFirst: { count: 10, with: 'hang' } });
    const q = new Quarantine();
    const t0 = Date.now();
    const got = await collect(
      new FhirRestSource({ baseUrl: s.url, timeoutMs: 300, maxRetries: 1, retryBaseMs: 10 }).resources(['Patient'], q),
    );
    const took = Date.now() - t0;
    expect(got).toEqual([]);
    expect(s.requests).toBe(2);
    expect(took).toBeGreaterThanOrEqual(600);
    expect(took).toBeLessThan(3_000);
    expect(q.countsByReason()).toEqual({ 'fhir: request timed out': 1 });
    expect(q.records[0].detail).toMatch(/within 300 ms \(after 2 attempts\)/);
  });

  it('a hang followed by a good answer succeeds after the timeout', async () => {
    const s = await server({ resources: patients(2), failFirst: { count: 1, with: 'hang' } });
    const got = await collect(
      new FhirRestSource({ baseUrl: s.url, timeoutMs: 200, retryBaseMs: 10 }).resources(['Patient'], new Quarantine()),
    );
    expect(got).toHaveLength(2);
    expect(s.log.map((l) => l.outcome)).toEqual(['hang', '200']);
  });

  it('malformed Bundle JSON is quarantined with a clear reason and the next type is still read', async () => {
    const s = await server({ resources: [...patients(3), { resourceType: 'Condition', subject: { reference: 'Patient/x' } }] });
    s.setFault((r) => (r.url.startsWith('/Patient') ? 'malformed' : undefined));
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url, retryBaseMs: 5 }).resources(['Patient', 'Condition'], q));
    expect(got.map((r) => r.resourceType)).toEqual(['Condition']);
    expect(s.log.filter((l) => l.url.startsWith('/Patient'))).toHaveLength(1); // not retried
    expect(q.countsByReason()).toEqual({ 'fhir: malformed Bundle JSON': 1 });
    expect(q.records[0].detail).toMatch(/not valid JSON \(HTTP 200, \d+ bytes/);
  });

  it('valid JSON that is not a Bundle (or has a non-array entry) is a malformed Bundle', async () => {
    const s = await server();
    s.setFault((r) =>
      r.url.startsWith('/Patient')
        ? { json: { resourceType: 'Patient', id: 'oops' } }
        : { json: { resourceType: 'Bundle', type: 'searchset', entry: { resource: {} } } },
    );
    const q = new Quarantine();
    await collect(new FhirRestSource({ baseUrl: s.url }).resources(['Patient', 'Condition'], q));
    expect(q.countsByReason()).toEqual({ 'fhir: malformed Bundle JSON': 2 });
    expect(q.records[0].detail).toMatch(/expected a Bundle .* got a Patient/);
    expect(q.records[1].detail).toMatch(/non-array entry/);
  });

  it('entries without a resource are quarantined one by one; the rest of the page is read', async () => {
    const s = await server();
    s.setFault(() => ({
      json: {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          { fullUrl: 'urn:bad:1' },
          { resource: { resourceType: 'Patient', id: 'ok' } },
          { resource: { resourceType: 'OperationOutcome', issue: [] }, search: { mode: 'outcome' } },
        ],
      },
    }));
    const q = new Quarantine();
    const got = await collect(new FhirRestSource({ baseUrl: s.url }).resources(['Patient'], q));
    expect(got.map((r) => r.id)).toEqual(['ok']);
    expect(q.records).toEqual([expect.objectContaining({ source: 'urn:bad:1', reason: 'invalid Bundle entry' })]);
  });

  it('strict mode throws the first failure instead of quarantining', async () => {
    const s = await server({ fault: () => 'malformed' });
    const err = await collect(new FhirRestSource({ baseUrl: s.url, strict: true }).resources(['Patient'], new Quarantine())).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FhirRestError);
    expect((err as FhirRestError).kind).toBe('malformed');
    expect((err as FhirRestError).reason).toBe('malformed Bundle JSON');
  });

  it('an abort signal stops a read in progress', async () => {
    const s = await server({ fault: () => 'hang' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const err = await collect(new FhirRestSource({ baseUrl: s.url, signal: ac.signal }).resources(['Patient'], new Quarantine())).catch(
      (e: unknown) => e,
    );
    expect((err as FhirRestError).kind).toBe('aborted');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
