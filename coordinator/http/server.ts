// The coordinator's HTTP server: routes, bearer-token authentication, roles, and one signed audit
// entry per API request (requester, method, path, status, and the cohort filter when there is one).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { apiRoutes, type ApiDeps } from './api.ts';
import { bulkRoutes } from './bulk.ts';
import { openApiDocument } from './openapi.ts';
import { JwtVerifier, looksLikeJwt, TokenRefused, type Principal } from './oidc.ts';
import { HttpError, matchRoute, sendJson, type RequestContext, type Route } from './router.ts';

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/** Every route of the server (the OpenAPI document must describe exactly these). */
export function allRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/openapi.json',
      roles: [],
      handler: async (ctx) => sendJson(ctx.res, 200, openApiDocument(deps.cfg.federationId, deps.cfg.http?.oidc)),
    },
    ...apiRoutes(deps),
    ...bulkRoutes(deps),
  ];
}

/** The caller of a bearer token: a JWT when it has the JWS form, else an API key. */
function authenticator(deps: ApiDeps): (token: string) => Promise<Principal> {
  const jwt = deps.cfg.http?.oidc ? new JwtVerifier(deps.cfg.http.oidc) : undefined;
  return async (token: string): Promise<Principal> => {
    if (looksLikeJwt(token)) {
      if (!jwt) throw new HttpError(401, 'JWT bearer tokens are not accepted here (no http.oidc issuer configured): use an API key');
      try {
        return await jwt.verify(token);
      } catch (err) {
        if (!(err instanceof TokenRefused)) throw err;
        if (err.status === 401)
          throw new HttpError(
            401,
            err.message,
            {},
            `Bearer error="invalid_token", error_description="${err.message.replace(/["\\]/g, '')}"`,
          );
        throw new HttpError(err.status, err.message);
      }
    }
    const key = await deps.studies.verifyToken(token);
    if (!key) throw new HttpError(401, 'unknown or revoked API key', {}, 'Bearer error="invalid_token"');
    return { id: key.id, name: key.name, role: key.role, roles: [key.role], scheme: 'api-key' };
  };
}

/** The audit entry of one request: requester, role, method, path, status and what it named. */
function requestEvent(federationId: string, ctx: RequestContext, status: number) {
  return {
    type: 'api-request' as const,
    federationId,
    requester: ctx.key ? `${ctx.key.name} (${ctx.key.id})` : 'anonymous',
    ...(ctx.key ? { role: ctx.key.role } : {}),
    method: ctx.req.method ?? 'GET',
    path: ctx.url.pathname,
    status,
    ...(ctx.audit.filter !== undefined ? { filter: ctx.audit.filter } : {}),
    ...(ctx.audit.studyId ? { studyId: ctx.audit.studyId } : {}),
    ...(ctx.audit.cohortId ? { cohortId: ctx.audit.cohortId } : {}),
  };
}

/** Cohort data and audit-log reads already written, per caller and resource (bounded). */
const FIRST_READS_KEPT = 100_000;

/**
 * Whether a finished request goes to the audit log (docs/service.md, "What is audited"): what
 * changes state, refusals and failures always; reads of cohort data and of the log the first time
 * a caller reads that resource while the service runs; status reads and lists never, so a polling
 * page adds no entries.
 */
function auditRule(): (ctx: RequestContext, status: number) => boolean {
  const firstReads = new Set<string>();
  return (ctx, status) => {
    const { pathname } = ctx.url;
    if (!pathname.startsWith('/api/') && !pathname.startsWith('/fhir/')) return false;
    if (pathname === '/api/v1/openapi.json') return false;
    if (status === 401 || status === 403 || status === 413 || status >= 500) return true;
    const route = ctx.route;
    // No route (404, 405) or a method that may change something: written.
    if (!route) return ctx.req.method !== 'GET';
    const mode = route.audit ?? (route.method === 'GET' ? 'never' : 'always');
    if (mode !== 'first-read') return mode === 'always';
    if (status >= 300) return false;
    const key = `${ctx.key?.id ?? 'anonymous'} ${route.method} ${pathname}${ctx.url.search}`;
    if (firstReads.has(key)) return false;
    if (firstReads.size >= FIRST_READS_KEPT) firstReads.clear();
    firstReads.add(key);
    return true;
  };
}

export interface HttpServerOptions {
  log?: (line: string) => void;
}

export function createHttpServer(deps: ApiDeps, opts: HttpServerOptions = {}): Server {
  const log = opts.log ?? (() => undefined);
  const routes = allRoutes(deps);
  const authenticate = authenticator(deps);
  const audited = auditRule();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const page = STATIC[url.pathname];
    if (page && req.method === 'GET') {
      const body = await readFile(fileURLToPath(new URL(`./static/${page.file}`, import.meta.url)));
      res.writeHead(200, {
        'content-type': page.type,
        'cache-control': 'no-cache',
        'content-security-policy': "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'",
      });
      res.end(body);
      return;
    }
    const ctx: RequestContext = { req, res, url, params: {}, key: null, audit: {} };
    res.once('finish', () => {
      if (!audited(ctx, res.statusCode)) return;
      deps.store
        .appendAudit(deps.cfg.federationId, requestEvent(deps.cfg.federationId, ctx, res.statusCode))
        .catch((err: Error) => log(`audit entry not written: ${err.message}`));
    });
    try {
      const found = matchRoute(routes, req.method ?? 'GET', url.pathname);
      if (!found) throw new HttpError(404, `no route ${req.method} ${url.pathname} (see /api/v1/openapi.json)`);
      if ('allowed' in found) {
        res.setHeader('allow', found.allowed.join(', '));
        throw new HttpError(405, `${req.method} is not allowed on ${url.pathname} (allowed: ${found.allowed.join(', ')})`);
      }
      ctx.params = found.params;
      ctx.route = found.route;
      if (found.route.roles.length > 0) {
        const auth = req.headers.authorization ?? '';
        const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
        if (!token) {
          res.setHeader('www-authenticate', 'Bearer');
          throw new HttpError(
            401,
            `send an API key (fedsynth token create)${deps.cfg.http?.oidc ? ` or a JWT of ${deps.cfg.http.oidc.issuer}` : ''} as Authorization: Bearer <token>`,
          );
        }
        const principal = await authenticate(token);
        const allowed = principal.roles.filter((r) => found.route.roles.includes(r));
        if (allowed.length === 0) {
          ctx.key = principal;
          throw new HttpError(
            403,
            `role ${principal.roles.join(', ')} may not ${req.method} ${found.route.path} (roles: ${found.route.roles.join(', ')})`,
          );
        }
        ctx.key = { ...principal, role: allowed[0] };
      }
      await found.route.handler(ctx);
    } catch (err) {
      if (res.headersSent) {
        res.destroy(err as Error);
        return;
      }
      if (err instanceof HttpError) {
        // The rest of an oversize body is not read: close the connection after answering.
        if (err.status === 413) res.setHeader('connection', 'close');
        if (err.wwwAuthenticate) res.setHeader('www-authenticate', err.wwwAuthenticate);
        sendJson(res, err.status, { error: err.message, ...err.extra });
      } else {
        log(`HTTP ${req.method} ${url.pathname} failed: ${(err as Error).stack ?? err}`);
        sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
      }
    }
  };
  return createServer((req, res) => void handle(req, res));
}

export async function listen(server: Server, hostPort: string): Promise<number> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(hostPort.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as { port: number }).port;
}
