/**
 * Shape signatures of FHIR resources for memoised R4 validation (R4Validator in bundle.ts): two
 * resources with the same signature get the same verdict from @medplum/core's validateResource,
 * so the full validation runs once per signature.
 *
 * What the validator looks at, and how the signature keeps it:
 * - structure: keys in order, array lengths, JSON types, null/undefined members — verbatim;
 * - primitives: a string's match against each of medplum's own `validationRegexes`, whether it is
 *   blank and whether it exceeds 1 MiB; a number's finiteness, integrality and sign (and whether
 *   its text has a '.', for cnt-3); booleans verbatim;
 * - the resource type a reference names (the validator warns on a wrong target type), taken from
 *   the reference as the validator sees it (urn:uuid references mapped to Type/id);
 * - FHIRPath invariants (error severity) of every type reachable from the audited resource
 *   types: each is listed below as structural (depends only on what is present) or with the
 *   value it depends on, which the signature carries (codes, systems, units verbatim; a Range's
 *   order; a Period's bounds; a component coding equal to the Observation's code; '#' references).
 * Only the audited resource types are memoised (SHAPE_AUDITED_TYPES); anything else, and any
 * resource with contained resources, is signed by its full JSON (one validation per distinct
 * resource). tests/unit/fhir-shape.test.ts fails if the definitions grow an invariant not listed.
 */
import { validationRegexes } from '@medplum/core';

/** Resource types whose reachable invariants are audited below. */
export const SHAPE_AUDITED_TYPES = new Set(['Patient', 'Condition', 'Observation', 'ImagingStudy', 'DocumentReference']);

/**
 * Error-severity invariants reachable from the audited types, with what they depend on. The
 * signature keeps every key, so existence-only invariants need nothing more.
 */
export const AUDITED_INVARIANTS: Record<string, string> = {
  'age-1': 'structure; system (verbatim); value > 0 (number sign)',
  'att-1': 'structure',
  'cnt-3': "structure; system, code (verbatim); value's text has '.' (number class)",
  'con-1': 'structure',
  'con-2': 'structure',
  'con-4': 'structure; clinicalStatus system and code (verbatim)',
  'con-5': 'structure; verificationStatus system and code (verbatim)',
  'cpt-2': 'structure',
  'dis-1': 'structure; system (verbatim)',
  'dom-2': 'structure',
  'dom-3': 'skipped by the validator',
  'dom-4': 'structure',
  'dom-5': 'structure',
  'drq-1': 'structure',
  'drq-2': 'structure',
  'drt-1': 'structure; system (verbatim)',
  'ele-1': 'skipped by the validator',
  'exp-1': 'structure',
  'ext-1': 'structure',
  'obs-3': 'structure',
  'obs-6': 'structure',
  'obs-7': 'structure; whether a component coding equals a coding of the Observation code (signed per component)',
  'pat-1': 'structure',
  'per-1': 'start and end of a Period (verbatim when both are present)',
  'qty-3': 'structure',
  'rat-1': 'structure',
  'ref-1': "whether a reference starts with '#' (signed); resources with contained resources are signed verbatim",
  'rng-2': 'order of low and high of a Range (signed when both have numeric values and the same unit; else verbatim)',
  'tim-1': 'structure',
  'tim-10': 'structure',
  'tim-2': 'structure',
  'tim-4': 'duration >= 0 (number sign)',
  'tim-5': 'period >= 0 (number sign)',
  'tim-6': 'structure',
  'tim-7': 'structure',
  'tim-8': 'structure',
  'tim-9': 'structure; when (verbatim)',
  'trd-1': 'structure',
  'trd-2': 'structure',
  'trd-3': 'structure; type (verbatim)',
  'txt-1': 'Narrative div (verbatim)',
  'txt-2': 'Narrative div (verbatim)',
};

/** Members whose string value is part of the signature as is. */
const VERBATIM = new Set(['resourceType', 'system', 'code', 'status', 'type', 'url', 'unit', 'when', 'div']);

const FORMATS = Object.entries(validationRegexes).filter(([name]) => name !== 'xhtml');
const MAX_STRING = 1024 * 1024;
const stringClasses = new Map<string, string>();

/** Which of the validator's primitive formats a string matches, and whether it is blank or too long. */
function stringClass(s: string): string {
  let c = stringClasses.get(s);
  if (c === undefined) {
    let mask = 0;
    for (let i = 0; i < FORMATS.length; i++) if (FORMATS[i][1].test(s)) mask |= 1 << i;
    c = `${mask.toString(36)}${s.trim() ? '' : 'b'}${s.length > MAX_STRING ? 'L' : ''}`;
    if (stringClasses.size >= 50_000) stringClasses.clear();
    stringClasses.set(s, c);
  }
  return c;
}

function numberClass(v: number): string {
  if (!Number.isFinite(v)) return 'nan';
  const sign = v > 0 ? '+' : v < 0 ? '-' : '0';
  return Number.isInteger(v) ? `i${sign}` : `d${sign}${String(v).includes('.') ? '.' : ''}`;
}

/** Canonical JSON (keys sorted), for equality of codings. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

type Obj = Record<string, unknown>;

/** Equal as FHIR values (FHIRPath `=` on elements): same members, equal values, any member order. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) return canonical(a) === canonical(b);
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!(k in b) || !sameValue((a as Obj)[k], (b as Obj)[k])) return false;
  return true;
}

function rangeOrder(o: Obj): string {
  const lo = o.low as Obj | undefined;
  const hi = o.high as Obj | undefined;
  if (!lo || !hi || typeof lo !== 'object' || typeof hi !== 'object') return '';
  const sameUnit = lo.unit === hi.unit && lo.system === hi.system && lo.code === hi.code && lo.comparator === undefined && hi.comparator === undefined;
  if (sameUnit && typeof lo.value === 'number' && typeof hi.value === 'number') return lo.value <= hi.value ? '|r<=' : '|r>';
  return `|r${canonical(lo)}${canonical(hi)}`;
}

function walk(v: unknown, key: string, refs: Map<string, string> | undefined): string {
  if (Array.isArray(v)) {
    let out = `[${v.length}`;
    for (const x of v) out += walk(x, key, refs);
    return `${out}]`;
  }
  switch (typeof v) {
    case 'string':
      if (key === 'reference') {
        // As the validator sees it: its resource type (target check), '#' (ref-1) and format.
        // The validator compares the type part with the element's target profiles: only a name
        // (letters) can match one, an empty part is skipped, anything else never matches.
        const seen = refs?.get(v) ?? v;
        const part = seen.includes('?') ? seen.split('?')[0] : seen.split('/')[0];
        const type = part === '' ? '' : /^[A-Za-z]+$/.test(part) ? part : '?';
        return `R${type}${seen.startsWith('#') ? '#' : ''}${stringClass(seen)}`;
      }
      return VERBATIM.has(key) ? `=${JSON.stringify(v)}` : `s${stringClass(v)}`;
    case 'number':
      return numberClass(v);
    case 'boolean':
      return v ? 'T' : 'F';
    case 'undefined':
      return 'U';
    case 'object': {
      if (v === null) return 'N';
      const o = v as Obj;
      let out = '{';
      for (const k in o) out += `${k}:${walk(o[k], k, refs)},`;
      if ('low' in o && 'high' in o) out += rangeOrder(o);
      if (typeof o.start === 'string' && typeof o.end === 'string') out += `|p${JSON.stringify([o.start, o.end])}`;
      return `${out}}`;
    }
    default:
      return typeof v;
  }
}

/**
 * The shape signature of a resource; `refs` maps references (e.g. urn:uuid:…) to the form the
 * validator is given (Type/id).
 */
export function shapeSignature(resource: Obj, refs?: Map<string, string>): string {
  if (!SHAPE_AUDITED_TYPES.has(resource.resourceType as string) || 'contained' in resource) return `J${canonical(resource)}${refs ? canonical([...refs]) : ''}`;
  let out = walk(resource, '', refs);
  if (resource.resourceType === 'Observation' && Array.isArray(resource.component)) {
    // obs-7: a component coded like the Observation itself.
    const own = ((resource.code as Obj | undefined)?.coding as unknown[]) ?? [];
    out += '|c';
    for (const c of resource.component as Obj[]) out += (((c?.code as Obj | undefined)?.coding as unknown[]) ?? []).some((x) => own.some((y) => sameValue(x, y))) ? '1' : '0';
  }
  return out;
}
