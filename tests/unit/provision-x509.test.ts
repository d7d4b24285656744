import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { X509Certificate } from 'node:crypto';
import {
  KitError,
  OID_CLIENT_AUTH,
  OID_SERVER_AUTH,
  ProvisionError,
  addSite,
  loadKit,
  provisionFederation,
  validateSiteId,
} from '../../pki/index.ts';

const tmpRoot = mkdtempSync(join(tmpdir(), 'fedsynth-provision-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(tmpRoot, `fed${n++}`);

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

function snapshot(root: string): Map<string, Buffer> {
  return new Map(listFiles(root).map((f) => [f, readFileSync(join(root, f))]));
}

describe('provisionFederation', () => {
  let out: string;
  beforeAll(async () => {
    out = freshDir();
    await provisionFederation({ outDir: out, federationId: 'fed-unit', sites: ['alice', 'bob-2'], validityDays: 30 });
  });

  it('writes exactly the startup kits and the roster, the CA key only in ca/', () => {
    expect(listFiles(out)).toEqual([
      'ca/ca.key',
      'ca/ca.pem',
      'coordinator/ca.pem',
      'coordinator/cert.pem',
      'coordinator/key.pem',
      'roster.json',
      'sites/alice/ca.pem',
      'sites/alice/cert.pem',
      'sites/alice/key.pem',
      'sites/alice/roster.json',
      'sites/bob-2/ca.pem',
      'sites/bob-2/cert.pem',
      'sites/bob-2/key.pem',
      'sites/bob-2/roster.json',
    ]);
    const caKey = readFileSync(join(out, 'ca/ca.key'));
    for (const f of listFiles(out)) {
      if (f !== 'ca/ca.key') expect(readFileSync(join(out, f)).equals(caKey)).toBe(false);
    }
    // every kit carries the same CA certificate
    const caPem = readFileSync(join(out, 'ca/ca.pem'));
    for (const k of ['coordinator', 'sites/alice', 'sites/bob-2']) expect(readFileSync(join(out, k, 'ca.pem')).equals(caPem)).toBe(true);
  });

  it('writes private keys with mode 0600', () => {
    for (const f of ['ca/ca.key', 'coordinator/key.pem', 'sites/alice/key.pem', 'sites/bob-2/key.pem']) {
      expect(statSync(join(out, f)).mode & 0o777).toBe(0o600);
    }
    expect(readFileSync(join(out, 'sites/alice/key.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('issues an ECDSA P-256 CA and leaf certificates with the right extensions', () => {
    const ca = new X509Certificate(readFileSync(join(out, 'ca/ca.pem')));
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.subject).toContain('O=fed-unit');
    expect(ca.checkIssued(ca)).toBe(true);

    const coord = new X509Certificate(readFileSync(join(out, 'coordinator/cert.pem')));
    expect(coord.ca).toBe(false);
    expect(coord.keyUsage).toEqual([OID_SERVER_AUTH]);
    expect(coord.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(coord.verify(ca.publicKey)).toBe(true);
    expect(coord.checkHost('localhost')).toBe('localhost');
    expect(coord.checkIP('127.0.0.1')).toBe('127.0.0.1');

    const site = new X509Certificate(readFileSync(join(out, 'sites/bob-2/cert.pem')));
    expect(site.ca).toBe(false);
    expect(site.subject).toBe('CN=bob-2\nO=fed-unit');
    expect(site.keyUsage).toEqual([OID_CLIENT_AUTH]);
    expect(site.subjectAltName).toBe('URI:urn:fedsynth:site:bob-2');
    expect(site.verify(ca.publicKey)).toBe(true);
    expect(site.checkIssued(ca)).toBe(true);
    const days = (new Date(site.validTo).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
    // distinct serials
    expect(new Set([ca.serialNumber, coord.serialNumber, site.serialNumber]).size).toBe(3);
  });

  it('loadKit reads and checks site and coordinator kits', () => {
    const alice = loadKit(join(out, 'sites/alice'));
    expect(alice.role).toBe('site');
    expect(alice.siteId).toBe('alice');
    expect(alice.federationId).toBe('fed-unit');
    expect(alice.ca.equals(readFileSync(join(out, 'ca/ca.pem')))).toBe(true);
    const coord = loadKit(join(out, 'coordinator'));
    expect(coord.role).toBe('coordinator');
    expect(coord.siteId).toBeUndefined();
    expect(coord.caFingerprint256).toBe(alice.caFingerprint256);
  });

  it('refuses to overwrite an existing federation, with a pointer to add-site', async () => {
    const before = snapshot(out);
    await expect(provisionFederation({ outDir: out, federationId: 'fed-unit', sites: ['carol'], validityDays: 30 })).rejects.toThrow(
      /refusing to overwrite the existing federation CA at .*add-site/,
    );
    expect(snapshot(out)).toEqual(before);
  });

  it('refuses to overwrite an existing site kit even without a CA there', async () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'sites/alice'), { recursive: true });
    writeFileSync(join(dir, 'sites/alice/notes.txt'), 'keep me');
    await expect(provisionFederation({ outDir: dir, federationId: 'f', sites: ['alice'], validityDays: 1 })).rejects.toThrow(
      /refusing to overwrite the existing kit of site alice/,
    );
    expect(existsSync(join(dir, 'ca'))).toBe(false);
  });

  it('honours custom coordinator hosts (DNS and IPv6)', async () => {
    const dir = freshDir();
    await provisionFederation({
      outDir: dir,
      federationId: 'f',
      sites: [],
      coordinatorHosts: ['coord.example.org', '::1'],
      validityDays: 1,
    });
    const coord = new X509Certificate(readFileSync(join(dir, 'coordinator/cert.pem')));
    expect(coord.subjectAltName).toBe('DNS:coord.example.org, IP Address:0:0:0:0:0:0:0:1');
  });
});

describe('input validation', () => {
  it('validates site ids', () => {
    for (const ok of ['a', 'site-1', '0abc', 'x'.repeat(63)]) expect(validateSiteId(ok)).toBe(ok);
    for (const bad of ['', 'Alice', '-a', 'a_b', 'a.b', 'a/b', '../x', 'x'.repeat(64), 'é']) {
      expect(() => validateSiteId(bad)).toThrow(ProvisionError);
    }
  });

  it.each([
    [{ sites: ['Bad_Id'] }, /invalid site id "Bad_Id"/],
    [{ sites: ['../evil'] }, /invalid site id "..\/evil"/],
    [{ sites: ['a', 'a'] }, /site id "a" is listed twice/],
    [{ federationId: 'has space' }, /invalid federation id "has space"/],
    [{ federationId: '' }, /invalid federation id/],
    [{ validityDays: 0 }, /invalid validityDays 0/],
    [{ validityDays: 1.5 }, /invalid validityDays 1.5/],
    [{ coordinatorHosts: [] }, /coordinatorHosts must list at least one host/],
    [{ coordinatorHosts: ['bad host'] }, /invalid coordinator host "bad host"/],
    [{ validityDays: 400, caValidityDays: 100 }, /caValidityDays \(100\) must be at least validityDays \(400\)/],
  ])('rejects %o', async (patch, message) => {
    const dir = freshDir();
    const opts = { outDir: dir, federationId: 'f', sites: ['alice'], validityDays: 10, ...patch };
    await expect(provisionFederation(opts)).rejects.toThrow(message);
    expect(existsSync(dir)).toBe(false); // nothing written
  });
});

describe('addSite', () => {
  it('issues one more kit from the existing CA and changes nothing else', async () => {
    const out = freshDir();
    await provisionFederation({ outDir: out, federationId: 'fed-add', sites: ['alice', 'bob'], validityDays: 30 });
    const before = snapshot(out);
    const r = await addSite({ outDir: out, siteId: 'carol', validityDays: 10 });
    expect(r.federationId).toBe('fed-add');
    const after = snapshot(out);
    // Only the roster changes (its next version lists carol), in DIR and in every listed kit.
    const roster = ['roster.json', 'sites/alice/roster.json', 'sites/bob/roster.json'];
    for (const [f, bytes] of before) if (!roster.includes(f)) expect(after.get(f)?.equals(bytes), f).toBe(true);
    for (const f of roster) expect(after.get(f)?.equals(before.get(f)!), f).toBe(false);
    expect([...after.keys()].filter((f) => !before.has(f)).sort()).toEqual([
      'sites/carol/ca.pem',
      'sites/carol/cert.pem',
      'sites/carol/key.pem',
      'sites/carol/roster.json',
    ]);
    expect(statSync(join(out, 'sites/carol/key.pem')).mode & 0o777).toBe(0o600);

    const carol = loadKit(join(out, 'sites/carol'));
    expect(carol.siteId).toBe('carol');
    expect(carol.federationId).toBe('fed-add');
    expect(carol.ca.equals(before.get('ca/ca.pem')!)).toBe(true);
    const ca = new X509Certificate(before.get('ca/ca.pem')!);
    expect(new X509Certificate(carol.cert).verify(ca.publicKey)).toBe(true);

    await expect(addSite({ outDir: out, siteId: 'carol' })).rejects.toThrow(/refusing to overwrite the existing kit of site carol/);
    await expect(addSite({ outDir: out, siteId: 'alice' })).rejects.toThrow(/refusing to overwrite the existing kit of site alice/);
    await expect(addSite({ outDir: out, siteId: 'Not OK' })).rejects.toThrow(/invalid site id "Not OK"/);
    expect(snapshot(out).size).toBe(after.size);
  });

  it('explains when there is no federation CA', async () => {
    const dir = freshDir();
    await expect(addSite({ outDir: dir, siteId: 'carol' })).rejects.toThrow(
      /is not a provisioned federation: missing .*ca\.pem, .*ca\.key/,
    );
  });

  it('rejects a corrupt or mismatched CA key', async () => {
    const a = freshDir();
    const b = freshDir();
    await provisionFederation({ outDir: a, federationId: 'fa', sites: [], validityDays: 5 });
    await provisionFederation({ outDir: b, federationId: 'fb', sites: [], validityDays: 5 });
    writeFileSync(join(a, 'ca/ca.key'), readFileSync(join(b, 'ca/ca.key')));
    await expect(addSite({ outDir: a, siteId: 'x' })).rejects.toThrow(/ca\.key does not match the public key of ca\.pem/);
    writeFileSync(join(a, 'ca/ca.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    await expect(addSite({ outDir: a, siteId: 'x' })).rejects.toThrow(/ca\.key is not a valid PEM PKCS#8 ECDSA P-256 private key/);
    writeFileSync(join(a, 'ca/ca.pem'), 'garbage');
    await expect(addSite({ outDir: a, siteId: 'x' })).rejects.toThrow(/ca\.pem is not a valid PEM certificate/);
    expect(existsSync(join(a, 'sites/x'))).toBe(false);
  });
});

describe('loadKit errors', () => {
  let out: string;
  beforeAll(async () => {
    out = freshDir();
    await provisionFederation({ outDir: out, federationId: 'fed-kit', sites: ['alice', 'bob'], validityDays: 5 });
  });
  const copyKit = (site: string) => {
    const dir = freshDir();
    mkdirSync(dir);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), readFileSync(join(out, 'sites', site, f)));
    return dir;
  };

  it('missing directory or files', () => {
    expect(() => loadKit(join(out, 'sites/nobody'))).toThrow(/startup kit directory .*nobody does not exist/);
    const dir = copyKit('alice');
    unlinkSync(join(dir, 'key.pem'));
    unlinkSync(join(dir, 'ca.pem'));
    expect(() => loadKit(dir)).toThrow(KitError);
    expect(() => loadKit(dir)).toThrow(/is incomplete: missing ca\.pem, key\.pem/);
  });

  it('corrupt PEMs', () => {
    const dir = copyKit('alice');
    writeFileSync(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n');
    expect(() => loadKit(dir)).toThrow(/cert\.pem holds a corrupt PEM certificate/);
    writeFileSync(join(dir, 'cert.pem'), 'hello');
    expect(() => loadKit(dir)).toThrow(/cert\.pem is not a PEM certificate/);
    const dir2 = copyKit('alice');
    writeFileSync(join(dir2, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    expect(() => loadKit(dir2)).toThrow(/key\.pem holds a corrupt PEM private key/);
  });

  it('a key from another kit, or a CA from another federation', async () => {
    const dir = copyKit('alice');
    writeFileSync(join(dir, 'key.pem'), readFileSync(join(out, 'sites/bob/key.pem')));
    expect(() => loadKit(dir)).toThrow(/key\.pem does not match the certificate/);
    const other = freshDir();
    await provisionFederation({ outDir: other, federationId: 'other', sites: [], validityDays: 5 });
    const dir2 = copyKit('alice');
    writeFileSync(join(dir2, 'ca.pem'), readFileSync(join(other, 'ca/ca.pem')));
    expect(() => loadKit(dir2)).toThrow(/was not issued by the CA/);
  });
});
