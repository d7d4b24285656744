// `fedsynth simulate`: flags → simulator/simulateFederation, and a one-line summary per site.
import { readFileSync } from 'node:fs';
import { parseSchema, type Schema } from '../schema/schema.ts';
import { DEFAULT_IMAGE_SIZE, MAX_PATIENTS, MAX_SITES, SIM_MODALITIES, simulateFederation, type SimModality } from '../simulator/index.ts';
import { command, parseArgs, processIo, runCommand, type CommandIo } from './args.ts';

export const SIMULATE = command({
  command: 'fedsynth simulate',
  summary: `Writes simulated hospitals as FHIR R4 Bulk NDJSON (DIR/hospital-a/Patient.ndjson, …), chest
radiographs (DIR/hospital-a/dicom/), a multi-sample VCF (genomes.vcf + vcf-samples.tsv), clinical
notes (notes/), a ready inspect.yaml per site, and DIR/truth.json (planted effects, per-site
mixes, per-modality counts, pooled 1-way/2-way marginals).`,
  flags: {
    sites: { type: 'int', min: 1, max: MAX_SITES, required: true, help: 'number of hospitals' },
    patients: { type: 'int', min: 1, max: MAX_PATIENTS, required: true, help: 'patients per hospital' },
    out: { type: 'path', value: 'DIR', required: true, help: 'output folder (created; files of the same names are overwritten)' },
    seed: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, default: 1, help: 'the same seed gives byte-identical output' },
    schema: { type: 'path', help: 'public schema (default schema/hospital-v1.yaml)' },
    modalities: { type: 'list', values: SIM_MODALITIES, default: SIM_MODALITIES, help: 'modalities to write' },
    'image-size': { type: 'int', min: 32, max: 4096, default: DEFAULT_IMAGE_SIZE, help: 'radiograph matrix side in pixels' },
    'vcf-bgzip': { type: 'boolean', help: 'write genomes.vcf.gz (BGZF) instead of plain genomes.vcf' },
  },
});

export interface SimulateArgs {
  sites: number;
  patients: number;
  outDir: string;
  seed: number;
  schemaPath?: string;
  modalities: SimModality[];
  imageSize: number;
  vcfBgzip: boolean;
}

/** Parses and validates `simulate` flags; throws UsageError (or HelpRequest for --help). */
export function parseSimulateArgs(args: readonly string[]): SimulateArgs {
  const { flags } = parseArgs(SIMULATE, args);
  return {
    sites: flags.sites,
    patients: flags.patients,
    outDir: flags.out,
    seed: flags.seed,
    ...(flags.schema !== undefined ? { schemaPath: flags.schema } : {}),
    modalities: flags.modalities.filter((m): m is SimModality => (SIM_MODALITIES as readonly string[]).includes(m)),
    imageSize: flags['image-size'],
    vcfBgzip: flags['vcf-bgzip'],
  };
}

/** `fedsynth simulate …`: returns the process exit code (0 ok, 2 usage error, 1 failure). */
export function runSimulateCommand(args: string[], io: CommandIo = processIo): Promise<number> {
  return runCommand(SIMULATE.command, io, async () => {
    const parsed = parseSimulateArgs(args);
    let schema: Schema | undefined;
    if (parsed.schemaPath) {
      let text: string;
      try {
        text = readFileSync(parsed.schemaPath, 'utf8');
      } catch (e) {
        io.err(`fedsynth simulate: cannot read schema ${parsed.schemaPath}: ${(e as Error).message}\n`);
        return 2;
      }
      schema = parseSchema(text);
    }
    try {
      const summary = await simulateFederation({
        sites: parsed.sites,
        patients: parsed.patients,
        seed: parsed.seed,
        outDir: parsed.outDir,
        modalities: parsed.modalities,
        imageSize: parsed.imageSize,
        vcfBgzip: parsed.vcfBgzip,
        ...(schema ? { schema, schemaPath: parsed.schemaPath } : {}),
      });
      for (const s of summary.sites) {
        const r = Object.entries(s.resources)
          .map(([t, n]) => `${n} ${t}`)
          .join(', ');
        io.out(`${s.id} (${s.profile}): ${s.patients} patients, ${r} → ${s.dir}\n`);
      }
      io.out(`truth: ${summary.truthPath}\ndone in ${(summary.elapsedMs / 1000).toFixed(2)} s\n`);
      return 0;
    } catch (e) {
      io.err(`fedsynth simulate: ${(e as Error).message}\n`);
      return 1;
    }
  });
}
