// The site agent's configuration, as parsed by the CLI from site.yaml.
import { redactUrl } from './connectors/omop.ts';
import type { SitePolicy } from './policy.ts';

export type SiteDataConfig = (
  | { kind: 'fhir-ndjson'; dir: string }
  | { kind: 'fhir-rest'; baseUrl: string; bearerToken?: string; pageSize?: number }
  | { kind: 'omop'; url: string; schema: string; vocabularySchema?: string }
) &
  ModalityDataConfig;

/** Where the site's clinical data comes from, for reports (an OMOP URL without its password). */
export function clinicalSourceLabel(data: SiteDataConfig): string {
  if (data.kind === 'fhir-ndjson') return data.dir;
  if (data.kind === 'fhir-rest') return data.baseUrl;
  return `OMOP CDM ${redactUrl(data.url)} schema ${data.schema}`;
}

/** Optional non-FHIR sources of a site (site-agent/site-data.ts reads them). */
export interface ModalityDataConfig {
  /** Folder tree of DICOM Part 10 files. */
  dicom?: string;
  /** Multi-sample VCF (plain or bgzipped). */
  vcf?: string;
  /** Folder of note text files named by patient. */
  notes?: string;
  /** Also read notes from FHIR DocumentReference/DiagnosticReport attachments. */
  fhirNotes?: boolean;
  linkage?: LinkageConfig;
}

/** How artefacts are joined to FHIR patients (site-agent/linkage.ts). */
export interface LinkageConfig {
  /** The linkage key of a FHIR patient: its resource id, or its identifier value in `identifierSystem`. */
  key: 'id' | 'identifier';
  identifierSystem?: string;
  /** TSV of `sample<TAB>linkage key` (optional header line); default: the VCF sample name is the key. */
  vcfSampleMap?: string;
  /** Regex over note file names with a `patientId` group (or group 1); default `<key>[_…].txt`. */
  notesPattern?: string;
}

export interface SiteConfig {
  siteId: string;
  federationId: string;
  /** host:port of the coordinator; the agent only ever dials out. */
  coordinator: string;
  kit: {
    caPem: string;
    certPem: string;
    keyPem: string;
    /** Certificates this site held before a rotation (the kit's previous/ folder): its older audit entries verify under them. */
    previousCertPems?: string[];
  };
  /** Prometheus metrics and /healthz, /readyz on this host:port. Absent (the default): no port is opened. */
  metrics?: { listen: string };
  /**
   * The kit's signed federation roster (<kit>/roster.json from fedsynth provision), re-read when it
   * changes; the highest version accepted is also kept in the state folder (site-agent/roster.ts).
   */
  rosterFile?: string;
  /** The federation's CRL (fedsynth provision revoke): committee keys of revoked certificates are refused. */
  revocationListFile?: string;
  schemaText: string;
  schemaHash: string;
  data: SiteDataConfig;
  /** Ledger, audit log, cached answers and committee secret keys live here. */
  stateDir: string;
  policy: SitePolicy;
  /** Leave once the coordinator reports the federation done (demo and tests). */
  exitWhenDone: boolean;
}
