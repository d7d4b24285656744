// What a site does for each task kind. Every privacy number is recomputed here from the spec
// (privacy/dp/mechanisms.ts: sensitivity from the one-row-per-patient bound, ρ from the exact
// noise variance), the policy is checked before data is touched, the answer is the shared site
// path (federation/site-answer.ts), and the charge is durable before any byte is sent.
import { X509Certificate } from 'node:crypto';
import { Bfv, BFV_COEFF_MODULUS_BITS, BFV_POLY_MODULUS_DEGREE } from '../privacy/crypto/bfv.ts';
import { FIELD_PRIME_BIG } from '../privacy/crypto/field.ts';
import { roundRho } from '../privacy/dp/mechanisms.ts';
import { siteAnswer } from '../federation/site-answer.ts';
import { rational, type Rational } from '../privacy/dp/rational.ts';
import {
  partialDecrypt,
  prepareContribution,
  signCommitteeKey,
  verifyCommitteeKey,
  type Committee,
} from '../privacy/crypto/secure-aggregation.ts';
import type { Dataset } from '../model/domain.ts';
import { committeeCertificateProblem, type CommitteeCertificateProblem } from '../proto/tls-kit.ts';
import type { BfvParams, DecryptSpec, KeygenSpec, MeasureSpec } from '../proto/task-spec.ts';
import { revokedMessage, type RevocationList } from '../proto/revocation.ts';
import { CommitteeKeyCodec, ContributionCodec, DecryptionInputCodec, PartialDecryptionCodec } from '../proto/wire.ts';
import type { Ledger } from './ledger.ts';
import { LedgerRefusedError } from './ledger.ts';
import { checkDecryptTask, checkTask, type SitePolicy } from './policy.ts';
import { loadCommitteeSecretKey, loadOrCreateCommitteeKeys } from './committee-keys.ts';

/** The site declines the task; the reason goes to the coordinator and both audit logs. */
export class TaskRefusal extends Error {}

export interface TaskContext {
  siteId: string;
  /** The federation: the policy's per-federation caps and the ledger count spend under it. */
  federationId: string;
  /**
   * The fit the task belongs to when a long-running coordinator runs several (`<federation>/<study>`):
   * committee keys are generated, signed and used per fit. Default: the federation id.
   */
  fitId?: string;
  schemaHash: string;
  taskId: string;
  roundId: string;
  bfv: Bfv;
  ledger: Ledger;
  policy: SitePolicy;
  data: Dataset;
  /** Schema attribute → kind, so the policy can tell which modality a marginal reads. */
  attributeKinds: Readonly<Record<string, string>>;
  caCert: X509Certificate;
  certPem: string;
  keyPem: string;
  stateDir: string;
  coordinatorFingerprint?: string;
  now: () => Date;
  /** Test-only observer of the noised vector before it is shared (proves the coordinator never sees it). */
  /** The federation's revocation list in force (proto/revocation.ts); absent: none configured. */
  revocation?: () => RevocationList;
  onNoisedVector?: (taskId: string, values: BigInt64Array) => void;
}

export interface TaskAnswer {
  kind: 'committee-key' | 'contribution' | 'partial';
  body: Uint8Array;
  /** False when the bytes are the cached answer to a retried task (no new charge). */
  fresh: boolean;
  rho?: number;
}

function checkBfvParams(p: BfvParams): void {
  const ok =
    p.polyModulusDegree === BFV_POLY_MODULUS_DEGREE &&
    p.plainModulus === FIELD_PRIME_BIG.toString() &&
    p.coeffModulusBits.length === BFV_COEFF_MODULUS_BITS.length &&
    p.coeffModulusBits.every((b, i) => b === BFV_COEFF_MODULUS_BITS[i]);
  if (!ok)
    throw new TaskRefusal(
      `BFV parameters ${JSON.stringify(p)} differ from this agent's (N=${BFV_POLY_MODULUS_DEGREE}, t=${FIELD_PRIME_BIG})`,
    );
}

export function keygen(ctx: TaskContext, spec: KeygenSpec): TaskAnswer {
  checkBfvParams(spec.bfv);
  const pair = loadOrCreateCommitteeKeys(ctx.bfv, ctx.stateDir, ctx.fitId ?? ctx.federationId, spec.point);
  const signature = signCommitteeKey(ctx.keyPem, {
    federationId: ctx.fitId ?? ctx.federationId,
    schemaHash: ctx.schemaHash,
    memberId: ctx.siteId,
    point: spec.point,
    publicKey: pair.publicKey,
  });
  const body = CommitteeKeyCodec.encode({
    member_id: ctx.siteId,
    point: spec.point,
    public_key: Buffer.from(pair.publicKey),
    signature: Buffer.from(signature),
    certificate_pem: ctx.certPem,
  });
  return { kind: 'committee-key', body, fresh: true };
}

const COMMITTEE_REFUSALS: Record<CommitteeCertificateProblem, string> = {
  unreadable: 'has an unreadable certificate',
  'foreign-ca': "has a certificate not issued by this federation's CA",
  'wrong-party': 'has a certificate that names another party',
  'not-site-profile': 'has a certificate without the site profile (clientAuth only, site URI): only sites may hold decryption shares',
  'outside-validity': 'has a certificate outside its validity period',
};

/**
 * Checks every committee member is an eligible site (site-profile certificate of this federation's
 * CA, valid now, naming that member, never the coordinator) and its key is signed by that certificate.
 */
export function verifyCommittee(
  ctx: Pick<TaskContext, 'caCert' | 'federationId' | 'fitId' | 'schemaHash' | 'now' | 'revocation'>,
  spec: MeasureSpec,
): Committee {
  return spec.committee.map((m) => {
    const problem = committeeCertificateProblem(m.certificatePem, ctx.caCert, m.memberId, ctx.now());
    if (problem) throw new TaskRefusal(`committee member ${m.memberId} ${COMMITTEE_REFUSALS[problem]}: refusing to encrypt to it`);
    // A revoked member's key may be in other hands: no share is encrypted to it.
    const revoked = ctx.revocation?.().lookupPem(m.certificatePem);
    if (revoked)
      throw new TaskRefusal(
        `committee member ${m.memberId}: ${revokedMessage(`committee member ${m.memberId}`, revoked)}; refusing to encrypt to it`,
      );
    const publicKey = new Uint8Array(Buffer.from(m.publicKey, 'base64'));
    const signature = new Uint8Array(Buffer.from(m.signature, 'base64'));
    const fields = {
      federationId: ctx.fitId ?? ctx.federationId,
      schemaHash: ctx.schemaHash,
      memberId: m.memberId,
      point: m.point,
      publicKey,
    };
    if (!verifyCommitteeKey(m.certificatePem, fields, signature)) {
      throw new TaskRefusal(`committee key of ${m.memberId} is not signed by its certificate: refusing to encrypt to it`);
    }
    return { memberId: m.memberId, point: m.point, publicKey };
  });
}

/** ρ this site is charged for a measure spec, from its own sensitivity and the exact noise. */
export function siteRho(spec: MeasureSpec, dimension: number): number {
  return roundRho({ cellsPerRow: spec.marginals.length, sigmaSite2: sigmaOf(spec), parties: spec.quorum, dimension });
}

function sigmaOf(spec: MeasureSpec): Rational {
  return rational(BigInt(spec.sigmaSite2.num), BigInt(spec.sigmaSite2.den));
}

export function measure(ctx: TaskContext, spec: MeasureSpec): TaskAnswer {
  // A retried task gets the bytes already charged and sent, never a fresh noise draw.
  const cached = ctx.ledger.cachedAnswer(ctx.taskId);
  if (cached) return { kind: 'contribution', body: cached, fresh: false, rho: ctx.ledger.record(ctx.taskId)?.rho };

  checkBfvParams(spec.bfv);
  const domain = ctx.data.domain;
  const sizes = Object.fromEntries(domain.attrs.map((a, i) => [a, domain.sizes[i]]));
  let dimension = 0;
  const verdict = checkTask(ctx.policy, spec, {
    federationId: ctx.federationId,
    schemaAttributeSizes: sizes,
    schemaAttributeKinds: ctx.attributeKinds,
    ledgerState: ctx.ledger.state(),
    now: ctx.now(),
    coordinatorFingerprint: ctx.coordinatorFingerprint,
    computedRho: () => {
      dimension = spec.marginals.reduce((s, m) => s + domain.cells(m), 0);
      return siteRho(spec, dimension);
    },
  });
  if (!verdict.ok) throw new TaskRefusal(verdict.reason);
  const committee = verifyCommittee(ctx, spec);
  const rho = siteRho(spec, dimension);

  // Only now is the data touched.
  const noised = siteAnswer(ctx.data, spec.marginals, sigmaOf(spec));
  if (noised.length !== dimension) throw new TaskRefusal(`answer has ${noised.length} cells, the task measures ${dimension}`);
  ctx.onNoisedVector?.(ctx.taskId, noised);
  const contribution = prepareContribution(ctx.bfv, noised, committee, spec.threshold);
  const body = ContributionCodec.encode({
    length: contribution.length,
    shares: contribution.shares.map((s) => ({
      member_id: s.memberId,
      point: s.point,
      ciphertexts: s.ciphertexts.map((c) => Buffer.from(c)),
    })),
  });
  try {
    const charged = ctx.ledger.charge({
      taskId: ctx.taskId,
      roundId: ctx.roundId,
      federationId: ctx.federationId,
      rho,
      mechanism: 'distributed-discrete-gaussian',
      answer: body,
    });
    return { kind: 'contribution', body: charged.answer, fresh: charged.charged, rho };
  } catch (err) {
    if (err instanceof LedgerRefusedError) throw new TaskRefusal(err.reason);
    throw err;
  }
}

export function decrypt(ctx: TaskContext, spec: DecryptSpec, payload: Uint8Array): TaskAnswer {
  checkBfvParams(spec.bfv);
  const verdict = checkDecryptTask(ctx.policy, spec, {
    federationId: ctx.federationId,
    coordinatorFingerprint: ctx.coordinatorFingerprint,
  });
  if (!verdict.ok) throw new TaskRefusal(verdict.reason);
  const input = DecryptionInputCodec.decode(payload);
  if (input.member_id !== ctx.siteId || input.point !== spec.point) {
    throw new TaskRefusal(
      `decryption input is addressed to ${input.member_id} at point ${input.point}, not to this site at point ${spec.point}`,
    );
  }
  if (input.length !== spec.length || input.contributors !== spec.contributors) {
    throw new TaskRefusal('decryption input does not match its task specification');
  }
  const secretKey = loadCommitteeSecretKey(ctx.stateDir, ctx.fitId ?? ctx.federationId, spec.point);
  const share = partialDecrypt(ctx.bfv, secretKey, input.ciphertexts, spec.length);
  const body = PartialDecryptionCodec.encode({ member_id: ctx.siteId, point: spec.point, share: Array.from(share) });
  return { kind: 'partial', body, fresh: true };
}
