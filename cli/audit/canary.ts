// `fedsynth audit canary`: flags, data and printing. Offline, the audit is
// federation/audits/canary.ts in this process (the in-process aggregator, no ledgers); with
// --federation, cli/audit/canary-federation.ts (real coordinator and agents, each site adding its
// canaries to its measure answers under its own policy and ledger). Both score with `scoreCanaries`.
import { writeFileSync } from 'node:fs';
import { runCanaryAudit } from '../../federation/audits/canary.ts';
import type { OneRunAuditResult } from '../../privacy/empirical/one-run.ts';
import { command, parseArgs, UsageError } from '../args.ts';
import { AUDIT_RUN_FLAGS, auditData } from './data.ts';
import { runCanaryOnFederation } from './canary-federation.ts';
import { failedRunExits } from './audited-federation.ts';

export const CANARY = command({
  command: 'fedsynth audit canary',
  summary:
    'One-run canary audit: plants canaries, runs the fit, and bounds ε from below from the released\nmeasurements and the synthetic cohort (95%). Exit 0 when the bound stays below the claimed ε.\n' +
    "Offline (default): in this process, nothing charged to any ledger. With --federation: an audited fit on a\nreal federation (processes, gRPC with mTLS); each site adds the canaries included there to its measure\nanswers and is charged for the fit's measure rounds exactly as without canaries (the rows change no\nsensitivity), under its own policy and ledger; no extra round, no extra charge. Measurements only.",
  flags: {
    ...AUDIT_RUN_FLAGS,
    canaries: { type: 'int', min: 4, max: 5000, default: 200, help: 'canaries planted' },
    'k-plus': { type: 'int', min: 0, max: 5000, help: 'guesses of "included" (default: chosen by the audit)' },
    'k-minus': { type: 'int', min: 0, max: 5000, help: 'guesses of "excluded" (default: chosen by the audit)' },
    cohort: { type: 'int', min: 0, max: 10_000_000, default: 20_000, help: 'offline: synthetic rows to audit (0: measurements only)' },
    federation: {
      type: 'boolean',
      help: 'a real federation on this machine (processes, gRPC with mTLS): sites add their canaries under their own policy and ledger',
    },
    holdout: {
      type: 'number',
      min: 0.01,
      max: 0.99,
      default: 0.05,
      help: "--federation: fraction of each site's patients the audited fit holds out",
    },
    'site-epsilon': { type: 'number', min: 0, minExclusive: true, default: 2, help: "--federation: each site's total ε cap (its policy)" },
    work: { type: 'path', value: 'DIR', help: '--federation: keep kits, state, ledgers and audit logs here (default: a temporary folder)' },
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
  if (flags.federation) return runOnFederation(flags);
  const data = await auditData({
    data: flags.data,
    sites: flags.sites,
    patients: flags.patients,
    seed: flags.seed,
  });
  const res = await runCanaryAudit(data, {
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

type CanaryFlags = ReturnType<typeof parseArgs<typeof CANARY.flags>>['flags'];

async function runOnFederation(flags: CanaryFlags): Promise<number> {
  if (flags.data) throw new UsageError('--data is offline only: --federation simulates its sites', CANARY.command);
  const res = await failedRunExits(CANARY.command, () =>
    runCanaryOnFederation({
      sites: flags.sites,
      patients: flags.patients,
      epsilon: flags.epsilon,
      delta: flags.delta,
      seed: flags.seed,
      canaries: flags.canaries,
      kPlus: flags['k-plus'],
      kMinus: flags['k-minus'],
      holdout: flags.holdout,
      siteEpsilon: flags['site-epsilon'],
      work: flags.work,
      log: (line) => process.stderr.write(`${line}\n`),
    }),
  );
  if (res === 1) return 1;
  writeFileSync(flags.out, `${JSON.stringify(res, null, 2)}\n`);
  const r = res.fromMeasurements;
  const included = Object.entries(res.includedBySite)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  process.stdout.write(
    `canary audit on a real federation, claimed ε ${res.claimedEpsilon} (δ ${res.delta}), canaries included: ${included} of ${res.canaries}\n` +
      `from the released measurements: ${r.v}/${r.r} correct guesses → ε_lower ${r.epsilonLower.toFixed(3)} (95%)\n` +
      Object.entries(res.spend)
        .map(([s, p]) => `  ${s} charged ρ ${p.rho.toPrecision(4)} (ε ${p.epsilon.toPrecision(4)}) over ${p.rounds} round(s)\n`)
        .join('') +
      `${res.passed ? 'PASS: ε_lower ≤ claimed ε' : 'FAIL: ε_lower exceeds the claimed ε'}; written to ${flags.out}\n`,
  );
  return res.passed ? 0 : 1;
}
