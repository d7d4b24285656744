// `fedsynth audit canary --federation`: the one-run canary audit on a real federation on this
// machine. Provisions kits and simulated sites (cli/demo.ts `prepareFederation`); the auditor
// (this process, which can read the simulated sites' data: the attacker knows every real record)
// draws the canaries, their inclusion bits and sites (federation/audits/canary.ts `planCanaries`,
// CSPRNG), writes each site's included rows to `fit.audit.canaries`, and runs the coordinator and
// one agent per site as separate processes over gRPC with mutual TLS, as an audited fit. Each
// site (policy `allowedStatistics: [marginal, canary]`) adds its canary rows to every measure
// answer, charged as any measure round under its own policy and ledger. After the fit the auditor
// reads the released measurements from the coordinator's store and each site's members (its
// stored holdout) and scores the canaries with the offline audit's code (`scoreCanaries`).
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { join } from 'node:path';
import type { FitReport } from '../../coordinator/coordinator.ts';
import { modelMeasurement } from '../../coordinator/he-aggregator.ts';
import { openStore } from '../../coordinator/store/index.ts';
import { planCanaries, scoreCanaries, siteCanaryRows, type CanaryScores } from '../../federation/audits/canary.ts';
import { concatDatasets } from '../../federation/audits/sites.ts';
import type { Dataset } from '../../model/domain.ts';
import type { Measurement } from '../../model/measurement.ts';
import { loadSiteData, type LoadedSiteData } from '../../site-agent/agent.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { fitSplit } from '../../site-agent/audit-tasks.ts';
import { parseSiteConfig } from '../agent-config.ts';
import {
  FederationRunError,
  patchYaml,
  runFederationProcesses,
  withAuditFederation,
  type AuditFederationOptions,
} from './audited-federation.ts';

export interface CanaryFederationOptions extends AuditFederationOptions {
  canaries: number;
  kPlus?: number;
  kMinus?: number;
  /** Fraction of each site's patients the audited fit holds out (the fit's input is the rest). */
  holdout: number;
  log: (line: string) => void;
}

export interface CanaryFederationReport extends CanaryScores {
  audit: 'one-run canary (Steinke, Nasr, Jagielski 2023), real site agents';
  claimedEpsilon: number;
  delta: number;
  data: string;
  sites: number;
  /** Real patients in the fit's input (the members), and those held out. */
  realPatients: number;
  heldOut: number;
  canaries: number;
  /** Included canaries by site: the rows each site's measure tasks carried. */
  includedBySite: Record<string, number>;
  rounds: number;
  /** What each site was charged for the fit (canaries change no charge), from the coordinator's report. */
  spend: FitReport['perSite'];
  work?: string;
}

/** The fit's released noisy measurements, from the coordinator's store (after it exited). */
async function releasedMeasurements(coordinatorConfig: string): Promise<Measurement[]> {
  const o = YAML.parse(readFileSync(coordinatorConfig, 'utf8')) as { federationId: string; storage: { pglite: string } };
  const store = await openStore({ pglite: o.storage.pglite, holder: 'fedsynth audit canary --federation' });
  try {
    return (await store.listMeasurements(o.federationId)).map(modelMeasurement);
  } finally {
    await store.close();
  }
}

/** The site's part of the fit's input: its members, as its stored holdout split them. */
function membersOf(cfg: SiteConfig, data: LoadedSiteData): Dataset {
  const split = fitSplit({ stateDir: cfg.stateDir, federationId: cfg.federationId, ...data }, undefined, false);
  if (!split) throw new Error(`site ${cfg.siteId} stored no holdout: it did not run the audited fit`);
  return split.members;
}

export async function runCanaryOnFederation(opts: CanaryFederationOptions): Promise<CanaryFederationReport> {
  return withAuditFederation(opts, { statistic: 'canary', cohortSize: 0 }, async ({ files, work, outDir }) => {
    const siteIds = Object.keys(files.siteConfigs).sort();
    const siteCfgs = siteIds.map((s) => parseSiteConfig(files.siteConfigs[s]));
    const siteData = await Promise.all(siteCfgs.map((c) => loadSiteData(c)));
    const all = concatDatasets(
      siteData[0].data.domain,
      siteData.map((d) => d.data),
    );
    const plan = planCanaries(all, opts.canaries, siteIds.length, opts.seed);
    const bySite = Object.fromEntries(siteIds.map((s, k) => [s, siteCanaryRows(plan, k).map((r) => Array.from(r))]));
    const canaryFile = join(work, 'canaries.json');
    writeFileSync(canaryFile, `${JSON.stringify(bySite)}\n`);
    patchYaml(files.coordinatorConfig, (o) => {
      (o.fit as Record<string, unknown>).audit = { holdout: opts.holdout, canaries: canaryFile };
    });
    opts.log(
      `audited fit with ${opts.canaries} canaries: ${opts.sites} sites × ${opts.patients} patients, each holding out ${opts.holdout} of them (work folder ${work})`,
    );
    const report = await runFederationProcesses({ ...files, outDir, log: opts.log });
    const missing = siteIds.filter((s) => bySite[s].length > 0 && !report.sitesContributed.includes(s));
    // A site that answered no round added none of its canaries: its "included" bits would be false claims.
    if (missing.length)
      throw new FederationRunError(`site(s) ${missing.join(', ')} contributed to no round: their canaries were never added`);

    const released = await releasedMeasurements(files.coordinatorConfig);
    const members = siteCfgs.map((c, k) => membersOf(c, siteData[k]));
    const real = concatDatasets(all.domain, members);
    const scores = scoreCanaries(real, plan, released, null, opts);
    return {
      audit: 'one-run canary (Steinke, Nasr, Jagielski 2023), real site agents',
      claimedEpsilon: opts.epsilon,
      delta: opts.delta,
      data: `real federation on this machine: ${opts.sites} simulated sites × ${opts.patients} patients, seed ${opts.seed}`,
      sites: opts.sites,
      realPatients: real.rows,
      heldOut: all.rows - real.rows,
      canaries: opts.canaries,
      includedBySite: Object.fromEntries(siteIds.map((s) => [s, bySite[s].length])),
      rounds: report.rounds.length,
      spend: report.perSite,
      ...scores,
      ...(opts.work ? { work } : {}),
    };
  });
}
