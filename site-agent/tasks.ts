// What a site does for each task kind. Every privacy number is recomputed here from the spec
// (privacy/dp/mechanisms.ts: sensitivity from the one-row-per-patient bound, ρ from the exact
// noise variance), the policy is checked before data is touched, the answer is the shared site
// path (federation/site-answer.ts), and the charge is durable before any byte is sent.
import { X509Certificate } from 'node:crypto';
import { Bfv, BFV_COEFF_MODULUS_BITS, BFV_POLY_MODULUS_DEGREE } from '../privacy/crypto/bfv.ts';
import { FIELD_PRIME_BIG } from '../privacy/crypto/field.ts';
import { fitRhoBudget, roundRho } from '../privacy/dp/mechanisms.ts';
import { siteAnswer } from '../federation/site-answer.ts';
import { rational, type Rational } from '../privacy/dp/rational.ts';
import {
  partialDecrypt,
  prepareContribution,
  signCommitteeKey,
  verifyCommitteeKey,
  type Committee,
} from '../privacy/crypto/secure-aggregation.ts';
import {
  contributorSetDigest,
  signContributionShare,
  UnverifiableSumError,
  verifiedSum,
  type SignedShare,
} from '../privacy/crypto/verifiable-sum.ts';
import { compressDomain, valueMapProblem } from '../model/compress.ts';
import type { Dataset } from '../model/domain.ts';
import { committeeCertificateProblem, type CommitteeCertificateProblem } from '../proto/tls-kit.ts';
import type { FederationRoster } from '../proto/roster.ts';
import type { BfvParams, DecryptSpec, KeygenSpec, MeasureSpec, PreflightAnswer, PreflightSpec } from '../proto/task-spec.ts';
import { revokedMessage, type RevocationList } from '../proto/revocation.ts';
import { CommitteeKeyCodec, ContributionCodec, DecryptionInputCodec, PartialDecryptionCodec } from '../proto/wire.ts';
import type { Ledger } from './ledger.ts';
import { LedgerRefusedError } from './ledger.ts';
import { checkDecryptTask, checkPlan, checkTask, remainingRho, type SitePolicy } from './policy.ts';
import { measureRows } from './audit-tasks.ts';
import { loadCommitteeSecretKey, loadOrCreateCommitteeKeys, recordDecryptedSet } from './committee-keys.ts';

/**
 * The fit id to record in the site's audit entries: the study's `<federation>/<study>` under
 * `fedsynth serve`, nothing when the fit is the federation itself.
 */
export function auditFitId(ctx: Pick<TaskContext, 'fitId' | 'federationId'>): string | undefined {
  return ctx.fitId !== undefined && ctx.fitId !== ctx.federationId ? ctx.fitId : undefined;
}

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
  /** Local patient ids in row order (never sent): an audited fit's holdout is stored by them. */
  patientIds?: readonly string[];
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
  /** The signed federation roster in force (site-agent/roster.ts): who may be a committee member or contributor. */
  roster: () => FederationRoster;
  onNoisedVector?: (taskId: string, values: BigInt64Array) => void;
}

export interface TaskAnswer {
  kind: 'preflight-answer' | 'committee-key' | 'contribution' | 'partial' | 'mia-histogram';
  body: Uint8Array;
  /** False when the bytes are the cached answer to a retried task (no new charge). */
  fresh: boolean;
  rho?: number;
  /** Cells of the site's exact answer that exceeded the task's contribution bound and were clipped. */
  clippedCells?: number;
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

/**
 * "Can you afford this plan?": the plan's whole ρ against this site's policy and remaining budget,
 * and, for a committee member, whether it will hold a key and decrypt for the fit. Touches no
 * data and charges nothing; the answer goes to the site's audit log as a non-spending event.
 */
export function preflight(ctx: TaskContext, spec: PreflightSpec): TaskAnswer {
  // The site recomputes the plan's ρ from (ε, δ) rather than trusting the coordinator's figure.
  const neededRho = fitRhoBudget(spec.epsilon, spec.delta);
  const now = ctx.now();
  const state = ctx.ledger.state();
  let contribute: PreflightAnswer['contribute'];
  if (Math.abs(spec.rhoTotal - neededRho) > 1e-9 * neededRho) {
    contribute = {
      ok: false,
      reason: `the plan states rho ${spec.rhoTotal} but (epsilon ${spec.epsilon}, delta ${spec.delta}) is rho ${neededRho} to this site`,
    };
  } else {
    const verdict = checkPlan(
      ctx.policy,
      { rhoTotal: neededRho, quorum: spec.quorum, threshold: spec.threshold, committeeSize: spec.committee.length },
      { federationId: ctx.federationId, ledgerState: state, now, coordinatorFingerprint: ctx.coordinatorFingerprint },
    );
    contribute = verdict.ok ? { ok: true } : { ok: false, reason: verdict.reason };
  }
  let decrypt: PreflightAnswer['decrypt'];
  if (spec.committee.includes(ctx.siteId)) {
    // A decryption is checked against the contributions it sums: at least the round's quorum.
    const verdict = checkDecryptTask(
      ctx.policy,
      { contributors: spec.quorum },
      { federationId: ctx.federationId, coordinatorFingerprint: ctx.coordinatorFingerprint },
    );
    decrypt = verdict.ok ? { ok: true } : { ok: false, reason: verdict.reason };
  }
  const answer: PreflightAnswer = {
    contribute,
    ...(decrypt ? { decrypt } : {}),
    remainingRho: remainingRho(ctx.policy, state, ctx.federationId, now),
    neededRho,
  };
  const reasons = [contribute.reason, decrypt?.reason].filter((r): r is string => !!r);
  ctx.ledger.auditLog?.append({
    type: 'preflight-answered',
    federationId: ctx.federationId,
    roundId: ctx.roundId,
    taskId: ctx.taskId,
    site: ctx.siteId,
    neededRho,
    remainingRho: answer.remainingRho,
    contribute: contribute.ok,
    ...(decrypt ? { decrypt: decrypt.ok } : {}),
    ...(reasons.length ? { reason: reasons.join('; ') } : {}),
  });
  return { kind: 'preflight-answer', body: Buffer.from(JSON.stringify(answer), 'utf8'), fresh: true };
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
  'not-in-roster': 'is not a site of the federation roster',
  'key-not-in-roster': 'has a certificate whose key is not the one the federation roster lists for it',
};

const CONTRIBUTOR_REFUSALS: Record<CommitteeCertificateProblem, string> = {
  unreadable: 'carries an unreadable certificate',
  'foreign-ca': "carries a certificate not issued by this federation's CA",
  'wrong-party': 'carries a certificate that names another party',
  'not-site-profile': 'carries a certificate without the site profile: only sites contribute',
  'outside-validity': 'carries a certificate outside its validity period',
  'not-in-roster': 'is not a site of the federation roster',
  'key-not-in-roster': 'carries a certificate whose key is not the one the federation roster lists for it',
};

/** Which roster a roster refusal was judged by, so an operator can tell a stale roster from an intruder. */
function rosterNote(problem: CommitteeCertificateProblem, roster: FederationRoster): string {
  return problem === 'not-in-roster' || problem === 'key-not-in-roster' ? ` (roster version ${roster.version})` : '';
}

/**
 * Checks every committee member is an eligible site (site-profile certificate of this federation's
 * CA, valid now, naming that member, never the coordinator, listed with that certificate's key in
 * the federation roster) and its key is signed by that certificate.
 */
export function verifyCommittee(
  ctx: Pick<TaskContext, 'caCert' | 'federationId' | 'fitId' | 'schemaHash' | 'now' | 'revocation' | 'roster'>,
  spec: MeasureSpec,
): Committee {
  const roster = ctx.roster();
  return spec.committee.map((m) => {
    const problem = committeeCertificateProblem(m.certificatePem, ctx.caCert, m.memberId, ctx.now(), roster);
    if (problem)
      throw new TaskRefusal(
        `committee member ${m.memberId} ${COMMITTEE_REFUSALS[problem]}${rosterNote(problem, roster)}: refusing to encrypt to it`,
      );
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
  // A round with a value map (rare-value compression, or the schema's band queries): the map must
  // fit this site's schema exactly, else the site would count something other than what the
  // coordinator sized the noise for.
  if (spec.valueMap) {
    const problem = valueMapProblem(ctx.data.domain, spec.valueMap);
    if (problem) throw new TaskRefusal(`malformed rare-value map: ${problem}`);
  }
  // The policy's size checks and the answer's dimension are those of the cells actually released.
  const domain = spec.valueMap ? compressDomain(ctx.data.domain, spec.valueMap) : ctx.data.domain;
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

  // Only now is the data touched: in an audited fit, its members only, plus the fit's canary rows
  // (site-agent/audit-tasks.ts).
  const { values: noised, clippedCells } = siteAnswer(measureRows(ctx, spec), spec.marginals, sigmaOf(spec), {
    maxCellCount: spec.maxCellCount,
    valueMap: spec.valueMap,
  });
  if (noised.length !== dimension) throw new TaskRefusal(`answer has ${noised.length} cells, the task measures ${dimension}`);
  ctx.onNoisedVector?.(ctx.taskId, noised);
  const contribution = prepareContribution(ctx.bfv, noised, committee, spec.threshold);
  const fitId = ctx.fitId ?? ctx.federationId;
  const body = ContributionCodec.encode({
    length: contribution.length,
    site_id: ctx.siteId,
    certificate_pem: ctx.certPem,
    quorum: spec.quorum,
    shares: contribution.shares.map((s) => ({
      member_id: s.memberId,
      point: s.point,
      ciphertexts: s.ciphertexts.map((c) => Buffer.from(c)),
      // Signed per member so each member can check its own shares without the others'.
      signature: Buffer.from(
        signContributionShare(ctx.keyPem, {
          fitId,
          roundId: ctx.roundId,
          siteId: ctx.siteId,
          memberId: s.memberId,
          point: s.point,
          length: contribution.length,
          quorum: spec.quorum,
          ciphertexts: s.ciphertexts,
        }),
      ),
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
      coordinatorHead: spec.coordinatorHead,
      fitId: auditFitId(ctx),
      ...(spec.canaryRows ? { canaryRows: spec.canaryRows.length } : {}),
    });
    return { kind: 'contribution', body: charged.answer, fresh: charged.charged, rho, clippedCells };
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
  const fitId = ctx.fitId ?? ctx.federationId;
  const roster = ctx.roster();
  const shares: SignedShare[] = input.contributions.map((c) => ({
    siteId: c.site_id,
    certificatePem: c.certificate_pem,
    quorum: c.quorum,
    ciphertexts: c.ciphertexts,
    signature: c.signature,
  }));
  let sum: Uint8Array[];
  try {
    sum = verifiedSum(
      ctx.bfv,
      shares,
      {
        fitId,
        roundId: spec.measureRoundId,
        memberId: ctx.siteId,
        point: spec.point,
        length: spec.length,
        contributors: spec.contributors,
      },
      (siteId, pem) => {
        const problem = committeeCertificateProblem(pem, ctx.caCert, siteId, ctx.now(), roster);
        return problem ? `${CONTRIBUTOR_REFUSALS[problem]}${rosterNote(problem, roster)}` : null;
      },
    );
  } catch (e) {
    if (e instanceof UnverifiableSumError) throw new TaskRefusal(`refusing to decrypt: ${e.message}`);
    throw e;
  }
  try {
    recordDecryptedSet(ctx.stateDir, fitId, spec.point, spec.measureRoundId, contributorSetDigest(shares));
  } catch (e) {
    throw new TaskRefusal(`refusing to decrypt: ${(e as Error).message}`);
  }
  const secretKey = loadCommitteeSecretKey(ctx.stateDir, fitId, spec.point);
  const share = partialDecrypt(ctx.bfv, secretKey, sum, spec.length);
  const body = PartialDecryptionCodec.encode({ member_id: ctx.siteId, point: spec.point, share: Array.from(share) });
  return { kind: 'partial', body, fresh: true };
}
