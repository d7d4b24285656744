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
 *     allowedStatistics: [marginal] # default [marginal]
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
import YAML from 'yaml';
import { composeRho, epsilonFromRho, rhoFromEpsilonDelta } from '../privacy/dp/accountant.ts';
import { marginalsSensitivity, releasedSigma } from '../privacy/dp/mechanisms.ts';
import type { DecryptSpec, MeasureSpec } from '../proto/task-spec.ts';
import { monthKey, type BudgetGuard, type GuardResult, type LedgerState } from './ledger.ts';

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export const KNOWN_STATISTICS = ['marginal'] as const;
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

// ---------------------------------------------------------------- parsing

const FIELDS = [
  'epsilon',
  'delta',
  'federationEpsilon',
  'monthlyEpsilon',
  'allowedStatistics',
  'allowedModalities',
  'maxMarginalAttributes',
  'maxMarginalCells',
  'maxMarginalsPerTask',
  'minQuorum',
  'minThreshold',
  'minSigmaSite',
  'minNoiseMultiplier',
  'coordinatorFingerprint',
] as const;

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i][j] = Math.min(
        dp[i - 1][j] + 1,
        dp[i][j - 1] + 1,
        dp[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1),
      );
    }
  }
  return dp[a.length][b.length];
}

const show = (v: unknown): string =>
  typeof v === 'string' ? `string ${JSON.stringify(v)}` : v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));

function positiveNumber(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new PolicyError(`${where} must be a positive number, got ${show(v)}`);
  return v;
}

function positiveInt(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new PolicyError(`${where} must be a positive integer, got ${show(v)}`);
  return v;
}

function cap(epsilon: unknown, where: string, delta: number): EpsilonCap {
  const e = positiveNumber(epsilon, where);
  return { epsilon: e, rho: rhoFromEpsilonDelta(e, delta) };
}

/** Validates the `policy:` object (already parsed from YAML/JSON). `where` prefixes error paths. */
export function parsePolicy(raw: unknown, where = 'policy'): SitePolicy {
  if (raw === undefined || raw === null)
    throw new PolicyError(`${where} is missing: a site must state its privacy budget (at least epsilon and delta)`);
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError(`${where} must be a mapping, got ${show(raw)}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k)) {
      const near = [...FIELDS].sort((a, b) => editDistance(k, a) - editDistance(k, b))[0];
      const hint = editDistance(k, near) <= 3 ? ` (did you mean ${near}?)` : '';
      throw new PolicyError(`${where}.${k} is not a known policy field${hint}; known fields: ${FIELDS.join(', ')}`);
    }
  }
  if (o.epsilon === undefined) throw new PolicyError(`${where}.epsilon is required (the site's total epsilon cap)`);
  if (o.delta === undefined) throw new PolicyError(`${where}.delta is required (the delta of every cap in this policy)`);
  const epsilon = positiveNumber(o.epsilon, `${where}.epsilon`);
  if (typeof o.delta !== 'number' || !(o.delta > 0 && o.delta < 1))
    throw new PolicyError(`${where}.delta must be a number strictly between 0 and 1, got ${show(o.delta)}`);
  const delta = o.delta;

  let federationCaps: SitePolicy['federationCaps'] = null;
  if (o.federationEpsilon !== undefined) {
    const f = o.federationEpsilon;
    if (typeof f === 'number') {
      federationCaps = { byId: {}, other: cap(f, `${where}.federationEpsilon`, delta) };
    } else if (typeof f === 'object' && f !== null && !Array.isArray(f)) {
      const byId: Record<string, EpsilonCap> = {};
      let other: EpsilonCap | null = null;
      const entries = Object.entries(f as Record<string, unknown>);
      if (entries.length === 0)
        throw new PolicyError(
          `${where}.federationEpsilon is an empty mapping; give a number, or federation ids (and optionally "*") with their epsilon caps`,
        );
      for (const [id, v] of entries) {
        const c = cap(v, `${where}.federationEpsilon.${id}`, delta);
        if (id === '*') other = c;
        else byId[id] = c;
      }
      federationCaps = { byId, other };
    } else {
      throw new PolicyError(`${where}.federationEpsilon must be a number or a mapping of federation id to epsilon, got ${show(f)}`);
    }
  }

  const monthlyCap = o.monthlyEpsilon === undefined ? null : cap(o.monthlyEpsilon, `${where}.monthlyEpsilon`, delta);

  let allowedStatistics: Statistic[] = [...POLICY_DEFAULTS.allowedStatistics];
  if (o.allowedStatistics !== undefined) {
    const a = o.allowedStatistics;
    if (!Array.isArray(a)) throw new PolicyError(`${where}.allowedStatistics must be a list such as [marginal], got ${show(a)}`);
    allowedStatistics = a.map((s, i) => {
      if (typeof s !== 'string' || !(KNOWN_STATISTICS as readonly string[]).includes(s)) {
        throw new PolicyError(
          `${where}.allowedStatistics[${i}] is ${show(s)}, not a known statistic (known: ${KNOWN_STATISTICS.join(', ')})`,
        );
      }
      return s as Statistic;
    });
  }

  let allowedModalities: PolicyModality[] = [...KNOWN_MODALITIES];
  if (o.allowedModalities !== undefined) {
    const a = o.allowedModalities;
    if (!Array.isArray(a)) throw new PolicyError(`${where}.allowedModalities must be a list such as [fhir, image], got ${show(a)}`);
    allowedModalities = a.map((m, i) => {
      if (typeof m !== 'string' || !(KNOWN_MODALITIES as readonly string[]).includes(m)) {
        throw new PolicyError(
          `${where}.allowedModalities[${i}] is ${show(m)}, not a known modality (known: ${KNOWN_MODALITIES.join(', ')})`,
        );
      }
      return m as PolicyModality;
    });
  }

  const optInt = (k: (typeof FIELDS)[number]): number | null => (o[k] === undefined ? null : positiveInt(o[k], `${where}.${k}`));
  const optNum = (k: (typeof FIELDS)[number]): number | null => (o[k] === undefined ? null : positiveNumber(o[k], `${where}.${k}`));

  let coordinatorFingerprints: string[] | null = null;
  if (o.coordinatorFingerprint !== undefined) {
    const list = Array.isArray(o.coordinatorFingerprint) ? o.coordinatorFingerprint : [o.coordinatorFingerprint];
    if (list.length === 0)
      throw new PolicyError(`${where}.coordinatorFingerprint is an empty list; omit it to not pin the coordinator certificate`);
    coordinatorFingerprints = list.map((v, i) => {
      const at = Array.isArray(o.coordinatorFingerprint) ? `${where}.coordinatorFingerprint[${i}]` : `${where}.coordinatorFingerprint`;
      const n = typeof v === 'string' ? normalizeFingerprint(v) : null;
      if (!n) throw new PolicyError(`${at} must be a SHA-256 certificate fingerprint (64 hex digits, colons allowed), got ${show(v)}`);
      return n;
    });
  }

  const minQuorum = optInt('minQuorum') ?? POLICY_DEFAULTS.minQuorum;
  const minThreshold = optInt('minThreshold') ?? POLICY_DEFAULTS.minThreshold;
  return {
    epsilon,
    delta,
    rhoCap: rhoFromEpsilonDelta(epsilon, delta),
    federationCaps,
    monthlyCap,
    allowedStatistics,
    allowedModalities,
    maxMarginalAttributes: optInt('maxMarginalAttributes') ?? POLICY_DEFAULTS.maxMarginalAttributes,
    maxMarginalCells: optInt('maxMarginalCells'),
    maxMarginalsPerTask: optInt('maxMarginalsPerTask'),
    minQuorum,
    minThreshold,
    minSigmaSite: optNum('minSigmaSite'),
    minNoiseMultiplier: optNum('minNoiseMultiplier'),
    coordinatorFingerprints,
  };
}

/** Parses the text of site.yaml and validates its `policy:` section. */
export function parsePolicyYaml(siteYamlText: string): SitePolicy {
  let doc: unknown;
  try {
    doc = YAML.parse(siteYamlText);
  } catch (e) {
    throw new PolicyError(`site.yaml is not valid YAML: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new PolicyError('site.yaml must be a mapping with a policy: section');
  return parsePolicy((doc as Record<string, unknown>).policy, 'policy');
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

function checkFederation(policy: SitePolicy, federationId: string): CheckResult | null {
  if (capFor(policy, federationId) === 'refused') {
    return refuse(
      `federation ${JSON.stringify(federationId)} is not listed in this site's policy.federationEpsilon (and there is no "*" entry)`,
    );
  }
  return null;
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
  const coord = checkCoordinator(policy, ctx.coordinatorFingerprint);
  if (coord) return coord;
  const fed = checkFederation(policy, ctx.federationId);
  if (fed) return fed;

  if (!policy.allowedStatistics.includes('marginal'))
    return refuse(`statistic "marginal" is not allowed by this site's policy (allowed: ${policy.allowedStatistics.join(', ') || 'none'})`);
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

export interface DecryptContext {
  federationId: string;
  coordinatorFingerprint?: string;
}

/**
 * Checks a committee decryption task: the summed share must contain at least this site's
 * minimum quorum of contributions, or the coordinator could have a single site's vector
 * decrypted. (The count is the coordinator's claim; the honest-but-curious model applies.)
 */
export function checkDecryptTask(policy: SitePolicy, spec: DecryptSpec, ctx: DecryptContext): CheckResult {
  const coord = checkCoordinator(policy, ctx.coordinatorFingerprint);
  if (coord) return coord;
  const fed = checkFederation(policy, ctx.federationId);
  if (fed) return fed;
  if (spec.contributors < policy.minQuorum) {
    return refuse(`decryption of a sum of ${spec.contributors} contribution(s) is below this site's minimum quorum ${policy.minQuorum}`);
  }
  return { ok: true };
}
