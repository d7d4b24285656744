// A site ledger that lost its last line (a truncated file, an older backup) must not open with a
// lower total: it is cross-checked with the site's signed audit log first, refuses with a message
// that says what to do, and changes nothing — the cached answers stay, so a retried task still
// gets the bytes already charged and sent.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { ANSWERS_DIR, AUDIT_FILE, LEDGER_FILE, openLedger, type ChargeInput, type Ledger } from '../../site-agent/ledger.ts';
import { LedgerAuditMismatchError, openCheckedLedger } from '../../site-agent/ledger-check.ts';
import { ROOT } from '../support/sources.ts';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const audit = { party: 'site-a', privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };

let dir: string;
const open: Ledger[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedsynth-ledger-check-'));
});
afterEach(() => {
  while (open.length) open.pop()!.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function task(id: string, rho: number): ChargeInput {
  return {
    taskId: id,
    roundId: `round-${id}`,
    federationId: 'fed-1',
    rho,
    mechanism: 'distributed-discrete-gaussian',
    answer: new Uint8Array(Buffer.from(`answer of ${id}`)),
  };
}

/** Three charged tasks, ledger closed; returns the ledger's total. */
function chargeThree(): number {
  const l = openLedger(dir, { audit });
  l.charge(task('t1', 0.004));
  l.charge(task('t2', 0.005));
  l.charge(task('t3', 0.006));
  const total = l.totalRho();
  l.close();
  return total;
}

const ledgerFile = () => path.join(dir, LEDGER_FILE);
const answers = () => fs.readdirSync(path.join(dir, ANSWERS_DIR)).sort();
function dropLastLedgerLine(): string {
  const text = fs.readFileSync(ledgerFile(), 'utf8');
  const lines = text.trimEnd().split('\n');
  fs.writeFileSync(ledgerFile(), `${lines.slice(0, -1).join('\n')}\n`);
  return text;
}

describe('ledger cross-checked with the audit log on open', () => {
  it('opens an intact ledger with the same total', () => {
    const total = chargeThree();
    const l = openCheckedLedger(dir, { audit });
    open.push(l);
    expect(l.totalRho()).toBe(total);
  });

  it('refuses a ledger that lost its last line, says what to do, and keeps every cached answer', () => {
    const total = chargeThree();
    const before = answers();
    expect(before).toHaveLength(3);
    const original = dropLastLedgerLine();
    const truncated = fs.readFileSync(ledgerFile());
    let err: unknown;
    try {
      open.push(openCheckedLedger(dir, { audit }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerAuditMismatchError);
    const msg = (err as Error).message;
    expect(msg).toMatch(
      /1 charge\(s\) recorded in the signed audit log are missing from the ledger \(ρ 0\.006 in total\): task t3 of round round-t3/,
    );
    expect(msg).toMatch(/Restore ledger\.jsonl \(with answers\/\) from a backup/);
    expect(msg).not.toMatch(/delete|remove the state/i);
    // Nothing changed: the cached answer of t3 is still there and the ledger bytes are untouched.
    expect(answers()).toEqual(before);
    expect(fs.readFileSync(ledgerFile()).equals(truncated)).toBe(true);
    // The refusal did not hold the lock: once restored, the ledger opens with its full total and the retry gets the cached bytes.
    fs.writeFileSync(ledgerFile(), original);
    const l = openCheckedLedger(dir, { audit });
    open.push(l);
    expect(l.totalRho()).toBe(total);
    expect(Buffer.from(l.cachedAnswer('t3')!).toString()).toBe('answer of t3');
  });

  it('refuses a ledger whose ρ for a task differs from the audit log', () => {
    chargeThree();
    fs.writeFileSync(ledgerFile(), fs.readFileSync(ledgerFile(), 'utf8').replace('"rho":0.005', '"rho":0.0005'));
    expect(() => openCheckedLedger(dir, { audit })).toThrow(/task t2: audit ρ 0\.005, ledger ρ 0\.0005/);
  });

  it('tolerates a torn ledger tail (a crash before the charge reached the audit log)', () => {
    chargeThree();
    fs.appendFileSync(ledgerFile(), '{"v":1,"seq":3,"type":"char');
    const l = openCheckedLedger(dir, { audit });
    open.push(l);
    expect(l.recovery.tornTail).not.toBeNull();
  });

  it('refuses with a clear error when a complete audit-log line is not JSON', () => {
    chargeThree();
    fs.appendFileSync(path.join(dir, AUDIT_FILE), 'not json\n');
    expect(() => openCheckedLedger(dir, { audit })).toThrow(
      /audit log .*audit\.jsonl line 7 is not valid JSON.*nothing in the state folder was changed/,
    );
    expect(answers()).toHaveLength(3);
  });

  it('the site agent opens its ledger through the check', () => {
    const src = fs.readFileSync(path.join(ROOT, 'site-agent/agent.ts'), 'utf8');
    expect(src).toMatch(/this\.ledger = (?:ledger = )?openCheckedLedger\(cfg\.stateDir, \{\s*audit:/);
    expect(src).not.toMatch(/\bopenLedger\(/);
  });
});
