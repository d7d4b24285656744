/**
 * Verifiable sums: a committee member decrypts only a sum it formed itself from signed
 * contributions, never a ciphertext the coordinator hands it.
 *
 * Each site signs, per committee member, (fit, measure round, site, member, point, length, quorum,
 * sha256 of that member's ciphertexts). A member given a decryption task checks every signature,
 * that the signers are distinct, that all signed the same round, length and quorum, and that at
 * least that quorum contributed; then it adds the ciphertexts itself. So the coordinator cannot
 * have one site's vector (or any set smaller than the quorum the sites were noised for) decrypted,
 * nor substitute a ciphertext of its own. What it could still do is ask for two different sets of
 * the same round; the member's one-set-per-round record (site-agent) and a committee threshold
 * above half the committee (the site policy) close that: two sets would each need t honest members.
 */
import type { Bfv } from './bfv.ts';
import { sha256, signStatement, statementBytes, verifyStatement } from './signed-statement.ts';

const DOMAIN = 'fedsynth/contribution-share/v1';

export interface ContributionShareFields {
  /** The fit the round belongs to (`<federation>` or `<federation>/<study>`). */
  readonly fitId: string;
  readonly roundId: string;
  readonly siteId: string;
  readonly memberId: string;
  readonly point: number;
  /** Cells of the measured vector. */
  readonly length: number;
  /** The fewest contributors the site's noise was sized for: a member never decrypts fewer. */
  readonly quorum: number;
  readonly ciphertexts: readonly Uint8Array[];
}

/** sha256 over the ciphertexts, each length-prefixed, so a split or a reorder changes it. */
export function ciphertextsDigest(ciphertexts: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of ciphertexts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(c.length);
    parts.push(len, Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  return sha256(Buffer.concat(parts));
}

export function contributionShareMessage(f: ContributionShareFields): Buffer {
  return statementBytes(DOMAIN, [
    { str: f.fitId },
    { str: f.roundId },
    { str: f.siteId },
    { str: f.memberId },
    { u32: f.point },
    { u32: f.length },
    { u32: f.quorum },
    { digest: ciphertextsDigest(f.ciphertexts) },
  ]);
}

export function signContributionShare(privateKeyPem: string, f: ContributionShareFields): Uint8Array {
  return signStatement(privateKeyPem, contributionShareMessage(f));
}

export function verifyContributionShare(certificatePem: string, f: ContributionShareFields, signature: Uint8Array): boolean {
  return verifyStatement(certificatePem, contributionShareMessage(f), signature);
}

/** One site's signed share as a member receives it. */
export interface SignedShare {
  readonly siteId: string;
  readonly certificatePem: string;
  readonly quorum: number;
  readonly ciphertexts: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

export interface SumExpectation {
  readonly fitId: string;
  readonly roundId: string;
  readonly memberId: string;
  readonly point: number;
  readonly length: number;
  /** The number of contributors the decryption task announces. */
  readonly contributors: number;
}

export class UnverifiableSumError extends Error {}

/**
 * Checks the signed shares against what the member expects and returns their homomorphic sum.
 * Certificate eligibility (federation CA, site profile, the signer's own id) is the caller's
 * check (`certificateOk`): it needs the federation's trust anchors, which live outside privacy/.
 */
export function verifiedSum(
  bfv: Bfv,
  shares: readonly SignedShare[],
  expect: SumExpectation,
  certificateOk: (siteId: string, certificatePem: string) => string | null,
): Uint8Array[] {
  if (shares.length === 0) throw new UnverifiableSumError('no contributions to sum');
  if (shares.length !== expect.contributors) {
    throw new UnverifiableSumError(`${shares.length} signed contributions, the task announces ${expect.contributors}`);
  }
  const seen = new Set<string>();
  const quorum = shares[0].quorum;
  for (const s of shares) {
    if (seen.has(s.siteId)) throw new UnverifiableSumError(`site ${s.siteId} contributes twice`);
    seen.add(s.siteId);
    if (s.quorum !== quorum) {
      throw new UnverifiableSumError(`contributions disagree on the quorum (${quorum} and ${s.quorum} from ${s.siteId})`);
    }
    const certProblem = certificateOk(s.siteId, s.certificatePem);
    if (certProblem) throw new UnverifiableSumError(`contribution of ${s.siteId} ${certProblem}`);
    const fields = { ...expect, siteId: s.siteId, quorum: s.quorum, ciphertexts: s.ciphertexts };
    let ok: boolean;
    try {
      ok = verifyContributionShare(s.certificatePem, fields, s.signature);
    } catch (e) {
      throw new UnverifiableSumError(`contribution of ${s.siteId} has an unusable certificate key: ${(e as Error).message}`);
    }
    if (!ok)
      throw new UnverifiableSumError(
        `contribution of ${s.siteId} is not signed by it for round ${expect.roundId}, member ${expect.memberId}`,
      );
  }
  if (shares.length < quorum) {
    throw new UnverifiableSumError(
      `only ${shares.length} contribution(s), the sites' noise is sized for a quorum of ${quorum}: decrypting fewer would reveal more than was charged`,
    );
  }
  let acc: Uint8Array[] = shares[0].ciphertexts.slice();
  for (let i = 1; i < shares.length; i++) {
    if (shares[i].ciphertexts.length !== acc.length) {
      throw new UnverifiableSumError(
        `contribution of ${shares[i].siteId} has ${shares[i].ciphertexts.length} ciphertexts, not ${acc.length}`,
      );
    }
    acc = bfv.add(acc, shares[i].ciphertexts);
  }
  return acc;
}

/** A fingerprint of the set a member decrypted for a round: the sorted (site, share digest) pairs. */
export function contributorSetDigest(shares: readonly SignedShare[]): string {
  const lines = shares.map((s) => `${s.siteId}\n${ciphertextsDigest(s.ciphertexts).toString('hex')}`).sort();
  return sha256(Buffer.from(lines.join('\n'), 'utf8')).toString('hex');
}
