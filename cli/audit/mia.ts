// `fedsynth audit mia`: membership inference against a released cohort, with a held-out control
// set. Each site keeps half its patients out of the fit (the control set); the pipeline fits on
// the other half and samples a cohort; then EVERY SITE computes, locally (site-agent/dcr.ts), the
// distance from each of its records to the closest synthetic record and the cohort's density
// around it, and releases only a histogram of those scores over [members | holdout], noised with
// its own discrete Gaussian share and charged to its own ledger. The auditor sums the noisy
// histograms and reports ROC AUC and membership advantage (privacy/empirical/mia.ts).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocColumn, Dataset } from '../../model/domain.ts';
import { Rng } from '../../model/rng.ts';
import { epsilonFromRho } from '../../privacy/dp/accountant.ts';
import { miaFromHistograms, type MiaStats } from '../../privacy/empirical/mia.ts';
import { rational } from '../../privacy/dp/rational.ts';
import { noisedScoreHistogram, scoreTaskId, type MiaScoreKind } from '../../site-agent/dcr.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { budgetGuard, parsePolicy } from '../../site-agent/policy.ts';
import { command, parseArgs } from '../args.ts';
import { auditData, type AuditData } from './data.ts';
import { runFederatedPipeline } from './pipeline.ts';

export interface MiaAuditOptions {
  epsilon: number;
  delta: number;
  seed: number;
  cohortRows?: number;
  bins?: number;
  /** σ² of each site's noise share on the score histograms (exact rational num/den). */
  sigmaSite2?: { num: bigint; den: bigint };
  /** Site ledgers live here (one folder per site); a temp folder by default. */
  stateDir?: string;
  /** The sites' policy for the histogram charges (default: ε 10 at δ 1e-6). */
  policy?: Record<string, unknown>;
  unsafeDisableNoiseForAudit?: boolean;
}

export interface MiaAuditResult {
  audit: 'membership inference (DCR and density), site-computed noised histograms';
  claimedEpsilon: number;
  delta: number;
  data: string;
  sites: number;
  members: number;
  holdout: number;
  cohortRows: number;
  bins: number;
  histogramSigmaSite: number;
  attacks: Record<MiaScoreKind, MiaStats & { rhoPerSite: number; histogram: { members: number[]; holdout: number[] } }>;
  spend: Record<string, { rho: number; epsilon: number; charges: number }>;
}

function split(data: Dataset, rng: Rng): [Dataset, Dataset] {
  const idx = rng.shuffle(Array.from({ length: data.rows }, (_, i) => i));
  const half = Math.floor(data.rows / 2);
  const take = (rows: number[]) =>
    new Dataset(
      data.domain,
      data.columns.map((c, j) => {
        const col = allocColumn(data.domain.sizes[j], rows.length);
        rows.forEach((r, i) => (col[i] = c[r]));
        return col;
      }),
      rows.length,
    );
  return [take(idx.slice(0, half)), take(idx.slice(half))];
}

export function runMiaAudit(data: AuditData, opts: MiaAuditOptions): MiaAuditResult {
  // Each site keeps a random half of its patients out of the fit: the control set.
  const parts = data.sites.map((s, k) => {
    const [members, holdout] = split(s.data, new Rng(`mia-${opts.seed}-${k}`));
    return { id: s.id, members, holdout };
  });
  const cohortRows = opts.cohortRows ?? 2000;
  const run = runFederatedPipeline(
    parts.map((p) => p.members),
    {
      epsilon: opts.epsilon,
      delta: opts.delta,
      seed: opts.seed,
      cohortRows,
      unsafeDisableNoiseForAudit: opts.unsafeDisableNoiseForAudit,
    },
  );
  const cohort = run.cohort!;
  const bins = opts.bins ?? 8;
  const sigmaSite2 = opts.sigmaSite2 ?? rational(4n, 1n);
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'fedsynth-mia-'));
  const policy = parsePolicy({ epsilon: 10, delta: 1e-6, minQuorum: 1, minThreshold: 1, ...(opts.policy ?? {}) });
  const federationId = 'mia-audit';
  const attacks = {} as MiaAuditResult['attacks'];
  const spend: MiaAuditResult['spend'] = {};
  try {
    const ledgers = parts.map((p) =>
      openLedger(join(stateDir, p.id), {
        audit: {
          party: p.id,
          privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
            .privateKey.export({ type: 'pkcs8', format: 'pem' })
            .toString(),
        },
        guard: budgetGuard(policy),
      }),
    );
    try {
      for (const kind of ['dcr', 'density'] as const) {
        const roundId = `mia-${kind}-${opts.seed}`;
        const total = new Float64Array(2 * bins);
        let rho = 0;
        parts.forEach((p, k) => {
          const task = {
            federationId,
            roundId,
            taskId: scoreTaskId(federationId, roundId, kind) + `-${p.id}`,
            kind,
            bins,
            sigmaSite2,
            quorum: parts.length,
          };
          const ans = noisedScoreHistogram(ledgers[k], p.members, p.holdout, cohort, task);
          rho = ans.rho;
          ans.values.forEach((v, i) => (total[i] += Number(v)));
        });
        const members = Array.from(total.slice(0, bins));
        const holdout = Array.from(total.slice(bins));
        attacks[kind] = { ...miaFromHistograms(members, holdout, kind === 'density'), rhoPerSite: rho, histogram: { members, holdout } };
      }
      parts.forEach((p, k) => {
        const r = ledgers[k].totalRho();
        spend[p.id] = { rho: r, epsilon: epsilonFromRho(r, policy.delta), charges: ledgers[k].records().length };
      });
    } finally {
      for (const l of ledgers) l.close();
    }
  } finally {
    if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
  }
  return {
    audit: 'membership inference (DCR and density), site-computed noised histograms',
    claimedEpsilon: opts.epsilon,
    delta: opts.delta,
    data: data.source,
    sites: parts.length,
    members: parts.reduce((s, p) => s + p.members.rows, 0),
    holdout: parts.reduce((s, p) => s + p.holdout.rows, 0),
    cohortRows,
    bins,
    histogramSigmaSite: Math.sqrt(Number(sigmaSite2.num) / Number(sigmaSite2.den)),
    attacks,
    spend,
  };
}

export const MIA = command({
  command: 'fedsynth audit mia',
  summary:
    'Membership-inference audit: attacks the released histograms and the synthetic cohort with held-out\nmembers and reports each attack against the bound the claimed ε allows.',
  flags: {
    data: { type: 'path', value: 'DIR', help: 'simulated sites to audit (default: simulate --sites/--patients now)' },
    sites: { type: 'int', min: 1, max: 26, default: 3, help: 'sites to simulate' },
    patients: { type: 'int', min: 10, max: 1_000_000, default: 400, help: 'patients per simulated site' },
    epsilon: { type: 'number', min: 0, minExclusive: true, default: 1, help: 'the claimed ε' },
    delta: { type: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, default: 1e-9, help: 'the claimed δ' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 1, help: 'seed of simulation and fit' },
    out: { type: 'path', value: 'FILE.json', required: true, help: 'where the result is written' },
    cohort: { type: 'int', min: 10, max: 1_000_000, default: 2000, help: 'synthetic rows to attack' },
    bins: { type: 'int', min: 2, max: 64, default: 8, help: 'bins of the distance statistics' },
    state: { type: 'path', value: 'DIR', help: "folder for the simulated sites' state (default: a temporary folder, removed after)" },
  },
});

export async function runAuditMia(args: string[]): Promise<number> {
  const { flags } = parseArgs(MIA, args);
  const { epsilon, delta, seed } = flags;
  const data = await auditData({
    data: flags.data,
    sites: flags.sites,
    patients: flags.patients,
    seed,
  });
  const res = runMiaAudit(data, {
    epsilon,
    delta,
    seed,
    cohortRows: flags.cohort,
    bins: flags.bins,
    stateDir: flags.state,
  });
  writeFileSync(flags.out, `${JSON.stringify(res, null, 2)}\n`);
  for (const [k, a] of Object.entries(res.attacks)) {
    process.stdout.write(
      `${k}: AUC ${a.auc.toFixed(3)}, advantage ${a.advantage.toFixed(3)} (${res.members} members vs ${res.holdout} held out; histogram ρ ${a.rhoPerSite.toPrecision(3)} per site)\n`,
    );
  }
  process.stdout.write(`written to ${flags.out}\n`);
  return 0;
}
