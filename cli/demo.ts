// `fedsynth demo`: a whole federation on this machine. Provisions certificates, simulates
// hospital sites, starts the coordinator and one agent per site as separate processes talking
// gRPC with mutual TLS over loopback, fits at ε=1, δ=1e-9, writes a synthetic cohort and
// reports the spend and the utility against the simulator's ground truth.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { provisionFederation } from '../pki/index.ts';
import { serveSiteOverFhir } from '../simulator/demo-fhir-site.ts';
import type { FhirServer } from '../simulator/fhir-server.ts';
import { simulateFederation, DEFAULT_SCHEMA_PATH, MULTIMODAL_SCHEMA_PATH, siteId, type SimulateOptions } from '../simulator/index.ts';
import { formatPhaseTable, PhaseClock, type PhaseTiming } from '../ops/phase-clock.ts';
import { command, parseArgs } from './args.ts';
import { parseSchema } from '../schema/schema.ts';
import { marginal } from '../model/marginals.ts';
import { normalisedL1 } from '../model/metrics.ts';
import { loadMultimodalSiteData } from '../site-agent/site-data.ts';
import type { SiteDataConfig } from '../site-agent/config.ts';
import type { FitReport } from '../coordinator/coordinator.ts';
import type { WorkloadReport } from '../model/workload.ts';
import {
  disproportionateCells,
  disproportionateLines,
  fidelityTable,
  reportAnswersVsTruth,
  HEADLINE_FAMILY,
  type DisproportionateCell,
  type FidelitySummary,
} from '../synthesis/fidelity.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

export interface DemoOptions {
  outDir: string;
  sites: number;
  patients: number;
  cohortSize: number;
  epsilon: number;
  delta: number;
  seed: number;
  /** Keep the provisioned kits, site data and databases (under outDir/work) instead of a temp folder. */
  keepWork: boolean;
  /**
   * Simulate and learn every modality (FHIR, chest radiograph DICOMs, VCF genomes, notes) with
   * schema/hospital-multimodal-v1.yaml (default true); false: FHIR only with hospital-v1.yaml.
   */
  multimodal?: boolean;
  /** Side of the simulated sites' radiographs (default 64: the schema's feature grid; the cohort's DICOMs are 256×256). */
  simImageSize?: number;
  /** After the fit, keep the federation running as a service (`fedsynth serve`) until SIGINT. */
  serve?: boolean;
  log: (line: string) => void;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts `fedsynth <args>` as a child process with the same Node (22) and tsx; `wrap` runs it
 * under another command (e.g. `ip netns exec NS` to put it in a network namespace).
 */
export function spawnFedsynth(args: string[], onLine: (line: string) => void, wrap: string[] = []): ChildProcess {
  const argv = [...wrap, process.execPath, '--import', TSX, MAIN, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    stream.on('end', () => buf && onLine(buf));
  }
  return child;
}

export function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolveCode) => {
    if (child.exitCode !== null) resolveCode(child.exitCode);
    else if (child.signalCode !== null) resolveCode(128);
    else child.once('exit', (code, signal) => resolveCode(code ?? (signal ? 128 : 1)));
  });
}

export interface FederationFiles {
  work: string;
  coordinatorConfig: string;
  siteConfigs: Record<string, string>;
  truthPath: string;
  port: number;
  schemaPath: string;
}

type FederationOptions = Omit<DemoOptions, 'log' | 'keepWork'> & {
  work: string;
  deadlineSeconds?: number;
  siteEpsilon?: number;
  /** How long the coordinator waits for every site to register (default 120 s). */
  registrationSeconds?: number;
};

/** Writes kits, simulated data and config files for a local federation. */
export async function prepareFederation(opts: FederationOptions): Promise<FederationFiles> {
  const files = await provisionLocalFederation(opts);
  await simulateLocalSites(opts);
  return files;
}

/**
 * Kits and config files of a local federation, before its sites' data exists: the coordinator
 * needs no site data, so it can start while the sites are simulated (simulateLocalSites).
 */
export async function provisionLocalFederation(opts: FederationOptions): Promise<FederationFiles> {
  const sites = Array.from({ length: opts.sites }, (_, i) => siteId(i));
  const kits = join(opts.work, 'kits');
  await provisionFederation({ outDir: kits, federationId: 'demo', sites, validityDays: 30 });
  const multimodal = opts.multimodal ?? true;
  const schemaPath = multimodal ? MULTIMODAL_SCHEMA_PATH : DEFAULT_SCHEMA_PATH;
  const port = await freePort();
  const committee = sites.slice(0, Math.min(3, sites.length));
  const coordinatorConfig = join(opts.work, 'coordinator.yaml');
  await writeFile(
    coordinatorConfig,
    YAML.stringify({
      federationId: 'demo',
      schema: schemaPath,
      listen: `127.0.0.1:${port}`,
      kit: join(kits, 'coordinator'),
      storage: { pglite: join(opts.work, 'coordinator-db') },
      sites,
      committee: { members: committee, threshold: Math.min(2, committee.length) },
      rounds: {
        quorum: Math.min(2, sites.length),
        deadlineSeconds: opts.deadlineSeconds ?? 60,
        registrationSeconds: opts.registrationSeconds ?? 120,
      },
      fit: {
        epsilon: opts.epsilon,
        delta: opts.delta,
        cohortSize: opts.cohortSize,
        seed: opts.seed,
        out: resolve(opts.outDir),
        // The final estimate is warm-started from the plan's last selection model: on the demo's
        // federation 600 iterations gave the same clinical fidelity as 1,000 (max error within
        // ±0.002, mean within ±0.0003 on the same measurements, two noise draws) at 55–60 % of the CPU.
        iterations: 600,
      },
    }),
  );
  const siteConfigs: Record<string, string> = {};
  for (const s of sites) {
    const path = join(opts.work, `${s}.yaml`);
    await writeFile(
      path,
      YAML.stringify({
        siteId: s,
        federationId: 'demo',
        coordinator: `localhost:${port}`,
        kit: join(kits, 'sites', s),
        schema: schemaPath,
        data: multimodal ? siteData(join(opts.work, 'data', s), s) : { fhirNdjson: join(opts.work, 'data', s) },
        state: join(opts.work, 'state', s),
        policy: {
          epsilon: opts.siteEpsilon ?? 2,
          delta: 1e-8,
          minQuorum: Math.min(2, sites.length),
          minThreshold: Math.min(2, committee.length),
        },
      }),
    );
    siteConfigs[s] = path;
  }
  return { work: opts.work, coordinatorConfig, siteConfigs, truthPath: join(opts.work, 'data', 'truth.json'), port, schemaPath };
}

/** The simulated sites' data (and truth.json) of a local federation, in `work/data`. */
export async function simulateLocalSites(
  opts: Pick<FederationOptions, 'work' | 'sites' | 'patients' | 'seed' | 'multimodal' | 'simImageSize'> &
    Pick<SimulateOptions, 'onSite' | 'abort'>,
): Promise<void> {
  const multimodal = opts.multimodal ?? true;
  await simulateFederation({
    onSite: opts.onSite,
    abort: opts.abort,
    sites: opts.sites,
    patients: opts.patients,
    seed: opts.seed,
    outDir: join(opts.work, 'data'),
    ...(multimodal
      ? {
          schema: parseSchema(await readFile(MULTIMODAL_SCHEMA_PATH, 'utf8')),
          schemaPath: MULTIMODAL_SCHEMA_PATH,
          modalities: ['fhir', 'dicom', 'vcf', 'notes'] as const,
          imageSize: opts.simImageSize ?? 64,
        }
      : {}),
  });
}

/** The data section of a simulated site with every modality (as the simulator's inspect.yaml). */
function siteData(dir: string, site: string): Record<string, unknown> {
  return {
    fhirNdjson: dir,
    dicom: join(dir, 'dicom'),
    vcf: join(dir, 'genomes.vcf'),
    notes: join(dir, 'notes'),
    linkage: { key: 'identifier', identifierSystem: `urn:fedsynth:sim:${site}:mrn`, vcfSampleMap: join(dir, 'vcf-samples.tsv') },
  };
}

/**
 * Mean L1 over all 2-way marginals between the simulator's pooled truth and a written cohort.
 * The cohort is read back with the sites' own loader and encoders (FHIR, and for a multimodal
 * schema its DICOMs, cohort VCF and notes), so the cross-modal attributes are measured on the
 * released files, not on the sampled rows.
 */
export async function utilityAgainstTruth(
  truthPath: string,
  cohortDir: string,
  schemaPath = DEFAULT_SCHEMA_PATH,
): Promise<{ meanL1: number; pairs: number; cohortPatients: number }> {
  const schema = parseSchema(await readFile(schemaPath, 'utf8'));
  const truth = JSON.parse(await readFile(truthPath, 'utf8')) as { marginals: { twoWay: Record<string, number[]> } };
  // cohortDir is the cohort's fhir/ folder (older callers) or the cohort folder itself.
  const root = basename(cohortDir) === 'fhir' ? dirname(cohortDir) : cohortDir;
  const data: SiteDataConfig = { kind: 'fhir-ndjson', dir: join(root, 'fhir') };
  if (existsSync(join(root, 'dicom'))) data.dicom = join(root, 'dicom');
  if (existsSync(join(root, 'vcf', 'cohort.vcf'))) data.vcf = join(root, 'vcf', 'cohort.vcf');
  if (existsSync(join(root, 'notes'))) data.notes = join(root, 'notes');
  const cohort = (await loadMultimodalSiteData({ data }, schema)).data;
  let sum = 0;
  let pairs = 0;
  for (const [key, counts] of Object.entries(truth.marginals.twoWay)) {
    const [a, b] = key.split('|');
    sum += normalisedL1(Float64Array.from(counts), marginal(cohort, [a, b]));
    pairs++;
  }
  return { meanL1: sum / pairs, pairs, cohortPatients: cohort.rows };
}

export interface ClinicalFidelity {
  /** The model sample the workload was read from (report.json `workload.sampleRows`). */
  sampleRows: number;
  minStratum: number;
  /** Condition × age band: worst cells first, against the pooled truth. */
  headline: FidelitySummary & { table: string[] };
  /** Headline cells ≥ 3× off in either direction by ≥ 1 point of the stratum, most disproportionate first. */
  disproportionate: DisproportionateCell[];
  families: WorkloadReport['families'];
}

/** The schema's workload in report.json against the simulator's pooled truth (2-way queries). */
export async function clinicalFidelityAgainstTruth(
  truthPath: string,
  schemaPath: string,
  report: FitReport,
): Promise<ClinicalFidelity | undefined> {
  if (!report.workload) return undefined;
  const schema = parseSchema(await readFile(schemaPath, 'utf8'));
  const truth = JSON.parse(await readFile(truthPath, 'utf8')) as { marginals: { twoWay: Record<string, number[]> } };
  const vsTruth = reportAnswersVsTruth(schema, report.workload.answers, truth.marginals.twoWay);
  if (!vsTruth) return undefined;
  const { lines, summary } = fidelityTable(vsTruth, HEADLINE_FAMILY);
  return {
    sampleRows: report.workload.sampleRows,
    minStratum: vsTruth.minStratum,
    headline: { ...summary, table: lines },
    disproportionate: disproportionateCells(vsTruth, HEADLINE_FAMILY),
    families: vsTruth.families,
  };
}

/**
 * The demo's agents. The coordinator waits long for registrations (it starts before the sites
 * exist), so an agent that fails (unreadable data, a bad kit) ends the demo at once, not after that wait.
 */
class AgentWatch {
  readonly exits: Promise<number>[] = [];
  failed = false;
  private fail: (err: Error) => void = () => undefined;
  readonly failure = new Promise<never>((_, reject) => (this.fail = reject));

  constructor() {
    this.failure.catch(() => undefined);
  }

  watch(site: string, child: ChildProcess): void {
    this.exits.push(
      exited(child).then((code) => {
        if (code !== 0) {
          this.failed = true;
          this.fail(new Error(`the agent of ${site} exited with code ${code}`));
        }
        return code;
      }),
    );
  }
}

function spawnAgent(config: string, exitWhenDone: boolean, log: (line: string) => void): ChildProcess {
  return spawnFedsynth(['agent', '--config', config, '--log-format', 'pretty', ...(exitWhenDone ? ['--exit-when-done'] : [])], (l) =>
    log(`  ${l}`),
  );
}

export async function runDemo(opts: DemoOptions): Promise<FitReport & { demo: Record<string, unknown> }> {
  const started = Date.now();
  const log = opts.log;
  const clock = new PhaseClock();
  await mkdir(opts.outDir, { recursive: true });
  const work = opts.keepWork ? resolve(opts.outDir, 'work') : await mkdtemp(join(tmpdir(), 'fedsynth-demo-'));
  if (opts.keepWork) await rm(work, { recursive: true, force: true });
  const children: ChildProcess[] = [];
  let fhirServer: FhirServer | undefined;
  try {
    log(`[1/4] provisioning a federation of ${opts.sites} sites`);
    clock.start('provision kits and configs');
    const files = await provisionLocalFederation({
      ...opts,
      work,
      // As a service the sites' caps leave room for the studies researchers request after the first fit.
      ...(opts.serve ? { siteEpsilon: 10 } : {}),
      // The coordinator starts before the sites are simulated and waits for them: its wait for
      // registrations covers the simulation, which takes minutes on a slow or busy machine.
      registrationSeconds: 1800,
    });
    // The coordinator needs no site data: it starts (loads, opens its store) while the sites are
    // simulated, and each agent starts as soon as its own site's data is written.
    log(`[2/4] starting the coordinator (127.0.0.1:${files.port}, mTLS, PGlite) as a separate process`);
    const coordinator = spawnFedsynth(['coordinator', '--config', files.coordinatorConfig, '--log-format', 'pretty'], (l) => log(`  ${l}`));
    children.push(coordinator);
    const coordinatorExit = exited(coordinator);
    const siteEntries = Object.entries(files.siteConfigs);
    // One hospital serves its records from a FHIR R4 REST server, the others from Bulk export files.
    // It is the last one simulated: the server runs in this process, which is busy simulating
    // until then, so an earlier site's agent would wait on it.
    const fhirSite = siteEntries[siteEntries.length - 1][0];
    const agents = new AgentWatch();
    const startAgent = async (site: string): Promise<void> => {
      if (site === fhirSite) {
        fhirServer = await serveSiteOverFhir(files.siteConfigs[site]);
        log(`      ${fhirSite} reads its patients from a FHIR R4 server at ${fhirServer.url}; the others from Bulk NDJSON`);
      }
      const agent = spawnAgent(files.siteConfigs[site], !opts.serve, log);
      children.push(agent);
      agents.watch(site, agent);
    };
    log(`      simulating ${opts.patients} patients per site; each site's agent starts as its data is written`);
    clock.start('simulate sites (coordinator and agents starting)');
    await simulateLocalSites({
      ...opts,
      work,
      onSite: async (site) => {
        log(`      ${site.id}: ${site.patients} patients written; starting its agent`);
        await startAgent(site.id);
      },
      // A process that failed (bad config, port taken, unreadable data) stops the demo before minutes of simulation.
      abort: () => coordinator.exitCode !== null || agents.failed,
    }).catch((err: Error) => (agents.failed ? agents.failure : Promise.reject(err)));
    if (coordinator.exitCode !== null) throw new Error(`the coordinator exited (${coordinator.exitCode}) while the sites were simulated`);
    log(`[3/4] fitting at ε=${opts.epsilon}, δ=${opts.delta} (threshold-encrypted aggregation, distributed discrete Gaussian noise)`);
    clock.start('fit and cohort (coordinator)');
    const code = await Promise.race([coordinatorExit, agents.failure]);
    if (code !== 0) throw new Error(`the coordinator exited with ${coordinator.exitCode ?? coordinator.signalCode}`);
    clock.start('agents exit');
    if (!opts.serve) await Promise.all(agents.exits);
    const report = JSON.parse(await readFile(join(opts.outDir, 'report.json'), 'utf8')) as FitReport;
    log(`[4/4] comparing the cohort with the pooled ground truth`);
    clock.start('cohort vs pooled truth (utility, fidelity)');
    const utility = await utilityAgainstTruth(files.truthPath, join(opts.outDir, 'cohort'), files.schemaPath);
    const clinical = await clinicalFidelityAgainstTruth(files.truthPath, files.schemaPath, report);
    clock.end();
    const demo = {
      wallSeconds: (Date.now() - started) / 1000,
      sites: opts.sites,
      patientsPerSite: opts.patients,
      /** The demo process's phases (CPU: this process: simulation, FHIR server, comparison). */
      timings: clock.phases(),
      utility: { meanL1AllTwoWayVsPooledTruth: utility.meanL1, pairs: utility.pairs, cohortPatients: utility.cohortPatients },
      ...(clinical ? { clinicalFidelity: clinical } : {}),
    };
    const full = { ...report, demo };
    await writeFile(join(opts.outDir, 'report.json'), JSON.stringify(full, null, 2) + '\n');
    if (opts.serve) {
      printSummary(opts, full);
      await (await import('./demo-serve.ts')).serveAfterFit(files, opts.outDir, await freePort(), children, log);
    }
    return full;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await fhirServer?.close();
    if (!opts.keepWork) await rm(work, { recursive: true, force: true });
  }
}

export const DEMO = command({
  command: 'fedsynth demo',
  summary:
    'Runs a local federation end to end: simulated sites, provisioning, a coordinator and one agent\nprocess per site over mTLS, the fit and a cross-modal cohort, with a report.',
  flags: {
    out: { type: 'path', value: 'DIR', default: './out', help: 'output folder (cohort/ and report.json)' },
    sites: { type: 'int', min: 2, max: 26, default: 3, help: 'simulated hospitals' },
    patients: { type: 'int', min: 10, max: 1_000_000, default: 5000, help: 'patients per hospital' },
    'cohort-size': { type: 'int', min: 1, max: 1_000_000, default: 1000, help: 'synthetic patients to write' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 7, help: 'simulation seed' },
    'keep-work': { type: 'boolean', help: 'keep the working folder (sites, kits, logs)' },
    'fhir-only': { type: 'boolean', help: 'FHIR only: no images, genomes or notes' },
    'sim-image-size': { type: 'int', min: 32, max: 1024, default: 64, help: 'side of the simulated radiographs in pixels' },
    serve: {
      type: 'boolean',
      help: 'after the fit, keep the coordinator (HTTP API and web page) and the agents running; writes DIR/service.json',
    },
  },
});

export async function runDemoCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(DEMO, args);
  const opts: DemoOptions = {
    outDir: resolve(flags.out),
    sites: flags.sites,
    patients: flags.patients,
    cohortSize: flags['cohort-size'],
    seed: flags.seed,
    epsilon: 1,
    delta: 1e-9,
    keepWork: flags['keep-work'],
    multimodal: !flags['fhir-only'],
    simImageSize: flags['sim-image-size'],
    serve: flags.serve,
    log: (l) => console.log(l),
  };
  const report = await runDemo(opts);
  if (!opts.serve) printSummary(opts, report);
  return 0;
}

function printSummary(opts: DemoOptions, report: FitReport & { demo: Record<string, unknown> }): void {
  console.log('');
  console.log(`Synthetic cohort: ${report.cohort?.n ?? 0} patients in ${join(opts.outDir, 'cohort')} (FHIR R4 Bulk NDJSON in fhir/)`);
  const m = report.cohort?.modalities;
  if (m) {
    const pl = report.cohort?.plausibility;
    console.log(
      `Cross-modal: ${m.images.written} chest radiographs (DICOM ${m.images.rows}×${m.images.cols}, ${m.images.bitsStored}-bit, all parsed back; ${m.images.previews} PNG previews; ` +
        `${m.images.readBack.notReadBack} whose findings did not read back after ${m.images.readBack.maxDraws} draws (kept; listed in report.json)), ` +
        `${m.genomes.written} genomes (VCF 4.2 per patient + cohort.vcf, validated), ${m.notes.written} notes (verified, rejection rate ${(100 * m.notes.stats.rejectionRate).toFixed(1)} %), ` +
        `${m.fhir.bundlesValidated} R4 Bundles validated; ${pl?.violatingRows ?? 0} implausible rows resampled, ${report.cohort?.rejected?.rows ?? 0} drafts failing a validator redrawn (${report.cohort?.rejected?.dropped ?? 0} dropped)`,
    );
  }
  for (const [site, p] of Object.entries(report.perSite)) {
    console.log(`Spend ${site}: ρ=${p.rho.toFixed(5)} → ε=${p.epsilon.toFixed(3)} at δ=${report.delta} over ${p.rounds} rounds`);
  }
  const u = report.demo.utility as { meanL1AllTwoWayVsPooledTruth: number; pairs: number };
  console.log(
    `Utility: mean L1 error over all ${u.pairs} 2-way marginals of the simulator's truth (pooled truth vs cohort; image-component attributes have none) = ${u.meanL1AllTwoWayVsPooledTruth.toFixed(3)}`,
  );
  const cf = report.demo.clinicalFidelity as ClinicalFidelity | undefined;
  if (cf) {
    console.log('');
    console.log(
      `Clinical fidelity: condition prevalence by age band, model sample of ${cf.sampleRows} vs the sites' pooled truth (strata with ≥ ${cf.minStratum} real patients), worst first:`,
    );
    for (const line of cf.headline.table.slice(0, 12)) console.log(`  ${line}`);
    if (cf.headline.table.length > 12) console.log(`  … ${cf.headline.table.length - 12} more cells in report.json`);
    console.log(`  max error ${cf.headline.maxError.toFixed(3)}, mean ${cf.headline.meanError.toFixed(3)} over ${cf.headline.cells} cells`);
    if (cf.disproportionate.length) {
      // A rare condition shown several times too often reads as a wrong chart even where the
      // absolute error is small: say so rather than let the max / mean hide it.
      console.log(`  ≥ 3× off the real prevalence (and by ≥ 1 point), small in absolute error but visible in the charts:`);
      for (const line of disproportionateLines(cf.disproportionate)) console.log(`    ${line}`);
    }
  }
  const wall = report.demo.wallSeconds as number;
  const demoPhases = report.demo.timings as PhaseTiming[] | undefined;
  if (demoPhases?.length) {
    console.log('');
    console.log(`Where the time went (wall ${wall.toFixed(1)} s; CPU of this process, which simulates the sites):`);
    for (const line of formatPhaseTable(demoPhases, wall)) console.log(`  ${line}`);
  }
  if (report.timings?.length) {
    console.log(`The coordinator's phases (CPU of the coordinator process; waits for the sites show as wall time):`);
    for (const line of formatPhaseTable(report.timings, wall)) console.log(`  ${line}`);
  }
  console.log(`Report: ${join(opts.outDir, 'report.json')}  (wall time ${wall.toFixed(1)} s)`);
}
