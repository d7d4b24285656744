// Provisioned federations for tests that drive site tasks directly: each site's kit, the CA and
// the signed roster, the certificates a CA holder could issue outside the roster, and a
// one-member committee signed with a site's key.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { provisionFederation } from '../../pki/index.ts';
import { certificateToPem, issueSiteCertificate, loadCertificateAuthority, privateKeyToPem } from '../../pki/x509.ts';
import { parseRoster, type FederationRoster } from '../../proto/roster.ts';
import type { CommitteeMemberSpec } from '../../proto/task-spec.ts';
import type { Bfv } from '../../privacy/crypto/bfv.ts';
import { signCommitteeKey } from '../../privacy/crypto/secure-aggregation.ts';

export interface Kit {
  certPem: string;
  keyPem: string;
}

const readKit = (d: string): Kit => ({
  certPem: readFileSync(join(d, 'cert.pem'), 'utf8'),
  keyPem: readFileSync(join(d, 'key.pem'), 'utf8'),
});

/** Provisions `sites` under `dir`/kits: every site's kit and the coordinator's (as `coordinator`), the CA certificate, the roster. */
export async function provisionedKits(
  dir: string,
  federationId: string,
  sites: string[],
): Promise<{ kits: Record<string, Kit>; caCert: X509Certificate; roster: FederationRoster; caDir: string }> {
  const res = await provisionFederation({ outDir: join(dir, 'kits'), federationId, sites, validityDays: 2 });
  const kits: Record<string, Kit> = Object.fromEntries(sites.map((s) => [s, readKit(res.siteDirs[s])]));
  kits.coordinator = readKit(res.coordinatorDir);
  const caCert = new X509Certificate(readFileSync(join(res.caDir, 'ca.pem')));
  const roster = parseRoster(readFileSync(res.rosterFile, 'utf8'), caCert.raw, res.rosterFile);
  return { kits, caCert, roster, caDir: res.caDir };
}

/**
 * What a CA holder can do without the roster: site-profile certificates issued from the CA key
 * for an id the roster does not list (`extra-x`, hospital-x) and, with a key of its own, for one
 * it lists (`second-b`, hospital-b).
 */
export async function kitsOutsideRoster(caDir: string): Promise<Record<'extra-x' | 'second-b', Kit>> {
  const authority = await loadCertificateAuthority(
    readFileSync(join(caDir, 'ca.pem'), 'utf8'),
    readFileSync(join(caDir, 'ca.key'), 'utf8'),
  );
  const out = {} as Record<'extra-x' | 'second-b', Kit>;
  for (const [name, siteId] of [
    ['extra-x', 'hospital-x'],
    ['second-b', 'hospital-b'],
  ] as const) {
    const leaf = await issueSiteCertificate({ ca: authority, siteId, validityDays: 2 });
    out[name] = { certPem: certificateToPem(leaf.certificate), keyPem: await privateKeyToPem(leaf.privateKey) };
  }
  return out;
}

/** A committee of one member, `memberId` at point 1, its fresh BFV public key signed with its kit's key. */
export function oneMemberCommittee(bfv: Bfv, kit: Kit, memberId: string, federationId: string, schemaHash: string): CommitteeMemberSpec[] {
  const publicKey = bfv.generateKeyPair().publicKey;
  const signature = signCommitteeKey(kit.keyPem, { federationId, schemaHash, memberId, point: 1, publicKey });
  return [
    {
      memberId,
      point: 1,
      publicKey: Buffer.from(publicKey).toString('base64'),
      signature: Buffer.from(signature).toString('base64'),
      certificatePem: kit.certPem,
    },
  ];
}
