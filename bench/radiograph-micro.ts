// Per-stage CPU time of one synthetic 256² radiograph in one thread (steady state), and the
// sites' lung-opacity score of the synthetic images with and without the finding (`--scores`).
// npx tsx bench/radiograph-micro.ts [images] [--scores]
import { readFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
import { Rng } from '../model/rng.ts';
import { parseSchema } from '../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../simulator/index.ts';
import { renderChestRadiograph, chestWorkspace } from '../modalities/image/chest-radiograph.ts';
import { radiographBuffers, synthesiseRadiograph, synthStats } from '../modalities/image/radiograph-synth.ts';
import { imageScores } from '../site-agent/features/image.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: npx tsx bench/radiograph-micro.ts [images] [--scores]
  images    radiographs timed per stage (positive integer, default 1500)
  --scores  also the lung-opacity score of 200 images with and without the finding`);
  process.exit(0);
}
const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const size = 256;
const n = Number(process.argv[2] ?? 1500);
if (!(Number.isInteger(n) && n > 0)) throw new Error(`radiograph-micro: images ${process.argv[2]} is not a positive integer`);
const cpuMs = (f: () => void): number => {
  const t = cpuUsage();
  f();
  const d = cpuUsage(t);
  return (d.user + d.system) / 1000;
};
const rng = new Rng('micro');
const anatomy = (i: number) => ({ ageYears: (i * 7) % 90, sex: i % 2 ? 'female' : 'male', habitus: ((i % 5) - 2) * 0.5 });
const work = chestWorkspace(size);
const into = new Float32Array(size * size);
// Findings at roughly the demo cohort's rates among imaged patients.
const find = (i: number) => ({ cardiomegaly: i % 8 === 0, opacity: i % 10 === 3, nodule: i % 20 === 5 });
for (let i = 0; i < 300; i++) renderChestRadiograph(size, anatomy(i), find(i), rng, into, work);
const render = cpuMs(() => {
  for (let i = 0; i < n; i++) renderChestRadiograph(size, anatomy(i), find(i), rng, into, work);
});
const bufs = radiographBuffers(schema, size);
for (let i = 0; i < 300; i++) synthesiseRadiograph(schema, size, anatomy(i), find(i), [1, 2, 1], rng, bufs);
const redrawn0 = synthStats.redrawn;
const synth = cpuMs(() => {
  for (let i = 0; i < n; i++) synthesiseRadiograph(schema, size, anatomy(i), find(i), [i % 4, (i >> 2) % 4, 1], rng, bufs);
});
console.log(
  `render ${(render / n).toFixed(3)} ms CPU/image, synthesise ${(synth / n).toFixed(3)} ms CPU/image (${n} images, ${synthStats.redrawn - redrawn0} drawn again)`,
);
const grid = schema.image?.grid ?? 64;
for (const opacity of process.argv.includes('--scores') ? [false, true] : []) {
  const s: number[] = [];
  for (let i = 0; i < 200; i++) {
    const img = synthesiseRadiograph(schema, size, anatomy(i), { cardiomegaly: false, opacity, nodule: false }, [1, 2, 1], rng);
    const r = imageScores(img.pixels, size, size, grid);
    s.push(r.ok ? r.scores['lung-opacity'] : NaN);
  }
  const raw: number[] = [];
  for (let i = 0; i < 200; i++) {
    const img = renderChestRadiograph(size, anatomy(i), { cardiomegaly: false, opacity, nodule: false }, rng);
    const r = imageScores(img.density, size, size, grid);
    raw.push(r.ok ? r.scores['lung-opacity'] : NaN);
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  console.log(`opacity=${opacity}: synthesised score mean ${mean(s).toFixed(4)}, rendered density ${mean(raw).toFixed(4)}`);
}
