// `fedsynth provision rotate-coordinator` (pki/rotate-coordinator.ts): a new key and server
// certificate of the provision profile from the same CA, the old pair in previous/, the kit
// replaced whole; bad input refused with nothing changed; the CLI's flags, errors and --help.
import 'reflect-metadata';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { loadKit, provisionFederation } from '../../pki/index.ts';
import {
  certificateToPem,
  generateKeyPair,
  loadCertificateAuthority,
  OID_SERVER_AUTH,
  privateKeyToPem,
  SIGNING_ALGORITHM,
} from '../../pki/x509.ts';
import { certificateHosts, rotateCoordinator } from '../../pki/rotate-coordinator.ts';
import { REVOCATION_FILE, type RevocationReason } from '../../pki/rotate.ts';
import { readRevocationList } from '../../proto/revocation.ts';
import { HelpRequest } from '../../cli/args.ts';
import { parseProvisionArgs, runProvisionCommand } from '../../cli/provision.ts';
import { verifyFiles } from '../../cli/audit/verify.ts';
import { parsePolicyYaml } from '../../site-agent/policy.ts';
import { appendEntry, type AuditEntry } from '../../privacy/audit-log/chain.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-rotate-coord-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
let dir: string;

beforeEach(async () => {
  dir = join(root, `fed-${n++}`);
  await provisionFederation({
    outDir: dir,
    federationId: 'f',
    sites: ['a', 'b'],
    coordinatorHosts: ['coord.test', '127.0.0.1'],
    validityDays: 30,
  });
});

/** Every file under `d` with its bytes, by relative path. */
function snapshot(d: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (x: string) => {
    for (const e of readdirSync(x, { withFileTypes: true })) {
      const p = join(x, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(d, p), readFileSync(p, 'latin1'));
    }
  };
  walk(d);
  return out;
}

const read = (p: string) => readFileSync(join(dir, p), 'utf8');
const mode = (p: string) => statSync(join(dir, p)).mode & 0o777;

function io() {
  const captured = { out: '', err: '' };
  return { captured, io: { out: (t: string) => void (captured.out += t), err: (t: string) => void (captured.err += t) } };
}

describe('rotateCoordinator', () => {
  it('issues a new key and certificate of the same profile and hosts; the old pair moves to previous/; nothing else changes', async () => {
    const before = snapshot(dir);
    const oldCert = new X509Certificate(read('coordinator/cert.pem'));
    const oldKey = read('coordinator/key.pem');
    const r = await rotateCoordinator({ outDir: dir });

    const kit = loadKit(join(dir, 'coordinator'));
    expect(kit.role).toBe('coordinator');
    expect(kit.commonName).toBe('fedsynth-coordinator');
    expect(kit.federationId).toBe('f');
    const fresh = new X509Certificate(read('coordinator/cert.pem'));
    expect(fresh.serialNumber).toBe(r.newSerial);
    expect(fresh.serialNumber).not.toBe(oldCert.serialNumber);
    expect(fresh.fingerprint256).toBe(r.newFingerprint256);
    expect(r.oldFingerprint256).toBe(oldCert.fingerprint256);
    expect(fresh.subject).toBe(oldCert.subject);
    expect(fresh.keyUsage).toEqual(oldCert.keyUsage);
    expect(fresh.subjectAltName).toBe(oldCert.subjectAltName);
    expect(r.hosts).toEqual(['coord.test', '127.0.0.1']);
    // A new key, not a re-signed old one.
    expect(fresh.publicKey.export({ format: 'der', type: 'spki' }).equals(oldCert.publicKey.export({ format: 'der', type: 'spki' }))).toBe(
      false,
    );
    expect(fresh.checkPrivateKey(createPrivateKey(read('coordinator/key.pem')))).toBe(true);

    expect(relative(dir, r.previousCertPath)).toBe(`coordinator/previous/${oldCert.serialNumber}.pem`);
    expect(read(`coordinator/previous/${oldCert.serialNumber}.pem`)).toBe(oldCert.toString());
    expect(r.previousKeyPath && relative(dir, r.previousKeyPath)).toBe(`coordinator/previous/${oldCert.serialNumber}.key`);
    expect(read(`coordinator/previous/${oldCert.serialNumber}.key`)).toBe(oldKey);
    expect(mode(`coordinator/previous/${oldCert.serialNumber}.key`)).toBe(0o600);
    expect(mode('coordinator/key.pem')).toBe(0o600);
    expect(mode('coordinator')).toBe(0o700);

    const after = snapshot(dir);
    const changed = [...after.keys()].filter((f) => after.get(f) !== before.get(f)).sort();
    expect(changed).toEqual(
      [
        'coordinator/cert.pem',
        'coordinator/key.pem',
        `coordinator/previous/${oldCert.serialNumber}.key`,
        `coordinator/previous/${oldCert.serialNumber}.pem`,
      ].sort(),
    );
    expect([...before.keys()].every((f) => after.has(f))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['ca', 'coordinator', 'roster.json', 'sites']);
  });

  it('a second rotation keeps both earlier certificates in previous/', async () => {
    const first = await rotateCoordinator({ outDir: dir });
    const second = await rotateCoordinator({ outDir: dir });
    expect(second.oldSerial).toBe(first.newSerial);
    expect(readdirSync(join(dir, 'coordinator/previous')).sort()).toEqual(
      [`${first.oldSerial}.key`, `${first.oldSerial}.pem`, `${second.oldSerial}.key`, `${second.oldSerial}.pem`].sort(),
    );
  });

  it('new host names replace the old ones; DNS names are lower-cased and duplicates dropped', async () => {
    const r = await rotateCoordinator({ outDir: dir, hosts: ['Coord.Example.org', 'coord.example.org', '::1', '10.0.0.5'] });
    expect(r.hosts).toEqual(['coord.example.org', '::1', '10.0.0.5']);
    expect(certificateHosts(read('coordinator/cert.pem'))).toEqual(['coord.example.org', '::1', '10.0.0.5']);
    // The next rotation without hosts keeps these.
    await rotateCoordinator({ outDir: dir });
    expect(certificateHosts(read('coordinator/cert.pem'))).toEqual(['coord.example.org', '::1', '10.0.0.5']);
  });

  it('validity: the given days, clamped to the CA', async () => {
    const now = new Date();
    const r = await rotateCoordinator({ outDir: dir, validityDays: 7, now });
    expect(Math.abs(r.notAfter.getTime() - (now.getTime() + 7 * 86_400_000))).toBeLessThan(2000);
    const ca = new X509Certificate(read('ca/ca.pem'));
    const long = await rotateCoordinator({ outDir: dir, validityDays: 36_500 });
    expect(long.notAfter.getTime()).toBe(new Date(ca.validTo).getTime());
  });

  it('--revoke-old puts the old certificate on the CA-signed list; the roster is untouched', async () => {
    const oldPem = read('coordinator/cert.pem');
    const roster = read('roster.json');
    const r = await rotateCoordinator({ outDir: dir, revokeOld: true, reason: 'keyCompromise' });
    expect(r.revokedIn).toBe(join(dir, REVOCATION_FILE));
    const list = await readRevocationList(join(dir, REVOCATION_FILE), read('ca/ca.pem'));
    expect(list.lookupPem(oldPem)?.reason).toBe('keyCompromise');
    expect(list.lookupPem(read('coordinator/cert.pem'))).toBeUndefined();
    expect(read('roster.json')).toBe(roster);
    // Default reason: superseded.
    const next = read('coordinator/cert.pem');
    await rotateCoordinator({ outDir: dir, revokeOld: true });
    expect((await readRevocationList(join(dir, REVOCATION_FILE), read('ca/ca.pem'))).lookupPem(next)?.reason).toBe('superseded');
  });

  it('refuses bad input with a clear message and changes nothing', async () => {
    const before = snapshot(dir);
    const cases: [Parameters<typeof rotateCoordinator>[0], RegExp][] = [
      [{ outDir: join(root, 'nowhere') }, /is not a provisioned federation: missing .*ca\.pem/],
      [{ outDir: dir, hosts: ['bad host'] }, /invalid coordinator host "bad host": expected a DNS name or an IP address/],
      [{ outDir: dir, hosts: ['-x.example'] }, /invalid coordinator host/],
      [{ outDir: dir, hosts: [] }, /at least one coordinator host/],
      [{ outDir: dir, validityDays: 0 }, /invalid validityDays 0/],
      [{ outDir: dir, validityDays: 1.5 }, /invalid validityDays 1.5/],
      [{ outDir: dir, reason: 'keyCompromise' }, /a revocation reason goes with revoking the old certificate/],
      [{ outDir: dir, revokeOld: true, reason: String('bogus') as RevocationReason }, /unknown revocation reason "bogus"/],
    ];
    for (const [opts, message] of cases) await expect(rotateCoordinator(opts), message.source).rejects.toThrow(message);
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a folder without a coordinator kit, or whose certificate another CA issued or is not a server certificate', async () => {
    const other = join(root, `other-${n}`);
    await provisionFederation({ outDir: other, federationId: 'g', sites: ['a'], validityDays: 30 });
    writeFileSync(join(dir, 'coordinator/cert.pem'), readFileSync(join(other, 'coordinator/cert.pem')));
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(/coordinator\/cert\.pem was not issued by this federation's CA/);
    writeFileSync(join(dir, 'coordinator/cert.pem'), read('sites/a/cert.pem'));
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(/is not a coordinator \(serverAuth\) certificate/);
    rmSync(join(dir, 'coordinator'), { recursive: true });
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(/has no coordinator kit to rotate .*cert\.pem is missing/);
  });

  it('a current certificate that names no host needs --hosts', async () => {
    // A serverAuth certificate from the federation CA without subjectAltName (not one provision issues).
    const ca = await loadCertificateAuthority(read('ca/ca.pem'), read('ca/ca.key'));
    const keys = await generateKeyPair();
    const bare = await x509.X509CertificateGenerator.create(
      {
        serialNumber: '01',
        subject: 'CN=fedsynth-coordinator, O=f',
        issuer: ca.certificate.subjectName,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        publicKey: keys.publicKey,
        signingKey: ca.privateKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [new x509.ExtendedKeyUsageExtension([OID_SERVER_AUTH])],
      },
      webcrypto,
    );
    writeFileSync(join(dir, 'coordinator/cert.pem'), certificateToPem(bare));
    writeFileSync(join(dir, 'coordinator/key.pem'), await privateKeyToPem(keys.privateKey));
    const before = snapshot(dir);
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(
      /cert\.pem names no host name or address; give the new certificate's with --hosts/,
    );
    expect(snapshot(dir)).toEqual(before);
    expect((await rotateCoordinator({ outDir: dir, hosts: ['coord.test'] })).hosts).toEqual(['coord.test']);
  });

  it('a corrupt revocation list stops --revoke-old before the kit changes', async () => {
    writeFileSync(join(dir, REVOCATION_FILE), '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    const before = snapshot(dir);
    await expect(rotateCoordinator({ outDir: dir, revokeOld: true })).rejects.toThrow(/is a corrupt revocation list/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('names the leftovers of an interrupted run and how to recover, instead of rotating again', async () => {
    mkdirSync(join(dir, 'coordinator.rotating-0badf00d'));
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(
      /earlier rotate-coordinator .* did not finish \(coordinator\.rotating-0badf00d left behind\)\. .*coordinator is in place: remove .*coordinator\.rotating-0badf00d/,
    );
    // A crash between the two renames: the old kit moved aside, the new one not yet in place.
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'coordinator'), join(dir, 'coordinator.replaced-0badf00d'));
    await expect(rotateCoordinator({ outDir: dir })).rejects.toThrow(
      /coordinator is missing: rename .*coordinator\.rotating-0badf00d \(the new kit\) or .*coordinator\.replaced-0badf00d \(the old one\) to /,
    );
  });

  it('the audit log the coordinator signed before and after a rotation verifies with --certs DIR, not with the new certificate alone', async () => {
    const oldKey = read('coordinator/key.pem');
    await rotateCoordinator({ outDir: dir });
    const newKey = read('coordinator/key.pem');
    let tail: AuditEntry | null = null;
    const lines: string[] = [];
    [oldKey, oldKey, newKey].forEach((key, i) => {
      tail = appendEntry(
        tail,
        { type: 'cohort-emitted', federationId: 'f', modelId: 'm', cohortId: `c${i}`, size: 10 },
        'coordinator',
        key,
        new Date(1e12 + i),
      );
      lines.push(JSON.stringify(tail));
    });
    const log = join(dir, 'coordinator-audit.jsonl');
    writeFileSync(log, `${lines.join('\n')}\n`);
    const caPem = read('ca/ca.pem');
    const whole = verifyFiles({ logs: [log], caPem, certFiles: [dir], delta: 1e-9 });
    expect(whole.result.logs[0]).toMatchObject({ party: 'coordinator', entries: 3, chainFindings: 0 });
    expect(whole.notes.join('\n')).toMatch(/another certificate of coordinator \(a rotation\)/);
    const newOnly = verifyFiles({ logs: [log], caPem, certFiles: [join(dir, 'coordinator/cert.pem')], delta: 1e-9 });
    expect(newOnly.result.logs[0].chainFindings).toBe(2);
  });
});

describe('fedsynth provision rotate-coordinator', () => {
  it('answers --help with every flag', async () => {
    expect(() => parseProvisionArgs(['rotate-coordinator', '--help'])).toThrow(HelpRequest);
    const r = io();
    expect(await runProvisionCommand(['rotate-coordinator', '--help'], r.io)).toBe(0);
    for (const flag of ['--out DIR', '--hosts h1,h2', '--days N', '--revoke-old', '--reason']) expect(r.captured.out).toContain(flag);
    const top = io();
    expect(await runProvisionCommand(['--help'], top.io)).toBe(0);
    expect(top.captured.out).toMatch(/provision rotate-coordinator --out DIR/);
  });

  it('parses its flags', () => {
    expect(parseProvisionArgs(['rotate-coordinator', '--out', 'd'])).toEqual({
      command: 'rotate-coordinator',
      options: { outDir: 'd', revokeOld: false },
    });
    expect(
      parseProvisionArgs([
        'rotate-coordinator',
        '--out=d',
        '--hosts',
        'a.example,10.0.0.1',
        '--days',
        '90',
        '--revoke-old',
        '--reason',
        'keyCompromise',
      ]),
    ).toEqual({
      command: 'rotate-coordinator',
      options: { outDir: 'd', hosts: ['a.example', '10.0.0.1'], validityDays: 90, revokeOld: true, reason: 'keyCompromise' },
    });
  });

  it('usage errors exit 2 and name the flag; a bad host or folder exits 1; nothing is written', async () => {
    const before = snapshot(dir);
    const cases: [string[], number, RegExp][] = [
      [['rotate-coordinator'], 2, /missing required flag --out/],
      [['rotate-coordinator', '--out', dir, '--days', '0'], 2, /--days must be an integer from 1 to 36500, got "0"/],
      [['rotate-coordinator', '--out', dir, '--days', 'soon'], 2, /--days must be an integer/],
      [['rotate-coordinator', '--out', dir, '--reason', 'keyCompromise'], 2, /--reason goes with --revoke-old/],
      [['rotate-coordinator', '--out', dir, '--revoke-old', '--reason', 'stolen'], 2, /--reason must be one of/],
      [['rotate-coordinator', 'extra', '--out', dir], 2, /argument|positional/],
      [['rotate-coordinator', '--out', dir, '--hosts', 'bad_host!'], 1, /invalid coordinator host "bad_host!"/],
      [['rotate-coordinator', '--out', join(root, 'missing')], 1, /is not a provisioned federation/],
    ];
    for (const [args, code, message] of cases) {
      const r = io();
      expect(await runProvisionCommand(args, r.io), args.join(' ')).toBe(code);
      expect(r.captured.err, args.join(' ')).toMatch(message);
      expect(r.captured.out).toBe('');
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('prints the new serial, hosts, where the old pair went, and the fingerprint a pinning site must add', async () => {
    const oldFp = new X509Certificate(read('coordinator/cert.pem')).fingerprint256.replace(/:/g, '').toLowerCase();
    const r = io();
    expect(await runProvisionCommand(['rotate-coordinator', '--out', dir, '--hosts', 'coord.new', '--revoke-old'], r.io)).toBe(0);
    const fresh = new X509Certificate(read('coordinator/cert.pem'));
    expect(r.captured.out).toContain(`new certificate serial ${fresh.serialNumber} for coord.new`);
    expect(r.captured.out).toMatch(
      /The old certificate \(serial [0-9A-F]+\) is kept as .*coordinator\/previous\/[0-9A-F]+\.pem, its key as .*\.key/,
    );
    expect(r.captured.out).toMatch(/it is now revoked in .*revoked\.crl\.pem/);
    expect(r.captured.out).toContain(`New SHA-256 fingerprint ${fresh.fingerprint256.replace(/:/g, '').toLowerCase()}`);
    expect(r.captured.out).toMatch(/coordinatorFingerprint\) must list it/);
    // The line a pinning site pastes into its policy, which its parser takes.
    const line = /^ {2}(coordinatorFingerprint: .*)$/m.exec(r.captured.out)![1];
    const pins = parsePolicyYaml(`policy:\n  epsilon: 1\n  delta: 1e-9\n  ${line}\n`).coordinatorFingerprints;
    expect(pins).toEqual([oldFp, fresh.fingerprint256.replace(/:/g, '').toLowerCase()]);
  });
});
