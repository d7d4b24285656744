import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AUDIT_FILE,
  LEDGER_FILE,
  LedgerConflictError,
  LedgerCorruptError,
  LedgerLockedError,
  LedgerRefusedError,
  openLedger,
  type ChargeInput,
  type Ledger,
} from '../../site-agent/ledger.ts';
import { AuditLogCorruptError, openAuditLog } from '../../site-agent/audit-log.ts';
import { budgetGuard, parsePolicy } from '../../site-agent/policy.ts';
import { parseChainLines, verifyChain } from '../../privacy/audit-log/chain.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const pubPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const audit = { party: 'site-a', privateKeyPem: privPem };

let dir: string;
const open: Ledger[] = [];
function openL(opts: Parameters<typeof openLedger>[1] = { audit }): Ledger {
  const l = openLedger(dir, opts);
  open.push(l);
  return l;
}
function closeAll() {
  while (open.length) open.pop()!.close();
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedsynth-ledger-'));
});
afterEach(() => {
  closeAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
function task(id: string, rho = 0.001, federationId = 'fed-1', answer = `answer of ${id}`): ChargeInput {
  return { taskId: id, roundId: `round-${id}`, federationId, rho, mechanism: 'distributed-discrete-gaussian', answer: bytes(answer) };
}
const ledgerPath = () => path.join(dir, LEDGER_FILE);
const ledgerLines = () => fs.readFileSync(ledgerPath(), 'utf8').split('\n').filter(Boolean);

describe('site ledger', () => {
  it('persists charges across reopen, with per-federation and per-month totals', () => {
    let t = Date.parse('2025-01-31T23:59:00Z');
    const now = () => new Date(t);
    const l = openL({ audit, now });
    expect(l.totalRho()).toBe(0);
    expect(l.charge(task('t1', 0.002)).charged).toBe(true);
    t = Date.parse('2025-02-01T00:01:00Z');
    l.charge(task('t2', 0.003, 'fed-2'));
    expect(l.totalRho()).toBeCloseTo(0.005, 15);
    closeAll();

    const r = openL({ audit, now });
    expect(r.totalRho()).toBeCloseTo(0.005, 15);
    expect(r.charged('t1')).toBe(true);
    expect(r.charged('t3')).toBe(false);
    expect(r.state()).toEqual({
      totalRho: r.totalRho(),
      byFederation: { 'fed-1': 0.002, 'fed-2': 0.003 },
      byMonth: { '2025-01': 0.002, '2025-02': 0.003 },
      charges: 2,
    });
    expect(Buffer.from(r.cachedAnswer('t2')!).toString()).toBe('answer of t2');
    expect(r.cachedAnswer('nope')).toBeUndefined();
    expect(r.recovery).toEqual({
      tornTail: null,
      auditTornTail: null,
      orphanAnswersRemoved: [],
      auditEntriesRecovered: 0,
      damagedAnswers: [],
    });
  });

  it('never charges a task id twice and returns the same cached bytes, also after a restart', () => {
    const l = openL();
    const first = l.charge(task('t1', 0.004, 'fed-1', 'noise draw #1'));
    // A retry arrives after the answer was recomputed with fresh noise: the cached bytes win.
    const again = l.charge(task('t1', 0.004, 'fed-1', 'noise draw #2'));
    expect(again.charged).toBe(false);
    expect(Buffer.compare(again.answer, first.answer)).toBe(0);
    expect(again.answer.toString()).toBe('noise draw #1');
    expect(l.totalRho()).toBe(0.004);
    expect(ledgerLines()).toHaveLength(1);
    closeAll();

    const r = openL();
    const third = r.charge(task('t1', 0.004, 'fed-1', 'noise draw #3'));
    expect(third.charged).toBe(false);
    expect(third.answer.toString()).toBe('noise draw #1');
    expect(r.totalRho()).toBe(0.004);
    expect(r.state().charges).toBe(1);
    // Same id with different parameters: a conflict, nothing sent, nothing charged.
    expect(() => r.charge(task('t1', 0.5))).toThrow(LedgerConflictError);
    expect(() => r.charge(task('t1', 0.004, 'fed-9'))).toThrow(/already charged with different parameters \(federation fed-1 → fed-9\)/);
    expect(r.totalRho()).toBe(0.004);
  });

  it('tolerates and reports a torn final line (crash mid-write), dropping that unsent charge', () => {
    const l = openL();
    l.charge(task('t1', 0.001));
    l.charge(task('t2', 0.002));
    closeAll();
    // Simulate a crash while writing t3: its answer file was written, its line only half.
    const full = fs.readFileSync(ledgerPath(), 'utf8');
    const line2 = full.split('\n')[1];
    fs.appendFileSync(ledgerPath(), line2.replace('"t2"', '"t3"').slice(0, 57));
    const orphan = path.join(dir, 'answers', 'f'.repeat(64) + '.bin');
    fs.writeFileSync(orphan, 'never sent');
    fs.writeFileSync(path.join(dir, 'answers', 'x.bin.tmp'), 'half');

    const r = openL();
    expect(r.recovery.tornTail).toMatchObject({ bytes: 57 });
    expect(r.recovery.tornTail!.preview).toContain('"v":1');
    expect(r.recovery.orphanAnswersRemoved.sort()).toEqual(['f'.repeat(64) + '.bin', 'x.bin.tmp']);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(r.totalRho()).toBeCloseTo(0.003, 15);
    expect(r.charged('t3')).toBe(false);
    // The file was cut back to the last complete line, so the next charge starts a clean line.
    expect(fs.readFileSync(ledgerPath(), 'utf8')).toBe(full);
    r.charge(task('t3', 0.004));
    closeAll();
    const again = openL();
    expect(again.recovery.tornTail).toBeNull();
    expect(again.totalRho()).toBeCloseTo(0.007, 15);
  });

  it('tolerates a torn tail of pure garbage (zeros from an unflushed block)', () => {
    const l = openL();
    l.charge(task('t1'));
    closeAll();
    fs.appendFileSync(ledgerPath(), Buffer.alloc(300));
    const r = openL();
    expect(r.recovery.tornTail?.bytes).toBe(300);
    expect(r.totalRho()).toBe(0.001);
  });

  it('refuses to start on corruption in the middle, naming the line', () => {
    const l = openL();
    for (const id of ['t1', 't2', 't3']) l.charge(task(id, 0.001));
    closeAll();
    const good = fs.readFileSync(ledgerPath(), 'utf8');
    const lines = good.split('\n');

    // 1. An altered charge amount in line 2 (valid JSON, wrong checksum).
    fs.writeFileSync(ledgerPath(), good.replace(lines[1], lines[1].replace('"rho":0.001', '"rho":0.0001')));
    expect(() => openLedger(dir, { audit })).toThrow(LedgerCorruptError);
    expect(() => openLedger(dir, { audit })).toThrow(/line 2 of 3 is corrupt: checksum mismatch .*refusing to start/);

    // 2. A line that is not JSON.
    fs.writeFileSync(ledgerPath(), [lines[0], '{"v":1,"seq":1,"ty', lines[2], ''].join('\n'));
    expect(() => openLedger(dir, { audit })).toThrow(/line 2 of 3 is not valid JSON; refusing to start/);

    // 3. A line removed from the middle.
    fs.writeFileSync(ledgerPath(), [lines[0], lines[2], ''].join('\n'));
    expect(() => openLedger(dir, { audit })).toThrow(/line 2 of 2 is corrupt: seq 2 where 1 was expected/);

    // 4. An empty line in the middle.
    fs.writeFileSync(ledgerPath(), [lines[0], '', lines[1], lines[2], ''].join('\n'));
    expect(() => openLedger(dir, { audit })).toThrow(/line 2 of 4 is not valid JSON/);

    // A failed open leaves no lock behind: the intact ledger opens again.
    fs.writeFileSync(ledgerPath(), good);
    expect(openL().totalRho()).toBeCloseTo(0.003, 15);
  });

  it('refuses a charge over the cap with a precise message, writing nothing but an audit refusal', () => {
    const policy = parsePolicy({ epsilon: 1, delta: 1e-9 });
    const l = openL({ audit, guard: budgetGuard(policy) });
    l.charge(task('t1', 0.002));
    const before = fs.readFileSync(ledgerPath(), 'utf8');
    let err: unknown;
    try {
      l.charge(task('t2', 0.014));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerRefusedError);
    expect((err as LedgerRefusedError).reason).toBe(
      "task would spend rho 0.014 but only 0.0129731 of the site's total 1-epsilon cap (rho 0.0149731 at delta 1e-9) remains; spent so far rho 0.002 (epsilon 0.351088)",
    );
    expect(fs.readFileSync(ledgerPath(), 'utf8')).toBe(before);
    expect(l.charged('t2')).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'answers'))).toHaveLength(1);
    const last = l.auditLog!.tail()!;
    expect(last.event).toMatchObject({ type: 'task-refused', taskId: 't2', site: 'site-a' });
    // What still fits is accepted.
    expect(l.charge(task('t3', 0.0129)).charged).toBe(true);
  });

  it('appends signed charge, answer and refusal entries to the audit log, which verifies', () => {
    const l = openL();
    l.charge(task('t1', 0.001));
    l.refuse({ taskId: 't2', roundId: 'r2', federationId: 'fed-1', reason: "quorum 1 is below this site's minimum 2" });
    l.charge(task('t3', 0.002));
    closeAll();
    const entries = parseChainLines(fs.readFileSync(path.join(dir, AUDIT_FILE), 'utf8'));
    expect(entries.map((e) => (e as { event: { type: string } }).event.type)).toEqual([
      'charge',
      'task-answered',
      'task-refused',
      'charge',
      'task-answered',
    ]);
    expect(verifyChain(entries, { 'site-a': pubPem })).toEqual([]);
  });

  it('catches the audit log up with charges a crash kept out of it', () => {
    const l = openL();
    l.charge(task('t1', 0.001));
    l.charge(task('t2', 0.002));
    closeAll();
    // Crash after the ledger line of t2 but before its audit entries: keep only t1's two entries.
    const auditPath = path.join(dir, AUDIT_FILE);
    const kept = fs.readFileSync(auditPath, 'utf8').split('\n').slice(0, 2).join('\n') + '\n';
    fs.writeFileSync(auditPath, kept + '{"seq":2,"prevHa'); // plus a torn audit line
    const r = openL();
    expect(r.recovery.auditEntriesRecovered).toBe(1);
    expect(r.recovery.auditTornTail?.bytes).toBe(16);
    const entries = r.auditLog!.entries();
    expect(entries[entries.length - 1].event).toMatchObject({ type: 'charge', taskId: 't2', rho: 0.002, recovered: true });
    expect(verifyChain([...entries], { 'site-a': pubPem })).toEqual([]);
  });

  it('refuses to open a tampered audit log', () => {
    const l = openL();
    l.charge(task('t1', 0.001));
    l.charge(task('t2', 0.002));
    closeAll();
    const auditPath = path.join(dir, AUDIT_FILE);
    const text = fs.readFileSync(auditPath, 'utf8');
    fs.writeFileSync(auditPath, text.replace('"rho":0.001', '"rho":0.009'));
    expect(() => openLedger(dir, { audit })).toThrow(AuditLogCorruptError);
    expect(() => openAuditLog(auditPath, audit)).toThrow(/line 1: entry 0 \(seq 0\): stored hash .* does not match its content/);
  });

  it('refuses to re-answer a charged task whose cached answer is damaged', () => {
    const l = openL();
    const { record } = l.charge(task('t1'));
    closeAll();
    fs.writeFileSync(path.join(dir, record.answer.file), 'answer of tX');
    const r = openL();
    expect(() => r.cachedAnswer('t1')).toThrow(/does not match its recorded SHA-256/);
    expect(() => r.charge(task('t1'))).toThrow(LedgerCorruptError);
    fs.rmSync(path.join(dir, record.answer.file));
    closeAll();
    const r2 = openL();
    expect(r2.recovery.damagedAnswers).toEqual(['t1']);
    expect(() => r2.cachedAnswer('t1')).toThrow(/is missing/);
    expect(r2.totalRho()).toBe(0.001);
  });

  it('allows one holder at a time and takes over a stale lock', () => {
    openL();
    expect(() => openLedger(dir, { audit })).toThrow(LedgerLockedError);
    closeAll();
    // A lock left by a dead process (or by this pid in a previous life) is stale.
    fs.writeFileSync(path.join(dir, 'LOCK'), `${process.pid}\n`);
    expect(() => openL()).not.toThrow();
  });

  it('keeps a charge made by a process killed right after charging, before it could send', () => {
    // A real crash: the child charges, then SIGKILLs itself where it would send the answer.
    const ledgerModule = fileURLToPath(new URL('../../site-agent/ledger.ts', import.meta.url));
    const script = path.join(dir, '..', `crash-${path.basename(dir)}.ts`);
    fs.writeFileSync(
      script,
      `import { openLedger } from ${JSON.stringify(ledgerModule)};
       const l = openLedger(${JSON.stringify(dir)}, { audit: { party: 'site-a', privateKeyPem: ${JSON.stringify(privPem)} } });
       l.charge({ taskId: 'crash-1', roundId: 'r', federationId: 'fed-1', rho: 0.003, mechanism: 'distributed-discrete-gaussian', answer: new Uint8Array([1, 2, 3, 250]) });
       process.kill(process.pid, 'SIGKILL');`,
    );
    try {
      const res = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 15_000 });
      expect(res.signal).toBe('SIGKILL');
    } finally {
      fs.rmSync(script, { force: true });
    }
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(true); // left behind by the dead process
    const r = openL();
    expect(r.totalRho()).toBe(0.003);
    expect([...r.cachedAnswer('crash-1')!]).toEqual([1, 2, 3, 250]);
    const retry = r.charge({
      taskId: 'crash-1',
      roundId: 'r',
      federationId: 'fed-1',
      rho: 0.003,
      mechanism: 'distributed-discrete-gaussian',
      answer: new Uint8Array([9]),
    });
    expect(retry.charged).toBe(false);
    expect([...retry.answer]).toEqual([1, 2, 3, 250]);
    expect(r.totalRho()).toBe(0.003);
  }, 20_000);

  it('validates charge input', () => {
    const l = openL();
    expect(() => l.charge({ ...task('t1'), rho: Number.NaN })).toThrow(/rho must be a finite number/);
    expect(() => l.charge({ ...task('t1'), taskId: '' })).toThrow(/taskId must be a non-empty string/);
    expect(l.totalRho()).toBe(0);
  });

  it('works without an audit identity', () => {
    const l = openL({});
    l.charge(task('t1'));
    l.refuse({ taskId: 't2', roundId: 'r', federationId: 'f', reason: 'x' });
    expect(l.auditLog).toBeNull();
    expect(fs.existsSync(path.join(dir, AUDIT_FILE))).toBe(false);
  });
});
