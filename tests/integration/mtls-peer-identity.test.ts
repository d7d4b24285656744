// peer-identity's own checks, behind TLS: what it accepts and refuses when handed a call's
// auth context (the real-gRPC path is covered in mtls-identity.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { provisionFederation } from '../../pki/index.ts';
import {
  PeerIdentityError,
  createPeerIdentityResolver,
  peerSiteId,
  peerSiteIdentity,
  type CallWithAuthContext,
} from '../../coordinator/peer-identity.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-peer-'));
const fedA = join(root, 'a');
const fedB = join(root, 'b');
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await provisionFederation({ outDir: fedA, federationId: 'fed-a', sites: ['alice'], validityDays: 2 });
  await provisionFederation({ outDir: fedB, federationId: 'fed-b', sites: ['alice'], validityDays: 2 });
});

const der = (pemPath: string) => new X509Certificate(readFileSync(pemPath)).raw;
const callWith = (ctx: ReturnType<CallWithAuthContext['getAuthContext']>) => ({ getAuthContext: () => ctx });

function codeOf(fn: () => unknown): grpc.status | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PeerIdentityError);
    return (err as PeerIdentityError).code;
  }
  return undefined;
}

describe('peerSiteIdentity', () => {
  it('returns the CN and details of a site certificate', () => {
    const call = callWith({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(join(fedA, 'sites/alice/cert.pem')) } });
    const id = peerSiteIdentity(call, { ca: readFileSync(join(fedA, 'ca/ca.pem')) });
    expect(id.siteId).toBe('alice');
    expect(id.federationId).toBe('fed-a');
    expect(id.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(id.certificatePem).toContain('BEGIN CERTIFICATE');
    expect(peerSiteId(call)).toBe('alice');
  });

  it('UNAUTHENTICATED without a verified certificate, whatever else the call carries', () => {
    expect(codeOf(() => peerSiteId(callWith(null)))).toBe(grpc.status.UNAUTHENTICATED);
    expect(codeOf(() => peerSiteId(callWith({})))).toBe(grpc.status.UNAUTHENTICATED); // plaintext or unauthorized socket
    expect(codeOf(() => peerSiteId(callWith({ transportSecurityType: 'ssl' })))).toBe(grpc.status.UNAUTHENTICATED);
    expect(codeOf(() => peerSiteId(callWith({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: Buffer.from('nope') } })))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(codeOf(() => peerSiteId(callWith(null)))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('PERMISSION_DENIED for a certificate of another CA when our CA is given', () => {
    const whoIs = createPeerIdentityResolver(readFileSync(join(fedA, 'ca/ca.pem')));
    const foreign = callWith({
      transportSecurityType: 'ssl',
      sslPeerCertificate: { raw: der(join(fedB, 'sites/alice/cert.pem')) },
    });
    expect(codeOf(() => whoIs(foreign))).toBe(grpc.status.PERMISSION_DENIED);
    expect(() => whoIs(foreign)).toThrow(/not issued by this federation's CA/);
  });

  it('PERMISSION_DENIED for non-site certificates (coordinator, CA)', () => {
    const whoIs = createPeerIdentityResolver(readFileSync(join(fedA, 'ca/ca.pem')));
    const coord = callWith({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(join(fedA, 'coordinator/cert.pem')) } });
    expect(codeOf(() => whoIs(coord))).toBe(grpc.status.PERMISSION_DENIED);
    expect(() => whoIs(coord)).toThrow(/no clientAuth/);
    const ca = callWith({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(join(fedA, 'ca/ca.pem')) } });
    expect(() => whoIs(ca)).toThrow(/a CA certificate cannot act as a site/);
  });

  it('the resolver refuses an unusable CA up front', () => {
    expect(() => createPeerIdentityResolver('garbage')).toThrow(/federation CA certificate is unusable/);
    expect(() => createPeerIdentityResolver(readFileSync(join(fedA, 'sites/alice/cert.pem')))).toThrow(/not a CA certificate/);
  });
});
