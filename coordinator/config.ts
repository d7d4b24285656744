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
  };
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
}
