// OMOP CDM v5.4 on the PostgreSQL test server: a schema made, filled and dropped here, with a
// small vocabulary subset (SNOMED, ICD10CM, LOINC, UCUM, Gender) and "Maps to" rows, read through
// the same encoding, linkage and quarantine as FHIR, and through `agent inspect`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { OmopSource } from '../../site-agent/connectors/omop.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';
import { inspectSite } from '../../site-agent/inspect.ts';
import { loadMultimodalSiteData } from '../../site-agent/site-data.ts';
import { TEST_PG_URL } from '../support/db.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url), 'utf8'));
const S = `omop_test_${randomBytes(4).toString('hex')}`;
const client = new pg.Client({ connectionString: TEST_PG_URL });

const DDL = `
CREATE SCHEMA ${S};
CREATE TABLE ${S}.concept (concept_id integer PRIMARY KEY, concept_name varchar(255), domain_id varchar(20), vocabulary_id varchar(20),
  concept_class_id varchar(20), standard_concept varchar(1), concept_code varchar(50), valid_start_date date, valid_end_date date, invalid_reason varchar(1));
CREATE TABLE ${S}.concept_relationship (concept_id_1 integer, concept_id_2 integer, relationship_id varchar(20),
  valid_start_date date, valid_end_date date, invalid_reason varchar(1));
CREATE TABLE ${S}.cdm_source (cdm_source_name varchar(255), cdm_version varchar(10));
CREATE TABLE ${S}.person (person_id bigint PRIMARY KEY, gender_concept_id integer, year_of_birth integer, month_of_birth integer,
  day_of_birth integer, birth_datetime timestamp, race_concept_id integer, ethnicity_concept_id integer, person_source_value varchar(50));
CREATE TABLE ${S}.death (person_id bigint, death_date date, death_type_concept_id integer);
CREATE TABLE ${S}.condition_occurrence (condition_occurrence_id bigint PRIMARY KEY, person_id bigint, condition_concept_id integer,
  condition_start_date date, condition_type_concept_id integer, condition_source_concept_id integer, condition_source_value varchar(50));
CREATE TABLE ${S}.measurement (measurement_id bigint PRIMARY KEY, person_id bigint, measurement_concept_id integer, measurement_date date,
  measurement_datetime timestamp, measurement_type_concept_id integer, value_as_number numeric, value_as_concept_id integer, unit_concept_id integer);
CREATE TABLE ${S}.observation (observation_id bigint PRIMARY KEY, person_id bigint, observation_concept_id integer, observation_date date,
  observation_datetime timestamp, observation_type_concept_id integer, value_as_number numeric, value_as_string varchar(60), unit_concept_id integer);
CREATE TABLE ${S}.note (note_id bigint PRIMARY KEY, person_id bigint, note_date date, note_datetime timestamp, note_type_concept_id integer,
  note_class_concept_id integer, note_title varchar(250), note_text text, encoding_concept_id integer, language_concept_id integer);
`;

const CONCEPTS: [number, string, string, string][] = [
  [8507, 'Gender', 'M', ''],
  [8532, 'Gender', 'F', ''],
  [320128, 'SNOMED', '59621000', 'S'], // essential hypertension
  [201826, 'SNOMED', '44054006', 'S'], // type 2 diabetes
  [45591453, 'ICD10CM', 'I10', ''], // non-standard: maps to 320128
  [3004410, 'LOINC', '4548-4', 'S'], // HbA1c
  [8554, 'UCUM', '%', 'S'],
  [8840, 'UCUM', 'mg/dL', 'S'],
  [3028437, 'LOINC', '18262-6', 'S'], // LDL
];

beforeAll(async () => {
  await client.connect();
  await client.query(DDL);
  for (const [id, vocab, code, std] of CONCEPTS)
    await client.query(`INSERT INTO ${S}.concept (concept_id, vocabulary_id, concept_code, standard_concept) VALUES ($1,$2,$3,$4)`, [
      id,
      vocab,
      code,
      std || null,
    ]);
  await client.query(`INSERT INTO ${S}.concept_relationship VALUES (45591453, 320128, 'Maps to', '2000-01-01', '2099-12-31', NULL)`);
  // An invalidated mapping is not followed.
  await client.query(`INSERT INTO ${S}.concept_relationship VALUES (45591453, 201826, 'Maps to', '2000-01-01', '2010-12-31', 'D')`);
  await client.query(`INSERT INTO ${S}.cdm_source VALUES ('test site', 'v5.4')`);
  await client.query(`INSERT INTO ${S}.person (person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, person_source_value) VALUES
    (1, 8532, 1960, 3, 15, 'MRN-1'), (2, 8507, 1980, NULL, NULL, 'MRN-2'), (3, 8507, 1950, 1, 1, NULL), (4, NULL, 1970, 1, 1, NULL), (5, 8532, NULL, NULL, NULL, NULL)`);
  await client.query(`INSERT INTO ${S}.death VALUES (3, '2000-06-30', 0)`);
  await client.query(`INSERT INTO ${S}.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, condition_start_date, condition_source_concept_id) VALUES
    (10, 1, 201826, '2015-01-01', 0),
    (11, 2, 0, '2016-01-01', 45591453),
    (12, NULL, 320128, '2016-01-01', 0),
    (13, 1, 0, '2016-01-01', 0),
    (14, 1, 999999, '2016-01-01', NULL)`);
  await client.query(`INSERT INTO ${S}.measurement (measurement_id, person_id, measurement_concept_id, measurement_date, measurement_datetime, value_as_number, unit_concept_id) VALUES
    (20, 1, 3004410, '2020-01-01', '2020-01-01 08:00:00', 7.1, 8554),
    (21, 1, 3004410, '2021-01-01', NULL, 9.2, 8554),
    (22, 2, 3028437, '2021-01-01', NULL, 150, 8840),
    (23, 2, 3004410, '2021-01-01', NULL, 6.0, 8840)`);
  await client.query(`INSERT INTO ${S}.observation (observation_id, person_id, observation_concept_id, observation_date, value_as_number, unit_concept_id) VALUES
    (30, 3, 3028437, '1999-01-01', 99, 8840)`);
  await client.query(`INSERT INTO ${S}.note (note_id, person_id, note_date, note_text) VALUES
    (40, 1, '2021-02-02', 'Assessment: long-standing type 2 diabetes, on metformin.'), (41, 2, '2021-02-02', '   ')`);
});
afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`).catch(() => {});
  await client.end();
});

async function all(src: OmopSource, types: string[], q: Quarantine): Promise<FhirResource[]> {
  const out: FhirResource[] = [];
  for await (const r of src.resources(types, q)) out.push(r);
  return out;
}

describe('OMOP CDM v5.4 connector', () => {
  it('rows become R4 resources: concepts mapped through "Maps to", UCUM units, birth and death dates; broken rows quarantined', async () => {
    const q = new Quarantine();
    const src = new OmopSource({ url: TEST_PG_URL, schema: S, pageSize: 2 });
    const res = await all(src, ['Patient', 'Condition', 'Observation', 'DocumentReference'], q);
    const byId = new Map(res.map((r) => [`${r.resourceType}/${r.id}`, r]));
    expect(byId.get('Patient/1')).toMatchObject({ gender: 'female', birthDate: '1960-03-15', identifier: [{ value: 'MRN-1' }] });
    expect(byId.get('Patient/2')).toMatchObject({ gender: 'male', birthDate: '1980' });
    expect(byId.get('Patient/3')).toMatchObject({ deceasedDateTime: '2000-06-30' });
    expect(byId.get('Patient/4')!.gender).toBeUndefined();
    expect((byId.get('Condition/co-11')!.code as { coding: unknown[] }).coding).toEqual([
      { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10' },
      { system: 'http://snomed.info/sct', code: '59621000' },
    ]);
    expect(byId.get('Observation/m-20')).toMatchObject({
      effectiveDateTime: '2020-01-01T08:00:00',
      valueQuantity: { value: 7.1, system: 'http://unitsofmeasure.org', code: '%' },
    });
    expect(byId.get('DocumentReference/note-40')).toBeDefined();
    expect(src.stats.cdmVersion).toBe('v5.4');
    expect(src.stats.missingTables).toEqual(['image_occurrence']);
    expect(q.records.map((r) => [r.source, r.reason, r.offset])).toEqual([
      [`omop:${S}.condition_occurrence`, 'OMOP row without person_id', 12],
      [`omop:${S}.condition_occurrence`, 'OMOP row with concept_id 0 (unmapped)', 13],
      [`omop:${S}.condition_occurrence`, 'OMOP concept not in the vocabulary', 14],
      [`omop:${S}.note`, 'OMOP note without text', 41],
    ]);
  });

  it('through the site pipeline: one row per person, conditions, latest lab in the schema unit, notes; inspect names the source', async () => {
    const data = { kind: 'omop' as const, url: TEST_PG_URL, schema: S, fhirNotes: true };
    const site = await loadMultimodalSiteData({ data }, schema);
    // Person 5 has no year of birth (quarantined by the encoder); 4 has no gender.
    const rows = new Map(site.patientIds.map((id, i) => [id, i]));
    expect([...rows.keys()].sort()).toEqual(['1', '2', '3']);
    const col = (name: string) => site.data.columns[schema.attributes.findIndex((a) => a.name === name)]!;
    expect(col('type2_diabetes')[rows.get('1')!]).toBe(1);
    expect(col('hypertension')[rows.get('2')!]).toBe(1); // ICD10CM I10 → SNOMED 59621000
    expect(col('hypertension')[rows.get('1')!]).toBe(0);
    const hba1c = schema.attributes.find((a) => a.name === 'hba1c')!;
    if (hba1c.kind !== 'lab') throw new Error('schema changed');
    // The latest HbA1c of person 1 is 9.2 % (≥ 8.0: the top bin); person 2's is in mg/dL, not the schema unit.
    expect(col('hba1c')[rows.get('1')!]).toBe(hba1c.edges.length);
    expect(col('hba1c')[rows.get('2')!]).toBe(hba1c.edges.length + 1);
    expect(col('note_type2_diabetes')[rows.get('1')!]).toBe(1);
    const reasons = site.quarantine.countsByReason();
    expect(Object.keys(reasons).some((k) => /unit/.test(k))).toBe(true);

    const report = await inspectSite({ data }, schema);
    expect(report.patients.fhir).toBe(3);
    expect(report.sources.fhir).toContain(`OMOP CDM`);
    expect(report.sources.fhir).toContain(S);
    expect(report.quarantine.items.some((i) => i.source === `omop:${S}.condition_occurrence` && i.offset === 12)).toBe(true);
  });

  it('an unreachable database, a missing schema and a bad schema name are reported, never thrown', async () => {
    const q = new Quarantine();
    expect(await all(new OmopSource({ url: 'postgres://nobody:secret@127.0.0.1:1/none', schema: S }), ['Patient'], q)).toEqual([]);
    expect(q.records[0]!.reason).toBe('OMOP database unreachable');
    expect(q.records[0]!.source).not.toContain('secret');
    const q2 = new Quarantine();
    expect(await all(new OmopSource({ url: TEST_PG_URL, schema: `${S}_absent` }), ['Patient'], q2)).toEqual([]);
    expect(q2.records.map((r) => r.reason)).toEqual(['OMOP table missing']);
    expect(() => new OmopSource({ url: TEST_PG_URL, schema: 'x"; DROP TABLE person; --' })).toThrow(/identifier/);
  });
});
