// The fedsynth command line. Each command lives in its own module; this only dispatches.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.ts';
import { ConfigError } from './config-file.ts';

const USAGE = `Usage: fedsynth <command> [flags]

Commands:
  provision     create a federation CA and startup kits (provision add-site NAME adds one)
  simulate      write simulated hospital sites (FHIR NDJSON) with a ground truth
  coordinator   run the coordinator: --config coordinator.yaml
  agent         run a site agent: --config site.yaml [--exit-when-done]
                agent inspect --config site.yaml [--json]: check the site's data locally
  demo          a local federation end to end: [--out DIR] [--sites N] [--patients N]
  cohort        a new cohort from a fitted model: --config coordinator.yaml --n N [--where F] [--seed S] --out DIR
                cohort request|status|download --url URL: a cohort from a running service (fedsynth cohort request --help)
  serve         the coordinator as a service (gRPC for agents, HTTP API and web page): --config coordinator.yaml
  token         API keys for the HTTP API: token create --config coordinator.yaml --role R --name N
  study         studies on a running service: study request|status|approve|list --url URL (fedsynth study --help)
  bench         benchmarks: bench utility --data FILE.csv --domain FILE.json ...
  audit         privacy audit: audit export|verify|report|canary|mia (fedsynth audit help)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'provision':
        return await (await import('./provision.ts')).runProvisionCommand(rest);
      case 'simulate':
        return await (await import('../simulator/index.ts')).runSimulateCommand(rest);
      case 'coordinator':
        return await (await import('./commands.ts')).runCoordinatorCommand(rest);
      case 'agent':
        if (rest[0] === 'inspect') return await (await import('./inspect.ts')).runInspectCommand(rest.slice(1));
        return await (await import('./commands.ts')).runAgentCommand(rest);
      case 'demo':
        return await (await import('./demo.ts')).runDemoCommand(rest);
      case 'serve':
        return await (await import('./serve.ts')).runServeCommand(rest);
      case 'token':
        return await (await import('./token.ts')).runTokenCommand(rest);
      case 'study':
        return await (await import('./study.ts')).runStudyCommand(rest);
      case 'cohort':
        if (['request', 'status', 'download'].includes(rest[0]))
          return await (await import('./cohort-client.ts')).runCohortClientCommand(rest);
        return await (await import('./cohort.ts')).runCohortCommand(rest);
      case 'bench':
        if (rest[0] === 'utility') return await (await import('./bench-utility/index.ts')).runBenchUtilityCommand(rest.slice(1));
        throw new UsageError(`unknown benchmark ${JSON.stringify(rest[0] ?? '')} (known: utility)`);
      case 'audit':
        return await (await import('./audit/index.ts')).runAuditCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`fedsynth ${command ?? ''}: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE);
      return 2;
    }
    process.stderr.write(`fedsynth ${command ?? ''}: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

// Run only as the entry point; compare real paths so a symlinked install still runs.
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
