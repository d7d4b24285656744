// The site agent's configuration, as parsed by the CLI from site.yaml.
import type { SitePolicy } from './policy.ts';

export type SiteDataConfig =
  | { kind: 'fhir-ndjson'; dir: string }
  | { kind: 'fhir-rest'; baseUrl: string; bearerToken?: string; pageSize?: number };

export interface SiteConfig {
  siteId: string;
  federationId: string;
  /** host:port of the coordinator; the agent only ever dials out. */
  coordinator: string;
  kit: { caPem: string; certPem: string; keyPem: string };
  schemaText: string;
  schemaHash: string;
  data: SiteDataConfig;
  /** Ledger, audit log, cached answers and committee secret keys live here. */
  stateDir: string;
  policy: SitePolicy;
  /** Leave once the coordinator reports the federation done (demo and tests). */
  exitWhenDone: boolean;
}
