// X.509 primitives for a federation's PKI, with @peculiar/x509 over node:crypto's WebCrypto.
// No shell-outs, no OpenSSL CLI. Everything here is in memory; provision.ts does the file I/O.
//
// Profile (ECDSA P-256, SHA-256 signatures):
//   CA           basicConstraints CA:true pathlen:0 (critical), keyUsage keyCertSign|cRLSign (critical)
//   coordinator  CA:false, keyUsage digitalSignature, EKU serverAuth, SAN DNS/IP per host
//   site         CA:false, keyUsage digitalSignature, EKU clientAuth, CN = site id,
//                SAN URI urn:fedsynth:site:<id>
// Every subject carries the federation id as O.
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/** node's WebCrypto; @peculiar/x509 takes it as its crypto provider (passed explicitly, no global). */
const crypto = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type JsonWebKey = webcrypto.JsonWebKey;

export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** Site ids: lower-case DNS-label-like, so they are safe as directory names and in URIs. */
export const SITE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Federation ids: a little more liberal (dots and underscores), still path- and DN-safe. */
export const FEDERATION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const SITE_URI_PREFIX = 'urn:fedsynth:site:';
export const COORDINATOR_CN = 'fedsynth-coordinator';

/** A provisioning input or state problem, with a message meant for the operator. */
export class ProvisionError extends Error {
  override name = 'ProvisionError';
}

export function validateSiteId(siteId: unknown): string {
  if (typeof siteId !== 'string' || !SITE_ID_PATTERN.test(siteId)) {
    throw new ProvisionError(
      `invalid site id ${JSON.stringify(siteId)}: use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit`,
    );
  }
  // The coordinator's certificate CN: a site by that name would read as the coordinator in logs and rosters.
  if (siteId === COORDINATOR_CN) throw new ProvisionError(`invalid site id ${JSON.stringify(siteId)}: that is the coordinator's name`);
  return siteId;
}

export function validateFederationId(federationId: unknown): string {
  if (typeof federationId !== 'string' || !FEDERATION_ID_PATTERN.test(federationId)) {
    throw new ProvisionError(
      `invalid federation id ${JSON.stringify(federationId)}: use 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit`,
    );
  }
  return federationId;
}

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A coordinator host name: an IPv4/IPv6 address or a DNS name. */
export function validateHost(host: unknown): { type: 'ip' | 'dns'; value: string } {
  if (typeof host === 'string') {
    if (isIP(host)) return { type: 'ip', value: host };
    if (DNS_NAME.test(host)) return { type: 'dns', value: host.toLowerCase() };
  }
  throw new ProvisionError(`invalid coordinator host ${JSON.stringify(host)}: expected a DNS name or an IP address`);
}

export function validateValidityDays(days: unknown, what = 'validityDays'): number {
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new ProvisionError(`invalid ${what} ${JSON.stringify(days)}: expected a whole number of days between 1 and 36500`);
  }
  return days;
}

/** Random positive 128-bit serial, hex (top bit cleared so DER needs no sign byte; never zero). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Escapes a value for a string-form DN (RFC 4514). Our ids are restricted, but be safe. */
function dnValue(value: string): string {
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

const DAY_MS = 86_400_000;
/** Certificates are back-dated a little so that small clock skew between parties does no harm. */
const BACKDATE_MS = 5 * 60_000;

export interface KeyMaterial {
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
}

export interface CertificateAuthority extends KeyMaterial {
  federationId: string;
}

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function createCertificateAuthority(opts: {
  federationId: string;
  validityDays: number;
  now?: Date;
}): Promise<CertificateAuthority> {
  const federationId = validateFederationId(opts.federationId);
  const validityDays = validateValidityDays(opts.validityDays, 'CA validity');
  const now = opts.now ?? new Date();
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=${dnValue(`fedsynth ${federationId} CA`)}, O=${dnValue(federationId)}`,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + validityDays * DAY_MS),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certificate, privateKey: keys.privateKey, federationId };
}

interface LeafOptions {
  ca: CertificateAuthority;
  commonName: string;
  eku: string;
  san: x509.JsonGeneralNames;
  validityDays: number;
  now?: Date;
}

async function issueLeaf(opts: LeafOptions): Promise<KeyMaterial> {
  const now = opts.now ?? new Date();
  const caNotAfter = opts.ca.certificate.notAfter;
  let notAfter = new Date(now.getTime() + opts.validityDays * DAY_MS);
  // A leaf never outlives its CA (verifiers would reject it after the CA expires anyway).
  if (notAfter > caNotAfter) notAfter = caNotAfter;
  if (notAfter.getTime() <= now.getTime()) {
    throw new ProvisionError(`the federation CA expired on ${caNotAfter.toISOString()}; cannot issue new certificates from it`);
  }
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${dnValue(opts.commonName)}, O=${dnValue(opts.ca.federationId)}`,
      issuer: opts.ca.certificate.subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: opts.ca.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new (x509.ExtendedKeyUsageExtension as unknown as new (usages: string[], critical?: boolean) => x509.Extension)([opts.eku], false),
        new x509.SubjectAlternativeNameExtension(opts.san, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(opts.ca.certificate, false, crypto),
      ],
    },
    crypto,
  );
  return { certificate, privateKey: keys.privateKey };
}

export async function issueCoordinatorCertificate(opts: {
  ca: CertificateAuthority;
  hosts: string[];
  validityDays: number;
  now?: Date;
}): Promise<KeyMaterial> {
  if (!Array.isArray(opts.hosts) || opts.hosts.length === 0) {
    throw new ProvisionError('at least one coordinator host is needed for the server certificate');
  }
  const san = opts.hosts.map((h) => validateHost(h));
  return issueLeaf({
    ca: opts.ca,
    commonName: COORDINATOR_CN,
    eku: OID_SERVER_AUTH,
    san,
    validityDays: validateValidityDays(opts.validityDays),
    now: opts.now,
  });
}

export async function issueSiteCertificate(opts: {
  ca: CertificateAuthority;
  siteId: string;
  validityDays: number;
  now?: Date;
}): Promise<KeyMaterial> {
  const siteId = validateSiteId(opts.siteId);
  return issueLeaf({
    ca: opts.ca,
    commonName: siteId,
    eku: OID_CLIENT_AUTH,
    san: [{ type: 'url', value: `${SITE_URI_PREFIX}${siteId}` }],
    validityDays: validateValidityDays(opts.validityDays),
    now: opts.now,
  });
}

export function certificateToPem(certificate: x509.X509Certificate): string {
  return ensureTrailingNewline(certificate.toString('pem'));
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return ensureTrailingNewline(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

function ensureTrailingNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

/** Parses the CA certificate and key PEMs back into a usable CA; checks they belong together. */
export async function loadCertificateAuthority(caPem: string, caKeyPem: string, where = 'CA'): Promise<CertificateAuthority> {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(caPem);
  } catch (err) {
    throw new ProvisionError(`${where}: ca.pem is not a valid PEM certificate (${(err as Error).message})`);
  }
  const bc = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!bc || !bc.ca) throw new ProvisionError(`${where}: ca.pem is not a CA certificate (basicConstraints CA:true missing)`);

  let privateKey: CryptoKey;
  let jwk: JsonWebKey;
  try {
    const der = x509.PemConverter.decodeFirst(caKeyPem);
    const extractable = await crypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, true, ['sign']);
    jwk = await crypto.subtle.exportKey('jwk', extractable);
    privateKey = await crypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw new ProvisionError(`${where}: ca.key is not a valid PEM PKCS#8 ECDSA P-256 private key (${(err as Error).message})`);
  }
  const publicJwk = await crypto.subtle.exportKey('jwk', await certificate.publicKey.export(EC_ALGORITHM, ['verify'], crypto));
  if (publicJwk.x !== jwk.x || publicJwk.y !== jwk.y) {
    throw new ProvisionError(`${where}: ca.key does not match the public key of ca.pem`);
  }
  const o = certificate.subjectName.getField('O')[0];
  if (!o) throw new ProvisionError(`${where}: ca.pem has no O (federation id) in its subject`);
  return { certificate, privateKey, federationId: o };
}
