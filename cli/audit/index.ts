// `fedsynth audit <verify|export|report|canary|mia>`.
import { UsageError } from '../args.ts';

export const AUDIT_USAGE = `Usage: fedsynth audit <command> [flags]
  export  --config coordinator.yaml --out FILE.jsonl           the federation's signed audit log
  verify  --log FILE[,FILE...] --ca ca.pem [--certs DIR] [--delta D] [--json] [--strict]
          chain + signatures of every log, spend recomputed, site logs reconciled with the coordinator's
          both ways; --strict also fails on warnings (e.g. a site's log not given)
  report  --log FILE[,FILE...] --ca ca.pem [--certs DIR] --out DIR [--canary FILE.json] [--mia FILE.json]
  canary  [--data DIR | --patients N] [--sites N] [--canaries M] [--epsilon E] --out FILE.json
  mia     [--data DIR | --patients N] [--sites N] [--epsilon E] --out FILE.json
`;

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
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(AUDIT_USAGE);
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown audit command ${JSON.stringify(sub)} (known: export, verify, report, canary, mia)`);
  }
}
