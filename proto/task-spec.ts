// The JSON carried in Task.spec_json, per task kind. Both sides validate it with parseTaskSpec:
// a site never acts on a spec it cannot fully check, and it recomputes every privacy number
// (sensitivity, rho) from the spec itself rather than trusting a figure sent by the coordinator.

export interface BfvParams {
  polyModulusDegree: number;
  coeffModulusBits: number[];
  /** Prime plaintext modulus, decimal string (also the Shamir field). */
  plainModulus: string;
}

export interface CommitteeMemberSpec {
  memberId: string;
  point: number;
  /** base64 of the member's serialised BFV public key. */
  publicKey: string;
  /** base64 signature by the member's certificate key over the key fields. */
  signature: string;
  certificatePem: string;
}

export interface KeygenSpec {
  kind: 'keygen';
  point: number;
  bfv: BfvParams;
}

export interface MeasureSpec {
  kind: 'measure';
  /** Marginals to compute, each a list of schema attribute names. */
  marginals: string[][];
  /** Exact variance of each site's discrete Gaussian noise share per cell, as a rational. */
  sigmaSite2: { num: string; den: string };
  /** Fewest contributing sites the round may close with; the noise is sized for this many. */
  quorum: number;
  /** The charge the coordinator will record; a site checks it against its own computation. */
  rho: number;
  threshold: number;
  committee: CommitteeMemberSpec[];
  bfv: BfvParams;
  /**
   * The contribution bound: each cell of a site's exact answer is clipped to [0, maxCellCount]
   * before its noise is added, so an honest site's cell never exceeds it and the coordinator
   * range-checks the released sum against contributors · maxCellCount. Clipping is 1-Lipschitz,
   * so the sensitivity is unchanged. Absent in a spec: DEFAULT_MAX_CELL_COUNT.
   */
  maxCellCount: number;
  /**
   * The coordinator audit chain's head when the round opened. The site writes it into the charge
   * entry of its own signed audit log (a countersignature), so `audit verify` with the site's log
   * detects a coordinator log truncated or rewritten below it.
   */
  coordinatorHead?: ChainHead;
  /**
   * Per attribute, the code of each of its values; the site recodes its rows with it before
   * counting, so every site merges identically: rare-value compression (model/compress.ts,
   * derived by the coordinator from released noisy 1-way counts, post-processing) or a schema's
   * declared band queries (age bins into bands, public). One row is still one count per
   * marginal, so the sensitivity is unchanged. Absent: no merging.
   */
  valueMap?: Record<string, number[]>;
  /**
   * An audited fit: the fraction of its patients each site keeps out of every measure round of
   * this fit (a CSPRNG draw the site stores, so a restarted agent keeps the same split), the
   * control set of the membership-inference audit that follows. Absent: no holdout.
   */
  holdoutFraction?: number;
  /**
   * A canary audit of an audited fit (federation/audits/canary.ts): the canary patients the
   * auditor included at THIS site, one row of value indices per canary in the schema's attribute
   * order. The site adds them to its rows in every measure answer of the fit; canaries are rows
   * like any other, so the sensitivity and the charge are unchanged. Absent: no canaries.
   */
  canaryRows?: number[][];
}

/** Most canary rows one measure task may carry (the audit plants hundreds, not millions). */
export const MAX_CANARY_ROWS = 5000;

/** The membership-inference scores a site can histogram (site-agent/dcr.ts). */
export const MIA_SCORES = ['dcr', 'density'] as const;
export type MiaScore = (typeof MIA_SCORES)[number];

/**
 * Membership inference against an audited fit's cohort: the site histograms one score of its
 * records over [members | holdout] against the cohort (the task's payload, proto/mia-wire.ts,
 * its SHA-256 announced here), adds its own discrete Gaussian noise and is charged at
 * single-party ρ (its histogram is released alone), which it recomputes itself.
 */
export interface MiaHistogramSpec {
  kind: 'mia-histogram';
  score: MiaScore;
  bins: number;
  sigmaSite2: { num: string; den: string };
  /** The charge the coordinator will record; the site recomputes it from bins and sigmaSite2. */
  rho: number;
  /** The holdout fraction of the audited fit's measure rounds; the site checks it kept that holdout. */
  holdoutFraction: number;
  cohortRows: number;
  /** Hex SHA-256 of the task payload (the cohort). */
  cohortSha256: string;
  coordinatorHead?: ChainHead;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Default contribution bound: the most patients (rows) one site may hold. Above the largest
 * single health-system record counts and far below the field's signed range (≈ ±2.1·10⁹).
 */
export const DEFAULT_MAX_CELL_COUNT = 20_000_000;

export interface DecryptSpec {
  kind: 'decrypt';
  /** The measure round whose signed contributions the member sums: at most one set per round. */
  measureRoundId: string;
  point: number;
  length: number;
  contributors: number;
  bfv: BfvParams;
}

/**
 * "Can you afford this plan?", asked of every site before any budget is spent. Answering it
 * charges nothing; the site records its answer in its own audit log as a non-spending event.
 */
export interface PreflightSpec {
  kind: 'preflight';
  /** The fit's total guarantee; a contributing site is charged at most ρ = fitRhoBudget(ε, δ) over all its rounds. */
  epsilon: number;
  delta: number;
  /** That ρ, as the coordinator computed it; the site recomputes it from (ε, δ). */
  rhoTotal: number;
  /** Fewest contributors a round may close with (the noise is sized for this many). */
  quorum: number;
  /** Committee threshold and members (ids; their keys do not exist yet). */
  threshold: number;
  committee: string[];
}

export type TaskSpec = PreflightSpec | KeygenSpec | MeasureSpec | DecryptSpec | MiaHistogramSpec;
export const TASK_KINDS = ['preflight', 'keygen', 'measure', 'decrypt', 'mia-histogram'] as const satisfies readonly TaskSpec['kind'][];
export type TaskKind = (typeof TASK_KINDS)[number];
/** The spec type of one task kind: `TaskSpecOf<'measure'>` is `MeasureSpec`. */
export type TaskSpecOf<K extends TaskKind> = Extract<TaskSpec, { kind: K }>;

export class InvalidTaskSpecError extends Error {}

function fail(msg: string): never {
  throw new InvalidTaskSpecError(msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function decimalString(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[0-9]+$/.test(v) || v.length > 200) fail(`${what} must be a decimal integer string`);
  return v;
}

function parseBfv(v: unknown): BfvParams {
  if (!isObject(v)) fail('bfv must be an object');
  const degree = positiveInt(v.polyModulusDegree, 'bfv.polyModulusDegree');
  if (!Array.isArray(v.coeffModulusBits) || v.coeffModulusBits.length === 0) fail('bfv.coeffModulusBits must be a non-empty array');
  const bits = v.coeffModulusBits.map((b, i) => positiveInt(b, `bfv.coeffModulusBits[${i}]`));
  return { polyModulusDegree: degree, coeffModulusBits: bits, plainModulus: decimalString(v.plainModulus, 'bfv.plainModulus') };
}

function nonEmptyString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(`${what} must be a non-empty string`);
  return v;
}

function parseMember(v: unknown, i: number): CommitteeMemberSpec {
  if (!isObject(v)) fail(`committee[${i}] must be an object`);
  const memberId = nonEmptyString(v.memberId, `committee[${i}].memberId`);
  const publicKey = nonEmptyString(v.publicKey, `committee[${i}].publicKey`);
  const signature = nonEmptyString(v.signature, `committee[${i}].signature`);
  const certificatePem = nonEmptyString(v.certificatePem, `committee[${i}].certificatePem`);
  return { memberId, point: positiveInt(v.point, `committee[${i}].point`), publicKey, signature, certificatePem };
}

function decodeKeygen(raw: Record<string, unknown>): KeygenSpec {
  return { kind: 'keygen', point: positiveInt(raw.point, 'point'), bfv: parseBfv(raw.bfv) };
}

function decodeDecrypt(raw: Record<string, unknown>): DecryptSpec {
  return {
    kind: 'decrypt',
    measureRoundId: nonEmptyString(raw.measureRoundId, 'measureRoundId'),
    point: positiveInt(raw.point, 'point'),
    length: positiveInt(raw.length, 'length'),
    contributors: positiveInt(raw.contributors, 'contributors'),
    bfv: parseBfv(raw.bfv),
  };
}

function decodeMarginals(v: unknown): string[][] {
  if (!Array.isArray(v) || v.length === 0) fail('marginals must be a non-empty array');
  return v.map((m: unknown, i) => {
    if (!Array.isArray(m) || m.length === 0 || !m.every((a): a is string => typeof a === 'string' && a.length > 0)) {
      fail(`marginals[${i}] must be a non-empty array of attribute names`);
    }
    if (new Set(m).size !== m.length) fail(`marginals[${i}] repeats an attribute`);
    return m;
  });
}

function decodeChainHead(v: unknown): ChainHead {
  if (!isObject(v)) fail('coordinatorHead must be {seq, hash}');
  if (typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 0) fail('coordinatorHead.seq must be an integer ≥ 0');
  if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash)) fail('coordinatorHead.hash must be 64 lowercase hex digits');
  return { seq: v.seq, hash: v.hash };
}

/** Shape only (the schema's sizes are checked by the site against its own schema). */
function decodeValueMap(v: unknown): Record<string, number[]> {
  if (!isObject(v)) fail('valueMap must be an object {attribute: [code per value]}');
  const out: Record<string, number[]> = {};
  for (const [attr, codes] of Object.entries(v)) {
    if (attr.length === 0) fail('valueMap has an empty attribute name');
    if (!Array.isArray(codes) || codes.length === 0) fail(`valueMap.${attr} must be a non-empty array of codes`);
    codes.forEach((c: unknown, i) => {
      if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0)
        fail(`valueMap.${attr}[${i}] must be a non-negative integer, got ${JSON.stringify(c)}`);
    });
    out[attr] = codes as number[];
  }
  return out;
}

function decodeMeasure(raw: Record<string, unknown>): MeasureSpec {
  const marginals = decodeMarginals(raw.marginals);
  if (!isObject(raw.sigmaSite2)) fail('sigmaSite2 must be {num, den}');
  const sigmaSite2 = {
    num: decimalString(raw.sigmaSite2.num, 'sigmaSite2.num'),
    den: decimalString(raw.sigmaSite2.den, 'sigmaSite2.den'),
  };
  if (BigInt(sigmaSite2.num) === 0n || BigInt(sigmaSite2.den) === 0n) fail('sigmaSite2 must be positive');
  if (typeof raw.rho !== 'number' || !Number.isFinite(raw.rho) || raw.rho <= 0) fail('rho must be a positive number');
  if (!Array.isArray(raw.committee) || raw.committee.length === 0) fail('committee must be a non-empty array');
  const committee = raw.committee.map(parseMember);
  const threshold = positiveInt(raw.threshold, 'threshold');
  if (threshold > committee.length) fail(`threshold ${threshold} exceeds committee size ${committee.length}`);
  const points = new Set(committee.map((m) => m.point));
  if (points.size !== committee.length) fail('committee points must be distinct');
  return {
    kind: 'measure',
    marginals,
    sigmaSite2,
    quorum: positiveInt(raw.quorum, 'quorum'),
    rho: raw.rho,
    threshold,
    committee,
    bfv: parseBfv(raw.bfv),
    maxCellCount: raw.maxCellCount === undefined ? DEFAULT_MAX_CELL_COUNT : positiveInt(raw.maxCellCount, 'maxCellCount'),
    ...(raw.coordinatorHead === undefined ? {} : { coordinatorHead: decodeChainHead(raw.coordinatorHead) }),
    ...(raw.valueMap === undefined ? {} : { valueMap: decodeValueMap(raw.valueMap) }),
    ...(raw.holdoutFraction === undefined ? {} : { holdoutFraction: fraction(raw.holdoutFraction, 'holdoutFraction') }),
    ...(raw.canaryRows === undefined ? {} : { canaryRows: decodeCanaryRows(raw.canaryRows) }),
  };
}

/**
 * Canary rows, shape only (each row's length and values are checked by the site against its own
 * schema); throws InvalidTaskSpecError naming the offending row and value.
 */
export function decodeCanaryRows(v: unknown): number[][] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CANARY_ROWS)
    fail(`canaryRows must be a non-empty array of at most ${MAX_CANARY_ROWS} rows`);
  const width = Array.isArray(v[0]) ? v[0].length : 0;
  return v.map((row: unknown, i) => {
    if (!Array.isArray(row) || row.length === 0 || row.length !== width)
      fail(`canaryRows[${i}] must be a non-empty array of ${width || 'one or more'} value indices, like every other row`);
    row.forEach((x: unknown, j) => {
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
        fail(`canaryRows[${i}][${j}] must be a non-negative integer, got ${JSON.stringify(x)}`);
    });
    return row as number[];
  });
}

function fraction(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v >= 1)
    fail(`${what} must be a number strictly between 0 and 1, got ${JSON.stringify(v)}`);
  return v;
}

function decodeSigma(v: unknown): { num: string; den: string } {
  if (!isObject(v)) fail('sigmaSite2 must be {num, den}');
  const sigma = { num: decimalString(v.num, 'sigmaSite2.num'), den: decimalString(v.den, 'sigmaSite2.den') };
  if (BigInt(sigma.num) === 0n || BigInt(sigma.den) === 0n) fail('sigmaSite2 must be positive');
  return sigma;
}

function decodeMiaHistogram(raw: Record<string, unknown>): MiaHistogramSpec {
  if (typeof raw.score !== 'string' || !(MIA_SCORES as readonly string[]).includes(raw.score))
    fail(`score must be one of ${MIA_SCORES.join(', ')}, got ${JSON.stringify(raw.score)}`);
  const bins = positiveInt(raw.bins, 'bins');
  if (bins < 2 || bins > 64) fail(`bins must be an integer in [2, 64], got ${bins}`);
  if (typeof raw.rho !== 'number' || !Number.isFinite(raw.rho) || raw.rho <= 0) fail('rho must be a positive number');
  if (typeof raw.cohortSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.cohortSha256))
    fail('cohortSha256 must be 64 lowercase hex digits');
  return {
    kind: 'mia-histogram',
    score: raw.score as MiaScore,
    bins,
    sigmaSite2: decodeSigma(raw.sigmaSite2),
    rho: raw.rho,
    holdoutFraction: fraction(raw.holdoutFraction, 'holdoutFraction'),
    cohortRows: positiveInt(raw.cohortRows, 'cohortRows'),
    cohortSha256: raw.cohortSha256,
    ...(raw.coordinatorHead === undefined ? {} : { coordinatorHead: decodeChainHead(raw.coordinatorHead) }),
  };
}

function positiveFinite(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`${what} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function decodePreflight(raw: Record<string, unknown>): PreflightSpec {
  const delta = positiveFinite(raw.delta, 'delta');
  if (delta >= 1) fail(`delta must be below 1, got ${delta}`);
  if (!Array.isArray(raw.committee) || raw.committee.length === 0) fail('committee must be a non-empty array of member ids');
  const committee = raw.committee.map((m, i) => nonEmptyString(m, `committee[${i}]`));
  if (new Set(committee).size !== committee.length) fail('committee repeats a member');
  const threshold = positiveInt(raw.threshold, 'threshold');
  if (threshold > committee.length) fail(`threshold ${threshold} exceeds committee size ${committee.length}`);
  return {
    kind: 'preflight',
    epsilon: positiveFinite(raw.epsilon, 'epsilon'),
    delta,
    rhoTotal: positiveFinite(raw.rhoTotal, 'rhoTotal'),
    quorum: positiveInt(raw.quorum, 'quorum'),
    threshold,
    committee,
  };
}

const DECODERS: { [K in TaskKind]: (raw: Record<string, unknown>) => TaskSpecOf<K> } = {
  preflight: decodePreflight,
  keygen: decodeKeygen,
  measure: decodeMeasure,
  decrypt: decodeDecrypt,
  'mia-histogram': decodeMiaHistogram,
};

export function isTaskKind(kind: string): kind is TaskKind {
  return (TASK_KINDS as readonly string[]).includes(kind);
}

/**
 * Validates an already-parsed spec (e.g. read back from the coordinator's store) as a spec of
 * `kind`; throws InvalidTaskSpecError with the reason.
 */
export function decodeTaskSpec<K extends TaskKind>(kind: K, raw: unknown): TaskSpecOf<K> {
  if (!isObject(raw)) fail('spec must be a JSON object');
  if (raw.kind !== kind) fail(`spec kind ${JSON.stringify(raw.kind)} does not match task kind ${JSON.stringify(kind)}`);
  return DECODERS[kind](raw);
}

/** Parses and validates the spec_json of a task of `kind`; throws InvalidTaskSpecError with the reason. */
export function parseTaskSpec<K extends TaskKind>(kind: K, json: string): TaskSpecOf<K>;
export function parseTaskSpec(kind: string, json: string): TaskSpec;
export function parseTaskSpec(kind: string, json: string): TaskSpec {
  if (!isTaskKind(kind)) fail(`unknown task kind ${JSON.stringify(kind)} (known: ${TASK_KINDS.join(', ')})`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    fail(`spec of ${kind} task is not valid JSON`);
  }
  return decodeTaskSpec(kind, raw);
}

/** One verdict of a preflight answer: whether the site will do it, and if not why. */
export interface PreflightVerdict {
  ok: boolean;
  reason?: string;
}

/** A site's answer to a preflight task (the body of its `preflight-answer` upload, JSON). */
export interface PreflightAnswer {
  /** Whether the site will contribute to every round of the plan: its policy and remaining budget. */
  contribute: PreflightVerdict;
  /** A committee member only: whether it will generate a key and decrypt sums for this fit. */
  decrypt?: PreflightVerdict;
  /** ρ this site has left for the federation (the least over its caps) and ρ the plan needs. */
  remainingRho: number;
  neededRho: number;
}

function decodeVerdict(v: unknown, what: string): PreflightVerdict {
  if (!isObject(v) || typeof v.ok !== 'boolean') fail(`${what} must be {ok: boolean, reason?: string}`);
  if (v.reason !== undefined && typeof v.reason !== 'string') fail(`${what}.reason must be a string`);
  if (!v.ok && !v.reason) fail(`${what} says no without a reason`);
  return v.reason === undefined ? { ok: v.ok } : { ok: v.ok, reason: v.reason.slice(0, 2000) };
}

/** Parses and checks a preflight answer body; throws InvalidTaskSpecError with the reason. */
export function parsePreflightAnswer(body: Uint8Array): PreflightAnswer {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    fail('preflight answer is not valid JSON');
  }
  if (!isObject(raw)) fail('preflight answer must be a JSON object');
  const nonNegative = (v: unknown, what: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${what} must be a finite number ≥ 0`);
    return v;
  };
  return {
    contribute: decodeVerdict(raw.contribute, 'contribute'),
    ...(raw.decrypt !== undefined ? { decrypt: decodeVerdict(raw.decrypt, 'decrypt') } : {}),
    remainingRho: nonNegative(raw.remainingRho, 'remainingRho'),
    neededRho: nonNegative(raw.neededRho, 'neededRho'),
  };
}
