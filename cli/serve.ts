// `fedsynth serve --config coordinator.yaml`: the coordinator as a service (coordinator/serve.ts).
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { command, parseArgs, UsageError } from './args.ts';
import { applyOpsFlags, OPS_FLAGS, processLogger } from './ops-flags.ts';
import { startService } from '../coordinator/serve.ts';

const HELP = `Usage: fedsynth serve --config coordinator.yaml

Runs the coordinator as a long-running service: gRPC with mTLS for the site agents (listen:) and
the HTTP API and web page for people (http.listen:). Researchers request studies and cohorts,
operators approve studies; create keys with fedsynth token create. Stops on SIGINT/SIGTERM.
`;

export const SERVE = command({
  command: 'fedsynth serve',
  summary: HELP.replace(/^Usage: .*\n\n/, '').trimEnd(),
  flags: {
    config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config, with an http: section' },
    ...OPS_FLAGS,
  },
  notes: 'Kubernetes probes: /healthz and /readyz on the metrics port (--metrics-port or metrics.listen).',
});

export async function runServeCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(SERVE, args);
  const cfg = applyOpsFlags(parseCoordinatorConfig(flags.config), flags, '0.0.0.0');
  if (!cfg.http) throw new UsageError(`${flags.config} has no http section: add http: { listen: "0.0.0.0:8080" } to serve the API`);
  const { logger, log } = processLogger('serve', flags['log-format'], { federation: cfg.federationId });
  const service = await startService(cfg, { log });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('stopping (unfinished studies resume at the next start)');
  await service.close();
  return 0;
}
