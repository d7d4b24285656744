// The revocation list is monotonic: `provision revoke` numbers every list it signs (cRLNumber,
// RFC 5280 §5.2.3), and a holder refuses a lower number, another list under the number it holds,
// an expired list, and an unnumbered list once it holds a numbered one. A site agent keeps the
// highest list in its state folder, so a restart does not forget it.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { provisionFederation } from '../../pki/index.ts';
import { loadCa, REVOCATION_FILE, revokeCertificates } from '../../pki/rotate.ts';
import { SIGNING_ALGORITHM } from '../../pki/x509.ts';
import {
  decodeCrlNumber,
  encodeCrlNumber,
  parseRevocationList,
  revocationListProblem,
  RevocationWatcher,
  type RevocationList,
} from '../../proto/revocation.ts';
import { HELD_REVOCATION_FILE, openSiteRevocation } from '../../site-agent/revocation.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-crl-rollback-'));
const kits = join(root, 'kits');
afterAll(() => rmSync(root, { recursive: true, force: true }));

let caPem: string;
const cert = (site: string) => readFileSync(join(kits, 'sites', site, 'cert.pem'), 'utf8');
/** The PEM of each list `provision revoke` wrote, by cRLNumber. */
const listPem: Record<number, string> = {};

async function revoke(site: string): Promise<number> {
  const r = await revokeCertificates({ outDir: kits, certPems: [cert(site)] });
  const n = Number(r.crlNumber);
  listPem[n] = readFileSync(join(kits, REVOCATION_FILE), 'utf8');
  return n;
}

const parse = (pem: string, where = 'list') => parseRevocationList(pem, caPem, where);

/** A CA-signed list with the given number (none: unnumbered, as before lists were numbered). */
async function signedList(opts: { crlNumber?: bigint; nextUpdate: Date; serials: string[] }): Promise<string> {
  const { authority } = await loadCa(kits);
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: authority.certificate.subject,
      thisUpdate: new Date(),
      nextUpdate: opts.nextUpdate,
      entries: opts.serials.map((s) => ({ serialNumber: s.toLowerCase(), revocationDate: new Date() })),
      ...(opts.crlNumber !== undefined ? { extensions: [new x509.Extension('2.5.29.20', false, encodeCrlNumber(opts.crlNumber))] } : {}),
      signingAlgorithm: SIGNING_ALGORITHM,
      signingKey: authority.privateKey,
    },
    webcrypto,
  );
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n';
}

beforeAll(async () => {
  await provisionFederation({ outDir: kits, federationId: 'f', sites: ['a', 'b', 'c'], validityDays: 5 });
  caPem = readFileSync(join(kits, 'ca/ca.pem'), 'utf8');
  expect(await revoke('a')).toBe(1);
  expect(await revoke('b')).toBe(2);
});

describe('cRLNumber', () => {
  it('encodes and decodes as a DER INTEGER, refusing negative and oversized values', () => {
    for (const n of [0n, 1n, 127n, 128n, 255n, 256n, 2n ** 64n, 2n ** 159n - 1n]) expect(decodeCrlNumber(encodeCrlNumber(n))).toBe(n);
    expect(Buffer.from(encodeCrlNumber(128n)).toString('hex')).toBe('02020080');
    expect(() => encodeCrlNumber(-1n)).toThrow(/non-negative/);
    expect(() => encodeCrlNumber(2n ** 168n)).toThrow(/20 octets/);
    expect(() => decodeCrlNumber(Uint8Array.from([0x02, 0x01, 0xff]).buffer)).toThrow(/negative/);
    expect(() => decodeCrlNumber(Uint8Array.from([0x04, 0x01, 0x01]).buffer)).toThrow(/DER INTEGER/);
  });

  it('provision revoke numbers every list one higher, also when it adds nothing, and the reader sees it', async () => {
    const one = await parse(listPem[1]);
    const two = await parse(listPem[2]);
    expect([one.crlNumber, one.size, two.crlNumber, two.size]).toEqual([1n, 1, 2n, 2]);
    const again = await revokeCertificates({ outDir: kits, certPems: [cert('b')] });
    expect(again.added).toEqual([]);
    expect(again.crlNumber).toBe(3n);
    const three = await parse(readFileSync(join(kits, REVOCATION_FILE), 'utf8'));
    expect([three.crlNumber, three.size]).toEqual([3n, 2]);
    listPem[3] = readFileSync(join(kits, REVOCATION_FILE), 'utf8');
  });
});

describe('revocationListProblem', () => {
  let one: RevocationList;
  let two: RevocationList;
  const now = new Date();
  beforeAll(async () => {
    one = await parse(listPem[1], 'list one');
    two = await parse(listPem[2], 'list two');
  });

  it('takes a first list, a higher number, and the same list again', async () => {
    expect(revocationListProblem(one, undefined, now)).toBeUndefined();
    expect(revocationListProblem(two, one, now)).toBeUndefined();
    expect(revocationListProblem(await parse(listPem[2], 'a re-read'), two, now)).toBeUndefined();
  });

  it('refuses a lower number, naming both numbers', () => {
    expect(revocationListProblem(one, two, now)).toMatch(
      /list one is cRLNumber 1, lower than cRLNumber 2 this holder accepted: refusing a rollback/,
    );
  });

  it('refuses another list under the number it holds', async () => {
    const forked = await parse(await signedList({ crlNumber: 2n, nextUpdate: new Date(Date.now() + 86_400_000), serials: [] }), 'forked');
    expect(forked.crlNumber).toBe(2n);
    expect(revocationListProblem(forked, two, now)).toMatch(/forked is another list under cRLNumber 2, which this holder already accepted/);
  });

  it('takes an unnumbered list only while it holds no numbered one', async () => {
    const legacy = await parse(await signedList({ nextUpdate: new Date(Date.now() + 86_400_000), serials: [] }), 'legacy');
    expect(legacy.crlNumber).toBeUndefined();
    expect(revocationListProblem(legacy, undefined, now)).toBeUndefined();
    expect(revocationListProblem(one, legacy, now)).toBeUndefined();
    expect(revocationListProblem(legacy, one, now)).toMatch(
      /legacy has no cRLNumber, while this holder accepted cRLNumber 1: refusing a rollback/,
    );
  });

  it('refuses a list whose nextUpdate has passed, even a first one', async () => {
    const expired = await parse(await signedList({ crlNumber: 9n, nextUpdate: new Date(Date.now() - 60_000), serials: [] }), 'stale');
    expect(revocationListProblem(expired, undefined, now)).toMatch(/stale \(cRLNumber 9\) expired on .* \(its nextUpdate\)/);
    expect(revocationListProblem(expired, one, now)).toMatch(/expired/);
    // provision revoke's lists run until the CA's notAfter.
    expect(two.signed.nextUpdate?.getTime()).toBe(new x509.X509Certificate(caPem).notAfter.getTime());
  });
});

describe('a watcher holds the highest list', () => {
  it('refuses an older list copied over the file and keeps the newer one in force; an unchanged re-read is quiet', async () => {
    const file = join(root, 'watched.crl.pem');
    writeFileSync(file, listPem[2]);
    const logs: string[] = [];
    const w = await RevocationWatcher.open(file, caPem, { intervalMs: 0, log: (l) => logs.push(l) });
    expect(w.current().crlNumber).toBe(2n);
    writeFileSync(file, listPem[1]);
    const held = await w.refresh();
    expect(held.crlNumber).toBe(2n);
    expect(held.lookupPem(cert('b'))).toBeDefined();
    expect(w.lastRefusal).toMatch(/cRLNumber 1, lower than cRLNumber 2/);
    expect(logs.at(-1)).toMatch(/revocation list refused: .*keeping the previous one \(cRLNumber 2, 2 revoked/);
    writeFileSync(file, listPem[2]);
    const before = logs.length;
    expect((await w.refresh()).crlNumber).toBe(2n);
    expect(logs.length).toBe(before);
    writeFileSync(file, listPem[3]);
    expect((await w.refresh()).crlNumber).toBe(3n);
    expect(w.lastRefusal).toBeUndefined();
    w.close();
  });

  it('refuses an expired first list at start', async () => {
    const file = join(root, 'expired.crl.pem');
    writeFileSync(file, await signedList({ crlNumber: 1n, nextUpdate: new Date(Date.now() - 60_000), serials: [] }));
    await expect(RevocationWatcher.open(file, caPem, { intervalMs: 0 })).rejects.toThrow(/expired on .* \(its nextUpdate\)/);
  });
});

describe('a site keeps its highest list in the state folder', () => {
  it('refuses list 1 after list 2, at once and after a restart, with list 2 still in force', async () => {
    const state = join(root, 'state-a');
    const file = join(root, 'site-list.crl.pem');
    writeFileSync(file, listPem[2]);
    const logs: string[] = [];
    const open = () => openSiteRevocation({ file, stateDir: state, caPem, intervalMs: 0, log: (l) => logs.push(l) });
    const w = await open();
    expect(readFileSync(join(state, HELD_REVOCATION_FILE), 'utf8')).toBe(listPem[2]);
    writeFileSync(file, listPem[1]);
    expect((await w.refresh()).lookupPem(cert('b'))).toBeDefined();
    w.close();
    // The restart: the file still holds list 1; the state folder's list 2 stays in force.
    const again = await open();
    expect(again.current().crlNumber).toBe(2n);
    expect(again.current().lookupPem(cert('b'))).toBeDefined();
    expect(again.lastRefusal).toMatch(/cRLNumber 1, lower than cRLNumber 2 this holder accepted/);
    expect(readFileSync(join(state, HELD_REVOCATION_FILE), 'utf8')).toBe(listPem[2]);
    again.close();
  });

  it('does not start on a state copy that does not verify', async () => {
    const state = join(root, 'state-bad');
    const file = join(root, 'site-list-bad.crl.pem');
    writeFileSync(file, listPem[2]);
    (await openSiteRevocation({ file, stateDir: state, caPem, intervalMs: 0, log: () => undefined })).close();
    expect(existsSync(join(state, HELD_REVOCATION_FILE))).toBe(true);
    writeFileSync(join(state, HELD_REVOCATION_FILE), 'garbage');
    await expect(openSiteRevocation({ file, stateDir: state, caPem, intervalMs: 0, log: () => undefined })).rejects.toThrow(
      /accepted revocation list .* is not a PEM .*put it back from a backup of the state folder/,
    );
  });
});
