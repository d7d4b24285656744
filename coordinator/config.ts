// The coordinator's configuration, as parsed by the CLI from coordinator.yaml.
import type { BfvParams } from '../proto/task-spec.ts';

export type StorageConfig = { kind: 'pglite'; dataDir: string } | { kind: 'postgres'; url: string; schema?: string };

export interface TlsKit {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface CoordinatorConfig {
  federationId: string;
  /** The public schema's source text and its hash (every message must carry the hash). */
  schemaText: string;
  schemaHash: string;
  listen: string;
  kit: TlsKit;
  storage: StorageConfig;
  /** The HTTP API and web page of `fedsynth serve` (absent: no HTTP). */
  http?: HttpConfig;
  /** Prometheus metrics and /healthz, /readyz on this host:port (absent: not served). */
  metrics?: { listen: string };
  /** The federation's CRL (fedsynth provision revoke): revoked site certificates are refused. */
  revocationListFile?: string;
  /** Sites allowed to join, by certificate CN. */
  sites: string[];
  committee: { members: string[]; threshold: number };
  bfv: BfvParams;
  rounds: {
    /** Fewest contributions a measure round may close with; noise is sized for this many. */
    quorum: number;
    /** How long a round waits for missing sites before closing with a quorum. */
    deadlineMs: number;
    /** How long to wait for sites to register before the fit starts without them. */
    registrationMs: number;
    /** The contribution bound sites clip each cell to (default DEFAULT_MAX_CELL_COUNT, proto/task-spec.ts). */
    maxCellCount?: number;
  };
  fit: {
    epsilon: number;
    delta: number;
    /** Synthetic patients written after the fit (0: fit only). */
    cohortSize: number;
    seed: number;
    outDir: string;
    /** Mirror-descent iterations of the estimator. */
    iterations: number;
    /** Measurement plan: the federated AIM-style plan (default) or the three-round MST plan. */
    plan: 'aim' | 'mst';
    /** An audited fit (coordinator/audit-rounds.ts); absent: no holdout, no audit rounds. */
    audit?: AuditedFitConfig;
  };
}

export interface AuditedFitConfig {
  /** Fraction of each site's patients kept out of every measure round (the audit's control set). */
  holdoutFraction: number;
  /** Membership inference against the drawn cohort, one `mia-histogram` round per score. */
  mia?: {
    bins: number;
    /** Exact σ² of each site's noise per histogram cell (decimal integer strings). */
    sigmaSite2: { num: string; den: string };
    /** Cohort rows scored when the fit draws no cohort (cohortSize 0); otherwise the cohort itself. */
    cohortRows: number;
  };
  /**
   * A canary audit (federation/audits/canary.ts): by site, the canary rows the auditor included
   * there (value indices in schema order). Each site's measure tasks carry its own rows only.
   */
  canaries?: Record<string, number[][]>;
}

export interface HttpConfig {
  /** host:port of the HTTP API and web page (plain HTTP: put TLS in a reverse proxy). */
  listen: string;
  /** The URL clients reach it by (behind a proxy), used in Location headers and export manifests. */
  publicUrl?: string;
  /** Where cohort requests are written (one folder each). */
  cohortsDir: string;
  /** Largest request body accepted (bytes). */
  maxBodyBytes: number;
  /** JWTs of an OpenID Connect issuer accepted besides the API keys (absent: API keys only). */
  oidc?: OidcConfig;
}

export type JwtAlgorithm = 'RS256' | 'ES256';

export interface OidcConfig {
  /** The `iss` every token must carry. */
  issuer: string;
  /** Accepted `aud` values (a token must name one of them). */
  audience: string[];
  /** Where the issuer's signing keys are: a JWKS file read at start, or a URL fetched (and cached) by jose. */
  jwks: { file: string } | { url: string };
  algorithms: JwtAlgorithm[];
  /** Claim holding the caller's roles (a string or a list; dots walk into objects, e.g. realm_access.roles). */
  roleClaim: string;
  /** Claim values that grant each service role (default: the role's own name). */
  roleValues: Record<'researcher' | 'operator' | 'auditor', string[]>;
  /** Leeway for exp and nbf against clock differences with the issuer. */
  clockToleranceSeconds: number;
}
