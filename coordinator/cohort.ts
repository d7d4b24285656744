// Turns a fitted model into a released cohort: conditional sampling (post-processing, no
// budget), decoding into FHIR R4 resources, validation before release, Bulk NDJSON on disk.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { sample } from '../model/sample.ts';
import type { Dataset } from '../model/domain.ts';
import type { Schema } from '../model/schema.ts';
import { decodeCohort, toNdjson } from '../modalities/fhir/decode.ts';
import { validateFhirResources } from '../modalities/fhir/validate.ts';

export interface CohortRequest {
  n: number;
  seed: number | string;
  where?: Record<string, number[]>;
  /** The cohort folder: artefacts go to its fhir/ (and, per modality, dicom/, vcf/, notes/). */
  dir: string;
}

export interface CohortResult {
  dataset: Dataset;
  files: Record<string, { path: string; resources: number }>;
}

export class CohortValidationError extends Error {}

export async function writeCohort(schema: Schema, model: GraphicalModel, req: CohortRequest): Promise<CohortResult> {
  if (!Number.isInteger(req.n) || req.n < 1) throw new Error(`cohort size must be a positive integer, got ${req.n}`);
  const dataset = sample(model, { rows: req.n, seed: req.seed, where: req.where });
  const rows = function* () {
    const row = new Array<number>(dataset.columns.length);
    for (let r = 0; r < dataset.rows; r++) {
      for (let j = 0; j < row.length; j++) row[j] = dataset.columns[j][r];
      yield row;
    }
  };
  const cohort = decodeCohort(schema, rows(), `${req.seed}`);
  const problems = validateFhirResources([...cohort.Patient, ...cohort.Condition, ...cohort.Observation]);
  if (problems.length > 0) {
    // Decoding is deterministic from valid rows, so an invalid resource is a bug, never released.
    throw new CohortValidationError(`${problems.length} synthetic resources failed validation, first: ${problems[0].resource}: ${problems[0].message}`);
  }
  const dir = join(req.dir, 'fhir');
  await mkdir(dir, { recursive: true });
  const files: CohortResult['files'] = {};
  for (const type of ['Patient', 'Condition', 'Observation'] as const) {
    const path = join(dir, `${type}.ndjson`);
    await writeFile(path, toNdjson(cohort[type]));
    files[type] = { path, resources: cohort[type].length };
  }
  return { dataset, files };
}
