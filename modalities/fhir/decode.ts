/**
 * Model features → FHIR R4 (coordinator side). Pure: no I/O.
 *
 * A synthetic row (codes in schema attribute order) becomes one Patient, one Condition per
 * condition indicator set to 1 (the schema's first SNOMED CT code and display) and one
 * Observation per lab that is not "missing" (the first LOINC code, a value drawn uniformly inside
 * the bin and clipped to the schema's plausible range, rounded to its decimals, with its UCUM
 * unit). Everything random comes from the seeded Rng, ids included, so the same seed gives the
 * same resources byte for byte. Encoding the decoded resources gives back the row.
 */
import { LOINC_SYSTEM, UCUM_SYSTEM, CODE_SYSTEMS, labBin, labMissingCode, type LabAttribute, type Schema } from '../../schema/schema.ts';
import { Rng, type SeedLike } from '../../model/rng.ts';
import type { FhirResourceLike } from './types.ts';

const DAY_MS = 86_400_000;

/** Marks resources as synthetic test data (HL7 v3 ActReason HTEST). */
export const SYNTHETIC_TAG = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  code: 'HTEST',
  display: 'test health data',
} as const;

export interface DecodeOptions {
  /** Identifier system for the synthetic patient number (default urn:fedsynth:synthetic). */
  identifierSystem?: string;
  /** Value of the identifier (e.g. the row number in the cohort). */
  identifierValue?: string;
}

export interface DecodedPatient {
  patient: FhirResourceLike;
  conditions: FhirResourceLike[];
  observations: FhirResourceLike[];
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function isoDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** A value inside bin `bin` of a lab, on the schema's decimal grid. */
export function drawLabValue(lab: LabAttribute, bin: number, rng: Rng): number {
  const e = lab.edges;
  const lo = bin === 0 ? lab.range[0] : e[bin - 1];
  const hi = bin === e.length ? lab.range[1] : e[bin];
  const scale = 10 ** lab.decimals;
  // Grid points k/scale with lo ≤ k/scale < hi (for the last bin, ≤ hi: the range max is allowed).
  const kLo = Math.ceil(lo * scale - 1e-9);
  let kHi = Math.floor(hi * scale + 1e-9);
  if (bin !== e.length && kHi / scale >= hi - 1e-12) kHi -= 1;
  if (kHi < kLo) throw new Error(`decode: bin ${bin} of ${lab.name} holds no value with ${lab.decimals} decimal(s)`);
  const k = kLo + rng.int(kHi - kLo + 1);
  const v = Number((k / scale).toFixed(lab.decimals));
  if (labBin(lab, v) !== bin) throw new Error(`decode: value ${v} fell outside bin ${bin} of ${lab.name}`);
  return v;
}

/** Decodes one synthetic row into FHIR R4 resources. `rng` drives ids, dates and values. */
export function decodePatient(schema: Schema, row: ArrayLike<number>, rng: Rng, options: DecodeOptions = {}): DecodedPatient {
  if (row.length !== schema.attributes.length) {
    throw new Error(
      `decodePatient: row has ${row.length} values, schema ${schema.name} v${schema.version} has ${schema.attributes.length} attributes`,
    );
  }
  const refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
  const patientId = rng.uuid();
  const subject = { reference: `Patient/${patientId}` };
  const meta = { tag: [{ ...SYNTHETIC_TAG }] };
  const patient: FhirResourceLike = {
    resourceType: 'Patient',
    id: patientId,
    meta,
    identifier: [
      {
        system: options.identifierSystem ?? 'urn:fedsynth:synthetic',
        value: options.identifierValue ?? patientId,
      },
    ],
  };
  const conditions: FhirResourceLike[] = [];
  const observations: FhirResourceLike[] = [];
  let birthMs = refMs - 40 * 365.25 * DAY_MS;

  schema.attributes.forEach((attr, i) => {
    const code = row[i];
    switch (attr.kind) {
      case 'age': {
        if (!(code >= 0 && code < attr.edges.length)) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        const lo = attr.edges[code];
        const hi = code + 1 < attr.edges.length ? attr.edges[code + 1] : attr.max;
        const years = lo + rng.int(hi - lo);
        // Birth date such that whole years at the reference date == years: between
        // (ref − years − 1 y, ref − years y], drawn by days.
        const ref = new Date(refMs);
        const latest = Date.UTC(ref.getUTCFullYear() - years, ref.getUTCMonth(), ref.getUTCDate());
        const earliest = Date.UTC(ref.getUTCFullYear() - years - 1, ref.getUTCMonth(), ref.getUTCDate()) + DAY_MS;
        const days = Math.round((latest - earliest) / DAY_MS);
        birthMs = earliest + rng.int(days + 1) * DAY_MS;
        patient.birthDate = isoDate(birthMs);
        break;
      }
      case 'sex': {
        const g = attr.values[code];
        if (g === undefined) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        patient.gender = g;
        break;
      }
      case 'condition': {
        if (code !== 0 && code !== 1) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        if (code === 1) {
          const onset = birthMs + rng.next() * Math.max(DAY_MS, refMs - birthMs);
          conditions.push({
            resourceType: 'Condition',
            id: rng.uuid(),
            meta,
            clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
            verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
            category: [
              {
                coding: [
                  {
                    system: 'http://terminology.hl7.org/CodeSystem/condition-category',
                    code: 'problem-list-item',
                    display: 'Problem List Item',
                  },
                ],
              },
            ],
            code: { coding: [{ system: CODE_SYSTEMS.snomed, code: attr.codes.snomed[0], display: attr.display }], text: attr.display },
            subject,
            onsetDateTime: isoDate(Math.min(onset, refMs - DAY_MS)),
          });
        }
        break;
      }
      case 'lab': {
        if (!(code >= 0 && code <= labMissingCode(attr))) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        if (code === labMissingCode(attr)) break;
        const value = drawLabValue(attr, code, rng);
        const when = refMs - (1 + rng.int(365)) * DAY_MS - rng.int(86_400) * 1000;
        observations.push({
          resourceType: 'Observation',
          id: rng.uuid(),
          meta,
          status: 'final',
          category: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/observation-category',
                  code: attr.category,
                  display: attr.category === 'vital-signs' ? 'Vital Signs' : 'Laboratory',
                },
              ],
            },
          ],
          code: { coding: [{ system: LOINC_SYSTEM, code: attr.loinc[0], display: attr.display }], text: attr.display },
          subject,
          effectiveDateTime: isoDateTime(Math.max(when, birthMs + DAY_MS)),
          valueQuantity: { value, unit: attr.unit, system: UCUM_SYSTEM, code: attr.unit },
        });
        break;
      }
    }
  });
  return { patient, conditions, observations };
}

export interface DecodedCohort {
  Patient: FhirResourceLike[];
  Condition: FhirResourceLike[];
  Observation: FhirResourceLike[];
}

/** Decodes many rows; patient k uses the sub-stream `seed/k`, so any prefix of rows decodes the same. */
export function decodeCohort(
  schema: Schema,
  rows: Iterable<ArrayLike<number>>,
  seed: SeedLike,
  options: Omit<DecodeOptions, 'identifierValue'> = {},
): DecodedCohort {
  const root = new Rng(seed);
  const out: DecodedCohort = { Patient: [], Condition: [], Observation: [] };
  let k = 0;
  for (const row of rows) {
    const d = decodePatient(schema, row, root.fork(k), { ...options, identifierValue: String(k + 1) });
    out.Patient.push(d.patient);
    out.Condition.push(...d.conditions);
    out.Observation.push(...d.observations);
    k++;
  }
  return out;
}

/** One JSON line per resource (no trailing newline in each entry). */
export function toNdjsonLines(resources: Iterable<FhirResourceLike>): string[] {
  const lines: string[] = [];
  for (const r of resources) lines.push(JSON.stringify(r));
  return lines;
}

/** NDJSON text: one resource per line, newline-terminated. */
export function toNdjson(resources: Iterable<FhirResourceLike>): string {
  const lines = toNdjsonLines(resources);
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
