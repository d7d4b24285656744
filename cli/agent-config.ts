// site.yaml → SiteConfig. The policy section is parsed by site-agent/policy.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SiteConfig } from '../site-agent/config.ts';
import { ROSTER_FILE } from '../proto/roster.ts';
import { parsePolicy, PolicyError } from '../site-agent/policy.ts';
import { ConfigError, Fields, loadConfigFile } from './config-file.ts';
import { loadSchemaFile } from './coordinator-config.ts';
import { parseOpsConfig } from './ops-flags.ts';

/**
 * The `data` section of site.yaml: exactly one FHIR source, plus optional other modalities:
 *
 * ```yaml
 * data:
 *   fhirNdjson: ./fhir            # a folder of NDJSON and/or Bundle .json files; or
 *                                 # fhirRest: { baseUrl, bearerToken?, pageSize? }; or
 *                                 # omop: { url, schema, vocabularySchema? } (OMOP CDM v5.4, PostgreSQL)
 *   dicom: ./dicom                # optional: folder tree of DICOM files
 *   vcf: ./genomes.vcf.gz         # optional: multi-sample VCF
 *   notes: ./notes                # optional: folder of <patient>_….txt notes
 *   fhirNotes: true               # optional: also notes from DocumentReference/DiagnosticReport
 *   linkage:                      # optional (default key: id)
 *     key: identifier             # id | identifier
 *     identifierSystem: urn:hospital:mrn
 *     vcfSampleMap: ./samples.tsv # sample<TAB>linkage key
 *     notesPattern: '^(?<patientId>[^_]+)_'
 * ```
 */
export function parseSiteDataSection(f: Fields, filePath: string, baseDir: string, raw: Record<string, unknown>): SiteConfig['data'] {
  const data = f.section('data');
  data.onlyKeys(['fhirNdjson', 'fhirRest', 'omop', 'dicom', 'vcf', 'notes', 'fhirNotes', 'linkage']);
  let dataCfg: SiteConfig['data'];
  if (['fhirNdjson', 'fhirRest', 'omop'].filter((k) => data.has(k)).length !== 1)
    throw new ConfigError(
      `${filePath}: data needs exactly one of fhirNdjson (a folder), fhirRest (a server) or omop (an OMOP CDM database)`,
    );
  if (data.has('fhirNdjson')) dataCfg = { kind: 'fhir-ndjson', dir: data.path('fhirNdjson', baseDir) };
  else if (data.has('omop')) {
    const omop = data.section('omop');
    omop.onlyKeys(['url', 'schema', 'vocabularySchema']);
    const url = omop.string('url');
    if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`${filePath}: data.omop.url must be a postgres:// URL`);
    const ident = (key: string, v: string) => {
      if (!/^[a-z_][a-z0-9_$]*$/i.test(v))
        throw new ConfigError(`${filePath}: data.omop.${key} must be a plain SQL identifier, got ${JSON.stringify(v)}`);
      return v;
    };
    dataCfg = {
      kind: 'omop',
      url,
      schema: ident('schema', omop.string('schema')),
      ...(omop.has('vocabularySchema') ? { vocabularySchema: ident('vocabularySchema', omop.string('vocabularySchema')) } : {}),
    };
  } else {
    const rest = data.section('fhirRest');
    rest.onlyKeys(['baseUrl', 'bearerToken', 'pageSize']);
    dataCfg = {
      kind: 'fhir-rest',
      baseUrl: rest.string('baseUrl'),
      bearerToken: rest.has('bearerToken') ? rest.string('bearerToken') : undefined,
      pageSize: rest.has('pageSize') ? rest.number('pageSize', undefined, { integer: true, min: 1, max: 10_000 }) : undefined,
    };
  }
  if (data.has('dicom')) dataCfg.dicom = data.path('dicom', baseDir);
  if (data.has('vcf')) dataCfg.vcf = data.path('vcf', baseDir);
  if (data.has('notes')) dataCfg.notes = data.path('notes', baseDir);
  if (data.has('fhirNotes')) {
    const v = (raw.data as Record<string, unknown>).fhirNotes;
    if (typeof v !== 'boolean') throw new ConfigError(`${filePath}: data.fhirNotes must be true or false`);
    dataCfg.fhirNotes = v;
  }
  if (data.has('linkage')) {
    const l = data.section('linkage');
    l.onlyKeys(['key', 'identifierSystem', 'vcfSampleMap', 'notesPattern']);
    const key = l.string('key', 'id');
    if (key !== 'id' && key !== 'identifier')
      throw new ConfigError(`${filePath}: data.linkage.key must be id or identifier, got ${JSON.stringify(key)}`);
    const linkage: NonNullable<SiteConfig['data']['linkage']> = { key };
    if (key === 'identifier') linkage.identifierSystem = l.string('identifierSystem');
    else if (l.has('identifierSystem')) throw new ConfigError(`${filePath}: data.linkage.identifierSystem needs key: identifier`);
    if (l.has('vcfSampleMap')) linkage.vcfSampleMap = l.path('vcfSampleMap', baseDir);
    if (l.has('notesPattern')) {
      const pattern = l.string('notesPattern');
      try {
        new RegExp(pattern);
      } catch (e) {
        throw new ConfigError(`${filePath}: data.linkage.notesPattern is not a valid regular expression: ${(e as Error).message}`);
      }
      linkage.notesPattern = pattern;
    }
    dataCfg.linkage = linkage;
  }
  return dataCfg;
}

/** The certificates a rotation moved to the kit's previous/ folder (fedsynth provision rotate-site). */
function previousCerts(kitDir: string): string[] {
  const dir = join(kitDir, 'previous');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pem'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

export function parseSiteConfig(path: string, opts: { exitWhenDone?: boolean } = {}): SiteConfig {
  const file = loadConfigFile(path);
  const f = new Fields(file.path, file.raw);
  f.onlyKeys(['siteId', 'federationId', 'coordinator', 'kit', 'schema', 'data', 'state', 'policy', 'metrics', 'revocationList']);
  const kitDir = f.path('kit', file.dir);
  const pem = (name: string) => {
    try {
      return readFileSync(join(kitDir, name), 'utf8');
    } catch {
      throw new ConfigError(`${file.path}: cannot read ${join(kitDir, name)} (the site's startup kit from fedsynth provision)`);
    }
  };
  const schema = loadSchemaFile(f.path('schema', file.dir));
  const dataCfg = parseSiteDataSection(f, file.path, file.dir, file.raw);
  let policy;
  try {
    policy = parsePolicy(file.raw.policy, `${file.path}: policy`);
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(err.message);
    throw err;
  }
  return {
    ...parseOpsConfig(f, file.path, file.dir),
    siteId: f.string('siteId'),
    federationId: f.string('federationId'),
    coordinator: f.string('coordinator'),
    kit: { caPem: pem('ca.pem'), certPem: pem('cert.pem'), keyPem: pem('key.pem'), previousCertPems: previousCerts(kitDir) },
    rosterFile: join(kitDir, ROSTER_FILE),
    schemaText: schema.text,
    schemaHash: schema.hash,
    data: dataCfg,
    stateDir: f.path('state', file.dir),
    policy,
    exitWhenDone: opts.exitWhenDone ?? false,
  };
}
