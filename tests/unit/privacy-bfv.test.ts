import SEAL from 'node-seal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BFV_SLOTS, Bfv, BfvError } from '../../privacy/crypto/bfv.ts';
import { FIELD_PRIME, FIELD_PRIME_BIG, addVectors } from '../../privacy/crypto/field.ts';
import { randomFieldVector } from '../../privacy/crypto/shamir.ts';

/** Fast exact equality for big typed arrays (vitest's deep equality is slow on 1M entries). */
function same(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

let bfv: Bfv;
beforeAll(async () => {
  bfv = await Bfv.create();
});
afterAll(() => bfv.dispose());

describe('BFV wrapper', () => {
  it('the field prime is what SEAL picks for a 32-bit batching modulus at N = 8192', async () => {
    const seal = await SEAL();
    const m = seal.PlainModulus.Batching(8192, 32);
    expect(m.value()).toBe(FIELD_PRIME_BIG);
    m.delete();
  });

  it('encrypts, adds and decrypts exactly (vectors spanning several ciphertexts, with wrap-around mod p)', () => {
    const { publicKey, secretKey } = bfv.generateKeyPair();
    const L = 2 * BFV_SLOTS + 17;
    const a = randomFieldVector(L);
    const b = randomFieldVector(L);
    b[0] = FIELD_PRIME - 1;
    a[0] = FIELD_PRIME - 1;
    const ca = bfv.encrypt(publicKey, a);
    const cb = bfv.encrypt(publicKey, b);
    expect(ca.length).toBe(3);
    const sum = bfv.add(ca, cb);
    expect(same(bfv.decrypt(secretKey, sum, L), addVectors(a, b))).toBe(true);
    expect(same(bfv.decrypt(secretKey, ca, L), a)).toBe(true);
  });

  it('sums 50 ciphertexts exactly (noise budget headroom)', () => {
    const { publicKey, secretKey } = bfv.generateKeyPair();
    const L = 100;
    let expected: Uint32Array = new Uint32Array(L);
    let acc: Uint8Array[] | null = null;
    for (let s = 0; s < 50; s++) {
      const v = randomFieldVector(L);
      expected = addVectors(expected, v);
      const c = bfv.encrypt(publicKey, v);
      acc = acc === null ? c : bfv.add(acc, c);
    }
    expect(same(bfv.decrypt(secretKey, acc!, L), expected)).toBe(true);
  });

  it('a wrong secret key does not decrypt (clear error, no plaintext)', () => {
    const alice = bfv.generateKeyPair();
    const mallory = bfv.generateKeyPair();
    const v = randomFieldVector(500);
    const c = bfv.encrypt(alice.publicKey, v);
    expect(() => bfv.decrypt(mallory.secretKey, c, 500)).toThrow(BfvError);
    expect(() => bfv.decrypt(mallory.secretKey, c, 500)).toThrow(/wrong secret key/);
  });

  it('garbage bytes give a clear BfvError, not a crash', () => {
    const { publicKey, secretKey } = bfv.generateKeyPair();
    const good = bfv.encrypt(publicKey, randomFieldVector(10));
    const garbage = [new Uint8Array(0), new Uint8Array(64).fill(0xab), good[0].slice(0, 1000)];
    for (const g of garbage) {
      expect(() => bfv.add([g], good)).toThrow(/not a valid BFV ciphertext/);
      expect(() => bfv.decrypt(secretKey, [g], 10)).toThrow(BfvError);
    }
    const flipped = good[0].slice();
    flipped[20] ^= 0xff;
    expect(() => bfv.decrypt(secretKey, [flipped], 10)).toThrow(BfvError);
    expect(() => bfv.encrypt(new Uint8Array(100), randomFieldVector(3))).toThrow(/invalid BFV public key/);
    expect(() => bfv.decrypt(new Uint8Array(100), good, 10)).toThrow(/invalid BFV secret key/);
    expect(() => bfv.decrypt(secretKey, good, 9000)).toThrow(/does not match/);
    expect(() => bfv.add(good, [])).toThrow(/lengths/);
    expect(() => bfv.encrypt(publicKey, Uint32Array.from([FIELD_PRIME]))).toThrow(/not a field element/);
    // still usable afterwards
    expect(bfv.decrypt(secretKey, good, 10).length).toBe(10);
  });

  it('does not leak WASM memory across many calls', () => {
    const { publicKey, secretKey } = bfv.generateKeyPair();
    const v = randomFieldVector(BFV_SLOTS);
    const round = (): void => {
      const c = bfv.encrypt(publicKey, v);
      const s = bfv.add(c, c);
      bfv.decrypt(secretKey, s, v.length);
    };
    for (let i = 0; i < 5; i++) round(); // warm up the WASM heap and pools
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 60; i++) round();
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(grownMiB).toBeLessThan(60);
  });
});
