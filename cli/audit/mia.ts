// `fedsynth audit mia`: flags, the sites' ledgers and printing. With --federation the audit runs
// on a real federation (cli/audit/mia-federation.ts: coordinator and agents as processes, each
// site answering `mia-histogram` tasks under its own policy and ledger). Without it, offline: the
// audit is federation/audits/mia.ts in this process, each site's histogram answered by the same
// site function (site-agent/dcr.ts `noisedScoreHistogram`), charged to a ledger per site (one
// folder per site under --state, a temp folder by default) under the policy given here.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMiaAudit, type MiaAuditOptions, type MiaAuditResult } from '../../federation/audits/mia.ts';
import type { AuditSites } from '../../federation/audits/sites.ts';
import { epsilonFromRho } from '../../privacy/dp/accountant.ts';
import { noisedScoreHistogram, scoreTaskId } from '../../site-agent/dcr.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { budgetGuard, parsePolicy } from '../../site-agent/policy.ts';
import { command, parseArgs, UsageError } from '../args.ts';
import { runMiaOnFederation } from './mia-federation.ts';
import { failedRunExits } from './audited-federation.ts';
import { AUDIT_RUN_FLAGS, auditData } from './data.ts';

export interface MiaCommandOptions extends MiaAuditOptions {
  /** Site ledgers live here (one folder per site); a temp folder by default. */
  stateDir?: string;
  /** The sites' policy for the histogram charges (default: ε 10 at δ 1e-6). */
  policy?: Record<string, unknown>;
}

export type MiaReport = MiaAuditResult & { spend: Record<string, { rho: number; epsilon: number; charges: number }> };

/** The MIA audit with every site's histogram charged to its own ledger and signed audit log. */
export async function runMiaWithLedgers(data: AuditSites, opts: MiaCommandOptions): Promise<MiaReport> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'fedsynth-mia-'));
  const policy = parsePolicy({ epsilon: 10, delta: 1e-6, minQuorum: 1, minThreshold: 1, ...(opts.policy ?? {}) });
  const federationId = 'mia-audit';
  try {
    const ledgers = new Map(
      data.sites.map((s) => [
        s.id,
        openLedger(join(stateDir, s.id), {
          audit: {
            party: s.id,
            privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
              .privateKey.export({ type: 'pkcs8', format: 'pem' })
              .toString(),
          },
          guard: budgetGuard(policy),
        }),
      ]),
    );
    try {
      const res = await runMiaAudit(data, opts, (site, cohort, req) =>
        noisedScoreHistogram(ledgers.get(site.id)!, site.members, site.holdout, cohort, {
          ...req,
          federationId,
          taskId: scoreTaskId(federationId, req.roundId, req.kind) + `-${site.id}`,
        }),
      );
      const spend: MiaReport['spend'] = {};
      for (const [id, l] of ledgers) {
        const rho = l.totalRho();
        spend[id] = { rho, epsilon: epsilonFromRho(rho, policy.delta), charges: l.records().length };
      }
      return { ...res, spend };
    } finally {
      for (const l of ledgers.values()) l.close();
    }
  } finally {
    if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
  }
}

export const MIA = command({
  command: 'fedsynth audit mia',
  summary:
    "Membership-inference audit: each site scores its members and a held-out control set against the synthetic\ncohort and releases a noised histogram of the scores; the auditor reports ROC AUC and membership advantage.\nWith --federation: an audited fit on a real federation, each site's histogram charged at single-party ρ to its\nown ledger under its own policy (refusals named). Without it: offline, in this process, on ledgers under --state.",
  flags: {
    ...AUDIT_RUN_FLAGS,
    cohort: { type: 'int', min: 10, max: 1_000_000, default: 2000, help: 'synthetic rows to attack' },
    bins: { type: 'int', min: 2, max: 64, default: 8, help: 'bins of the distance statistics' },
    state: {
      type: 'path',
      value: 'DIR',
      help: "offline: folder for the simulated sites' state (default: a temporary folder, removed after)",
    },
    federation: {
      type: 'boolean',
      help: 'a real federation on this machine (processes, gRPC with mTLS): sites answer under their own policy and ledger',
    },
    holdout: {
      type: 'number',
      min: 0.01,
      max: 0.99,
      default: 0.5,
      help: "--federation: fraction of each site's patients held out of the fit",
    },
    sigma2: { type: 'string', value: 'N[/D]', default: '64', help: "--federation: σ² of each site's histogram noise per cell (exact)" },
    'site-epsilon': { type: 'number', min: 0, minExclusive: true, default: 2, help: "--federation: each site's total ε cap (its policy)" },
    work: { type: 'path', value: 'DIR', help: '--federation: keep kits, state, ledgers and audit logs here (default: a temporary folder)' },
  },
});

type MiaFlags = ReturnType<typeof parseArgs<typeof MIA.flags>>['flags'];

export async function runAuditMia(args: string[]): Promise<number> {
  const { flags } = parseArgs(MIA, args);
  const { epsilon, delta, seed } = flags;
  if (flags.federation) return runOnFederation(flags);
  const data = await auditData({
    data: flags.data,
    sites: flags.sites,
    patients: flags.patients,
    seed,
  });
  const res = await runMiaWithLedgers(data, {
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

async function runOnFederation(flags: MiaFlags): Promise<number> {
  if (flags.data) throw new UsageError('--data is offline only: --federation simulates its sites', 'fedsynth audit mia');
  const res = await failedRunExits('fedsynth audit mia', () =>
    runMiaOnFederation({
      sites: flags.sites,
      patients: flags.patients,
      epsilon: flags.epsilon,
      delta: flags.delta,
      seed: flags.seed,
      cohortRows: flags.cohort,
      bins: flags.bins,
      holdout: flags.holdout,
      sigma2: flags.sigma2,
      siteEpsilon: flags['site-epsilon'],
      work: flags.work,
      log: (line) => process.stderr.write(`${line}\n`),
    }),
  );
  if (res === 1) return 1;
  writeFileSync(flags.out, `${JSON.stringify(res, null, 2)}\n`);
  let failed = false;
  for (const [score, r] of Object.entries(res.federation.rounds)) {
    const stats = r.stats ? `AUC ${r.stats.auc.toFixed(3)}, advantage ${r.stats.advantage.toFixed(3)}` : 'no histogram';
    process.stdout.write(`${score}: ${stats} (${r.sites.length} site(s) charged ρ ${r.rhoPerSite.toPrecision(3)} each)\n`);
    for (const x of r.refused) process.stdout.write(`  ${x.site} refused: ${x.reason}\n`);
    for (const s of r.missing) process.stdout.write(`  ${s} did not answer\n`);
    failed ||= r.state === 'failed';
  }
  process.stdout.write(`written to ${flags.out}\n`);
  return failed ? 1 : 0;
}
