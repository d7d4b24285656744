/**
 * Image finding labels from the radiologist's coded report, used instead of the pixel rules
 * (features/image.ts) whenever a report for the image's study carries coded findings. Sources:
 * FHIR DiagnosticReport.conclusionCode linked to the study through DiagnosticReport.imagingStudy
 * → ImagingStudy.identifier (the DICOM StudyInstanceUID), and DICOM Structured Reports of the
 * same study (their CODE content items, collected by the DICOM connector).
 *
 * A study with a report that carries at least one code of the table below is labelled: a
 * feature whose codes appear gets its schema attribute's last class (enlarged / opacity /
 * nodule), every other feature class 0 (reports code the findings present; an explicit
 * "normal" code labels all absent). A report with none of these codes leaves the study to the
 * pixel rules. Pure: no I/O.
 */
import type { ImageFeature, ImageFindingAttribute } from '../../schema/schema.ts';
import type { FhirResource } from '../connectors/types.ts';

export const SNOMED = 'http://snomed.info/sct';

/** SNOMED CT findings per image feature (public, data-independent). */
export const REPORT_FINDING_CODES: Record<ImageFeature, Record<string, string>> = {
  'cardiothoracic-ratio': { '8186001': 'Cardiomegaly' },
  'lung-opacity': {
    '95436008': 'Lung consolidation',
    '233604007': 'Pneumonia',
    '19242006': 'Pulmonary edema',
    '46621007': 'Atelectasis',
  },
  nodule: { '786838002': 'Pulmonary nodule' },
};
/** Codes stating that nothing abnormal was found. */
export const REPORT_NORMAL_CODES: Record<string, string> = { '827032003': 'Normal lung', '281900007': 'No abnormality detected' };

const FEATURE_OF = new Map<string, ImageFeature>();
for (const [feature, codes] of Object.entries(REPORT_FINDING_CODES))
  for (const code of Object.keys(codes)) FEATURE_OF.set(code, feature as ImageFeature);

/** Per-study labels: the features the report found present. */
export type ReportLabels = ReadonlySet<ImageFeature>;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** DICOM UIDs appear as "urn:oid:1.2.3" or bare. */
const bareUid = (v: string) => v.replace(/^urn:oid:/, '');

/** SNOMED codes of coded concepts (CodeableConcept lists or {system, code} pairs). */
function snomedCodes(concepts: unknown): string[] {
  const out: string[] = [];
  for (const cc of Array.isArray(concepts) ? concepts : []) {
    for (const c of isObject(cc) && Array.isArray(cc.coding) ? cc.coding : []) {
      if (isObject(c) && c.system === SNOMED && typeof c.code === 'string') out.push(c.code);
    }
  }
  return out;
}

export class ReportFindingIndex {
  /** ImagingStudy id → StudyInstanceUID. */
  private readonly studyUidById = new Map<string, string>();
  /** Reports waiting for their ImagingStudy (resources may arrive in any order). */
  private readonly pending: { refs: string[]; codes: string[] }[] = [];
  private readonly byStudy = new Map<string, { present: Set<ImageFeature>; coded: boolean }>();
  reports = 0;
  structuredReports = 0;

  /** Feeds an ImagingStudy or a DiagnosticReport; other resources are ignored. */
  add(r: FhirResource): void {
    if (r.resourceType === 'ImagingStudy' && typeof r.id === 'string') {
      const ids = Array.isArray(r.identifier) ? r.identifier : [];
      const uid = ids.find((i) => isObject(i) && i.system === 'urn:dicom:uid' && typeof i.value === 'string') as
        { value: string } | undefined;
      if (uid) this.studyUidById.set(r.id, bareUid(uid.value));
      return;
    }
    if (r.resourceType !== 'DiagnosticReport') return;
    const status = r.status;
    if (status === 'entered-in-error' || status === 'cancelled' || status === 'registered') return;
    const codes = snomedCodes(r.conclusionCode);
    if (codes.length === 0) return;
    const refs = (Array.isArray(r.imagingStudy) ? r.imagingStudy : [])
      .map((x) =>
        isObject(x) && typeof x.reference === 'string' ? x.reference.replace(/^.*ImagingStudy\//, '').replace(/\/_history\/.*$/, '') : '',
      )
      .filter(Boolean);
    if (refs.length === 0) return;
    this.reports++;
    this.pending.push({ refs, codes });
  }

  /** Coded findings of a DICOM SR (SNOMED codes: scheme SCT, or SRT for the legacy SNOMED RT ids). */
  addStructuredReport(studyUid: string, codes: readonly string[]): void {
    this.structuredReports++;
    this.label(studyUid, codes);
  }

  /** The labels of a study, or undefined when no coded report covers it. */
  labelsFor(studyUid: string | undefined): ReportLabels | undefined {
    if (!studyUid) return undefined;
    this.resolve();
    const s = this.byStudy.get(studyUid);
    return s?.coded ? s.present : undefined;
  }

  /** Studies that have labels. */
  get labelledStudies(): number {
    this.resolve();
    let n = 0;
    for (const s of this.byStudy.values()) if (s.coded) n++;
    return n;
  }

  private resolve(): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]!;
      const uids = p.refs.map((id) => this.studyUidById.get(id)).filter((u): u is string => u !== undefined);
      if (uids.length === 0) continue;
      for (const uid of uids) this.label(uid, p.codes);
      this.pending.splice(i, 1);
    }
  }

  private label(studyUid: string, codes: readonly string[]): void {
    let s = this.byStudy.get(studyUid);
    if (!s) this.byStudy.set(studyUid, (s = { present: new Set(), coded: false }));
    for (const code of codes) {
      const f = FEATURE_OF.get(code);
      if (f) {
        s.present.add(f);
        s.coded = true;
      } else if (code in REPORT_NORMAL_CODES) s.coded = true;
    }
  }
}

/** Class codes of the finding attributes from report labels: present → last class, absent → 0. */
export function reportFindingCodes(attrs: readonly ImageFindingAttribute[], labels: ReportLabels): number[] {
  return attrs.map((a) => (labels.has(a.feature) ? a.classes.length - 1 : 0));
}
