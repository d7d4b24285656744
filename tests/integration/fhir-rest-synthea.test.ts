// The real Synthea R4 transaction Bundles (../shared/data/fhir/synthea-r4-bundles, see
// SOURCES.md) loaded into a real FHIR server, then read back through the REST connector.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FHIR_REST_RESOURCE_TYPES, FhirRestSource } from '../../site-agent/connectors/fhir-rest.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';
import { startFhirServer, type FhirServer } from '../support/fhir-server.ts';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const dataRoot = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(repoRoot, '../shared/data');
const bundleDir = resolve(dataRoot, 'fhir/synthea-r4-bundles');
const present = existsSync(bundleDir);
if (!present) {
  console.warn(`[fhir-rest-synthea] skipped: ${bundleDir} not found (set FEDSYNTH_SAMPLE_DATA to the shared data folder)`);
}

describe.skipIf(!present)('FHIR REST connector on the real Synthea R4 bundles', () => {
  let s: FhirServer;
  beforeAll(async () => {
    s = await startFhirServer({ bundleDirs: [bundleDir], bearerToken: 'site-token' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('reads back every resource of the six types (counts as in SOURCES.md), paging 50 at a time', async () => {
    const src = new FhirRestSource({ baseUrl: s.url, bearerToken: 'site-token', pageSize: 50 });
    const q = new Quarantine();
    const counts: Record<string, number> = {};
    const ids = new Set<string>();
    const patientIds = new Set<string>();
    const subjects: string[] = [];
    for await (const r of src.resources(FHIR_REST_RESOURCE_TYPES, q)) {
      counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
      ids.add(`${r.resourceType}/${r.id}`);
      if (r.resourceType === 'Patient') patientIds.add(`Patient/${r.id}`);
      const subj = (r.subject as { reference?: string } | undefined)?.reference;
      if (subj) subjects.push(subj);
    }
    expect(q.records).toEqual([]);
    expect(counts).toEqual({
      Patient: 16,
      Condition: 78,
      Observation: 1367,
      ImagingStudy: 12,
      DiagnosticReport: 67,
    });
    expect(counts.DocumentReference).toBeUndefined(); // that Synthea version wrote no notes
    expect(ids.size).toBe(16 + 78 + 1367 + 12 + 67);
    // The transactions resolved Synthea's urn:uuid: references to server ids.
    expect(subjects.length).toBe(78 + 1367 + 12 + 67);
    expect(subjects.every((ref) => patientIds.has(ref))).toBe(true);
    // 1367 Observations at 50 per page = 28 pages; every request carried the token.
    expect(s.log.filter((l) => l.url.startsWith('/Observation'))).toHaveLength(28);
    expect(s.log.every((l) => l.authorization === 'Bearer site-token')).toBe(true);
  });

  it('has what SOURCES.md says about the patients (8 female / 8 male, 6 deceased, born 1926–2009)', async () => {
    const src = new FhirRestSource({ baseUrl: s.url, bearerToken: 'site-token' });
    const pats: FhirResource[] = [];
    for await (const r of src.resources(['Patient'], new Quarantine())) pats.push(r);
    expect(pats.filter((p) => p.gender === 'female')).toHaveLength(8);
    expect(pats.filter((p) => p.gender === 'male')).toHaveLength(8);
    expect(pats.filter((p) => p.deceasedDateTime !== undefined || p.deceasedBoolean === true)).toHaveLength(6);
    const years = pats.map((p) => Number(String(p.birthDate).slice(0, 4)));
    expect(Math.min(...years)).toBe(1926);
    expect(Math.max(...years)).toBe(2009);
  });
});
