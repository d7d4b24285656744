/**
 * `fedsynth simulate`: a federation of simulated hospitals with a known ground truth.
 *
 * Writes `outDir/<site-id>/Patient.ndjson, Condition.ndjson, Observation.ndjson` (FHIR R4 Bulk
 * Data NDJSON) for sites `hospital-a`, `hospital-b`, … with different patient mixes (see
 * latent.ts: general, elderly cardiac, paediatric, metabolic, pulmonary; more sites cycle the
 * profiles), and `outDir/truth.json` with every planted effect and the true pooled 1-way and
 * 2-way marginals over the schema attributes, computed by encoding exactly what was written.
 * Same seed → byte-identical output.
 *
 * Each patient is first drawn as a latent facts object (LatentPatient), then rendered by every
 * emitter (`SiteEmitter`): FHIR today; DICOM, VCF and notes emitters render the same facts.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSchema, schemaAttributes, schemaHash, type Schema } from '../../model/schema.ts';
import { FhirPatientEncoder, type EncodeResult } from '../../modalities/fhir/encode.ts';
import { Rng, type SeedLike } from '../../modalities/fhir/rng.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';
import { FhirPatientWriter } from './fhir-writer.ts';
import { AGE_BANDS, CONDITIONS, SITE_PROFILES, describeModel, drawLatentPatient, type LatentPatient, type SiteProfile } from './latent.ts';

export const DEFAULT_SCHEMA_PATH = fileURLToPath(new URL('../../schemas/hospital-v1.yaml', import.meta.url));
export const MAX_SITES = 26;
export const MAX_PATIENTS = 1_000_000;

export interface SimulateOptions {
  sites: number;
  /** Patients per site. */
  patients: number;
  seed: SeedLike;
  outDir: string;
  /** Defaults to schemas/hospital-v1.yaml. */
  schema?: Schema;
}

export interface SimulatedSite {
  id: string;
  profile: string;
  dir: string;
  patients: number;
  resources: Record<string, number>;
}

export interface SimulationSummary {
  outDir: string;
  truthPath: string;
  sites: SimulatedSite[];
  elapsedMs: number;
}

/** Renders latent patients of one site into files. One per modality. */
export interface SiteEmitter {
  readonly modality: string;
  write(patient: LatentPatient, rng: Rng): void;
  /** Flushes and closes; returns counts of what was written (by resource type / file kind). */
  close(): Record<string, number>;
}

export function siteId(i: number): string {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_SITES) throw new Error(`site index ${i} out of range 0..${MAX_SITES - 1}`);
  return `hospital-${String.fromCharCode(97 + i)}`;
}

export function siteProfile(i: number): SiteProfile {
  return SITE_PROFILES[i % SITE_PROFILES.length];
}

/** Buffered NDJSON file writer (synchronous writes in ~1 MiB chunks). */
class NdjsonWriter {
  private fd: number;
  private buf: string[] = [];
  private size = 0;
  count = 0;
  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }
  write(r: FhirResourceLike): void {
    const line = JSON.stringify(r) + '\n';
    this.buf.push(line);
    this.size += line.length;
    this.count++;
    if (this.size > 1 << 20) this.flush();
  }
  private flush(): void {
    if (this.buf.length) writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

class FhirEmitter implements SiteEmitter {
  readonly modality = 'fhir';
  private readonly writer: FhirPatientWriter;
  private readonly files: Record<'Patient' | 'Condition' | 'Observation', NdjsonWriter>;
  constructor(
    schema: Schema,
    site: SiteProfile,
    dir: string,
    /** Sees every written resource (used to compute the truth by encoding). */
    private readonly tap: (r: FhirResourceLike) => void,
  ) {
    this.writer = new FhirPatientWriter(schema, site);
    this.files = {
      Patient: new NdjsonWriter(join(dir, 'Patient.ndjson')),
      Condition: new NdjsonWriter(join(dir, 'Condition.ndjson')),
      Observation: new NdjsonWriter(join(dir, 'Observation.ndjson')),
    };
  }
  write(p: LatentPatient, rng: Rng): void {
    const out = this.writer.render(p, rng);
    for (const type of ['Patient', 'Condition', 'Observation'] as const) {
      for (const r of out[type]) {
        this.files[type].write(r);
        this.tap(r);
      }
    }
  }
  close(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [type, w] of Object.entries(this.files)) {
      w.close();
      counts[type] = w.count;
    }
    return counts;
  }
}

export interface Marginals {
  n: number;
  attributes: Array<{ name: string; labels: string[] }>;
  /** attribute → counts per value. */
  oneWay: Record<string, number[]>;
  /** "a|b" (schema order, a before b) → counts, row-major (b varies fastest). */
  twoWay: Record<string, number[]>;
}

/** 1-way and 2-way count marginals of encoded rows (several encode results pooled). */
export function computeMarginals(schema: Schema, results: EncodeResult[], twoWay = true): Marginals {
  const attrs = schemaAttributes(schema);
  const k = attrs.length;
  const one = attrs.map((a) => new Array<number>(a.size).fill(0));
  const two = new Map<string, number[]>();
  if (twoWay) for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) two.set(`${i},${j}`, new Array<number>(attrs[i].size * attrs[j].size).fill(0));
  let n = 0;
  for (const res of results) {
    if (res.width !== k) throw new Error(`computeMarginals: rows of width ${res.width}, schema has ${k} attributes`);
    for (let r = 0; r < res.n; r++) {
      const base = r * k;
      for (let i = 0; i < k; i++) {
        const vi = res.rows[base + i];
        one[i][vi]++;
        if (!twoWay) continue;
        for (let j = i + 1; j < k; j++) two.get(`${i},${j}`)![vi * attrs[j].size + res.rows[base + j]]++;
      }
    }
    n += res.n;
  }
  const oneWay: Record<string, number[]> = {};
  attrs.forEach((a, i) => (oneWay[a.name] = one[i]));
  const twoWayOut: Record<string, number[]> = {};
  for (const [key, counts] of two) {
    const [i, j] = key.split(',').map(Number);
    twoWayOut[`${attrs[i].name}|${attrs[j].name}`] = counts;
  }
  return { n, attributes: attrs.map((a) => ({ name: a.name, labels: a.labels })), oneWay, twoWay: twoWayOut };
}

/** JSON with 2-space indentation but numeric arrays on one line (readable and diff-friendly). */
function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s+\]/g, (_, inner: string) => `[${inner.split(/,\n\s+/).join(', ')}]`);
}

export function loadDefaultSchema(): Schema {
  return parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
}

/** Simulates the federation and writes it to `outDir`. */
export async function simulateFederation(options: SimulateOptions): Promise<SimulationSummary> {
  const start = performance.now();
  const { sites, patients, seed } = options;
  if (!Number.isInteger(sites) || sites < 1 || sites > MAX_SITES) throw new Error(`sites must be an integer from 1 to ${MAX_SITES}, got ${sites}`);
  if (!Number.isInteger(patients) || patients < 1 || patients > MAX_PATIENTS) throw new Error(`patients must be an integer from 1 to ${MAX_PATIENTS}, got ${patients}`);
  const schema = options.schema ?? loadDefaultSchema();
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const root = new Rng(`fedsynth-simulate/${seed}`);

  const siteSummaries: SimulatedSite[] = [];
  const siteTruth: Array<Record<string, unknown>> = [];
  const encoded: EncodeResult[] = [];
  for (let s = 0; s < sites; s++) {
    const id = siteId(s);
    const profile = siteProfile(s);
    const dir = join(outDir, id);
    mkdirSync(dir, { recursive: true });
    const encoder = new FhirPatientEncoder(schema);
    const emitters: SiteEmitter[] = [new FhirEmitter(schema, profile, dir, (r) => encoder.add(r))];
    const siteRng = root.fork(id);
    const latentCounts = { smoker: 0, female: 0, ageSum: 0, conditions: Object.fromEntries(CONDITIONS.map((c) => [c, 0])) as Record<string, number> };
    for (let i = 0; i < patients; i++) {
      const prng = siteRng.fork(i);
      const p = drawLatentPatient(profile, id, i, schema.referenceDate, prng.fork('latent'));
      latentCounts.smoker += +p.smoker;
      latentCounts.female += +(p.sex === 'female');
      latentCounts.ageSum += p.ageYears;
      for (const c of CONDITIONS) latentCounts.conditions[c] += +p.conditions[c];
      for (const e of emitters) e.write(p, prng.fork(e.modality));
    }
    const resources: Record<string, number> = {};
    for (const e of emitters) Object.assign(resources, e.close());
    const res = encoder.finish();
    if (res.n !== patients || res.issues.length > 0) {
      throw new Error(`simulate: encoding ${id} gave ${res.n} rows for ${patients} patients and ${res.issues.length} issue(s): ${res.issues[0]?.reason ?? ''}`);
    }
    encoded.push(res);
    siteSummaries.push({ id, profile: profile.profile, dir, patients, resources });
    const share = (x: number) => Number((x / patients).toFixed(4));
    siteTruth.push({
      id,
      profile: profile.profile,
      description: profile.description,
      patients,
      resources,
      mix: {
        ageBands: AGE_BANDS.map(([lo, hi], b) => ({ years: [lo, hi], weight: profile.ageWeights[b] })),
        pFemale: profile.pFemale,
        logOddsShift: profile.logOddsShift,
        icd10Share: profile.icd10Share,
        bloodPressureAsPanel: profile.bpAsPanel,
      },
      latent: {
        meanAge: Number((latentCounts.ageSum / patients).toFixed(2)),
        female: share(latentCounts.female),
        smoker: share(latentCounts.smoker),
        conditionPrevalence: Object.fromEntries(CONDITIONS.map((c) => [c, share(latentCounts.conditions[c])])),
      },
      oneWay: computeMarginals(schema, [res], false).oneWay,
    });
  }

  const truth = {
    generator: 'fedsynth simulate',
    formatVersion: 1,
    seed,
    sites,
    patientsPerSite: patients,
    schema: { name: schema.name, version: schema.version, hash: schemaHash(schema), referenceDate: schema.referenceDate },
    model: describeModel(),
    siteMixes: siteTruth,
    marginals: computeMarginals(schema, encoded),
  };
  const truthPath = join(outDir, 'truth.json');
  writeFileSync(truthPath, prettyJson(truth) + '\n');
  return { outDir, truthPath, sites: siteSummaries, elapsedMs: performance.now() - start };
}

// ---------------------------------------------------------------------------------------------
// Command line

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const SIMULATE_USAGE = `usage: fedsynth simulate --sites N --patients N --out DIR [--seed N] [--schema FILE]

Writes simulated hospitals as FHIR R4 Bulk NDJSON (DIR/hospital-a/Patient.ndjson, …) and
DIR/truth.json (planted effects, per-site mixes, pooled 1-way/2-way marginals).

  --sites N      number of hospitals, 1–${MAX_SITES}
  --patients N   patients per hospital, 1–${MAX_PATIENTS}
  --out DIR      output folder (created; existing files of the same names are overwritten)
  --seed N       integer seed (default 1); the same seed gives byte-identical output
  --schema FILE  public schema (default schemas/hospital-v1.yaml)`;

export interface SimulateArgs {
  sites: number;
  patients: number;
  outDir: string;
  seed: number;
  schemaPath?: string;
  help: boolean;
}

function parseInteger(flag: string, value: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${flag} must be an integer, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be from ${min} to ${max}, got ${value}`);
  return n;
}

/** Parses and validates `simulate` flags; throws UsageError with a precise message. */
export function parseSimulateArgs(args: readonly string[]): SimulateArgs {
  const known = ['--sites', '--patients', '--out', '--seed', '--schema'];
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') return { sites: 0, patients: 0, outDir: '', seed: 1, help: true };
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!known.includes(flag)) throw new UsageError(`unknown flag ${flag} (known: ${known.join(', ')})`);
    if (values.has(flag)) throw new UsageError(`${flag} given more than once`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      i++;
    }
    if (value.trim() === '') throw new UsageError(`${flag} needs a value`);
    values.set(flag, value);
  }
  for (const flag of ['--sites', '--patients', '--out']) if (!values.has(flag)) throw new UsageError(`missing required flag ${flag}`);
  return {
    sites: parseInteger('--sites', values.get('--sites')!, 1, MAX_SITES),
    patients: parseInteger('--patients', values.get('--patients')!, 1, MAX_PATIENTS),
    outDir: values.get('--out')!,
    seed: values.has('--seed') ? parseInteger('--seed', values.get('--seed')!, 0, Number.MAX_SAFE_INTEGER) : 1,
    ...(values.has('--schema') ? { schemaPath: values.get('--schema')! } : {}),
    help: false,
  };
}

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CommandIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** `fedsynth simulate …`: returns the process exit code (0 ok, 2 usage error, 1 failure). */
export async function runSimulateCommand(args: string[], io: CommandIo = defaultIo): Promise<number> {
  let parsed: SimulateArgs;
  try {
    parsed = parseSimulateArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`fedsynth simulate: ${e.message}`);
      io.err(SIMULATE_USAGE);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    io.out(SIMULATE_USAGE);
    return 0;
  }
  try {
    let schema: Schema | undefined;
    if (parsed.schemaPath) {
      let text: string;
      try {
        text = readFileSync(parsed.schemaPath, 'utf8');
      } catch (e) {
        io.err(`fedsynth simulate: cannot read schema ${parsed.schemaPath}: ${(e as Error).message}`);
        return 2;
      }
      schema = parseSchema(text);
    }
    const summary = await simulateFederation({ sites: parsed.sites, patients: parsed.patients, seed: parsed.seed, outDir: parsed.outDir, ...(schema ? { schema } : {}) });
    for (const s of summary.sites) {
      const r = Object.entries(s.resources)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ');
      io.out(`${s.id} (${s.profile}): ${s.patients} patients, ${r} → ${s.dir}`);
    }
    io.out(`truth: ${summary.truthPath}`);
    io.out(`done in ${(summary.elapsedMs / 1000).toFixed(2)} s`);
    return 0;
  } catch (e) {
    io.err(`fedsynth simulate: ${(e as Error).message}`);
    return 1;
  }
}
