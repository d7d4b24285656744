// `fedsynth audit canary`: flags, data and printing; the audit is federation/audits/canary.ts.
import { writeFileSync } from 'node:fs';
import { runCanaryAudit } from '../../federation/audits/canary.ts';
import type { OneRunAuditResult } from '../../privacy/empirical/one-run.ts';
import { intFlag, parseFlags, UsageError } from '../args.ts';
import { auditData } from './data.ts';

export async function runAuditCanary(args: string[]): Promise<number> {
  const { flags } = parseFlags(args, {
    data: 'string',
    sites: 'string',
    patients: 'string',
    canaries: 'string',
    'k-plus': 'string',
    'k-minus': 'string',
    epsilon: 'string',
    delta: 'string',
    seed: 'string',
    cohort: 'string',
    out: 'string',
  });
  if (typeof flags.out !== 'string') throw new UsageError('fedsynth audit canary needs --out FILE.json');
  const epsilon = flags.epsilon === undefined ? 1 : Number(flags.epsilon);
  const delta = flags.delta === undefined ? 1e-9 : Number(flags.delta);
  if (!(epsilon > 0) || !(delta > 0 && delta < 1)) throw new UsageError('--epsilon must be > 0 and --delta in (0, 1)');
  const canaries = intFlag(flags, 'canaries', 200, 4, 5000);
  const data = await auditData({
    data: typeof flags.data === 'string' ? flags.data : undefined,
    sites: intFlag(flags, 'sites', 3, 1, 26),
    patients: intFlag(flags, 'patients', 400, 10, 1_000_000),
    seed: intFlag(flags, 'seed', 1, 0, 2 ** 31),
  });
  const res = await runCanaryAudit(data, {
    canaries,
    kPlus: flags['k-plus'] === undefined ? undefined : intFlag(flags, 'k-plus', 0, 0, canaries),
    kMinus: flags['k-minus'] === undefined ? undefined : intFlag(flags, 'k-minus', 0, 0, canaries),
    epsilon,
    delta,
    seed: intFlag(flags, 'seed', 1, 0, 2 ** 31),
    cohortRows: intFlag(flags, 'cohort', 20_000, 0, 10_000_000),
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
