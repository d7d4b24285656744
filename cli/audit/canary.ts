// `fedsynth audit canary`: flags, data and printing; the audit is federation/audits/canary.ts.
import { writeFileSync } from 'node:fs';
import { runCanaryAudit } from '../../federation/audits/canary.ts';
import type { OneRunAuditResult } from '../../privacy/empirical/one-run.ts';
import { command, parseArgs, UsageError } from '../args.ts';
import { AUDIT_RUN_FLAGS, auditData } from './data.ts';

export const CANARY = command({
  command: 'fedsynth audit canary',
  summary:
    'One-run canary audit: plants canaries, runs the fit, and bounds ε from below from the released\nmeasurements and the synthetic cohort (95%). Exit 0 when the bound stays below the claimed ε.',
  flags: {
    ...AUDIT_RUN_FLAGS,
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
