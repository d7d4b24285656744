// `fedsynth audit mia --federation`: the membership-inference audit on a real federation on this
// machine. Provisions kits and simulated sites (cli/demo.ts `prepareFederation`), runs the
// coordinator and one agent per site as separate processes over gRPC with mutual TLS, as an
// audited fit (`fit.audit` in coordinator.yaml): every site holds out part of its patients from
// every measure round, then answers one `mia-histogram` round per score under its own policy and
// ledger (`allowedStatistics: [marginal, mia-histogram]`), charged at single-party ρ.
import type { FitReport } from '../../coordinator/coordinator.ts';
import type { MiaAuditReport } from '../../coordinator/audit-rounds.ts';
import { epsilonFromRho } from '../../privacy/dp/accountant.ts';
import {
  FederationRunError,
  patchYaml,
  runFederationProcesses,
  withAuditFederation,
  type AuditFederationOptions,
} from './audited-federation.ts';
import type { MiaReport } from './mia.ts';

export interface MiaFederationOptions extends AuditFederationOptions {
  cohortRows: number;
  bins: number;
  holdout: number;
  /** σ² of each site's histogram noise, "num/den" or an integer. */
  sigma2: string;
  log: (line: string) => void;
}

export type MiaFederationReport = MiaReport & { federation: MiaAuditReport; work?: string };

export async function runMiaOnFederation(opts: MiaFederationOptions): Promise<MiaFederationReport> {
  return withAuditFederation(opts, { statistic: 'mia-histogram', cohortSize: opts.cohortRows }, async ({ files, work, outDir }) => {
    patchYaml(files.coordinatorConfig, (o) => {
      const fit = o.fit as Record<string, unknown>;
      fit.audit = { holdout: opts.holdout, mia: { bins: opts.bins, sigma2: opts.sigma2, cohortRows: opts.cohortRows } };
    });
    opts.log(
      `audited fit: ${opts.sites} sites × ${opts.patients} patients, each holding out ${opts.holdout} of them (work folder ${work})`,
    );
    const report = await runFederationProcesses({ ...files, outDir, log: opts.log });
    if (!report.mia) throw new FederationRunError('the coordinator ran no membership-inference rounds');
    return toMiaReport(report, opts, opts.work ? work : undefined);
  });
}

/** The federation's result in the shape `fedsynth audit report --mia` reads, plus every round's refusals. */
function toMiaReport(report: FitReport, opts: MiaFederationOptions, work: string | undefined): MiaFederationReport {
  const mia = report.mia!;
  const attacks = {} as MiaReport['attacks'];
  for (const [score, r] of Object.entries(mia.rounds)) {
    const empty = { auc: Number.NaN, advantage: Number.NaN, members: 0, holdout: 0 };
    attacks[score as keyof MiaReport['attacks']] = {
      ...(r.stats ?? empty),
      rhoPerSite: r.rhoPerSite,
      histogram: r.histogram ?? { members: [], holdout: [] },
    };
  }
  const spend: MiaReport['spend'] = {};
  for (const [site, p] of Object.entries(report.perSite)) spend[site] = { rho: p.rho, epsilon: p.epsilon, charges: p.rounds };
  for (const r of Object.values(mia.rounds))
    for (const site of r.sites) {
      const s = (spend[site] ??= { rho: 0, epsilon: 0, charges: 0 });
      s.rho += r.rhoPerSite;
      s.charges += 1;
      s.epsilon = epsilonFromRho(s.rho, report.delta);
    }
  const dcr = mia.rounds.dcr.stats;
  return {
    audit: 'membership inference (DCR and density), site-computed noised histograms',
    claimedEpsilon: opts.epsilon,
    delta: opts.delta,
    data: `real federation on this machine: ${opts.sites} simulated sites × ${opts.patients} patients, seed ${opts.seed}`,
    sites: opts.sites,
    members: dcr?.members ?? 0,
    holdout: dcr?.holdout ?? 0,
    cohortRows: mia.cohortRows,
    bins: mia.bins,
    histogramSigmaSite: mia.sigmaSite,
    attacks,
    spend,
    federation: mia,
    ...(work ? { work } : {}),
  };
}
