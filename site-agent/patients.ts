/**
 * Reads a site's FHIR data and encodes it into the public schema: one row per patient (the
 * contribution bound, enforced by modalities/fhir/encode.ts), returned column-major. Memory:
 * per-patient encoded state, never the resources themselves.
 */
import type { Schema } from '../schema/schema.ts';
import { ENCODED_RESOURCE_TYPES, FhirPatientEncoder, type EncodeCounts } from '../modalities/fhir/encode.ts';
import { Quarantine, type FhirSource } from './connectors/types.ts';

export interface PatientTable {
  /** One Uint16Array per attribute (schema order), each of length n. */
  columns: Uint16Array[];
  n: number;
  names: string[];
}

export interface PatientReadResult {
  table: PatientTable;
  /** Local patient ids, row order (sorted). Never leaves the site. */
  patientIds: string[];
  counts: EncodeCounts;
  quarantine: Quarantine;
}

/** Reads Patient/Condition/Observation from `source` and encodes them with `schema`. */
export async function readPatientTable(source: FhirSource, schema: Schema, quarantine = new Quarantine()): Promise<PatientReadResult> {
  const encoder = new FhirPatientEncoder(schema);
  for await (const r of source.resources(ENCODED_RESOURCE_TYPES, quarantine)) encoder.add(r);
  const result = encoder.finish();
  for (const issue of result.issues) {
    quarantine.add({
      source: issue.source,
      modality: 'fhir',
      reason: issue.reason,
      ...(issue.detail === undefined ? {} : { detail: issue.detail }),
    });
  }
  const { n, width, rows } = result;
  const columns = Array.from({ length: width }, () => new Uint16Array(n));
  for (let i = 0; i < n; i++) {
    const base = i * width;
    for (let j = 0; j < width; j++) columns[j][i] = rows[base + j];
  }
  return { table: { columns, n, names: result.names }, patientIds: result.patientIds, counts: result.counts, quarantine };
}
