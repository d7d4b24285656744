// The operations endpoint of a long-running process: Prometheus metrics and liveness/readiness
// for orchestrators (Kubernetes probes, a load balancer, a systemd watchdog script). Plain HTTP
// on its own port, separate from the mTLS gRPC port and the API, so that a scraper needs no
// federation certificate and a probe never touches a researcher's API.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** One readiness condition: ok, or a sentence saying what is missing. */
export type ReadinessCheck = () => true | string | Promise<true | string>;

export interface OpsServerOptions {
  /** host:port; port 0 picks a free one (see `port` of the result). */
  listen: string;
  registry?: Registry;
  /** Named conditions that must all hold for /readyz to answer 200. */
  ready: Record<string, ReadinessCheck>;
}

export interface RunningOpsServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export class OpsListenError extends Error {
  override name = 'OpsListenError';
}

/** Splits `host:port` (IPv6 in brackets); throws with the offending text on anything else. */
export function parseListen(listen: string, where: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(listen) ?? /^([^:[\]]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535)
    throw new OpsListenError(`${where}: ${JSON.stringify(listen)} is not host:port (e.g. 127.0.0.1:9464; port 0-65535)`);
  return { host: m[1], port };
}

async function readiness(checks: Record<string, ReadinessCheck>): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const out: Record<string, string> = {};
  let ok = true;
  for (const [name, check] of Object.entries(checks)) {
    let r: true | string;
    try {
      r = await check();
    } catch (err) {
      r = (err as Error).message;
    }
    out[name] = r === true ? 'ok' : r;
    if (r !== true) ok = false;
  }
  return { ok, checks: out };
}

export async function startOpsServer(opts: OpsServerOptions): Promise<RunningOpsServer> {
  const { host, port } = parseListen(opts.listen, 'metrics listen');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'only GET\n');
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      readiness(opts.ready).then(
        (r) => send(r.ok ? 200 : 503, 'application/json', JSON.stringify({ ready: r.ok, checks: r.checks }) + '\n'),
        (err: Error) => send(503, 'application/json', JSON.stringify({ ready: false, error: err.message }) + '\n'),
      );
      return;
    }
    if (path === '/metrics' && opts.registry) {
      const registry = opts.registry;
      registry.metrics().then(
        (text) => send(200, registry.contentType, text),
        (err: Error) => send(500, 'text/plain', `metrics unavailable: ${err.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', 'not found: /metrics, /healthz, /readyz\n');
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(new OpsListenError(`cannot listen on ${opts.listen} for metrics: ${err.message}`)));
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    url: `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
