// FHIR R4 REST connector: reads a site's FHIR server through fhir-kit-client.
//
// - One search per resource type with `_count`, following Bundle `next` links; resources are
//   yielded page by page, so at most one page is held in memory.
// - `since` adds `_lastUpdated=gt<instant>` for incremental reads.
// - Bearer-token auth; the token is only ever sent to the configured server's origin.
// - Each request has a timeout; 408/429/5xx, timeouts and dropped connections are retried with
//   exponential backoff and jitter (Retry-After is respected). 401/403, other 4xx, an unreachable
//   server and malformed Bundles are not retried.
// - A resource type that fails becomes a quarantine record (modality 'fhir', source = the URL,
//   a stable reason) and the read goes on with the next type; `strict: true` throws instead.
// - `declaredRelease()` reads the CapabilityStatement's fhirVersion (`/metadata`); the agent
//   reads a server through `r4RestSource`, which refuses a server declaring another release and
//   quarantines single resources that show one (fhir-version.ts).

import { randomInt } from 'node:crypto';
import { Client } from 'fhir-kit-client';
import { r4Only, releaseOfVersion, type VersionEvidence } from './fhir-version.ts';
import type { FhirResource, FhirSource, Quarantine } from './types.ts';

/** The resource types the site agent reads by default. */
export const FHIR_REST_RESOURCE_TYPES = [
  'Patient',
  'Condition',
  'Observation',
  'ImagingStudy',
  'DocumentReference',
  'DiagnosticReport',
] as const;

export interface FhirRestOptions {
  /** Server base URL, e.g. `https://fhir.example.org/R4`. */
  baseUrl: string;
  /** OAuth2 bearer token sent as `Authorization: Bearer …` (only to the base URL's origin). */
  bearerToken?: string;
  /** Extra headers for every request (also only sent to the base URL's origin). */
  headers?: Record<string, string>;
  /** Page size requested with `_count` (default 100). */
  pageSize?: number;
  /** Incremental read: only resources with `meta.lastUpdated` after this instant. */
  since?: Date | string;
  /** Extra search parameters sent with every type's first search request. */
  searchParams?: Record<string, string>;
  /** Per-request timeout in ms, covering connect, headers and body (default 30 000). */
  timeoutMs?: number;
  /** Retries after the first attempt for retryable failures (default 4). */
  maxRetries?: number;
  /** Backoff base in ms: attempt n waits ~ base·2^n with jitter (default 500). */
  retryBaseMs?: number;
  /** Upper bound of a single backoff wait, including Retry-After (default 30 000). */
  retryMaxMs?: number;
  /** Throw the first failure instead of quarantining the resource type (default false). */
  strict?: boolean;
  /** Follow `next` links pointing to another origin (default false: the token would leak). */
  allowCrossOriginLinks?: boolean;
  /** Largest Binary accepted by `fetchBinary`, in bytes (default 50 MiB). */
  maxBinaryBytes?: number;
  /** Cancels everything in flight. */
  signal?: AbortSignal;
}

export type FhirRestErrorKind =
  | 'unreachable'
  | 'unauthorized'
  | 'forbidden'
  | 'timeout'
  | 'connection'
  | 'http'
  | 'malformed'
  | 'paging'
  | 'invalid'
  | 'unexpected'
  | 'aborted';

/** Stable quarantine reasons, one per error kind (count by these). */
export const FHIR_REST_REASONS: Record<FhirRestErrorKind, string> = {
  unreachable: 'FHIR server unreachable',
  unauthorized: 'unauthorized (HTTP 401)',
  forbidden: 'forbidden (HTTP 403)',
  timeout: 'request timed out',
  connection: 'connection failed',
  http: 'HTTP error',
  malformed: 'malformed Bundle JSON',
  paging: 'paging error',
  invalid: 'invalid request',
  unexpected: 'unexpected error',
  aborted: 'aborted',
};

export class FhirRestError extends Error {
  override readonly name = 'FhirRestError';
  constructor(
    readonly kind: FhirRestErrorKind,
    readonly url: string,
    message: string,
    readonly status?: number,
    readonly attempts = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** The stable quarantine reason for this error. */
  get reason(): string {
    return this.kind === 'http' && this.status !== undefined ? `HTTP ${this.status}` : FHIR_REST_REASONS[this.kind];
  }
}

export interface FhirBinary {
  contentType?: string;
  data: Buffer;
}

interface Bundle {
  resourceType: 'Bundle';
  link?: Array<{ relation?: string; url?: string }>;
  entry?: Array<{ fullUrl?: string; resource?: unknown; search?: { mode?: string } }>;
}

/** Shape of the errors fhir-kit-client throws for HTTP failures and unparsable bodies. */
interface KitHttpError {
  response: { status: number; data: unknown };
  config?: { headers?: Headers };
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Parses Retry-After (delta-seconds or HTTP-date) into ms; undefined when absent/invalid. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function isKitHttpError(err: unknown): err is KitHttpError {
  const r = (err as { response?: { status?: unknown } } | null)?.response;
  return typeof r?.status === 'number';
}

function errorCode(err: unknown): string | undefined {
  // undici: TypeError('fetch failed', { cause: Error{code} }); sometimes nested once more.
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function outcomeText(data: unknown): string {
  const issues = (data as { issue?: Array<{ diagnostics?: string; details?: { text?: string } }> } | null)?.issue;
  if (!Array.isArray(issues)) return '';
  const text = issues
    .map((i) => i?.diagnostics ?? i?.details?.text)
    .filter((t): t is string => typeof t === 'string')
    .join('; ');
  return text ? `: ${text.slice(0, 300)}` : '';
}

/** A FHIR R4 REST server as a FhirSource. */
export class FhirRestSource implements FhirSource {
  readonly baseUrl: string;
  private readonly client: Client;
  private readonly origin: string;
  private readonly since: Date | undefined;
  private readonly opts: Required<
    Pick<FhirRestOptions, 'pageSize' | 'timeoutMs' | 'maxRetries' | 'retryBaseMs' | 'retryMaxMs' | 'maxBinaryBytes'>
  >;

  constructor(private readonly options: FhirRestOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.baseUrl);
    } catch {
      throw new Error(`FHIR base URL is not a valid URL: ${JSON.stringify(options.baseUrl)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`FHIR base URL must be http(s): ${options.baseUrl}`);
    }
    if (options.since !== undefined) {
      const since = options.since instanceof Date ? options.since : new Date(options.since);
      if (Number.isNaN(since.getTime())) throw new Error(`invalid 'since' instant: ${String(options.since)}`);
      this.since = since;
    }
    if (options.pageSize !== undefined && !(Number.isInteger(options.pageSize) && options.pageSize > 0)) {
      throw new Error(`pageSize must be a positive integer, got ${options.pageSize}`);
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.origin = parsed.origin;
    this.opts = {
      pageSize: options.pageSize ?? 100,
      timeoutMs: options.timeoutMs ?? 30_000,
      maxRetries: options.maxRetries ?? 4,
      retryBaseMs: options.retryBaseMs ?? 500,
      retryMaxMs: options.retryMaxMs ?? 30_000,
      maxBinaryBytes: options.maxBinaryBytes ?? 50 * 1024 * 1024,
    };
    // The token is not given to fhir-kit-client's config, so that it cannot be sent to a
    // foreign origin (absolute references, next links); it is added per request instead.
    this.client = new Client({ baseUrl: this.baseUrl });
  }

  private release?: Promise<VersionEvidence | undefined>;

  get location(): string {
    return `${this.baseUrl}/metadata`;
  }

  /**
   * The release the server's CapabilityStatement declares, fetched once and without retries
   * (a server without /metadata is read, its resources still checked one by one).
   */
  declaredRelease(): Promise<VersionEvidence | undefined> {
    this.release ??= (async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
      const outer = this.options.signal;
      const onOuterAbort = () => controller.abort(outer?.reason);
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      try {
        const res = await fetch(this.location, {
          headers: { accept: 'application/fhir+json', ...this.authHeaders() },
          signal: controller.signal,
        });
        if (!res.ok) return undefined;
        const body = (await res.json()) as { resourceType?: unknown; fhirVersion?: unknown };
        if (body?.resourceType !== 'CapabilityStatement' && body?.resourceType !== 'Conformance') return undefined;
        if (typeof body.fhirVersion !== 'string') return undefined;
        return {
          release: releaseOfVersion(body.fhirVersion),
          evidence: `the server's CapabilityStatement declares fhirVersion ${body.fhirVersion}`,
        };
      } catch {
        return undefined;
      } finally {
        clearTimeout(timer);
        outer?.removeEventListener('abort', onOuterAbort);
      }
    })();
    return this.release;
  }

  /** Reads every requested type (whatever its release: see r4RestSource); a failed type is quarantined (or thrown in strict mode). */
  async *resources(resourceTypes: readonly string[], quarantine: Quarantine): AsyncGenerator<FhirResource> {
    let fatal: FhirRestError | undefined;
    for (const type of resourceTypes) {
      const source = this.searchUrl(type);
      if (fatal) {
        // The server as a whole is unreachable or refuses us: record, don't hammer it.
        quarantine.add({ source, modality: 'fhir', reason: fatal.reason, detail: `${type}: skipped after ${fatal.message}` });
        continue;
      }
      let yielded = 0;
      try {
        for await (const page of this.pages(type, quarantine)) {
          for (const resource of page) {
            yielded++;
            yield resource;
          }
        }
      } catch (err) {
        const e = this.toError(err, source);
        if (this.options.strict || e.kind === 'aborted') throw e;
        quarantine.add({
          source: e.url,
          modality: 'fhir',
          reason: e.reason,
          detail: `${type}: ${e.message}${yielded ? ` (after ${yielded} resources were read)` : ''}`,
        });
        if (e.kind === 'unreachable' || e.kind === 'unauthorized' || e.kind === 'forbidden') fatal = e;
      }
    }
  }

  /** All resources of one type, page by page (each page is an array of that page's resources). */
  async *pages(resourceType: string, quarantine?: Quarantine): AsyncGenerator<FhirResource[]> {
    if (!/^[A-Z][A-Za-z]+$/.test(resourceType)) {
      throw new FhirRestError('invalid', this.baseUrl, `not a FHIR resource type: ${JSON.stringify(resourceType)}`);
    }
    const searchParams = this.firstSearchParams();
    let url = this.searchUrl(resourceType);
    let bundle = await this.withRetry(url, (options) => this.client.resourceSearch({ resourceType, searchParams, options }));
    const seen = new Set<string>([url]);
    for (;;) {
      const b = this.checkBundle(bundle, url);
      const page: FhirResource[] = [];
      for (const entry of b.entry ?? []) {
        const mode = entry?.search?.mode;
        if (mode === 'include' || mode === 'outcome') continue;
        const r = entry?.resource as FhirResource | undefined;
        if (!r || typeof r !== 'object' || typeof r.resourceType !== 'string') {
          quarantine?.add({
            source: entry?.fullUrl ?? url,
            modality: 'fhir',
            reason: 'invalid Bundle entry',
            detail: `${resourceType} search entry without a resource`,
          });
          continue;
        }
        if (r.resourceType !== resourceType) continue;
        page.push(r);
      }
      if (page.length) yield page;

      const next = b.link?.find((l) => l?.relation === 'next')?.url;
      if (!next) return;
      const nextUrl = this.checkNextLink(next, url);
      if (seen.has(nextUrl)) {
        throw new FhirRestError('paging', nextUrl, `paging loop: next link repeats ${nextUrl}`);
      }
      seen.add(nextUrl);
      url = nextUrl;
      bundle = await this.withRetry(url, (options) => this.client.request(nextUrl, { options }));
    }
  }

  /**
   * Fetches a Binary (e.g. a DocumentReference attachment `url`) with the same auth, timeout
   * and retries. Relative URLs resolve against the base URL; the token is only sent to the
   * base URL's origin. Accepts both a FHIR Binary resource (base64 `data`) and raw content.
   */
  async fetchBinary(url: string): Promise<FhirBinary> {
    let abs: URL;
    try {
      abs = new URL(url, `${this.baseUrl}/`);
    } catch {
      throw new FhirRestError('http', url, `not a valid Binary URL: ${url}`);
    }
    const href = abs.href;
    return this.withRetry(href, async (options) => {
      const headers: Record<string, string> = {
        accept: 'application/fhir+json;q=1.0, */*;q=0.8',
        ...(abs.origin === this.origin ? options.headers : {}),
      };
      const res = await fetch(href, { headers, signal: options.signal, redirect: 'follow' });
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > this.opts.maxBinaryBytes) {
        await res.body?.cancel();
        throw new FhirRestError('http', href, `Binary too large: ${declared} bytes > ${this.opts.maxBinaryBytes}`, res.status);
      }
      const data = await this.readLimited(res, href);
      if (!res.ok) {
        let parsed: unknown = undefined;
        try {
          parsed = JSON.parse(data.toString('utf8'));
        } catch {
          /* not JSON */
        }
        const err: KitHttpError = { response: { status: res.status, data: parsed }, config: { headers: res.headers } };
        throw Object.assign(new Error(`HTTP ${res.status}: GET ${href}`), err);
      }
      const contentType = res.headers.get('content-type') ?? undefined;
      if (contentType && /^application\/(fhir\+)?json/i.test(contentType)) {
        let body: { resourceType?: unknown; contentType?: unknown; data?: unknown };
        try {
          body = JSON.parse(data.toString('utf8'));
        } catch (cause) {
          throw new FhirRestError('malformed', href, `Binary response is not valid JSON: ${href}`, res.status, 1, { cause });
        }
        if (body?.resourceType === 'Binary') {
          return {
            contentType: typeof body.contentType === 'string' ? body.contentType : undefined,
            data: typeof body.data === 'string' ? Buffer.from(body.data, 'base64') : Buffer.alloc(0),
          };
        }
      }
      return { contentType, data };
    });
  }

  // ---------------------------------------------------------------------------------------

  private firstSearchParams(): Record<string, string> {
    const params: Record<string, string> = { ...this.options.searchParams, _count: String(this.opts.pageSize) };
    if (this.since) params._lastUpdated = `gt${this.since.toISOString()}`;
    return params;
  }

  /** The URL of a type's first search request (also the quarantine source). */
  searchUrl(resourceType: string): string {
    return `${this.baseUrl}/${resourceType}?${new URLSearchParams(this.firstSearchParams()).toString()}`;
  }

  private checkNextLink(next: string, current: string): string {
    let abs: URL;
    try {
      abs = new URL(next, `${this.baseUrl}/`);
    } catch {
      throw new FhirRestError('paging', current, `invalid next link: ${next}`);
    }
    if (abs.origin !== this.origin && !this.options.allowCrossOriginLinks) {
      throw new FhirRestError(
        'paging',
        current,
        `next link points to another origin (${abs.origin}, expected ${this.origin}); ` +
          'set allowCrossOriginLinks to follow it (the bearer token is not sent there)',
      );
    }
    return abs.href;
  }

  private checkBundle(body: unknown, url: string): Bundle {
    if (!body || typeof body !== 'object' || (body as { resourceType?: unknown }).resourceType !== 'Bundle') {
      const rt = (body as { resourceType?: unknown } | null)?.resourceType;
      throw new FhirRestError('malformed', url, `expected a Bundle from ${url}, got ${rt ? `a ${String(rt)}` : 'no FHIR resource'}`);
    }
    const b = body as Bundle;
    if ((b.entry !== undefined && !Array.isArray(b.entry)) || (b.link !== undefined && !Array.isArray(b.link))) {
      throw new FhirRestError('malformed', url, `Bundle from ${url} has a non-array entry or link`);
    }
    return b;
  }

  private authHeaders(): Record<string, string> {
    const h: Record<string, string> = { ...this.options.headers };
    if (this.options.bearerToken) h.authorization = `Bearer ${this.options.bearerToken}`;
    return h;
  }

  private async readLimited(res: Response, url: string): Promise<Buffer> {
    if (!res.body) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > this.opts.maxBinaryBytes) {
        throw new FhirRestError('http', url, `Binary too large: more than ${this.opts.maxBinaryBytes} bytes`, res.status);
      }
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  }

  /**
   * Runs one request with a per-attempt timeout and retries. `fn` gets the request options
   * (auth headers and the attempt's abort signal) to pass on.
   */
  private async withRetry<T>(
    url: string,
    fn: (options: { headers: Record<string, string>; signal: AbortSignal }) => Promise<T>,
  ): Promise<T> {
    const outer = this.options.signal;
    for (let attempt = 0; ; attempt++) {
      if (outer?.aborted) throw new FhirRestError('aborted', url, `read aborted: ${url}`, undefined, attempt);
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error(`timeout after ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
      const onOuterAbort = () => controller.abort(outer?.reason);
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      let error: FhirRestError;
      let retryAfterMs: number | undefined;
      try {
        return await fn({ headers: this.authHeaders(), signal: controller.signal });
      } catch (err) {
        if (err instanceof FhirRestError) throw err;
        ({ error, retryAfterMs } = this.classify(err, url, attempt + 1, timedOut, outer?.aborted ?? false));
      } finally {
        clearTimeout(timer);
        outer?.removeEventListener('abort', onOuterAbort);
      }
      const retryable =
        error.kind === 'timeout' ||
        error.kind === 'connection' ||
        (error.kind === 'http' && error.status !== undefined && (error.status === 408 || error.status === 429 || error.status >= 500));
      if (!retryable || attempt >= this.opts.maxRetries) throw error;
      const exp = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** attempt);
      // Jitter from the CSPRNG too: the agent keeps Math.random out of every path it runs.
      const jittered = exp / 2 + (randomInt(0, 1 << 30) / (1 << 30)) * (exp / 2);
      const wait = Math.min(this.opts.retryMaxMs, Math.max(jittered, retryAfterMs ?? 0));
      try {
        await sleep(wait, outer);
      } catch {
        throw new FhirRestError('aborted', url, `read aborted: ${url}`, undefined, attempt + 1);
      }
    }
  }

  private classify(
    err: unknown,
    url: string,
    attempts: number,
    timedOut: boolean,
    aborted: boolean,
  ): { error: FhirRestError; retryAfterMs?: number } {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    if (aborted) return { error: new FhirRestError('aborted', url, `read aborted: ${url}`, undefined, attempts, { cause: err }) };
    if (timedOut) {
      return {
        error: new FhirRestError(
          'timeout',
          url,
          `no complete response from ${url} within ${this.opts.timeoutMs} ms${tries}`,
          undefined,
          attempts,
          { cause: err },
        ),
      };
    }
    if (isKitHttpError(err)) {
      const { status, data } = err.response;
      const retryAfterMs = parseRetryAfter(err.config?.headers?.get?.('retry-after'));
      if (status >= 200 && status < 300 && typeof data === 'string') {
        return {
          error: new FhirRestError(
            'malformed',
            url,
            `response from ${url} is not valid JSON (HTTP ${status}, ${data.length} bytes: ${JSON.stringify(data.slice(0, 80))})`,
            status,
            attempts,
            { cause: err },
          ),
        };
      }
      if (status === 401) {
        return {
          error: new FhirRestError(
            'unauthorized',
            url,
            `HTTP 401 Unauthorized from ${url}: ${this.options.bearerToken ? 'the bearer token was rejected' : 'no bearer token configured'}${outcomeText(data)}`,
            status,
            attempts,
            { cause: err },
          ),
        };
      }
      if (status === 403) {
        return {
          error: new FhirRestError(
            'forbidden',
            url,
            `HTTP 403 Forbidden from ${url}: the token lacks access${outcomeText(data)}`,
            status,
            attempts,
            { cause: err },
          ),
        };
      }
      return {
        error: new FhirRestError('http', url, `HTTP ${status} from ${url}${outcomeText(data)}${tries}`, status, attempts, { cause: err }),
        retryAfterMs,
      };
    }
    const code = errorCode(err);
    if (code && CONNECT_FAILURES.has(code)) {
      return {
        error: new FhirRestError('unreachable', url, `FHIR server unreachable at ${this.origin} (${code}): ${url}`, undefined, attempts, {
          cause: err,
        }),
      };
    }
    if (err instanceof SyntaxError) {
      return {
        error: new FhirRestError('malformed', url, `response from ${url} is not valid JSON: ${err.message}`, undefined, attempts, {
          cause: err,
        }),
      };
    }
    const msg = err instanceof Error ? err.message : String(err);
    return {
      error: new FhirRestError(
        'connection',
        url,
        `connection to ${url} failed${code ? ` (${code})` : ''}: ${msg}${tries}`,
        undefined,
        attempts,
        { cause: err },
      ),
    };
  }

  private toError(err: unknown, url: string): FhirRestError {
    if (err instanceof FhirRestError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new FhirRestError('unexpected', url, `unexpected error reading ${url}: ${msg}`, undefined, 1, { cause: err });
  }
}

/** Convenience: a FhirRestSource for `baseUrl`. */
/** The server read as the agent reads it: R4 only (the declared release first, then each resource). */
export function r4RestSource(source: FhirRestSource): FhirSource {
  const versioned = {
    location: source.location,
    declaredRelease: () => source.declaredRelease(),
    raw: (types: readonly string[], q: Quarantine) => source.resources(types, q),
  };
  return {
    resources: (types, q) => r4Only(versioned, types, q, (r) => ({ source: `${source.baseUrl}/${r.resourceType}/${r.id ?? ''}` })),
  };
}

export function fhirRestSource(options: FhirRestOptions): FhirRestSource {
  return new FhirRestSource(options);
}
