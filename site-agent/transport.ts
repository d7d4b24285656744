// gRPC transport for a site agent: mutual TLS only, outbound only. The agent presents its site
// certificate (the coordinator derives the site's identity from it, and from nothing else) and
// trusts only the federation CA of its startup kit for the coordinator's certificate.
//
// The startup-kit layout is produced by `fedsynth provision`; reading and checking it is shared
// with the coordinator through proto/tls-kit.ts.
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { createHash } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { channelOptions, loadFederationService } from '../proto/wire.ts';
import type { FederationClient } from '../proto/generated/fedsynth/v1/Federation.ts';
import type { RevokedEntry } from '../proto/revocation.ts';
import { checkKitMaterial, OID_CLIENT_AUTH, readKitMaterial, TransportConfigError, type TlsMaterial } from '../proto/tls-kit.ts';

export { readKitMaterial, TransportConfigError, type TlsMaterial };

/**
 * Checks that the material is a site kit (key matches, issued by the kit's CA, clientAuth) and
 * returns the site id it proves (the certificate's CN).
 */
export function checkSiteMaterial(m: TlsMaterial, where = 'site kit'): string {
  const cert = checkKitMaterial(m, where, {
    oid: OID_CLIENT_AUTH,
    wrongKindHint: "is not a site (client) certificate; is this the coordinator's kit?",
  });
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (!cn) throw new TransportConfigError(`${where}: cert.pem has no CN (site id)`);
  return cn;
}

/** What the agent checks about the coordinator's certificate on every handshake. */
export interface ServerCertificateChecks {
  /** Receives the SHA-256 fingerprint (lowercase hex of the DER), for the policy's `coordinatorFingerprint` pin. */
  onServerCertificate?: (sha256Hex: string) => void;
  /**
   * The federation's revocation list in force: a coordinator certificate on it fails the
   * handshake, so a stolen coordinator key stops working for the agents once it is revoked.
   */
  revoked?: (serialHex: string) => RevokedEntry | undefined;
}

/**
 * Mutual-TLS channel credentials from a site's startup kit (a directory or its PEM bytes). The
 * coordinator's certificate must chain to the kit's CA and name the host (grpc-js's checks), and
 * pass `checks`.
 */
export function clientCredentialsFromKit(kit: string | TlsMaterial, checks: ServerCertificateChecks = {}): grpc.ChannelCredentials {
  const where = typeof kit === 'string' ? `site kit ${resolve(kit)}` : 'site kit';
  const m = typeof kit === 'string' ? readKitMaterial(kit) : kit;
  checkSiteMaterial(m, where);
  if (!checks.onServerCertificate && !checks.revoked) return grpc.credentials.createSsl(m.ca, m.key, m.cert);
  return grpc.credentials.createSsl(m.ca, m.key, m.cert, {
    checkServerIdentity: (hostname: string, cert: PeerCertificate) => {
      const err = checkServerIdentity(hostname, cert);
      if (err) return err;
      const entry = cert.serialNumber ? checks.revoked?.(cert.serialNumber) : undefined;
      // The wording matches agent-errors' TLS trust failures, so the agent stops with its TLS exit code.
      if (entry)
        return new Error(
          `certificate has been revoked: the coordinator's certificate (serial ${entry.serial}) is on the federation's revocation list since ${entry.revokedAt.toISOString()}${entry.reason ? ` (${entry.reason})` : ''}; the coordinator must be given a new certificate by the federation operator (fedsynth provision rotate-coordinator) before this site will talk to it`,
        );
      if (cert.raw) checks.onServerCertificate?.(createHash('sha256').update(cert.raw).digest('hex'));
      return undefined;
    },
  });
}

/** Validates a `host:port` (or `[v6]:port`) coordinator address. */
export function parseTarget(target: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s/[\]]+)):(\d{1,5})$/.exec(typeof target === 'string' ? target : '');
  const host = m?.[1] ?? m?.[2];
  const port = m ? Number(m[3]) : NaN;
  if (!m || !host || port < 1 || port > 65_535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new TransportConfigError(
      `invalid coordinator address ${JSON.stringify(target)}: expected host:port (e.g. coordinator.example.org:7443 or 127.0.0.1:7443)`,
    );
  }
  return { host, port };
}

export interface FederationClientOptions {
  /** Extra or overriding channel options (merged over the wire contract's `channelOptions`). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Name to check the coordinator's certificate against when it differs from the host in
   * `target` (e.g. connecting by IP to a certificate issued for a DNS name).
   */
  serverNameOverride?: string;
  /** Checks of the coordinator's certificate on each TLS handshake. */
  serverCertificate?: ServerCertificateChecks;
}

/**
 * grpc-js backs off reconnecting a channel up to 120 s after repeated refused connections, under
 * the agent's own retry loop: after a few coordinator restarts an agent would stay away for
 * minutes (and miss a round's deadline). A restarted coordinator is found again within seconds.
 */
const RECONNECT_BACKOFF: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 4000,
};

/**
 * A Federation client for the coordinator at `target` (`host:port`), authenticated with the
 * site's kit. The coordinator's certificate must chain to the kit's CA and name `host`.
 */
export function createFederationClient(
  target: string,
  kit: string | TlsMaterial | grpc.ChannelCredentials,
  options: FederationClientOptions = {},
): FederationClient {
  parseTarget(target);
  const credentials = kit instanceof grpc.ChannelCredentials ? kit : clientCredentialsFromKit(kit, options.serverCertificate);
  const opts: grpc.ChannelOptions = { ...RECONNECT_BACKOFF, ...channelOptions, ...options.channelOptions };
  if (options.serverNameOverride) {
    opts['grpc.ssl_target_name_override'] = options.serverNameOverride;
    opts['grpc.default_authority'] = options.serverNameOverride;
  }
  const Federation = loadFederationService().fedsynth.v1.Federation;
  return new Federation(target, credentials, opts);
}
