/**
 * OMOP CDM v5.4 connector (PostgreSQL): a FhirSource that reads person (+ death),
 * condition_occurrence, measurement, observation, note and, where the Medical Imaging extension
 * is installed, image_occurrence, and presents each row as the FHIR R4 resource the rest of the
 * agent already encodes, links and quarantines (Patient, Condition, Observation,
 * DocumentReference, ImagingStudy). So an OMOP site goes through exactly the same encoding rules
 * and contribution bound as a FHIR site.
 *
 * Concepts: every concept id becomes the coding of its own concept plus the codings of its
 * "Maps to" targets (concept_relationship, valid rows only), so an ICD10CM source concept reaches
 * the schema's SNOMED code and a standard concept is matched as it is. Vocabulary ids map to FHIR
 * systems (SNOMED, LOINC, ICD10CM, ICD10, UCUM, RxNorm). Rows are read in primary-key order, a
 * page at a time (keyset pagination), so memory is bounded by a page and the concept cache.
 *
 * Never throws on bad input: an unreachable database, a missing table, a row without person_id
 * or with concept 0 / a concept not in the vocabulary is quarantined (source
 * `omop:<schema>.<table>`, offset = the row's primary key) and reading goes on.
 */
import pg from 'pg';
import type { FhirResource, FhirSource, Quarantine } from './types.ts';

export interface OmopConfig {
  /** postgres:// connection URL (credentials stay in site.yaml; never logged). */
  url: string;
  /** Schema of the CDM tables. */
  schema: string;
  /** Schema of the vocabulary tables (concept, concept_relationship); default: `schema`. */
  vocabularySchema?: string;
  /** Rows per page (default 5000). */
  pageSize?: number;
}

export interface OmopStats {
  rows: Record<string, number>;
  missingTables: string[];
  cdmVersion?: string;
}

const VOCABULARY_SYSTEM: Record<string, string> = {
  SNOMED: 'http://snomed.info/sct',
  LOINC: 'http://loinc.org',
  ICD10CM: 'http://hl7.org/fhir/sid/icd-10-cm',
  ICD10: 'http://hl7.org/fhir/sid/icd-10',
  UCUM: 'http://unitsofmeasure.org',
  RxNorm: 'http://www.nlm.nih.gov/research/umls/rxnorm',
};
/** OMOP's standard gender concepts (Gender vocabulary M/F). */
const GENDER: Record<string, string> = { '8507': 'male', '8532': 'female' };

const IDENT = /^[a-z_][a-z0-9_$]*$/i;

interface Coding {
  system: string;
  code: string;
}
interface ConceptInfo {
  vocabulary: string;
  code: string;
  codings: Coding[];
}

/** Redacts the password of a connection URL for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Date/timestamp columns as text (pg would turn a DATE into a local-time JS Date). */
const TEXT_OIDS = new Set([1082, 1114, 1184]);
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    TEXT_OIDS.has(oid) ? (v: string) => v : pg.types.getTypeParser(oid, format as 'text'),
};

const isoTime = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.replace(' ', 'T') : undefined);

interface TableReader {
  table: string;
  key: string;
  columns: string;
  toResource(row: Record<string, unknown>, concepts: Map<string, ConceptInfo>): FhirResource | string;
  conceptColumns: string[];
}

export class OmopSource implements FhirSource {
  readonly stats: OmopStats = { rows: {}, missingTables: [] };
  private readonly cdm: string;
  private readonly vocab: string;
  private readonly concepts = new Map<string, ConceptInfo | null>();

  constructor(private readonly config: OmopConfig) {
    for (const s of [config.schema, config.vocabularySchema ?? config.schema]) {
      if (!IDENT.test(s)) throw new Error(`OMOP schema name must be a plain SQL identifier, got ${JSON.stringify(s)}`);
    }
    this.cdm = `"${config.schema}"`;
    this.vocab = `"${config.vocabularySchema ?? config.schema}"`;
  }

  get location(): string {
    return `omop:${this.config.schema}`;
  }

  async *resources(resourceTypes: readonly string[], quarantine: Quarantine): AsyncGenerator<FhirResource> {
    const client = new pg.Client({ connectionString: this.config.url, types, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (e) {
      quarantine.add({
        source: redactUrl(this.config.url),
        modality: 'fhir',
        reason: 'OMOP database unreachable',
        detail: (e as Error).message,
      });
      return;
    }
    client.on('error', () => {});
    try {
      const present = await this.tables(client);
      if (!present.has('person')) {
        quarantine.add({
          source: this.location,
          modality: 'fhir',
          reason: 'OMOP table missing',
          detail: `${this.config.schema}.person does not exist`,
        });
        return;
      }
      for (const t of ['concept', 'concept_relationship'])
        if (!present.has(`vocab:${t}`)) {
          quarantine.add({
            source: this.location,
            modality: 'fhir',
            reason: 'OMOP vocabulary table missing',
            detail: `${t}: concept ids cannot be mapped to codes`,
          });
          return;
        }
      await this.readCdmVersion(client, present);
      for (const reader of this.readers(new Set(resourceTypes), present)) yield* this.readTable(client, reader, quarantine);
    } catch (e) {
      quarantine.add({ source: this.location, modality: 'fhir', reason: 'OMOP query failed', detail: (e as Error).message });
    } finally {
      await client.end().catch(() => {});
    }
  }

  private async tables(client: pg.Client): Promise<Set<string>> {
    const res = await client.query<{ table_schema: string; table_name: string }>(
      'SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY($1)',
      [[this.config.schema, this.config.vocabularySchema ?? this.config.schema]],
    );
    const out = new Set<string>();
    for (const r of res.rows) {
      if (r.table_schema === this.config.schema) out.add(r.table_name);
      if (r.table_schema === (this.config.vocabularySchema ?? this.config.schema)) out.add(`vocab:${r.table_name}`);
    }
    for (const t of ['death', 'condition_occurrence', 'measurement', 'observation', 'note', 'image_occurrence'])
      if (!out.has(t) && !this.stats.missingTables.includes(t)) this.stats.missingTables.push(t);
    return out;
  }

  private async readCdmVersion(client: pg.Client, present: Set<string>): Promise<void> {
    if (!present.has('cdm_source') || this.stats.cdmVersion !== undefined) return;
    const res = await client.query<{ cdm_version: string | null }>(`SELECT cdm_version FROM ${this.cdm}.cdm_source LIMIT 1`);
    const v = res.rows[0]?.cdm_version;
    if (v) this.stats.cdmVersion = v;
  }

  private readers(wanted: Set<string>, present: Set<string>): TableReader[] {
    const out: TableReader[] = [];
    const cdm = this.cdm;
    if (wanted.has('Patient')) {
      const death = present.has('death');
      out.push({
        table: 'person',
        key: 'person_id',
        columns: `p.person_id, p.gender_concept_id, p.year_of_birth, p.month_of_birth, p.day_of_birth, p.person_source_value${
          death ? `, (SELECT min(d.death_date) FROM ${cdm}.death d WHERE d.person_id = p.person_id) AS death_date` : ''
        }`,
        conceptColumns: [],
        toResource: (row) => personResource(row),
      });
    }
    if (wanted.has('Condition') && present.has('condition_occurrence'))
      out.push({
        table: 'condition_occurrence',
        key: 'condition_occurrence_id',
        columns: 'p.condition_occurrence_id, p.person_id, p.condition_concept_id, p.condition_source_concept_id, p.condition_start_date',
        conceptColumns: ['condition_concept_id', 'condition_source_concept_id'],
        toResource: (row, c) => conditionResource(row, c),
      });
    if (wanted.has('Observation')) {
      for (const [table, prefix] of [
        ['measurement', 'measurement'],
        ['observation', 'observation'],
      ] as const) {
        if (!present.has(table)) continue;
        out.push({
          table,
          key: `${prefix}_id`,
          columns: `p.${prefix}_id, p.person_id, p.${prefix}_concept_id, p.${prefix}_date, p.${prefix}_datetime, p.value_as_number, p.unit_concept_id`,
          conceptColumns: [`${prefix}_concept_id`, 'unit_concept_id'],
          toResource: (row, c) => observationResource(table, prefix, row, c),
        });
      }
    }
    if (wanted.has('DocumentReference') && present.has('note'))
      out.push({
        table: 'note',
        key: 'note_id',
        columns: 'p.note_id, p.person_id, p.note_date, p.note_text',
        conceptColumns: [],
        toResource: (row) => noteResource(row),
      });
    if (wanted.has('ImagingStudy') && present.has('image_occurrence'))
      out.push({
        table: 'image_occurrence',
        key: 'image_occurrence_id',
        columns: 'p.image_occurrence_id, p.person_id, p.image_occurrence_date, p.image_study_uid, p.modality_concept_id',
        conceptColumns: ['modality_concept_id'],
        toResource: (row, c) => imagingStudyResource(row, c),
      });
    return out;
  }

  private async *readTable(client: pg.Client, t: TableReader, quarantine: Quarantine): AsyncGenerator<FhirResource> {
    const pageSize = this.config.pageSize ?? 5000;
    const source = `omop:${this.config.schema}.${t.table}`;
    let after: string | null = null;
    this.stats.rows[t.table] ??= 0;
    for (;;) {
      const res: pg.QueryResult<Record<string, unknown>> = await client.query(
        `SELECT ${t.columns} FROM ${this.cdm}.${t.table} p WHERE ($1::bigint IS NULL OR p.${t.key} > $1::bigint) ORDER BY p.${t.key} LIMIT ${pageSize}`,
        [after],
      );
      if (res.rows.length === 0) return;
      const concepts = await this.lookup(client, res.rows, t.conceptColumns);
      for (const row of res.rows) {
        this.stats.rows[t.table]!++;
        const r = t.toResource(row, concepts);
        if (typeof r === 'string') {
          quarantine.add({ source, modality: 'fhir', reason: r, offset: Number(row[t.key]) });
          continue;
        }
        yield r;
      }
      after = String(res.rows[res.rows.length - 1]![t.key]);
      if (res.rows.length < pageSize) return;
    }
  }

  /** Concepts of the page's concept columns, with their "Maps to" codings (cached across pages). */
  private async lookup(client: pg.Client, rows: Record<string, unknown>[], columns: string[]): Promise<Map<string, ConceptInfo>> {
    const need = new Set<string>();
    for (const row of rows)
      for (const c of columns) {
        const id = row[c];
        if (id !== null && id !== undefined && String(id) !== '0' && !this.concepts.has(String(id))) need.add(String(id));
      }
    if (need.size) {
      const res = await client.query<{
        id: string;
        vocabulary_id: string;
        concept_code: string;
        to_vocabulary: string | null;
        to_code: string | null;
      }>(
        `SELECT c.concept_id::text AS id, c.vocabulary_id, c.concept_code, m.vocabulary_id AS to_vocabulary, m.concept_code AS to_code
           FROM ${this.vocab}.concept c
           LEFT JOIN ${this.vocab}.concept_relationship r
             ON r.concept_id_1 = c.concept_id AND r.relationship_id = 'Maps to' AND r.invalid_reason IS NULL
           LEFT JOIN ${this.vocab}.concept m ON m.concept_id = r.concept_id_2
          WHERE c.concept_id = ANY($1::bigint[])`,
        [[...need]],
      );
      for (const id of need) this.concepts.set(id, null);
      for (const r of res.rows) {
        let info = this.concepts.get(r.id);
        if (!info) {
          info = { vocabulary: r.vocabulary_id, code: r.concept_code, codings: [] };
          addCoding(info.codings, r.vocabulary_id, r.concept_code);
          this.concepts.set(r.id, info);
        }
        if (r.to_vocabulary && r.to_code) addCoding(info.codings, r.to_vocabulary, r.to_code);
      }
    }
    const out = new Map<string, ConceptInfo>();
    for (const [id, info] of this.concepts) if (info) out.set(id, info);
    return out;
  }
}

function addCoding(list: Coding[], vocabulary: string, code: string): void {
  const system = VOCABULARY_SYSTEM[vocabulary];
  if (!system || list.some((c) => c.system === system && c.code === code)) return;
  list.push({ system, code });
}

const ref = (personId: unknown) => ({ reference: `Patient/${String(personId)}` });

function personResource(row: Record<string, unknown>): FhirResource | string {
  const year = row.year_of_birth;
  const r: FhirResource = { resourceType: 'Patient', id: String(row.person_id) };
  // A gender concept outside M/F is passed on as 'unknown': the encoder quarantines what the schema lacks.
  if (row.gender_concept_id !== null && row.gender_concept_id !== undefined) r.gender = GENDER[String(row.gender_concept_id)] ?? 'unknown';
  if (typeof year === 'number') {
    const m = typeof row.month_of_birth === 'number' ? row.month_of_birth : undefined;
    const d = typeof row.day_of_birth === 'number' ? row.day_of_birth : undefined;
    r.birthDate = m ? `${year}-${String(m).padStart(2, '0')}${d ? `-${String(d).padStart(2, '0')}` : ''}` : String(year);
  }
  if (typeof row.death_date === 'string') r.deceasedDateTime = row.death_date;
  if (typeof row.person_source_value === 'string' && row.person_source_value !== '')
    r.identifier = [{ system: 'urn:omop:person_source_value', value: row.person_source_value }];
  return r;
}

function codingsOf(row: Record<string, unknown>, columns: string[], concepts: Map<string, ConceptInfo>): Coding[] | string {
  const out: Coding[] = [];
  let zero = true;
  for (const c of columns) {
    const id = row[c];
    if (id === null || id === undefined || String(id) === '0') continue;
    zero = false;
    for (const coding of concepts.get(String(id))?.codings ?? [])
      if (!out.some((o) => o.system === coding.system && o.code === coding.code)) out.push(coding);
  }
  if (zero) return 'OMOP row with concept_id 0 (unmapped)';
  if (out.length === 0) return 'OMOP concept not in the vocabulary';
  return out;
}

function conditionResource(row: Record<string, unknown>, concepts: Map<string, ConceptInfo>): FhirResource | string {
  if (row.person_id === null) return 'OMOP row without person_id';
  const codings = codingsOf(row, ['condition_concept_id', 'condition_source_concept_id'], concepts);
  if (typeof codings === 'string') return codings;
  return {
    resourceType: 'Condition',
    id: `co-${row.condition_occurrence_id}`,
    subject: ref(row.person_id),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: codings },
    ...(isoTime(row.condition_start_date) ? { onsetDateTime: isoTime(row.condition_start_date) } : {}),
  };
}

function observationResource(
  table: string,
  prefix: string,
  row: Record<string, unknown>,
  concepts: Map<string, ConceptInfo>,
): FhirResource | string {
  if (row.person_id === null) return 'OMOP row without person_id';
  const codings = codingsOf(row, [`${prefix}_concept_id`], concepts);
  if (typeof codings === 'string') return codings;
  const r: FhirResource = {
    resourceType: 'Observation',
    id: `${table === 'measurement' ? 'm' : 'o'}-${row[`${prefix}_id`]}`,
    status: 'final',
    subject: ref(row.person_id),
    code: { coding: codings },
  };
  const t = isoTime(row[`${prefix}_datetime`]) ?? isoTime(row[`${prefix}_date`]);
  if (t) r.effectiveDateTime = t;
  const value = row.value_as_number === null || row.value_as_number === undefined ? undefined : Number(row.value_as_number);
  if (value !== undefined && Number.isFinite(value)) {
    const unit = concepts.get(String(row.unit_concept_id));
    r.valueQuantity = { value, ...(unit?.vocabulary === 'UCUM' ? { system: VOCABULARY_SYSTEM.UCUM, code: unit.code } : {}) };
  }
  return r;
}

function noteResource(row: Record<string, unknown>): FhirResource | string {
  if (row.person_id === null) return 'OMOP row without person_id';
  if (typeof row.note_text !== 'string' || row.note_text.trim() === '') return 'OMOP note without text';
  return {
    resourceType: 'DocumentReference',
    id: `note-${row.note_id}`,
    status: 'current',
    subject: ref(row.person_id),
    ...(isoTime(row.note_date) ? { date: isoTime(row.note_date) } : {}),
    content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: Buffer.from(row.note_text, 'utf8').toString('base64') } }],
  };
}

function imagingStudyResource(row: Record<string, unknown>, concepts: Map<string, ConceptInfo>): FhirResource | string {
  if (row.person_id === null) return 'OMOP row without person_id';
  if (typeof row.image_study_uid !== 'string' || row.image_study_uid === '') return 'OMOP image_occurrence without image_study_uid';
  const modality = concepts.get(String(row.modality_concept_id));
  return {
    resourceType: 'ImagingStudy',
    id: `img-${row.image_occurrence_id}`,
    status: 'available',
    subject: ref(row.person_id),
    identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${row.image_study_uid}` }],
    ...(modality ? { modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: modality.code }] } : {}),
    ...(isoTime(row.image_occurrence_date) ? { started: isoTime(row.image_occurrence_date) } : {}),
  };
}
