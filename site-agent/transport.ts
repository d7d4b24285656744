// gRPC transport for a site agent: mutual TLS only, outbound only. The agent presents its site
// certificate (the coordinator derives the site's identity from it, and from nothing else) and
// trusts only the federation CA of its startup kit for the coordinator's certificate.
//
// The startup-kit layout is produced by `fedsynth provision` (cli/provision). The site-agent
// layer may not import cli/, so the checks needed to fail early and clearly on a broken kit
// are made here with node:crypto.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { channelOptions, loadFederationService } from '../proto/wire.ts';
import type { FederationClient } from '../proto/generated/fedsynth/v1/Federation.ts';

const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** PEM bytes of a kit: the federation CA, the site's certificate and its private key. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The site's kit or the coordinator address is missing, corrupt or wrong. */
export class TransportConfigError extends Error {
  override name = 'TransportConfigError';
}

function parseCert(pem: Buffer, what: string): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new TransportConfigError(`${what} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TransportConfigError(`${what} holds a corrupt PEM certificate: ${(err as Error).message}`);
  }
}

function parseKey(pem: Buffer, what: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) throw new TransportConfigError(`${what} is not a PEM private key`);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TransportConfigError(`${what} holds a corrupt PEM private key: ${(err as Error).message}`);
  }
}

/** Reads `ca.pem`, `cert.pem`, `key.pem` from a kit directory, with a clear error for each problem. */
export function readKitMaterial(dir: string): TlsMaterial {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new TransportConfigError(`startup kit directory ${abs} does not exist`);
  const files = ['ca.pem', 'cert.pem', 'key.pem'];
  const missing = files.filter((f) => !existsSync(join(abs, f)));
  if (missing.length > 0) throw new TransportConfigError(`startup kit ${abs} is incomplete: missing ${missing.join(', ')}`);
  return {
    ca: readFileSync(join(abs, 'ca.pem')),
    cert: readFileSync(join(abs, 'cert.pem')),
    key: readFileSync(join(abs, 'key.pem')),
  };
}

/**
 * Checks that the material is a site kit (key matches, issued by the kit's CA, clientAuth) and
 * returns the site id it proves (the certificate's CN).
 */
export function checkSiteMaterial(m: TlsMaterial, where = 'site kit'): string {
  const ca = parseCert(m.ca, `${where}: ca.pem`);
  const cert = parseCert(m.cert, `${where}: cert.pem`);
  const key = parseKey(m.key, `${where}: key.pem`);
  if (!ca.ca) throw new TransportConfigError(`${where}: ca.pem is not a CA certificate`);
  if (!cert.checkPrivateKey(key)) throw new TransportConfigError(`${where}: key.pem does not match cert.pem`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new TransportConfigError(`${where}: cert.pem was not issued by ca.pem`);
  if (!(cert.keyUsage ?? []).includes(OID_CLIENT_AUTH)) {
    throw new TransportConfigError(`${where}: cert.pem is not a site (client) certificate; is this the coordinator's kit?`);
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (!cn) throw new TransportConfigError(`${where}: cert.pem has no CN (site id)`);
  return cn;
}

/**
 * Mutual-TLS channel credentials from a site's startup kit (a directory or its PEM bytes).
 * `onServerCertificate` receives the SHA-256 fingerprint (lowercase hex of the DER) of the
 * certificate the coordinator presents on every handshake, for the site policy's
 * `coordinatorFingerprint` pin; the usual host-name check still applies.
 */
export function clientCredentialsFromKit(kit: string | TlsMaterial, onServerCertificate?: (sha256Hex: string) => void): grpc.ChannelCredentials {
  const where = typeof kit === 'string' ? `site kit ${resolve(kit)}` : 'site kit';
  const m = typeof kit === 'string' ? readKitMaterial(kit) : kit;
  checkSiteMaterial(m, where);
  if (!onServerCertificate) return grpc.credentials.createSsl(m.ca, m.key, m.cert);
  return grpc.credentials.createSsl(m.ca, m.key, m.cert, {
    checkServerIdentity: (hostname: string, cert: PeerCertificate) => {
      const err = checkServerIdentity(hostname, cert);
      if (!err && cert.raw) onServerCertificate(createHash('sha256').update(cert.raw).digest('hex'));
      return err;
    },
  });
}

/** Validates a `host:port` (or `[v6]:port`) coordinator address. */
export function parseTarget(target: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s/[\]]+)):(\d{1,5})$/.exec(typeof target === 'string' ? target : '');
  const host = m?.[1] ?? m?.[2];
  const port = m ? Number(m[3]) : NaN;
  if (!m || !host || port < 1 || port > 65_535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new TransportConfigError(`invalid coordinator address ${JSON.stringify(target)}: expected host:port (e.g. coordinator.example.org:7443 or 127.0.0.1:7443)`);
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
  /** Called with the SHA-256 fingerprint of the coordinator's certificate on each TLS handshake. */
  onServerCertificate?: (sha256Hex: string) => void;
}

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
  const credentials = kit instanceof grpc.ChannelCredentials ? kit : clientCredentialsFromKit(kit, options.onServerCertificate);
  const opts: grpc.ChannelOptions = { ...channelOptions, ...options.channelOptions };
  if (options.serverNameOverride) {
    opts['grpc.ssl_target_name_override'] = options.serverNameOverride;
    opts['grpc.default_authority'] = options.serverNameOverride;
  }
  const Federation = loadFederationService().fedsynth.v1.Federation;
  return new Federation(target, credentials, opts);
}
