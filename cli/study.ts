// `fedsynth study request|status|approve|list`: a client of a running `fedsynth serve`.
import { command, HelpRequest, parseArgs, UsageError, type FlagDef } from './args.ts';

/** Flags every client command takes; its own flags are strings it validates with its own messages. */
export function clientArgs(cmd: string, help: string, names: readonly string[], booleans: readonly string[], args: readonly string[]) {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequest(help);
  const flags: Record<string, FlagDef> = {
    url: { type: 'string', value: 'URL', help: 'the service (default $FEDSYNTH_URL)' },
    token: { type: 'string', value: 'TOKEN', help: 'an API token (default $FEDSYNTH_TOKEN)' },
    json: { type: 'boolean', help: 'print JSON' },
  };
  for (const n of names) flags[n] = { type: 'string', help: n };
  for (const n of booleans) flags[n] = { type: 'boolean', help: n };
  const parsed = parseArgs(
    command({ command: cmd, summary: help, flags, positionals: { name: 'ID', min: 0, max: 1, help: 'the id' } }),
    args,
  );
  return { flags: parsed.flags as Record<string, string | boolean | undefined>, positional: parsed.positional };
}

const HELP = `Usage: fedsynth study <command> --url URL [--token TOKEN] [--json]

  study request --title T --epsilon E [--delta D] [--attributes a,b,...] [--plan aim|mst]
  study status ID [--wait]      status, progress (round k of n) and spend per site; --wait: until fitted or failed
  study approve ID              (operator token)
  study list

--url defaults to $FEDSYNTH_URL, --token to $FEDSYNTH_TOKEN. Exits non-zero on any failure.
`;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Client {
  url: string;
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; body: T }>;
  fetch(path: string, headers?: Record<string, string>): Promise<Response>;
}

/** The HTTP client both study and cohort commands use: bearer token, JSON, errors with the server's message. */
export function makeClient(flags: Record<string, string | boolean | undefined>): Client {
  const url = (typeof flags.url === 'string' ? flags.url : process.env.FEDSYNTH_URL)?.replace(/\/+$/, '');
  const token = typeof flags.token === 'string' ? flags.token : process.env.FEDSYNTH_TOKEN;
  if (!url) throw new UsageError('give the service URL with --url or FEDSYNTH_URL');
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a URL`);
  }
  if (!token) throw new UsageError('give an API token with --token or FEDSYNTH_TOKEN (fedsynth token create)');
  const doFetch = async (path: string, init: RequestInit = {}) => {
    try {
      return await fetch(`${url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach ${url}: ${(err as Error).cause ?? (err as Error).message}`);
    }
  };
  return {
    url,
    fetch: (path, headers = {}) => doFetch(path, { headers }),
    async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await doFetch(path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = {};
      if (text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = { text };
        }
      }
      if (res.status >= 400) {
        const e = parsed as { error?: string; issue?: { diagnostics?: string }[] };
        throw new ApiError(res.status, `${method} ${path}: HTTP ${res.status}: ${e.error ?? e.issue?.[0]?.diagnostics ?? text}`);
      }
      return { status: res.status, headers: res.headers, body: parsed as T };
    },
  };
}

export const print = (flags: Record<string, string | boolean | undefined>, value: unknown, line: string) =>
  process.stdout.write(flags.json ? JSON.stringify(value, null, 2) + '\n' : line + '\n');

function number(flags: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^[0-9.eE+-]+$/.test(v) || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

interface StudyView {
  id: string;
  title: string;
  status: string;
  epsilon: number;
  delta: number;
  progress: { round?: number; rounds?: number; message?: string };
  spend: Record<string, { epsilon: number; rho: number }>;
  error: string | null;
}

export function studyLine(s: StudyView): string {
  const p = s.progress.round !== undefined ? ` round ${s.progress.round} of at most ${s.progress.rounds}` : '';
  const spend = Object.entries(s.spend)
    .map(([site, x]) => `${site} ε=${x.epsilon.toFixed(3)}`)
    .join(', ');
  return `${s.id}\t${s.status}${p}\tε=${s.epsilon} δ=${s.delta}\t${s.title}${spend ? `\tspent: ${spend}` : ''}${s.error ? `\terror: ${s.error}` : ''}`;
}

export async function runStudyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help')) throw new HelpRequest(HELP);
  if (sub === undefined) throw new UsageError('needs a command (request, status, approve, list)', 'fedsynth study');
  const { flags, positional } = clientArgs(
    `fedsynth study ${sub}`,
    HELP,
    ['title', 'epsilon', 'delta', 'attributes', 'plan'],
    ['wait'],
    rest,
  );
  const client = makeClient(flags);
  try {
    switch (sub) {
      case 'request': {
        if (typeof flags.title !== 'string') throw new UsageError('study request needs --title');
        const epsilon = number(flags, 'epsilon');
        if (epsilon === undefined) throw new UsageError('study request needs --epsilon');
        const body = {
          title: flags.title,
          epsilon,
          ...(flags.delta !== undefined ? { delta: number(flags, 'delta') } : {}),
          ...(typeof flags.attributes === 'string' ? { attributes: flags.attributes.split(',').map((a) => a.trim()) } : {}),
          ...(typeof flags.plan === 'string' ? { plan: flags.plan } : {}),
        };
        const res = await client.request<{ id: string; status: string }>('POST', '/api/v1/studies', body);
        print(flags, res.body, `${res.body.id}\t${res.body.status}`);
        return 0;
      }
      case 'status': {
        if (positional.length !== 1) throw new UsageError('study status needs one study id');
        for (;;) {
          const res = await client.request<StudyView>('GET', `/api/v1/studies/${encodeURIComponent(positional[0])}`);
          const done = ['fitted', 'failed', 'pending-approval'].includes(res.body.status);
          if (!flags.wait || done) {
            print(flags, res.body, studyLine(res.body));
            return res.body.status === 'failed' ? 1 : 0;
          }
          process.stderr.write(`${studyLine(res.body)}\n`);
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
      case 'approve': {
        if (positional.length !== 1) throw new UsageError('study approve needs one study id');
        const res = await client.request<{ id: string; status: string }>(
          'POST',
          `/api/v1/studies/${encodeURIComponent(positional[0])}/approve`,
        );
        print(flags, res.body, `${res.body.id}\t${res.body.status}`);
        return 0;
      }
      case 'list': {
        const res = await client.request<{ studies: StudyView[] }>('GET', '/api/v1/studies');
        print(flags, res.body, res.body.studies.map(studyLine).join('\n'));
        return res.body.studies.length > 0 ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown study command ${JSON.stringify(sub)}\n${HELP}`);
    }
  } catch (err) {
    if (err instanceof ApiError) {
      process.stderr.write(`fedsynth study ${sub}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
