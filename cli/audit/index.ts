// `fedsynth audit <export|verify|report|canary|mia>`.
import { groupHelp, HelpRequest, UsageError } from '../args.ts';

export const AUDIT_COMMANDS = [
  ['export', "the federation's signed audit log, for auditors"],
  [
    'verify',
    'chain and signatures of every log, spend recomputed, site and coordinator logs reconciled both ways (--strict: warnings fail)',
  ],
  ['report', 'verify, then an HTML and JSON report with the empirical audits and the threat model'],
  ['canary', 'one-run canary audit: an empirical lower bound on ε'],
  ['mia', 'membership-inference audit of the released histograms and the cohort'],
] as const;

export const AUDIT_USAGE = groupHelp('fedsynth audit', 'Privacy audit of a federation.', AUDIT_COMMANDS);

export async function runAuditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'verify':
      return (await import('./verify.ts')).runAuditVerify(rest);
    case 'export':
      return (await import('./verify.ts')).runAuditExport(rest);
    case 'report':
      return (await import('./report.ts')).runAuditReport(rest);
    case 'canary':
      return (await import('./canary.ts')).runAuditCanary(rest);
    case 'mia':
      return (await import('./mia.ts')).runAuditMia(rest);
    case 'help':
    case '--help':
    case '-h':
      throw new HelpRequest(AUDIT_USAGE);
    case undefined:
      throw new UsageError('needs a command (export, verify, report, canary, mia)', 'fedsynth audit');
    default:
      throw new UsageError(`unknown audit command ${JSON.stringify(sub)} (known: export, verify, report, canary, mia)`, 'fedsynth audit');
  }
}
