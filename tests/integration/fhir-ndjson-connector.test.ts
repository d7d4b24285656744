import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { NdjsonFhirSource } from '../../site-agent/connectors/fhir-ndjson.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';
import { readPatientTable } from '../../site-agent/patients.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function folder(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-ndjson-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

async function collect(dir: string, types: string[]): Promise<{ resources: FhirResource[]; q: Quarantine }> {
  const q = new Quarantine();
  const resources: FhirResource[] = [];
  for await (const r of new NdjsonFhirSource(dir).resources(types, q)) resources.push(r);
  return { resources, q };
}

const P = (id: string, extra = '') => `{"resourceType":"Patient","id":"${id}","gender":"male","birthDate":"1950-02-03"${extra}}`;
const C = (id: string, pid: string, code = '59621000') =>
  `{"resourceType":"Condition","id":"${id}","subject":{"reference":"Patient/${pid}"},"code":{"coding":[{"system":"http://snomed.info/sct","code":"${code}"}]}}`;

describe('FHIR NDJSON connector', () => {
  it('quarantines bad lines with file and line number and keeps going', async () => {
    const dir = folder({
      'Patient.ndjson': [
        P('p1'),
        '',
        '{"resourceType":"Patient","id":"p2", oops',
        '   ',
        P('p3'),
        '{"resourceType":"Condition","id":"x"}',
        '{"resourceType":"Patient"}',
        '[1,2]',
        P('p4'),
        '',
      ].join('\n'),
      'Condition.000.ndjson': [C('c1', 'p1'), C('c2', 'p3', '44054006'), C('c3', 'nobody')].join('\r\n') + '\r\n',
      'Condition.001.ndjson': C('c4', 'p4', '195967001'),
      'README.txt': 'not ndjson',
      'Encounter.ndjson': '{"resourceType":"Encounter","id":"e1"}\n',
    });
    const { resources, q } = await collect(dir, ['Patient', 'Condition']);
    expect(resources.map((r) => r.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'p1', 'p3', 'p4']);
    const recs = q.records.map((r) => ({ file: r.source.split('/').pop(), reason: r.reason, line: r.offset }));
    expect(recs).toEqual([
      { file: 'Patient.ndjson', reason: 'invalid JSON', line: 3 },
      { file: 'Patient.ndjson', reason: 'wrong resourceType', line: 6 },
      { file: 'Patient.ndjson', reason: 'missing id', line: 7 },
      { file: 'Patient.ndjson', reason: 'not a JSON object', line: 8 },
    ]);
    expect(q.records[1].detail).toBe('Condition in a Patient file');
    expect(q.countsByReason()).toEqual({
      'fhir: invalid JSON': 1,
      'fhir: wrong resourceType': 1,
      'fhir: missing id': 1,
      'fhir: not a JSON object': 1,
    });
  });

  it('reads gzipped files and a BOM, and only the requested types', async () => {
    const dir = folder({
      'Patient.ndjson.gz': gzipSync(Buffer.from('\ufeff' + P('g1') + '\n' + P('g2') + '\n')),
      'Condition.ndjson': C('c1', 'g1') + '\n',
    });
    const { resources, q } = await collect(dir, ['Patient']);
    expect(resources.map((r) => r.id)).toEqual(['g1', 'g2']);
    expect(q.records).toEqual([]);
  });

  it('a missing folder is a quarantine record, not a throw', async () => {
    const { resources, q } = await collect('/nonexistent/fedsynth', ['Patient']);
    expect(resources).toEqual([]);
    expect(q.records[0]).toMatchObject({ modality: 'fhir', reason: 'folder not readable' });
  });

  it('patients.ts: column-major table, counts, unlinked resources, quarantine merged', async () => {
    const dir = folder({
      'Patient.ndjson': [
        P('p1'),
        P('p2', ',"name":[{"family":"Smith"}]'),
        '{"resourceType":"Patient","id":"p3","gender":"female"}',
        'garbage',
      ].join('\n'),
      'Condition.ndjson': [C('c1', 'p1'), C('c2', 'p1'), C('c3', 'p2', '13645005'), C('c4', 'ghost'), C('c5', 'p3')].join('\n'),
      'Observation.ndjson':
        '{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p2"},"effectiveDateTime":"2024-01-01","code":{"coding":[{"system":"http://loinc.org","code":"39156-5"}]},"valueQuantity":{"value":31.2,"unit":"kg/m2","system":"http://unitsofmeasure.org","code":"kg/m2"}}\n',
    });
    const res = await readPatientTable(new NdjsonFhirSource(dir), schema);
    expect(res.table.n).toBe(2);
    expect(res.table.names).toEqual(schema.attributes.map((a) => a.name));
    expect(res.table.columns).toHaveLength(schema.attributes.length);
    for (const c of res.table.columns) {
      expect(c).toBeInstanceOf(Uint16Array);
      expect(c.length).toBe(2);
    }
    const col = (n: string) => Array.from(res.table.columns[res.table.names.indexOf(n)]);
    expect(res.patientIds).toEqual(['p1', 'p2']);
    expect(col('hypertension')).toEqual([1, 0]);
    expect(col('copd')).toEqual([0, 1]);
    expect(col('bmi')).toEqual([6, 3]);
    expect(col('age')).toEqual([9, 9]); // 74 years → 70-79
    expect(res.counts.patients).toBe(2);
    expect(res.counts.resourcesByType).toEqual({ Patient: 3, Condition: 5, Observation: 1 });
    expect(res.counts.unlinked).toBe(2); // c4 (ghost) and c5 (quarantined p3)
    expect(res.quarantine.countsByReason()).toEqual({ 'fhir: invalid JSON': 1, 'fhir: Patient without birthDate': 1 });
  });
});

// FEDSYNTH_SAMPLE_DATA names the shared data root (…/data); a path straight to the synthea-10 folder also works.
const envDir = process.env.FEDSYNTH_SAMPLE_DATA;
const sampleDir = resolve(
  envDir
    ? existsSync(join(envDir, 'Patient.000.ndjson'))
      ? envDir
      : join(envDir, 'fhir/synthea-10')
    : new URL('../../../shared/data/fhir/synthea-10', import.meta.url).pathname,
);
const haveSample = existsSync(join(sampleDir, 'Patient.000.ndjson'));
if (!haveSample)
  console.warn(
    `[fhir-ndjson] skipping the Synthea sample test: ${sampleDir} not found (set FEDSYNTH_SAMPLE_DATA to the shared data folder)`,
  );

describe.skipIf(!haveSample)('FHIR NDJSON connector on the real Synthea bulk export (synthea-10)', () => {
  it('reads 13 Patient resources and encodes them without crashing', async () => {
    const res = await readPatientTable(new NdjsonFhirSource(sampleDir), schema);
    expect(res.counts.resourcesByType.Patient).toBe(13);
    expect(res.table.n + res.counts.quarantinedPatients).toBe(13);
    expect(res.table.n).toBe(13);
    expect(res.counts.resourcesByType.Condition).toBe(555);
    expect(res.counts.unlinked).toBe(0);
    const col = (n: string) => Array.from(res.table.columns[res.table.names.indexOf(n)]);
    // Known content of the sample: 9 female / 4 male; 1 type 2 diabetes; hypertension in 2 patients.
    expect(col('sex').filter((v) => v === 0)).toHaveLength(9);
    expect(col('type2_diabetes').reduce((a, b) => a + b, 0)).toBe(1);
    expect(col('hypertension').reduce((a, b) => a + b, 0)).toBe(2);
    // This copy has no Observation file: every lab is "missing".
    expect(new Set(col('hba1c'))).toEqual(new Set([4]));
    expect(res.quarantine.records).toEqual([]);
  });
});
