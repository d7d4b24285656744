// One-run auditing (Steinke, Nasr, Jagielski, NeurIPS 2023) of the federated fit. m canary
// patients — distinctive, rare attribute combinations absent from the real data — are each
// included independently with probability ½ at a random site; the fit runs once (the one fit
// loop, each site answering through the production site path: its marginals plus its exact
// discrete Gaussian share); two attackers score every canary, one from the released noisy
// measurements and one from the synthetic cohort alone; the top-k₊ / bottom-k₋ guesses give an
// ε lower bound at 95% confidence (privacy/empirical/one-run.ts) to set next to the claimed ε.
//
// The attackers are strong: they know every real (non-canary) record and every canary, and only
// not which canaries were included. From the measurements they solve the weighted least-squares
// problem  min_x Σ_M (1/σ_M²)·‖A_M x − (y_M − b_M)‖²  where y_M is the released marginal, b_M the
// marginal of the real data and A_M maps canaries to their cells; x̂_i is canary i's score.
// From the cohort they do the same with the cohort's 1- and 2-way marginals, rescaled.
//
// `planCanaries` and `scoreCanaries` are also the auditor's side of the canary audit through real
// site agents (cli/audit/canary-federation.ts), where each site adds its canaries itself.
import { allocColumn, Dataset, type Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { isCoarsened, measuredCellMap, measuredSize, type Coarsening, type Measurement } from '../../model/measurement.ts';
import { Rng } from '../../model/rng.ts';
import { sample } from '../../model/sample.ts';
import { oneRunAudit, type OneRunAuditResult } from '../../privacy/empirical/one-run.ts';
import { cryptoRandomSource, RandomReader, type RandomSource } from '../../privacy/random.ts';
import { auditFit, concatDatasets, type AuditSites } from './sites.ts';

export interface CanaryAuditOptions {
  canaries: number;
  kPlus?: number;
  kMinus?: number;
  epsilon: number;
  delta: number;
  seed: number;
  cohortRows?: number;
  iterations?: number;
  /**
   * Source of the canaries' inclusion bits and sites, and of every site's noise. Default: the OS
   * CSPRNG (the bits must be unpredictable to the attacker); tests pass a seeded source.
   */
  random?: RandomSource;
  /** TEST ONLY: run the fit without noise, to show the audit can fail. */
  unsafeDisableNoiseForAudit?: boolean;
}

export interface CanaryAuditResult {
  audit: 'one-run canary (Steinke, Nasr, Jagielski 2023)';
  claimedEpsilon: number;
  delta: number;
  noise: 'on' | 'off (unsafeDisableNoiseForAudit)';
  data: string;
  sites: number;
  realPatients: number;
  canaries: number;
  included: number;
  rounds: number;
  rhoSpent: number;
  fromMeasurements: OneRunAuditResult;
  fromCohort: OneRunAuditResult | null;
  passed: boolean;
}

/** m distinct canary records, each value drawn ∝ 1/(count+1) so canaries sit in rare cells; none equals a real record. */
export function makeCanaries(real: Dataset, m: number, rng: Rng): Int32Array[] {
  const d = real.domain;
  const weights = d.attrs.map((a) => Float64Array.from(marginal(real, [a]), (c) => 1 / (c + 1)));
  const key = (row: ArrayLike<number>) => Array.from(row).join(',');
  const seen = new Set<string>();
  for (let r = 0; r < real.rows; r++) seen.add(key(real.columns.map((c) => c[r])));
  const out: Int32Array[] = [];
  for (let tries = 0; out.length < m; tries++) {
    if (tries > m * 1000) throw new Error(`could not find ${m} distinct rare canaries in this domain`);
    const row = Int32Array.from(weights, (w) => {
      const total = w.reduce((s, x) => s + x, 0);
      let u = rng.next() * total;
      for (let v = 0; v < w.length; v++) if ((u -= w[v]) < 0) return v;
      return w.length - 1;
    });
    const k = key(row);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(row);
  }
  return out;
}

function withRows(base: Dataset, rows: readonly Int32Array[]): Dataset {
  const d = base.domain;
  const n = base.rows + rows.length;
  const columns = d.attrs.map((_, j) => {
    const col = allocColumn(d.sizes[j], n);
    const src = base.columns[j];
    for (let r = 0; r < base.rows; r++) col[r] = src[r];
    rows.forEach((row, i) => (col[base.rows + i] = row[j]));
    return col;
  });
  return new Dataset(d, columns, n);
}

/** The (measured) cell of a row in the table over `attrs`; a band query reads coarsened codes. */
function cellOf(domain: Domain, attrs: readonly string[], row: Int32Array, coarsen?: Coarsening): number {
  const m = { attrs: [...attrs], coarsen };
  let idx = 0;
  for (const a of attrs) {
    const v = row[domain.indexOf(a)];
    idx = idx * measuredSize(domain, m, a) + (coarsen?.[a] ? coarsen[a][v] : v);
  }
  return idx;
}

/** Solves (G + λI) x = b for symmetric positive semi-definite G (Cholesky). */
function solveSpd(G: Float64Array, b: Float64Array, m: number): Float64Array {
  let maxDiag = 0;
  for (let i = 0; i < m; i++) maxDiag = Math.max(maxDiag, G[i * m + i]);
  const lambda = 1e-9 * (maxDiag || 1);
  const L = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = G[i * m + j] + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) s -= L[i * m + k] * L[j * m + k];
      L[i * m + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / L[j * m + j];
    }
  }
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * m + k] * y[k];
    y[i] = s / L[i * m + i];
  }
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < m; k++) s -= L[k * m + i] * x[k];
    x[i] = s / L[i * m + i];
  }
  return x;
}

/** Weighted least-squares canary scores from observed marginals y_M ≈ b_M + A_M x. */
export function leastSquaresScores(
  domain: Domain,
  canaries: readonly Int32Array[],
  observed: readonly { attrs: readonly string[]; residual: Float64Array; weight: number; coarsen?: Coarsening }[],
): Float64Array {
  const m = canaries.length;
  const G = new Float64Array(m * m);
  const rhs = new Float64Array(m);
  for (const o of observed) {
    const byCell = new Map<number, number[]>();
    canaries.forEach((c, i) => {
      const cell = cellOf(domain, o.attrs, c, o.coarsen);
      (byCell.get(cell) ?? byCell.set(cell, []).get(cell)!).push(i);
    });
    for (const [cell, list] of byCell) {
      for (const i of list) {
        rhs[i] += o.weight * o.residual[cell];
        for (const j of list) G[i * m + j] += o.weight;
      }
    }
  }
  return solveSpd(G, rhs, m);
}

export function measurementScores(real: Dataset, canaries: readonly Int32Array[], released: readonly Measurement[]): Float64Array {
  const sigmas = released.map((r) => r.sigma).filter((s) => s > 0);
  const floor = sigmas.length ? Math.min(...sigmas) : 1;
  return leastSquaresScores(
    real.domain,
    canaries,
    released.map((r) => {
      // A band query (coarsened measurement) is compared with the real data's bands.
      const fine = marginal(real, r.attrs);
      const b = isCoarsened(r) ? new Float64Array(r.values.length) : fine;
      if (isCoarsened(r)) {
        const map = measuredCellMap(real.domain, r.attrs, r);
        for (let i = 0; i < fine.length; i++) b[map[i]] += fine[i];
      }
      return {
        attrs: r.attrs,
        residual: Float64Array.from(r.values, (y, i) => y - b[i]),
        weight: 1 / Math.max(r.sigma, floor) ** 2,
        ...(isCoarsened(r) ? { coarsen: r.coarsen } : {}),
      };
    }),
  );
}

/**
 * Scores from the synthetic cohort alone. The attacker knows WHICH marginals were measured (that
 * is public: the audit log lists them), not their values; default: all 1- and 2-way marginals.
 */
export function cohortScores(
  real: Dataset,
  canaries: readonly Int32Array[],
  cohort: Dataset,
  measuredSets?: readonly (readonly string[])[],
): Float64Array {
  const d = real.domain;
  const scale = (real.rows + canaries.length / 2) / cohort.rows;
  const sets: (readonly string[])[] = measuredSets ? [...measuredSets] : [];
  if (!measuredSets) {
    d.attrs.forEach((a, i) => {
      sets.push([a]);
      for (let j = i + 1; j < d.attrs.length; j++) sets.push([a, d.attrs[j]]);
    });
  }
  return leastSquaresScores(
    d,
    canaries,
    sets.map((attrs) => {
      const b = marginal(real, attrs);
      const y = marginal(cohort, attrs);
      return { attrs, residual: Float64Array.from(y, (v, i) => v * scale - b[i]), weight: 1 };
    }),
  );
}

/** The auditor's secret: the canaries, which of them are included, and at which site. */
export interface CanaryPlan {
  canaries: Int32Array[];
  included: boolean[];
  /** Site index (into the sites' list) each canary goes to when included. */
  atSite: number[];
}

/**
 * m rare canaries (`makeCanaries`, seeded: their values may be public), then each one's inclusion
 * bit (probability ½) and site from the CSPRNG: independent of everything the attacker sees.
 */
export function planCanaries(real: Dataset, m: number, sites: number, seed: number, random: RandomSource = cryptoRandomSource): CanaryPlan {
  const canaries = makeCanaries(real, m, new Rng(`canary-${seed}`));
  const bits = new RandomReader(random);
  const included = canaries.map(() => bits.uniformSafeInt(2) === 1);
  const atSite = canaries.map(() => bits.uniformSafeInt(sites));
  return { canaries, included, atSite };
}

/** The included canaries of site k, as rows of value indices (what its measure tasks carry). */
export function siteCanaryRows(plan: CanaryPlan, k: number): Int32Array[] {
  return plan.canaries.filter((_, i) => plan.included[i] && plan.atSite[i] === k);
}

export interface CanaryScores {
  fromMeasurements: OneRunAuditResult;
  fromCohort: OneRunAuditResult | null;
  /** Every ε lower bound at most the claimed ε. */
  passed: boolean;
}

/**
 * The attackers' scores and the one-run ε lower bounds at 95%. `real` is every real record in the
 * fit's input (the attacker knows them all, and only not which canaries were added); `released`
 * the noisy measurements; `cohort` the synthetic cohort, if any. The offline audit and the one on
 * a federation of real site agents (cli/audit/canary-federation.ts) both score here.
 */
export function scoreCanaries(
  real: Dataset,
  plan: CanaryPlan,
  released: readonly Measurement[],
  cohort: Dataset | null,
  opts: { epsilon: number; delta: number; kPlus?: number; kMinus?: number },
): CanaryScores {
  const m = plan.canaries.length;
  const kPlus = opts.kPlus ?? Math.floor(m / 4);
  const kMinus = opts.kMinus ?? Math.floor(m / 4);
  const guess = { kPlus, kMinus, delta: opts.delta };
  const fromMeasurements = oneRunAudit(measurementScores(real, plan.canaries, released), plan.included, guess);
  const fromCohort = cohort
    ? oneRunAudit(
        cohortScores(
          real,
          plan.canaries,
          cohort,
          released.map((x) => x.attrs),
        ),
        plan.included,
        guess,
      )
    : null;
  return {
    fromMeasurements,
    fromCohort,
    passed: fromMeasurements.epsilonLower <= opts.epsilon && (fromCohort?.epsilonLower ?? 0) <= opts.epsilon,
  };
}

export async function runCanaryAudit(data: AuditSites, opts: CanaryAuditOptions): Promise<CanaryAuditResult> {
  const real = concatDatasets(
    data.domain,
    data.sites.map((s) => s.data),
  );
  const m = opts.canaries;
  const plan = planCanaries(real, m, data.sites.length, opts.seed, opts.random);
  const sites = data.sites.map((s, k) => withRows(s.data, siteCanaryRows(plan, k)));
  const cohortRows = opts.cohortRows ?? 0;
  const run = await auditFit(
    data.sites.map((s, k) => ({ id: s.id, data: sites[k] })),
    {
      epsilon: opts.epsilon,
      delta: opts.delta,
      iterations: cohortRows > 0 ? (opts.iterations ?? 300) : 0,
      random: opts.random,
      unsafeDisableNoiseForAudit: opts.unsafeDisableNoiseForAudit,
    },
  );
  const cohort = run.model ? sample(run.model, { rows: cohortRows, seed: opts.seed }) : null;
  const scores = scoreCanaries(real, plan, run.released, cohort, opts);
  return {
    audit: 'one-run canary (Steinke, Nasr, Jagielski 2023)',
    claimedEpsilon: opts.epsilon,
    delta: opts.delta,
    noise: opts.unsafeDisableNoiseForAudit ? 'off (unsafeDisableNoiseForAudit)' : 'on',
    data: data.source,
    sites: data.sites.length,
    realPatients: real.rows,
    canaries: m,
    included: plan.included.filter(Boolean).length,
    rounds: run.rounds.length,
    rhoSpent: run.rhoSpent,
    ...scores,
  };
}
