// inspect against a real FHIR REST server (Medplum's router over its in-memory repository) loaded
// with a simulated site's FHIR resources, the site's DICOM/VCF/notes read from disk and linked by
// MRN: the report equals the one read from the NDJSON files, except for the source.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH, simulateFederation } from '../../simulator/index.ts';
import { inspectSite, type InspectReport } from '../../site-agent/inspect.ts';
import { FhirRestSource } from '../../site-agent/connectors/fhir-rest.ts';
import { startFhirServer, type FhirServer } from '../support/fhir-server.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-insp-srv-'));
const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
let server: FhirServer | undefined;
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('inspect with FHIR from a REST server', () => {
  let dir: string;
  let fromFiles: InspectReport;
  let fromServer: InspectReport;
  let resources = 0;

  beforeAll(async () => {
    const sim = await simulateFederation({
      sites: 1,
      patients: 80,
      seed: 4,
      outDir: root,
      schema,
      modalities: ['fhir', 'dicom', 'vcf', 'notes'],
    });
    dir = sim.sites[0]!.dir;
    // PUT keeps the resource ids, so references resolve as written.
    const entries = ['Patient', 'Condition', 'Observation'].flatMap((t) =>
      readFileSync(join(dir, `${t}.ndjson`), 'utf8')
        .split('\n')
        .filter((l) => l)
        .map((l) => JSON.parse(l))
        .map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })),
    );
    resources = entries.length;
    // Medplum caps update operations per transaction: load in batches of 20.
    const bundles = [];
    for (let i = 0; i < entries.length; i += 20) bundles.push({ resourceType: 'Bundle', type: 'batch', entry: entries.slice(i, i + 20) });
    server = await startFhirServer({ bundles });
    const data = {
      dicom: join(dir, 'dicom'),
      vcf: join(dir, 'genomes.vcf'),
      notes: join(dir, 'notes'),
      linkage: {
        key: 'identifier' as const,
        identifierSystem: 'urn:fedsynth:sim:hospital-a:mrn',
        vcfSampleMap: join(dir, 'vcf-samples.tsv'),
      },
    };
    fromFiles = await inspectSite({ data: { kind: 'fhir-ndjson', dir, ...data } }, schema);
    fromServer = await inspectSite({ data: { kind: 'fhir-rest', baseUrl: server.url, pageSize: 50, ...data } }, schema);
  }, 60_000);

  it('reads the same patients, links the same artefacts, and reports the same coverage', () => {
    expect(resources).toBeGreaterThan(80);
    expect(fromServer.patients).toEqual(fromFiles.patients);
    expect(fromServer.patients.fhir).toBe(80);
    expect(fromServer.linkage).toEqual(fromFiles.linkage);
    expect(fromServer.coverage).toEqual(fromFiles.coverage);
    expect(fromServer.quarantine).toEqual(fromFiles.quarantine);
    expect(fromServer.sources.fhir).toBe(server!.url);
    // Paging was used (80 patients, 50 per page).
    expect(server!.log.some((r) => /_offset=|_count=50/.test(r.url))).toBe(true);
  });

  it('an unreachable server is a quarantine record, not a crash; artefacts are then unlinked', async () => {
    const baseUrl = 'http://127.0.0.1:9/fhir';
    const fhirSource = new FhirRestSource({ baseUrl, maxRetries: 1, retryBaseMs: 50, timeoutMs: 2_000 });
    const r = await inspectSite({ data: { kind: 'fhir-rest', baseUrl, notes: join(dir, 'notes') } }, schema, { fhirSource });
    expect(r.patients.fhir).toBe(0);
    expect(Object.keys(r.quarantine.byReason).some((k) => k.startsWith('fhir: '))).toBe(true);
    expect(r.linkage.note!.linked).toBe(0);
    expect(r.linkage.note!.unlinked).toBe(r.linkage.note!.artefacts);
  }, 30_000);
});
