// The fedsynth command line. Each command lives in its own module; this only dispatches.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { groupHelp, HelpRequest, UsageError, usageMessage } from './args.ts';
import { StoreLockedError } from '../coordinator/store/store-lock.ts';
import { ConfigError } from './config-file.ts';

export const COMMANDS = [
  ['provision', 'create a federation CA and startup kits (provision add-site NAME adds one site)'],
  ['simulate', 'write simulated hospital sites (FHIR, DICOM, VCF, notes) with a ground truth'],
  ['coordinator', 'run the coordinator: --config coordinator.yaml'],
  ['agent', "run a site agent: --config site.yaml (agent inspect: check the site's data locally)"],
  ['demo', 'a local federation end to end'],
  ['cohort', 'a new cohort from a fitted model (cohort request|status|download: from a running service)'],
  ['serve', 'the coordinator as a service (gRPC for agents, HTTP API and web page): --config coordinator.yaml'],
  ['token', 'API keys for the HTTP API: token create|list|revoke'],
  ['study', 'studies on a running service: study request|status|approve|list'],
  ['bench', 'benchmarks: bench utility'],
  ['audit', 'privacy audit: audit export|verify|report|canary|mia'],
] as const;

export const USAGE = groupHelp('fedsynth', 'Federated, privacy-preserving synthetic patients.', COMMANDS);

const BENCH_USAGE = groupHelp('fedsynth bench', 'Benchmarks that print results measured in the same run.', [
  ['utility', 'federated utility benchmark on a CSV and its domain'],
]);

async function dispatch(command: string | undefined, rest: string[]): Promise<number> {
  switch (command) {
    case 'provision':
      return (await import('./provision.ts')).runProvisionCommand(rest);
    case 'simulate':
      return (await import('./simulate.ts')).runSimulateCommand(rest);
    case 'coordinator':
      return (await import('./commands.ts')).runCoordinatorCommand(rest);
    case 'agent':
      if (rest[0] === 'inspect') return (await import('./inspect.ts')).runInspectCommand(rest.slice(1));
      return (await import('./commands.ts')).runAgentCommand(rest);
    case 'demo':
      return (await import('./demo.ts')).runDemoCommand(rest);
    case 'cohort':
      if (['request', 'status', 'download'].includes(rest[0])) return (await import('./cohort-client.ts')).runCohortClientCommand(rest);
      return (await import('./cohort.ts')).runCohortCommand(rest);
    case 'serve':
      return (await import('./serve.ts')).runServeCommand(rest);
    case 'token':
      return (await import('./token.ts')).runTokenCommand(rest);
    case 'study':
      return (await import('./study.ts')).runStudyCommand(rest);
    case 'bench':
      if (rest[0] === 'utility') return (await import('./bench-utility/index.ts')).runBenchUtilityCommand(rest.slice(1));
      if (rest[0] === undefined || rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') throw new HelpRequest(BENCH_USAGE);
      throw new UsageError(`unknown benchmark ${JSON.stringify(rest[0])} (known: utility)`, 'fedsynth bench');
    case 'audit':
      return (await import('./audit/index.ts')).runAuditCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      throw new HelpRequest(USAGE);
    case undefined:
      throw new UsageError(`needs a command (${COMMANDS.map(([c]) => c).join(', ')})`, 'fedsynth');
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)} (known: ${COMMANDS.map(([c]) => c).join(', ')})`, 'fedsynth');
  }
}

/** Runs one command line; returns the exit code (0 ok, 1 failure, 2 usage or config error). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    return await dispatch(command, rest);
  } catch (err) {
    if (err instanceof HelpRequest) {
      process.stdout.write(err.text);
      return 0;
    }
    if (err instanceof UsageError) {
      process.stderr.write(usageMessage(err, `fedsynth ${command ?? ''}`.trim()));
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`fedsynth ${command ?? ''}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof StoreLockedError) {
      process.stderr.write(`fedsynth ${command ?? ''}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`fedsynth ${command ?? ''}: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

/**
 * Under cli/bin.mjs: when the wrapper dies (even by SIGKILL, which it cannot forward), its IPC
 * channel closes; this process then stops as if sent SIGTERM, so no coordinator or agent is left
 * running without the process its supervisor knows about.
 */
function stopWithWrapper(): void {
  if (process.env.FEDSYNTH_WRAPPER_IPC !== '1' || !process.channel) return;
  // The channel must not keep a finished command alive.
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

// Run only as the entry point; compare real paths so a symlinked install still runs.
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  stopWithWrapper();
  process.exitCode = await main(process.argv.slice(2));
}
