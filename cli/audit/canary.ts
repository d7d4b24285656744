// `fedsynth audit canary`: one-run auditing (Steinke, Nasr, Jagielski, NeurIPS 2023) of the
// federated pipeline. m canary patients — distinctive, rare attribute combinations absent from
// the real data — are each included independently with probability ½ at a random site; the real
// pipeline runs once (cli/audit/pipeline.ts: the plan, the noise sizing and each site's exact
// discrete Gaussian share); two attackers score every canary, one from the released noisy
// measurements and one from the synthetic cohort alone; the top-k₊ / bottom-k₋ guesses give an
// ε lower bound at 95% confidence (privacy/empirical/one-run.ts) to set next to the claimed ε.
//
// The attackers are strong: they know every real (non-canary) record and every canary, and only
// not which canaries were included. From the measurements they solve the weighted least-squares
// problem  min_x Σ_M (1/σ_M²)·‖A_M x − (y_M − b_M)‖²  where y_M is the released marginal, b_M the
// marginal of the real data and A_M maps canaries to their cells; x̂_i is canary i's score.
// From the cohort they do the same with the cohort's 1- and 2-way marginals, rescaled.
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { allocColumn, Dataset, type Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { Rng } from '../../model/rng.ts';
import { oneRunAudit, type OneRunAuditResult } from '../../privacy/empirical/one-run.ts';
import { command, parseArgs, UsageError } from '../args.ts';
import { auditData, concatDatasets, type AuditData } from './data.ts';
import { runFederatedPipeline } from './pipeline.ts';

export interface CanaryAuditOptions {
  canaries: number;
  kPlus?: number;
  kMinus?: number;
  epsilon: number;
  delta: number;
  seed: number;
  cohortRows?: number;
  iterations?: number;
  /** TEST/AUDIT ONLY: run the pipeline without noise, to show the audit can fail. */
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

function cellOf(domain: Domain, attrs: readonly string[], row: Int32Array): number {
  let idx = 0;
  for (const a of attrs) idx = idx * domain.sizeOf(a) + row[domain.indexOf(a)];
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
  observed: readonly { attrs: readonly string[]; residual: Float64Array; weight: number }[],
): Float64Array {
  const m = canaries.length;
  const G = new Float64Array(m * m);
  const rhs = new Float64Array(m);
  for (const o of observed) {
    const byCell = new Map<number, number[]>();
    canaries.forEach((c, i) => {
      const cell = cellOf(domain, o.attrs, c);
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
      const b = marginal(real, r.attrs);
      return { attrs: r.attrs, residual: Float64Array.from(r.values, (y, i) => y - b[i]), weight: 1 / Math.max(r.sigma, floor) ** 2 };
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

export function runCanaryAudit(data: AuditData, opts: CanaryAuditOptions): CanaryAuditResult {
  const rng = new Rng(`canary-${opts.seed}`);
  const real = concatDatasets(
    data.domain,
    data.sites.map((s) => s.data),
  );
  const m = opts.canaries;
  const canaries = makeCanaries(real, m, rng);
  // Inclusion bits and sites from the OS CSPRNG: independent of everything the attacker sees.
  const included = canaries.map(() => randomInt(2) === 1);
  const atSite = canaries.map(() => randomInt(data.sites.length));
  const sites = data.sites.map((s, k) =>
    withRows(
      s.data,
      canaries.filter((_, i) => included[i] && atSite[i] === k),
    ),
  );
  const run = runFederatedPipeline(sites, {
    epsilon: opts.epsilon,
    delta: opts.delta,
    seed: opts.seed,
    cohortRows: opts.cohortRows ?? 0,
    iterations: opts.iterations,
    unsafeDisableNoiseForAudit: opts.unsafeDisableNoiseForAudit,
  });
  const kPlus = opts.kPlus ?? Math.floor(m / 4);
  const kMinus = opts.kMinus ?? Math.floor(m / 4);
  const fromMeasurements = oneRunAudit(measurementScores(real, canaries, run.measurements), included, { kPlus, kMinus, delta: opts.delta });
  const fromCohort = run.cohort
    ? oneRunAudit(
        cohortScores(
          real,
          canaries,
          run.cohort,
          run.measurements.map((x) => x.attrs),
        ),
        included,
        { kPlus, kMinus, delta: opts.delta },
      )
    : null;
  return {
    audit: 'one-run canary (Steinke, Nasr, Jagielski 2023)',
    claimedEpsilon: opts.epsilon,
    delta: opts.delta,
    noise: opts.unsafeDisableNoiseForAudit ? 'off (unsafeDisableNoiseForAudit)' : 'on',
    data: data.source,
    sites: data.sites.length,
    realPatients: real.rows,
    canaries: m,
    included: included.filter(Boolean).length,
    rounds: run.rounds.length,
    rhoSpent: run.rhoSpent,
    fromMeasurements,
    fromCohort,
    passed: fromMeasurements.epsilonLower <= opts.epsilon && (fromCohort?.epsilonLower ?? 0) <= opts.epsilon,
  };
}

export const CANARY = command({
  command: 'fedsynth audit canary',
  summary:
    'One-run canary audit: plants canaries, runs the fit, and bounds ε from below from the released\nmeasurements and the synthetic cohort (95%). Exit 0 when the bound stays below the claimed ε.',
  flags: {
    data: { type: 'path', value: 'DIR', help: 'simulated sites to audit (default: simulate --sites/--patients now)' },
    sites: { type: 'int', min: 1, max: 26, default: 3, help: 'sites to simulate' },
    patients: { type: 'int', min: 10, max: 1_000_000, default: 400, help: 'patients per simulated site' },
    epsilon: { type: 'number', min: 0, minExclusive: true, default: 1, help: 'the claimed ε' },
    delta: { type: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, default: 1e-9, help: 'the claimed δ' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 1, help: 'seed of simulation and fit' },
    out: { type: 'path', value: 'FILE.json', required: true, help: 'where the result is written' },
    canaries: { type: 'int', min: 4, max: 5000, default: 200, help: 'canaries planted' },
    'k-plus': { type: 'int', min: 0, max: 5000, help: 'guesses of "included" (default: chosen by the audit)' },
    'k-minus': { type: 'int', min: 0, max: 5000, help: 'guesses of "excluded" (default: chosen by the audit)' },
    cohort: { type: 'int', min: 0, max: 10_000_000, default: 20_000, help: 'synthetic rows to audit (0: measurements only)' },
  },
});

export async function runAuditCanary(args: string[]): Promise<number> {
  const { flags } = parseArgs(CANARY, args);
  const { epsilon, delta } = flags;
  const canaries = flags.canaries;
  if (flags['k-plus'] !== undefined && flags['k-plus'] > canaries)
    throw new UsageError(`--k-plus must be at most --canaries (${canaries})`, CANARY.command);
  if (flags['k-minus'] !== undefined && flags['k-minus'] > canaries)
    throw new UsageError(`--k-minus must be at most --canaries (${canaries})`, CANARY.command);
  const data = await auditData({
    data: flags.data,
    sites: flags.sites,
    patients: flags.patients,
    seed: flags.seed,
  });
  const res = runCanaryAudit(data, {
    canaries,
    kPlus: flags['k-plus'],
    kMinus: flags['k-minus'],
    epsilon,
    delta,
    seed: flags.seed,
    cohortRows: flags.cohort,
  });
  writeFileSync(flags.out, `${JSON.stringify(res, null, 2)}\n`);
  const line = (name: string, r: OneRunAuditResult | null) =>
    r ? `${name}: ${r.v}/${r.r} correct guesses of ${r.m} canaries → ε_lower ${r.epsilonLower.toFixed(3)} (95%)\n` : '';
  process.stdout.write(
    `canary audit, claimed ε ${epsilon} (δ ${delta}), ${res.included}/${canaries} canaries included over ${res.sites} sites\n` +
      line('from the released measurements', res.fromMeasurements) +
      line('from the synthetic cohort', res.fromCohort) +
      `${res.passed ? 'PASS: ε_lower ≤ claimed ε' : 'FAIL: ε_lower exceeds the claimed ε'}; written to ${flags.out}\n`,
  );
  return res.passed ? 0 : 1;
}
