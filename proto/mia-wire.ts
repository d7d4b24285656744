// The bodies of a membership-inference task (proto/task-spec.ts `MiaHistogramSpec`): the synthetic
// cohort it carries as its payload (fetched through FetchPayload, its SHA-256 in the spec), the
// cohort's rows over the public schema's attributes, column-major (post-processing of the fit's
// DP output, so it may travel in the clear); and the site's answer, its noised histogram.

export class MalformedCohortError extends Error {}

export interface CohortColumns {
  attrs: string[];
  rows: number;
  /** One array of value codes per attribute, each of length `rows`. */
  columns: number[][];
}

export function encodeCohort(c: CohortColumns): Buffer {
  return Buffer.from(JSON.stringify({ attrs: c.attrs, rows: c.rows, columns: c.columns }), 'utf8');
}

/**
 * Decodes a cohort payload and checks it against the receiver's own schema (attribute names in
 * order, and the size of each attribute's domain): a site never scores against rows it cannot read.
 */
export function decodeCohort(body: Uint8Array, schema: { attrs: readonly string[]; sizes: readonly number[] }): CohortColumns {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new MalformedCohortError('cohort payload is not valid JSON');
  }
  const o = raw as Partial<CohortColumns>;
  if (typeof raw !== 'object' || raw === null || !Array.isArray(o.attrs) || !Array.isArray(o.columns))
    throw new MalformedCohortError('cohort payload must be {attrs, rows, columns}');
  if (typeof o.rows !== 'number' || !Number.isSafeInteger(o.rows) || o.rows <= 0)
    throw new MalformedCohortError('cohort payload rows must be a positive integer');
  if (o.attrs.length !== schema.attrs.length || o.attrs.some((a, j) => a !== schema.attrs[j]))
    throw new MalformedCohortError(`cohort attributes differ from this schema's (${schema.attrs.length} attributes)`);
  if (o.columns.length !== schema.attrs.length) throw new MalformedCohortError('cohort payload has one column per attribute');
  o.columns.forEach((col, j) => {
    if (!Array.isArray(col) || col.length !== o.rows)
      throw new MalformedCohortError(`cohort column ${schema.attrs[j]} must hold ${o.rows} values`);
    for (const v of col)
      if (!Number.isInteger(v) || v < 0 || v >= schema.sizes[j])
        throw new MalformedCohortError(`cohort column ${schema.attrs[j]} has value ${JSON.stringify(v)} outside [0, ${schema.sizes[j]})`);
  });
  return { attrs: o.attrs, rows: o.rows, columns: o.columns };
}

export class MalformedHistogramError extends Error {}

/** A site's noised histogram as sent: a JSON array of decimal integer strings. */
export function encodeHistogram(values: BigInt64Array): Buffer {
  return Buffer.from(JSON.stringify(Array.from(values, String)), 'utf8');
}

/** Decodes a histogram body of exactly `length` cells (2·bins: [members | holdout]). */
export function decodeHistogram(body: Uint8Array, length: number): BigInt64Array {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new MalformedHistogramError('score histogram is not valid JSON');
  }
  if (!Array.isArray(raw) || raw.length !== length)
    throw new MalformedHistogramError(`score histogram must be an array of ${length} values ([members | holdout])`);
  return BigInt64Array.from(raw, (v: unknown, i) => {
    if (typeof v !== 'string' || !/^-?[0-9]{1,15}$/.test(v))
      throw new MalformedHistogramError(`score histogram value ${i} is not an integer string`);
    return BigInt(v);
  });
}
