// Site datasets for the empirical audits: the FHIR NDJSON folders of a (demo or simulated)
// federation, one folder per site, encoded into the public schema exactly as an agent does.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dataset, Domain } from '../../model/domain.ts';
import type { Flags } from '../args.ts';
import type { AuditSites } from '../../federation/audits/sites.ts';
import { parseSchema, schemaAttributes } from '../../schema/schema.ts';
import { NdjsonFhirSource } from '../../site-agent/connectors/fhir-ndjson.ts';
import { readPatientTable } from '../../site-agent/patients.ts';
import { DEFAULT_SCHEMA_PATH, simulateFederation } from '../../simulator/index.ts';

/** Flags of the empirical audits that run a fit: the data audited, the claimed (ε, δ), the output. */
export const AUDIT_RUN_FLAGS = {
  data: { type: 'path', value: 'DIR', help: 'simulated sites to audit (default: simulate --sites/--patients now)' },
  sites: { type: 'int', min: 1, max: 26, default: 3, help: 'sites to simulate' },
  patients: { type: 'int', min: 10, max: 1_000_000, default: 400, help: 'patients per simulated site' },
  epsilon: { type: 'number', min: 0, minExclusive: true, default: 1, help: 'the claimed ε' },
  delta: { type: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, default: 1e-9, help: 'the claimed δ' },
  seed: { type: 'int', min: 0, max: 2 ** 31, default: 1, help: 'seed of simulation and fit' },
  out: { type: 'path', value: 'FILE.json', required: true, help: 'where the result is written' },
} as const satisfies Flags;

export type AuditData = AuditSites;

/** Reads every site folder under `dir` (folders holding .ndjson files), or `dir` itself if it is one. */
export async function loadSiteFolders(dir: string, schemaText = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8')): Promise<AuditData> {
  const schema = parseSchema(schemaText);
  const attrs = schemaAttributes(schema);
  const domain = new Domain(
    attrs.map((a) => a.name),
    attrs.map((a) => a.size),
  );
  const hasNdjson = (d: string) => readdirSync(d).some((f) => f.endsWith('.ndjson'));
  const folders = hasNdjson(dir)
    ? [dir]
    : readdirSync(dir)
        .map((n) => join(dir, n))
        .filter((p) => statSync(p).isDirectory() && hasNdjson(p))
        .sort();
  if (folders.length === 0) throw new Error(`no site folders with FHIR NDJSON under ${dir}`);
  const sites = [];
  for (const f of folders) {
    const read = await readPatientTable(new NdjsonFhirSource(f), schema);
    const data = new Dataset(domain, read.table.columns, read.table.n);
    data.validate();
    sites.push({ id: f.split('/').pop()!, data });
  }
  return { sites, domain, source: dir };
}

/** `--data DIR`, or a simulated federation of `sites` × `patients` (written to a temp folder and read back). */
export async function auditData(opts: { data?: string; sites: number; patients: number; seed: number }): Promise<AuditData> {
  if (opts.data) {
    if (!existsSync(opts.data)) throw new Error(`--data ${opts.data} does not exist`);
    return loadSiteFolders(opts.data);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-audit-'));
  try {
    await simulateFederation({ sites: opts.sites, patients: opts.patients, seed: opts.seed, outDir: dir });
    const d = await loadSiteFolders(dir);
    return { ...d, source: `simulated: ${opts.sites} sites × ${opts.patients} patients, seed ${opts.seed}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
