// `fedsynth coordinator` and `fedsynth agent`: load a config file, run, report progress.
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { parseSiteConfig } from './agent-config.ts';
import { command, parseArgs } from './args.ts';
import { startCoordinator, runFitAndCohort } from '../coordinator/coordinator.ts';
import { loadSiteData, SiteAgent } from '../site-agent/agent.ts';
import { AGENT_EXIT_CODES, AGENT_EXIT_HELP, AgentStopError } from '../site-agent/agent-errors.ts';
import { clinicalSourceLabel } from '../site-agent/config.ts';
import { createAgentMetrics } from '../ops/metrics.ts';
import { applyOpsFlags, OPS_FLAGS, processLogger } from './ops-flags.ts';

export const COORDINATOR = command({
  command: 'fedsynth coordinator',
  summary: 'Runs the coordinator: serves the federation, runs the fit and writes the cohort of its config.',
  flags: {
    config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config' },
    serve: { type: 'boolean', help: 'keep serving after the fit (agents can still poll; stop with Ctrl-C)' },
    ...OPS_FLAGS,
  },
  notes: 'Logs go to stdout, one JSON object per line unless on a terminal or with --log-format pretty.',
});

export const AGENT = command({
  command: 'fedsynth agent',
  summary: "Runs a site agent: reads the site's data, then dials out to the coordinator and answers its tasks.",
  flags: {
    config: { type: 'path', value: 'site.yaml', required: true, help: 'the site config' },
    'exit-when-done': { type: 'boolean', help: 'exit once the coordinator reports the federation done' },
    ...OPS_FLAGS,
  },
  notes: [
    'Subcommands: agent inspect (check the site data locally; `fedsynth agent inspect --help`).',
    'The agent opens no port unless --metrics-port or metrics.listen asks for one (then on 127.0.0.1 unless metrics.listen names a host).',
    '',
    'Exit codes: 0 done (or stopped by SIGINT/SIGTERM), 1 unexpected failure, 2 usage or config error,',
    ...Object.entries(AGENT_EXIT_CODES).map(([k, code]) => `  ${code} ${AGENT_EXIT_HELP[k as keyof typeof AGENT_EXIT_CODES]}`),
    'Transient failures (coordinator away, network) are retried with backoff and never exit; a task the',
    'coordinator will no longer take (e.g. its round expired) is dropped and the agent pulls again.',
  ].join('\n'),
});

export async function runCoordinatorCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(COORDINATOR, args);
  const cfg = applyOpsFlags(parseCoordinatorConfig(flags.config), flags, '0.0.0.0');
  const { logger, log } = processLogger('coordinator', flags['log-format'], { federation: cfg.federationId });
  const running = await startCoordinator(cfg, {
    log,
    onProgress: (e) => logger.info({ phase: e.phase }, e.message),
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
    logger.info({ modelId: report.modelId }, `fit done: model ${report.modelId}; spend per site: ${sites} (δ=${report.delta})`);
    if (report.cohort)
      logger.info(`cohort of ${report.cohort.n} patients written to ${cfg.fit.outDir}/cohort; report ${cfg.fit.outDir}/report.json`);
    // Give polling agents a moment (1.5 s since the fit ended) to learn that the federation is
    // done before the port closes; writing the cohort usually took longer than that already.
    const sinceDoneMs = performance.now() - (running.engine.doneAt ?? performance.now());
    if (sinceDoneMs < 1500) await new Promise((r) => setTimeout(r, 1500 - sinceDoneMs));
    if (flags.serve) await new Promise(() => undefined);
    return 0;
  } catch (err) {
    logger.error(`fit failed: ${(err as Error).message}`);
    return 1;
  } finally {
    if (!flags.serve) await running.close();
  }
}

export async function runAgentCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(AGENT, args);
  const cfg = applyOpsFlags(parseSiteConfig(flags.config, { exitWhenDone: flags['exit-when-done'] }), flags, '127.0.0.1');
  const { log } = processLogger('agent', flags['log-format'], { site: cfg.siteId });
  const loadStarted = performance.now();
  const site = await loadSiteData(cfg);
  const cpu = process.cpuUsage();
  log(
    `read ${site.patients} patients from ${clinicalSourceLabel(cfg.data)}` +
      (site.quarantine.records.length ? ` (${site.quarantine.records.length} quarantined)` : '') +
      ` in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s (process cpu so far ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, up ${process.uptime().toFixed(1)} s)`,
  );
  try {
    const agent = new SiteAgent(cfg, site, log, cfg.metrics ? { metrics: createAgentMetrics() } : {});
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
