// `fedsynth provision`: a federation CA, a coordinator kit, one kit per site and version 1 of the
// signed federation roster (pki/roster.ts); `add-site` issues one more site kit from the existing
// CA and a new roster version listing it, and touches no other certificate.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import {
  ProvisionError,
  certificateToPem,
  createCertificateAuthority,
  issueCoordinatorCertificate,
  issueSiteCertificate,
  loadCertificateAuthority,
  privateKeyToPem,
  validateFederationId,
  validateHost,
  validateSiteId,
  validateValidityDays,
} from './x509.ts';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE, caDir, coordinatorKitDir, siteKitDir } from './kit.ts';
import { certificateKeySha256, changeRoster, requireRoster, ROSTER_FILE, rosterPath, signRoster, type RosterChange } from './roster.ts';

export const DEFAULT_COORDINATOR_HOSTS = ['localhost', '127.0.0.1'];
export const DEFAULT_VALIDITY_DAYS = 365;
/** The CA outlives its leaves so that `add-site` keeps working; at least 10 years by default. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;

export interface ProvisionOptions {
  outDir: string;
  federationId: string;
  sites: string[];
  coordinatorHosts?: string[];
  /** Validity of the coordinator and site certificates. */
  validityDays: number;
  /** Validity of the CA; default max(validityDays, 3650). */
  caValidityDays?: number;
}

export interface ProvisionResult {
  outDir: string;
  federationId: string;
  caDir: string;
  coordinatorDir: string;
  siteDirs: Record<string, string>;
  caFingerprint256: string;
  /** DIR/roster.json: version 1, every site with its certificate's public key. */
  rosterFile: string;
  /** Every file written, absolute paths. */
  files: string[];
}

export interface AddSiteOptions {
  outDir: string;
  siteId: string;
  /** Default 365; clamped to the CA's own expiry. */
  validityDays?: number;
}

export interface AddSiteResult {
  siteId: string;
  federationId: string;
  siteDir: string;
  files: string[];
  /** The roster, now listing this site: its new version and the roster files written. */
  roster: RosterChange;
}

interface PendingFile {
  path: string;
  content: string;
  secret: boolean;
}

function isNonEmptyDir(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    return readdirSync(path).length > 0;
  } catch {
    return true; // a file, or unreadable: either way, not ours to overwrite
  }
}

function refuseExisting(dir: string, what: string, hint: string): void {
  if (isNonEmptyDir(dir)) throw new ProvisionError(`refusing to overwrite the existing ${what} at ${dir}; ${hint}`);
}

/**
 * Writes files exclusively (never replacing one), keys with mode 0600 in 0700 directories.
 * On any failure the files this call created are removed again, so a failed run leaves no
 * half-written kit behind.
 */
function writeAll(files: PendingFile[], privateDirs: string[]): string[] {
  const created: string[] = [];
  try {
    for (const f of files) {
      const dir = resolve(f.path, '..');
      mkdirSync(resolve(dir, '..'), { recursive: true, mode: 0o755 });
      mkdirSync(dir, { recursive: true, mode: privateDirs.includes(dir) ? 0o700 : 0o755 });
      const mode = f.secret ? 0o600 : 0o644;
      writeFileSync(f.path, f.content, { flag: 'wx', mode });
      created.push(f.path);
      chmodSync(f.path, mode); // independent of the umask
    }
    for (const d of privateDirs) chmodSync(d, 0o700);
  } catch (err) {
    for (const p of created) rmSync(p, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ProvisionError(`refusing to overwrite ${(err as NodeJS.ErrnoException).path ?? 'an existing file'}`);
    throw new ProvisionError(`cannot write startup kits: ${(err as Error).message}`);
  }
  return created;
}

export async function provisionFederation(opts: ProvisionOptions): Promise<ProvisionResult> {
  if (!opts || typeof opts.outDir !== 'string' || opts.outDir === '') throw new ProvisionError('outDir is required');
  const outDir = resolve(opts.outDir);
  const federationId = validateFederationId(opts.federationId);
  if (!Array.isArray(opts.sites)) throw new ProvisionError('sites must be a list of site ids');
  const sites = opts.sites.map((s) => validateSiteId(s));
  const dup = sites.find((s, i) => sites.indexOf(s) !== i);
  if (dup) throw new ProvisionError(`site id ${JSON.stringify(dup)} is listed twice`);
  const hosts = opts.coordinatorHosts ?? DEFAULT_COORDINATOR_HOSTS;
  if (!Array.isArray(hosts) || hosts.length === 0) throw new ProvisionError('coordinatorHosts must list at least one host');
  hosts.forEach((h) => validateHost(h));
  const validityDays = validateValidityDays(opts.validityDays);
  const caValidityDays = validateValidityDays(opts.caValidityDays ?? Math.max(validityDays, DEFAULT_CA_VALIDITY_DAYS), 'caValidityDays');
  if (caValidityDays < validityDays)
    throw new ProvisionError(`caValidityDays (${caValidityDays}) must be at least validityDays (${validityDays})`);

  const ca = caDir(outDir);
  const coord = coordinatorKitDir(outDir);
  refuseExisting(ca, 'federation CA', 'choose another --out directory, or use `fedsynth provision add-site` to add a site to it');
  refuseExisting(coord, 'coordinator kit', 'choose another --out directory');
  for (const s of sites) refuseExisting(siteKitDir(outDir, s), `kit of site ${s}`, 'choose another --out directory');

  // Everything is generated in memory first; nothing touches the disk until it all succeeded.
  const authority = await createCertificateAuthority({ federationId, validityDays: caValidityDays });
  const caPem = certificateToPem(authority.certificate);
  const files: PendingFile[] = [
    { path: join(ca, CA_CERT_FILE), content: caPem, secret: false },
    { path: join(ca, CA_KEY_FILE), content: await privateKeyToPem(authority.privateKey), secret: true },
  ];
  const server = await issueCoordinatorCertificate({ ca: authority, hosts, validityDays });
  files.push(
    { path: join(coord, CA_CERT_FILE), content: caPem, secret: false },
    { path: join(coord, CERT_FILE), content: certificateToPem(server.certificate), secret: false },
    { path: join(coord, KEY_FILE), content: await privateKeyToPem(server.privateKey), secret: true },
  );
  const siteDirs: Record<string, string> = {};
  const rosterSites: { siteId: string; publicKeySha256: string }[] = [];
  for (const s of sites) {
    const dir = siteKitDir(outDir, s);
    siteDirs[s] = dir;
    const leaf = await issueSiteCertificate({ ca: authority, siteId: s, validityDays });
    const certPem = certificateToPem(leaf.certificate);
    rosterSites.push({ siteId: s, publicKeySha256: certificateKeySha256(certPem) });
    files.push(
      { path: join(dir, CA_CERT_FILE), content: caPem, secret: false },
      { path: join(dir, CERT_FILE), content: certPem, secret: false },
      { path: join(dir, KEY_FILE), content: await privateKeyToPem(leaf.privateKey), secret: true },
    );
  }
  // Version 1 of the roster travels with every site kit; the sites accept nothing older later.
  const roster = await signRoster(authority, { federationId, version: 1, issuedAt: new Date(), sites: rosterSites });
  files.push({ path: rosterPath(outDir), content: roster, secret: false });
  for (const dir of Object.values(siteDirs)) files.push({ path: join(dir, ROSTER_FILE), content: roster, secret: false });
  const written = writeAll(files, [ca, coord, ...Object.values(siteDirs)]);
  return {
    outDir,
    federationId,
    caDir: ca,
    coordinatorDir: coord,
    siteDirs,
    caFingerprint256: new X509Certificate(caPem).fingerprint256,
    rosterFile: rosterPath(outDir),
    files: written,
  };
}

export async function addSite(opts: AddSiteOptions): Promise<AddSiteResult> {
  if (!opts || typeof opts.outDir !== 'string' || opts.outDir === '') throw new ProvisionError('outDir is required');
  const outDir = resolve(opts.outDir);
  const siteId = validateSiteId(opts.siteId);
  const validityDays = validateValidityDays(opts.validityDays ?? DEFAULT_VALIDITY_DAYS);
  const ca = caDir(outDir);
  const caCertPath = join(ca, CA_CERT_FILE);
  const caKeyPath = join(ca, CA_KEY_FILE);
  const missing = [caCertPath, caKeyPath].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new ProvisionError(
      `${outDir} is not a provisioned federation: missing ${missing.join(', ')} (run \`fedsynth provision --out ${opts.outDir} ...\` first)`,
    );
  }
  const dir = siteKitDir(outDir, siteId);
  refuseExisting(dir, `kit of site ${siteId}`, 'site ids are unique within a federation');

  const caPem = readFileSync(caCertPath, 'utf8');
  const authority = await loadCertificateAuthority(caPem, readFileSync(caKeyPath, 'utf8'), ca);
  // The roster is read (and its signature checked) before anything is written.
  const before = await requireRoster(outDir, authority);
  if (before.sites.some((s) => s.siteId === siteId))
    throw new ProvisionError(
      `site ${siteId} is already in the roster (version ${before.version}) though it has no kit in ${dir}; restore its kit, or use rotate-site`,
    );
  const leaf = await issueSiteCertificate({ ca: authority, siteId, validityDays });
  const certPem = certificateToPem(leaf.certificate);
  const files = writeAll(
    [
      // The CA certificate is copied byte for byte, so every kit of the federation agrees on it.
      { path: join(dir, CA_CERT_FILE), content: caPem, secret: false },
      { path: join(dir, CERT_FILE), content: certPem, secret: false },
      { path: join(dir, KEY_FILE), content: await privateKeyToPem(leaf.privateKey), secret: true },
    ],
    [dir],
  );
  let roster: RosterChange | undefined;
  try {
    roster = await changeRoster(outDir, authority, before, [...before.sites, { siteId, publicKeySha256: certificateKeySha256(certPem) }]);
  } catch (err) {
    // A kit the roster does not list would be refused as a committee member: take it back.
    for (const f of files) rmSync(f, { force: true });
    throw err;
  }
  // A new id always changes the roster.
  return { siteId, federationId: authority.federationId, siteDir: dir, files: [...files, ...roster!.files], roster: roster! };
}
