// The FHIR folder source on Bundle files and NDJSON alike, and FHIR release detection on every
// source (folder probe, per-resource shapes, a server's /metadata).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { NdjsonFhirSource } from '../../site-agent/connectors/fhir-ndjson.ts';
import { FhirRestSource, r4RestSource } from '../../site-agent/connectors/fhir-rest.ts';
import { detectResourceRelease, releaseOfVersion } from '../../site-agent/connectors/fhir-version.ts';
import { Quarantine, type FhirResource, type FhirSource } from '../../site-agent/connectors/types.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-fhir-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function folder(files: Record<string, string>): string {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}
async function collect(src: FhirSource, types: string[], q = new Quarantine()): Promise<FhirResource[]> {
  const out: FhirResource[] = [];
  for await (const r of src.resources(types, q)) out.push(r);
  return out;
}
const patient = (id: string) => ({ resourceType: 'Patient', id, gender: 'female', birthDate: '1970-01-01' });
const r4Condition = (id: string, pid: string) => ({
  resourceType: 'Condition',
  id,
  subject: { reference: `Patient/${pid}` },
  clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
});
const stu3Condition = (id: string, pid: string) => ({ ...r4Condition(id, pid), clinicalStatus: 'active', verificationStatus: 'confirmed' });
const bundle = (type: string, resources: object[], extra: object = {}) =>
  JSON.stringify({
    resourceType: 'Bundle',
    type,
    entry: resources.map((r) => ({ fullUrl: `urn:uuid:${(r as { id?: string }).id}`, resource: r })),
    ...extra,
  });

const dataRoot = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
const syntheaBundles = join(dataRoot, 'fhir', 'synthea-r4-bundles');

describe.skipIf(!existsSync(syntheaBundles))('real Synthea R4 transaction Bundles', () => {
  it('a folder of Bundle .json files gives one Patient per file, their Conditions and Observations, nothing quarantined', async () => {
    const files = readdirSync(syntheaBundles).filter((f) => f.endsWith('.json'));
    const q = new Quarantine();
    const src = new NdjsonFhirSource(syntheaBundles);
    const all = await collect(src, ['Patient', 'Condition', 'Observation'], q);
    expect(q.records).toEqual([]);
    const count = (t: string) => all.filter((r) => r.resourceType === t).length;
    expect(count('Patient')).toBe(files.length);
    expect(count('Condition')).toBeGreaterThan(files.length);
    expect(count('Observation')).toBeGreaterThan(10 * files.length);
    expect(src.stats.bundleFiles).toBe(files.length);
    // Every Condition points at a Patient of the folder (urn:uuid references).
    const ids = new Set(all.filter((r) => r.resourceType === 'Patient').map((r) => r.id));
    for (const c of all.filter((r) => r.resourceType === 'Condition'))
      expect(ids.has(String((c.subject as { reference: string }).reference).replace('urn:uuid:', ''))).toBe(true);
  });
});

describe('FHIR folder: Bundles (transaction, collection, searchset) and NDJSON read alike', () => {
  it('reads NDJSON and the three Bundle types in one folder; a Bulk manifest is not data', async () => {
    const d = folder({
      'Patient.ndjson': JSON.stringify(patient('p1')) + '\n',
      'a.json': bundle('transaction', [patient('p2'), r4Condition('c2', 'p2')]),
      'b.json': bundle('collection', [patient('p3')]),
      'c.json': JSON.stringify({
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          { resource: patient('p4'), search: { mode: 'match' } },
          { resource: { resourceType: 'OperationOutcome', id: 'oo' }, search: { mode: 'outcome' } },
        ],
      }),
      'single-patient.json': JSON.stringify(patient('p5')),
      'manifest.json': JSON.stringify({ transactionTime: '2024-01-01T00:00:00Z', output: [] }),
    });
    const q = new Quarantine();
    const got = await collect(new NdjsonFhirSource(d), ['Patient', 'Condition'], q);
    expect(q.records).toEqual([]);
    expect(got.map((r) => r.id).sort()).toEqual(['c2', 'p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('malformed Bundles and entries are quarantined with file and entry index; the good entries are read', async () => {
    const d = folder({
      'bad-json.json': '{"resourceType": "Bundle", "type": "collection", "entry": [',
      'no-type.json': JSON.stringify({ resourceType: 'Bundle', entry: [{ resource: patient('x1') }] }),
      'history.json': bundle('history', [patient('x2')]),
      'entries.json': JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          42,
          { fullUrl: 'urn:uuid:x3' },
          { fullUrl: 'urn:uuid:ok-by-fullurl', resource: { resourceType: 'Patient', gender: 'male', birthDate: '1980-01-01' } },
          { resource: { resourceType: 'Patient', gender: 'male' } },
          { request: { method: 'DELETE', url: 'Patient/old' } },
          { resource: patient('good') },
        ],
      }),
      'not-fhir.json': JSON.stringify({ hello: 'world' }),
      'array.json': '[1,2,3]',
    });
    const q = new Quarantine();
    const got = await collect(new NdjsonFhirSource(d), ['Patient'], q);
    expect(got.map((r) => r.id).sort()).toEqual(['good', 'ok-by-fullurl']);
    const rec = q.records.map((r) => [r.source.slice(d.length + 1), r.reason, r.offset ?? null]);
    expect(rec).toEqual([
      ['array.json', 'not a FHIR Bundle or resource', null],
      ['bad-json.json', 'invalid JSON', null],
      ['entries.json', 'invalid Bundle entry', 0],
      ['entries.json', 'invalid Bundle entry', 1],
      ['entries.json', 'missing id', 3],
      ['history.json', 'unsupported Bundle type history', null],
      ['no-type.json', 'malformed Bundle', null],
      ['not-fhir.json', 'not a FHIR Bundle or resource', null],
    ]);
  });

  it('a Bundle file over maxBundleBytes and an NDJSON line over maxLineChars are quarantined, not read, never crash', async () => {
    const d = folder({
      'Patient.ndjson': [
        JSON.stringify(patient('a')),
        JSON.stringify({ ...patient('huge'), text: 'x'.repeat(5000) }),
        JSON.stringify(patient('b')),
      ].join('\n'),
      'big.json': bundle('collection', [{ ...patient('c'), text: 'y'.repeat(5000) }]),
    });
    const q = new Quarantine();
    const got = await collect(new NdjsonFhirSource(d, { maxLineChars: 1000, maxBundleBytes: 2000 }), ['Patient'], q);
    expect(got.map((r) => r.id)).toEqual(['a', 'b']);
    expect(q.records.map((r) => [r.source.slice(d.length + 1), r.reason, r.offset ?? null])).toEqual([
      ['Patient.ndjson', 'line too long', 2],
      ['big.json', 'Bundle file too large', null],
    ]);
  });
});

describe('FHIR release detection', () => {
  it('version strings, profiles and shapes', () => {
    expect(['1.0.2', '3.0.1', '3.0', '4.0.1', '4.3.0', '5.0.0', 'banana'].map(releaseOfVersion)).toEqual([
      'DSTU2',
      'STU3',
      'STU3',
      'R4',
      'R4B',
      'R5',
      'unknown',
    ]);
    expect(detectResourceRelease(stu3Condition('c', 'p') as FhirResource)?.release).toBe('STU3');
    expect(detectResourceRelease(r4Condition('c', 'p') as FhirResource)).toBeUndefined();
    expect(
      detectResourceRelease({
        resourceType: 'Patient',
        id: 'p',
        meta: { profile: ['http://hl7.org/fhir/STU3/StructureDefinition/Patient'] },
      })?.release,
    ).toBe('STU3');
    expect(detectResourceRelease({ resourceType: 'Encounter', id: 'e', class: [{ coding: [] }] })?.release).toBe('R5');
    expect(detectResourceRelease({ resourceType: 'Condition', id: 'c', patient: { reference: 'Patient/p' } })?.release).toBe('DSTU2');
  });

  it('an STU3 NDJSON export is refused as a whole with one record naming STU3: no patient is read', async () => {
    const d = folder({
      'Patient.ndjson': JSON.stringify(patient('p1')) + '\n',
      'Condition.ndjson': JSON.stringify(stu3Condition('c1', 'p1')) + '\n',
    });
    const q = new Quarantine();
    const got = await collect(new NdjsonFhirSource(d), ['Patient', 'Condition'], q);
    expect(got).toEqual([]);
    expect(q.records).toHaveLength(1);
    expect(q.records[0]!.reason).toBe('FHIR STU3 data (only R4 is read)');
    expect(q.records[0]!.source).toBe(d);
    expect(q.records[0]!.detail).toContain('Condition.clinicalStatus is a bare string');
  });

  it('an STU3 Bundle folder (meta.profile) is refused too', async () => {
    const stu3Patient = { ...patient('p1'), meta: { profile: ['http://hl7.org/fhir/3.0/StructureDefinition/Patient'] } };
    const d = folder({ 'a.json': bundle('collection', [{ ...r4Condition('c1', 'p1'), meta: stu3Patient.meta }, stu3Patient]) });
    const q = new Quarantine();
    expect(await collect(new NdjsonFhirSource(d), ['Patient', 'Condition'], q)).toEqual([]);
    expect(q.records.map((r) => r.reason)).toEqual(['FHIR STU3 data (only R4 is read)']);
  });

  it('one STU3-shaped resource deep in an R4 file is quarantined alone, with file and line', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify(r4Condition(`c${i}`, 'p1')));
    lines.push(JSON.stringify(stu3Condition('odd', 'p1')));
    const d = folder({ 'Patient.ndjson': JSON.stringify(patient('p1')), 'Condition.ndjson': lines.join('\n') });
    const q = new Quarantine();
    const got = await collect(new NdjsonFhirSource(d), ['Patient', 'Condition'], q);
    expect(got).toHaveLength(61);
    expect(q.records.map((r) => [r.source.slice(d.length + 1), r.reason, r.offset])).toEqual([
      ['Condition.ndjson', 'FHIR STU3 data (only R4 is read)', 61],
    ]);
  });
});

describe('FHIR server release (/metadata)', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));
  async function serve(fhirVersion: string | undefined, metadataStatus = 200): Promise<{ url: string; hits: string[] }> {
    const hits: string[] = [];
    const srv = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.setHeader('content-type', 'application/fhir+json');
      if (req.url?.endsWith('/metadata')) {
        res.statusCode = metadataStatus;
        res.end(JSON.stringify({ resourceType: 'CapabilityStatement', ...(fhirVersion ? { fhirVersion } : {}) }));
        return;
      }
      const type = /\/(\w+)\?/.exec(req.url ?? '')?.[1] ?? '';
      const entry =
        type === 'Patient' ? [{ resource: patient('p1') }] : type === 'Condition' ? [{ resource: stu3Condition('c1', 'p1') }] : [];
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/fhir`, hits };
  }

  it('a server declaring fhirVersion 3.0.1 is refused before any search, naming STU3 and the version', async () => {
    const s = await serve('3.0.1');
    const q = new Quarantine();
    expect(await collect(r4RestSource(new FhirRestSource({ baseUrl: s.url })), ['Patient', 'Condition'], q)).toEqual([]);
    expect(s.hits).toEqual(['/fhir/metadata']);
    expect(q.records).toHaveLength(1);
    expect(q.records[0]!.reason).toBe('FHIR STU3 data (only R4 is read)');
    expect(q.records[0]!.detail).toContain('fhirVersion 3.0.1');
  });

  it('an R4 server is read; an STU3-shaped resource on it is quarantined alone; no /metadata means resource checks only', async () => {
    for (const [version, status] of [
      ['4.0.1', 200],
      [undefined, 404],
    ] as const) {
      const s = await serve(version, status);
      const q = new Quarantine();
      const got = await collect(r4RestSource(new FhirRestSource({ baseUrl: s.url })), ['Patient', 'Condition'], q);
      expect(got.map((r) => r.id)).toEqual(['p1']);
      expect(q.records.map((r) => r.reason)).toEqual(['FHIR STU3 data (only R4 is read)']);
      expect(q.records[0]!.source).toContain('/Condition/c1');
    }
  });
});
