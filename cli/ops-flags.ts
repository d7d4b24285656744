// The operations flags and config keys shared by `fedsynth coordinator`, `serve` and `agent`:
// where metrics and health answer, which log format, which revocation list.
//
//   metrics:
//     listen: 0.0.0.0:9464        # /metrics, /healthz, /readyz (absent: not served)
//   revocationList: ./kit/revoked.crl.pem
import { createLogger, lineLogger, type LogFormat, type Logger } from '../ops/log.ts';
import { parseListen, OpsListenError } from '../ops/http.ts';
import { ConfigError, type Fields } from './config-file.ts';
import { UsageError } from './args.ts';

export const OPS_FLAGS = {
  'metrics-port': {
    type: 'int',
    min: 0,
    max: 65535,
    value: 'PORT',
    help: 'serve Prometheus /metrics, /healthz and /readyz on this port (0: any free port; overrides metrics.listen’s port)',
  },
  'log-format': {
    type: 'enum',
    values: ['json', 'pretty'],
    help: 'json (one object per line) or pretty (for people); default: pretty on a terminal, json otherwise',
  },
  'revocation-list': {
    type: 'path',
    value: 'FILE',
    help: 'the federation’s revocation list (fedsynth provision revoke writes it); overrides revocationList',
  },
} as const;

export interface OpsConfig {
  metrics?: { listen: string };
  revocationListFile?: string;
}

/** Reads the `metrics:` and `revocationList:` keys of a coordinator or site config. */
export function parseOpsConfig(f: Fields, filePath: string, dir: string): OpsConfig {
  const out: OpsConfig = {};
  if (f.has('metrics')) {
    const m = f.section('metrics');
    m.onlyKeys(['listen']);
    const listen = m.string('listen');
    try {
      parseListen(listen, `${filePath}: metrics.listen`);
    } catch (err) {
      if (err instanceof OpsListenError) throw new ConfigError(err.message);
      throw err;
    }
    out.metrics = { listen };
  }
  if (f.has('revocationList')) out.revocationListFile = f.path('revocationList', dir);
  return out;
}

/**
 * Applies --metrics-port and --revocation-list over the config. `defaultHost` is where a port
 * given only on the command line binds: all interfaces for a coordinator, loopback for an agent
 * (a hospital opens no inbound port unless it says so in site.yaml).
 */
export function applyOpsFlags<C extends OpsConfig>(
  cfg: C,
  flags: { 'metrics-port'?: number; 'revocation-list'?: string },
  defaultHost: string,
): C {
  const port = flags['metrics-port'];
  if (port !== undefined) {
    const host = cfg.metrics ? parseListen(cfg.metrics.listen, 'metrics.listen').host : defaultHost;
    cfg.metrics = { listen: `${host.includes(':') ? `[${host}]` : host}:${port}` };
  }
  if (flags['revocation-list'] !== undefined) {
    if (flags['revocation-list'] === '') throw new UsageError('--revocation-list needs a file');
    cfg.revocationListFile = flags['revocation-list'];
  }
  return cfg;
}

/** The process logger and the `(line) => void` the engine and agent write through. */
export function processLogger(
  component: string,
  format: LogFormat | undefined,
  base?: Record<string, string>,
): { logger: Logger; log: (line: string) => void } {
  const logger = createLogger({ component, format, base });
  return { logger, log: lineLogger(logger) };
}
