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
import { intFlag, parseFlags, UsageError } from '../args.ts';
import { auditData } from './data.ts';

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

export async function runAuditMia(args: string[]): Promise<number> {
  const { flags } = parseFlags(args, {
    data: 'string',
    sites: 'string',
    patients: 'string',
    epsilon: 'string',
    delta: 'string',
    seed: 'string',
    cohort: 'string',
    bins: 'string',
    state: 'string',
    out: 'string',
  });
  if (typeof flags.out !== 'string') throw new UsageError('fedsynth audit mia needs --out FILE.json');
  const epsilon = flags.epsilon === undefined ? 1 : Number(flags.epsilon);
  const delta = flags.delta === undefined ? 1e-9 : Number(flags.delta);
  if (!(epsilon > 0) || !(delta > 0 && delta < 1)) throw new UsageError('--epsilon must be > 0 and --delta in (0, 1)');
  const seed = intFlag(flags, 'seed', 1, 0, 2 ** 31);
  const data = await auditData({
    data: typeof flags.data === 'string' ? flags.data : undefined,
    sites: intFlag(flags, 'sites', 3, 1, 26),
    patients: intFlag(flags, 'patients', 400, 10, 1_000_000),
    seed,
  });
  const res = await runMiaWithLedgers(data, {
    epsilon,
    delta,
    seed,
    cohortRows: intFlag(flags, 'cohort', 2000, 10, 1_000_000),
    bins: intFlag(flags, 'bins', 8, 2, 64),
    stateDir: typeof flags.state === 'string' ? flags.state : undefined,
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
