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
export const SHAPE_AUDITED_TYPES = new Set([
  'Patient',
  'Condition',
  'Observation',
  'ImagingStudy',
  'DocumentReference',
  'Encounter',
  'MedicationRequest',
]);

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
  'per-1': 'start <= end of a Period (their order when both are UTC dateTimes to the second, else both verbatim)',
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

/** Which of the validator's primitive formats a string matches, and whether it is blank or too long: the regexes themselves. */
function regexClass(s: string): string {
  let mask = 0;
  for (let i = 0; i < FORMATS.length; i++) if (FORMATS[i][1].test(s)) mask |= 1 << i;
  return `${mask.toString(36)}${s.trim() ? '' : 'b'}${s.length > MAX_STRING ? 'L' : ''}`;
}

/**
 * The regexes `stringClass` was audited against (medplum's validationRegexes, sources): the two
 * string families below have one class each only for these. tests/unit/fhir-shape.test.ts fails
 * when they change.
 */
export const AUDITED_FORMAT_SOURCES: Record<string, string> = {
  base64Binary: '^([A-Za-z\\d+/]{4})*([A-Za-z\\d+/]{2}==|[A-Za-z\\d+/]{3}=)?$',
  canonical: '^\\S*$',
  code: '^[^\\s]+( [^\\s]+)*$',
  date: '^(\\d(\\d(\\d[1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2]\\d|3[0-1]))?)?$',
  dateTime:
    '^(\\d(\\d(\\d[1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2]\\d|3[0-1])(T([01]\\d|2[0-3])(:[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?)?)?)?(Z|[+-]((0\\d|1[0-3]):[0-5]\\d|14:00)?)?)?$',
  id: '^[A-Za-z0-9\\-.]{1,64}$',
  instant:
    '^(\\d(\\d(\\d[1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2]\\d|3[0-1])T([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?(Z|[+-]((0\\d|1[0-3]):[0-5]\\d|14:00))$',
  markdown: '^[\\r\\n\\t\\u0020-\\uFFFF]+$',
  oid: '^urn:oid:[0-2](\\.(0|[1-9]\\d*))+$',
  string: '^[\\r\\n\\t\\u0020-\\uFFFF]+$',
  time: '^([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?$',
  uri: '^\\S*$',
  url: '^\\S*$',
  uuid: '^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
};
const formatsAudited =
  FORMATS.length === Object.keys(AUDITED_FORMAT_SOURCES).length &&
  FORMATS.every(([name, re]) => AUDITED_FORMAT_SOURCES[name] === re.source && re.flags === '');

/** s[at, at + 36) is a lowercase UUID: 8-4-4-4-12 hex digits [0-9a-f] joined by '-'. */
function isLowerUuidAt(s: string, at: number): boolean {
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(at + i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/**
 * Two families of strings every member of which matches the same formats (for the audited
 * regexes), so their class is computed once:
 * - a bare lowercase UUID (36 characters, the ids): printable, no whitespace, so canonical, code,
 *   markdown, string, uri and url match, and id ([A-Za-z0-9-.]{1,64}); base64Binary does not ('-'),
 *   nor date, time, dateTime or instant (at most 10, 18, 35 and 35 characters long), nor oid or
 *   uuid (they start with "urn:", a UUID with a hex digit);
 * - letters, '/', a lowercase UUID (relative references Type/id): the same, except id ('/'), and
 *   "urn:" cannot start it (its first ':' would have to follow three letters, where '/' or a
 *   letter is). Blankness and length are constant too.
 */
const UUID_CLASS = regexClass('00000000-0000-4000-8000-000000000000');
/**
 * - canonical base64 longer than 64 characters (attachment data, e.g. a note): base64Binary
 *   matches (groups of four, '=' padding only at the end), and the printable, whitespace-free
 *   formats (canonical, code, markdown, string, uri, url); id does not (over 64 characters),
 *   nor date, time, dateTime, instant (over 35), nor oid or uuid (no ':').
 */
const BASE64_CLASS = regexClass('A'.repeat(68));
const REFERENCE_CLASS = regexClass('Patient/00000000-0000-4000-8000-000000000000');

function isLettersSlashUuid(s: string): boolean {
  const slash = s.length - 37;
  if (slash < 1 || s.charCodeAt(slash) !== 47 || !isLowerUuidAt(s, slash + 1)) return false;
  for (let i = 0; i < slash; i++) {
    const c = s.charCodeAt(i) | 32;
    if (c < 97 || c > 122) return false;
  }
  return true;
}

/** Canonical base64: length a multiple of 4, [A-Za-z0-9+/], then at most two '=' at the end. */
function isCanonicalBase64(s: string): boolean {
  const n = s.length;
  if (n % 4 !== 0) return false;
  const pad = s.charCodeAt(n - 1) === 61 ? (s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  for (let i = 0; i < n - pad; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47)) return false;
  }
  return true;
}

/**
 * A UTC dateTime to the second (years 1000-9999): for two of these, string order is time order
 * (FHIRPath's `<=`), and every one matches the same primitive formats of the audited regexes
 * (dateTime, instant, code, string, markdown, uri, url, canonical; not date, time, id, oid, uuid,
 * base64Binary: the 'T' and ':' exclude those), so the family has one class.
 */
const UTC_SECONDS = /^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;
/** A calendar date (years 1000-9999): every one matches date, dateTime, id, code, string, … alike (digits and '-' only). */
const DATE_ONLY = /^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const UTC_SECONDS_CLASS = regexClass('2000-01-01T00:00:00Z');
const DATE_CLASS = regexClass('2000-01-01');

/** Which of the validator's primitive formats a string matches, and whether it is blank or too long. */
function stringClass(s: string): string {
  if (formatsAudited) {
    if (s.length === 20 && UTC_SECONDS.test(s)) return UTC_SECONDS_CLASS;
    if (s.length === 10 && DATE_ONLY.test(s)) return DATE_CLASS;
    if (s.length === 36 && isLowerUuidAt(s, 0)) return UUID_CLASS;
    if (s.length >= 38 && isLettersSlashUuid(s)) return REFERENCE_CLASS;
    if (s.length > 64 && s.length <= MAX_STRING && isCanonicalBase64(s)) return BASE64_CLASS;
  }
  let c = stringClasses.get(s);
  if (c === undefined) {
    c = regexClass(s);
    if (stringClasses.size >= 50_000) stringClasses.clear();
    stringClasses.set(s, c);
  }
  return c;
}

/** The class by the regexes alone (tests compare it with `stringClass`). */
export const stringClassByRegex = regexClass;
export const stringClassFast = stringClass;

const NUMBER_CLASSES = { nan: 'nan', ip: 'i+', im: 'i-', i0: 'i0', dp: 'd+', dm: 'd-', d0: 'd0', dpd: 'd+.', dmd: 'd-.', d0d: 'd0.' };
function numberClass(v: number): string {
  if (!Number.isFinite(v)) return NUMBER_CLASSES.nan;
  if (Number.isInteger(v)) return v > 0 ? NUMBER_CLASSES.ip : v < 0 ? NUMBER_CLASSES.im : NUMBER_CLASSES.i0;
  const dot = String(v).includes('.');
  if (v > 0) return dot ? NUMBER_CLASSES.dpd : NUMBER_CLASSES.dp;
  return v < 0 ? (dot ? NUMBER_CLASSES.dmd : NUMBER_CLASSES.dm) : dot ? NUMBER_CLASSES.d0d : NUMBER_CLASSES.d0;
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
  const sameUnit =
    lo.unit === hi.unit && lo.system === hi.system && lo.code === hi.code && lo.comparator === undefined && hi.comparator === undefined;
  if (sameUnit && typeof lo.value === 'number' && typeof hi.value === 'number') return lo.value <= hi.value ? '|r<=' : '|r>';
  return `|r${canonical(lo)}${canonical(hi)}`;
}

/**
 * What the signature walk emits, as tokens of four kinds; the signature is the concatenation of
 * their texts: a literal as is, a member key k as `k:`, a verbatim string v as `=` +
 * JSON.stringify(v), a string class c as `s` + c.
 */
interface Emitter {
  lit(t: string): void;
  key(k: string): void;
  verbatim(v: string): void;
  cls(c: string): void;
}

/** Builds the signature string. */
class StringEmitter implements Emitter {
  out = '';
  lit(t: string): void {
    this.out += t;
  }
  key(k: string): void {
    this.out += `${k}:`;
  }
  verbatim(v: string): void {
    this.out += `=${JSON.stringify(v)}`;
  }
  cls(c: string): void {
    this.out += `s${c}`;
  }
}

/**
 * A node of the shape trie: its first child edge inline (most nodes have one: a cohort's
 * resources repeat a few shapes), the others in one map per token kind.
 */
interface TrieNode {
  /** The first child edge: kind (0 literal, 1 key, 2 verbatim, 3 class), text and node. */
  kind: number;
  text: string;
  child: TrieNode | undefined;
  more: [Map<string, TrieNode>, Map<string, TrieNode>, Map<string, TrieNode>, Map<string, TrieNode>] | undefined;
  /** The shape ending here (the signature, filled when first reached, and the verdict). */
  shape: ShapeEntry | undefined;
}

const newNode = (): TrieNode => ({ kind: -1, text: '', child: undefined, more: undefined, shape: undefined });

export interface ShapeEntry {
  signature?: string;
  /** The full validation passed. */
  clean?: boolean;
}

/**
 * Follows the walk's tokens down a trie (no string is built): two resources reach the same node
 * exactly when their token sequences are equal, and then their signatures (the concatenations)
 * are equal, so the node can hold the verdict of the signature.
 */
class TrieEmitter implements Emitter {
  node: TrieNode;
  created = 0;
  constructor(root: TrieNode) {
    this.node = root;
  }
  private step(kind: number, t: string): void {
    const node = this.node;
    if (node.kind === kind && node.text === t) {
      this.node = node.child!;
      return;
    }
    if (node.child === undefined) {
      node.kind = kind;
      node.text = t;
      this.node = node.child = newNode();
      this.created++;
      return;
    }
    const m = (node.more ??= [new Map(), new Map(), new Map(), new Map()])[kind];
    let next = m.get(t);
    if (next === undefined) {
      next = newNode();
      m.set(t, next);
      this.created++;
    }
    this.node = next;
  }
  lit(t: string): void {
    this.step(0, t);
  }
  key(k: string): void {
    this.step(1, k);
  }
  verbatim(v: string): void {
    this.step(2, v);
  }
  cls(c: string): void {
    this.step(3, c);
  }
}

/** walk's token for a reference as the validator sees it, by reference (a patient's records repeat a few). */
const referenceLiterals = new Map<string, string>();

/**
 * The reference's resource type (target check), '#' (ref-1) and format class. The validator
 * compares the type part with the element's target profiles: only a name (letters) can match
 * one, an empty part is skipped, anything else never matches.
 */
function referenceLiteral(seen: string): string {
  let lit = referenceLiterals.get(seen);
  if (lit === undefined) {
    const part = seen.includes('?') ? seen.split('?')[0] : seen.split('/')[0];
    const type = part === '' ? '' : /^[A-Za-z]+$/.test(part) ? part : '?';
    lit = `R${type}${seen.startsWith('#') ? '#' : ''}${stringClass(seen)}`;
    // Bounded: a cohort's references are mostly distinct across patients.
    if (referenceLiterals.size >= 4096) referenceLiterals.clear();
    referenceLiterals.set(seen, lit);
  }
  return lit;
}

const ARRAY_OPEN = Array.from({ length: 64 }, (_, i) => `[${i}`);

/**
 * References met by a walk, as written (before `refs` maps them), in the order collectReferences
 * lists them; `complete` once a whole resource was walked (so the caller need not walk it again).
 */
export interface FoundReferences {
  refs: string[];
  complete: boolean;
}

function walk(
  v: unknown,
  key: string,
  refs: Map<string, string> | undefined,
  e: Emitter,
  found: FoundReferences | undefined,
  inArray = false,
): void {
  if (Array.isArray(v)) {
    e.lit(v.length < ARRAY_OPEN.length ? ARRAY_OPEN[v.length] : `[${v.length}`);
    for (const x of v) walk(x, key, refs, e, found, true);
    e.lit(']');
    return;
  }
  switch (typeof v) {
    case 'string':
      if (key === 'reference') {
        // collectReferences takes a member's string value, not the strings of an array member.
        if (!inArray) found?.refs.push(v);
        // As the validator sees it (referenceLiteral).
        const seen = refs?.get(v) ?? v;
        e.lit(referenceLiteral(seen));
        return;
      }
      if (VERBATIM.has(key)) e.verbatim(v);
      else e.cls(stringClass(v));
      return;
    case 'number':
      e.lit(numberClass(v));
      return;
    case 'boolean':
      e.lit(v ? 'T' : 'F');
      return;
    case 'undefined':
      e.lit('U');
      return;
    case 'object': {
      if (v === null) {
        e.lit('N');
        return;
      }
      const o = v as Obj;
      if (Object.isFrozen(o)) {
        // A deep-frozen part without references (the builders' shared constants): its
        // signature cannot change, so it is walked once and emitted as one literal.
        const sig = frozenSignature(o);
        if (sig !== null) {
          e.lit(sig);
          return;
        }
      }
      walkObject(o, refs, e, found);
      return;
    }
    default:
      e.lit(typeof v);
  }
}

const frozenSignatures = new WeakMap<object, string | null>();

/** Deep-frozen (every nested object and array frozen) and without a `reference` member anywhere. */
function frozenWithoutReferences(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (!Object.isFrozen(v)) return false;
  if (Array.isArray(v)) return v.every(frozenWithoutReferences);
  for (const k of Object.keys(v)) if (k === 'reference' || !frozenWithoutReferences((v as Obj)[k])) return false;
  return true;
}

/**
 * The signature of a frozen object (null unless it is deep-frozen without references): what walk
 * emits for it — an object's signature does not depend on the member it sits under, and without
 * references not on `refs` — built once per object.
 */
function frozenSignature(o: Obj): string | null {
  let sig = frozenSignatures.get(o);
  if (sig === undefined) {
    if (frozenWithoutReferences(o)) {
      const e = new StringEmitter();
      walkObject(o, undefined, e, undefined);
      sig = e.out;
    } else sig = null;
    frozenSignatures.set(o, sig);
  }
  return sig;
}

/** per-1 (start <= end): the order when both bounds are UTC seconds, else both verbatim. */
function periodOrder(start: string, end: string): string {
  if (UTC_SECONDS.test(start) && UTC_SECONDS.test(end)) return start <= end ? '|p<=' : '|p>';
  return `|p${JSON.stringify([start, end])}`;
}

/** walk's object case, member by member. */
function walkObject(o: Obj, refs: Map<string, string> | undefined, e: Emitter, found: FoundReferences | undefined): void {
  e.lit('{');
  for (const k in o) {
    e.key(k);
    walk(o[k], k, refs, e, found);
    e.lit(',');
  }
  if ('low' in o && 'high' in o) e.lit(rangeOrder(o));
  if (typeof o.start === 'string' && typeof o.end === 'string') e.lit(periodOrder(o.start, o.end));
  e.lit('}');
}

/**
 * The whole signature walk of a resource into an emitter. With `found`, the references met are
 * collected too (the frozen parts skipped hold none); `complete` is set when the walk covered the
 * whole resource.
 */
function emitSignature(resource: Obj, refs: Map<string, string> | undefined, e: Emitter, found?: FoundReferences): void {
  if (!SHAPE_AUDITED_TYPES.has(resource.resourceType as string) || 'contained' in resource) {
    e.lit(`J${canonical(resource)}${refs ? canonical([...refs]) : ''}`);
    return;
  }
  walk(resource, '', refs, e, found);
  if (found) found.complete = true;
  if (resource.resourceType === 'Observation' && Array.isArray(resource.component)) {
    // obs-7: a component coded like the Observation itself.
    const own = ((resource.code as Obj | undefined)?.coding as unknown[]) ?? [];
    e.lit('|c');
    for (const c of resource.component as Obj[])
      e.lit((((c?.code as Obj | undefined)?.coding as unknown[]) ?? []).some((x) => own.some((y) => sameValue(x, y))) ? '1' : '0');
  }
}

/**
 * The shape signature of a resource; `refs` maps references (e.g. urn:uuid:…) to the form the
 * validator is given (Type/id).
 */
export function shapeSignature(resource: Obj, refs?: Map<string, string>): string {
  const e = new StringEmitter();
  emitSignature(resource, refs, e);
  return e.out;
}

/**
 * Shapes by signature without building signatures: the walk's tokens followed down a trie whose
 * ends hold one entry per token sequence (the signature string is made once per entry, when it is
 * first reached). Entries of equal signatures but different token sequences would be separate,
 * which only costs a validation more. `maxNodes` bounds the trie: past it, it starts afresh.
 */
export class ShapeTrie {
  private root: TrieNode = newNode();
  private nodes = 0;
  constructor(private readonly maxNodes = 500_000) {}
  entry(resource: Obj, refs?: Map<string, string>, found?: FoundReferences): ShapeEntry {
    if (this.nodes >= this.maxNodes) {
      this.root = newNode();
      this.nodes = 0;
    }
    const e = new TrieEmitter(this.root);
    emitSignature(resource, refs, e, found);
    this.nodes += e.created;
    const shape = (e.node.shape ??= {});
    shape.signature ??= shapeSignature(resource, refs);
    return shape;
  }
}
