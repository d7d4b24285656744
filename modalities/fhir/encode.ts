/**
 * FHIR → model features (site side). Pure: no I/O.
 *
 * `FhirPatientEncoder` is a streaming accumulator: feed it Patient, Condition and Observation
 * resources in any order (`add`), then `finish()` returns exactly ONE integer row per patient,
 * in schema attribute order. This is the contribution bound of the whole system: one patient,
 * one row, however many resources they have.
 *
 * Rules (all fixed by the public schema, none learned from data):
 * - age: whole years from `birthDate` to the schema's reference date, or to `deceasedDateTime`
 *   when that is earlier; partial dates (YYYY, YYYY-MM) count from their first day.
 * - sex: `Patient.gender`, which must be one of the schema's values.
 * - a Patient without birthDate or gender (when the schema has age/sex), with a birthDate after
 *   the reference date or a gender outside the schema is quarantined (an issue), not encoded.
 * - conditions: 1 when any Condition of the patient carries one of the attribute's codes
 *   (SNOMED CT exact; ICD-10(-CM) code or any descendant), unless its verificationStatus is
 *   `refuted` or `entered-in-error`. Unknown codes are ignored.
 * - labs: the most recent Observation (effectiveDateTime / effectivePeriod / effectiveInstant /
 *   issued; undated ones count as oldest; equal times → the larger value, so the result does not
 *   depend on input order) with one of the LOINC codes, in `valueQuantity` or in a `component`
 *   (blood-pressure panels), whose unit (UCUM `code`, else `unit`) equals the schema's unit.
 *   Status `entered-in-error`/`cancelled` is ignored; other units are reported and ignored.
 * - Only the fields above are read: names, addresses, identifiers, telecom, text and extensions
 *   never enter features.
 *
 * Memory: per-patient encoded state (a few bytes per attribute), never the resources.
 */
import { ageBin, labBin, labMissingCode, type LabAttribute, type Schema, type SchemaAttribute } from '../../schema/schema.ts';
import { CODE_SYSTEMS, LOINC_SYSTEM } from '../../schema/schema.ts';
import type { EncodeIssue, FhirResourceLike } from './types.ts';

interface PatientState {
  hasPatient: boolean;
  quarantined: boolean;
  age: number;
  sex: number;
  cond: Uint8Array;
  labTime: Float64Array;
  labValue: Float64Array;
  /** Condition/Observation resources that referenced this id. */
  linked: number;
}

export interface EncodeCounts {
  /** Patients with a row. */
  patients: number;
  quarantinedPatients: number;
  duplicatePatients: number;
  resourcesByType: Record<string, number>;
  /** Condition/Observation resources whose subject is not a known (non-quarantined) patient. */
  unlinked: number;
  /** Resources of types the encoder does not use. */
  ignored: number;
}

export interface EncodeResult {
  names: string[];
  /** Patient ids, sorted; row i belongs to patientIds[i]. Stays at the site. */
  patientIds: string[];
  /** Row-major n × width codes. */
  rows: Uint16Array;
  width: number;
  n: number;
  issues: EncodeIssue[];
  counts: EncodeCounts;
}

/** The resource types the encoder reads. */
export const ENCODED_RESOURCE_TYPES = ['Patient', 'Condition', 'Observation'] as const;

/** Parses a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD, full dateTime) to epoch ms, or NaN. */
export function parseFhirDate(s: unknown): number {
  if (typeof s !== 'string') return NaN;
  if (/^\d{4}$/.test(s)) return Date.UTC(Number(s), 0, 1);
  if (/^\d{4}-\d{2}$/.test(s)) return Date.UTC(Number(s.slice(0, 4)), Number(s.slice(5, 7)) - 1, 1);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.UTC(Number(s.slice(0, 4)), Number(s.slice(5, 7)) - 1, Number(s.slice(8, 10)));
  if (/^\d{4}-\d{2}-\d{2}T/.test(s)) return Date.parse(s);
  return NaN;
}

/** Whole years between two calendar dates given as YYYY-MM-DD prefixes. */
function wholeYears(from: string, to: string): number {
  const fy = Number(from.slice(0, 4));
  const fm = from.length >= 7 ? Number(from.slice(5, 7)) : 1;
  const fd = from.length >= 10 ? Number(from.slice(8, 10)) : 1;
  const ty = Number(to.slice(0, 4));
  const tm = Number(to.slice(5, 7));
  const td = Number(to.slice(8, 10));
  let years = ty - fy;
  if (tm < fm || (tm === fm && td < fd)) years -= 1;
  return years;
}

/** The patient id a reference points at (`Patient/x`, absolute URL, `_history`, `urn:uuid:x`), or undefined. */
export function patientIdFromReference(ref: unknown): string | undefined {
  if (ref === null || typeof ref !== 'object') return undefined;
  const r = (ref as { reference?: unknown }).reference;
  if (typeof r !== 'string') return undefined;
  if (r.startsWith('urn:uuid:')) return r.slice(9) || undefined;
  const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]*)?$/.exec(r);
  return m ? m[1] : undefined;
}

function normIcd(code: string): string {
  return code.replace(/\./g, '').toUpperCase();
}

interface Coding {
  system?: unknown;
  code?: unknown;
}

function codings(concept: unknown): Coding[] {
  if (concept === null || typeof concept !== 'object') return [];
  const c = (concept as { coding?: unknown }).coding;
  return Array.isArray(c) ? (c.filter((x) => x !== null && typeof x === 'object') as Coding[]) : [];
}

function statusCodes(concept: unknown): string[] {
  return codings(concept)
    .map((c) => c.code)
    .filter((c): c is string => typeof c === 'string');
}

export class FhirPatientEncoder {
  readonly schema: Schema;
  private readonly attrs: SchemaAttribute[];
  private readonly ageIndex: number;
  private readonly sexIndex: number;
  private readonly condIndex: number[] = [];
  private readonly labIndex: number[] = [];
  private readonly labs: LabAttribute[] = [];
  /** system URI → code → condition slots. ICD systems store normalised codes (prefix match). */
  private readonly exactCodes = new Map<string, Map<string, number[]>>();
  private readonly prefixCodes = new Map<string, Map<string, number[]>>();
  private readonly loinc = new Map<string, number>();
  private readonly referenceDate: string;
  private readonly state = new Map<string, PatientState>();
  private readonly issues: EncodeIssue[] = [];
  private readonly byType: Record<string, number> = {};
  private ignored = 0;
  private duplicates = 0;
  private finished = false;

  constructor(schema: Schema) {
    this.schema = schema;
    this.attrs = schema.attributes;
    this.referenceDate = schema.referenceDate;
    this.ageIndex = this.attrs.findIndex((a) => a.kind === 'age');
    this.sexIndex = this.attrs.findIndex((a) => a.kind === 'sex');
    this.attrs.forEach((a, i) => {
      if (a.kind === 'condition') {
        const slot = this.condIndex.length;
        this.condIndex.push(i);
        for (const [key, list] of Object.entries(a.codes) as Array<[keyof typeof CODE_SYSTEMS, string[]]>) {
          const system = CODE_SYSTEMS[key];
          const prefix = key === 'icd10cm' || key === 'icd10';
          const table = prefix ? this.prefixCodes : this.exactCodes;
          let m = table.get(system);
          if (!m) table.set(system, (m = new Map()));
          for (const code of list) {
            const k = prefix ? normIcd(code) : code;
            const slots = m.get(k) ?? [];
            if (!slots.includes(slot)) slots.push(slot);
            m.set(k, slots);
          }
        }
      } else if (a.kind === 'lab') {
        const slot = this.labIndex.length;
        this.labIndex.push(i);
        this.labs.push(a);
        for (const code of a.loinc) this.loinc.set(code, slot);
      }
    });
  }

  private get(id: string): PatientState {
    let s = this.state.get(id);
    if (!s) {
      s = {
        hasPatient: false,
        quarantined: false,
        age: 0,
        sex: 0,
        cond: new Uint8Array(this.condIndex.length),
        labTime: new Float64Array(this.labs.length).fill(NaN),
        labValue: new Float64Array(this.labs.length).fill(NaN),
        linked: 0,
      };
      this.state.set(id, s);
    }
    return s;
  }

  private issue(r: FhirResourceLike, reason: string, detail?: string): void {
    this.issues.push({ source: `${r.resourceType}/${r.id ?? '(no id)'}`, reason, ...(detail === undefined ? {} : { detail }) });
  }

  /** Adds one resource (any type, any order). Never throws on bad content. */
  add(r: FhirResourceLike): void {
    if (this.finished) throw new Error('FhirPatientEncoder: add() after finish()');
    const type = typeof r?.resourceType === 'string' ? r.resourceType : '(none)';
    this.byType[type] = (this.byType[type] ?? 0) + 1;
    switch (type) {
      case 'Patient':
        return this.addPatient(r);
      case 'Condition':
        return this.addCondition(r);
      case 'Observation':
        return this.addObservation(r);
      default:
        this.ignored++;
    }
  }

  private addPatient(r: FhirResourceLike): void {
    if (typeof r.id !== 'string' || r.id === '') return this.issue(r, 'missing id');
    const s = this.get(r.id);
    if (s.hasPatient) {
      this.duplicates++;
      return this.issue(r, 'duplicate Patient id', 'the first Patient resource with this id is used');
    }
    s.hasPatient = true;
    if (this.ageIndex >= 0) {
      const birth = r.birthDate;
      if (typeof birth !== 'string' || birth === '') {
        s.quarantined = true;
        return this.issue(r, 'Patient without birthDate');
      }
      if (Number.isNaN(parseFhirDate(birth))) {
        s.quarantined = true;
        return this.issue(r, 'Patient with invalid birthDate', JSON.stringify(birth));
      }
      let at = this.referenceDate;
      const deceased = parseFhirDate(r.deceasedDateTime);
      if (!Number.isNaN(deceased) && deceased < parseFhirDate(at)) at = new Date(deceased).toISOString().slice(0, 10);
      const years = wholeYears(birth, at);
      if (years < 0) {
        s.quarantined = true;
        return this.issue(r, 'Patient born after the reference date', `birthDate ${birth}, reference ${at}`);
      }
      const attr = this.attrs[this.ageIndex];
      if (attr.kind === 'age') s.age = ageBin(attr, years);
    }
    if (this.sexIndex >= 0) {
      const attr = this.attrs[this.sexIndex];
      const g = r.gender;
      if (typeof g !== 'string' || g === '') {
        s.quarantined = true;
        return this.issue(r, 'Patient without gender');
      }
      const code = attr.kind === 'sex' ? attr.values.indexOf(g) : -1;
      if (code < 0) {
        s.quarantined = true;
        return this.issue(r, 'Patient gender not in schema', JSON.stringify(g));
      }
      s.sex = code;
    }
  }

  private subject(r: FhirResourceLike): PatientState | undefined {
    const id = patientIdFromReference(r.subject);
    if (id === undefined) {
      if (r.subject === undefined) this.issue(r, 'missing subject');
      // A subject that is not a Patient (Group, Device, …) cannot be linked: counted as unlinked.
      this.unlinkedNoSubject++;
      return undefined;
    }
    const s = this.get(id);
    s.linked++;
    return s;
  }
  private unlinkedNoSubject = 0;

  private addCondition(r: FhirResourceLike): void {
    const ver = statusCodes(r.verificationStatus);
    if (ver.includes('refuted') || ver.includes('entered-in-error')) {
      this.subject(r);
      return;
    }
    const s = this.subject(r);
    if (!s) return;
    for (const c of codings(r.code)) {
      if (typeof c.system !== 'string' || typeof c.code !== 'string') continue;
      const exact = this.exactCodes.get(c.system)?.get(c.code);
      if (exact) for (const slot of exact) s.cond[slot] = 1;
      const pm = this.prefixCodes.get(c.system);
      if (pm) {
        const code = normIcd(c.code);
        for (let len = 3; len <= code.length; len++) {
          const slots = pm.get(code.slice(0, len));
          if (slots) for (const slot of slots) s.cond[slot] = 1;
        }
      }
    }
  }

  private addObservation(r: FhirResourceLike): void {
    const status = r.status;
    if (status === 'entered-in-error' || status === 'cancelled') {
      this.subject(r);
      return;
    }
    const s = this.subject(r);
    if (!s) return;
    let t = parseFhirDate(r.effectiveDateTime);
    if (Number.isNaN(t)) t = parseFhirDate(r.effectiveInstant);
    if (Number.isNaN(t) && r.effectivePeriod && typeof r.effectivePeriod === 'object') {
      const p = r.effectivePeriod as { start?: unknown; end?: unknown };
      t = parseFhirDate(p.end);
      if (Number.isNaN(t)) t = parseFhirDate(p.start);
    }
    if (Number.isNaN(t)) t = parseFhirDate(r.issued);
    if (Number.isNaN(t)) t = -Infinity;
    this.takeLab(r, s, r.code, r.valueQuantity, t);
    if (Array.isArray(r.component)) {
      for (const comp of r.component) {
        if (comp && typeof comp === 'object') {
          const c = comp as { code?: unknown; valueQuantity?: unknown };
          this.takeLab(r, s, c.code, c.valueQuantity, t);
        }
      }
    }
  }

  private takeLab(r: FhirResourceLike, s: PatientState, code: unknown, quantity: unknown, t: number): void {
    let slot = -1;
    for (const c of codings(code)) {
      if (c.system === LOINC_SYSTEM && typeof c.code === 'string') {
        const k = this.loinc.get(c.code);
        if (k !== undefined) {
          slot = k;
          break;
        }
      }
    }
    if (slot < 0) return;
    const lab = this.labs[slot];
    if (quantity === null || typeof quantity !== 'object') return; // no value (e.g. dataAbsentReason)
    const q = quantity as { value?: unknown; unit?: unknown; code?: unknown };
    if (typeof q.value !== 'number' || !Number.isFinite(q.value)) {
      return this.issue(r, 'lab value is not a number', `${lab.name}: ${JSON.stringify(q.value)}`);
    }
    const unit = typeof q.code === 'string' ? q.code : typeof q.unit === 'string' ? q.unit : undefined;
    if (unit !== lab.unit) {
      return this.issue(r, 'lab unit not in schema', `${lab.name}: expected ${lab.unit}, got ${unit ?? '(none)'}`);
    }
    const cur = s.labTime[slot];
    if (Number.isNaN(cur) || t > cur || (t === cur && q.value > s.labValue[slot])) {
      s.labTime[slot] = t;
      s.labValue[slot] = q.value;
    }
  }

  /** Number of distinct patient ids seen so far (with or without a Patient resource). */
  get trackedIds(): number {
    return this.state.size;
  }

  /** Ends the stream and returns one row per (non-quarantined) patient, sorted by id. */
  finish(): EncodeResult {
    this.finished = true;
    const ids: string[] = [];
    let unlinked = this.unlinkedNoSubject;
    let quarantined = 0;
    for (const [id, s] of this.state) {
      if (!s.hasPatient) unlinked += s.linked;
      else if (s.quarantined) {
        quarantined++;
        unlinked += s.linked;
      } else ids.push(id);
    }
    ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const width = this.attrs.length;
    const rows = new Uint16Array(ids.length * width);
    ids.forEach((id, i) => {
      const s = this.state.get(id)!;
      const base = i * width;
      if (this.ageIndex >= 0) rows[base + this.ageIndex] = s.age;
      if (this.sexIndex >= 0) rows[base + this.sexIndex] = s.sex;
      this.condIndex.forEach((col, slot) => (rows[base + col] = s.cond[slot]));
      this.labIndex.forEach((col, slot) => {
        const lab = this.labs[slot];
        const v = s.labValue[slot];
        rows[base + col] = Number.isNaN(v) ? labMissingCode(lab) : labBin(lab, v);
      });
    });
    return {
      names: this.attrs.map((a) => a.name),
      patientIds: ids,
      rows,
      width,
      n: ids.length,
      issues: this.issues,
      counts: {
        patients: ids.length,
        quarantinedPatients: quarantined,
        duplicatePatients: this.duplicates,
        resourcesByType: { ...this.byType },
        unlinked,
        ignored: this.ignored,
      },
    };
  }
}

/** Row i of an encode result as a plain array. */
export function encodedRow(result: EncodeResult, i: number): number[] {
  return Array.from(result.rows.subarray(i * result.width, (i + 1) * result.width));
}

/** Convenience: encode a finite list of resources. */
export function encodeResources(schema: Schema, resources: Iterable<FhirResourceLike>): EncodeResult {
  const enc = new FhirPatientEncoder(schema);
  for (const r of resources) enc.add(r);
  return enc.finish();
}
