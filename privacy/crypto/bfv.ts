/**
 * Thin wrapper over node-seal BFV with batching, for adding vectors of GF(p) elements under
 * encryption. Everything crossing this module's boundary is bytes or typed arrays; SEAL's WASM
 * objects are created and freed (delete()) inside each call so repeated rounds do not leak
 * WASM heap.
 *
 * Parameters: N = 8192 (8192 slots per ciphertext), plain modulus t = FIELD_PRIME (32-bit,
 * batching-friendly), coefficient modulus two 60-bit primes. Why not two 43-bit primes: SEAL
 * keeps the last prime as the key-switching "special" prime, so data lives mod one prime q;
 * with q ≈ 2^43 and t ≈ 2^32 a fresh ciphertext has ~0 bits of noise budget (measured: 0 at
 * t ≥ 2^35, 3 bits at t = 2^32, none left after 100 additions). With 60-bit primes a fresh
 * ciphertext has ~20 bits and still ~10 after 1000 additions, i.e. ample room for summing a
 * federation's sites; the total coefficient modulus (120 bits) is well under SEAL's 218-bit
 * bound for 128-bit security at N = 8192. Ciphertext size is the same as with 43-bit primes
 * (one data prime: 2·8192·8 bytes ≈ 128 KiB per 8192 values).
 */
import SEAL from 'node-seal';
import type { BatchEncoder, ComprModeType, Evaluator, MainModule, SEALContext } from 'node-seal';
import { FIELD_PRIME, FIELD_PRIME_BIG, type FieldVector } from './field.ts';

export const BFV_POLY_MODULUS_DEGREE = 8192;
export const BFV_COEFF_MODULUS_BITS: readonly number[] = [60, 60];
/** Values per ciphertext. */
export const BFV_SLOTS = BFV_POLY_MODULUS_DEGREE;

/** A failure the caller can report: bad bytes, wrong key, exhausted noise budget. */
/** A plain Uint8Array view of the same bytes (Buffers and other subclasses are rejected by embind). */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class BfvError extends Error {
  override name = 'BfvError';
}

let sealPromise: Promise<MainModule> | undefined;
function loadSeal(): Promise<MainModule> {
  sealPromise ??= SEAL();
  return sealPromise;
}

/** SEAL throws WebAssembly.Exception objects whose `message` is [type, what]; make them readable. */
function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  const m = (e as { message?: unknown } | null)?.message;
  if (Array.isArray(m)) return m.join(': ');
  if (typeof m === 'string') return m;
  return 'SEAL rejected the input';
}

export interface BfvKeyPair {
  /** Serialised SEAL PublicKey (safe to publish). */
  readonly publicKey: Uint8Array;
  /** Serialised SEAL SecretKey (never leaves the committee member). */
  readonly secretKey: Uint8Array;
}

export interface BfvOptions {
  /** Serialisation compression for ciphertexts; 60-bit residues do not compress, so default none. */
  readonly compression?: 'none' | 'zstd';
}

export class Bfv {
  private disposed = false;
  private constructor(
    private readonly seal: MainModule,
    private readonly context: SEALContext,
    private readonly encoder: BatchEncoder,
    private readonly evaluator: Evaluator,
    private readonly compr: ComprModeType,
  ) {}

  /** Loads the WASM module once per process and builds the fixed parameter set. */
  static async create(options: BfvOptions = {}): Promise<Bfv> {
    const seal = await loadSeal();
    const parms = new seal.EncryptionParameters(seal.SchemeType.bfv);
    const coeff = seal.CoeffModulus.Create(BFV_POLY_MODULUS_DEGREE, Int32Array.from(BFV_COEFF_MODULUS_BITS));
    const plain = new seal.Modulus(FIELD_PRIME_BIG);
    try {
      parms.setPolyModulusDegree(BFV_POLY_MODULUS_DEGREE);
      parms.setCoeffModulus(coeff);
      parms.setPlainModulus(plain);
      const context = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
      if (!context.parametersSet()) throw new BfvError('SEAL rejected the BFV parameters');
      const firstData = context.firstContextData();
      const q = firstData.qualifiers();
      const batching = q.usingBatching;
      q.delete();
      firstData.delete();
      if (!batching) throw new BfvError('plain modulus does not support batching');
      const encoder = new seal.BatchEncoder(context);
      const evaluator = new seal.Evaluator(context);
      const compr = options.compression === 'zstd' ? seal.ComprModeType.zstd : seal.ComprModeType.none;
      return new Bfv(seal, context, encoder, evaluator, compr);
    } finally {
      parms.delete();
      coeff.delete();
      plain.delete();
    }
  }

  get plainModulus(): bigint {
    return FIELD_PRIME_BIG;
  }

  /** Number of ciphertexts needed for `length` values. */
  static ciphertextCount(length: number): number {
    return Math.ceil(length / BFV_SLOTS);
  }

  private check(): void {
    if (this.disposed) throw new BfvError('Bfv instance used after dispose()');
  }

  /** A fresh key pair, serialised. */
  generateKeyPair(): BfvKeyPair {
    this.check();
    const kg = new this.seal.KeyGenerator(this.context);
    const pk = kg.createPublicKey();
    const sk = kg.secretKey();
    try {
      return {
        publicKey: new Uint8Array(pk.saveToArray(this.compr) as Uint8Array),
        secretKey: new Uint8Array(sk.saveToArray(this.compr) as Uint8Array),
      };
    } finally {
      pk.delete();
      sk.delete();
      kg.delete();
    }
  }

  /** Encrypts field elements under a serialised public key: ⌈length/8192⌉ serialised ciphertexts. */
  encrypt(publicKey: Uint8Array, values: FieldVector): Uint8Array[] {
    this.check();
    for (let i = 0; i < values.length; i++) {
      if (values[i] >= FIELD_PRIME) throw new BfvError(`value at index ${i} is not a field element`);
    }
    const pk = new this.seal.PublicKey();
    const pt = new this.seal.Plaintext();
    const ct = new this.seal.Ciphertext();
    let encryptor: InstanceType<MainModule['Encryptor']> | undefined;
    try {
      try {
        pk.loadFromArray(this.context, plainBytes(publicKey));
      } catch (e) {
        throw new BfvError(`invalid BFV public key: ${describe(e)}`);
      }
      encryptor = new this.seal.Encryptor(this.context, pk);
      const out: Uint8Array[] = [];
      const slots = new BigUint64Array(BFV_SLOTS);
      for (let off = 0; off < values.length; off += BFV_SLOTS) {
        const end = Math.min(values.length, off + BFV_SLOTS);
        slots.fill(0n);
        for (let i = off; i < end; i++) slots[i - off] = BigInt(values[i]);
        this.encoder.encode(slots, pt);
        encryptor.encrypt(pt, ct);
        out.push(new Uint8Array(ct.saveToArray(this.compr) as Uint8Array));
      }
      return out;
    } finally {
      encryptor?.delete();
      ct.delete();
      pt.delete();
      pk.delete();
    }
  }

  private loadCiphertext(bytes: Uint8Array, index: number, into: InstanceType<MainModule['Ciphertext']>): void {
    try {
      // embind accepts only a plain Uint8Array, not a Buffer (a subclass) from a protobuf decode.
      into.loadFromArray(this.context, plainBytes(bytes));
    } catch (e) {
      throw new BfvError(`ciphertext ${index} is not a valid BFV ciphertext for these parameters: ${describe(e)}`);
    }
    if (into.size() !== 2 || into.polyModulusDegree() !== BFV_POLY_MODULUS_DEGREE) {
      throw new BfvError(`ciphertext ${index} has unexpected shape (size ${into.size()})`);
    }
  }

  /** Slot-wise homomorphic sum of two equally long ciphertext lists. */
  add(a: readonly Uint8Array[], b: readonly Uint8Array[]): Uint8Array[] {
    this.check();
    if (a.length !== b.length) throw new BfvError(`cannot add ciphertext lists of lengths ${a.length} and ${b.length}`);
    const x = new this.seal.Ciphertext();
    const y = new this.seal.Ciphertext();
    try {
      return a.map((ai, i) => {
        this.loadCiphertext(ai, i, x);
        this.loadCiphertext(b[i], i, y);
        try {
          this.evaluator.addInplace(x, y);
        } catch (e) {
          throw new BfvError(`ciphertexts ${i} cannot be added: ${describe(e)}`);
        }
        return new Uint8Array(x.saveToArray(this.compr) as Uint8Array);
      });
    } finally {
      x.delete();
      y.delete();
    }
  }

  /**
   * Decrypts a ciphertext list into `length` field elements. Refuses (BfvError) when the
   * noise budget is exhausted, which is what a wrong secret key or too many additions look
   * like: the plaintext would be garbage, so none is returned.
   */
  decrypt(secretKey: Uint8Array, ciphertexts: readonly Uint8Array[], length: number): FieldVector {
    this.check();
    if (!Number.isInteger(length) || length < 0 || Bfv.ciphertextCount(length) !== ciphertexts.length) {
      throw new BfvError(`length ${length} does not match ${ciphertexts.length} ciphertexts`);
    }
    const sk = new this.seal.SecretKey();
    const ct = new this.seal.Ciphertext();
    const pt = new this.seal.Plaintext();
    let decryptor: InstanceType<MainModule['Decryptor']> | undefined;
    try {
      try {
        sk.loadFromArray(this.context, plainBytes(secretKey));
      } catch (e) {
        throw new BfvError(`invalid BFV secret key: ${describe(e)}`);
      }
      decryptor = new this.seal.Decryptor(this.context, sk);
      const out = new Uint32Array(length);
      ciphertexts.forEach((bytes, c) => {
        this.loadCiphertext(bytes, c, ct);
        const budget = decryptor!.invariantNoiseBudget(ct);
        if (budget <= 0) {
          throw new BfvError(`ciphertext ${c} cannot be decrypted: noise budget exhausted (wrong secret key, or too many additions)`);
        }
        decryptor!.decrypt(ct, pt);
        const slots = this.encoder.decodeBigUint64(pt) as BigUint64Array;
        const off = c * BFV_SLOTS;
        const end = Math.min(length, off + BFV_SLOTS);
        for (let i = off; i < end; i++) out[i] = Number(slots[i - off]);
      });
      return out;
    } finally {
      decryptor?.delete();
      pt.delete();
      ct.delete();
      sk.delete();
    }
  }

  /** Frees the long-lived WASM objects of this instance. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.evaluator.delete();
    this.encoder.delete();
    this.context.delete();
  }
}
