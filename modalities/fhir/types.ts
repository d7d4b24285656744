/** Minimal FHIR shapes used by the FHIR modality (structurally compatible with site-agent's FhirResource). */
export interface FhirResourceLike {
  resourceType: string;
  id?: string;
  [field: string]: unknown;
}

/** A problem found while encoding; the site agent turns it into a quarantine record. */
export interface EncodeIssue {
  /** `ResourceType/id` of what failed. */
  source: string;
  reason: string;
  detail?: string;
}
