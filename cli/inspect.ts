// `fedsynth agent inspect --config site.yaml [--json]`: reads the site's data locally (FHIR,
// DICOM, VCF, notes), links and encodes it, and prints what IT needs before joining. It sends
// nothing and needs neither the startup kit nor the coordinator: only `schema` and `data` of
// site.yaml are read (other keys are accepted and ignored), so it runs before provisioning.
import { parseSchema, SchemaError } from '../schema/schema.ts';
import { formatInspectReport, inspectSite } from '../site-agent/inspect.ts';
import { parseSiteDataSection } from './agent-config.ts';
import { ConfigError, Fields, loadConfigFile } from './config-file.ts';
import { readFileSync } from 'node:fs';
import { command, HelpRequest, parseArgs, UsageError, usageMessage } from './args.ts';

export const INSPECT = command({
  command: 'fedsynth agent inspect',
  summary: `Reads the site's data locally and prints patients per modality, linkage rates, schema coverage,
warnings (what the schema needs and the data lacks) and quarantine counts with the first files or
rows of each reason (--json lists every one). Sends nothing and needs neither the startup kit nor
the coordinator.`,
  flags: {
    config: { type: 'path', value: 'site.yaml', required: true, help: 'the site config (its schema and data sections are used)' },
    json: { type: 'boolean', help: 'print the report as JSON' },
  },
});

export interface InspectIo {
  out: (text: string) => void;
  err: (text: string) => void;
}
const defaultIo: InspectIo = { out: (t) => process.stdout.write(t + '\n'), err: (t) => process.stderr.write(t + '\n') };

/** Returns the exit code: 0 report printed, 2 usage/config error, 1 unexpected failure. */
export async function runInspectCommand(args: string[], io: InspectIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(INSPECT, args).flags;
  } catch (e) {
    if (e instanceof HelpRequest) {
      io.out(e.text);
      return 0;
    }
    if (e instanceof UsageError) {
      io.err(usageMessage(e, INSPECT.command).trimEnd());
      return 2;
    }
    throw e;
  }
  try {
    const file = loadConfigFile(parsed.config);
    const f = new Fields(file.path, file.raw);
    const schemaPath = f.path('schema', file.dir);
    let schemaText: string;
    try {
      schemaText = readFileSync(schemaPath, 'utf8');
    } catch (e) {
      throw new ConfigError(`${file.path}: cannot read schema ${schemaPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let schema;
    try {
      schema = parseSchema(schemaText);
    } catch (e) {
      if (e instanceof SchemaError) throw new ConfigError(`${schemaPath}: ${e.message}`);
      throw e;
    }
    const data = parseSiteDataSection(f, file.path, file.dir, file.raw);
    const report = await inspectSite({ data }, schema);
    io.out(parsed.json ? JSON.stringify(report, null, 2) : formatInspectReport(report));
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(`fedsynth agent inspect: ${e.message}`);
      return 2;
    }
    io.err(`fedsynth agent inspect: ${(e as Error).stack ?? e}`);
    return 1;
  }
}
