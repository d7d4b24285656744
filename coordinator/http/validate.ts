// Validation of the API's request bodies: every error names the field and, for names, the valid ones.
import { parseWhere, WhereError } from '../../schema/where.ts';
import type { Schema } from '../../schema/schema.ts';
import { COHORT_MODALITIES } from '../cohort-jobs.ts';
import { HttpError, onlyFields } from './router.ts';

export interface StudyRequest {
  title: string;
  epsilon: number;
  delta: number;
  attributes: string[] | null;
  plan: 'aim' | 'mst';
}

export interface CohortRequestBody {
  study: string;
  n: number;
  where: string;
  allowed: Record<string, number[]>;
  seed: number;
  modalities: string[];
}

export const MAX_COHORT_PATIENTS = 100_000;

function numberField(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  opts: { integer?: boolean; exclusiveMin?: boolean } = {},
): number {
  const v = body[name];
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (opts.exclusiveMin ? v > min : v >= min) &&
    v <= max &&
    (!opts.integer || Number.isSafeInteger(v));
  if (!ok)
    throw new HttpError(
      400,
      `${name} must be ${opts.integer ? 'an integer' : 'a number'} ${opts.exclusiveMin ? '>' : '≥'} ${min} and ≤ ${max}, got ${JSON.stringify(v)}`,
    );
  return v as number;
}

export function parseStudyRequest(body: Record<string, unknown>, attributeNames: readonly string[], defaultDelta: number): StudyRequest {
  onlyFields(body, ['title', 'epsilon', 'delta', 'attributes', 'plan']);
  if (typeof body.title !== 'string' || !body.title.trim() || body.title.length > 200)
    throw new HttpError(400, 'title must be a non-empty string of at most 200 characters');
  const epsilon = numberField(body, 'epsilon', 0, 100, { exclusiveMin: true });
  const delta = body.delta === undefined ? defaultDelta : numberField(body, 'delta', 0, 0.1, { exclusiveMin: true });
  let attributes: string[] | null = null;
  if (body.attributes !== undefined && body.attributes !== null) {
    if (!Array.isArray(body.attributes) || !body.attributes.every((a) => typeof a === 'string'))
      throw new HttpError(400, 'attributes must be a list of attribute names');
    const unknown = body.attributes.filter((a) => !attributeNames.includes(a));
    if (unknown.length)
      throw new HttpError(
        400,
        `unknown attribute ${unknown.map((a) => JSON.stringify(a)).join(', ')} (valid: ${attributeNames.join(', ')})`,
        {
          valid: attributeNames,
        },
      );
    attributes = [...new Set(body.attributes as string[])];
    if (attributes.length < 2) throw new HttpError(400, 'a study needs at least 2 attributes (or none: the whole schema)');
    // Schema order keeps a subset's schema, and so its model, independent of how it was listed.
    attributes = attributeNames.filter((a) => attributes!.includes(a));
  }
  const plan = body.plan ?? 'aim';
  if (plan !== 'aim' && plan !== 'mst') throw new HttpError(400, `plan must be "aim" or "mst", got ${JSON.stringify(plan)}`);
  return { title: body.title.trim(), epsilon, delta, attributes, plan };
}

/**
 * An age comparison must fall on a bin edge: ages are released in bins, and a cut inside a bin
 * would silently become the next edge. `age>=45` with edges …40, 50… is refused with the edges.
 */
export function ageEdgeProblem(schema: Schema, where: string): string | null {
  for (const raw of where.split(',')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|<|>)\s*(\d+(?:\.\d+)?)\s*$/.exec(raw);
    if (!m) continue;
    const attr = schema.attributes.find((a) => a.name === m[1]);
    if (!attr || attr.kind !== 'age') continue;
    const years = Number(m[3]);
    if (m[2] === '=' || m[2] === '!=')
      return `${m[1]}${m[2]}${m[3]} would select a whole age bin, not one age: write a range on the bin edges (${attr.edges.join(', ')}), e.g. ${m[1]}>=${attr.edges[1] ?? 0},${m[1]}<${attr.edges[2] ?? attr.max}`;
    const cut = m[2] === '>' || m[2] === '<=' ? years + 1 : years;
    const edges = [...attr.edges, attr.max];
    if (!edges.includes(cut)) {
      return `${m[1]}${m[2]}${m[3]} cuts inside an age bin: ages are released in bins starting at ${attr.edges.join(', ')} (up to ${attr.max}); use >= or < with one of these edges`;
    }
  }
  return null;
}

export function parseCohortRequest(body: Record<string, unknown>, schema: Schema, schemaModalities: readonly string[]): CohortRequestBody {
  onlyFields(body, ['study', 'n', 'where', 'seed', 'modalities']);
  if (typeof body.study !== 'string' || !body.study) throw new HttpError(400, 'study must be the id of a fitted study');
  const n = numberField(body, 'n', 1, MAX_COHORT_PATIENTS, { integer: true });
  const seed = body.seed === undefined ? 1 : numberField(body, 'seed', 0, 2 ** 31, { integer: true });
  const where = body.where ?? '';
  if (typeof where !== 'string' || where.length > 2000)
    throw new HttpError(400, 'where must be a filter string such as "age>=60,sex=female"');
  const edge = ageEdgeProblem(schema, where);
  if (edge) throw new HttpError(400, edge);
  let allowed: Record<string, number[]>;
  try {
    allowed = parseWhere(schema, where);
  } catch (err) {
    if (err instanceof WhereError) throw new HttpError(400, `where: ${err.message}`, { valid: schema.attributes.map((a) => a.name) });
    throw err;
  }
  let modalities = [...schemaModalities];
  if (body.modalities !== undefined) {
    if (!Array.isArray(body.modalities) || !body.modalities.every((m) => typeof m === 'string') || body.modalities.length === 0)
      throw new HttpError(400, `modalities must be a non-empty list from ${schemaModalities.join(', ')}`);
    const bad = body.modalities.filter((m) => !schemaModalities.includes(m));
    if (bad.length)
      throw new HttpError(
        400,
        `modality ${bad.map((m) => JSON.stringify(m)).join(', ')} is not in this study's schema (valid: ${schemaModalities.join(', ')})`,
      );
    modalities = [...new Set(body.modalities as string[])];
  }
  return { study: body.study, n, where: where.trim(), allowed, seed, modalities };
}

/** The artefact kinds a schema's cohorts carry: FHIR always, the others when an attribute reads them. */
export function schemaModalities(schema: Schema): string[] {
  const kinds = new Set(schema.attributes.map((a) => a.kind));
  const out: string[] = ['fhir'];
  if (kinds.has('image-finding') || kinds.has('image-component')) out.push('dicom');
  if (kinds.has('snp')) out.push('vcf');
  if (kinds.has('note-mention')) out.push('notes');
  return out.filter((m) => (COHORT_MODALITIES as readonly string[]).includes(m));
}
