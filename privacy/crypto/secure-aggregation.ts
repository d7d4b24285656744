/**
 * Threshold secure aggregation as pure steps; transport and storage belong to
 * the site agent and the coordinator.
 *
 *   site:        noised integer vector → Shamir shares (threshold t, points 1..k) → share j
 *                encrypted under committee member j's BFV public key      prepareContribution
 *   coordinator: per member, homomorphic sum of the sites' ciphertexts      accumulate
 *   member j:    decrypts its summed share (a Shamir share of the total)   partialDecrypt
 *   coordinator: Lagrange interpolation at 0 from ≥ t partials            combine
 *
 * The coordinator only ever holds ciphertexts and partial decryptions of *sums*; it learns one
 * site's vector only if ≥ t members decrypt that site's individual ciphertexts for it
 * (see docs/threat-model.md).
 */
import { Bfv } from './bfv.ts';
import { decodeSigned, encodeSigned, type FieldVector } from './field.ts';
import { reconstructVector, shareVector } from './shamir.ts';
import { sha256, signStatement, statementBytes, verifyStatement } from './signed-statement.ts';
import { cryptoRandomSource, type RandomSource } from '../random.ts';

export interface CommitteeMember {
  readonly memberId: string;
  /** Shamir evaluation point of this member, an integer in 1..k. */
  readonly point: number;
  /** Serialised BFV public key of this member. */
  readonly publicKey: Uint8Array;
}

export type Committee = readonly CommitteeMember[];

/** One member's encrypted share within a contribution or an accumulated sum. */
export interface EncryptedShare {
  readonly memberId: string;
  readonly point: number;
  readonly ciphertexts: readonly Uint8Array[];
}

/** What a site sends (and, summed, what the coordinator holds): one encrypted share per member. */
export interface Contribution {
  /** Number of vector entries (the ciphertexts carry ⌈length/8192⌉ blocks). */
  readonly length: number;
  readonly shares: readonly EncryptedShare[];
}

export interface PartialDecryption {
  readonly point: number;
  readonly share: FieldVector;
}

/** Checks k ≥ t ≥ 1, unique member ids, points exactly a permutation of 1..k. */
export function validateCommittee(committee: Committee, threshold: number): void {
  const k = committee.length;
  if (k < 1) throw new RangeError('committee is empty');
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > k) {
    throw new RangeError(`threshold ${threshold} must be an integer in [1, ${k}] for a committee of ${k}`);
  }
  const ids = new Set(committee.map((m) => m.memberId));
  if (ids.size !== k) throw new RangeError('committee member ids are not unique');
  const points = committee.map((m) => m.point).sort((a, b) => a - b);
  points.forEach((p, i) => {
    if (p !== i + 1) throw new RangeError(`committee points must be exactly 1..${k}, got ${committee.map((m) => m.point).join(',')}`);
  });
}

/**
 * A site's contribution: `values` (already noised, signed integers) Shamir-shared with
 * threshold t over GF(p), share j encrypted under member j's public key.
 */
export function prepareContribution(
  bfv: Bfv,
  values: BigInt64Array,
  committee: Committee,
  threshold: number,
  source: RandomSource = cryptoRandomSource,
): Contribution {
  validateCommittee(committee, threshold);
  const secret = encodeSigned(values);
  const shares = shareVector(
    secret,
    threshold,
    committee.map((m) => m.point),
    source,
  );
  return {
    length: values.length,
    shares: committee.map((m, j) => ({
      memberId: m.memberId,
      point: m.point,
      ciphertexts: bfv.encrypt(m.publicKey, shares[j].values),
    })),
  };
}

/**
 * Adds `contribution` into `acc` member by member (homomorphically). `acc` may be null for
 * the first contribution. Both must cover the same members and length.
 */
export function accumulate(bfv: Bfv, acc: Contribution | null, contribution: Contribution): Contribution {
  if (acc === null) return contribution;
  if (acc.length !== contribution.length) throw new RangeError(`contribution length ${contribution.length} != ${acc.length}`);
  if (acc.shares.length !== contribution.shares.length) throw new RangeError('contribution covers a different committee');
  return {
    length: acc.length,
    shares: acc.shares.map((s) => {
      const other = contribution.shares.find((o) => o.memberId === s.memberId);
      if (!other || other.point !== s.point) throw new RangeError(`contribution has no share for member ${s.memberId} at point ${s.point}`);
      return { memberId: s.memberId, point: s.point, ciphertexts: bfv.add(s.ciphertexts, other.ciphertexts) };
    }),
  };
}

/** Member side: decrypts its summed encrypted share into field elements (its Shamir share of the total). */
export function partialDecrypt(bfv: Bfv, secretKey: Uint8Array, summedCiphertexts: readonly Uint8Array[], length: number): FieldVector {
  return bfv.decrypt(secretKey, summedCiphertexts, length);
}

/**
 * Coordinator side: interpolates the noised total from ≥ t partial decryptions (any ≥ t of
 * the k members; up to k − t may be missing). Returns signed integers.
 */
export function combine(partials: readonly PartialDecryption[], threshold: number): BigInt64Array {
  if (partials.length < threshold) {
    throw new RangeError(`need partial decryptions from at least ${threshold} committee members, got ${partials.length}`);
  }
  const total = reconstructVector(
    partials.map((p) => ({ point: p.point, values: p.share })),
    threshold,
  );
  return decodeSigned(total);
}

// ---------------------------------------------------------------------------------------------
// Committee key certification: a member signs its BFV public key with its certificate's key so
// that the coordinator cannot substitute its own key (and then decrypt a member's shares).

export interface CommitteeKeyFields {
  readonly federationId: string;
  readonly schemaHash: string;
  readonly memberId: string;
  readonly point: number;
  readonly publicKey: Uint8Array;
}

const DOMAIN = 'fedsynth/committee-key/v1';

/** The signed statement's bytes: federation, schema, member and point, then sha256(publicKey). */
export function committeeKeyMessage(f: CommitteeKeyFields): Buffer {
  if (!Number.isInteger(f.point) || f.point < 1 || f.point > 0xffffffff) throw new RangeError(`bad point ${f.point}`);
  return statementBytes(DOMAIN, [
    { str: f.federationId },
    { str: f.schemaHash },
    { str: f.memberId },
    { u32: f.point },
    { digest: sha256(f.publicKey) },
  ]);
}

/** ECDSA-P256/SHA-256 signature (DER) over the canonical message, with the member's PEM private key. */
export function signCommitteeKey(privateKeyPem: string, fields: CommitteeKeyFields): Uint8Array {
  return signStatement(privateKeyPem, committeeKeyMessage(fields));
}

/**
 * Verifies a committee key signature against the member's X.509 certificate (PEM) or bare
 * public key (PEM). Returns false for a wrong signature or tampered fields; throws only for
 * unusable key material.
 */
export function verifyCommitteeKey(certificatePem: string, fields: CommitteeKeyFields, signature: Uint8Array): boolean {
  return verifyStatement(certificatePem, committeeKeyMessage(fields), signature);
}
