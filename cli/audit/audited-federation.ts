// The local federation both `audit mia --federation` and `audit canary --federation` run: the
// demo's kits and configs (cli/demo.ts `prepareFederation`), a site policy that allows the audit's
// statistic, then the coordinator and one agent per site as separate processes over gRPC with
// mutual TLS, exactly as in production.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { FitReport } from '../../coordinator/coordinator.ts';
import { exited, prepareFederation, spawnFedsynth, type FederationFiles } from '../demo.ts';

/** What both audits ask of their federation. */
export interface AuditFederationOptions {
  sites: number;
  patients: number;
  epsilon: number;
  delta: number;
  seed: number;
  /** Each site's total ε cap (its policy), at the demo policy's δ. */
  siteEpsilon: number;
  /** Keep the work folder (kits, state, ledgers and audit logs) here instead of a temporary one. */
  work?: string;
}

/**
 * Provisions the audit's federation (FHIR-only simulated sites, every site's policy allowing
 * `statistic`) in `opts.work` or a temporary folder, runs `body` on it, and removes a temporary
 * folder afterwards, whatever `body` does.
 */
export async function withAuditFederation<T>(
  opts: AuditFederationOptions,
  audit: { statistic: 'mia-histogram' | 'canary'; cohortSize: number },
  body: (f: { files: FederationFiles; work: string; outDir: string }) => Promise<T>,
): Promise<T> {
  const work = opts.work ?? mkdtempSync(join(tmpdir(), `fedsynth-${audit.statistic}-federation-`));
  const outDir = join(work, 'out');
  try {
    const files = await prepareFederation({
      work,
      outDir,
      sites: opts.sites,
      patients: opts.patients,
      cohortSize: audit.cohortSize,
      epsilon: opts.epsilon,
      delta: opts.delta,
      seed: opts.seed,
      multimodal: false,
      siteEpsilon: opts.siteEpsilon,
    });
    allowStatistic(files.siteConfigs, audit.statistic);
    return await body({ files, work, outDir });
  } finally {
    if (!opts.work) rmSync(work, { recursive: true, force: true });
  }
}

/** Rewrites one YAML config file in place. */
export function patchYaml(path: string, patch: (o: Record<string, unknown>) => void): void {
  const o = YAML.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  patch(o);
  writeFileSync(path, YAML.stringify(o));
}

/** Every site's policy allows marginals and `statistic` (audits are opt-in per site). */
export function allowStatistic(siteConfigs: Record<string, string>, statistic: 'mia-histogram' | 'canary'): void {
  for (const path of Object.values(siteConfigs))
    patchYaml(path, (o) => {
      (o.policy as Record<string, unknown>).allowedStatistics = ['marginal', statistic];
    });
}

/** The audit's federation did not give the audit what it needs (the fit failed, a site took no part): an outcome, not a bug. */
export class FederationRunError extends Error {
  override name = 'FederationRunError';
}

/** The message of a coordinator's `ERROR` log line (pretty format), without its time and context fields. */
export function coordinatorError(line: string): string | undefined {
  const m = /\bERROR coordinator: (.*?)(?: \([a-zA-Z]+=[^()]*\))?$/.exec(line);
  return m?.[1];
}

/** `run`'s result; a federation that did not finish is the command's failure (exit 1, its reason on stderr), not a crash. */
export async function failedRunExits<T>(command: string, run: () => Promise<T>): Promise<T | 1> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof FederationRunError)) throw err;
    process.stderr.write(`${command} --federation: ${err.message}\n`);
    return 1;
  }
}

/**
 * Runs the coordinator of `coordinatorConfig` and one agent per site config until the coordinator
 * exits; returns its report.json (in `outDir`). Every process still running on a failure is stopped.
 */
export async function runFederationProcesses(opts: {
  coordinatorConfig: string;
  siteConfigs: Record<string, string>;
  outDir: string;
  log: (line: string) => void;
}): Promise<FitReport> {
  const children: ChildProcess[] = [];
  const relay = (l: string) => opts.log(`  ${l}`);
  let lastError: string | undefined;
  try {
    const coordinator = spawnFedsynth(['coordinator', '--config', opts.coordinatorConfig, '--log-format', 'pretty'], (l) => {
      lastError = coordinatorError(l) ?? lastError;
      relay(l);
    });
    children.push(coordinator);
    for (const cfg of Object.values(opts.siteConfigs))
      children.push(spawnFedsynth(['agent', '--config', cfg, '--log-format', 'pretty', '--exit-when-done'], relay));
    const code = await exited(coordinator);
    // The reason is in the coordinator's log above; repeated here, the last line the auditor reads.
    if (code !== 0) throw new FederationRunError(`the coordinator exited with code ${code}${lastError ? `: ${lastError}` : ''}`);
    await Promise.all(children.slice(1).map(exited));
    return JSON.parse(readFileSync(join(opts.outDir, 'report.json'), 'utf8')) as FitReport;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  }
}
