// Structured logs of the long-running processes (coordinator, service, agent): one JSON object per
// line (pino) for log collectors, or a short human line on a terminal. User-facing CLI output
// (reports, tables, errors of one-shot commands) is not logged through here: it stays plain text.
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

export type { Logger };

export interface LoggerOptions {
  /** Which process writes: coordinator, serve, agent. Every line carries it. */
  component: string;
  /** json or pretty; absent: pretty on a TTY, json otherwise (a pipe, a container's stdout). */
  format?: LogFormat;
  /** Extra fields on every line (e.g. the site id of an agent). */
  base?: Record<string, string>;
  /** Where lines go (default stdout); tests pass their own stream. */
  destination?: NodeJS.WritableStream;
  level?: pino.LevelWithSilent;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Formats pino's JSON lines for a person: `HH:MM:SS level component: msg key=value`. */
function prettyStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        out.write(prettyLine(line) + '\n');
      }
      done();
    },
  });
}

export function prettyLine(jsonLine: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const { level, time, msg, component, pid: _pid, hostname: _host, ...rest } = o;
  const t = typeof time === 'string' ? time.slice(11, 19) : new Date(Number(time)).toISOString().slice(11, 19);
  const lv = typeof level === 'string' ? level : (LEVEL_NAMES[Number(level)] ?? String(level));
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${lv === 'info' ? '' : lv.toUpperCase() + ' '}${String(component ?? '')}: ${String(msg ?? '')}${extra ? ` (${extra})` : ''}`;
}

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const isTty = (out as NodeJS.WriteStream).isTTY === true;
  const format = opts.format ?? (isTty ? 'pretty' : 'json');
  return pino(
    {
      level: opts.level ?? 'info',
      base: { component: opts.component, ...opts.base },
      // ISO time rather than epoch ms: readable in `kubectl logs` and still sortable.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    format === 'pretty' ? prettyStream(out) : (out as pino.DestinationStream),
  );
}

/**
 * The `(line) => void` logger the engine, service and agent take, backed by `logger`. Their lines
 * are free text; a line that reports a refusal or a failure is logged at warn so that an operator
 * filtering on level sees it.
 */
export function lineLogger(logger: Logger): (line: string) => void {
  return (line) => {
    if (/\b(fail(ed|s)?|refused|rejected|not delivered|error|REFUSED|cannot|lost)\b/i.test(line)) logger.warn(line);
    else logger.info(line);
  };
}

export function parseLogFormat(v: string, where: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(v)) return v as LogFormat;
  throw new Error(`${where}: log format must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(v)}`);
}
