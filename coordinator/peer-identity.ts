// Who is calling? The only answer the coordinator accepts is the client certificate that TLS
// verified on this connection. Ids in message bodies, headers or metadata are never consulted:
// a site can only ever act as itself.
//
// TLS (checkClientCertificate = true) already verified the chain to the federation CA and the
// validity period; here we additionally insist that the certificate is a *site* certificate
// (clientAuth EKU, not a CA, CN a well-formed site id matching its urn:fedsynth:site: SAN) and,
// when the coordinator passes its CA, that it was issued by that very CA.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SITE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SITE_URI_PREFIX = 'urn:fedsynth:site:';

/** The identity of a calling site, read from its verified client certificate. */
export interface SiteIdentity {
  siteId: string;
  /** O of the certificate subject (the federation id it was provisioned for). */
  federationId: string;
  /** SHA-256 fingerprint of the client certificate, colon-separated hex. */
  fingerprint256: string;
  serialNumber: string;
  /** The certificate itself (PEM), e.g. to verify signatures made with the site's key. */
  certificatePem: string;
}

/**
 * The call's peer is not an acceptable site. Carries a gRPC status, so it can be passed
 * straight to a handler's callback or `call.destroy()`/`call.emit('error')`.
 */
export class PeerIdentityError extends Error {
  override name = 'PeerIdentityError';
  readonly code: grpc.status;
  readonly details: string;
  constructor(code: grpc.status, details: string) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

/** Anything grpc-js hands a server handler: unary, client-, server- or bidi-streaming calls. */
export interface CallWithAuthContext {
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: { raw?: Buffer } } | null;
}

export interface PeerIdentityOptions {
  /** The federation CA (PEM). When given, the peer certificate must be issued by it. */
  ca?: Buffer | string;
}

function subjectField(subject: string, field: string): string | undefined {
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq) === field) return line.slice(eq + 1);
  }
  return undefined;
}

function denied(details: string): PeerIdentityError {
  return new PeerIdentityError(grpc.status.PERMISSION_DENIED, details);
}

/** Checks a DER certificate as a site certificate and returns the identity it proves. */
export function siteIdentityFromCertificate(der: Buffer, caCert?: X509Certificate, now = new Date()): SiteIdentity {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new PeerIdentityError(grpc.status.UNAUTHENTICATED, 'the client certificate cannot be parsed');
  }
  if (caCert && (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey))) {
    throw denied("the client certificate was not issued by this federation's CA");
  }
  if (cert.ca) throw denied('a CA certificate cannot act as a site');
  if (!(cert.keyUsage ?? []).includes(OID_CLIENT_AUTH)) {
    throw denied('the client certificate is not a site certificate (no clientAuth extended key usage)');
  }
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) throw denied('the client certificate is not valid at this time');
  const cn = subjectField(cert.subject, 'CN');
  if (!cn || !SITE_ID_PATTERN.test(cn)) throw denied(`the client certificate's CN ${JSON.stringify(cn ?? '')} is not a site id`);
  const uris = (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  if (!uris.includes(`URI:${SITE_URI_PREFIX}${cn}`)) {
    throw denied(`the client certificate's subjectAltName does not name site ${cn} (${SITE_URI_PREFIX}${cn})`);
  }
  return {
    siteId: cn,
    federationId: subjectField(cert.subject, 'O') ?? '',
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    certificatePem: cert.toString(),
  };
}

function parseCa(ca: Buffer | string): X509Certificate {
  try {
    const cert = new X509Certificate(ca);
    if (!cert.ca) throw new Error('not a CA certificate');
    return cert;
  } catch (err) {
    throw new Error(`peer identity: the federation CA certificate is unusable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The calling site's identity, from the client certificate verified by TLS on this call's
 * connection. Throws PeerIdentityError: UNAUTHENTICATED when there is no verified certificate,
 * PERMISSION_DENIED when the certificate is not a site certificate (of our CA, if given).
 */
export function peerSiteIdentity(call: CallWithAuthContext, options: PeerIdentityOptions = {}): SiteIdentity {
  return identify(call, options.ca === undefined ? undefined : parseCa(options.ca));
}

/** Just the site id (the CN of the verified client certificate). See peerSiteIdentity. */
export function peerSiteId(call: CallWithAuthContext, options: PeerIdentityOptions = {}): string {
  return peerSiteIdentity(call, options).siteId;
}

function identify(call: CallWithAuthContext, caCert: X509Certificate | undefined): SiteIdentity {
  const auth = typeof call.getAuthContext === 'function' ? call.getAuthContext() : null;
  const raw = auth?.sslPeerCertificate?.raw;
  if (!auth || auth.transportSecurityType !== 'ssl' || !raw || raw.length === 0) {
    throw new PeerIdentityError(grpc.status.UNAUTHENTICATED, 'no verified client certificate on this connection (mutual TLS is required)');
  }
  return siteIdentityFromCertificate(raw, caCert);
}

/**
 * A resolver bound to the federation CA (parsed once), for the coordinator's handlers:
 * `const whoIs = createPeerIdentityResolver(kit.ca); const site = whoIs(call).siteId;`
 */
export function createPeerIdentityResolver(ca: Buffer | string): (call: CallWithAuthContext) => SiteIdentity {
  const caCert = parseCa(ca);
  return (call) => identify(call, caCert);
}
