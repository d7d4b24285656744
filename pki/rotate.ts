// Certificate rotation and revocation for a running federation.
//
// rotate-site issues a new key and certificate for the SAME site id: the coordinator knows a site
// only by the CN of its verified certificate, so the site keeps its registrations and every ρ
// charged to it; the agent keeps its state folder (ledger, audit log, committee keys). The old
// certificate is kept in the kit as previous/<serial>.pem, because the agent's audit log was
// signed with the old key and must still verify after the switch (site-agent/previous-certs.ts).
//
// revoke writes DIR/revoked.crl.pem, an X.509 CRL signed by the CA, which the coordinator and
// every agent read (proto/revocation.ts). Entries accumulate: revoking never un-revokes. Every
// list carries a cRLNumber one higher than the list it replaces (1 for the first, and for the
// first after an unnumbered one), which holders use to refuse an older list (a rollback).
import 'reflect-metadata';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CRL_NUMBER_OID, decodeCrlNumber, encodeCrlNumber } from '../proto/revocation.ts';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE, caDir, replaceFile, siteKitDir } from './kit.ts';
import {
  certificateKeySha256,
  changeRoster,
  readRoster,
  requireRoster,
  writeRoster,
  type RosterChange,
  type RosterContent,
  type RosterEntry,
} from './roster.ts';
import {
  certificateToPem,
  issueSiteCertificate,
  loadCertificateAuthority,
  privateKeyToPem,
  ProvisionError,
  SIGNING_ALGORITHM,
  validateSiteId,
  validateValidityDays,
  type CertificateAuthority,
} from './x509.ts';

export const REVOCATION_FILE = 'revoked.crl.pem';
export const PREVIOUS_DIR = 'previous';
const DEFAULT_VALIDITY_DAYS = 365;

export const REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];
const REASON_CODE: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

/** The federation CA of a provision folder (certificate and key), for commands that sign with it. */
export async function loadCa(outDir: string) {
  const ca = caDir(outDir);
  const certPath = join(ca, CA_CERT_FILE);
  const keyPath = join(ca, CA_KEY_FILE);
  const missing = [certPath, keyPath].filter((p) => !existsSync(p));
  if (missing.length)
    throw new ProvisionError(
      `${outDir} is not a provisioned federation: missing ${missing.join(', ')} (the CA folder of fedsynth provision --out)`,
    );
  const caPem = readFileSync(certPath, 'utf8');
  return { caPem, authority: await loadCertificateAuthority(caPem, readFileSync(keyPath, 'utf8'), ca) };
}

export interface RotateSiteResult {
  siteId: string;
  siteDir: string;
  oldSerial: string;
  newSerial: string;
  previousCertPath: string;
  revoked: boolean;
  /** The roster with the site's new key: its new version and the roster files written. */
  roster: RosterChange;
}

/** Issues a new key and certificate for an existing site id; the old certificate moves to previous/. */
export async function rotateSite(opts: {
  outDir: string;
  siteId: string;
  validityDays?: number;
  revokeOld?: boolean;
  now?: Date;
}): Promise<RotateSiteResult> {
  const outDir = resolve(opts.outDir);
  const siteId = validateSiteId(opts.siteId);
  const validityDays = validateValidityDays(opts.validityDays ?? DEFAULT_VALIDITY_DAYS);
  const { authority } = await loadCa(outDir);
  const dir = siteKitDir(outDir, siteId);
  const certPath = join(dir, CERT_FILE);
  if (!existsSync(certPath))
    throw new ProvisionError(`site ${siteId} has no kit in ${dir} to rotate (fedsynth provision add-site ${siteId} issues a first one)`);
  // Checked before any key is replaced: a rotated site the roster does not list could not serve.
  const before = await requireRoster(outDir, authority);
  if (!before.sites.some((s) => s.siteId === siteId))
    throw new ProvisionError(
      `site ${siteId} is not in the roster (version ${before.version}): it was revoked or never added; add-site issues a kit for a new site`,
    );
  const oldPem = readFileSync(certPath, 'utf8');
  const old = new X509Certificate(oldPem);
  const leaf = await issueSiteCertificate({ ca: authority, siteId, validityDays, now: opts.now });
  const newPem = certificateToPem(leaf.certificate);
  const prevDir = join(dir, PREVIOUS_DIR);
  mkdirSync(prevDir, { recursive: true, mode: 0o755 });
  const previousCertPath = join(prevDir, `${old.serialNumber}.pem`);
  if (!existsSync(previousCertPath)) replaceFile(previousCertPath, oldPem, 0o644);
  // Key first: a crash between the two leaves a key without its certificate, which the agent
  // refuses to start with (kit check) rather than running with a mismatched pair.
  replaceFile(join(dir, KEY_FILE), await privateKeyToPem(leaf.privateKey), 0o600);
  replaceFile(certPath, newPem, 0o644);
  const newSerial = new X509Certificate(newPem).serialNumber;
  const newKey = certificateKeySha256(newPem);
  const roster = await changeRoster(
    outDir,
    authority,
    before,
    before.sites.map((s) => (s.siteId === siteId ? { siteId, publicKeySha256: newKey } : s)),
    opts.now,
  );
  if (opts.revokeOld) await revokeCertificates({ outDir, certPems: [oldPem], reason: 'superseded', now: opts.now });
  // A fresh key always changes the roster.
  return {
    siteId,
    siteDir: dir,
    oldSerial: old.serialNumber,
    newSerial,
    previousCertPath,
    revoked: opts.revokeOld === true,
    roster: roster!,
  };
}

export interface RevokeResult {
  file: string;
  added: { serial: string; subject: string }[];
  total: number;
  /** The cRLNumber of the list written. */
  crlNumber: bigint;
  /** Sites whose listed key was revoked, so they left the roster. */
  removedFromRoster: string[];
  /** The new roster version, when a site left it; undefined when the roster did not change or does not exist. */
  roster?: RosterChange;
}

/**
 * The entries and cRLNumber (0 for an unnumbered list, or none) of DIR/revoked.crl.pem, its CA
 * signature checked; none when the file does not exist. A corrupt or foreign list is refused:
 * re-signing it would drop or forge entries.
 */
export async function revocationEntries(
  outDir: string,
  authority: CertificateAuthority,
): Promise<{ entries: readonly x509.X509CrlEntry[]; crlNumber: bigint }> {
  const file = join(outDir, REVOCATION_FILE);
  if (!existsSync(file)) return { entries: [], crlNumber: 0n };
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ProvisionError(
      `${file} is a corrupt revocation list (${(err as Error).message}); restore it from a backup before revoking more`,
    );
  }
  if (!(await crl.verify({ publicKey: authority.certificate }, webcrypto)))
    throw new ProvisionError(`${file} is not signed by this federation's CA; restore it from a backup before revoking more`);
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  let crlNumber = 0n;
  if (ext) {
    try {
      crlNumber = decodeCrlNumber(ext.value);
    } catch (err) {
      throw new ProvisionError(
        `${file} has an unreadable cRLNumber (${(err as Error).message}); restore it from a backup before revoking more`,
      );
    }
  }
  return { entries: crl.entries, crlNumber };
}

/** Adds certificates to the federation's CRL (DIR/revoked.crl.pem), re-signed by the CA. */
export async function revokeCertificates(opts: {
  outDir: string;
  certPems: string[];
  reason?: RevocationReason;
  now?: Date;
}): Promise<RevokeResult> {
  const outDir = resolve(opts.outDir);
  const reason = opts.reason ?? 'unspecified';
  if (!REVOCATION_REASONS.includes(reason))
    throw new ProvisionError(`unknown revocation reason ${JSON.stringify(reason)} (known: ${REVOCATION_REASONS.join(', ')})`);
  const { caPem, authority } = await loadCa(outDir);
  const caNode = new X509Certificate(caPem);
  const now = opts.now ?? new Date();
  const file = join(outDir, REVOCATION_FILE);
  const entries: x509.X509CrlEntryParams[] = [];
  const known = new Set<string>();
  const before = await revocationEntries(outDir, authority);
  for (const e of before.entries) {
    known.add(e.serialNumber.toUpperCase().replace(/^0+/, ''));
    entries.push({
      serialNumber: e.serialNumber,
      revocationDate: e.revocationDate,
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
    });
  }
  const added: RevokeResult['added'] = [];
  for (const pem of opts.certPems) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      throw new ProvisionError(`not a PEM certificate: ${(err as Error).message}`);
    }
    if (!cert.checkIssued(caNode) || !cert.verify(caNode.publicKey))
      throw new ProvisionError(
        `certificate ${cert.subject.replace(/\n/g, ', ')} (serial ${cert.serialNumber}) was not issued by this federation's CA`,
      );
    if (cert.ca) throw new ProvisionError('refusing to revoke the CA itself: provision a new federation instead');
    const serial = cert.serialNumber.toUpperCase().replace(/^0+/, '');
    if (known.has(serial)) continue;
    known.add(serial);
    entries.push({ serialNumber: cert.serialNumber.toLowerCase(), revocationDate: now, reason: REASON_CODE[reason] });
    added.push({ serial: cert.serialNumber, subject: cert.subject.replace(/\n/g, ', ') });
  }
  const crlNumber = before.crlNumber + 1n;
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: authority.certificate.subject,
      thisUpdate: now,
      // Present because @peculiar/x509 mis-reads the entries of a CRL without it. Readers here do
      // not expire the list: the latest file is in force until replaced.
      nextUpdate: authority.certificate.notAfter,
      // Re-signing with nothing new still numbers a new list, so an operator can always issue one
      // above whatever a holder accepted.
      extensions: [new x509.Extension(CRL_NUMBER_OID, false, encodeCrlNumber(crlNumber))],
      entries,
      signingAlgorithm: SIGNING_ALGORITHM,
      signingKey: authority.privateKey,
    },
    webcrypto,
  );
  // The RFC 7468 label, so that `openssl crl -in revoked.crl.pem` reads it too.
  replaceFile(file, x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n', 0o644);
  // A site whose listed key is revoked leaves the roster; revoking a key the roster no longer
  // lists (a previous certificate after rotate-site) changes nothing there. Revocation is not
  // held up by a federation that has no roster yet.
  const rosterBefore = await readRoster(outDir, authority);
  if (!rosterBefore) return { file, added, total: entries.length, crlNumber, removedFromRoster: [] };
  const revokedKeys = new Set(opts.certPems.map((pem) => certificateKeySha256(pem)));
  const removedFromRoster = rosterBefore.sites.filter((s) => revokedKeys.has(s.publicKeySha256)).map((s) => s.siteId);
  const roster = await changeRoster(
    outDir,
    authority,
    rosterBefore,
    rosterBefore.sites.filter((s) => !revokedKeys.has(s.publicKeySha256)),
    now,
  );
  return { file, added, total: entries.length, crlNumber, removedFromRoster, ...(roster ? { roster } : {}) };
}

/** The site's current certificate (and, with previous, every certificate it held before). */
export function siteCertificates(outDir: string, siteId: string, which: 'current' | 'previous' | 'all'): string[] {
  const dir = siteKitDir(resolve(outDir), validateSiteId(siteId));
  const out: string[] = [];
  if (which !== 'previous') {
    if (!existsSync(join(dir, CERT_FILE))) throw new ProvisionError(`site ${siteId} has no certificate in ${dir}`);
    out.push(readFileSync(join(dir, CERT_FILE), 'utf8'));
  }
  if (which !== 'current') {
    const prev = join(dir, PREVIOUS_DIR);
    const files = existsSync(prev) ? readdirSync(prev).filter((f) => f.endsWith('.pem')) : [];
    if (which === 'previous' && files.length === 0)
      throw new ProvisionError(`site ${siteId} has no previous certificate in ${prev} (was it rotated?)`);
    for (const f of files.sort()) out.push(readFileSync(join(prev, f), 'utf8'));
  }
  return out;
}

/** The federation's roster as it stands, its signature checked; for `fedsynth provision roster`. */
export async function currentRoster(outDir: string): Promise<RosterContent> {
  const { authority } = await loadCa(resolve(outDir));
  return requireRoster(resolve(outDir), authority);
}

/**
 * Version 1 of the roster for a federation provisioned before rosters: every site kit in
 * DIR/sites/ whose current certificate is not on the revocation list. Refuses when a roster
 * exists (it would reset the version that sites hold, which they refuse as a rollback).
 */
export async function initRoster(opts: { outDir: string; now?: Date }): Promise<RosterChange> {
  const outDir = resolve(opts.outDir);
  const { caPem, authority } = await loadCa(outDir);
  if (await readRoster(outDir, authority))
    throw new ProvisionError(`${join(outDir, 'roster.json')} already exists; add-site, rotate-site and revoke change it`);
  const revoked = new Set<string>();
  const crlFile = join(outDir, REVOCATION_FILE);
  if (existsSync(crlFile)) {
    const crl = new x509.X509Crl(readFileSync(crlFile, 'utf8'));
    if (!(await crl.verify({ publicKey: authority.certificate }, webcrypto)))
      throw new ProvisionError(`${crlFile} is not signed by this federation's CA; restore it from a backup first`);
    for (const e of crl.entries) revoked.add(e.serialNumber.toUpperCase().replace(/^0+/, ''));
  }
  const caNode = new X509Certificate(caPem);
  const sitesDir = join(outDir, 'sites');
  const sites: RosterEntry[] = [];
  for (const id of existsSync(sitesDir) ? readdirSync(sitesDir).sort() : []) {
    const certPath = join(siteKitDir(outDir, id), CERT_FILE);
    if (!existsSync(certPath)) continue;
    const pem = readFileSync(certPath, 'utf8');
    const cert = new X509Certificate(pem);
    if (!cert.checkIssued(caNode) || !cert.verify(caNode.publicKey))
      throw new ProvisionError(`${certPath} was not issued by this federation's CA`);
    if (!cert.subject.split('\n').includes(`CN=${id}`)) throw new ProvisionError(`${certPath} is not the certificate of site ${id}`);
    if (revoked.has(cert.serialNumber.toUpperCase().replace(/^0+/, ''))) continue;
    sites.push({ siteId: validateSiteId(id), publicKeySha256: certificateKeySha256(pem) });
  }
  return writeRoster(outDir, authority, {
    federationId: authority.federationId,
    version: 1,
    issuedAt: opts.now ?? new Date(),
    sites,
  });
}
