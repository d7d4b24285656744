// Startup kits on disk: the layout, and a loader that checks a kit before anyone uses it.
//
//   <out>/ca/{ca.pem,ca.key}                   the federation CA; ca.key never leaves this folder
//   <out>/coordinator/{ca.pem,cert.pem,key.pem}
//   <out>/sites/<id>/{ca.pem,cert.pem,key.pem}
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, ProvisionError, SITE_ID_PATTERN, SITE_URI_PREFIX } from './x509.ts';

/** Writes `content` to `path` through a temporary file and a rename, so a crash leaves old or new. */
export function replaceFile(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ProvisionError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

export const CA_DIR = 'ca';
export const COORDINATOR_DIR = 'coordinator';
export const SITES_DIR = 'sites';
export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca.key';
export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const KIT_FILES = [CA_CERT_FILE, CERT_FILE, KEY_FILE] as const;

export function caDir(outDir: string): string {
  return join(outDir, CA_DIR);
}
export function coordinatorKitDir(outDir: string): string {
  return join(outDir, COORDINATOR_DIR);
}
export function siteKitDir(outDir: string, siteId: string): string {
  return join(outDir, SITES_DIR, siteId);
}

/** A kit could not be read or is inconsistent. */
export class KitError extends ProvisionError {
  override name = 'KitError';
}

export type KitRole = 'site' | 'coordinator';

/** A loaded, checked startup kit. `ca`/`cert`/`key` are the PEM bytes as gRPC wants them. */
export interface Kit {
  dir: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  role: KitRole;
  /** CN of the kit's certificate: the site id for a site kit. */
  commonName: string;
  /** Set for site kits. */
  siteId?: string;
  /** O of the kit's certificate subject. */
  federationId: string;
  notAfter: Date;
  /** SHA-256 fingerprint of the kit's certificate (colon-separated hex, as node prints it). */
  fingerprint256: string;
  caFingerprint256: string;
}

function subjectField(subject: string, field: string): string | undefined {
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq) === field) return line.slice(eq + 1);
  }
  return undefined;
}

function parseCertificate(pem: Buffer, path: string): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new KitError(`${path} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  }
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new KitError(`${path} holds a corrupt PEM certificate: ${(err as Error).message}`);
  }
}

function parsePrivateKey(pem: Buffer, path: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
    throw new KitError(`${path} is not a PEM private key (no "-----BEGIN PRIVATE KEY-----" block)`);
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new KitError(`${path} holds a corrupt PEM private key: ${(err as Error).message}`);
  }
}

/**
 * Reads `ca.pem`, `cert.pem` and `key.pem` from a kit directory and checks them: all present,
 * all parseable, the key matches the certificate, the certificate was issued by the kit's CA,
 * and it is a site (clientAuth) or coordinator (serverAuth) certificate.
 */
export function loadKit(dir: string): Kit {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new KitError(`startup kit directory ${abs} does not exist`);
  if (!statSync(abs).isDirectory()) throw new KitError(`startup kit path ${abs} is not a directory`);
  const missing = KIT_FILES.filter((f) => !existsSync(join(abs, f)));
  if (missing.length > 0) {
    throw new KitError(`startup kit ${abs} is incomplete: missing ${missing.join(', ')} (a kit holds ${KIT_FILES.join(', ')})`);
  }
  const caPath = join(abs, CA_CERT_FILE);
  const certPath = join(abs, CERT_FILE);
  const keyPath = join(abs, KEY_FILE);
  const ca = readFileSync(caPath);
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);

  const caCert = parseCertificate(ca, caPath);
  const leaf = parseCertificate(cert, certPath);
  const privateKey = parsePrivateKey(key, keyPath);

  if (!caCert.ca) throw new KitError(`${caPath} is not a CA certificate`);
  if (!leaf.checkPrivateKey(privateKey)) throw new KitError(`${keyPath} does not match the certificate in ${certPath}`);
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) {
    throw new KitError(`${certPath} was not issued by the CA in ${caPath} (kit files from different federations?)`);
  }

  const eku = leaf.keyUsage ?? [];
  let role: KitRole;
  if (eku.includes(OID_CLIENT_AUTH) && !eku.includes(OID_SERVER_AUTH)) role = 'site';
  else if (eku.includes(OID_SERVER_AUTH) && !eku.includes(OID_CLIENT_AUTH)) role = 'coordinator';
  else throw new KitError(`${certPath} is neither a site (clientAuth) nor a coordinator (serverAuth) certificate`);

  const commonName = subjectField(leaf.subject, 'CN') ?? '';
  const federationId = subjectField(leaf.subject, 'O') ?? '';
  const kit: Kit = {
    dir: abs,
    ca,
    cert,
    key,
    role,
    commonName,
    federationId,
    notAfter: new Date(leaf.validTo),
    fingerprint256: leaf.fingerprint256,
    caFingerprint256: caCert.fingerprint256,
  };
  if (role === 'site') {
    if (!SITE_ID_PATTERN.test(commonName)) throw new KitError(`${certPath}: CN ${JSON.stringify(commonName)} is not a valid site id`);
    const uris = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
    if (!uris.includes(`URI:${SITE_URI_PREFIX}${commonName}`)) {
      throw new KitError(`${certPath}: subjectAltName lacks URI ${SITE_URI_PREFIX}${commonName}`);
    }
    kit.siteId = commonName;
  }
  return kit;
}
