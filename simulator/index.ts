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
 * With more modalities (`modalities`, the CLI's `--modalities`, default all on the command line,
 * FHIR only through the API), each site also gets `dicom/` (chest radiographs, radiograph.ts),
 * `genomes.vcf[.gz]` + `vcf-samples.tsv` (genome.ts, vcf-writer.ts), `notes/` (notes.ts) and
 * `inspect.yaml`, a data section ready for `fedsynth agent inspect --config`. Planted anomalies
 * and every cross-modal effect are in truth.json (`siteMixes[i].modalities`, `model.genome`,
 * `model.imaging`).
 *
 * Each patient is first drawn as a latent facts object (LatentPatient), then rendered by every
 * emitter: FHIR, DICOM, VCF and notes render the same facts. The latent facts do not depend on
 * which modalities are written, so the FHIR output is the same with or without them.
 * Truth codes of non-FHIR schema attributes come from the planted facts: SNP dosage (missing
 * when not sequenced or a no-call), image findings as planted (present → the last class, else
 * the first; no image → "no-image"), note mentions as written (`note_<concept>` attributes).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageMissingCode, NOTE_MISSING, parseSchema, schemaAttributes, schemaHash, SNP_MISSING, type Schema } from '../schema/schema.ts';
import { CAUSAL, PANEL, describeGenomeModel, populationAlleleFrequencies } from './genome.ts';
import { FileSink, syncFileWriter, type FileWriter } from './file-sink.ts';
import { DicomEmitter, NotesEmitter, SIM_MODALITIES, VcfEmitter, type SimModality } from './modalities.ts';
import { FhirPatientEncoder, type EncodeResult } from '../modalities/fhir/encode.ts';
import { Rng, type SeedLike } from '../model/rng.ts';
import type { FhirResourceLike } from '../modalities/fhir/types.ts';
import { FhirPatientWriter } from './fhir-writer.ts';
import { AGE_BANDS, CONDITIONS, SITE_PROFILES, describeModel, drawLatentPatient, type LatentPatient, type SiteProfile } from './latent.ts';

export const DEFAULT_SCHEMA_PATH = fileURLToPath(new URL('../schema/hospital-v1.yaml', import.meta.url));
/** The schema written into each site's inspect.yaml when no --schema is given. */
export const MULTIMODAL_SCHEMA_PATH = fileURLToPath(new URL('../schema/hospital-multimodal-v1.yaml', import.meta.url));
export { SIM_MODALITIES, type SimModality } from './modalities.ts';
export const DEFAULT_IMAGE_SIZE = 128;
export const MAX_SITES = 26;
export const MAX_PATIENTS = 1_000_000;

export interface SimulateOptions {
  sites: number;
  /** Patients per site. */
  patients: number;
  seed: SeedLike;
  outDir: string;
  /** Defaults to schema/hospital-v1.yaml. */
  schema?: Schema;
  /** Path of `schema` (written into inspect.yaml); default hospital-multimodal-v1.yaml. */
  schemaPath?: string;
  /** What to write; default ['fhir'] (the CLI defaults to all). */
  modalities?: readonly SimModality[];
  /** Radiograph matrix side in pixels (default 128). */
  imageSize?: number;
  /** Write genomes.vcf.gz (BGZF) instead of genomes.vcf. */
  vcfBgzip?: boolean;
  /**
   * Called once each site's files are all written and closed (before the next site is simulated),
   * so that a caller can start reading that site while the others are simulated; awaited.
   */
  onSite?: (site: SimulatedSite) => void | Promise<void>;
  /** Checked between sites: true stops the simulation with an error (the caller gave up). */
  abort?: () => boolean;
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
  /** Each site's encoded rows (the truth the marginals of truth.json are computed from), site order. */
  encoded: EncodeResult[];
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
  private readonly files?: Record<'Patient' | 'Condition' | 'Observation', NdjsonWriter>;
  constructor(
    schema: Schema,
    site: SiteProfile,
    dir: string,
    /** Sees every written resource (used to compute the truth by encoding). */
    private readonly tap: (r: FhirResourceLike) => void,
    /** false: render (for the truth) without writing files. */
    persist = true,
  ) {
    this.writer = new FhirPatientWriter(schema, site);
    if (persist) {
      this.files = {
        Patient: new NdjsonWriter(join(dir, 'Patient.ndjson')),
        Condition: new NdjsonWriter(join(dir, 'Condition.ndjson')),
        Observation: new NdjsonWriter(join(dir, 'Observation.ndjson')),
      };
    }
  }
  write(p: LatentPatient, rng: Rng): void {
    const out = this.writer.render(p, rng);
    for (const type of ['Patient', 'Condition', 'Observation'] as const) {
      for (const r of out[type]) {
        this.files?.[type].write(r);
        this.tap(r);
      }
    }
  }
  close(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [type, w] of Object.entries(this.files ?? {})) {
      w.close();
      counts[type] = w.count;
    }
    return counts;
  }
}

/** What the simulator knows about one patient's non-FHIR artefacts (for truth codes). */
interface ArtefactTruth {
  findings?: LatentPatient['findings'];
  dosage?: Int8Array;
  sample?: number;
  mentions?: Set<string>;
}

/** Fills the columns of non-FHIR attributes of `res` from the planted facts. */
function fillArtefactCodes(schema: Schema, res: EncodeResult, truth: Map<string, ArtefactTruth>, noCalls: Uint8Array[] | undefined): void {
  const width = res.width;
  schema.attributes.forEach((a, col) => {
    if (a.kind !== 'snp' && a.kind !== 'image-finding' && a.kind !== 'note-mention') return;
    const j = a.kind === 'snp' ? PANEL.findIndex((s) => s.chrom === a.chrom && s.pos === a.pos && s.ref === a.ref && s.alt === a.alt) : -1;
    const concept = a.kind === 'note-mention' ? a.name.replace(/^note_/, '') : '';
    const finding =
      a.kind === 'image-finding'
        ? ({ 'cardiothoracic-ratio': 'cardiomegaly', 'lung-opacity': 'opacity', nodule: 'nodule' } as const)[a.feature]
        : undefined;
    for (let i = 0; i < res.n; i++) {
      const t = truth.get(res.patientIds[i]);
      let code: number;
      if (a.kind === 'snp') {
        code = t?.dosage && t.sample !== undefined && j >= 0 && !noCalls?.[t.sample]?.[j] ? t.dosage[j] : SNP_MISSING;
      } else if (a.kind === 'image-finding') {
        code = !t?.findings ? imageMissingCode(a) : t.findings[finding!] ? a.classes.length - 1 : 0;
      } else code = !t?.mentions ? NOTE_MISSING : t.mentions.has(concept) ? 1 : 0;
      res.rows[i * width + col] = code;
    }
  });
}

function inspectYaml(schemaPath: string, files: { fhir: boolean; dicom: boolean; vcf?: string; notes: boolean }, siteId: string): string {
  const lines = [
    `# Data of simulated site ${siteId}: run \`fedsynth agent inspect --config <this file>\`.`,
    `siteId: ${siteId}`,
    `schema: ${JSON.stringify(schemaPath)}`,
    'data:',
    ...(files.fhir ? ['  fhirNdjson: .'] : []),
    ...(files.dicom ? ['  dicom: dicom'] : []),
    ...(files.vcf ? [`  vcf: ${files.vcf}`] : []),
    ...(files.notes ? ['  notes: notes'] : []),
    '  linkage:',
    '    key: identifier',
    `    identifierSystem: urn:fedsynth:sim:${siteId}:mrn`,
    ...(files.vcf ? ['    vcfSampleMap: vcf-samples.tsv'] : []),
  ];
  return lines.join('\n') + '\n';
}

export interface Marginals {
  n: number;
  attributes: Array<{ name: string; labels: string[] }>;
  /** attribute → counts per value. */
  oneWay: Record<string, number[]>;
  /** "a|b" (schema order, a before b) → counts, row-major (b varies fastest). */
  twoWay: Record<string, number[]>;
}

/**
 * 1-way and 2-way count marginals of encoded rows (several encode results pooled). Image-component
 * attributes are left out: the simulator plants no effect on them and does not compute what the
 * sites' encoder reads from its images, so it has no truth to report for them.
 */
export function computeMarginals(schema: Schema, results: EncodeResult[], twoWay = true): Marginals {
  const all = schemaAttributes(schema);
  const cols = schema.attributes.map((a, i) => (a.kind === 'image-component' ? -1 : i)).filter((i) => i >= 0);
  const attrs = cols.map((i) => all[i]);
  const k = attrs.length;
  const one = attrs.map((a) => new Array<number>(a.size).fill(0));
  const two = new Map<string, number[]>();
  if (twoWay)
    for (let i = 0; i < k; i++)
      for (let j = i + 1; j < k; j++) two.set(`${i},${j}`, new Array<number>(attrs[i].size * attrs[j].size).fill(0));
  let n = 0;
  for (const res of results) {
    if (res.width !== all.length) throw new Error(`computeMarginals: rows of width ${res.width}, schema has ${all.length} attributes`);
    for (let r = 0; r < res.n; r++) {
      const base = r * res.width;
      for (let i = 0; i < k; i++) {
        const vi = res.rows[base + cols[i]];
        one[i][vi]++;
        if (!twoWay) continue;
        for (let j = i + 1; j < k; j++) two.get(`${i},${j}`)![vi * attrs[j].size + res.rows[base + cols[j]]]++;
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
  return JSON.stringify(v, null, 2).replace(
    /\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s+\]/g,
    (_, inner: string) => `[${inner.split(/,\n\s+/).join(', ')}]`,
  );
}

export function loadDefaultSchema(): Schema {
  return parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
}

/** The sink of a simulation without notes or images: nothing to hand to a thread. */
const immediateSink: FileWriter & { flush(): Promise<void>; close(): Promise<void> } = {
  write: syncFileWriter.write,
  flush: async () => undefined,
  close: async () => undefined,
};

/** Simulates the federation and writes it to `outDir`. */
export async function simulateFederation(options: SimulateOptions): Promise<SimulationSummary> {
  const start = performance.now();
  const { sites, patients, seed } = options;
  if (!Number.isInteger(sites) || sites < 1 || sites > MAX_SITES)
    throw new Error(`sites must be an integer from 1 to ${MAX_SITES}, got ${sites}`);
  if (!Number.isInteger(patients) || patients < 1 || patients > MAX_PATIENTS)
    throw new Error(`patients must be an integer from 1 to ${MAX_PATIENTS}, got ${patients}`);
  const schema = options.schema ?? loadDefaultSchema();
  const modalities = new Set<SimModality>(options.modalities ?? ['fhir']);
  for (const m of modalities)
    if (!(SIM_MODALITIES as readonly string[]).includes(m))
      throw new Error(`unknown modality ${JSON.stringify(m)} (known: ${SIM_MODALITIES.join(', ')})`);
  if (modalities.size === 0) throw new Error('at least one modality is needed');
  const imageSize = options.imageSize ?? DEFAULT_IMAGE_SIZE;
  if (!Number.isInteger(imageSize) || imageSize < 32 || imageSize > 4096)
    throw new Error(`image size must be an integer from 32 to 4096, got ${imageSize}`);
  const multimodal = [...modalities].some((m) => m !== 'fhir');
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const root = new Rng(`fedsynth-simulate/${seed}`);

  const siteSummaries: SimulatedSite[] = [];
  const siteTruth: Array<Record<string, unknown>> = [];
  const encoded: EncodeResult[] = [];
  // Notes and DICOMs are written by a worker thread (file-sink.ts); FHIR and VCF stream from here.
  const sink = modalities.has('dicom') || modalities.has('notes') ? new FileSink() : immediateSink;
  try {
    for (let s = 0; s < sites; s++) {
      if (options.abort?.()) throw new Error(`simulate: stopped by the caller before site ${s + 1} of ${sites}`);
      const id = siteId(s);
      const profile = siteProfile(s);
      const dir = join(outDir, id);
      mkdirSync(dir, { recursive: true });
      const encoder = new FhirPatientEncoder(schema);
      const emitters: SiteEmitter[] = [new FhirEmitter(schema, profile, dir, (r) => encoder.add(r), modalities.has('fhir'))];
      const dicom = modalities.has('dicom') ? new DicomEmitter(dir, profile, id, imageSize, schema.referenceDate, sink) : undefined;
      const vcf = modalities.has('vcf') ? new VcfEmitter(dir, id, options.vcfBgzip ?? false) : undefined;
      const notes = modalities.has('notes') ? new NotesEmitter(dir, profile, schema.referenceDate, sink) : undefined;
      const artefacts = new Map<string, ArtefactTruth>();
      const usedMrns = new Set<string>();
      const siteRng = root.fork(id);
      const latentCounts = {
        smoker: 0,
        female: 0,
        ageSum: 0,
        conditions: Object.fromEntries(CONDITIONS.map((c) => [c, 0])) as Record<string, number>,
      };
      const dosageSum = { with: new Map<string, [number, number]>(), without: new Map<string, [number, number]>() };
      for (let i = 0; i < patients; i++) {
        const prng = siteRng.fork(i);
        const p = drawLatentPatient(profile, id, i, schema.referenceDate, prng.fork('latent'));
        // MRNs are unique within a site (a real MRN is): redraw on a collision.
        for (let k = 0; usedMrns.has(p.mrn); k++) p.mrn = `MRN${String(1_000_000 + prng.fork(`mrn-${k}`).int(9_000_000))}`;
        usedMrns.add(p.mrn);
        latentCounts.smoker += +p.smoker;
        latentCounts.female += +(p.sex === 'female');
        latentCounts.ageSum += p.ageYears;
        for (const c of CONDITIONS) latentCounts.conditions[c] += +p.conditions[c];
        for (const c of CAUSAL) {
          const j = PANEL.findIndex((x) => x.name === c.snp);
          const m = p.conditions[c.condition] ? dosageSum.with : dosageSum.without;
          const key = `${c.snp}:${c.condition}`;
          const cur = m.get(key) ?? [0, 0];
          m.set(key, [cur[0] + p.genome.dosage[j], cur[1] + 1]);
        }
        for (const e of emitters) e.write(p, prng.fork(e.modality));
        if (multimodal) {
          const t: ArtefactTruth = {};
          if (dicom) {
            const im = dicom.write(p, prng.fork('dicom'));
            if (im) t.findings = im.findings;
          }
          if (vcf) {
            const sample = vcf.write(p);
            if (sample !== undefined) {
              t.sample = sample;
              t.dosage = p.genome.dosage;
            }
          }
          if (notes) {
            const m = notes.write(p, prng.fork('notes'));
            if (m) t.mentions = m;
          }
          artefacts.set(p.id, t);
        }
      }
      const resources: Record<string, number> = {};
      for (const e of emitters) Object.assign(resources, e.close());
      const extra = drawLatentPatient(profile, id, patients, schema.referenceDate, siteRng.fork('planted').fork('latent'));
      const modalityTruth: Record<string, unknown> = {};
      let noCalls: Uint8Array[] | undefined;
      if (dicom) {
        dicom.close(extra, siteRng.fork('planted-dicom'));
        modalityTruth.dicom = { dir: 'dicom', ...dicom.stats, imageSize, scanner: profile.scanner };
      }
      if (vcf) {
        const v = vcf.close(profile, siteRng.fork('planted-vcf'));
        noCalls = v.panelNoCall;
        const linked = v.samples - 1;
        // Empirical alt-allele frequency among sequenced patients (called genotypes).
        const af: Record<string, number> = {};
        let panelCalls = 0;
        PANEL.forEach((snp, j) => {
          let alt = 0;
          let called = 0;
          for (const t of artefacts.values()) {
            if (t.sample === undefined || v.panelNoCall[t.sample][j]) continue;
            alt += t.dosage![j];
            called++;
          }
          panelCalls += called;
          af[snp.name] = called ? Number((alt / (2 * called)).toFixed(4)) : 0;
        });
        modalityTruth.vcf = {
          file: v.path.slice(dir.length + 1),
          sampleMap: 'vcf-samples.tsv',
          samples: v.samples,
          linkedSamples: linked,
          orphanSamples: 1,
          records: v.records,
          panelSnps: PANEL.length,
          snpsNotOnArray: v.absent,
          panelGenotypesOfLinked: linked * PANEL.length,
          panelCallsOfLinked: panelCalls,
          panelCallRate: linked ? Number((panelCalls / (linked * PANEL.length)).toFixed(6)) : 0,
          alleleFrequencies: af,
          expectedAlleleFrequencies: Object.fromEntries(
            PANEL.map((snp, j) => [
              snp.name,
              Number(
                populationAlleleFrequencies()
                  [j].reduce((acc, f, k) => acc + (f * profile.ancestry[k]) / profile.ancestry.reduce((a, b) => a + b, 0), 0)
                  .toFixed(4),
              ),
            ]),
          ),
        };
      }
      if (notes) {
        notes.close(extra, siteRng.fork('planted-notes'));
        modalityTruth.notes = {
          dir: 'notes',
          files: notes.files,
          patientsWithNotes: notes.patients,
          orphanFiles: 1,
          styles: profile.noteStyles,
          patientsMentioning: notes.mentionCounts,
        };
      }
      if (multimodal) {
        writeFileSync(
          join(dir, 'inspect.yaml'),
          inspectYaml(
            options.schemaPath ? resolve(options.schemaPath) : MULTIMODAL_SCHEMA_PATH,
            {
              fhir: modalities.has('fhir'),
              dicom: !!dicom,
              ...(vcf ? { vcf: options.vcfBgzip ? 'genomes.vcf.gz' : 'genomes.vcf' } : {}),
              notes: !!notes,
            },
            id,
          ),
        );
      }
      const res = encoder.finish();
      if (multimodal) fillArtefactCodes(schema, res, artefacts, noCalls);
      if (res.n !== patients || res.issues.length > 0) {
        throw new Error(
          `simulate: encoding ${id} gave ${res.n} rows for ${patients} patients and ${res.issues.length} issue(s): ${res.issues[0]?.reason ?? ''}`,
        );
      }
      encoded.push(res);
      // The site's notes and images are on disk before anyone is told the site exists.
      await sink.flush();
      const summary: SimulatedSite = { id, profile: profile.profile, dir, patients, resources };
      siteSummaries.push(summary);
      await options.onSite?.(summary);
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
        ancestry: profile.ancestry,
        causalDosage: Object.fromEntries(
          CAUSAL.map((c) => {
            const w = dosageSum.with.get(`${c.snp}:${c.condition}`) ?? [0, 0];
            const wo = dosageSum.without.get(`${c.snp}:${c.condition}`) ?? [0, 0];
            return [
              `${c.snp}:${c.condition}`,
              {
                snp: c.snp,
                condition: c.condition,
                oddsRatioPerAllele: c.oddsRatioPerAllele,
                meanDosageWithCondition: Number((w[0] / Math.max(1, w[1])).toFixed(4)),
                meanDosageWithout: Number((wo[0] / Math.max(1, wo[1])).toFixed(4)),
              },
            ];
          }),
        ),
        ...(multimodal ? { modalities: modalityTruth } : {}),
        oneWay: computeMarginals(schema, [res], false).oneWay,
      });
    }
  } finally {
    await sink.close();
  }

  const truth = {
    generator: 'fedsynth simulate',
    formatVersion: 1,
    seed,
    sites,
    patientsPerSite: patients,
    schema: { name: schema.name, version: schema.version, hash: schemaHash(schema), referenceDate: schema.referenceDate },
    modalities: [...modalities],
    model: { ...describeModel(), genome: describeGenomeModel() },
    siteMixes: siteTruth,
    marginals: computeMarginals(schema, encoded),
  };
  const truthPath = join(outDir, 'truth.json');
  writeFileSync(truthPath, prettyJson(truth) + '\n');
  return { outDir, truthPath, sites: siteSummaries, elapsedMs: performance.now() - start, encoded };
}
