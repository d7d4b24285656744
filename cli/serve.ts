// `fedsynth serve --config coordinator.yaml`: the coordinator as a service (coordinator/serve.ts).
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { parseFlags, UsageError } from './args.ts';
import { startService } from '../coordinator/serve.ts';

const HELP = `Usage: fedsynth serve --config coordinator.yaml

Runs the coordinator as a long-running service: gRPC with mTLS for the site agents (listen:) and
the HTTP API and web page for people (http.listen:). Researchers request studies and cohorts,
operators approve studies; create keys with fedsynth token create. Stops on SIGINT/SIGTERM.
`;

const stamp = () => new Date().toISOString().slice(11, 19);

export async function runServeCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const { flags } = parseFlags(args, { config: 'string' });
  if (typeof flags.config !== 'string') throw new UsageError('fedsynth serve needs --config coordinator.yaml');
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
