// `fedsynth audit mia`: flags, the sites' ledgers and printing. The audit is
// federation/audits/mia.ts; each site's histogram answer is site-agent/dcr.ts, charged to a
// ledger per site (one folder per site under --state, a temp folder by default).
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
import { command, parseArgs } from '../args.ts';
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
    'Membership-inference audit: attacks the released histograms and the synthetic cohort with held-out\nmembers and reports each attack against the bound the claimed ε allows.',
  flags: {
    ...AUDIT_RUN_FLAGS,
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
