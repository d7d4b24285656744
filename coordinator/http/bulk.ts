// FHIR Bulk Data Access (v2) export of a cohort, which is a FHIR Group: kick-off at
// /fhir/Group/{id}/$export (202 + Content-Location), status polling (202 with X-Progress, then
// 200 and the manifest), NDJSON files served with the same bearer token.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cohortOr404, requesterOf, type ApiDeps } from './api.ts';
import { HttpError, sendJson, type RequestContext, type Route } from './router.ts';

const FHIR_JSON = 'application/fhir+json';
const NDJSON_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];

function baseUrl(deps: ApiDeps, ctx: RequestContext): string {
  return deps.cfg.http?.publicUrl ?? `http://${ctx.req.headers.host ?? 'localhost'}`;
}

/** FHIR errors are OperationOutcomes. */
function outcome(ctx: RequestContext, status: number, diagnostics: string): void {
  sendJson(
    ctx.res,
    status,
    { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: status === 404 ? 'not-found' : 'invalid', diagnostics }] },
    {},
    FHIR_JSON,
  );
}

function resourceTypes(report: Record<string, unknown> | null): string[] {
  return Object.keys((report?.resources as Record<string, number> | undefined) ?? {}).sort();
}

async function kickOff(deps: ApiDeps, ctx: RequestContext): Promise<void> {
  ctx.audit.cohortId = ctx.params.id;
  const accept = ctx.req.headers.accept ?? '';
  if (!accept.split(',').some((a) => a.trim().startsWith(FHIR_JSON))) return outcome(ctx, 400, `a bulk export needs Accept: ${FHIR_JSON}`);
  if (!/respond-async/.test(String(ctx.req.headers.prefer ?? ''))) return outcome(ctx, 400, 'a bulk export needs Prefer: respond-async');
  const job = await deps.studies.getCohortJob(ctx.params.id);
  if (!job || job.federationId !== deps.cfg.federationId) return outcome(ctx, 404, `no Group ${ctx.params.id}`);
  const format = ctx.url.searchParams.get('_outputFormat');
  if (format !== null && !NDJSON_FORMATS.includes(format))
    return outcome(ctx, 400, `_outputFormat ${format} is not supported (${NDJSON_FORMATS.join(', ')})`);
  const types = ctx.url.searchParams.get('_type');
  if (types !== null && job.status === 'completed') {
    const known = resourceTypes(job.report);
    const bad = types.split(',').filter((t) => !known.includes(t.trim()));
    if (bad.length) return outcome(ctx, 400, `_type ${bad.join(', ')} is not in this cohort (types: ${known.join(', ')})`);
  }
  for (const p of ctx.url.searchParams.keys())
    if (!['_outputFormat', '_type'].includes(p))
      return outcome(ctx, 400, `parameter ${p} is not supported (supported: _outputFormat, _type)`);
  const id = randomBytes(12).toString('hex');
  await deps.studies.createExport({
    id,
    cohortId: job.id,
    requestUrl: `${baseUrl(deps, ctx)}${ctx.url.pathname}${ctx.url.search}`,
    requester: requesterOf(ctx),
  });
  ctx.res.writeHead(202, { 'content-location': `${baseUrl(deps, ctx)}/fhir/$export-status/${id}`, 'cache-control': 'no-store' });
  ctx.res.end();
}

async function exportJob(deps: ApiDeps, ctx: RequestContext) {
  const exp = await deps.studies.getExport(ctx.params.exportId);
  if (!exp) throw new HttpError(404, `no export ${ctx.params.exportId}`);
  ctx.audit.cohortId = exp.cohortId;
  return { exp, job: await cohortOr404(deps, exp.cohortId) };
}

function requestedTypes(requestUrl: string, report: Record<string, unknown> | null): string[] {
  const types = new URL(requestUrl).searchParams.get('_type');
  const known = resourceTypes(report);
  return types
    ? known.filter((t) =>
        types
          .split(',')
          .map((x) => x.trim())
          .includes(t),
      )
    : known;
}

async function status(deps: ApiDeps, ctx: RequestContext): Promise<void> {
  const { exp, job } = await exportJob(deps, ctx);
  if (job.status === 'failed') return outcome(ctx, 500, `the cohort failed: ${job.error ?? 'unknown error'}`);
  if (job.status !== 'completed') {
    const pct = Math.round(100 * (job.progress.fraction ?? 0));
    ctx.res.writeHead(202, {
      'x-progress': `${job.status}: ${pct}%${job.progress.message ? ` (${job.progress.message})` : ''}`,
      'retry-after': '2',
      'cache-control': 'no-store',
    });
    ctx.res.end();
    return;
  }
  const base = baseUrl(deps, ctx);
  const counts = (job.report?.resources as Record<string, number>) ?? {};
  sendJson(ctx.res, 200, {
    transactionTime: job.updatedAt.toISOString(),
    request: exp.requestUrl,
    requiresAccessToken: true,
    output: requestedTypes(exp.requestUrl, job.report).map((type) => ({
      type,
      url: `${base}/fhir/$export-file/${exp.id}/${type}.ndjson`,
      count: counts[type],
    })),
    error: [],
    extension: { 'https://fedsynth.dev/cohort-report': `${base}/api/v1/cohorts/${job.id}` },
  });
}

async function file(deps: ApiDeps, ctx: RequestContext): Promise<void> {
  const { exp, job } = await exportJob(deps, ctx);
  const type = /^([A-Za-z]+)\.ndjson$/.exec(ctx.params.file)?.[1];
  if (job.status !== 'completed' || !type || !requestedTypes(exp.requestUrl, job.report).includes(type))
    throw new HttpError(404, `export ${exp.id} has no file ${ctx.params.file}`);
  const path = join(job.outDir, 'fhir', `${type}.ndjson`);
  ctx.res.writeHead(200, {
    'content-type': 'application/fhir+ndjson',
    'content-length': String((await stat(path)).size),
    'cache-control': 'no-store',
  });
  await new Promise<void>((done, fail) => createReadStream(path).on('error', fail).on('end', done).pipe(ctx.res));
}

export function bulkRoutes(deps: ApiDeps): Route[] {
  const roles = ['researcher', 'operator'] as const;
  return [
    { method: 'GET', path: '/fhir/Group/{id}/$export', roles, audit: 'always', handler: (ctx) => kickOff(deps, ctx) },
    { method: 'GET', path: '/fhir/$export-status/{exportId}', roles, handler: (ctx) => status(deps, ctx) },
    { method: 'GET', path: '/fhir/$export-file/{exportId}/{file}', roles, audit: 'first-read', handler: (ctx) => file(deps, ctx) },
  ];
}
