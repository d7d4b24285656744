// Shared shapes of what connectors produce. A connector never throws on bad input: it records
// a quarantine entry and moves on, so one bad file never stops a run.

export type Modality = 'fhir' | 'dicom' | 'vcf' | 'note';

export interface QuarantineRecord {
  /** File path, resource id or URL of what failed. */
  source: string;
  modality: Modality;
  /** Short, human-readable reason; stable enough to count by (e.g. "invalid JSON"). */
  reason: string;
  /** Line number (NDJSON, VCF) or byte offset (DICOM) when known. */
  offset?: number;
  detail?: string;
}

/** Collects quarantine records and counts them by modality and reason. */
export class Quarantine {
  readonly records: QuarantineRecord[] = [];
  add(record: QuarantineRecord): void {
    this.records.push(record);
  }
  countsByReason(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.records) {
      const key = `${r.modality}: ${r.reason}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }
}

export interface FhirResource {
  resourceType: string;
  id?: string;
  [field: string]: unknown;
}

/** Anything that yields FHIR resources of the requested types (NDJSON files, a REST server). */
export interface FhirSource {
  resources(resourceTypes: readonly string[], quarantine: Quarantine): AsyncIterable<FhirResource>;
}
