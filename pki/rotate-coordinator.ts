// rotate-coordinator: a new key and server certificate for the coordinator, from the same CA.
//
// Sites trust the coordinator through the federation CA and the host name they dial (grpc-js
// checks both), so a certificate of the same profile from the same CA is accepted with no change
// at the sites; a site whose policy pins the coordinator's fingerprint (`coordinatorFingerprint`)
// must be given the new one. The coordinator signs its audit log with its certificate key, so the
// old certificate is kept in previous/<serial>.pem, where `fedsynth audit verify --certs DIR`
// finds it for the entries signed before the switch; the old key goes beside it (previous/<serial>.key,
// mode 0600) so that the operator can go back until the new certificate is in service.
//
// The kit is replaced as a whole folder: the new kit is written and flushed in a sibling folder,
// then two renames swap it in. At every moment DIR/coordinator is the complete old kit, the
// complete new one, or (a crash between the renames) absent with both complete kits beside it,
// which the next run names; never a key of one certificate next to another certificate.
import 'reflect-metadata';
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CA_CERT_FILE, CERT_FILE, COORDINATOR_DIR, KEY_FILE, coordinatorKitDir } from './kit.ts';
import { loadCa, PREVIOUS_DIR, REVOCATION_REASONS, revocationEntries, revokeCertificates, type RevocationReason } from './rotate.ts';
import {
  certificateToPem,
  issueCoordinatorCertificate,
  OID_SERVER_AUTH,
  privateKeyToPem,
  ProvisionError,
  validateHost,
  validateValidityDays,
} from './x509.ts';

const DEFAULT_VALIDITY_DAYS = 365;
const STAGING_PREFIX = `${COORDINATOR_DIR}.rotating-`;
const REPLACED_PREFIX = `${COORDINATOR_DIR}.replaced-`;

export interface RotateCoordinatorOptions {
  outDir: string;
  /** Names and addresses for the new certificate; default: those of the current one. */
  hosts?: string[];
  /** Default 365; clamped to the CA's own expiry. */
  validityDays?: number;
  /** Put the old certificate on DIR/revoked.crl.pem once the new kit is in place. */
  revokeOld?: boolean;
  /** The CRL reason of that entry (default superseded). */
  reason?: RevocationReason;
  now?: Date;
}

export interface RotateCoordinatorResult {
  coordinatorDir: string;
  oldSerial: string;
  newSerial: string;
  /** SHA-256 of the new certificate's DER, colon-separated hex (what `coordinatorFingerprint` pins). */
  newFingerprint256: string;
  oldFingerprint256: string;
  hosts: string[];
  notAfter: Date;
  previousCertPath: string;
  /** Absent when the kit had no key.pem (a lost key is a reason to rotate). */
  previousKeyPath?: string;
  /** DIR/revoked.crl.pem when the old certificate was revoked. */
  revokedIn?: string;
}

/** The DNS names and IP addresses of a certificate's subjectAltName, in order. */
export function certificateHosts(pem: string): string[] {
  const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.toJSON() ?? []).filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
}

/** Validated, de-duplicated hosts (DNS names compare without case). */
function checkedHosts(hosts: string[]): string[] {
  if (!Array.isArray(hosts) || hosts.length === 0)
    throw new ProvisionError('at least one coordinator host is needed for the server certificate');
  const out: string[] = [];
  for (const h of hosts) {
    const v = validateHost(h).value;
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** Refuses to start over the leftovers of a run that stopped between its two renames. */
function refuseLeftovers(outDir: string): void {
  const left = readdirSync(outDir).filter((n) => n.startsWith(STAGING_PREFIX) || n.startsWith(REPLACED_PREFIX));
  if (left.length === 0) return;
  const replaced = left.find((n) => n.startsWith(REPLACED_PREFIX));
  const staged = left.find((n) => n.startsWith(STAGING_PREFIX));
  const kit = coordinatorKitDir(outDir);
  throw new ProvisionError(
    `an earlier rotate-coordinator in ${outDir} did not finish (${left.join(', ')} left behind). ` +
      (existsSync(kit)
        ? `${kit} is in place: remove ${left.map((n) => join(outDir, n)).join(' and ')}, then run it again`
        : `${kit} is missing: rename ${staged ? join(outDir, staged) : '(no new kit)'} (the new kit) or ${replaced ? join(outDir, replaced) : '(no old kit)'} (the old one) to ${kit}, remove the other, then run it again`),
  );
}

/** Writes a file and flushes it to disk before the rename that publishes the folder holding it. */
function writeDurable(path: string, content: string, mode: number): void {
  const fd = openSync(path, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode); // independent of the umask
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The kit's current certificate, checked to be this CA's coordinator certificate before anything is replaced. */
function currentCertificate(outDir: string, caPem: string): { pem: string; cert: X509Certificate } {
  const certPath = join(coordinatorKitDir(outDir), CERT_FILE);
  if (!existsSync(certPath))
    throw new ProvisionError(
      `${outDir} has no coordinator kit to rotate (${certPath} is missing); fedsynth provision issues the first one`,
    );
  const pem = readFileSync(certPath, 'utf8');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new ProvisionError(`${certPath} is not a PEM certificate (${(err as Error).message}); restore the kit from a backup first`);
  }
  const caNode = new X509Certificate(caPem);
  if (!cert.checkIssued(caNode) || !cert.verify(caNode.publicKey))
    throw new ProvisionError(
      `${certPath} was not issued by this federation's CA (${join(outDir, 'ca', CA_CERT_FILE)}); is --out the right folder?`,
    );
  if (!(cert.keyUsage ?? []).includes(OID_SERVER_AUTH))
    throw new ProvisionError(`${certPath} is not a coordinator (serverAuth) certificate; restore the kit from a backup first`);
  return { pem, cert };
}

/**
 * Writes the new kit beside DIR/coordinator (a copy of the old one with the new pair, the old pair
 * in previous/, all flushed) and swaps it in with two renames; any failure before the second
 * rename leaves the old kit in place and no staging folder.
 */
function replaceKit(
  outDir: string,
  files: { caPem: string; certPem: string; keyPem: string; oldSerial: string; oldPem: string; oldKeyPem?: string },
): void {
  const kit = coordinatorKitDir(outDir);
  const tag = randomBytes(4).toString('hex');
  const staging = join(outDir, `${STAGING_PREFIX}${tag}`);
  const replaced = join(outDir, `${REPLACED_PREFIX}${tag}`);
  try {
    // Whatever else the operator keeps in the kit travels with it, previous/ included.
    cpSync(kit, staging, { recursive: true, errorOnExist: true, force: false });
    chmodSync(staging, 0o700);
    const prev = join(staging, PREVIOUS_DIR);
    mkdirSync(prev, { recursive: true, mode: 0o755 });
    writeDurable(join(prev, `${files.oldSerial}.pem`), files.oldPem, 0o644);
    if (files.oldKeyPem !== undefined) writeDurable(join(prev, `${files.oldSerial}.key`), files.oldKeyPem, 0o600);
    writeDurable(join(staging, CA_CERT_FILE), files.caPem, 0o644);
    writeDurable(join(staging, KEY_FILE), files.keyPem, 0o600);
    writeDurable(join(staging, CERT_FILE), files.certPem, 0o644);
    fsyncDir(prev);
    fsyncDir(staging);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new ProvisionError(`cannot write the new coordinator kit: ${(err as Error).message}; ${kit} is unchanged`);
  }
  try {
    renameSync(kit, replaced);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new ProvisionError(`cannot move ${kit} aside: ${(err as Error).message}; it is unchanged`);
  }
  try {
    renameSync(staging, kit);
  } catch (err) {
    renameSync(replaced, kit);
    rmSync(staging, { recursive: true, force: true });
    throw new ProvisionError(`cannot put the new coordinator kit in place: ${(err as Error).message}; ${kit} is unchanged`);
  }
  fsyncDir(outDir);
  rmSync(replaced, { recursive: true, force: true });
}

function checkedOptions(opts: RotateCoordinatorOptions): { outDir: string; validityDays: number } {
  if (!opts || typeof opts.outDir !== 'string' || opts.outDir === '') throw new ProvisionError('outDir is required');
  if (opts.reason !== undefined && !opts.revokeOld) throw new ProvisionError('a revocation reason goes with revoking the old certificate');
  if (opts.reason !== undefined && !REVOCATION_REASONS.includes(opts.reason))
    throw new ProvisionError(`unknown revocation reason ${JSON.stringify(opts.reason)} (known: ${REVOCATION_REASONS.join(', ')})`);
  return { outDir: resolve(opts.outDir), validityDays: validateValidityDays(opts.validityDays ?? DEFAULT_VALIDITY_DAYS) };
}

/**
 * Issues a new key and server certificate for the coordinator (CN fedsynth-coordinator, serverAuth,
 * the given or current hosts) from the federation CA; the old pair moves to previous/.
 */
export async function rotateCoordinator(opts: RotateCoordinatorOptions): Promise<RotateCoordinatorResult> {
  const { outDir, validityDays } = checkedOptions(opts);
  const { caPem, authority } = await loadCa(outDir);
  refuseLeftovers(outDir);
  const kit = coordinatorKitDir(outDir);
  const old = currentCertificate(outDir, caPem);
  const current = certificateHosts(old.pem);
  if (opts.hosts === undefined && current.length === 0)
    throw new ProvisionError(`${join(kit, CERT_FILE)} names no host name or address; give the new certificate's with --hosts`);
  const hosts = checkedHosts(opts.hosts ?? current);
  // Read now, so a list that could not be re-signed stops the run before the kit changes.
  if (opts.revokeOld) await revocationEntries(outDir, authority);

  const leaf = await issueCoordinatorCertificate({ ca: authority, hosts, validityDays, now: opts.now });
  const certPem = certificateToPem(leaf.certificate);
  const oldSerial = old.cert.serialNumber;
  const oldKeyPath = join(kit, KEY_FILE);
  const oldKeyPem = existsSync(oldKeyPath) ? readFileSync(oldKeyPath, 'utf8') : undefined;
  replaceKit(outDir, { caPem, certPem, keyPem: await privateKeyToPem(leaf.privateKey), oldSerial, oldPem: old.pem, oldKeyPem });

  const fresh = new X509Certificate(certPem);
  const previousCertPath = join(kit, PREVIOUS_DIR, `${oldSerial}.pem`);
  const result: RotateCoordinatorResult = {
    coordinatorDir: kit,
    oldSerial,
    newSerial: fresh.serialNumber,
    newFingerprint256: fresh.fingerprint256,
    oldFingerprint256: old.cert.fingerprint256,
    hosts,
    notAfter: new Date(fresh.validTo),
    previousCertPath,
    ...(oldKeyPem !== undefined ? { previousKeyPath: join(kit, PREVIOUS_DIR, `${oldSerial}.key`) } : {}),
  };
  if (!opts.revokeOld) return result;
  try {
    const r = await revokeCertificates({ outDir, certPems: [old.pem], reason: opts.reason ?? 'superseded', now: opts.now });
    return { ...result, revokedIn: r.file };
  } catch (err) {
    throw new ProvisionError(
      `the new coordinator kit is in place (serial ${result.newSerial}), but the old certificate was not revoked: ${(err as Error).message}. ` +
        `Revoke it with: fedsynth provision revoke --out ${outDir} --cert ${previousCertPath}`,
    );
  }
}
