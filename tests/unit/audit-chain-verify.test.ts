import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  GENESIS_HASH,
  appendEntry,
  canonicalJson,
  entryHash,
  parseChainLines,
  verifyChain,
  type AuditEntry,
  type AuditEvent,
} from '../../privacy/audit-log/chain.ts';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    pub: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

const site = keyPair();
const coord = keyPair();
const mallory = keyPair();
const keys = { 'site-a': site.pub, coordinator: coord.pub };

const t0 = Date.parse('2025-03-01T10:00:00Z');

function events(): Array<[AuditEvent, string]> {
  return [
    [
      {
        type: 'task-issued',
        federationId: 'fed',
        roundId: 'r1',
        taskId: 't1',
        site: 'site-a',
        kind: 'measure',
        specSha256: 'a'.repeat(64),
      },
      'coordinator',
    ],
    [
      {
        type: 'charge',
        federationId: 'fed',
        roundId: 'r1',
        taskId: 't1',
        site: 'site-a',
        rho: 0.002,
        mechanism: 'distributed-discrete-gaussian',
      },
      'site-a',
    ],
    [{ type: 'task-answered', federationId: 'fed', roundId: 'r1', taskId: 't1', site: 'site-a', answerSha256: 'b'.repeat(64) }, 'site-a'],
    [
      {
        type: 'measurement-released',
        federationId: 'fed',
        roundId: 'r1',
        mechanism: 'distributed-discrete-gaussian',
        marginals: [['age', 'sex']],
        l2Sensitivity: 1,
        l1Sensitivity: 1,
        dimension: 20,
        sigmaSite2: { num: '1000', den: '3' },
        parties: ['site-a', 'site-b', 'site-c'],
        quorum: 2,
        rho: 0.002,
      },
      'coordinator',
    ],
    [
      {
        type: 'task-refused',
        federationId: 'fed',
        roundId: 'r2',
        taskId: 't2',
        site: 'site-a',
        reason: "quorum 1 is below this site's minimum 2",
      },
      'site-a',
    ],
    [{ type: 'model-fitted', federationId: 'fed', modelId: 'm1', rounds: ['r1'], rhoBySite: { 'site-a': 0.002 } }, 'coordinator'],
    [{ type: 'cohort-emitted', federationId: 'fed', modelId: 'm1', cohortId: 'c1', size: 1000 }, 'coordinator'],
  ];
}

function buildChain(): AuditEntry[] {
  const out: AuditEntry[] = [];
  let tail: AuditEntry | null = null;
  events().forEach(([ev, party], i) => {
    const key = party === 'coordinator' ? coord.priv : site.priv;
    tail = appendEntry(tail, ev, party, key, new Date(t0 + i * 1000));
    out.push(tail);
  });
  return out;
}

/** Serialise as a JSON-lines file, as the logs are stored. */
const toText = (chain: unknown[]) => chain.map((e) => JSON.stringify(e)).join('\n') + '\n';
const kinds = (f: { kind: string }[]) => [...new Set(f.map((x) => x.kind))].sort();

describe('audit chain', () => {
  it('builds a chain that verifies, linked from the genesis hash', () => {
    const chain = buildChain();
    expect(chain[0].prevHash).toBe(GENESIS_HASH);
    expect(chain[0].seq).toBe(0);
    for (let i = 1; i < chain.length; i++) {
      expect(chain[i].prevHash).toBe(chain[i - 1].hash);
      expect(chain[i].seq).toBe(i);
    }
    expect(verifyChain(chain, keys)).toEqual([]);
    // Round trip through the file format.
    expect(verifyChain(parseChainLines(toText(chain)), keys)).toEqual([]);
  });

  it('canonical JSON sorts keys recursively and rejects non-finite numbers', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/non-finite/);
    const e = buildChain()[1];
    const { hash, signature, ...rest } = e;
    expect(entryHash(rest)).toBe(hash);
    expect(signature.length).toBeGreaterThan(0);
  });

  it('detects every single flipped byte in the serialised log (sampled positions)', () => {
    const text = toText(buildChain());
    let checked = 0;
    // Every 7th byte plus a few targeted ones, each flipped on its own.
    const positions = new Set<number>();
    for (let p = 0; p < text.length; p += 7) positions.add(p);
    positions.add(text.indexOf('0.002') + 4); // a digit of rho in the first charge
    for (const p of positions) {
      if (text[p] === '\n') continue;
      const flipped = text.slice(0, p) + String.fromCharCode(text.charCodeAt(p) ^ 0x01) + text.slice(p + 1);
      const findings = verifyChain(parseChainLines(flipped), keys);
      if (findings.length === 0) throw new Error(`flip at byte ${p} (${JSON.stringify(text[p])}) went undetected`);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('reports a changed charge amount as bad hash', () => {
    const chain = buildChain();
    const tampered = structuredClone(chain);
    (tampered[1].event as { rho: number }).rho = 0.0002;
    const f = verifyChain(tampered, keys);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ index: 1, seq: 1, kind: 'bad-hash' });
  });

  it('reports a re-hashed but unsigned edit as a bad signature', () => {
    const chain = buildChain();
    const tampered = structuredClone(chain);
    (tampered[1].event as { rho: number }).rho = 0.0002;
    tampered[1].hash = entryHash(tampered[1]);
    tampered[2].prevHash = tampered[1].hash;
    tampered[2].hash = entryHash(tampered[2]);
    const f = verifyChain(tampered, keys);
    // Without site-a's key the rewritten entries cannot be re-signed, and entry 3 still links to the old hash.
    expect(f.filter((x) => x.kind === 'bad-signature').map((x) => x.index)).toEqual([1, 2]);
    expect(f.filter((x) => x.kind === 'broken-link').map((x) => x.index)).toEqual([3]);
    expect(kinds(f)).toEqual(['bad-signature', 'broken-link']);
  });

  it('detects a dropped entry (seq gap and broken link)', () => {
    const chain = buildChain();
    const dropped = [...chain.slice(0, 2), ...chain.slice(3)];
    const f = verifyChain(dropped, keys);
    expect(kinds(f)).toEqual(['broken-link', 'seq-gap']);
    const gap = f.find((x) => x.kind === 'seq-gap')!;
    expect(gap.index).toBe(2);
    expect(gap.message).toMatch(/seq jumps from 1 to 3; 1 entry is missing/);
  });

  it('detects a dropped first entry and a truncated-at-head chain', () => {
    const chain = buildChain();
    const f = verifyChain(chain.slice(1), keys);
    expect(kinds(f)).toEqual(['broken-link', 'seq-gap']);
    // The same suffix verifies when the verifier is told where it starts (a checkpoint).
    expect(verifyChain(chain.slice(1), keys, { firstPrevHash: chain[0].hash, firstSeq: 1 })).toEqual([]);
  });

  it('detects reordered entries', () => {
    const chain = buildChain();
    const swapped = [chain[0], chain[2], chain[1], ...chain.slice(3)];
    const f = verifyChain(swapped, keys);
    expect(f.some((x) => x.kind === 'reordered')).toBe(true);
    expect(f.some((x) => x.kind === 'broken-link')).toBe(true);
    expect(f.some((x) => x.kind === 'seq-gap')).toBe(false);
    // Hashes and signatures of the moved entries are themselves intact.
    expect(f.some((x) => x.kind === 'bad-hash' || x.kind === 'bad-signature')).toBe(false);
  });

  it('detects a forged charge signed by the wrong key', () => {
    const chain = buildChain();
    // Mallory appends a charge in site-a's name, correctly linked and hashed, with her own key.
    const forged = appendEntry(
      chain[chain.length - 1],
      { type: 'charge', federationId: 'fed', roundId: 'r9', taskId: 't9', site: 'site-a', rho: 0.5 },
      'site-a',
      mallory.priv,
      new Date(t0 + 60_000),
    );
    const f = verifyChain([...chain, forged], keys);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ index: chain.length, kind: 'bad-signature' });
    // A forged entry replacing a real one in the middle: bad signature there, and the next link breaks.
    const replaced = appendEntry(
      chain[0],
      { type: 'charge', federationId: 'fed', roundId: 'r1', taskId: 't1', site: 'site-a', rho: 0.9 },
      'site-a',
      mallory.priv,
      new Date(t0 + 1000),
    );
    const f2 = verifyChain([chain[0], replaced, ...chain.slice(2)], keys);
    expect(kinds(f2)).toEqual(['bad-signature', 'broken-link']);
  });

  it('reports unknown parties and unloadable keys as findings', () => {
    const chain = buildChain();
    const f = verifyChain(chain, { coordinator: coord.pub });
    expect(kinds(f)).toEqual(['unknown-party']);
    const g = verifyChain(chain, { coordinator: coord.pub, 'site-a': 'not a pem' });
    expect(kinds(g)).toEqual(['unknown-party']);
    expect(g[0].message).toMatch(/cannot be loaded/);
  });

  it('never throws on malformed entries: each is a finding', () => {
    const chain: unknown[] = buildChain();
    const junk: unknown[] = [
      null,
      42,
      'text',
      [],
      { seq: 'x' },
      { ...(chain[1] as object), event: { type: 'charge', rho: 'lots' } },
      { ...(chain[1] as object), event: { type: 'teleport' } },
      { ...(chain[1] as object), extra: 1 },
      { ...(chain[1] as object), timestamp: 'yesterday' },
      { __unparseable: '{"seq": 1, "pre' },
    ];
    for (const j of junk) {
      const withJunk = [chain[0], j, ...chain.slice(2)];
      let f: ReturnType<typeof verifyChain> = [];
      expect(() => (f = verifyChain(withJunk, keys))).not.toThrow();
      expect(f.some((x) => x.kind === 'malformed' && x.index === 1)).toBe(true);
    }
    expect(verifyChain(parseChainLines('{"seq":0,\n'), keys)[0].kind).toBe('malformed');
    expect(() => verifyChain([undefined, Symbol.iterator, () => 1], keys)).not.toThrow();
  });

  it('refuses to append malformed events or with a non-P-256 key', () => {
    const bad = { type: 'charge', federationId: 'fed', roundId: 'r', taskId: 't', site: 's', rho: -1 } as unknown as AuditEvent;
    expect(() => appendEntry(null, bad, 'site-a', site.priv, new Date())).toThrow(/rho must be a finite number ≥ 0/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const ok: AuditEvent = { type: 'charge', federationId: 'fed', roundId: 'r', taskId: 't', site: 's', rho: 0.1 };
    expect(() => appendEntry(null, ok, 'site-a', rsa, new Date())).toThrow(/P-256/);
  });

  it('verifies with the party certificate PEM instead of a bare public key', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
    // The global Web Crypto is the provider @peculiar/x509 uses by default.
    const kp = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=site-a',
      notBefore: new Date(t0 - 86_400_000),
      notAfter: new Date(t0 + 86_400_000),
      keys: kp,
      signingAlgorithm: alg,
    });
    const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', kp.privateKey)).toString('base64');
    const privPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
    const e0 = appendEntry(
      null,
      { type: 'charge', federationId: 'f', roundId: 'r', taskId: 't', site: 'site-a', rho: 0.01 },
      'site-a',
      privPem,
      new Date(t0),
    );
    expect(verifyChain([e0], { 'site-a': cert.toString('pem') })).toEqual([]);
    expect(kinds(verifyChain([e0], { 'site-a': site.pub }))).toEqual(['bad-signature']);
  });
});

describe('signature encoding', () => {
  it('rejects a non-canonical base64 signature that decodes to the same bytes', () => {
    // An entry whose signature has unused low bits in its last character (DER length ≢ 0 mod 3;
    // ECDSA signatures are fresh each time, so rebuild until one has).
    let chain = buildChain();
    for (let t = 0; t < 20 && !chain.some((e) => e.signature.endsWith('=')); t++) chain = buildChain();
    const i = chain.findIndex((e) => e.signature.endsWith('='));
    expect(i).toBeGreaterThanOrEqual(0);
    const sig = chain[i].signature;
    const at = sig.replace(/=+$/, '').length - 1;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const alt = alphabet[alphabet.indexOf(sig[at]) ^ 1];
    const tampered = structuredClone(chain);
    tampered[i].signature = sig.slice(0, at) + alt + sig.slice(at + 1);
    expect(Buffer.from(tampered[i].signature, 'base64')).toEqual(Buffer.from(sig, 'base64'));
    const f = verifyChain(tampered, keys);
    expect(f.length).toBeGreaterThan(0);
    expect(f[0].index).toBe(i);
  });
});
