// Startup-kit material for the mutual-TLS wire (ca.pem, cert.pem, key.pem from `fedsynth
// provision`), shared by both ends of the contract. Neither the coordinator nor the site agent
// may import cli/, so the checks that make a broken kit fail early and clearly live here.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { rosterProblem, type FederationRoster, type RosterProblem } from './roster.ts';

/** PEM bytes of a kit: the federation CA, the party's certificate and its private key. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A kit (or an address) is missing, corrupt or of the wrong kind. */
export class TransportConfigError extends Error {
  override name = 'TransportConfigError';
}

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function parseCert(pem: Buffer, what: string): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new TransportConfigError(`${what} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TransportConfigError(`${what} holds a corrupt PEM certificate: ${(err as Error).message}`);
  }
}

function parseKey(pem: Buffer, what: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1')))
    throw new TransportConfigError(`${what} is not a PEM private key`);
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
 * Checks the key matches the certificate, the certificate was issued by the kit's CA and has the
 * expected extended key usage; returns the parsed certificate.
 */
export function checkKitMaterial(m: TlsMaterial, where: string, usage: { oid: string; wrongKindHint: string }): X509Certificate {
  const ca = parseCert(m.ca, `${where}: ca.pem`);
  const cert = parseCert(m.cert, `${where}: cert.pem`);
  const key = parseKey(m.key, `${where}: key.pem`);
  if (!ca.ca) throw new TransportConfigError(`${where}: ca.pem is not a CA certificate`);
  if (!cert.checkPrivateKey(key)) throw new TransportConfigError(`${where}: key.pem does not match cert.pem`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new TransportConfigError(`${where}: cert.pem was not issued by ca.pem`);
  if (!(cert.keyUsage ?? []).includes(usage.oid)) throw new TransportConfigError(`${where}: cert.pem ${usage.wrongKindHint}`);
  return cert;
}

/**
 * Why a PEM certificate is not `partyId`'s certificate from the federation CA, or null when it
 * is: both ends check this before trusting a committee member's signed key.
 */
export function certificateProblem(pem: string, ca: X509Certificate, partyId: string): 'unreadable' | 'foreign-ca' | 'wrong-party' | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return 'unreadable';
  }
  if (!cert.verify(ca.publicKey)) return 'foreign-ca';
  if (!cert.subject.split('\n').includes(`CN=${partyId}`)) return 'wrong-party';
  return null;
}

/** The SAN URI a site certificate carries (`pki/x509.ts` issues it; proto may not import pki). */
export const SITE_CERT_URI_PREFIX = 'urn:fedsynth:site:';

export type CommitteeCertificateProblem =
  'unreadable' | 'foreign-ca' | 'wrong-party' | 'not-site-profile' | 'outside-validity' | RosterProblem;

/**
 * Why a certificate may not hold a decryption share (or contribute to a sum), or null when it
 * may. Eligibility is a site profile, not just a CA signature: clientAuth and no serverAuth (so
 * the coordinator's server certificate is never a member), the `urn:fedsynth:site:<id>` SAN
 * naming the member, valid at `now`, issued by the federation CA; and the member's id is in the
 * site's verified federation roster with this certificate's public key (proto/roster.ts), so a
 * further certificate the CA issued, for a new id or for a listed one with another key, is not.
 */
export function committeeCertificateProblem(
  pem: string,
  ca: X509Certificate,
  memberId: string,
  now: Date,
  roster: FederationRoster,
): CommitteeCertificateProblem | null {
  const base = certificateProblem(pem, ca, memberId);
  if (base) return base;
  const cert = new X509Certificate(pem);
  if (!cert.checkIssued(ca)) return 'foreign-ca';
  const eku = cert.keyUsage ?? [];
  const sans = (cert.subjectAltName ?? '').split(',').map((s) => s.trim());
  if (!eku.includes(OID_CLIENT_AUTH) || eku.includes(OID_SERVER_AUTH) || cert.ca) return 'not-site-profile';
  if (!sans.includes(`URI:${SITE_CERT_URI_PREFIX}${memberId}`)) return 'not-site-profile';
  if (now.getTime() < new Date(cert.validFrom).getTime() || now.getTime() > new Date(cert.validTo).getTime()) return 'outside-validity';
  return rosterProblem(roster, memberId, pem);
}
