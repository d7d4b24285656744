/**
 * The site's policy (the `policy:` section of site.yaml), enforced by the agent and never by the
 * coordinator. `checkTask` is called on every measure task BEFORE any patient data is read; it
 * is pure and returns a precise reason on refusal. `budgetGuard` gives the ledger the same cap
 * logic, re-checked atomically at charge time.
 *
 * site.yaml:
 *
 *   policy:
 *     epsilon: 1.0                  # required: total ε cap over everything this site ever answers
 *     delta: 1e-9                   # required: the δ of every (ε, δ) figure in this policy, in (0, 1)
 *     federationEpsilon: 0.5        # optional: ε cap per federation; or a map
 *                                   #   { fed-a: 0.5, fed-b: 0.2, "*": 0.1 } (without "*", unlisted
 *                                   #   federations are refused)
 *     monthlyEpsilon: 0.3           # optional: ε cap per UTC calendar month
 *     allowedStatistics: [marginal] # default [marginal]; add mia-histogram and/or canary to answer audits
 *     allowedModalities: [fhir, image, genome, notes]  # default all: which data a marginal may touch
 *     maxMarginalAttributes: 2      # default 3: attributes per marginal
 *     maxMarginalCells: 10000       # optional: cells per marginal (product of domain sizes)
 *     maxMarginalsPerTask: 50       # optional
 *     minQuorum: 2                  # default 2: fewest sites whose noise must be in the sum
 *     minThreshold: 2               # default 2: decryption-committee threshold (1 is accepted only
 *                                   #   for a single-site federation: committee of 1, quorum 1,
 *                                   #   and minQuorum 1 here)
 *     minSigmaSite: 2.0             # optional: smallest per-cell σ of this site's own noise share
 *     minNoiseMultiplier: 0.8       # optional: smallest σ_total/Δ2, σ_total² = quorum·σ_site²
 *     coordinatorFingerprint: "AB:CD:…"  # optional: SHA-256 of the coordinator certificate's DER
 *                                   #   (hex, colons optional, "sha256:" prefix allowed), or a list
 *
 * Caps in ε are converted once to zCDP ρ with the tight CKS conversion at the policy's δ
 * (privacy/dp/accountant.ts `rhoFromEpsilonDelta`); the ledger accumulates ρ, so a spend within
 * every ρ cap is (ε, δ)-DP at that cap. A charge is refused if it would take any cap even
 * slightly over (strict comparison, no slack).
 */
import { X509Certificate } from 'node:crypto';
import { composeRho, epsilonFromRho } from '../privacy/dp/accountant.ts';
import { marginalsSensitivity, releasedSigma } from '../privacy/dp/mechanisms.ts';
import type { DecryptSpec, MeasureSpec } from '../proto/task-spec.ts';
import { monthKey, type BudgetGuard, type GuardResult, type LedgerState } from './ledger.ts';

export { parsePolicy, parsePolicyYaml } from './policy-file.ts';

export class PolicyError extends Error {
  override name = 'PolicyError';
}

// 'mia-histogram': a membership-inference score histogram of an audited fit (site-agent/audit-tasks.ts);
// not in the default, so a site opts in to answering audits. 'canary': the switch that lets an
// audited fit's measure tasks carry canary rows the site adds to its answers (site-agent/audit-tasks.ts).
export const KNOWN_STATISTICS = ['marginal', 'mia-histogram', 'canary'] as const;
export type Statistic = (typeof KNOWN_STATISTICS)[number];

/** The data a schema attribute is derived from, by attribute kind. */
export const KNOWN_MODALITIES = ['fhir', 'image', 'genome', 'notes'] as const;
export type PolicyModality = (typeof KNOWN_MODALITIES)[number];
const MODALITY_OF_KIND: Readonly<Record<string, PolicyModality>> = {
  age: 'fhir',
  sex: 'fhir',
  condition: 'fhir',
  lab: 'fhir',
  snp: 'genome',
  'image-finding': 'image',
  'image-component': 'image',
  'note-mention': 'notes',
};

/** The modality an attribute kind reads; unknown kinds count as every modality (never allowed by a restriction). */
export function modalityOfKind(kind: string): PolicyModality | undefined {
  return MODALITY_OF_KIND[kind];
}

export interface EpsilonCap {
  epsilon: number;
  /** The same cap in zCDP ρ at the policy's δ. */
  rho: number;
}

export interface SitePolicy {
  epsilon: number;
  delta: number;
  /** Total cap in ρ. */
  rhoCap: number;
  /** Per-federation caps: `byId` for named federations, `other` for the rest (null: others refused). Null when unset. */
  federationCaps: { byId: Readonly<Record<string, EpsilonCap>>; other: EpsilonCap | null } | null;
  monthlyCap: EpsilonCap | null;
  allowedStatistics: readonly Statistic[];
  allowedModalities: readonly PolicyModality[];
  maxMarginalAttributes: number;
  maxMarginalCells: number | null;
  maxMarginalsPerTask: number | null;
  minQuorum: number;
  minThreshold: number;
  minSigmaSite: number | null;
  minNoiseMultiplier: number | null;
  /** Lowercase hex SHA-256 fingerprints of trusted coordinator certificates; null = not pinned. */
  coordinatorFingerprints: readonly string[] | null;
}

export const POLICY_DEFAULTS = {
  allowedStatistics: ['marginal'] as Statistic[],
  maxMarginalAttributes: 3,
  minQuorum: 2,
  minThreshold: 2,
};

// ---------------------------------------------------------------- formatting

/** Six significant digits, no trailing zeros: 0.0149731, 0.02, 1e-9. */
export function fmt(x: number): string {
  if (x === 0) return '0';
  return String(Number(x.toPrecision(6)));
}

// ---------------------------------------------------------------- fingerprints

/** Normalises a fingerprint ("AB:CD…", "sha256:abcd…", "abcd…") to 64 lowercase hex digits, or null if it is not one. */
export function normalizeFingerprint(s: string): string | null {
  const h = s
    .trim()
    .replace(/^sha-?256:/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  return /^[0-9a-f]{64}$/.test(h) ? h : null;
}

/** SHA-256 fingerprint (lowercase hex) of a certificate's DER, from PEM or DER bytes. */
export function certificateFingerprint(pemOrDer: string | Uint8Array): string {
  const cert = new X509Certificate(typeof pemOrDer === 'string' ? pemOrDer : Buffer.from(pemOrDer));
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}

// ---------------------------------------------------------------- budget

export type CheckResult = GuardResult;

function capFor(policy: SitePolicy, federationId: string): EpsilonCap | null | 'refused' {
  if (!policy.federationCaps) return null;
  const named = policy.federationCaps.byId[federationId];
  if (named) return named;
  return policy.federationCaps.other ?? 'refused';
}

/**
 * Would charging `rho` for `federationId` at `now` keep the total, the federation's and the
 * month's spend within their caps? Pure; shared by checkTask and the ledger's guard.
 */
export function checkBudget(policy: SitePolicy, state: LedgerState, charge: { federationId: string; rho: number; now: Date }): CheckResult {
  const { rho } = charge;
  if (!Number.isFinite(rho) || rho < 0) return { ok: false, reason: `task charge rho ${rho} is not a finite number ≥ 0` };
  const over = (spent: number, c: EpsilonCap, what: string): CheckResult | null => {
    if (composeRho([spent, rho]) <= c.rho) return null;
    const remaining = Math.max(0, c.rho - spent);
    return {
      ok: false,
      reason:
        `task would spend rho ${fmt(rho)} but only ${fmt(remaining)} of the ${what} ${fmt(c.epsilon)}-epsilon cap ` +
        `(rho ${fmt(c.rho)} at delta ${fmt(policy.delta)}) remains; spent so far rho ${fmt(spent)} (epsilon ${fmt(epsilonFromRho(spent, policy.delta))})`,
    };
  };
  const total = over(state.totalRho, { epsilon: policy.epsilon, rho: policy.rhoCap }, "site's total");
  if (total) return total;
  const fc = capFor(policy, charge.federationId);
  if (fc === 'refused') {
    return {
      ok: false,
      reason: `federation ${JSON.stringify(charge.federationId)} is not listed in this site's policy.federationEpsilon (and there is no "*" entry)`,
    };
  }
  if (fc) {
    const r = over(state.byFederation[charge.federationId] ?? 0, fc, `federation ${JSON.stringify(charge.federationId)}'s`);
    if (r) return r;
  }
  if (policy.monthlyCap) {
    const m = monthKey(charge.now);
    const r = over(state.byMonth[m] ?? 0, policy.monthlyCap, `${m} monthly`);
    if (r) return r;
  }
  return { ok: true };
}

/**
 * ρ the site can still spend for `federationId` at `now`: the least left under its total, the
 * federation's and the month's caps (0 for a federation its policy refuses).
 */
export function remainingRho(policy: SitePolicy, state: LedgerState, federationId: string, now: Date): number {
  const fc = capFor(policy, federationId);
  if (fc === 'refused') return 0;
  let left = policy.rhoCap - state.totalRho;
  if (fc) left = Math.min(left, fc.rho - (state.byFederation[federationId] ?? 0));
  if (policy.monthlyCap) left = Math.min(left, policy.monthlyCap.rho - (state.byMonth[monthKey(now)] ?? 0));
  return Math.max(0, left);
}

/**
 * The checks of a measure task that do not depend on its marginals, against a whole plan before
 * any budget is spent: coordinator certificate, federation, quorum, committee threshold, and
 * the plan's total ρ against every cap. Pure.
 */
export function checkPlan(
  policy: SitePolicy,
  plan: { rhoTotal: number; quorum: number; threshold: number; committeeSize: number },
  ctx: { federationId: string; ledgerState: LedgerState; now: Date; coordinatorFingerprint?: string },
): CheckResult {
  const origin = checkOrigin(policy, ctx, 'marginal');
  if (origin) return origin;
  if (plan.quorum < policy.minQuorum) return refuse(`quorum ${plan.quorum} is below this site's minimum ${policy.minQuorum}`);
  const singleSite = plan.committeeSize === 1 && plan.quorum === 1 && policy.minQuorum === 1;
  const minT = singleSite ? 1 : Math.max(2, policy.minThreshold);
  if (plan.threshold < minT) return refuse(`committee threshold ${plan.threshold} is below this site's minimum ${minT}`);
  const budget = checkBudget(policy, ctx.ledgerState, { federationId: ctx.federationId, rho: plan.rhoTotal, now: ctx.now });
  if (!budget.ok)
    return refuse(`the fit's plan needs up to rho ${fmt(plan.rhoTotal)} from this site: ${budget.reason.replace(/^task /, '')}`);
  return { ok: true };
}

/** The ledger guard for this policy: `openLedger(dir, { guard: budgetGuard(policy) })`. */
export function budgetGuard(policy: SitePolicy): BudgetGuard {
  return (state, charge) => checkBudget(policy, state, charge);
}

// ---------------------------------------------------------------- task checks

export interface TaskContext {
  federationId: string;
  /** Public-schema attribute → domain size. */
  schemaAttributeSizes: Readonly<Record<string, number>>;
  /** Public-schema attribute → its kind (age, lab, snp, image-finding, …), for allowedModalities. */
  schemaAttributeKinds?: Readonly<Record<string, string>>;
  ledgerState: LedgerState;
  now: Date;
  /**
   * ρ this site computes for the task from the spec itself (privacy/dp/accountant.ts
   * `rhoDistributedDiscreteGaussian` with the site's sensitivity, spec.sigmaSite2, parties =
   * spec.quorum, dimension = total cells). This, not spec.rho, is what gets charged.
   * May be a function: it is then called only after the marginals are known to be valid (so it
   * can look attributes up safely); if it throws, the task is refused with its message.
   */
  computedRho: number | (() => number);
  /** SHA-256 (hex) of the DER certificate the coordinator presented on the TLS connection. */
  coordinatorFingerprint?: string;
  /**
   * L2 sensitivity of the whole answer vector, for the noise-multiplier check. Default: the
   * mechanism's (privacy/dp/mechanisms.ts) for the task's marginals.
   */
  l2Sensitivity?: number;
}

const refuse = (reason: string): CheckResult => ({ ok: false, reason });

function checkCoordinator(policy: SitePolicy, presented: string | undefined): CheckResult | null {
  if (!policy.coordinatorFingerprints) return null;
  const trusted = policy.coordinatorFingerprints;
  const list = trusted.map((f) => f.slice(0, 16) + '…').join(', ');
  if (presented === undefined)
    return refuse(`coordinator certificate fingerprint is unknown; this site only answers a coordinator with SHA-256 fingerprint ${list}`);
  const n = normalizeFingerprint(presented);
  if (!n || !trusted.includes(n)) {
    return refuse(
      `coordinator certificate fingerprint ${n ?? JSON.stringify(presented)} does not match the fingerprint this site trusts (${list})`,
    );
  }
  return null;
}

function checkStatistic(policy: SitePolicy, statistic: Statistic): CheckResult | null {
  if (policy.allowedStatistics.includes(statistic)) return null;
  return refuse(
    `statistic "${statistic}" is not allowed by this site's policy (allowed: ${policy.allowedStatistics.join(', ') || 'none'})`,
  );
}

function checkFederation(policy: SitePolicy, federationId: string): CheckResult | null {
  if (capFor(policy, federationId) === 'refused') {
    return refuse(
      `federation ${JSON.stringify(federationId)} is not listed in this site's policy.federationEpsilon (and there is no "*" entry)`,
    );
  }
  return null;
}

/** Who asks and for what, checked first by every task: coordinator certificate, federation, then (when given) the statistic. */
function checkOrigin(
  policy: SitePolicy,
  ctx: { federationId: string; coordinatorFingerprint?: string },
  statistic?: Statistic,
): CheckResult | null {
  return (
    checkCoordinator(policy, ctx.coordinatorFingerprint) ??
    checkFederation(policy, ctx.federationId) ??
    (statistic === undefined ? null : checkStatistic(policy, statistic))
  );
}

/** Rational num/den of decimal strings ≥ x (a double)? Exact for the rational, x taken as its exact binary value. */
function rationalAtLeast(num: string, den: string, x: number): boolean {
  // num/den ≥ x ⇔ num·2^k ≥ m·den where x = m/2^k exactly.
  let k = 0n;
  let v = x;
  while (!Number.isInteger(v)) {
    v *= 2;
    k++;
  }
  return BigInt(num) * (1n << k) >= BigInt(v) * BigInt(den);
}

/**
 * Checks a measure task against the policy, before any data is touched. Pure. Checks, in order:
 * coordinator certificate, federation, statistic, marginals (attributes known, size), quorum,
 * committee threshold, noise, the coordinator's ρ against the site's own, and the budget caps.
 */
export function checkTask(policy: SitePolicy, spec: MeasureSpec, ctx: TaskContext): CheckResult {
  const origin = checkOrigin(policy, ctx, 'marginal');
  if (origin) return origin;
  if (policy.maxMarginalsPerTask !== null && spec.marginals.length > policy.maxMarginalsPerTask) {
    return refuse(`task asks for ${spec.marginals.length} marginals, policy allows at most ${policy.maxMarginalsPerTask} per task`);
  }
  for (const m of spec.marginals) {
    const name = `[${m.join(',')}]`;
    for (const a of m) {
      if (!Object.prototype.hasOwnProperty.call(ctx.schemaAttributeSizes, a))
        return refuse(`unknown attribute ${a} in marginal ${name}: not in the federation's public schema`);
    }
    if (policy.allowedModalities.length < KNOWN_MODALITIES.length) {
      for (const a of m) {
        const kind = ctx.schemaAttributeKinds?.[a];
        const modality = kind === undefined ? undefined : modalityOfKind(kind);
        if (!modality || !policy.allowedModalities.includes(modality)) {
          return refuse(
            `marginal ${name} reads ${a} (${modality ?? `kind ${kind ?? 'unknown'}`} data); this site's policy allows only ${policy.allowedModalities.join(', ') || 'no'} data`,
          );
        }
      }
    }
    if (m.length > policy.maxMarginalAttributes) {
      return refuse(`marginal ${name} has ${m.length} attributes, policy allows at most ${policy.maxMarginalAttributes}`);
    }
    const cells = m.reduce((p, a) => p * ctx.schemaAttributeSizes[a], 1);
    if (policy.maxMarginalCells !== null && cells > policy.maxMarginalCells) {
      return refuse(`marginal ${name} has ${cells} cells, policy allows at most ${policy.maxMarginalCells}`);
    }
  }

  if (spec.quorum < policy.minQuorum) return refuse(`quorum ${spec.quorum} is below this site's minimum ${policy.minQuorum}`);

  const singleSite = spec.committee.length === 1 && spec.quorum === 1 && policy.minQuorum === 1;
  const minT = singleSite ? 1 : Math.max(2, policy.minThreshold);
  if (spec.threshold < minT) {
    return refuse(
      `committee threshold ${spec.threshold} is below this site's minimum ${minT} (a single committee member colluding with the coordinator could decrypt this site's vector)`,
    );
  }
  if (spec.threshold > spec.committee.length)
    return refuse(`committee threshold ${spec.threshold} exceeds the committee size ${spec.committee.length}`);
  // Each honest member decrypts one contributor set per round; with t > k/2 two disjoint groups
  // of t members cannot exist, so the coordinator cannot get two different sets of one round
  // decrypted and difference them into a release nobody was charged for.
  if (2 * spec.threshold <= spec.committee.length) {
    return refuse(
      `committee threshold ${spec.threshold} is not a majority of the ${spec.committee.length} members (two halves could each decrypt a different set of this round's contributions)`,
    );
  }

  const { num, den } = spec.sigmaSite2;
  if (policy.minSigmaSite !== null && !rationalAtLeast(num, den, policy.minSigmaSite * policy.minSigmaSite)) {
    const s = Math.sqrt(Number(num) / Number(den));
    return refuse(
      `noise too small: this site's share has sigma ${fmt(s)} per cell (sigma² ${num}/${den}), policy requires at least ${fmt(policy.minSigmaSite)}`,
    );
  }
  if (policy.minNoiseMultiplier !== null) {
    const l2 = ctx.l2Sensitivity ?? marginalsSensitivity(spec.marginals.length).l2Sensitivity;
    // The noise the quorum's shares alone add: the least the released sum can carry.
    const sigmaTotal = releasedSigma({ num: BigInt(num), den: BigInt(den) }, spec.quorum);
    const mult = sigmaTotal / l2;
    if (!(mult >= policy.minNoiseMultiplier)) {
      return refuse(
        `noise too small: noise multiplier ${fmt(mult)} (sigma ${fmt(sigmaTotal)} from a quorum of ${spec.quorum}, L2 sensitivity ${fmt(l2)}) is below this site's minimum ${fmt(policy.minNoiseMultiplier)}`,
      );
    }
  }

  let rho: number;
  try {
    rho = typeof ctx.computedRho === 'function' ? ctx.computedRho() : ctx.computedRho;
  } catch (e) {
    return refuse(`this site could not compute rho for the task: ${(e as Error).message}`);
  }
  if (!Number.isFinite(rho) || rho <= 0) return refuse(`this site could not compute a valid rho for the task (got ${rho})`);
  if (Math.abs(spec.rho - rho) > 1e-9 * rho) {
    return refuse(
      `task states rho ${fmt(spec.rho)} but this site computes rho ${fmt(rho)} for the requested noise; the coordinator would record a different spend`,
    );
  }

  return checkBudget(policy, ctx.ledgerState, { federationId: ctx.federationId, rho, now: ctx.now });
}

/**
 * Checks a membership-inference histogram task against the policy, before any data is touched.
 * Pure. Coordinator certificate, federation, statistic allowed, the policy's minimum σ per site
 * (the histogram's only noise), the coordinator's ρ against the site's own single-party ρ, and the
 * budget caps.
 */
export function checkScoreHistogramTask(
  policy: SitePolicy,
  spec: { rho: number; sigmaSite2: { num: string; den: string } },
  ctx: { federationId: string; ledgerState: LedgerState; now: Date; computedRho: number; coordinatorFingerprint?: string },
): CheckResult {
  const origin = checkOrigin(policy, ctx, 'mia-histogram');
  if (origin) return origin;
  const { num, den } = spec.sigmaSite2;
  if (policy.minSigmaSite !== null && !rationalAtLeast(num, den, policy.minSigmaSite * policy.minSigmaSite)) {
    return refuse(
      `noise too small: this site's histogram has sigma ${fmt(Math.sqrt(Number(num) / Number(den)))} per cell, policy requires at least ${fmt(policy.minSigmaSite)}`,
    );
  }
  const rho = ctx.computedRho;
  if (Math.abs(spec.rho - rho) > 1e-9 * rho) {
    return refuse(
      `task states rho ${fmt(spec.rho)} but this site computes rho ${fmt(rho)} for its own histogram (one party's noise); the coordinator would record a different spend`,
    );
  }
  return checkBudget(policy, ctx.ledgerState, { federationId: ctx.federationId, rho, now: ctx.now });
}

export interface DecryptContext {
  federationId: string;
  coordinatorFingerprint?: string;
}

/**
 * Checks a committee decryption task: the sum must contain at least this site's minimum quorum
 * of contributions, or the coordinator could have a single site's vector decrypted. The count is
 * checked here before any work; the member then verifies it against the signed contributions it
 * sums itself (site-agent/tasks.ts `decrypt`).
 */
export function checkDecryptTask(policy: SitePolicy, spec: Pick<DecryptSpec, 'contributors'>, ctx: DecryptContext): CheckResult {
  const origin = checkOrigin(policy, ctx);
  if (origin) return origin;
  if (spec.contributors < policy.minQuorum) {
    return refuse(`decryption of a sum of ${spec.contributors} contribution(s) is below this site's minimum quorum ${policy.minQuorum}`);
  }
  return { ok: true };
}
