/**
 * Model features → a longitudinal FHIR R4 record (coordinator side). Pure: no I/O.
 *
 * A synthetic row (codes in schema attribute order) is planned as a life (timeline.ts: birth,
 * visits, onsets drawn from the clinical knowledge base, repeated vitals and labs following the
 * conditions' course, prescriptions) and written as one Patient, its Encounters, one Condition
 * per condition indicator set to 1 (the schema's first SNOMED CT code and display, recorded at its
 * diagnosis visit), Observations at every visit that measured a lab (the first LOINC code, UCUM
 * unit; the latest one lies in the row's bin, so encoding the record gives back the row), and
 * MedicationRequests (RxNorm). Children's eGFR is the bedside Schwartz estimate, with the height
 * and creatinine it is derived from. Every clinical resource references its Encounter. Everything
 * random comes from the seeded Rng, ids included, so the same seed gives the same resources.
 */
import {
  LOINC_SYSTEM,
  UCUM_SYSTEM,
  CODE_SYSTEMS,
  labMissingCode,
  type ConditionAttribute,
  type LabAttribute,
  type Schema,
} from '../../schema/schema.ts';
import { Rng, type SeedLike } from '../../model/rng.ts';
import type { FhirResourceLike } from './types.ts';
import {
  ADULT_YEARS,
  creatinineForSchwartz,
  egfrEquationAt,
  INDICATIONS,
  isSecondaryHypertensionOnset,
  medianHeightCm,
  RXNORM_SYSTEM,
  SECONDARY_HYPERTENSION,
  type Course,
} from '../clinical/index.ts';
import {
  ClinicalInfeasibleError,
  DAY_MS,
  planTimeline,
  YEAR_MS,
  type PatientTimeline,
  type PlanEncounter,
  type PlanMedication,
  type RowFacts,
} from './timeline.ts';

/** Marks resources as synthetic test data (HL7 v3 ActReason HTEST). */
export const SYNTHETIC_TAG = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  code: 'HTEST',
  display: 'test health data',
} as const;

/**
 * Constant parts of the resources (meta, codings, categories, classes) are deep-frozen objects
 * shared by every resource that holds them: nothing mutates a built resource (Bundles hold
 * copies), and the shape signature of a frozen part is computed once (modalities/fhir/shape.ts).
 */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

/** One frozen value per key, made on first use. */
function frozenCache<T>(make: (key: string) => T): (key: string) => T {
  const m = new Map<string, T>();
  return (key) => {
    let v = m.get(key);
    if (v === undefined) m.set(key, (v = deepFreeze(make(key))));
    return v;
  };
}

const META = deepFreeze({ tag: [{ ...SYNTHETIC_TAG }] });
const CLINICAL_ACTIVE = deepFreeze({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] });
const CLINICAL_RESOLVED = deepFreeze({
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }],
});
const CONFIRMED = deepFreeze({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] });
const PROBLEM_LIST = deepFreeze([
  {
    coding: [
      { system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item', display: 'Problem List Item' },
    ],
  },
]);
const OBS_CATEGORY = frozenCache((category) => [
  {
    coding: [
      {
        system: 'http://terminology.hl7.org/CodeSystem/observation-category',
        code: category,
        display: category === 'vital-signs' ? 'Vital Signs' : 'Laboratory',
      },
    ],
  },
]);
/** A CodeableConcept of one coding, made once per (system, code, display, text). */
const CONCEPT = frozenCache((key) => {
  const [system, code, display, text] = key.split('|');
  return { coding: [{ system, code, ...(display ? { display } : {}) }], text };
});
const concept = (system: string, code: string, display: string | undefined, text: string) =>
  CONCEPT(`${system}|${code}|${display ?? ''}|${text}`);
/** The concept of a schema attribute (condition or lab), looked up by the attribute object. */
const attrConcepts = new WeakMap<object, unknown>();
function attrConcept(attr: object, make: () => unknown): unknown {
  let c = attrConcepts.get(attr);
  if (c === undefined) attrConcepts.set(attr, (c = make()));
  return c;
}
const DOSAGE = frozenCache((rxnorm) => {
  const d = INDICATIONS.get(rxnorm)!.drug;
  return [{ text: d.dosage, ...(d.asNeeded ? { asNeededBoolean: true } : {}) }];
});
/** SNOMED CT 26643006 |Oral route| and 47625008 |Intravenous route|: a course's route (the infants' injectables are intravenous). */
const ORAL_ROUTE = deepFreeze({ coding: [{ system: CODE_SYSTEMS.snomed, code: '26643006', display: 'Oral route' }] });
const IV_ROUTE = deepFreeze({ coding: [{ system: CODE_SYSTEMS.snomed, code: '47625008', display: 'Intravenous route' }] });
const SCHWARTZ_METHOD = deepFreeze({ text: 'Bedside Schwartz (CKiD 2009): 0.413 x height (cm) / serum creatinine (mg/dL)' });

export interface DecodeOptions {
  /** Identifier system for the synthetic patient number (default urn:fedsynth:synthetic). */
  identifierSystem?: string;
  /** Value of the identifier (e.g. the row number in the cohort). */
  identifierValue?: string;
}

export interface DecodedPatient {
  patient: FhirResourceLike;
  encounters: FhirResourceLike[];
  conditions: FhirResourceLike[];
  observations: FhirResourceLike[];
  medications: FhirResourceLike[];
  /** The planned life the resources were written from (dates as epoch ms). */
  timeline: PatientTimeline;
  /** `Encounter/<id>` of the index visit (notes, imaging and genome belong to it). */
  indexEncounterRef: string;
  /** FHIR dateTime of the chest radiograph, when one is taken: the index visit's day at 10:00Z (DICOM StudyDate/StudyTime follow it). */
  imagingStarted: string;
  /** FHIR dateTime of the index visit's note (after every value it quotes). */
  noteDate: string;
}

const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

/** The UTC civil date of a day number since 1970-01-01 (Hinnant's days_from_civil inverse). */
function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** YYYY-MM-DD of an instant (UTC), for years 1000-9999. */
function isoDate(ms: number): string {
  const [y, m, d] = civil(Math.floor(ms / DAY_MS));
  return `${y}-${TWO[m]}-${TWO[d]}`;
}

/** YYYY-MM-DDThh:mm:ssZ of an instant (UTC, whole seconds); what toISOString gives without milliseconds. */
export function isoDateTime(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  const t = Math.floor((ms - days * DAY_MS) / 1000);
  const [y, m, d] = civil(days);
  return `${y}-${TWO[m]}-${TWO[d]}T${TWO[Math.floor(t / 3600)]}:${TWO[Math.floor(t / 60) % 60]}:${TWO[t % 60]}Z`;
}

const SNOMED = CODE_SYSTEMS.snomed;
const ENCOUNTER_CLASS = deepFreeze({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' });
/** A hospital stay (v3 ActCode IMP, as US Core and Synthea's inpatient encounters use it). */
const INPATIENT_CLASS = deepFreeze({
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  code: 'IMP',
  display: 'inpatient encounter',
});
/** SNOMED CT encounter types (as Synthea's exports use them). */
const ENCOUNTER_TYPE: Record<string, { code: string; display: string }> = {
  'wellness-child': { code: '410620009', display: 'Well child visit (procedure)' },
  'wellness-adult': { code: '162673000', display: 'General examination of patient (procedure)' },
  diagnosis: { code: '185345009', display: 'Encounter for symptom (procedure)' },
  'follow-up': { code: '390906007', display: 'Follow-up encounter (procedure)' },
  imaging: { code: '363679005', display: 'Imaging (procedure)' },
  inpatient: { code: '32485007', display: 'Hospital admission (procedure)' },
};
const ENCOUNTER_TYPES = frozenCache((kind) => [
  concept(SNOMED, ENCOUNTER_TYPE[kind].code, ENCOUNTER_TYPE[kind].display, ENCOUNTER_TYPE[kind].display),
]);
const HEIGHT_LOINC = { code: '8302-2', display: 'Body height' };
/** LOINC 29463-7 as the FHIR R4 body-weight profile and the HL7 US Vital Signs IG name it. */
const WEIGHT_LOINC = { code: '29463-7', display: 'Body weight' };
const CREATININE_LOINC = { code: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma' };
/**
 * The paediatric eGFR's codes. 50384-7 is LOINC's term for the Schwartz estimate (method
 * "Creatinine-based formula (Schwartz)"; long name as in OHDSI Athena concept 3030104 and in
 * LOINC's eGFR mapping guidance). 69405-9 is the method-neutral term (long name as in the HL7
 * Switzerland CH LAB-Report IG's eGFR example, hl7ch/ch-lab-report, and in a public FHIR
 * Questionnaire of LOINC lab terms that files 50384-7 under it); it is kept as a second
 * coding because the schemas list it, so the sites' encoder reads the value.
 */
const SCHWARTZ_EGFR_LOINC = {
  code: '50384-7',
  display:
    'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (Schwartz)',
};
const EGFR_NEUTRAL_LOINC = {
  code: '69405-9',
  display: 'Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood',
};
/**
 * An adult eGFR's concept at the result's date: the equation laboratories could report then
 * (clinical/egfr-equation.ts), among the schema's codes, so that a 2010 result is not coded with
 * the 2021 equation's term; the attribute's own first code when the schema lists none of them.
 */
function adultEgfrConcept(attr: LabAttribute, ms: number): unknown {
  const e = egfrEquationAt(ms, attr.loinc);
  if (e === undefined || e.loinc === attr.loinc[0])
    return attrConcept(attr, () => concept(LOINC_SYSTEM, attr.loinc[0], attr.display, attr.display));
  return concept(LOINC_SYSTEM, e.loinc, e.display, e.display);
}

const schwartzConcepts = new WeakMap<LabAttribute, unknown>();
/** The paediatric eGFR's concept given the schema's eGFR codes (made once per attribute). */
function schwartzEgfrConcept(attr: LabAttribute): unknown {
  let c = schwartzConcepts.get(attr);
  if (c === undefined) schwartzConcepts.set(attr, (c = makeSchwartzConcept(attr)));
  return c;
}
function makeSchwartzConcept(attr: LabAttribute): unknown {
  const second = attr.loinc.includes(SCHWARTZ_EGFR_LOINC.code)
    ? []
    : attr.loinc.includes(EGFR_NEUTRAL_LOINC.code)
      ? [EGFR_NEUTRAL_LOINC]
      : [{ code: attr.loinc[0], display: attr.display }];
  return deepFreeze({
    coding: [SCHWARTZ_EGFR_LOINC, ...second].map((c) => ({ system: LOINC_SYSTEM, ...c })),
    text: 'eGFR, bedside Schwartz (paediatric)',
  });
}

const secondaryConcepts = new WeakMap<object, unknown>();
/**
 * Hypertension diagnosed before 6 years (AAP 2017: mostly secondary, clinical/hypertension.ts):
 * SNOMED CT 31992008 with its ICD-10-CM translation I15.9, which the sites' encoder reads as the
 * schema's hypertension through the attribute's ICD-10-CM codes (I15 and descendants). A schema
 * that reads neither cannot record it as secondary: decoding says so instead of writing
 * "essential hypertension" for a toddler.
 */
function secondaryHypertensionConcept(attr: ConditionAttribute): unknown {
  let c = secondaryConcepts.get(attr);
  if (c !== undefined) return c;
  const { snomed, icd10cm } = SECONDARY_HYPERTENSION;
  const icd = icd10cm.code.replace('.', '');
  const readsIcd = (attr.codes.icd10cm ?? []).some((p) => icd.startsWith(p.replace('.', '').toUpperCase()));
  if (!readsIcd && !attr.codes.snomed.includes(snomed.code))
    // The draft is rejected and redrawn (counted by rule), as any row no life fits.
    throw new ClinicalInfeasibleError(
      'secondary-hypertension-not-in-schema',
      `schema attribute ${attr.name} reads neither SNOMED CT ${snomed.code} nor ICD-10-CM ${icd10cm.code} (secondary hypertension, diagnosed before 6 years)`,
    );
  c = deepFreeze({
    coding: [
      { system: SNOMED, code: snomed.code, display: snomed.display },
      ...(readsIcd ? [{ system: CODE_SYSTEMS.icd10cm, code: icd10cm.code, display: icd10cm.display }] : []),
    ],
    text: 'Secondary hypertension',
  });
  secondaryConcepts.set(attr, c);
  return c;
}

export function encounterResource(
  id: string,
  subject: { reference: string },
  e: PlanEncounter,
  child: boolean,
  reasonRef?: string,
): FhirResourceLike {
  const kind = e.kind === 'wellness' ? (child ? 'wellness-child' : 'wellness-adult') : e.kind;
  return {
    resourceType: 'Encounter',
    id,
    meta: META,
    status: 'finished',
    class: e.kind === 'inpatient' ? INPATIENT_CLASS : ENCOUNTER_CLASS,
    type: ENCOUNTER_TYPES(kind),
    subject,
    period: { start: isoDateTime(e.startMs), end: isoDateTime(e.endMs) },
    ...(reasonRef ? { reasonReference: [{ reference: reasonRef }] } : {}),
  };
}

/** The row's facts the planner needs; throws on codes outside the schema's domains. */
export function rowFacts(schema: Schema, row: ArrayLike<number>): RowFacts {
  if (row.length !== schema.attributes.length) {
    throw new Error(
      `decodePatient: row has ${row.length} values, schema ${schema.name} v${schema.version} has ${schema.attributes.length} attributes`,
    );
  }
  const out: RowFacts = { ageBand: [40, 41], sex: 'unknown', conditions: [], labs: [] };
  schema.attributes.forEach((attr, i) => {
    const code = row[i];
    switch (attr.kind) {
      case 'age':
        if (!(code >= 0 && code < attr.edges.length)) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        out.ageBand = [attr.edges[code], code + 1 < attr.edges.length ? attr.edges[code + 1] : attr.max];
        break;
      case 'sex':
        if (attr.values[code] === undefined) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        out.sex = attr.values[code];
        break;
      case 'condition':
        if (code !== 0 && code !== 1) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        if (code === 1) out.conditions.push(attr.name);
        break;
      case 'lab':
        if (!(code >= 0 && code <= labMissingCode(attr))) throw new Error(`decodePatient: ${attr.name} code ${code} out of domain`);
        if (code !== labMissingCode(attr)) out.labs.push({ attr, bin: code });
        break;
    }
  });
  return out;
}

/** Decodes one synthetic row into a longitudinal FHIR R4 record. `rng` drives ids, dates and values. */
export function decodePatient(schema: Schema, row: ArrayLike<number>, rng: Rng, options: DecodeOptions = {}): DecodedPatient {
  const facts = rowFacts(schema, row);
  const refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
  const patientId = rng.uuid();
  const subject = { reference: `Patient/${patientId}` };
  const meta = META;
  const tl = planTimeline(facts, refMs, rng.fork('life'));
  const patient: FhirResourceLike = {
    resourceType: 'Patient',
    id: patientId,
    meta,
    identifier: [{ system: options.identifierSystem ?? 'urn:fedsynth:synthetic', value: options.identifierValue ?? patientId }],
    ...(schema.attributes.some((a) => a.kind === 'sex') ? { gender: facts.sex } : {}),
    birthDate: isoDate(tl.birthMs),
    // A life that ended before the reference date (clinical/mortality.ts): nothing is dated after it.
    ...(tl.deathMs !== undefined ? { deceasedDateTime: isoDateTime(tl.deathMs) } : {}),
  };
  const ageAt = (ms: number) => (ms - tl.birthMs) / YEAR_MS;
  const encIds = tl.encounters.map(() => rng.uuid());
  const condIds = tl.conditions.map(() => rng.uuid());
  const condRef = new Map(tl.conditions.map((c, i) => [c.name, `Condition/${condIds[i]}`]));
  const encRefs = encIds.map((id) => ({ reference: `Encounter/${id}` }));
  const encRef = (i: number) => encRefs[i];
  const encounters = tl.encounters.map((e, i) =>
    encounterResource(encIds[i], subject, e, ageAt(e.startMs) < ADULT_YEARS, e.reason ? condRef.get(e.reason) : undefined),
  );
  const conditionAttr = new Map(schema.attributes.filter((a) => a.kind === 'condition').map((a) => [a.name, a]));
  const conditions = tl.conditions.map((c, i): FhirResourceLike => {
    const attr = conditionAttr.get(c.name)!;
    if (attr.kind !== 'condition') throw new Error('unreachable');
    return {
      resourceType: 'Condition',
      id: condIds[i],
      meta,
      // An acute episode over by the record's end is resolved (the sites' encoder counts it all the same:
      // it reads every Condition that is not refuted or entered in error).
      clinicalStatus: c.abatementMs !== undefined ? CLINICAL_RESOLVED : CLINICAL_ACTIVE,
      verificationStatus: CONFIRMED,
      category: PROBLEM_LIST,
      code:
        c.name === 'hypertension' && isSecondaryHypertensionOnset(ageAt(c.onsetMs))
          ? secondaryHypertensionConcept(attr)
          : attrConcept(attr, () => concept(SNOMED, attr.codes.snomed[0], attr.display, attr.display)),
      subject,
      encounter: encRef(c.encounter),
      onsetDateTime: isoDate(c.onsetMs),
      // Why the diagnosis visit shows no value meeting the definition (clinical/defining-labs.ts).
      ...(c.definingLabReason ? { note: [{ text: c.definingLabReason }] } : {}),
      ...(c.abatementMs !== undefined ? { abatementDateTime: isoDate(c.abatementMs) } : {}),
      recordedDate: isoDateTime(tl.encounters[c.encounter].startMs),
    };
  });
  const labAttr = new Map(schema.attributes.filter((a): a is LabAttribute => a.kind === 'lab').map((a) => [a.name, a]));
  const observations: FhirResourceLike[] = [];
  const obs = (code: unknown, category: string, ms: number, enc: number, value: number, unit: string, extra = {}) => {
    const id = rng.uuid();
    observations.push({
      resourceType: 'Observation',
      id,
      meta,
      status: 'final',
      category: OBS_CATEGORY(category),
      code,
      subject,
      encounter: encRef(enc),
      effectiveDateTime: isoDateTime(ms),
      valueQuantity: { value, unit, system: UCUM_SYSTEM, code: unit },
      ...extra,
    });
    return `Observation/${id}`;
  };
  for (const m of tl.measurements) {
    const attr = labAttr.get(m.lab)!;
    const age = ageAt(m.ms);
    if (attr.name === 'egfr' && age < ADULT_YEARS) {
      // Children: bedside Schwartz from height and creatinine, never the adult CKD-EPI formula.
      const height = Math.round(medianHeightCm(age, facts.sex) * (0.94 + 0.12 * rng.next()));
      const creatinine = Number(creatinineForSchwartz(height, m.value).toFixed(2));
      const h = obs(
        concept(LOINC_SYSTEM, HEIGHT_LOINC.code, HEIGHT_LOINC.display, HEIGHT_LOINC.display),
        'vital-signs',
        m.ms,
        m.encounter,
        height,
        'cm',
      );
      const c = obs(
        concept(LOINC_SYSTEM, CREATININE_LOINC.code, CREATININE_LOINC.display, CREATININE_LOINC.display),
        'laboratory',
        m.ms,
        m.encounter,
        creatinine,
        'mg/dL',
      );
      obs(schwartzEgfrConcept(attr), attr.category, m.ms, m.encounter, m.value, attr.unit, {
        method: SCHWARTZ_METHOD,
        derivedFrom: [{ reference: h }, { reference: c }],
      });
      continue;
    }
    obs(
      attr.name === 'egfr'
        ? adultEgfrConcept(attr, m.ms)
        : attrConcept(attr, () => concept(LOINC_SYSTEM, attr.loinc[0], attr.display, attr.display)),
      attr.category,
      m.ms,
      m.encounter,
      m.value,
      attr.unit,
    );
  }
  // The weight a child's antibiotic dose was computed from, weighed once at the visit that
  // prescribed it (an infant's two injectables share one weighing); likewise a child's
  // antihypertensive step (by weight, AAP 2017), weighed before it was written.
  const weighed = new Set<string>();
  for (const m of tl.medications) {
    const kg = m.course?.weightKg ?? m.weightKg;
    if (kg !== undefined && !weighed.has(`${m.encounter}|${kg}`) && weighed.add(`${m.encounter}|${kg}`))
      obs(
        concept(LOINC_SYSTEM, WEIGHT_LOINC.code, WEIGHT_LOINC.display, WEIGHT_LOINC.display),
        'vital-signs',
        m.authoredMs + (m.course ? 10 : -5) * 60_000,
        m.encounter,
        kg,
        'kg',
      );
  }
  // Ids first (drawn in the same order as before), so a step up can name the prescription it replaces.
  const medIds = new Map(tl.medications.map((m) => [m, rng.uuid()] as const));
  const medications = tl.medications.map((m): FhirResourceLike => {
    if (m.course) return courseRequest(medIds.get(m)!, subject, encRef(m.encounter), m, m.course, condRef, tl.deathMs);
    const prior = m.prior && medIds.get(m.prior);
    // A prescription still running when the patient died ends with the death (the chart of a dead
    // patient lists nothing as still taken).
    const stoppedMs = m.stoppedMs ?? tl.deathMs;
    const stopReason = m.stoppedMs !== undefined ? (m.stopReason ?? 'Replaced') : 'Patient died';
    return {
      resourceType: 'MedicationRequest',
      id: medIds.get(m)!,
      meta,
      status: stoppedMs === undefined ? 'active' : 'stopped',
      ...(stoppedMs === undefined ? {} : { statusReason: { text: `${stopReason} on ${isoDateTime(stoppedMs).slice(0, 10)}` } }),
      intent: 'order',
      medicationCodeableConcept: concept(RXNORM_SYSTEM, m.drug.rxnorm, m.drug.display, m.drug.display),
      subject,
      encounter: encRef(m.encounter),
      authoredOn: isoDateTime(m.authoredMs),
      reasonReference: m.reasons.map((r) => ({ reference: condRef.get(r)! })),
      ...(prior ? { priorPrescription: { reference: `MedicationRequest/${prior}` } } : {}),
      dosageInstruction: DOSAGE(m.drug.rxnorm),
    };
  });
  const indexDay = Math.floor(tl.indexMs / DAY_MS) * DAY_MS;
  return {
    patient,
    encounters,
    conditions,
    observations,
    medications,
    timeline: tl,
    indexEncounterRef: `Encounter/${encIds[tl.indexEncounter]}`,
    imagingStarted: isoDateTime(indexDay + 10 * 3600_000),
    noteDate: isoDateTime(indexDay + 11 * 3600_000),
  };
}

const days = (value: number) => ({ value, unit: 'd', system: UCUM_SYSTEM, code: 'd' });

/**
 * An acute course (an antibiotic) as a MedicationRequest: completed (stopped when the patient died
 * before its last day), each dosing phase with its dose, frequency and days, the supply for the
 * course's days.
 */
function courseRequest(
  id: string,
  subject: { reference: string },
  encounter: { reference: string },
  m: PlanMedication,
  course: Course,
  condRef: Map<string, string>,
  deathMs: number | undefined,
): FhirResourceLike {
  const died = deathMs !== undefined && deathMs < m.authoredMs + course.days * DAY_MS;
  return {
    resourceType: 'MedicationRequest',
    id,
    meta: META,
    status: died ? 'stopped' : 'completed',
    ...(died ? { statusReason: { text: 'Patient died during the course' } } : {}),
    intent: 'order',
    medicationCodeableConcept: concept(RXNORM_SYSTEM, m.drug.rxnorm, m.drug.display, m.drug.display),
    subject,
    encounter,
    authoredOn: isoDateTime(m.authoredMs),
    reasonReference: m.reasons.map((r) => ({ reference: condRef.get(r)! })),
    dosageInstruction: course.doses.map((d, i) => ({
      sequence: i + 1,
      text: d.text,
      timing: { repeat: { boundsDuration: days(d.days), frequency: d.timesPerDay, period: 1, periodUnit: 'd' } },
      route: m.drug.route === 'intravenous' ? IV_ROUTE : ORAL_ROUTE,
      doseAndRate: [{ doseQuantity: { value: d.doseMg, unit: 'mg', system: UCUM_SYSTEM, code: 'mg' } }],
    })),
    dispenseRequest: { expectedSupplyDuration: days(course.days) },
  };
}

export interface DecodedCohort {
  Patient: FhirResourceLike[];
  Encounter: FhirResourceLike[];
  Condition: FhirResourceLike[];
  Observation: FhirResourceLike[];
  MedicationRequest: FhirResourceLike[];
}

/** Decodes many rows; patient k uses the sub-stream `seed/k`, so any prefix of rows decodes the same. */
export function decodeCohort(
  schema: Schema,
  rows: Iterable<ArrayLike<number>>,
  seed: SeedLike,
  options: Omit<DecodeOptions, 'identifierValue'> = {},
): DecodedCohort {
  const root = new Rng(seed);
  const out: DecodedCohort = { Patient: [], Encounter: [], Condition: [], Observation: [], MedicationRequest: [] };
  let k = 0;
  for (const row of rows) {
    const d = decodePatient(schema, row, root.fork(k), { ...options, identifierValue: String(k + 1) });
    out.Patient.push(d.patient);
    out.Encounter.push(...d.encounters);
    out.Condition.push(...d.conditions);
    out.Observation.push(...d.observations);
    out.MedicationRequest.push(...d.medications);
    k++;
  }
  return out;
}

/** One JSON line per resource (no trailing newline in each entry). */
export function toNdjsonLines(resources: Iterable<FhirResourceLike>): string[] {
  const lines: string[] = [];
  for (const r of resources) lines.push(JSON.stringify(r));
  return lines;
}

/** NDJSON text: one resource per line, newline-terminated. */
export function toNdjson(resources: Iterable<FhirResourceLike>): string {
  const lines = toNdjsonLines(resources);
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
