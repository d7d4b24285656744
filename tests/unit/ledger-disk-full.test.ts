// The site ledger and audit log on a disk that refuses writes (issue 17, item 8), with real
// limits rather than simulated errors: a file-size limit (ulimit -f → EFBIG, in a child process),
// a full tmpfs (ENOSPC) and a read-only bind mount (EROFS), the last two when this test runs as
// root and may mount. Whatever the disk refuses is taken back: no torn line, no temp file, no
// charge recorded in one file and not the other, and a clear one-line error.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLedger, type Ledger } from '../../site-agent/ledger.ts';
import { DiskWriteError } from '../../site-agent/audit-log.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-diskfull-'));
const mounts: string[] = [];
const CHILD = fileURLToPath(new URL('../support/disk-full-child.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const audit = { party: 'hospital-a', privateKeyPem: keyPem };

function mount(args: string[], dir: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', [...args, dir], { stdio: 'ignore' });
    mounts.push(dir);
    return true;
  } catch {
    return false;
  }
}
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = join(root, 'probe');
  if (!mount(['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs'], probe)) return false;
  execFileSync('umount', [probe]);
  mounts.pop();
  return true;
})();
if (!canMount) console.warn('ledger-disk-full: tmpfs and read-only mount cases skipped (need root allowed to mount)');

afterAll(() => {
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(root, { recursive: true, force: true });
});

/** Every file is whole: each ends in a newline (or is empty); no temp files anywhere. */
function expectNoTornFiles(dir: string): void {
  for (const f of ['ledger.jsonl', 'audit.jsonl']) {
    const text = readFileSync(join(dir, f), 'utf8');
    if (text.length) expect(text.endsWith('\n'), `${f} ends in a torn line`).toBe(true);
  }
  const all = [...readdirSync(dir), ...readdirSync(join(dir, 'answers'))];
  expect(all.filter((f) => f.endsWith('.tmp'))).toEqual([]);
}

/** Reopens the ledger with nothing to repair, and as many charges in the audit log as in the ledger. */
function expectCleanReopen(dir: string, charges: number, privateKeyPem = keyPem): void {
  const l = openLedger(dir, { audit: { party: 'hospital-a', privateKeyPem } });
  try {
    expect(l.recovery).toEqual({
      tornTail: null,
      auditTornTail: null,
      orphanAnswersRemoved: [],
      auditEntriesRecovered: 0,
      damagedAnswers: [],
    });
    expect(l.records()).toHaveLength(charges);
    expect(l.auditLog!.entries().filter((e) => e.event.type === 'charge')).toHaveLength(charges);
    expect(readdirSync(join(dir, 'answers'))).toHaveLength(charges);
  } finally {
    l.close();
  }
}

describe('a file-size limit (EFBIG) cuts writes mid-line', () => {
  it('charges stop whole: the one the audit log could not take is taken back from the ledger too', () => {
    const dir = join(root, 'efbig', 'state');
    mkdirSync(dir, { recursive: true });
    // 8 KiB per file: the audit log (two signed entries per charge) reaches it first, mid-entry.
    const res = spawnSync('bash', ['-c', `ulimit -f 8 && exec "${process.execPath}" --import "${TSX}" "${CHILD}" "${dir}"`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim()) as { charged: number; chargeError: string; refused: number; refuseError: string };
    expect(out.charged).toBeGreaterThan(0);
    expect(out.chargeError).toMatch(/^cannot write .*audit\.jsonl: file too large \(file-size limit\) \(EFBIG\)$/);
    expect(out.refuseError).toMatch(/\(EFBIG\)$/);
    expect(readFileSync(join(dir, 'audit.jsonl')).length).toBeLessThanOrEqual(8 * 1024);
    expectNoTornFiles(dir);
    expectCleanReopen(dir, out.charged, readFileSync(join(dir, '..', 'key.pem'), 'utf8'));
  }, 90_000);
});

describe.skipIf(!canMount)('a full disk (ENOSPC, a 64 KiB tmpfs)', () => {
  it('an answer that does not fit is not charged and leaves no .bin.tmp; appends fail whole; reopen needs no repair', () => {
    const dir = join(root, 'tmpfs');
    expect(mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], dir)).toBe(true);
    // A filler to free later, so the ledger can be reopened (its LOCK needs a page).
    writeFileSync(join(dir, 'filler'), Buffer.alloc(8192));
    const state = join(dir, 'state');
    let ledger: Ledger = openLedger(state, { audit });
    const big = () =>
      ledger.charge({ taskId: 'big', roundId: 'r', federationId: 'fed', rho: 0.01, mechanism: 'm', answer: new Uint8Array(128 * 1024) });
    expect(big).toThrow(DiskWriteError);
    expect(big).toThrow(/^cannot write .*answers\/[0-9a-f]{64}\.bin: no space left on device \(ENOSPC\)$/);
    expect(ledger.charged('big')).toBe(false);
    expect(ledger.totalRho()).toBe(0);
    expectNoTornFiles(state);
    expect(readdirSync(join(state, 'answers'))).toEqual([]);

    // Fill it with small charges and refusals until the disk says no; every failure is whole.
    let charged = 0;
    let failure: unknown;
    for (let i = 0; i < 1000 && !failure; i++) {
      try {
        ledger.charge({ taskId: `t${i}`, roundId: `r${i}`, federationId: 'fed', rho: 0.001, mechanism: 'm', answer: new Uint8Array(1500) });
        charged++;
        ledger.refuse({ taskId: `q${i}`, roundId: `q${i}`, federationId: 'fed', reason: 'y'.repeat(900) });
      } catch (err) {
        failure = err;
      }
    }
    expect(failure).toBeInstanceOf(DiskWriteError);
    expect((failure as DiskWriteError).code).toBe('ENOSPC');
    expect(ledger.records()).toHaveLength(charged);
    expectNoTornFiles(state);
    ledger.close();
    unlinkSync(join(dir, 'filler'));
    expectCleanReopen(state, charged);
    ledger = openLedger(state, { audit });
    ledger.close();
  });
});

describe.skipIf(!canMount)('a read-only state folder (EROFS, a read-only bind mount)', () => {
  it('opening the ledger fails with one line naming the file and the cause', () => {
    const dir = join(root, 'ro');
    mkdirSync(dir, { recursive: true });
    openLedger(dir, { audit }).close();
    expect(mount(['--bind', dir], dir)).toBe(true);
    execFileSync('mount', ['-o', 'remount,ro,bind', dir]);
    let err: unknown;
    try {
      openLedger(dir, { audit }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiskWriteError);
    expect((err as Error).message).toBe(`cannot write ${join(dir, 'LOCK')}: read-only file system (EROFS)`);
  });
});
