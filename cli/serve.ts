// `fedsynth serve --config coordinator.yaml`: the coordinator as a service (coordinator/serve.ts).
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { command, HelpRequest, parseArgs, UsageError } from './args.ts';
import { startService } from '../coordinator/serve.ts';

const HELP = `Usage: fedsynth serve --config coordinator.yaml

Runs the coordinator as a long-running service: gRPC with mTLS for the site agents (listen:) and
the HTTP API and web page for people (http.listen:). Researchers request studies and cohorts,
operators approve studies; create keys with fedsynth token create. Stops on SIGINT/SIGTERM.
`;

const stamp = () => new Date().toISOString().slice(11, 19);

const SERVE = command({
  command: 'fedsynth serve',
  summary: HELP,
  flags: { config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config, with an http: section' } },
});

export async function runServeCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequest(HELP);
  const { flags } = parseArgs(SERVE, args);
  const cfg = parseCoordinatorConfig(flags.config);
  if (!cfg.http) throw new UsageError(`${flags.config} has no http section: add http: { listen: "0.0.0.0:8080" } to serve the API`);
  const service = await startService(cfg, { log: (line) => console.log(`${stamp()} serve: ${line}`) });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log(`${stamp()} serve: stopping (unfinished studies resume at the next start)`);
  await service.close();
  return 0;
}
