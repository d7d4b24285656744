/**
 * The schema's `workload`: the queries research asks first, declared publicly so the fit can be
 * judged (and reported) on them. Also the attribute-set expansion shared with `structure`:
 * an entry such as `[age, sex, kind:condition]` stands for one set per condition attribute.
 *
 *   workload:
 *     ageBands: [0, 18, 40, 65]          # lower edges in years, each an edge of the age attribute
 *     queries:
 *       - family: condition-by-age-band
 *         marginals: [[age, kind:condition]]
 *       - family: lab-by-condition
 *         marginals: [[type2_diabetes, hba1c], [chronic_kidney_disease, egfr]]
 *
 * A query lists its stratum attributes first and its target last (docs/synthesis.md).
 */

/** Selector prefix: `kind:condition` expands to every attribute of that kind. */
export const KIND_SELECTOR = 'kind:';

/** Upper bound on the sets one entry may expand to (a typo must not make a huge workload). */
export const MAX_EXPANDED_SETS = 5000;

export interface WorkloadFamily {
  family: string;
  /** Expanded attribute sets, stratum attributes first, target last. */
  marginals: string[][];
}

export interface WorkloadSection {
  /** Lower edges of the age bands the workload reads age in (years); undefined: the age bins. */
  ageBands?: number[];
  queries: WorkloadFamily[];
}

export interface AttrInfo {
  name: string;
  kind: string;
}

type Fail = (path: string, message: string) => void;

/**
 * Expands one attribute-set entry: names stay, `kind:K` becomes each attribute of kind K; sets
 * naming an attribute twice are skipped, as are sets equal (as sets) to one already in `seen`.
 * Returns undefined (after reporting) on an unknown name or kind, or an empty expansion.
 */
export function expandEntry(
  entry: unknown,
  path: string,
  attrs: readonly AttrInfo[],
  seen: Set<string>,
  fail: Fail,
): string[][] | undefined {
  if (!Array.isArray(entry) || entry.length < 2 || entry.length > 3 || !entry.every((n) => typeof n === 'string')) {
    fail(path, `must be a list of 2 or 3 attribute names (or kind:KIND selectors), got ${JSON.stringify(entry)}`);
    return undefined;
  }
  const names = new Set(attrs.map((a) => a.name));
  const options: string[][] = [];
  let bad = false;
  (entry as string[]).forEach((n, j) => {
    if (n.startsWith(KIND_SELECTOR)) {
      const kind = n.slice(KIND_SELECTOR.length);
      const of = attrs.filter((a) => a.kind === kind).map((a) => a.name);
      if (of.length === 0) {
        fail(`${path}[${j}]`, `no attribute of kind ${JSON.stringify(kind)}`);
        bad = true;
      }
      options.push(of);
    } else {
      if (!names.has(n)) {
        fail(`${path}[${j}]`, `unknown attribute ${JSON.stringify(n)}`);
        bad = true;
      }
      options.push([n]);
    }
  });
  if (bad) return undefined;
  const total = options.reduce((p, o) => p * o.length, 1);
  if (total > MAX_EXPANDED_SETS) {
    fail(path, `expands to ${total} attribute sets, more than ${MAX_EXPANDED_SETS}`);
    return undefined;
  }
  let sets: string[][] = [[]];
  for (const o of options) sets = sets.flatMap((s) => o.map((n) => [...s, n]));
  const out: string[][] = [];
  let repeated = 0;
  for (const s of sets) {
    if (new Set(s).size !== s.length) {
      repeated++;
      continue;
    }
    const key = [...s].sort().join('|');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  if (out.length === 0) {
    fail(path, repeated === sets.length ? 'names an attribute twice' : 'adds no attribute set not already listed');
    return undefined;
  }
  return out;
}

const FAMILY_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Parses and checks the `workload` section against the schema's attributes. */
export function parseWorkloadSection(
  raw: unknown,
  attrs: readonly AttrInfo[],
  ageEdges: readonly number[] | undefined,
  fail: Fail,
): WorkloadSection | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('workload', `must be a mapping, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const o = raw as Record<string, unknown>;
  let ok = true;
  const failHere: Fail = (p, m) => {
    ok = false;
    fail(p, m);
  };
  for (const k of Object.keys(o))
    if (k !== 'ageBands' && k !== 'queries') failHere(`workload.${k}`, 'unknown key (allowed: ageBands, queries)');
  let ageBands: number[] | undefined;
  if ('ageBands' in o) ageBands = parseAgeBands(o.ageBands, ageEdges, failHere, 'workload.ageBands');
  if (!Array.isArray(o.queries) || o.queries.length === 0) {
    failHere('workload.queries', 'must be a non-empty list of { family, marginals }');
    return undefined;
  }
  const families = new Set<string>();
  const queries: WorkloadFamily[] = [];
  o.queries.forEach((q, i) => {
    const path = `workload.queries[${i}]`;
    if (typeof q !== 'object' || q === null || Array.isArray(q))
      return failHere(path, `must be a mapping { family, marginals }, got ${JSON.stringify(q)}`);
    const e = q as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (k !== 'family' && k !== 'marginals') failHere(`${path}.${k}`, 'unknown key (allowed: family, marginals)');
    if (typeof e.family !== 'string' || !FAMILY_NAME.test(e.family))
      return failHere(`${path}.family`, 'must be lowercase letters, digits and dashes');
    if (families.has(e.family)) return failHere(`${path}.family`, `family ${JSON.stringify(e.family)} is declared twice`);
    families.add(e.family);
    if (!Array.isArray(e.marginals) || e.marginals.length === 0)
      return failHere(`${path}.marginals`, 'must be a non-empty list of attribute sets');
    const seen = new Set<string>();
    const marginals: string[][] = [];
    e.marginals.forEach((m, j) => {
      const sets = expandEntry(m, `${path}.marginals[${j}]`, attrs, seen, failHere);
      if (sets) marginals.push(...sets);
    });
    queries.push({ family: e.family, marginals });
  });
  if (!ok) return undefined;
  return { ...(ageBands ? { ageBands } : {}), queries };
}

/**
 * Lower edges of age bands (whole years, from 0, strictly increasing, each an edge of the age
 * attribute so that a band is a union of its bins): the workload's `ageBands` and a declared
 * structure group's `coarsen: { age: [...] }` (schema.ts) are both checked here.
 */
export function parseAgeBands(raw: unknown, ageEdges: readonly number[] | undefined, fail: Fail, path: string): number[] | undefined {
  if (!ageEdges) {
    fail(path, 'the schema has no age attribute');
    return undefined;
  }
  if (!Array.isArray(raw) || raw.length < 2 || !raw.every((v) => Number.isInteger(v))) {
    fail(path, `must be a list of at least 2 whole-year lower edges, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const bands = raw as number[];
  let ok = true;
  const failHere: Fail = (p, m) => {
    ok = false;
    fail(p, m);
  };
  if (bands[0] !== 0) failHere(`${path}[0]`, 'must be 0 (the first band starts at birth)');
  for (let i = 1; i < bands.length; i++) if (!(bands[i] > bands[i - 1])) failHere(`${path}[${i}]`, 'edges must increase strictly');
  bands.forEach((b, i) => {
    // A band must be a union of the age attribute's bins, or it could not be read from the model.
    if (!ageEdges.includes(b)) failHere(`${path}[${i}]`, `${b} is not an edge of the age attribute (edges: ${ageEdges.join(', ')})`);
  });
  return ok ? bands : undefined;
}

/** Group of each age bin under `bands`, and the band labels ("0-17", …, "65+"). */
export function ageBandGroups(ageEdges: readonly number[], bands: readonly number[]): { groupOf: number[]; labels: string[] } {
  const groupOf = ageEdges.map((lo) => {
    let g = 0;
    for (let i = 0; i < bands.length; i++) if (lo >= bands[i]) g = i;
    return g;
  });
  const labels = bands.map((lo, i) => (i + 1 < bands.length ? `${lo}-${bands[i + 1] - 1}` : `${lo}+`));
  return { groupOf, labels };
}
