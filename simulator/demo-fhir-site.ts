// One demo hospital keeps its records in a FHIR server instead of export files: its simulated
// FHIR resources are loaded (under their own ids) into a local FHIR R4 REST server, and the
// site's config is pointed at it, so the demo exercises the REST connector end to end.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { startFhirServer, type FhirServer } from './fhir-server.ts';

export async function serveSiteOverFhir(siteConfigPath: string): Promise<FhirServer> {
  const cfg = YAML.parse(await readFile(siteConfigPath, 'utf8')) as { data: Record<string, unknown> };
  const dir = cfg.data.fhirNdjson;
  if (typeof dir !== 'string') throw new Error(`${siteConfigPath}: data.fhirNdjson is not set; nothing to serve`);
  const resources: Record<string, unknown>[] = [];
  for (const type of ['Patient', 'Condition', 'Observation']) {
    const text = await readFile(join(dir, `${type}.ndjson`), 'utf8');
    for (const line of text.split('\n')) if (line) resources.push(JSON.parse(line));
  }
  const server = await startFhirServer({ keepIds: resources });
  const { fhirNdjson: _served, ...rest } = cfg.data;
  cfg.data = { fhirRest: { baseUrl: server.url, pageSize: 1000 }, ...rest };
  await writeFile(siteConfigPath, YAML.stringify(cfg));
  return server;
}
