import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { AuditLogCorruptError, openAuditLog } from '../../site-agent/audit-log.ts';
import { parseChainLines, verifyChain, type AuditEvent } from '../../privacy/audit-log/chain.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedsynth-audit-'));
  file = path.join(dir, 'sub', 'audit.jsonl');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const refusal = (taskId: string): AuditEvent => ({
  type: 'task-refused',
  federationId: 'fed',
  roundId: 'r',
  taskId,
  site: 'site-a',
  reason: "quorum 1 is below this site's minimum 2",
});

describe('site audit log file', () => {
  it('appends durable signed entries that survive reopen and verify', () => {
    const log = openAuditLog(file, { party: 'site-a', privateKeyPem: priv });
    log.append(refusal('t1'));
    log.append(refusal('t2'));
    log.close();
    const again = openAuditLog(file, { party: 'site-a', privateKeyPem: priv });
    expect(again.entries()).toHaveLength(2);
    const e = again.append(refusal('t3'));
    expect(e.seq).toBe(2);
    expect(e.prevHash).toBe(again.entries()[1].hash);
    again.close();
    expect(verifyChain(parseChainLines(fs.readFileSync(file, 'utf8')), { 'site-a': pub })).toEqual([]);
    expect(() => again.append(refusal('t4'))).toThrow(/closed/);
  });

  it('never lets timestamps go backwards when the clock does', () => {
    let t = Date.parse('2025-05-01T00:00:10Z');
    const log = openAuditLog(file, { party: 'site-a', privateKeyPem: priv, now: () => new Date(t) });
    log.append(refusal('t1'));
    t -= 5000;
    const e = log.append(refusal('t2'));
    expect(e.timestamp).toBe('2025-05-01T00:00:10.000Z');
    log.close();
    expect(verifyChain([...log.entries()], { 'site-a': pub })).toEqual([]);
  });

  it('drops and reports a torn final line, then continues the chain', () => {
    const log = openAuditLog(file, { party: 'site-a', privateKeyPem: priv });
    log.append(refusal('t1'));
    log.close();
    fs.appendFileSync(file, '{"seq":1,"prevHash":"00');
    const again = openAuditLog(file, { party: 'site-a', privateKeyPem: priv });
    expect(again.tornTail).toEqual({ bytes: 23, preview: '{"seq":1,"prevHash":"00' });
    again.append(refusal('t2'));
    again.close();
    expect(verifyChain(parseChainLines(fs.readFileSync(file, 'utf8')), { 'site-a': pub })).toEqual([]);
  });

  it('refuses to open a log with a dropped, reordered or foreign-signed entry', () => {
    const log = openAuditLog(file, { party: 'site-a', privateKeyPem: priv });
    for (const t of ['t1', 't2', 't3']) log.append(refusal(t));
    log.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, `${lines[0]}\n${lines[2]}\n`);
    expect(() => openAuditLog(file, { party: 'site-a', privateKeyPem: priv })).toThrow(/seq jumps from 0 to 2/);
    fs.writeFileSync(file, `${lines[1]}\n${lines[0]}\n${lines[2]}\n`);
    expect(() => openAuditLog(file, { party: 'site-a', privateKeyPem: priv })).toThrow(AuditLogCorruptError);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    // Opening with a different key (someone else's log, or a forged one) is refused.
    expect(() => openAuditLog(file, { party: 'site-a', privateKeyPem: other })).toThrow(/signature does not verify/);
    fs.writeFileSync(file, `${lines[0]}\nnot json\n${lines[2]}\n`);
    expect(() => openAuditLog(file, { party: 'site-a', privateKeyPem: priv })).toThrow(/line 2 is not valid JSON/);
  });
});
