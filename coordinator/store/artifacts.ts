// What a fit produces: the fitted models and the cohorts sampled from them.
import { json, toCohort, toModel } from './rows.ts';
import type { SqlClient } from './sql.ts';
import type { Cohort, CohortInput, Model, ModelInput } from './types.ts';

export async function putModel(sql: SqlClient, m: ModelInput): Promise<Model> {
  const { rows } = await sql.query(
    `INSERT INTO models (id, federation_id, rho_total, model_json) VALUES ($1, $2, $3, $4::jsonb) RETURNING *`,
    [m.id, m.federationId, m.rhoTotal, json(m.model)],
  );
  return toModel(rows[0]);
}

export async function getModel(sql: SqlClient, id: string): Promise<Model | null> {
  const { rows } = await sql.query('SELECT * FROM models WHERE id = $1', [id]);
  return rows.length ? toModel(rows[0]) : null;
}

export async function listModels(sql: SqlClient, federationId: string): Promise<Model[]> {
  const { rows } = await sql.query('SELECT * FROM models WHERE federation_id = $1 ORDER BY created_at, id', [federationId]);
  return rows.map(toModel);
}

export async function putCohort(sql: SqlClient, c: CohortInput): Promise<Cohort> {
  const { rows } = await sql.query(
    `INSERT INTO cohorts (id, federation_id, model_id, n, seed, where_json, out_dir, report_json)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb) RETURNING *`,
    [c.id, c.federationId, c.modelId, c.n, c.seed, json(c.where), c.outDir, json(c.report)],
  );
  return toCohort(rows[0]);
}

export async function getCohort(sql: SqlClient, id: string): Promise<Cohort | null> {
  const { rows } = await sql.query('SELECT * FROM cohorts WHERE id = $1', [id]);
  return rows.length ? toCohort(rows[0]) : null;
}

export async function listCohorts(sql: SqlClient, federationId: string, modelId?: string): Promise<Cohort[]> {
  const { rows } = await sql.query(
    `SELECT * FROM cohorts WHERE federation_id = $1 AND ($2::text IS NULL OR model_id = $2)
     ORDER BY created_at, id`,
    [federationId, modelId ?? null],
  );
  return rows.map(toCohort);
}
