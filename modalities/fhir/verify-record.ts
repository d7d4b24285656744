/**
 * Verifies one patient's decoded record against the clinical knowledge base and the chronology a
 * life must keep, resource by resource: every clinical resource references an Encounter of the
 * record and happens during it; nothing is dated before birth, after death or after the schema's
 * reference date; onsets respect the knowledge base's minimum and maximum ages and sex; every
 * measured value is physiological for the age it was measured at and consistent with the
 * diagnoses held at that time; every prescription has an indication diagnosed by then, at an age
 * the drug is used at; an acute course (an antibiotic) is bounded, closed once over and written
 * at its episode; an active acute condition is recent, treated, and in a young infant admitted
 * (verify-acute.ts); children's eGFR is not an adult formula. Returns one violation per broken rule instance (rule ids are stable: the cohort
 * report counts them). Pure.
 */
import type { LabAttribute, Schema } from '../../schema/schema.ts';
import {
  acuteCourseViolations,
  ACUTE_STALE_DAYS,
  ADULT_YEARS,
  CONDITIONS,
  DEFINING_LAB_REASON,
  DEFINING_LABS,
  definingLabViolations,
  drugApprovalViolations,
  drugViolations,
  egfrEquationOf,
  hypertensionCodingViolations,
  hba1cKineticsViolations,
  INDICATIONS,
  SECONDARY_HYPERTENSION,
  labConditionViolations,
  labRange,
  maxOnsetYears,
  minOnsetYears,
  SEX_SPECIFIC,
} from '../clinical/index.ts';
import { DAY_MS, YEAR_MS } from './timeline.ts';
import type { FhirResourceLike } from './types.ts';
import { therapyViolations, type TherapyContext } from './verify-therapy.ts';
import { acuteViolations } from './verify-acute.ts';

export interface RecordViolation {
  rule: string;
  resource: string;
  detail: string;
}

/**
 * An acute condition's status at the record's end (`endMs`: the reference date or death): still
 * `active` ACUTE_STALE_DAYS after its onset (NICE NG138: most symptoms of pneumonia are gone by 3
 * months) is `stale-acute-condition`; an abatement before the onset or after the record's end, or
 * a resolved status without one, is `abatement-chronology`.
 */
function checkAcuteStatus(
  r: FhirResourceLike,
  name: string | undefined,
  onset: Map<string, number>,
  endMs: number,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  if (!name || CONDITIONS[name]?.course !== 'acute' || !onset.has(name)) return;
  const on = Date.parse(`${String(r.onsetDateTime).slice(0, 10)}T00:00:00Z`);
  const status = (r.clinicalStatus as Coded['code'])?.coding?.[0]?.code;
  const abated = typeof r.abatementDateTime === 'string' ? Date.parse(`${r.abatementDateTime.slice(0, 10)}T00:00:00Z`) : undefined;
  if (status === 'active' && endMs - on > ACUTE_STALE_DAYS * DAY_MS)
    add('stale-acute-condition', r, `active ${name} began ${Math.round((endMs - on) / DAY_MS)} days before the record's end`);
  if (status === 'resolved' && (abated === undefined || !(abated >= on) || abated > endMs))
    add('abatement-chronology', r, `resolved ${name} onset ${String(r.onsetDateTime)}, abatement ${String(r.abatementDateTime ?? 'none')}`);
}

/** eGFR LOINC codes of adult creatinine equations (CKD-EPI, MDRD): not for children. */
export const ADULT_EGFR_LOINC = new Set(['98979-8', '62238-1', '33914-3', '48642-3', '48643-1', '77147-7', '76633-7']);

interface Coded {
  code?: { coding?: { system?: string; code?: string }[] };
}
const codesOf = (r: Coded) => (r.code?.coding ?? []).map((c) => c.code ?? '');
const refOf = (v: unknown) => (v as { reference?: string } | undefined)?.reference;

/** The time a clinical resource happened at (ms), and the field it came from. */
function whenOf(r: FhirResourceLike): [number, string] | undefined {
  const field =
    r.resourceType === 'Observation'
      ? 'effectiveDateTime'
      : r.resourceType === 'Condition'
        ? 'recordedDate'
        : r.resourceType === 'ImagingStudy'
          ? 'started'
          : r.resourceType === 'DocumentReference'
            ? 'date'
            : r.resourceType === 'MedicationRequest'
              ? 'authoredOn'
              : undefined;
  const v = field ? r[field] : undefined;
  if (typeof v !== 'string') return undefined;
  const ms = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
  return Number.isFinite(ms) ? [ms, field!] : undefined;
}

/** Compiled lookups of a schema: SNOMED → condition name, LOINC → lab attribute. */
export interface RecordIndex {
  conditionBySnomed: Map<string, string>;
  labByLoinc: Map<string, LabAttribute>;
  referenceMs: number;
}

export function recordIndex(schema: Schema): RecordIndex {
  const conditionBySnomed = new Map<string, string>();
  const labByLoinc = new Map<string, LabAttribute>();
  for (const a of schema.attributes) {
    if (a.kind === 'condition') for (const c of a.codes.snomed) conditionBySnomed.set(c, a.name);
    // Hypertension before 6 is coded secondary (decode.ts), which the schema reads through ICD-10-CM I15.
    if (a.kind === 'condition' && a.name === 'hypertension') conditionBySnomed.set(SECONDARY_HYPERTENSION.snomed.code, a.name);
    if (a.kind === 'lab') for (const c of a.loinc) labByLoinc.set(c, a);
  }
  return { conditionBySnomed, labByLoinc, referenceMs: Date.parse(`${schema.referenceDate}T00:00:00Z`) + DAY_MS };
}

/** Every violation of the patient's flat resources (relative references). */
export function verifyRecord(index: RecordIndex, resources: readonly FhirResourceLike[]): RecordViolation[] {
  const out: RecordViolation[] = [];
  const key = (r: FhirResourceLike) => `${r.resourceType}/${r.id}`;
  const add = (rule: string, r: FhirResourceLike, detail: string) => out.push({ rule, resource: key(r), detail });
  const patient = resources.find((r) => r.resourceType === 'Patient');
  if (!patient) return [{ rule: 'no-patient', resource: 'Bundle', detail: 'the record has no Patient' }];
  const birthMs = typeof patient.birthDate === 'string' ? Date.parse(`${patient.birthDate}T00:00:00Z`) : NaN;
  const deathMs = typeof patient.deceasedDateTime === 'string' ? Date.parse(patient.deceasedDateTime) : Infinity;
  const sex = patient.gender as string | undefined;
  const ageAt = (ms: number) => (ms - birthMs) / YEAR_MS;
  const encounters = new Map<string, [number, number]>();
  for (const r of resources)
    if (r.resourceType === 'Encounter') {
      const p = r.period as { start?: string; end?: string } | undefined;
      const start = Date.parse(p?.start ?? '');
      const end = Date.parse(p?.end ?? p?.start ?? '');
      encounters.set(key(r), [start, end]);
      if (!Number.isFinite(start)) add('encounter-without-period', r, 'Encounter.period.start is missing');
    }
  if (encounters.size === 0) add('no-encounter', patient, 'the record has no Encounter');

  // Diagnoses: name → onset (ms), from the record's Conditions.
  const onset = new Map<string, number>();
  const conditionName = new Map<string, string>();
  for (const r of resources) {
    if (r.resourceType !== 'Condition') continue;
    const name = codesOf(r as Coded)
      .map((c) => index.conditionBySnomed.get(c))
      .find(Boolean);
    if (!name) continue;
    conditionName.set(key(r), name);
    const on = Date.parse(`${String(r.onsetDateTime).slice(0, 10)}T00:00:00Z`);
    if (!Number.isFinite(on)) continue;
    onset.set(name, Math.min(on, onset.get(name) ?? Infinity));
    if (on < birthMs) add('onset-before-birth', r, `${name} onset ${r.onsetDateTime} is before birth ${patient.birthDate}`);
    if (on > deathMs) add('onset-after-death', r, `${name} onset ${r.onsetDateTime} is after death ${String(patient.deceasedDateTime)}`);
    const years = ageAt(on);
    if (years < minOnsetYears(name) - 1 / 365)
      add('onset-before-min-age', r, `${name} onset at ${years.toFixed(2)} y, minimum ${minOnsetYears(name)}`);
    if (years > maxOnsetYears(name))
      add('onset-after-max-age', r, `${name} onset at ${years.toFixed(2)} y, maximum ${maxOnsetYears(name)}`);
    if (name === 'hypertension')
      for (const rule of hypertensionCodingViolations(years, codesOf(r as Coded)))
        add(rule, r, `hypertension begun at ${years.toFixed(2)} y coded ${codesOf(r as Coded).join(', ')} (AAP 2017: secondary before 6)`);
    const want = SEX_SPECIFIC[name];
    if (want && (sex === 'male' || sex === 'female') && sex !== want) add('sex-specific-condition', r, `${name} in a ${sex} patient`);
  }
  const hasAt = (ms: number) => (c: string) => onset.has(c) && onset.get(c)! <= ms;

  // A dead patient's chart lists no prescription as still being taken.
  if (Number.isFinite(deathMs))
    for (const r of resources)
      if (r.resourceType === 'MedicationRequest' && r.status === 'active')
        add('prescription-active-after-death', r, `still active although the patient died ${String(patient.deceasedDateTime)}`);
  for (const r of resources) {
    if (r.resourceType === 'Patient') continue;
    const when = r.resourceType === 'Encounter' ? encounters.get(key(r))?.[0] : whenOf(r)?.[0];
    if (when !== undefined && Number.isFinite(when)) {
      if (when < birthMs) add('before-birth', r, `dated ${new Date(when).toISOString()} before birth ${patient.birthDate}`);
      // An Encounter must also have ended by the death.
      const last = r.resourceType === 'Encounter' ? Math.max(when, encounters.get(key(r))?.[1] ?? when) : when;
      if (last > deathMs) add('after-death', r, `dated ${new Date(last).toISOString()} after death`);
      if (when >= index.referenceMs) add('after-reference-date', r, `dated ${new Date(when).toISOString()} after the reference date`);
    }
    if (r.resourceType === 'Encounter' || r.resourceType === 'Patient') continue;
    // Every clinical resource happens during an Encounter of the record.
    const encRefs =
      r.resourceType === 'DocumentReference'
        ? ((r.context as { encounter?: unknown[] } | undefined)?.encounter ?? []).map(refOf)
        : [refOf(r.encounter)];
    const enc = encRefs.map((e) => (e ? encounters.get(e) : undefined)).find(Boolean);
    if (!enc) add('encounter-reference', r, `no resolvable Encounter reference (${encRefs.join(', ') || 'none'})`);
    else if (when !== undefined && (when < Math.floor(enc[0] / DAY_MS) * DAY_MS || when > enc[1] + DAY_MS))
      add('outside-encounter', r, `dated ${new Date(when).toISOString()} outside its encounter ${new Date(enc[0]).toISOString()}`);
    if (r.resourceType === 'Observation') checkObservation(index, r, ageAt, hasAt, sex, add);
    if (r.resourceType === 'MedicationRequest' && when !== undefined)
      checkMedication(r, when, { ageAt, onset, conditionName, untilMs: Math.min(index.referenceMs, deathMs) }, add);
    if (r.resourceType === 'Condition') checkAcuteStatus(r, conditionName.get(key(r)), onset, Math.min(index.referenceMs, deathMs), add);
  }
  acuteViolations(resources, { birthMs, conditionName }, add);
  const labs = labsOf(index, resources);
  checkDefiningLabs(index, resources, conditionName, labs, ageAt, add);
  kineticsViolations(resources, labs, add);
  therapyViolations(
    resources,
    {
      ageAt,
      onset,
      encounters,
      labs,
      weights: weightsOf(resources),
      ...(Number.isFinite(deathMs) ? { deathMs } : {}),
    },
    add,
  );
  return out;
}

/**
 * `diagnosis-without-defining-lab` (clinical/defining-labs.ts): each diagnosis whose defining lab
 * the schema has is recorded with a value meeting the definition at its visit (CKD: a second one
 * 90 days before), unless the Condition's note states why not.
 */
function checkDefiningLabs(
  index: RecordIndex,
  resources: readonly FhirResourceLike[],
  conditionName: Map<string, string>,
  labs: TherapyContext['labs'],
  ageAt: (ms: number) => number,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const schemaLabs = new Set([...index.labByLoinc.values()].map((a) => a.name));
  for (const r of resources) {
    if (r.resourceType !== 'Condition') continue;
    const name = conditionName.get(`Condition/${r.id}`);
    const d = name ? DEFINING_LABS[name] : undefined;
    const recorded = whenOf(r)?.[0];
    if (!name || !d || !schemaLabs.has(d.lab) || recorded === undefined) continue;
    const enc = refOf(r.encounter);
    const all = labs.filter((l) => l.lab === d.lab);
    const stated = ((r.note as { text?: string }[] | undefined) ?? []).some((n) => n.text?.startsWith(DEFINING_LAB_REASON));
    for (const rule of definingLabViolations(name, ageAt(recorded), enc ? all.filter((l) => l.encounter === enc) : [], all, stated))
      add(rule, r, `${name} recorded ${String(r.recordedDate)} without ${d.lab} meeting its definition at the visit (${d.source})`);
  }
}

/** LOINC 29463-7 |Body weight| in kg, by `Encounter/<id>` (the last one read at a visit). */
function weightsOf(resources: readonly FhirResourceLike[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of resources) {
    if (r.resourceType !== 'Observation' || !codesOf(r as Coded).includes('29463-7')) continue;
    const q = r.valueQuantity as { value?: number; code?: string } | undefined;
    const enc = refOf(r.encounter);
    if (enc && typeof q?.value === 'number' && q.code === 'kg') out.set(enc, q.value);
  }
  return out;
}

/** HbA1c values falling faster than its kinetics allow (clinical/ranges.ts). */
function kineticsViolations(
  resources: readonly FhirResourceLike[],
  labs: TherapyContext['labs'],
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const a1c = labs.filter((l) => l.lab === 'hba1c');
  for (const i of hba1cKineticsViolations(a1c)) {
    const r = resources.find(
      (x) =>
        x.resourceType === 'Observation' &&
        whenOf(x)?.[0] === a1c[i].ms &&
        (x.valueQuantity as { value?: number } | undefined)?.value === a1c[i].value,
    );
    if (r)
      add('hba1c-falls-too-fast', r, `HbA1c ${a1c[i].value} % at ${new Date(a1c[i].ms).toISOString()}, faster than its kinetics allow`);
  }
}

/** The schema's lab values of the record with their time and visit (for the treatment-course rules). */
function labsOf(index: RecordIndex, resources: readonly FhirResourceLike[]): TherapyContext['labs'] {
  const labs: TherapyContext['labs'] = [];
  for (const r of resources) {
    if (r.resourceType !== 'Observation') continue;
    const lab = codesOf(r as Coded)
      .map((c) => index.labByLoinc.get(c))
      .find(Boolean);
    const value = (r.valueQuantity as { value?: number } | undefined)?.value;
    const ms = whenOf(r)?.[0];
    if (lab && typeof value === 'number' && ms !== undefined) labs.push({ lab: lab.name, value, ms, encounter: refOf(r.encounter) ?? '' });
  }
  return labs;
}

interface MedicationContext {
  ageAt: (ms: number) => number;
  onset: Map<string, number>;
  /** Condition resource key → condition name. */
  conditionName: Map<string, string>;
  /** The record's end: the reference date or death. */
  untilMs: number;
}

/** The drug–condition rules, and an acute course's, for one MedicationRequest authored at `when`. */
function checkMedication(
  r: FhirResourceLike,
  when: number,
  { ageAt, onset, conditionName, untilMs }: MedicationContext,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const rx = (r.medicationCodeableConcept as Coded['code'])?.coding?.[0]?.code ?? '';
  const reasons = ((r.reasonReference as unknown[] | undefined) ?? []).map((x) => conditionName.get(refOf(x) ?? ''));
  const verdicts = (reasons.length ? reasons : [undefined]).map((c) =>
    drugViolations(rx, c, ageAt(when), c !== undefined && onset.has(c) ? ageAt(onset.get(c)!) : undefined),
  );
  const best = [...verdicts.reduce((a, b) => (b.length < a.length ? b : a)), ...drugApprovalViolations(rx, when)];
  for (const rule of best) add(rule, r, `RxNorm ${rx} for ${reasons.join(', ') || 'no reason'} at ${ageAt(when).toFixed(1)} y`);
  const known = INDICATIONS.get(rx);
  if (!known?.drug.acuteCourseDays) return;
  const reason = reasons.find((c) => c !== undefined && known.conditions.includes(c));
  const days = courseDaysOf(r);
  const status = r.status as string | undefined;
  for (const rule of acuteCourseViolations(known.drug, status, days, when, reason === undefined ? undefined : onset.get(reason), untilMs))
    add(rule, r, `RxNorm ${rx}, ${days ?? 'no'} days, ${String(status)}, written ${new Date(when).toISOString()}`);
}

/** A course's length in days: the supply's expected duration, else the dosing phases' bounds. */
function courseDaysOf(r: FhirResourceLike): number | undefined {
  const inDays = (q: { value?: unknown; code?: unknown } | undefined) =>
    q && typeof q.value === 'number' ? q.value * ({ d: 1, wk: 7, h: 1 / 24 }[String(q.code)] ?? NaN) : undefined;
  const supply = inDays(
    (r.dispenseRequest as { expectedSupplyDuration?: { value?: unknown; code?: unknown } } | undefined)?.expectedSupplyDuration,
  );
  if (supply !== undefined && Number.isFinite(supply)) return supply;
  let total: number | undefined;
  for (const d of (r.dosageInstruction as
    { timing?: { repeat?: { boundsDuration?: { value?: unknown; code?: unknown } } } }[] | undefined) ?? []) {
    const b = inDays(d.timing?.repeat?.boundsDuration);
    if (b !== undefined && Number.isFinite(b)) total = (total ?? 0) + b;
  }
  return total;
}

function checkObservation(
  index: RecordIndex,
  r: FhirResourceLike,
  ageAt: (ms: number) => number,
  hasAt: (ms: number) => (c: string) => boolean,
  sex: string | undefined,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const codes = codesOf(r as Coded);
  const lab = codes.map((c) => index.labByLoinc.get(c)).find(Boolean);
  const value = (r.valueQuantity as { value?: number } | undefined)?.value;
  const when = whenOf(r)?.[0];
  if (!lab || typeof value !== 'number' || when === undefined) return;
  const age = ageAt(when);
  const range = labRange(lab.name, Math.floor(age));
  if (range && (value < range[0] || value > range[1]))
    add('value-out-of-range-for-age', r, `${lab.name} ${value} at ${age.toFixed(1)} y (plausible ${range[0]}-${range[1]})`);
  for (const rule of labConditionViolations(lab.name, value, age, hasAt(when), sex))
    add(rule, r, `${lab.name} ${value} at ${age.toFixed(1)} y`);
  if (lab.name === 'egfr' && age < ADULT_YEARS && codes.some((c) => ADULT_EGFR_LOINC.has(c)))
    add('adult-egfr-for-child', r, `eGFR by an adult formula (${codes.join(', ')}) at ${age.toFixed(1)} y`);
  // The first coding names the equation reported; one published after the result is anachronistic.
  const equation = lab.name === 'egfr' ? egfrEquationOf(codes[0] ?? '') : undefined;
  if (equation && when < equation.fromMs)
    add('egfr-equation-before-publication', r, `eGFR of ${new Date(when).toISOString().slice(0, 10)} coded ${equation.name} (${codes[0]})`);
}

/** Violation counts by rule. */
export function countByRule(violations: readonly RecordViolation[], into: Record<string, number> = {}): Record<string, number> {
  for (const v of violations) into[v.rule] = (into[v.rule] ?? 0) + 1;
  return into;
}
