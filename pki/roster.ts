// The federation roster on the provisioning side: DIR/roster.json, the signed list of site ids
// and the public key each may act with (proto/roster.ts reads it at the sites). It is signed with
// the federation CA key itself rather than with a roster key the CA certifies: the sites already
// hold ca.pem as their one trust anchor, so nothing new has to be distributed, pinned or rotated,
// and a separate key certified by the CA would add nothing against a CA holder, who could certify
// another one. What the roster adds is that a certificate is not enough: a site id and key act in
// a committee only once a roster version lists them, every such change is a new version that each
// site must be handed (with its kit) and keeps, and a site never goes back to an older version.
//
// Every change re-signs the whole roster as version + 1 and writes it to DIR/roster.json and to
// the kit folder of every listed site (DIR/sites/<id>/roster.json), from where it is handed out.
import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verify, webcrypto, X509Certificate } from 'node:crypto';
import { COORDINATOR_CN, ProvisionError, SIGNING_ALGORITHM, validateSiteId, type CertificateAuthority } from './x509.ts';
import { replaceFile, siteKitDir } from './kit.ts';
import { publicKeySha256, ROSTER_FILE, ROSTER_FORMAT } from '../proto/roster.ts';

// The file name, the layout's name and the key hash are the reader's (proto/roster.ts): what is
// written here is exactly what a site parses.
export { ROSTER_FILE, ROSTER_FORMAT };

export interface RosterEntry {
  siteId: string;
  publicKeySha256: string;
}

export interface RosterContent {
  federationId: string;
  version: number;
  issuedAt: Date;
  sites: RosterEntry[];
}

/** Hex SHA-256 of a certificate's DER SubjectPublicKeyInfo. */
export const certificateKeySha256 = publicKeySha256;

export function rosterPath(outDir: string): string {
  return join(outDir, ROSTER_FILE);
}

/** The roster file text of `content`, signed by the CA (ECDSA P-256, SHA-256, r||s signature). */
export async function signRoster(authority: CertificateAuthority, content: RosterContent): Promise<string> {
  for (const s of content.sites) {
    validateSiteId(s.siteId);
    if (s.siteId === COORDINATOR_CN) throw new ProvisionError(`the coordinator (${COORDINATOR_CN}) is never a site of the roster`);
  }
  const sites = [...content.sites].sort((a, b) => (a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0));
  const payload = JSON.stringify({
    format: ROSTER_FORMAT,
    federationId: content.federationId,
    version: content.version,
    issuedAt: content.issuedAt.toISOString(),
    sites: sites.map((s) => ({ siteId: s.siteId, publicKeySha256: s.publicKeySha256 })),
  });
  const signature = await webcrypto.subtle.sign(SIGNING_ALGORITHM, authority.privateKey, Buffer.from(payload, 'utf8'));
  return `${JSON.stringify({ format: ROSTER_FORMAT, payload, signature: Buffer.from(signature).toString('base64') }, null, 2)}\n`;
}

/**
 * The current roster of a provisioned federation, its signature checked against the CA; undefined
 * when DIR/roster.json does not exist (a federation provisioned before rosters).
 */
export async function readRoster(outDir: string, authority: CertificateAuthority): Promise<RosterContent | undefined> {
  const file = rosterPath(outDir);
  if (!existsSync(file)) return undefined;
  const bad = (why: string) =>
    new ProvisionError(`${file} ${why}; restore it from a backup (or from any site's kit folder) before changing the federation`);
  let outer: { format?: unknown; payload?: unknown; signature?: unknown };
  try {
    outer = JSON.parse(readFileSync(file, 'utf8')) as typeof outer;
  } catch (err) {
    throw bad(`is not JSON (${(err as Error).message})`);
  }
  if (outer?.format !== ROSTER_FORMAT || typeof outer.payload !== 'string' || typeof outer.signature !== 'string')
    throw bad(`is not a ${ROSTER_FORMAT} roster`);
  const caKey = new X509Certificate(authority.certificate.toString('pem')).publicKey;
  const ok = verify(
    'sha256',
    Buffer.from(outer.payload, 'utf8'),
    { key: caKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(outer.signature, 'base64'),
  );
  if (!ok) throw bad("is not signed by this federation's CA");
  const body = JSON.parse(outer.payload) as { federationId: string; version: number; issuedAt: string; sites: RosterEntry[] };
  if (!Number.isSafeInteger(body.version) || body.version < 1 || !Array.isArray(body.sites)) throw bad('has no version or site list');
  if (body.federationId !== authority.federationId)
    throw bad(`is the roster of federation ${JSON.stringify(body.federationId)}, not ${JSON.stringify(authority.federationId)}`);
  return { federationId: body.federationId, version: body.version, issuedAt: new Date(body.issuedAt), sites: body.sites };
}

export interface RosterChange {
  file: string;
  version: number;
  /** Every roster file written: DIR/roster.json and the kits of the listed sites. */
  files: string[];
  sites: RosterEntry[];
}

/** Signs `content` and writes it to DIR/roster.json and into the kit of every listed site that has one. */
export async function writeRoster(outDir: string, authority: CertificateAuthority, content: RosterContent): Promise<RosterChange> {
  const text = await signRoster(authority, content);
  const file = rosterPath(outDir);
  const files = [file];
  // The kits first: DIR/roster.json is the record of the latest version, written once every kit has it.
  for (const s of content.sites) {
    const dir = siteKitDir(outDir, s.siteId);
    if (!existsSync(dir)) continue;
    replaceFile(join(dir, ROSTER_FILE), text, 0o644);
    files.push(join(dir, ROSTER_FILE));
  }
  replaceFile(file, text, 0o644);
  return { file, version: content.version, files, sites: content.sites };
}

/**
 * The existing roster, for a change to it: refuses a federation without one (the operator makes
 * it with `fedsynth provision roster --init`) before anything is written.
 */
export async function requireRoster(outDir: string, authority: CertificateAuthority): Promise<RosterContent> {
  const roster = await readRoster(outDir, authority);
  if (!roster)
    throw new ProvisionError(
      `${rosterPath(outDir)} does not exist (a federation provisioned before rosters): run \`fedsynth provision roster --init --out ${outDir}\` first`,
    );
  return roster;
}

/** The roster with `change` applied, as version + 1 issued now; unchanged (and not re-signed) when `change` changes nothing. */
export async function changeRoster(
  outDir: string,
  authority: CertificateAuthority,
  before: RosterContent,
  sites: RosterEntry[],
  now = new Date(),
): Promise<RosterChange | undefined> {
  const key = (list: RosterEntry[]) =>
    JSON.stringify([...list].sort((a, b) => (a.siteId < b.siteId ? -1 : 1)).map((s) => [s.siteId, s.publicKeySha256]));
  if (key(before.sites) === key(sites)) return undefined;
  return writeRoster(outDir, authority, { federationId: before.federationId, version: before.version + 1, issuedAt: now, sites });
}
