// The `policy:` section of site.yaml: every field validated, with the nearest known field named
// for a typo, so a site never runs under a policy it did not mean.
import YAML from 'yaml';
import { rhoFromEpsilonDelta } from '../privacy/dp/accountant.ts';
import {
  KNOWN_MODALITIES,
  KNOWN_STATISTICS,
  normalizeFingerprint,
  POLICY_DEFAULTS,
  PolicyError,
  type EpsilonCap,
  type PolicyModality,
  type SitePolicy,
  type Statistic,
} from './policy.ts';

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
