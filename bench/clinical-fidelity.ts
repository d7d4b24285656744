/**
 * Clinical fidelity benchmark: the schema's declared workload (condition × age band, × sex,
 * comorbidity, lab by condition, …) answered by a federated fit, against the pooled truth.
 *
 * Simulates the demo's federation in memory (the simulator's encoded rows, every modality), runs
 * the in-process federated fit of `fedsynth bench utility` (per-site exact discrete Gaussian
 * noise, the schema's declared structure round, then the AIM plan), samples the model and prints
 * the condition × age-band table worst first, then the per-family max / mean errors.
 *
 *   npx tsx bench/clinical-fidelity.ts [--sites 3] [--patients 5000] [--seed 7] [--epsilon 1]
 *       [--runs 1] [--schema FILE] [--json]
 *
 * `--schema` tries another declared structure (the design measurements of
 * docs/synthesis.md). The noise is fresh from the OS CSPRNG on each run; `--seed` fixes the
 * simulated data and the sampler.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command, parseArgs } from '../cli/args.ts';
import { runUtility } from '../federation/utility-bench.ts';
import { Dataset, Domain, allocColumn } from '../model/domain.ts';
import { marginal } from '../model/marginals.ts';
import { parseSchema, schemaAttributes, type Schema } from '../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH, simulateFederation } from '../simulator/index.ts';
import {
  disproportionateCells,
  disproportionateLines,
  fidelityTable,
  fidelityVsTruth,
  schemaWorkload,
  HEADLINE_FAMILY,
  type DisproportionateCell,
} from '../synthesis/fidelity.ts';

export interface FidelityRun {
  maxError: number;
  meanError: number;
  families: Record<string, { queries: number; cells: number; maxError: number; meanError: number }>;
  table: string[];
  /** Condition × age-band cells ≥ 3× off the truth by ≥ 1 point (synthesis/fidelity.ts). */
  disproportionate: DisproportionateCell[];
  l1TwoWay: number;
  wallMs: number;
}

/** What the simulator must write for the schema's attributes to have their planted codes. */
function simulatedModalities(schema: Schema): Array<'fhir' | 'dicom' | 'vcf' | 'notes'> {
  const kinds = new Set(schema.attributes.map((a) => a.kind));
  return [
    'fhir' as const,
    ...(kinds.has('image-finding') ? (['dicom'] as const) : []),
    ...(kinds.has('snp') ? (['vcf'] as const) : []),
    ...(kinds.has('note-mention') ? (['notes'] as const) : []),
  ];
}

/** The simulator's federation as one pooled dataset (the truth every site's rows come from). */
export async function simulatedTruth(schema: Schema, sites: number, patients: number, seed: number): Promise<Dataset> {
  const dir = await mkdtemp(join(tmpdir(), 'fedsynth-fidelity-'));
  try {
    const sim = await simulateFederation({
      sites,
      patients,
      seed,
      outDir: dir,
      schema,
      modalities: simulatedModalities(schema),
      imageSize: 32,
    });
    const attrs = schemaAttributes(schema);
    const domain = new Domain(
      attrs.map((a) => a.name),
      attrs.map((a) => a.size),
    );
    const n = sim.encoded.reduce((s, r) => s + r.n, 0);
    const cols = domain.sizes.map((s) => allocColumn(s, n));
    let o = 0;
    for (const res of sim.encoded) {
      for (let r = 0; r < res.n; r++, o++) for (let j = 0; j < res.width; j++) cols[j][o] = res.rows[r * res.width + j];
    }
    const data = new Dataset(domain, cols, n);
    data.validate();
    return data;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function fidelityRun(
  schema: Schema,
  data: Dataset,
  opts: { sites: number; epsilon: number; seed: number; log?: (s: string) => void },
): Promise<FidelityRun> {
  const w = schemaWorkload(schema, data.domain);
  if (!w) throw new Error('the schema declares no workload');
  const structure = schema.structure;
  const res = await runUtility(data, {
    sites: opts.sites,
    split: 'iid',
    epsilon: opts.epsilon,
    delta: 1e-9,
    seed: opts.seed,
    plan: 'aim',
    ...(structure ? { structure } : {}),
    keepSynthetic: true,
    threeWaySample: 50,
    onProgress: opts.log,
  });
  const synth = res.synthetic!;
  const report = fidelityVsTruth(
    w,
    (a) => marginal(synth, a),
    (a) => marginal(data, a),
  );
  const { lines, summary } = fidelityTable(report, HEADLINE_FAMILY);
  return {
    maxError: summary.maxError,
    meanError: summary.meanError,
    families: report.families,
    table: lines,
    disproportionate: disproportionateCells(report, HEADLINE_FAMILY),
    l1TwoWay: res.l1TwoWay,
    wallMs: res.wallMs,
  };
}

export interface BenchArgs {
  schemaPath: string;
  sites: number;
  patients: number;
  seed: number;
  epsilon: number;
  runs: number;
  json: boolean;
}

const FIDELITY_BENCH = command({
  command: 'bench/clinical-fidelity.ts',
  summary: 'The clinical workload answered by a federated fit, against the pooled truth (worst cells first).',
  flags: {
    schema: { type: 'path', value: 'FILE', help: 'another schema (its declared structure and workload)' },
    sites: { type: 'int', min: 1, max: 26, default: 3, help: 'simulated sites' },
    patients: { type: 'int', min: 10, max: 1_000_000, default: 5000, help: 'patients per site' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 7, help: 'seed of the simulated data and the sampler' },
    epsilon: { type: 'number', min: 0, minExclusive: true, default: 1, help: "the fit's ε (δ = 1e-9)" },
    runs: { type: 'int', min: 1, max: 100, default: 1, help: 'fits, each with fresh noise' },
    json: { type: 'boolean', help: 'print JSON' },
  },
});

/** Flags of the bench; malformed or unknown flags throw a UsageError naming them. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { flags } = parseArgs(FIDELITY_BENCH, argv);
  return {
    schemaPath: flags.schema ?? MULTIMODAL_SCHEMA_PATH,
    sites: flags.sites,
    patients: flags.patients,
    seed: flags.seed,
    epsilon: flags.epsilon,
    runs: flags.runs,
    json: flags.json,
  };
}

async function main(argv: string[]): Promise<void> {
  const { schemaPath, sites, patients, seed, epsilon, runs, json } = parseBenchArgs(argv);
  const schema = parseSchema(await readFile(schemaPath, 'utf8'));
  const data = await simulatedTruth(schema, sites, patients, seed);
  console.log(
    `# clinical fidelity: ${sites} sites × ${patients} patients, ε = ${epsilon}, declared shares ${(schema.structure?.groups ?? (schema.structure ? [schema.structure] : [])).map((g) => g.share).join(' + ') || 'none'}`,
  );
  const out: FidelityRun[] = [];
  for (let r = 0; r < runs; r++) {
    const run = await fidelityRun(schema, data, { sites, epsilon, seed: seed + r });
    out.push(run);
    if (r === 0 && !json) console.log(run.table.slice(0, 14).join('\n'));
    if (!json && run.disproportionate.length)
      console.log(`≥ 3× off the truth by ≥ 1 point:\n  ${disproportionateLines(run.disproportionate).join('\n  ')}`);
    const fam = Object.entries(run.families)
      .map(([f, v]) => `${f} ${v.maxError.toFixed(3)}/${v.meanError.toFixed(3)}`)
      .join('; ');
    console.log(
      `run ${r + 1}: condition × age band max ${run.maxError.toFixed(3)} mean ${run.meanError.toFixed(4)}; 2-way L1 ${run.l1TwoWay.toFixed(3)}; ${(run.wallMs / 1000).toFixed(0)} s; ${fam}`,
    );
  }
  if (json) console.log(JSON.stringify(out.map(({ table: _t, ...r }) => r)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
