// The OpenAPI 3.1 description of the HTTP API. Written out by hand (it is the contract clients
// read); a test checks that it names exactly the routes the router serves, with their methods.
import type { OidcConfig } from '../config.ts';

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const err = (description: string) => ({ description, ...json({ $ref: '#/components/schemas/Error' }) });
const common = {
  '401': err(
    'no bearer token, an unknown or revoked API key, or a JWT refused (malformed, expired, wrong issuer or audience, bad signature): the error says which',
  ),
  '403': err("the token's role may not do this"),
};
const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });

/** `oidc`: the issuer whose JWTs are accepted besides API keys, when one is configured. */
export function openApiDocument(
  federationId: string,
  oidc?: Pick<OidcConfig, 'issuer' | 'audience' | 'algorithms' | 'roleClaim'>,
): Record<string, unknown> {
  const jwt = oidc
    ? {
        oidcJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: `a JWT signed (${oidc.algorithms.join(' or ')}) by ${oidc.issuer} for audience ${oidc.audience.join(' or ')}, with exp; the claim ${oidc.roleClaim} grants the roles researcher, operator, auditor`,
        },
      }
    : {};
  return {
    openapi: '3.1.0',
    info: {
      title: 'fedsynth coordinator API',
      version: '1',
      description: `Studies (one differentially private fit each), cohorts and their FHIR Bulk Data export for federation ${federationId}. Every request is authorised by a bearer token: an API key (fedsynth token create)${oidc ? ` or a JWT of ${oidc.issuer}` : ''}. Requests that change state, and refusals, are written to the coordinator's signed audit log with their requester (see docs/service.md for which reads are).`,
    },
    // Alternatives: either scheme authorises a request.
    security: [{ bearer: [] }, ...(oidc ? [{ oidcJwt: [] }] : [])],
    paths: {
      '/api/v1/openapi.json': { get: { summary: 'this document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/api/v1/whoami': {
        get: { summary: "the caller's key name and role (roles: any)", responses: { '200': json({ type: 'object' }), ...common } },
      },
      '/api/v1/schema': {
        get: {
          summary: 'the public schema: attributes, labels, age edges, modalities (any role)',
          responses: { '200': json({ type: 'object' }), ...common },
        },
      },
      '/api/v1/budget': {
        get: {
          summary: 'per site: published ε cap, spent and remaining (any role)',
          responses: { '200': json({ $ref: '#/components/schemas/Budget' }), ...common },
        },
      },
      '/api/v1/studies': {
        post: {
          summary: "request a study (researcher, operator): pre-checked against every site's remaining budget",
          requestBody: { required: true, ...json({ $ref: '#/components/schemas/StudyRequest' }) },
          responses: {
            '201': json({ type: 'object', properties: { id: { type: 'string' }, status: { const: 'pending-approval' } } }),
            '400': err('invalid body; names the valid attributes'),
            '409': err('a site cannot afford it: names the site and its remaining ε'),
            '413': err('body too large'),
            ...common,
          },
        },
        get: {
          summary: 'all studies (any role)',
          responses: {
            '200': json({ type: 'object', properties: { studies: { type: 'array', items: { $ref: '#/components/schemas/Study' } } } }),
            ...common,
          },
        },
      },
      '/api/v1/studies/{id}': {
        get: {
          summary: 'status, progress (round k of n), spend per site (any role)',
          parameters: [idParam('id')],
          responses: { '200': json({ $ref: '#/components/schemas/Study' }), '404': err('unknown study'), ...common },
        },
      },
      '/api/v1/studies/{id}/approve': {
        post: {
          summary: 'approve a pending study (operator only): it is queued, then fitted',
          parameters: [idParam('id')],
          responses: {
            '202': json({ type: 'object' }),
            '404': err('unknown study'),
            '409': err('not pending, or no longer affordable'),
            ...common,
          },
        },
      },
      '/api/v1/cohorts': {
        post: {
          summary: 'request a cohort from a fitted study (researcher, operator); no privacy cost',
          requestBody: { required: true, ...json({ $ref: '#/components/schemas/CohortRequest' }) },
          responses: {
            '202': { description: 'queued; Location: /api/v1/cohorts/{id}', headers: { Location: { schema: { type: 'string' } } } },
            '400': err('invalid body or filter; names the valid attributes'),
            '404': err('unknown study'),
            '409': err('study not fitted'),
            '413': err('body too large'),
            ...common,
          },
        },
        get: { summary: 'all cohort requests without their reports (any role)', responses: { '200': json({ type: 'object' }), ...common } },
      },
      '/api/v1/cohorts/{id}': {
        get: {
          summary: 'status, progress and report (any role)',
          parameters: [idParam('id')],
          responses: { '200': json({ $ref: '#/components/schemas/Cohort' }), '404': err('unknown cohort'), ...common },
        },
      },
      '/api/v1/cohorts/{id}/file': {
        get: {
          summary: 'one file the cohort report lists: DICOM, VCF, note, NDJSON or the preview PNG (researcher, operator)',
          parameters: [idParam('id'), { name: 'path', in: 'query', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'the file' },
            '404': err('not listed in the report'),
            '409': err('cohort not completed'),
            ...common,
          },
        },
      },
      '/api/v1/audit': {
        get: {
          summary: "the federation's signed audit log as JSON lines (auditor, operator)",
          responses: { '200': { description: 'application/x-ndjson' }, ...common },
        },
      },
      '/fhir/Group/{id}/$export': {
        get: {
          summary:
            'FHIR Bulk Data kick-off for a cohort (a Group); Accept: application/fhir+json, Prefer: respond-async (researcher, operator)',
          parameters: [
            idParam('id'),
            { name: '_type', in: 'query', schema: { type: 'string' } },
            { name: '_outputFormat', in: 'query', schema: { type: 'string' } },
          ],
          responses: {
            '202': { description: 'Content-Location: the status URL' },
            '400': { description: 'OperationOutcome' },
            '404': { description: 'OperationOutcome' },
            ...common,
          },
        },
      },
      '/fhir/$export-status/{exportId}': {
        get: {
          summary: 'export status: 202 with X-Progress while the cohort is written, then 200 with the manifest',
          parameters: [idParam('exportId')],
          responses: {
            '200': json({ $ref: '#/components/schemas/BulkManifest' }),
            '202': { description: 'in progress', headers: { 'X-Progress': { schema: { type: 'string' } } } },
            '404': err('unknown export'),
            ...common,
          },
        },
      },
      '/fhir/$export-file/{exportId}/{file}': {
        get: {
          summary: 'one NDJSON file of the manifest, with the same token',
          parameters: [idParam('exportId'), idParam('file')],
          responses: { '200': { description: 'application/fhir+ndjson' }, '404': err('not in the manifest'), ...common },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'an API key from `fedsynth token create --role researcher|operator|auditor`',
        },
        ...jwt,
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: { type: 'string' },
            valid: { type: 'array', items: { type: 'string' } },
            site: { type: 'string' },
            remainingEpsilon: { type: 'number' },
          },
        },
        StudyRequest: {
          type: 'object',
          required: ['title', 'epsilon'],
          additionalProperties: false,
          properties: {
            title: { type: 'string', maxLength: 200 },
            epsilon: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
            delta: { type: 'number', exclusiveMinimum: 0, maximum: 0.1 },
            attributes: { type: 'array', items: { type: 'string' }, minItems: 2 },
            plan: { enum: ['aim', 'mst'] },
          },
        },
        Study: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            status: { enum: ['pending-approval', 'queued', 'fitting', 'fitted', 'failed'] },
            progress: {
              type: 'object',
              properties: {
                phase: { type: 'string' },
                message: { type: 'string' },
                round: { type: 'integer' },
                rounds: { type: 'integer', description: 'rounds the plan runs at most' },
              },
            },
            spend: {
              type: 'object',
              additionalProperties: {
                type: 'object',
                properties: { rho: { type: 'number' }, epsilon: { type: 'number' }, rounds: { type: 'integer' } },
              },
            },
          },
        },
        CohortRequest: {
          type: 'object',
          required: ['study', 'n'],
          additionalProperties: false,
          properties: {
            study: { type: 'string' },
            n: { type: 'integer', minimum: 1, maximum: 100000 },
            where: { type: 'string', examples: ['age>=60,sex=female,condition=hypertension'] },
            seed: { type: 'integer', minimum: 0 },
            modalities: {
              type: 'array',
              items: { enum: ['fhir', 'dicom', 'vcf', 'notes'] },
              description:
                "artefacts to generate (default: all the study's schema has); FHIR is always generated, the others only when listed (the report's generated says which were)",
            },
          },
        },
        Cohort: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            status: { enum: ['queued', 'running', 'completed', 'failed'] },
            progress: { type: 'object' },
            report: {
              type: ['object', 'null'],
              properties: {
                generated: { type: 'array', items: { enum: ['fhir', 'dicom', 'vcf', 'notes'] } },
                downloads: { type: 'object' },
              },
            },
          },
        },
        Budget: {
          type: 'object',
          properties: {
            sites: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  siteId: { type: 'string' },
                  epsilonCap: { type: 'number' },
                  spentRho: { type: 'number' },
                  remainingEpsilon: { type: 'number' },
                },
              },
            },
          },
        },
        BulkManifest: {
          type: 'object',
          required: ['transactionTime', 'request', 'requiresAccessToken', 'output', 'error'],
          properties: {
            transactionTime: { type: 'string', format: 'date-time' },
            request: { type: 'string' },
            requiresAccessToken: { const: true },
            output: {
              type: 'array',
              items: { type: 'object', properties: { type: { type: 'string' }, url: { type: 'string' }, count: { type: 'integer' } } },
            },
            error: { type: 'array' },
          },
        },
      },
    },
  };
}
