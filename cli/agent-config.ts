// site.yaml → SiteConfig. The policy section is parsed by site-agent/policy.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SiteConfig } from '../site-agent/config.ts';
import { parsePolicy, PolicyError } from '../site-agent/policy.ts';
import { ConfigError, Fields, loadConfigFile } from './config-file.ts';
import { loadSchemaFile } from './coordinator-config.ts';

export function parseSiteConfig(path: string, opts: { exitWhenDone?: boolean } = {}): SiteConfig {
  const file = loadConfigFile(path);
  const f = new Fields(file.path, file.raw);
  f.onlyKeys(['siteId', 'federationId', 'coordinator', 'kit', 'schema', 'data', 'state', 'policy']);
  const kitDir = f.path('kit', file.dir);
  const pem = (name: string) => {
    try {
      return readFileSync(join(kitDir, name), 'utf8');
    } catch {
      throw new ConfigError(`${file.path}: cannot read ${join(kitDir, name)} (the site's startup kit from fedsynth provision)`);
    }
  };
  const schema = loadSchemaFile(f.path('schema', file.dir));
  const data = f.section('data');
  data.onlyKeys(['fhirNdjson', 'fhirRest']);
  let dataCfg: SiteConfig['data'];
  if (data.has('fhirNdjson') === data.has('fhirRest')) throw new ConfigError(`${file.path}: data needs exactly one of fhirNdjson (a folder) or fhirRest (a server)`);
  if (data.has('fhirNdjson')) dataCfg = { kind: 'fhir-ndjson', dir: data.path('fhirNdjson', file.dir) };
  else {
    const rest = data.section('fhirRest');
    rest.onlyKeys(['baseUrl', 'bearerToken', 'pageSize']);
    dataCfg = {
      kind: 'fhir-rest',
      baseUrl: rest.string('baseUrl'),
      bearerToken: rest.has('bearerToken') ? rest.string('bearerToken') : undefined,
      pageSize: rest.has('pageSize') ? rest.number('pageSize', undefined, { integer: true, min: 1, max: 10_000 }) : undefined,
    };
  }
  let policy;
  try {
    policy = parsePolicy(file.raw.policy, `${file.path}: policy`);
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(err.message);
    throw err;
  }
  return {
    siteId: f.string('siteId'),
    federationId: f.string('federationId'),
    coordinator: f.string('coordinator'),
    kit: { caPem: pem('ca.pem'), certPem: pem('cert.pem'), keyPem: pem('key.pem') },
    schemaText: schema.text,
    schemaHash: schema.hash,
    data: dataCfg,
    stateDir: f.path('state', file.dir),
    policy,
    exitWhenDone: opts.exitWhenDone ?? false,
  };
}
