// A small router for the coordinator's HTTP API: a table of routes (method, path template, roles)
// that the OpenAPI document is checked against, JSON bodies with a size limit, errors as JSON.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Role } from '../store/index.ts';
import type { Principal } from './oidc.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** WWW-Authenticate header of a 401 (RFC 6750). */
    readonly wwwAuthenticate?: string,
  ) {
    super(message);
  }
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** The authenticated caller (API key or JWT subject); null on public routes and refusals. */
  key: Principal | null;
  /** The route matched (decides whether the request is audited). */
  route?: Route;
  /** Facts the audit entry of this request records (study, cohort, filter). */
  audit: { studyId?: string; cohortId?: string; filter?: string };
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path template with `{name}` parameters, as written in the OpenAPI document. */
  path: string;
  /** Roles allowed; empty: no token needed. */
  roles: readonly Role[];
  /**
   * When a successful request is written to the audit log (docs/service.md, "What is audited"):
   * `always` (the default for POST and DELETE, and a GET that starts work), `first-read` (a read
   * of cohort data or of the audit log: once per caller and resource while the service runs),
   * `never` (the default for GET: status and lists, which the web page polls). Refusals (401,
   * 403) and server errors are always written.
   */
  audit?: 'always' | 'first-read' | 'never';
  handler: (ctx: RequestContext) => Promise<void>;
}

export function compile(path: string): RegExp {
  const pattern = path
    .replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`))
    .replace(/\\?\{(\w+)\\?\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${pattern}$`);
}

export function matchRoute(
  routes: readonly Route[],
  method: string,
  pathname: string,
): { route: Route; params: Record<string, string> } | { allowed: string[] } | null {
  const allowed: string[] = [];
  for (const route of routes) {
    const m = compile(route.path).exec(pathname);
    if (!m) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    const params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]));
    return { route, params };
  }
  return allowed.length ? { allowed } : null;
}

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads a JSON object body; 413 beyond the limit (the rest is not read), 415/400 on anything but a JSON object. */
export async function readJson(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, `send the body as application/json (got ${JSON.stringify(type || 'nothing')})`);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new HttpError(413, `body of ${declared} bytes exceeds the limit of ${limit}`);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body exceeds the limit of ${limit} bytes`);
    parts.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'body must be a JSON object');
  return value as Record<string, unknown>;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  type = 'application/json',
): void {
  const text = JSON.stringify(body, null, 2);
  // A GET answered with a validator: a poller sending it back in If-None-Match gets 304 and no body.
  if (res.req?.method === 'GET' && status === 200) {
    const etag = `W/"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
    const sent = res.req.headers['if-none-match'];
    if (sent && sent.split(/\s*,\s*/).includes(etag)) {
      res.writeHead(304, { etag, 'cache-control': 'no-store', ...headers });
      res.end();
      return;
    }
    headers = { ...headers, etag };
  }
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Rejects body fields the endpoint does not know, naming the known ones. */
export function onlyFields(body: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length)
    throw new HttpError(400, `unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
}
