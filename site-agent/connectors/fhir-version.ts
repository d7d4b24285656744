/**
 * FHIR version detection. The encoders understand R4 (4.0.x) only; data of another version
 * parses as JSON just as well and would be misread (an STU3 Condition's `clinicalStatus` is the
 * bare string "active", which an R4 reader does not see as active). Evidence, strongest first:
 * a server's CapabilityStatement `fhirVersion` (`/metadata`), a version-specific `meta.profile`
 * URL, and shapes that exist in one version only. R4B (4.3) shares R4's shapes for the resources
 * read here and is accepted.
 */
import type { FhirResource, Quarantine } from './types.ts';

export type FhirRelease = 'DSTU2' | 'STU3' | 'R4' | 'R4B' | 'R5' | 'unknown';

export interface VersionEvidence {
  release: FhirRelease;
  /** What showed it, for the quarantine detail (e.g. "Condition.clinicalStatus is a bare string"). */
  evidence: string;
}

/** The release of a `fhirVersion` string ("3.0.1" → STU3). */
export function releaseOfVersion(version: string): FhirRelease {
  const v = version.trim();
  if (/^1\.0(\.|$)/.test(v)) return 'DSTU2';
  if (/^3\.0(\.|$)/.test(v)) return 'STU3';
  if (/^4\.0(\.|$)/.test(v)) return 'R4';
  if (/^4\.3(\.|$)/.test(v)) return 'R4B';
  if (/^5\.0(\.|$)/.test(v)) return 'R5';
  return 'unknown';
}

export const isR4 = (release: FhirRelease): boolean => release === 'R4' || release === 'R4B';

const PROFILE_RELEASE: [RegExp, FhirRelease][] = [
  [/hl7\.org\/fhir\/(DSTU2|1\.0)\//i, 'DSTU2'],
  [/hl7\.org\/fhir\/(STU3|3\.0)\//i, 'STU3'],
  [/hl7\.org\/fhir\/(R5|5\.0)\//i, 'R5'],
  [/hl7\.org\/fhir\/(R4|4\.0)\//i, 'R4'],
];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Shapes only one release has, per resource type: the first that matches names the release. */
function releaseFromShape(r: FhirResource): VersionEvidence | undefined {
  const t = r.resourceType;
  const str = (field: string) => typeof r[field] === 'string';
  if (t === 'Condition' || t === 'AllergyIntolerance') {
    // STU3: code; R4: CodeableConcept.
    if (str('clinicalStatus')) return { release: 'STU3', evidence: `${t}.clinicalStatus is a bare string` };
    if (str('verificationStatus')) return { release: 'STU3', evidence: `${t}.verificationStatus is a bare string` };
    if (t === 'Condition' && isObject(r.patient) && !('subject' in r))
      return { release: 'DSTU2', evidence: 'Condition.patient instead of subject' };
    if (t === 'Condition' && typeof r.assertedDate === 'string') return { release: 'STU3', evidence: 'Condition.assertedDate' };
  }
  if (t === 'Observation' || t === 'Procedure' || t === 'DiagnosticReport') {
    if (isObject(r.context) && !('encounter' in r)) return { release: 'STU3', evidence: `${t}.context instead of encounter` };
  }
  if (t === 'Observation' && Array.isArray(r.instantiates)) return { release: 'R5', evidence: 'Observation.instantiates' };
  if (t === 'DocumentReference') {
    if (typeof r.indexed === 'string') return { release: 'STU3', evidence: 'DocumentReference.indexed' };
    if (Array.isArray(r.context)) return { release: 'R5', evidence: 'DocumentReference.context is a list' };
  }
  if (t === 'Encounter' && Array.isArray(r.class)) return { release: 'R5', evidence: 'Encounter.class is a list' };
  if (t === 'MedicationOrder' || t === 'DiagnosticOrder') return { release: 'DSTU2', evidence: `resource type ${t}` };
  if (t === 'ProcedureRequest' || t === 'ReferralRequest') return { release: 'STU3', evidence: `resource type ${t}` };
  return undefined;
}

/** What one resource shows about its release; undefined when nothing does (most R4 resources). */
export function detectResourceRelease(r: FhirResource): VersionEvidence | undefined {
  const profiles = isObject(r.meta) && Array.isArray(r.meta.profile) ? r.meta.profile : [];
  for (const p of profiles) {
    if (typeof p !== 'string') continue;
    for (const [re, release] of PROFILE_RELEASE) if (re.test(p)) return { release, evidence: `meta.profile ${p}` };
  }
  return releaseFromShape(r);
}

export const notR4Reason = (release: FhirRelease): string => `FHIR ${release} data (only R4 is read)`;

/** A source that can tell its release before any resource is read (a server's /metadata, a folder's first resources). */
export interface VersionedSource {
  declaredRelease(quarantine: Quarantine): Promise<VersionEvidence | undefined>;
  /** Every resource of the wanted types, whatever its release (`resources` is the R4-only view). */
  raw(types: readonly string[], quarantine: Quarantine): AsyncIterable<FhirResource>;
  /** Where the declaration came from, for the quarantine record. */
  readonly location: string;
}

/**
 * Yields the resources of `inner` that are R4: a source that declares another release yields
 * nothing (one quarantine record names the release and the evidence); a single resource that
 * shows another release is quarantined on its own.
 */
export async function* r4Only(
  inner: VersionedSource,
  types: readonly string[],
  quarantine: Quarantine,
  origin: (r: FhirResource) => { source: string; offset?: number } = (r) => ({ source: `${r.resourceType}/${r.id ?? '?'}` }),
): AsyncGenerator<FhirResource> {
  const declared = await inner.declaredRelease(quarantine);
  if (declared && declared.release !== 'unknown' && !isR4(declared.release)) {
    quarantine.add({
      source: inner.location,
      modality: 'fhir',
      reason: notR4Reason(declared.release),
      detail: `${declared.evidence}; nothing was read from this source: convert it to R4 first`,
    });
    return;
  }
  for await (const r of inner.raw(types, quarantine)) {
    const seen = detectResourceRelease(r);
    if (seen && !isR4(seen.release)) {
      quarantine.add({
        ...origin(r),
        modality: 'fhir',
        reason: notR4Reason(seen.release),
        detail: `${r.resourceType}/${r.id}: ${seen.evidence}`,
      });
      continue;
    }
    yield r;
  }
}

/** Resource types whose shapes differ between releases: what a folder is sampled on. */
export const VERSION_PROBE_TYPES = ['Condition', 'AllergyIntolerance', 'Observation', 'Procedure', 'DocumentReference', 'Encounter'];

/** The release a sample of resources shows: any non-R4 evidence wins, then R4 evidence; undefined when none shows anything. */
export async function probeRelease(sample: AsyncIterable<FhirResource>): Promise<VersionEvidence | undefined> {
  let r4: VersionEvidence | undefined;
  for await (const r of sample) {
    const e = detectResourceRelease(r);
    if (!e) continue;
    if (!isR4(e.release)) return e;
    r4 ??= e;
  }
  return r4;
}
