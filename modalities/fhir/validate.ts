/**
 * Structural checks of the FHIR R4 resources fedsynth emits (Patient, Encounter, Condition,
 * Observation, MedicationRequest):
 * required fields and their shapes, code systems, and that every subject reference resolves to a
 * Patient in the same set. Not a full profile validator; it guards what decoders write before
 * release. Pure.
 */
import { FHIR_GENDERS } from '../../schema/schema.ts';
import type { FhirResourceLike } from './types.ts';

export interface FhirValidationError {
  resource: string;
  message: string;
}

const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
const DATE_RE = /^\d{4}(-\d{2}(-\d{2})?)?$/;
const DATETIME_RE = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;
const OBS_STATUS = ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'];

function isCodeableConcept(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const c = (v as { coding?: unknown; text?: unknown }).coding;
  if (c === undefined) return typeof (v as { text?: unknown }).text === 'string';
  return (
    Array.isArray(c) &&
    c.length > 0 &&
    c.every(
      (x) =>
        x &&
        typeof x === 'object' &&
        typeof (x as { system?: unknown }).system === 'string' &&
        typeof (x as { code?: unknown }).code === 'string',
    )
  );
}

/** Validates a set of resources; returns every problem found (empty = valid). */
export function validateFhirResources(resources: Iterable<FhirResourceLike>): FhirValidationError[] {
  const errors: FhirValidationError[] = [];
  const list = [...resources];
  const patients = new Set<string>();
  const seen = new Set<string>();
  for (const r of list) {
    const key = `${r.resourceType}/${r.id}`;
    if (r.resourceType === 'Patient' && typeof r.id === 'string') patients.add(r.id);
    if (seen.has(key)) errors.push({ resource: key, message: 'duplicate resource id' });
    seen.add(key);
  }
  for (const r of list) {
    const key = `${r.resourceType}/${r.id}`;
    const err = (message: string) => errors.push({ resource: key, message });
    if (typeof r.id !== 'string' || !ID_RE.test(r.id)) err(`id ${JSON.stringify(r.id)} is not a FHIR id`);
    const subjectOk = () => {
      const ref = (r.subject as { reference?: unknown } | undefined)?.reference;
      if (typeof ref !== 'string') return err('subject.reference is required');
      const m = /^Patient\/(.+)$/.exec(ref);
      if (!m) return err(`subject ${ref} is not a Patient reference`);
      if (!patients.has(m[1])) err(`subject ${ref} does not resolve to a Patient in this set`);
    };
    switch (r.resourceType) {
      case 'Patient':
        if (r.gender !== undefined && !(FHIR_GENDERS as readonly string[]).includes(r.gender as string))
          err(`gender ${JSON.stringify(r.gender)} is not an administrative-gender code`);
        if (r.birthDate !== undefined && (typeof r.birthDate !== 'string' || !DATE_RE.test(r.birthDate)))
          err(`birthDate ${JSON.stringify(r.birthDate)} is not a FHIR date`);
        break;
      case 'Condition':
        if (!isCodeableConcept(r.code)) err('code must be a CodeableConcept with system and code');
        subjectOk();
        if (r.clinicalStatus !== undefined && !isCodeableConcept(r.clinicalStatus)) err('clinicalStatus must be a CodeableConcept');
        if (r.verificationStatus !== undefined && !isCodeableConcept(r.verificationStatus))
          err('verificationStatus must be a CodeableConcept');
        if (r.onsetDateTime !== undefined && (typeof r.onsetDateTime !== 'string' || !DATETIME_RE.test(r.onsetDateTime)))
          err('onsetDateTime is not a FHIR dateTime');
        break;
      case 'Observation': {
        if (typeof r.status !== 'string' || !OBS_STATUS.includes(r.status))
          err(`status ${JSON.stringify(r.status)} is not an observation-status code`);
        if (!isCodeableConcept(r.code)) err('code must be a CodeableConcept with system and code');
        subjectOk();
        if (r.effectiveDateTime !== undefined && (typeof r.effectiveDateTime !== 'string' || !DATETIME_RE.test(r.effectiveDateTime)))
          err('effectiveDateTime is not a FHIR dateTime');
        const q = r.valueQuantity as { value?: unknown; system?: unknown; code?: unknown } | undefined;
        if (q !== undefined) {
          if (typeof q.value !== 'number' || !Number.isFinite(q.value)) err('valueQuantity.value must be a number');
          if (q.code !== undefined && q.system === undefined) err('valueQuantity.code requires valueQuantity.system');
        }
        break;
      }
      case 'Encounter': {
        subjectOk();
        const p = r.period as { start?: unknown; end?: unknown } | undefined;
        if (typeof p?.start !== 'string' || !DATETIME_RE.test(p.start)) err('period.start must be a FHIR dateTime');
        if (
          p?.end !== undefined &&
          (typeof p.end !== 'string' || !DATETIME_RE.test(p.end) || Date.parse(p.end) < Date.parse(p.start as string))
        )
          err('period.end must be a FHIR dateTime not before period.start');
        break;
      }
      case 'MedicationRequest':
        subjectOk();
        if (!isCodeableConcept(r.medicationCodeableConcept))
          err('medicationCodeableConcept must be a CodeableConcept with system and code');
        if (typeof r.authoredOn !== 'string' || !DATETIME_RE.test(r.authoredOn)) err('authoredOn is not a FHIR dateTime');
        break;
      default:
        if (typeof r.resourceType !== 'string' || !/^[A-Z][A-Za-z]+$/.test(r.resourceType)) err('resourceType is missing or malformed');
    }
  }
  return errors;
}
