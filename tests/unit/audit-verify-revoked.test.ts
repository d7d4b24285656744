// `fedsynth audit verify --revocation-list`: a coordinator log signed with the old key before the
// rotation and with the new key after it verifies; entries appended with the old key after its
// revocation fail, each named with the certificate serial and the revocation time. Without the
// list they pass (the documented limitation), and a back-dated entry is caught only where it
// follows an entry dated later (timestamp-regression).
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionFederation } from '../../pki/index.ts';
import { rotateCoordinator, type RotateCoordinatorResult } from '../../pki/rotate-coordinator.ts';
import { REVOCATION_FILE, revokeCertificates } from '../../pki/rotate.ts';
import { HelpRequest, parseArgs } from '../../cli/args.ts';
import { runAuditVerify, VERIFY, verifyFiles } from '../../cli/audit/verify.ts';
import { runAuditReport } from '../../cli/audit/report.ts';
import { readRevocationList } from '../../proto/revocation.ts';
import { appendEntry, type AuditEntry } from '../../privacy/audit-log/chain.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-verify-revoked-'));
const dir = join(root, 'fed');
const other = join(root, 'other');
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Whole seconds, as a CRL records them.
const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
const at = (seconds: number) => new Date(revokedAt.getTime() + seconds * 1000);
let oldKey: string;
let newKey: string;
let rotated: RotateCoordinatorResult;
let caPem: string;
const crlFile = () => join(dir, REVOCATION_FILE);

/** A coordinator log: one entry per [key, time]. */
function writeLog(name: string, entries: [string, Date][]): string {
  let tail: AuditEntry | null = null;
  const lines = entries.map(([key, when], i) => {
    tail = appendEntry(
      tail,
      { type: 'cohort-emitted', federationId: 'f', modelId: 'm', cohortId: `c${i}`, size: 10 },
      'coordinator',
      key,
      when,
    );
    return JSON.stringify(tail);
  });
  const file = join(root, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function io() {
  const captured = { out: '', err: '' };
  return { captured, io: { out: (t: string) => void (captured.out += t), err: (t: string) => void (captured.err += t) } };
}

beforeAll(async () => {
  await provisionFederation({ outDir: dir, federationId: 'f', sites: ['a'], validityDays: 5 });
  await provisionFederation({ outDir: other, federationId: 'g', sites: ['a'], validityDays: 5 });
  caPem = readFileSync(join(dir, 'ca/ca.pem'), 'utf8');
  oldKey = readFileSync(join(dir, 'coordinator/key.pem'), 'utf8');
  rotated = await rotateCoordinator({ outDir: dir, revokeOld: true, reason: 'keyCompromise', now: revokedAt });
  newKey = readFileSync(join(dir, 'coordinator/key.pem'), 'utf8');
});

describe('audit verify with the revocation list', () => {
  it('the list revokes the old coordinator certificate at the rotation time', async () => {
    const list = await readRevocationList(crlFile(), caPem);
    const entry = list.lookupPem(readFileSync(rotated.previousCertPath, 'utf8'));
    expect(entry?.revokedAt.getTime()).toBe(revokedAt.getTime());
    expect(entry?.reason).toBe('keyCompromise');
  });

  it('entries signed with the old key after its revocation fail, named with the serial and the revocation time; earlier ones pass', async () => {
    const log = writeLog('extended.jsonl', [
      [oldKey, at(-60)],
      [oldKey, at(-30)],
      [oldKey, at(0.5)], // the second of the revocation: a CRL cannot order it
      [newKey, at(10)],
      [oldKey, at(20)],
      [oldKey, at(30)],
    ]);
    const revocationList = await readRevocationList(crlFile(), caPem);
    const { result, notes } = verifyFiles({ logs: [log], caPem, certFiles: [dir], delta: 1e-9, revocationList });
    expect(result.logs[0]).toMatchObject({ party: 'coordinator', entries: 6, chainFindings: 0 });
    expect(result.ok).toBe(false);
    expect(result.findings.map((f) => [f.kind, f.seq])).toEqual([
      ['signed-after-revocation', 4],
      ['signed-after-revocation', 5],
    ]);
    const serial = rotated.oldSerial.replace(/^0+/, '').toUpperCase();
    expect(result.findings[0].message).toBe(
      `${log} entry 4 (seq 4, cohort-emitted), dated ${at(20).toISOString()}, is signed with the certificate of coordinator serial ${serial}, revoked on ${revokedAt.toISOString()} (keyCompromise): signed after its certificate was revoked`,
    );
    expect(notes.join('\n')).toMatch(new RegExp(`cRLNumber 1\\) revokes 1 of the given certificates: coordinator serial ${serial} on `));

    // The same log without the list: it verifies (the limitation the threat model states).
    expect(verifyFiles({ logs: [log], caPem, certFiles: [dir], delta: 1e-9 }).result.ok).toBe(true);
    // Only the entries before the revocation and the new key's after it: verifies with the list.
    const honest = writeLog('honest.jsonl', [
      [oldKey, at(-60)],
      [oldKey, at(-30)],
      [newKey, at(10)],
      [newKey, at(20)],
    ]);
    expect(verifyFiles({ logs: [honest], caPem, certFiles: [dir], delta: 1e-9, revocationList }).result).toMatchObject({
      ok: true,
      findings: [],
    });
  });

  it('an old-key entry back-dated before the revocation is caught only by following a later-dated entry', async () => {
    const revocationList = await readRevocationList(crlFile(), caPem);
    const appended = writeLog('backdated.jsonl', [
      [oldKey, at(-60)],
      [newKey, at(10)],
      [oldKey, at(-5)],
    ]);
    const r = verifyFiles({ logs: [appended], caPem, certFiles: [dir], delta: 1e-9, revocationList }).result;
    expect(r.findings.map((f) => [f.kind, f.seq])).toEqual([['timestamp-regression', 2]]);
    // A chain forked before the first entry dated after the revocation carries no such witness:
    // the sites' countersigned heads and charges are what contradict it (threat model §6, §7).
    const forked = writeLog('forked.jsonl', [
      [oldKey, at(-60)],
      [oldKey, at(-5)],
    ]);
    expect(verifyFiles({ logs: [forked], caPem, certFiles: [dir], delta: 1e-9, revocationList }).result.ok).toBe(true);
  });

  it('the CLI fails with the finding, passes without the list, and answers --help', async () => {
    const log = writeLog('cli.jsonl', [
      [oldKey, at(-30)],
      [newKey, at(10)],
      [oldKey, at(40)],
    ]);
    const base = ['--log', log, '--ca', join(dir, 'ca/ca.pem'), '--certs', dir];
    let r = io();
    expect(await runAuditVerify([...base, '--revocation-list', crlFile()], r.io)).toBe(1);
    expect(r.captured.out).toMatch(
      new RegExp(
        `FINDING \\[signed-after-revocation\\] .*cli\\.jsonl seq 2: .*entry 2 \\(seq 2, cohort-emitted\\), dated ${at(40).toISOString().replace(/\./g, '\\.')}, is signed with the certificate of coordinator serial [0-9A-F]+, revoked on ${revokedAt.toISOString().replace(/\./g, '\\.')}`,
      ),
    );
    r = io();
    expect(await runAuditVerify(base, r.io)).toBe(0);
    let help = '';
    try {
      parseArgs(VERIFY, ['--help']);
    } catch (err) {
      if (err instanceof HelpRequest) help = err.text;
    }
    expect(help).toMatch(/--revocation-list FILE/);
  });

  it('audit report takes the list too and records the finding in report.json', async () => {
    const log = writeLog('report.jsonl', [
      [oldKey, at(-30)],
      [oldKey, at(50)],
    ]);
    const out = join(root, 'report');
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    let code: number;
    try {
      code = await runAuditReport([
        '--log',
        log,
        '--ca',
        join(dir, 'ca/ca.pem'),
        '--certs',
        dir,
        '--revocation-list',
        crlFile(),
        '--out',
        out,
      ]);
    } finally {
      process.stdout.write = write;
    }
    expect(code).toBe(1);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      verification: { findings: { kind: string; seq: number }[] };
    };
    expect(report.verification.findings.map((f) => [f.kind, f.seq])).toEqual([['signed-after-revocation', 1]]);
  });

  it('refuses a list that is missing, not a CRL, or not signed by the CA, as a usage error', async () => {
    const log = writeLog('bad-list.jsonl', [[newKey, at(10)]]);
    const base = ['--log', log, '--ca', join(dir, 'ca/ca.pem'), '--certs', dir];
    const garbage = join(root, 'garbage.pem');
    writeFileSync(garbage, 'not a list');
    await revokeCertificates({ outDir: other, certPems: [] });
    for (const [file, msg] of [
      [join(root, 'none.crl.pem'), /--revocation-list: cannot read the revocation list .*none\.crl\.pem: ENOENT/],
      [garbage, /--revocation-list: .*is not a PEM certificate revocation list/],
      [join(other, REVOCATION_FILE), /--revocation-list: .*is not signed by this federation's CA/],
      ['', /--revocation-list needs a value/],
    ] as const)
      await expect(runAuditVerify([...base, '--revocation-list', file], io().io)).rejects.toThrow(msg);
  });
});
