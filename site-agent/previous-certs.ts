// Certificates a site held before a rotation (fedsynth provision rotate-site). The site's audit log
// was signed with each key it ever had; after a rotation its older entries verify only under the
// previous certificate, so the agent keeps every certificate it has run with in its state folder
// (certs/<serial>.pem) and also accepts the kit's previous/ folder. Only certificates issued by the
// federation CA to this very site id are used: a stranger's certificate cannot vouch for entries.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

export const CERTS_DIR = 'certs';
const SITE_URI_PREFIX = 'urn:fedsynth:site:';

function cn(cert: X509Certificate): string | undefined {
  return cert.subject
    .split('\n')
    .find((l) => l.startsWith('CN='))
    ?.slice(3);
}

/** True when `pem` is a certificate of site `siteId` issued by `caPem`. */
export function isSiteCertificate(pem: string, caPem: string, siteId: string): boolean {
  try {
    const cert = new X509Certificate(pem);
    const ca = new X509Certificate(caPem);
    return (
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      cn(cert) === siteId &&
      (cert.subjectAltName ?? '').split(', ').includes(`URI:${SITE_URI_PREFIX}${siteId}`)
    );
  } catch {
    return false;
  }
}

function pemsIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pem'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

/** The site's earlier certificates (state folder and kit), checked, without the current one. */
export function previousSiteCertificates(opts: {
  stateDir: string;
  siteId: string;
  caPem: string;
  certPem: string;
  kitPrevious?: string[];
}): string[] {
  const current = new X509Certificate(opts.certPem).serialNumber;
  const seen = new Set<string>([current]);
  const out: string[] = [];
  for (const pem of [...pemsIn(join(opts.stateDir, CERTS_DIR)), ...(opts.kitPrevious ?? [])]) {
    if (!isSiteCertificate(pem, opts.caPem, opts.siteId)) continue;
    const serial = new X509Certificate(pem).serialNumber;
    if (seen.has(serial)) continue;
    seen.add(serial);
    out.push(pem);
  }
  return out;
}

/** Keeps the certificate the agent runs with in the state folder, for a later rotation. */
export function recordCertificate(stateDir: string, certPem: string): void {
  const dir = join(stateDir, CERTS_DIR);
  const file = join(dir, `${new X509Certificate(certPem).serialNumber}.pem`);
  if (existsSync(file)) return;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, certPem);
  renameSync(tmp, file);
}
