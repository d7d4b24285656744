// `fedsynth coordinator` and `fedsynth agent`: load a config file, run, report progress.
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { parseSiteConfig } from './agent-config.ts';
import { command, parseArgs } from './args.ts';
import { startCoordinator, runFitAndCohort } from '../coordinator/coordinator.ts';
import { loadSiteData, SiteAgent } from '../site-agent/agent.ts';
import { AGENT_EXIT_CODES, AGENT_EXIT_HELP, AgentStopError } from '../site-agent/agent-errors.ts';
import { clinicalSourceLabel } from '../site-agent/config.ts';

export const COORDINATOR = command({
  command: 'fedsynth coordinator',
  summary: 'Runs the coordinator: serves the federation, runs the fit and writes the cohort of its config.',
  flags: {
    config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config' },
    serve: { type: 'boolean', help: 'keep serving after the fit (agents can still poll; stop with Ctrl-C)' },
  },
});

export const AGENT = command({
  command: 'fedsynth agent',
  summary: "Runs a site agent: reads the site's data, then dials out to the coordinator and answers its tasks.",
  flags: {
    config: { type: 'path', value: 'site.yaml', required: true, help: 'the site config' },
    'exit-when-done': { type: 'boolean', help: 'exit once the coordinator reports the federation done' },
  },
  notes: [
    'Subcommands: agent inspect (check the site data locally; `fedsynth agent inspect --help`).',
    '',
    'Exit codes: 0 done (or stopped by SIGINT/SIGTERM), 1 unexpected failure, 2 usage or config error,',
    ...Object.entries(AGENT_EXIT_CODES).map(([k, code]) => `  ${code} ${AGENT_EXIT_HELP[k as keyof typeof AGENT_EXIT_CODES]}`),
    'Transient failures (coordinator away, network) are retried with backoff and never exit; a task the',
    'coordinator will no longer take (e.g. its round expired) is dropped and the agent pulls again.',
  ].join('\n'),
});

const stamp = () => new Date().toISOString().slice(11, 19);

export async function runCoordinatorCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(COORDINATOR, args);
  const cfg = parseCoordinatorConfig(flags.config);
  const log = (line: string) => console.log(`${stamp()} coordinator: ${line}`);
  const running = await startCoordinator(cfg, {
    log,
    onProgress: (e) => console.log(`${stamp()} [${e.phase}] ${e.message}`),
  });
  // `on`, not `once`: a terminal's Ctrl-C reaches both cli/bin.mjs and this process, and bin.mjs
  // forwards it too; a second signal must not cut the graceful close short.
  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= running.close().then(() => process.exit(130));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);
  try {
    const report = await runFitAndCohort(cfg, running);
    const sites = Object.entries(report.perSite)
      .map(([s, p]) => `${s} ε=${p.epsilon.toFixed(3)}`)
      .join(', ');
    console.log(`${stamp()} fit done: model ${report.modelId}; spend per site: ${sites} (δ=${report.delta})`);
    if (report.cohort)
      console.log(
        `${stamp()} cohort of ${report.cohort.n} patients written to ${cfg.fit.outDir}/cohort; report ${cfg.fit.outDir}/report.json`,
      );
    // Give polling agents a moment to learn that the federation is done before the port closes.
    await new Promise((r) => setTimeout(r, 1500));
    if (flags.serve) await new Promise(() => undefined);
    return 0;
  } catch (err) {
    console.error(`${stamp()} coordinator: fit failed: ${(err as Error).message}`);
    return 1;
  } finally {
    if (!flags.serve) await running.close();
  }
}

export async function runAgentCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(AGENT, args);
  const cfg = parseSiteConfig(flags.config, { exitWhenDone: flags['exit-when-done'] });
  const log = (line: string) => console.log(`${stamp()} ${cfg.siteId}: ${line}`);
  const site = await loadSiteData(cfg);
  log(
    `read ${site.patients} patients from ${clinicalSourceLabel(cfg.data)}` +
      (site.quarantine.records.length ? ` (${site.quarantine.records.length} quarantined)` : ''),
  );
  try {
    const agent = new SiteAgent(cfg, site, log);
    const stop = () => agent.stop();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', stop);
    await agent.run();
    return 0;
  } catch (err) {
    if (!(err instanceof AgentStopError)) throw err;
    // One line for the operator, and a code a supervisor can act on (documented in --help).
    process.stderr.write(`fedsynth agent: ${cfg.siteId}: ${err.message} (exit ${err.exitCode})\n`);
    return err.exitCode;
  }
}
