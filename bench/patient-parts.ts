// CPU per full cross-modal patient, part by part, outside the radiograph (not a test):
//   npx tsx bench/patient-parts.ts [--patients 300] [--reps 5] [--parts validate,ndjson,...] [--profile FILE]
// The bench's model and conditions (bench/cohort-write.ts: a small simulated multimodal
// federation, every patient with an image, a genome and a note) give `--patients` patients,
// prepared once by synthesis/patient.ts with their resources and facts kept. Each part then
// runs again over all of them, `--reps` times, in this thread, and is reported in µs of CPU
// (user + system) per patient: the minimum over the repetitions (the least disturbed by other
// load on a shared machine) and the median. Parts:
//   decode    decodePatient (the record's life and its FHIR resources)
//   note      generateVerifiedNote (wording, then verification against the facts)
//   validate  validatePatientResources with a fresh memo validator (the process's shape memo warm)
//   verify    verifyRecord (the clinical verifier)
//   ndjson    ndjsonOf (the record as NDJSON bytes by resource type)
//   vcf       validateVcf (the written VCF parsed back)
// `--profile FILE` writes a V8 CPU profile of the timed repetitions only (node:inspector).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawPlausible } from '../synthesis/cohort.ts';
import { ndjsonOf, PatientPreparer, wordingVocabulary, type PreparedPatient } from '../synthesis/patient.ts';
import { R4Validator, validatePatientResources } from '../modalities/fhir/bundle.ts';
import { recordIndex, verifyRecord } from '../modalities/fhir/verify-record.ts';
import { decodePatient } from '../modalities/fhir/decode.ts';
import { generateVerifiedNote, NoteStats } from '../modalities/notes/generate.ts';
import { buildVocabulary } from '../modalities/notes/vocabulary.ts';
import { validateVcf } from '../modalities/genome/validate.ts';
import { Rng } from '../model/rng.ts';
import type { Schema } from '../schema/schema.ts';
import { centralModel, pooledMultimodal } from '../tests/integration/cohort-multimodal-helpers.ts';
import { fullCrossModal } from './support/full-cross-modal.ts';

const PARTS = ['decode', 'note', 'validate', 'verify', 'ndjson', 'vcf'] as const;
const USAGE = `usage: npx tsx bench/patient-parts.ts [--patients 300] [--reps 5] [--parts ${PARTS.join(',')}] [--profile FILE]`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const PATIENTS = Number(arg('patients', '300'));
const REPS = Number(arg('reps', '5'));
const WANT = arg('parts', PARTS.join(',')).split(',');
const PROFILE = arg('profile', '');
if (
  !Number.isInteger(PATIENTS) ||
  PATIENTS < 1 ||
  !Number.isInteger(REPS) ||
  REPS < 1 ||
  WANT.some((p) => !(PARTS as readonly string[]).includes(p))
) {
  console.error(`bad value among --patients ${PATIENTS}, --reps ${REPS}, --parts ${WANT.join(',')}\n${USAGE}`);
  process.exit(2);
}

const root = mkdtempSync(join(tmpdir(), 'fedsynth-patient-parts-'));
let schema: Schema;
let model: ReturnType<typeof centralModel>;
try {
  const sim = await pooledMultimodal(join(root, 'sites'), { patients: 300 });
  schema = sim.schema;
  model = centralModel(sim.pooled);
} finally {
  rmSync(root, { recursive: true, force: true });
}
const seed = 7;
const { dataset } = drawPlausible(schema, model, PATIENTS, seed, fullCrossModal(schema), undefined);
const rows: number[][] = [];
for (let r = 0; r < dataset.rows; r++) rows.push(dataset.columns.map((c) => c[r]));
const preparer = new PatientPreparer(schema, seed);
const patients: PreparedPatient[] = [];
for (let k = 0; k < rows.length; k++) {
  const o = preparer.prepare(k, rows[k], 0, true);
  if (o.ok) patients.push(o);
}
const vcfs = patients.flatMap((p) => p.files.filter(([rel]) => rel.endsWith('.vcf')).map(([, text]) => String(text)));
const index = recordIndex(schema);
const vocab = buildVocabulary(schema.attributes.flatMap((a) => (a.kind === 'condition' ? [{ name: a.name, display: a.display }] : [])));
const wording = wordingVocabulary(schema, vocab);
const rng = new Rng(seed);

const run: Record<(typeof PARTS)[number], () => void> = {
  decode: () => {
    for (let k = 0; k < rows.length; k++) decodePatient(schema, rows[k], rng.fork(k), { identifierValue: String(k + 1) });
  },
  note: () => {
    for (let k = 0; k < patients.length; k++)
      generateVerifiedNote(patients[k].facts!, wording, rng.fork(`note-${k}`), { stats: new NoteStats(), maxTries: 5, verifyWith: vocab });
  },
  validate: () => {
    for (const p of patients) validatePatientResources(p.resources!, new R4Validator('memo'));
  },
  verify: () => {
    for (const p of patients) verifyRecord(index, p.resources!);
  },
  ndjson: () => {
    for (const p of patients) ndjsonOf(p.resources!);
  },
  vcf: () => {
    for (const text of vcfs) validateVcf(text);
  },
};
const parts = PARTS.filter((p) => WANT.includes(p));
const perPatient = (p: (typeof PARTS)[number]) => (p === 'decode' ? rows.length : p === 'vcf' ? vcfs.length : patients.length);
// One untimed pass: the JIT and the shape memo warm, as in a cohort past its first patients.
for (const p of parts) run[p]();
let session: Session | undefined;
if (PROFILE) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const us: Record<string, number[]> = {};
for (let rep = 0; rep < REPS; rep++)
  for (const p of parts) {
    const c0 = process.cpuUsage();
    run[p]();
    const c = process.cpuUsage(c0);
    (us[p] ??= []).push((c.user + c.system) / perPatient(p));
  }
if (session) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(PROFILE, JSON.stringify(profile));
}
console.log(
  `${patients.length} full cross-modal patients (of ${rows.length} rows), ${REPS} repetitions; CPU µs per patient, min / median:`,
);
for (const p of parts) {
  const s = us[p].slice().sort((a, b) => a - b);
  console.log(`  ${p.padEnd(9)} ${s[0].toFixed(0).padStart(5)} / ${s[s.length >> 1].toFixed(0)}`);
}
