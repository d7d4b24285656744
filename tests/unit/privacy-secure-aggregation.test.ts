import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bfv, BfvError } from '../../privacy/crypto/bfv.ts';
import { FIELD_PRIME, decodeSigned, encodeSigned } from '../../privacy/crypto/field.ts';
import { reconstructVector } from '../../privacy/crypto/shamir.ts';
import { rational } from '../../privacy/dp/rational.ts';
import { sampleDiscreteGaussianVector } from '../../privacy/dp/discrete-gaussian.ts';
import {
  accumulate,
  combine,
  committeeKeyMessage,
  partialDecrypt,
  prepareContribution,
  signCommitteeKey,
  validateCommittee,
  verifyCommitteeKey,
  type Committee,
  type Contribution,
} from '../../privacy/crypto/secure-aggregation.ts';

function chi2Crit(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

let bfv: Bfv;
let committee: Committee;
let secretKeys: Map<string, Uint8Array>;
const K = 3;
const T = 2;

beforeAll(async () => {
  bfv = await Bfv.create();
  secretKeys = new Map();
  committee = Array.from({ length: K }, (_, j) => {
    const kp = bfv.generateKeyPair();
    const memberId = `site-${String.fromCharCode(97 + j)}`;
    secretKeys.set(memberId, kp.secretKey);
    return { memberId, point: j + 1, publicKey: kp.publicKey };
  });
});
afterAll(() => bfv.dispose());

describe('threshold secure aggregation', () => {
  it.each([3, 5])('%i sites, k = 3, t = 2, one member missing: exact noised sum', (sites) => {
    const L = 9000; // two ciphertext blocks
    const vectors: BigInt64Array[] = [];
    for (let s = 0; s < sites; s++) {
      const counts = BigInt64Array.from({ length: L }, (_, i) => BigInt((i * (s + 3)) % 50));
      const noise = sampleDiscreteGaussianVector(rational(100n), L);
      vectors.push(counts.map((c, i) => c + noise[i]));
    }
    let acc: Contribution | null = null;
    for (const v of vectors) acc = accumulate(bfv, acc, prepareContribution(bfv, v, committee, T));
    const expected = new BigInt64Array(L);
    for (const v of vectors) for (let i = 0; i < L; i++) expected[i] += v[i];

    // Member site-b vanished; a and c answer.
    const present = acc!.shares.filter((s) => s.memberId !== 'site-b');
    const partials = present.map((s) => ({
      point: s.point,
      share: partialDecrypt(bfv, secretKeys.get(s.memberId)!, s.ciphertexts, acc!.length),
    }));
    const total = combine(partials, T);
    expect(Buffer.from(total.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    // Any other pair gives the same total.
    const ab = acc!.shares
      .filter((s) => s.memberId !== 'site-c')
      .map((s) => ({ point: s.point, share: partialDecrypt(bfv, secretKeys.get(s.memberId)!, s.ciphertexts, L) }));
    expect(Buffer.from(combine(ab, T).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    // One partial is not enough.
    expect(() => combine(partials.slice(0, 1), T)).toThrow(/at least 2/);
  });

  it("the coordinator cannot recover one site's vector from what it holds", () => {
    const L = 8192;
    const secret = BigInt64Array.from({ length: L }, (_, i) => BigInt((i % 2) * 1_000_000_000));
    const contribution = prepareContribution(bfv, secret, committee, T);

    // (1) Ciphertexts only: every share is under a member's key; keys the coordinator can
    // make itself do not decrypt them.
    const coordinatorKeys = bfv.generateKeyPair();
    for (const s of contribution.shares) {
      expect(() => bfv.decrypt(coordinatorKeys.secretKey, s.ciphertexts, L)).toThrow(BfvError);
    }
    // Ciphertext bytes do not contain the plaintext's encoding.
    const plainBytes = Buffer.from(encodeSigned(secret).buffer);
    const needle = plainBytes.subarray(4, 36); // 8 consecutive encoded entries
    for (const s of contribution.shares) for (const c of s.ciphertexts) expect(Buffer.from(c).includes(needle)).toBe(false);

    // (2) Plus fewer than t partial decryptions of this individual contribution: one member
    // (t − 1 = 1) decrypts its share of this single site. The share is uniform and
    // uncorrelated with the secret, and interpolation is impossible.
    const one = contribution.shares[0];
    const leaked = partialDecrypt(bfv, secretKeys.get(one.memberId)!, one.ciphertexts, L);
    expect(() => combine([{ point: one.point, share: leaked }], T)).toThrow();
    const bins = 32;
    const counts = new Array(bins).fill(0);
    let sx = 0,
      sy = 0,
      sxy = 0,
      sxx = 0,
      syy = 0;
    for (let i = 0; i < L; i++) {
      counts[Math.floor((leaked[i] / FIELD_PRIME) * bins)]++;
      const x = Number(secret[i]);
      const y = leaked[i];
      sx += x;
      sy += y;
      sxy += x * y;
      sxx += x * x;
      syy += y * y;
    }
    const e = L / bins;
    expect(counts.reduce((a, c) => a + (c - e) ** 2 / e, 0)).toBeLessThan(chi2Crit(bins - 1));
    const corr = (sxy / L - (sx / L) * (sy / L)) / Math.sqrt((sxx / L - (sx / L) ** 2) * (syy / L - (sy / L) ** 2));
    expect(Math.abs(corr)).toBeLessThan(5 / Math.sqrt(L));
    // Treating the lone share as if it were the secret (degree-0 guess) is wrong almost everywhere.
    const guess = decodeSigned(reconstructVector([{ point: one.point, values: leaked }], 1));
    let hits = 0;
    for (let i = 0; i < L; i++) if (guess[i] === secret[i]) hits++;
    expect(hits).toBeLessThan(5);
  });

  it('refuses malformed committees and mismatched contributions', () => {
    expect(() => validateCommittee(committee, 4)).toThrow(/threshold/);
    expect(() => validateCommittee(committee, 0)).toThrow(/threshold/);
    expect(() => validateCommittee([committee[0], { ...committee[1], point: 3 }], 2)).toThrow(/points/);
    expect(() => validateCommittee([committee[0], { ...committee[1], memberId: committee[0].memberId }], 2)).toThrow(/unique/);
    const a = prepareContribution(bfv, BigInt64Array.from([1n, 2n]), committee, T);
    const b = prepareContribution(bfv, BigInt64Array.from([1n, 2n, 3n]), committee, T);
    expect(() => accumulate(bfv, a, b)).toThrow(/length/);
    expect(() => prepareContribution(bfv, BigInt64Array.from([10n ** 12n]), committee, T)).toThrow(/outside/);
  });
});

describe('committee key signatures (ECDSA P-256)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const fields = {
    federationId: 'fed-1',
    schemaHash: 'sha256:abcd',
    memberId: 'site-a',
    point: 1,
    publicKey: new Uint8Array([1, 2, 3, 4, 5]),
  };

  it('verifies a genuine signature and rejects any tampered field', () => {
    const sig = signCommitteeKey(privPem, fields);
    expect(verifyCommitteeKey(pubPem, fields, sig)).toBe(true);
    for (const tampered of [
      { ...fields, federationId: 'fed-2' },
      { ...fields, schemaHash: 'sha256:abce' },
      { ...fields, memberId: 'site-b' },
      { ...fields, point: 2 },
      { ...fields, publicKey: new Uint8Array([1, 2, 3, 4, 6]) },
    ]) {
      expect(verifyCommitteeKey(pubPem, tampered, sig)).toBe(false);
    }
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(verifyCommitteeKey(other.publicKey.export({ type: 'spki', format: 'pem' }).toString(), fields, sig)).toBe(false);
    expect(verifyCommitteeKey(pubPem, fields, new Uint8Array(70))).toBe(false);
  });

  it('the signed message is canonical and unambiguous', () => {
    expect(committeeKeyMessage(fields)).toEqual(committeeKeyMessage({ ...fields }));
    // Shifting characters between adjacent fields changes the message (length prefixes).
    expect(committeeKeyMessage({ ...fields, federationId: 'fed-1s', schemaHash: 'ha256:abcd' })).not.toEqual(committeeKeyMessage(fields));
  });

  it('verifies against an X.509 certificate (PEM) holding the member key', async () => {
    await import('reflect-metadata'); // @peculiar/x509's DI container needs it
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as import('node:crypto').webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=site-a',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: alg,
      keys,
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const pem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n`;
    const sig = signCommitteeKey(pem, fields);
    expect(verifyCommitteeKey(cert.toString('pem'), fields, sig)).toBe(true);
    expect(verifyCommitteeKey(cert.toString('pem'), { ...fields, point: 3 }, sig)).toBe(false);
  });

  it('refuses non-P-256 keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => signCommitteeKey(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), fields)).toThrow(/P-256/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    expect(() => signCommitteeKey(p384.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), fields)).toThrow(/P-256/);
  });
});
