// The /api/v1 routes: studies (request, approve, status), the sites' budget, cohort requests and
// their files, the schema the forms are built from, and the audit log for auditors.
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { epsilonFromRho } from '../../privacy/dp/accountant.ts';
import { fitRhoBudget } from '../../privacy/dp/mechanisms.ts';
import { attributeLabels, type Schema } from '../../schema/schema.ts';
import type { CoordinatorConfig } from '../config.ts';
import type { CohortWorker } from '../cohort-jobs.ts';
import { budgetProblem, fitIdOf, siteBudgets, studySchema, type StudyRunner, type SiteBudget } from '../studies.ts';
import type { CohortJob, Store, Study, StudyStore } from '../store/index.ts';
import { HttpError, readJson, sendJson, type RequestContext, type Route } from './router.ts';
import { parseCohortRequest, parseStudyRequest, schemaModalities } from './validate.ts';

export interface ApiDeps {
  store: Store;
  studies: StudyStore;
  cfg: CoordinatorConfig;
  schema: Schema;
  runner: StudyRunner;
  cohorts: CohortWorker;
  /** Folder holding one sub-folder per cohort request. */
  cohortsDir: string;
}

export const requesterOf = (ctx: RequestContext) => (ctx.key ? `${ctx.key.name} (${ctx.key.id})` : 'anonymous');

async function studyOr404(deps: ApiDeps, id: string): Promise<Study> {
  const s = await deps.studies.getStudy(id);
  if (!s || s.federationId !== deps.cfg.federationId) throw new HttpError(404, `no study ${JSON.stringify(id)}`);
  return s;
}

export async function cohortOr404(deps: ApiDeps, id: string): Promise<CohortJob> {
  const c = await deps.studies.getCohortJob(id);
  if (!c || c.federationId !== deps.cfg.federationId) throw new HttpError(404, `no cohort ${JSON.stringify(id)}`);
  return c;
}

async function studyView(deps: ApiDeps, s: Study) {
  const spend: Record<string, { rho: number; epsilon: number; rounds: number }> = {};
  for (const c of await deps.store.chargesByRound(s.fitId)) {
    const x = (spend[c.siteId] ??= { rho: 0, epsilon: 0, rounds: 0 });
    x.rho += c.rho;
    x.rounds += 1;
  }
  for (const x of Object.values(spend)) x.epsilon = epsilonFromRho(x.rho, s.delta);
  return {
    id: s.id,
    title: s.title,
    epsilon: s.epsilon,
    delta: s.delta,
    attributes: s.attributes,
    plan: s.plan,
    status: s.status,
    requester: s.requester,
    approver: s.approver,
    progress: s.progress,
    spend,
    modelId: s.modelId,
    error: s.error,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

function cohortView(c: CohortJob) {
  return {
    id: c.id,
    study: c.studyId,
    n: c.n,
    seed: Number(c.seed),
    where: c.whereText,
    modalities: c.modalities,
    status: c.status,
    progress: c.progress,
    requester: c.requester,
    error: c.error,
    report: c.report,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

/**
 * Budget the federation's unfinished studies will still take from each site: a pending or queued
 * study its whole ρ, a fitting one what it has not yet charged.
 */
async function committed(deps: ApiDeps, except?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await deps.studies.listStudies(deps.cfg.federationId)) {
    if (s.id === except || !['pending-approval', 'queued', 'fitting'].includes(s.status)) continue;
    const rho = fitRhoBudget(s.epsilon, s.delta);
    const charged = s.status === 'fitting' ? await deps.store.chargesByRound(s.fitId) : [];
    for (const site of deps.cfg.sites) {
      const done = charged.filter((c) => c.siteId === site).reduce((a, c) => a + c.rho, 0);
      out[site] = (out[site] ?? 0) + Math.max(0, rho - done);
    }
  }
  return out;
}

async function checkBudget(deps: ApiDeps, epsilon: number, delta: number, except?: string): Promise<SiteBudget[]> {
  const budgets = await siteBudgets(deps.studies, deps.cfg.federationId);
  const held = await committed(deps, except);
  const net = budgets.map((b) => {
    const remainingRho = Math.max(0, b.remainingRho - (held[b.siteId] ?? 0));
    return { ...b, remainingRho, remainingEpsilon: remainingRho > 0 ? epsilonFromRho(remainingRho, b.delta) : 0 };
  });
  const problem = budgetProblem(net, deps.cfg.sites, epsilon, delta);
  if (problem) {
    const note = held[problem.siteId] ? ' after the studies already requested' : '';
    throw new HttpError(409, problem.message + note, { site: problem.siteId, remainingEpsilon: problem.remainingEpsilon });
  }
  return budgets;
}

const anyRole = ['researcher', 'operator', 'auditor'] as const;
const requesters = ['researcher', 'operator'] as const;

export function apiRoutes(deps: ApiDeps): Route[] {
  return [...infoRoutes(deps), ...studyRoutes(deps), ...cohortRoutes(deps)];
}

/** Who am I, the schema the forms are built from, the sites' budget, the audit log. */
function infoRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/whoami',
      roles: anyRole,
      handler: async (ctx) =>
        sendJson(ctx.res, 200, { id: ctx.key!.id, name: ctx.key!.name, role: ctx.key!.role, federation: deps.cfg.federationId }),
    },
    {
      method: 'GET',
      path: '/api/v1/schema',
      roles: anyRole,
      handler: async (ctx) =>
        sendJson(ctx.res, 200, {
          name: deps.schema.name,
          version: deps.schema.version,
          hash: deps.cfg.schemaHash,
          modalities: schemaModalities(deps.schema),
          attributes: deps.schema.attributes.map((a) => ({
            name: a.name,
            kind: a.kind,
            labels: attributeLabels(a),
            ...(a.kind === 'age' ? { edges: a.edges, max: a.max } : {}),
          })),
          defaults: { delta: deps.cfg.fit.delta, plan: deps.cfg.fit.plan },
        }),
    },
    {
      method: 'GET',
      path: '/api/v1/budget',
      roles: anyRole,
      handler: async (ctx) => {
        const budgets = await siteBudgets(deps.studies, deps.cfg.federationId);
        const held = await committed(deps);
        sendJson(ctx.res, 200, {
          note: "caps and remaining budget as each site published them at registration, less the charges recorded since; each site's ledger decides every charge",
          sites: deps.cfg.sites.map((site) => {
            const b = budgets.find((x) => x.siteId === site);
            return b ? { ...b, heldRho: held[site] ?? 0, registered: true } : { siteId: site, registered: false };
          }),
        });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/audit',
      audit: 'first-read',
      roles: ['auditor', 'operator'],
      handler: async (ctx) => {
        const text = await deps.store.exportAudit(deps.cfg.federationId);
        ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
        ctx.res.end(text);
      },
    },
  ];
}

/** Request, list, read and approve studies. */
function studyRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/studies',
      roles: requesters,
      handler: async (ctx) => {
        const body = parseStudyRequest(
          await readJson(ctx.req, deps.cfg.http?.maxBodyBytes),
          deps.schema.attributes.map((a) => a.name),
          deps.cfg.fit.delta,
        );
        if (body.attributes) {
          try {
            studySchema(deps.cfg, { attributes: body.attributes });
          } catch (err) {
            throw new HttpError(400, `these attributes do not form a valid schema: ${(err as Error).message}`);
          }
        }
        await checkBudget(deps, body.epsilon, body.delta);
        const id = `study-${randomBytes(8).toString('hex').slice(0, 10)}`;
        ctx.audit.studyId = id;
        const s = await deps.studies.createStudy({
          id,
          federationId: deps.cfg.federationId,
          fitId: fitIdOf(deps.cfg.federationId, id),
          ...body,
          requester: requesterOf(ctx),
        });
        sendJson(ctx.res, 201, { id: s.id, status: s.status }, { location: `/api/v1/studies/${s.id}` });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/studies',
      roles: anyRole,
      handler: async (ctx) => {
        const all = await deps.studies.listStudies(deps.cfg.federationId);
        sendJson(ctx.res, 200, { studies: await Promise.all(all.map((s) => studyView(deps, s))) });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/studies/{id}',
      roles: anyRole,
      handler: async (ctx) => {
        ctx.audit.studyId = ctx.params.id;
        sendJson(ctx.res, 200, await studyView(deps, await studyOr404(deps, ctx.params.id)));
      },
    },
    {
      method: 'POST',
      path: '/api/v1/studies/{id}/approve',
      roles: ['operator'],
      handler: async (ctx) => {
        ctx.audit.studyId = ctx.params.id;
        const s = await studyOr404(deps, ctx.params.id);
        if (s.status !== 'pending-approval') throw new HttpError(409, `study ${s.id} is ${s.status}, not pending approval`);
        await checkBudget(deps, s.epsilon, s.delta, s.id);
        const approved = await deps.studies.approveStudy(s.id, requesterOf(ctx));
        if (!approved) throw new HttpError(409, `study ${s.id} was approved by someone else meanwhile`);
        deps.runner.poke();
        sendJson(ctx.res, 202, { id: s.id, status: approved.status }, { location: `/api/v1/studies/${s.id}` });
      },
    },
  ];
}

/** Request, list and read cohorts, and download the files their reports list. */
function cohortRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/cohorts',
      roles: requesters,
      handler: async (ctx) => {
        const raw = await readJson(ctx.req, deps.cfg.http?.maxBodyBytes);
        if (typeof raw.where === 'string') ctx.audit.filter = raw.where;
        const study = typeof raw.study === 'string' ? await deps.studies.getStudy(raw.study) : null;
        const schema = study ? studySchema(deps.cfg, study).schema : deps.schema;
        const body = parseCohortRequest(raw, schema, schemaModalities(schema));
        if (!study || study.federationId !== deps.cfg.federationId) throw new HttpError(404, `no study ${JSON.stringify(body.study)}`);
        ctx.audit.studyId = study.id;
        if (study.status !== 'fitted') throw new HttpError(409, `study ${study.id} is ${study.status}: cohorts come from fitted studies`);
        const id = `cohort-${randomUUID().slice(0, 13).replace('-', '')}`;
        ctx.audit.cohortId = id;
        await deps.studies.createCohortJob({
          id,
          federationId: deps.cfg.federationId,
          studyId: study.id,
          n: body.n,
          seed: String(body.seed),
          whereText: body.where,
          where: body.allowed,
          modalities: body.modalities,
          outDir: join(deps.cohortsDir, id),
          requester: requesterOf(ctx),
        });
        deps.cohorts.enqueue(id);
        sendJson(ctx.res, 202, { id, status: 'queued' }, { location: `/api/v1/cohorts/${id}` });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/cohorts',
      roles: anyRole,
      handler: async (ctx) => {
        const all = await deps.studies.listCohortJobs(deps.cfg.federationId);
        sendJson(ctx.res, 200, { cohorts: all.map((c) => ({ ...cohortView(c), report: undefined })) });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/cohorts/{id}',
      audit: 'first-read',
      roles: anyRole,
      handler: async (ctx) => {
        ctx.audit.cohortId = ctx.params.id;
        sendJson(ctx.res, 200, cohortView(await cohortOr404(deps, ctx.params.id)));
      },
    },
    {
      method: 'GET',
      path: '/api/v1/cohorts/{id}/file',
      audit: 'first-read',
      roles: requesters,
      handler: async (ctx) => serveCohortFile(deps, ctx),
    },
  ];
}

const TYPES: Record<string, string> = {
  ndjson: 'application/fhir+ndjson',
  dcm: 'application/dicom',
  vcf: 'text/x-vcf',
  txt: 'text/plain; charset=utf-8',
  png: 'image/png',
  gz: 'application/gzip',
};

/** A file the cohort's report lists (downloads or the radiograph preview), never anything else. */
async function serveCohortFile(deps: ApiDeps, ctx: RequestContext): Promise<void> {
  ctx.audit.cohortId = ctx.params.id;
  const job = await cohortOr404(deps, ctx.params.id);
  const rel = ctx.url.searchParams.get('path');
  if (!rel) throw new HttpError(400, "name the file with ?path= (see the report's downloads)");
  if (job.status !== 'completed' || !job.report) throw new HttpError(409, `cohort ${job.id} is ${job.status}`);
  const report = job.report as { downloads?: Record<string, { paths: string[] }>; previews?: { radiograph?: string } };
  const listed = Object.values(report.downloads ?? {}).some((d) => d.paths.includes(rel)) || report.previews?.radiograph === rel;
  const root = resolve(job.outDir);
  const full = resolve(root, rel);
  if (!listed || !full.startsWith(root + sep)) throw new HttpError(404, `cohort ${job.id} has no file ${JSON.stringify(rel)}`);
  const size = (await stat(full)).size;
  const ext = rel.split('.').pop() ?? '';
  ctx.res.writeHead(200, {
    'content-type': TYPES[ext] ?? 'application/octet-stream',
    'content-length': String(size),
    'cache-control': 'no-store',
    ...(ext === 'png' || ext === 'txt' ? {} : { 'content-disposition': `attachment; filename="${rel.split('/').pop()}"` }),
  });
  await new Promise<void>((done, fail) => createReadStream(full).on('error', fail).on('end', done).pipe(ctx.res));
}
