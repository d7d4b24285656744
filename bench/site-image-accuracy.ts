// The sites' image-finding extractor on the simulated sites' own radiographs, by age band: a
// simulated multimodal federation is written, each site is read with the real multimodal loader
// (site-agent/site-data.ts: the pixel extractor, the cardiomegaly cut of the row's age band), and
// each imaged patient's finding class read is compared with the finding the simulator planted
// (truth: simulator `encoded`). Sensitivity / specificity and counts per schema age band.
// Fixed seed (deterministic).
//   npx tsx bench/site-image-accuracy.ts [--patients 2000] [--sites 3] [--seed 5] [--size 128] [--tmp DIR]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageMissingCode, parseSchema, type AgeAttribute, type ImageFindingAttribute } from '../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH, simulateFederation } from '../simulator/index.ts';
import { loadSimulatedSite } from '../tests/integration/cohort-multimodal-helpers.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const PATIENTS = Number(arg('patients', '2000'));
const SITES = Number(arg('sites', '3'));
const SEED = Number(arg('seed', '5'));
const SIZE = Number(arg('size', '128'));
for (const [k, v] of Object.entries({ PATIENTS, SITES, SEED, SIZE }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`site-image-accuracy: --${k.toLowerCase()} must be a positive integer`);

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const ageCol = schema.attributes.findIndex((a) => a.kind === 'age');
const ageAttr = schema.attributes[ageCol] as AgeAttribute;
const images = schema.attributes
  .map((a, j) => [a, j] as const)
  .filter((x): x is [ImageFindingAttribute, number] => x[0].kind === 'image-finding');
/** Report bands: the schema's child bands, then adults. */
const BANDS: [string, number, number][] = [
  ['0-4', 0, 5],
  ['5-11', 5, 12],
  ['12-17', 12, 18],
  ['18+', 18, 1000],
];
const dir = mkdtempSync(join(arg('tmp', tmpdir()), 'site-image-accuracy-'));
try {
  const sim = await simulateFederation({
    sites: SITES,
    patients: PATIENTS,
    seed: SEED,
    outDir: dir,
    schema,
    schemaPath: MULTIMODAL_SCHEMA_PATH,
    modalities: ['fhir', 'dicom', 'vcf', 'notes'],
    imageSize: SIZE,
  });
  // [band][attribute] → tp, fn, tn, fp
  const counts = BANDS.map(() => images.map(() => [0, 0, 0, 0]));
  for (let s = 0; s < SITES; s++) {
    const loaded = await loadSimulatedSite(dir, s, schema);
    const truth = sim.encoded[s]!;
    const truthRow = new Map(truth.patientIds.map((id, i) => [id, i]));
    loaded.patientIds.forEach((id, r) => {
      const t = truthRow.get(id);
      if (t === undefined) return;
      const years = ageAttr.edges[loaded.data.columns[ageCol]![r]!]!;
      const b = BANDS.findIndex(([, lo, hi]) => years >= lo && years < hi);
      images.forEach(([a, j], k) => {
        const read = loaded.data.columns[j]![r]!;
        const planted = truth.rows[t * truth.width + j]!;
        if (read === imageMissingCode(a) || planted === imageMissingCode(a)) return;
        const present = planted === a.classes.length - 1;
        const called = read === a.classes.length - 1;
        counts[b]![k]![present ? (called ? 0 : 1) : called ? 3 : 2]!++;
      });
    });
  }
  console.log(
    `sites' extractor on their own images (${SITES} sites × ${PATIENTS} patients, seed ${SEED}, ${SIZE}²): sensitivity (n) / specificity (n)`,
  );
  console.log(`age band | ${images.map(([a]) => a.name).join(' | ')}`);
  BANDS.forEach(([label], b) => {
    const cells = counts[b]!.map(([tp, fn, tn, fp]) => {
      const sens = tp + fn > 0 ? (tp / (tp + fn)).toFixed(2) : '—';
      const spec = tn + fp > 0 ? (tn / (tn + fp)).toFixed(3) : '—';
      return `${sens} (${tp + fn}) / ${spec} (${tn + fp})`;
    });
    console.log(`${label} | ${cells.join(' | ')}`);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
