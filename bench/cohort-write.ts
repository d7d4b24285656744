// Cross-modal cohort write throughput (not a test).
//   npx tsx bench/cohort-write.ts [--n 1000] [--workers 2] [--validate-fhir 0|1|2] [--png 0] [--size 256]
// Per patient: FHIR R4 Bundle (decodePatient + ImagingStudy + variant Observations +
// DocumentReference, validated with @medplum/core: 1 = once per resource shape (default), 2 = every
// resource, 0 = not at all), a 256×256 16-bit DICOM
// (decoded from the phantom image model, written, parsed back with dicom-parser), a VCF (written,
// validated), a verified note (rejection sampling) — all written to disk, one file each.
// Baseline: writing the same bytes to the same file layout without generating them.
// Reports patients/s (one worker and W workers) and the ratio generate+write / write-only.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { buildPatientBundle, loadR4Definitions, R4Validator, validateBundle } from '../modalities/fhir/bundle.ts';
import { decodePatient, type DecodedPatient } from '../modalities/fhir/decode.ts';
import { Rng } from '../modalities/fhir/rng.ts';
import { validateVcf, writeVcf, type Genotype } from '../modalities/genome/index.ts';
import { decodeImage, phantomImageModel, pngPreview, SOP_CLASS, uuidToDicomUid, validateDicom, writeDicom, type ImageModel } from '../modalities/image/index.ts';
import { buildVocabulary, generateVerifiedNote, NoteStats, type SyntheticFacts, type Vocabulary } from '../modalities/notes/index.ts';
import { parseSchema, type Schema } from '../model/schema.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

interface Ctx {
  schema: Schema;
  model: ImageModel;
  vocab: Vocabulary;
  panel: Omit<Genotype, 'dosage'>[];
  validateFhir: number;
  validator: R4Validator;
  png: boolean;
  size: number;
  notes: NoteStats;
}

const STAGES = ['fhir-decode', 'image', 'dicom', 'vcf', 'note', 'bundle', 'fhir-validate', 'write'] as const;
type Stage = (typeof STAGES)[number];

function makeCtx(opts: { validateFhir: number; png: boolean; size: number }): Ctx {
  const schema = parseSchema(readFileSync(new URL('../schemas/hospital-v1.yaml', import.meta.url), 'utf8'));
  const conditions = schema.attributes.filter((a) => a.kind === 'condition').map((a) => ({ name: a.name, display: (a as { display: string }).display }));
  const rng = new Rng('panel');
  const panel = Array.from({ length: 32 }, (_, i) => {
    const chrom = String(1 + (i % 22));
    const [ref, alt] = rng.pick([['A', 'G'], ['C', 'T'], ['G', 'A'], ['T', 'C']]);
    return { rsid: `rs${100000 + i * 7919}`, chrom, pos: 1_000_000 + i * 104_729, ref, alt };
  });
  if (opts.validateFhir) loadR4Definitions();
  return { schema, model: phantomImageModel(), vocab: buildVocabulary(conditions), panel, notes: new NoteStats(), validator: new R4Validator(opts.validateFhir === 2 ? 'full' : 'memo'), ...opts };
}

function findingFor(conditions: Set<string>, rng: Rng): string {
  if (conditions.has('pneumonia') && rng.bernoulli(0.8)) return 'opacity';
  if (conditions.has('heart_failure') && rng.bernoulli(0.7)) return rng.bernoulli(0.6) ? 'cardiomegaly' : 'effusion';
  return rng.bernoulli(0.08) ? rng.pick(['opacity', 'cardiomegaly', 'effusion']) : 'normal';
}

/** Generates one patient's files (validated) and returns them. */
function generate(ctx: Ctx, k: number, t: Record<Stage, number>): [string, Uint8Array | string][] {
  let t0 = performance.now();
  const lap = (s: Stage) => {
    const now = performance.now();
    t[s] += now - t0;
    t0 = now;
  };
  const rng = new Rng('bench').fork(k);
  const row = ctx.schema.attributes.map((a) => {
    switch (a.kind) {
      case 'age':
        return 2 + rng.int(a.edges.length - 2);
      case 'sex':
        return rng.int(2);
      case 'condition':
        return rng.bernoulli(0.18) ? 1 : 0;
      case 'lab':
        return rng.int(a.edges.length + 2);
      default:
        return 0;
    }
  });
  const decoded: DecodedPatient = decodePatient(ctx.schema, row, rng, { identifierValue: String(k + 1) });
  lap('fhir-decode');
  const pid = decoded.patient.id!;
  const has = new Set<string>();
  const facts: SyntheticFacts = {
    age: 2025 - Number(String(decoded.patient.birthDate).slice(0, 4)),
    sex: String(decoded.patient.gender),
    conditions: decoded.conditions.map((c) => {
      const attr = ctx.schema.attributes.find((a) => a.kind === 'condition' && a.display === (c.code as { text: string }).text)!;
      has.add(attr.name);
      return { name: attr.name, display: (attr as { display: string }).display };
    }),
    labs: decoded.observations.map((o) => {
      const q = o.valueQuantity as { value: number; unit: string };
      const attr = ctx.schema.attributes.find((a) => a.kind === 'lab' && a.display === (o.code as { text: string }).text)!;
      return { name: attr.name, display: (attr as { display: string }).display, value: q.value, unit: q.unit };
    }),
  };
  facts.image = { findingClass: findingFor(has, rng), modality: 'DX' };
  const img = decodeImage(ctx.model, facts.image, rng, { rows: ctx.size, cols: ctx.size });
  lap('image');
  const uids = { studyInstanceUid: uuidToDicomUid(rng.uuid()), seriesInstanceUid: uuidToDicomUid(rng.uuid()), sopInstanceUid: uuidToDicomUid(rng.uuid()) };
  const spec = {
    ...uids,
    pixels: img.pixels,
    rows: img.rows,
    cols: img.cols,
    patientId: pid,
    patientBirthDate: String(decoded.patient.birthDate),
    patientSex: String(decoded.patient.gender),
    studyDate: '2024-10-01',
    pixelSpacing: [(0.14 * 2560) / ctx.size, (0.14 * 2560) / ctx.size] as [number, number],
    windowCenter: img.windowCenter,
    windowWidth: img.windowWidth,
  };
  const dcm = writeDicom(spec);
  const dc = validateDicom(dcm, spec);
  if (!dc.ok) throw new Error(`DICOM failed validation: ${dc.errors[0]}`);
  lap('dicom');
  facts.genotypes = ctx.panel.map((p) => ({ ...p, dosage: rng.bernoulli(0.02) ? -1 : rng.weighted([0.49, 0.42, 0.09]) }));
  const vcf = writeVcf([{ id: pid, genotypes: facts.genotypes }], { build: 'GRCh38', fileDate: '2025-01-01' });
  const vv = validateVcf(vcf);
  if (!vv.ok) throw new Error(`VCF failed validation: ${vv.errors[0]}`);
  lap('vcf');
  const note = generateVerifiedNote(facts, ctx.vocab, rng, { stats: ctx.notes });
  lap('note');
  const { bundle } = buildPatientBundle(
    decoded,
    {
      image: { ...uids, sopClassUid: SOP_CLASS.DX, modality: 'DX', started: '2024-10-01T12:00:00Z', findingClass: facts.image.findingClass, path: `dicom/${pid}.dcm` },
      genome: { build: 'GRCh38', genotypes: facts.genotypes },
      note: { text: note.text, date: '2024-10-01T12:30:00Z' },
    },
    rng,
  );
  const json = JSON.stringify(bundle);
  lap('bundle');
  if (ctx.validateFhir) {
    const issues = validateBundle(bundle, ctx.validator);
    if (issues.length) throw new Error(`FHIR failed validation: ${issues[0].resource}: ${issues[0].message}`);
    lap('fhir-validate');
  }
  const files: [string, Uint8Array | string][] = [
    [`fhir/${pid}.json`, json],
    [`dicom/${pid}.dcm`, dcm],
    [`vcf/${pid}.vcf`, vcf],
    [`notes/${pid}.txt`, note.text],
  ];
  if (ctx.png) files.push([`png/${pid}.png`, pngPreview(img.pixels, img.rows, img.cols, img.windowCenter, img.windowWidth, { downscale: 2 })]);
  return files;
}

function mkdirs(dir: string): void {
  for (const d of ['fhir', 'dicom', 'vcf', 'notes', 'png']) mkdirSync(join(dir, d), { recursive: true });
}

interface RunResult {
  patients: number;
  genMs: number;
  bareMs: number;
  bytes: number;
  stages: Record<Stage, number>;
  notes: ReturnType<NoteStats['toJSON']>;
}

function run(opts: { from: number; n: number; validateFhir: number; png: boolean; size: number; dir: string }): RunResult {
  const ctx = makeCtx(opts);
  const genDir = join(opts.dir, 'gen');
  const bareDir = join(opts.dir, 'bare');
  mkdirs(genDir);
  mkdirs(bareDir);
  // Warm-up (JIT, caches), not timed.
  const stages = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  for (let k = 0; k < 20; k++) generate(ctx, 1e9 + k, stages);
  for (const s of STAGES) stages[s] = 0;
  ctx.notes = new NoteStats();
  const kept: [string, Uint8Array | string][][] = [];
  let bytes = 0;
  const t0 = performance.now();
  for (let k = opts.from; k < opts.from + opts.n; k++) {
    const files = generate(ctx, k, stages);
    const tw = performance.now();
    for (const [p, b] of files) {
      writeFileSync(join(genDir, p), b);
      bytes += typeof b === 'string' ? Buffer.byteLength(b) : b.length;
    }
    stages.write += performance.now() - tw;
    kept.push(files);
  }
  const genMs = performance.now() - t0;
  const t1 = performance.now();
  for (const files of kept) for (const [p, b] of files) writeFileSync(join(bareDir, p), b);
  const bareMs = performance.now() - t1;
  return { patients: opts.n, genMs, bareMs, bytes, stages, notes: ctx.notes.toJSON() };
}

if (!isMainThread) {
  parentPort!.postMessage(run(workerData));
} else {
  const N = arg('n', 1000);
  const W = Math.max(1, Math.min(arg('workers', 2), availableParallelism()));
  const validateFhir = arg('validate-fhir', 1);
  const png = arg('png', 0) !== 0;
  const size = arg('size', 256);
  const root = mkdtempSync(join(tmpdir(), 'fedsynth-cohort-bench-'));
  try {
    console.log(`cores available: ${availableParallelism()}; ${N} patients; ${size}×${size} DICOM; FHIR validation ${['off', 'memoised per resource shape', 'every resource'][validateFhir]}; PNG ${png ? 'on' : 'off'}`);
    // One worker (in-process).
    const one = run({ from: 0, n: Math.min(N, 400), validateFhir, png, size, dir: join(root, 'single') });
    const perStage = STAGES.map((s) => `${s} ${(one.stages[s] / one.patients).toFixed(3)}`).join(', ');
    console.log(`1 thread: ${(one.patients / (one.genMs / 1000)).toFixed(0)} patients/s generate+validate+write; write-only ${(one.patients / (one.bareMs / 1000)).toFixed(0)} patients/s; ratio ${(one.genMs / one.bareMs).toFixed(2)}×; ${(one.bytes / one.patients / 1024).toFixed(1)} KiB/patient`);
    console.log(`  ms/patient by stage: ${perStage}`);
    console.log(`  notes: ${JSON.stringify(one.notes)}`);
    // W workers, N patients split between them, wall clock.
    const per = Math.ceil(N / W);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: W }, (_, w) =>
        new Promise<RunResult>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { from: w * per, n: Math.min(per, N - w * per), validateFhir, png, size, dir: join(root, `w${w}`) } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
      ),
    );
    const wall = performance.now() - t0;
    const total = results.reduce((s, r) => s + r.patients, 0);
    const gen = Math.max(...results.map((r) => r.genMs));
    const bare = Math.max(...results.map((r) => r.bareMs));
    console.log(
      `${W} workers: ${(total / (gen / 1000)).toFixed(0)} patients/s generate+validate+write (timed section, slowest worker); write-only ${(total / (bare / 1000)).toFixed(0)} patients/s; ratio ${(gen / bare).toFixed(2)}×; wall incl. worker start-up ${(wall / 1000).toFixed(1)} s`,
    );
    const rej = results.reduce((s, r) => ({ attempts: s.attempts + r.notes.attempts, rejected: s.rejected + r.notes.rejected }), { attempts: 0, rejected: 0 });
    console.log(`  note rejection rate ${(rej.rejected / Math.max(rej.attempts, 1)).toFixed(3)} (${rej.rejected}/${rej.attempts} attempts)`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
