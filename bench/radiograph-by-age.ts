// The sites' image-finding extractors on the synthetic radiographs by age band: the protocol of
// tests/unit/image-extractor-accuracy.test.ts (each finding present in n images and absent in n,
// the others at 0.15, builds z ~ N(0, 1), 256² 16-bit read on the 64² grid) with the age drawn in
// the band, plus the cardiothoracic ratio read on the normal hearts; a cardiomegaly is called at
// the normal limit of the schema's age band holding the age (finding-scores.ts). Fixed seeds (deterministic).
// npx tsx bench/radiograph-by-age.ts [images per class, default 150]
import { readFileSync } from 'node:fs';
import { renderChestRadiograph, type RadiographFindings } from '../modalities/image/chest-radiograph.ts';
import { densityToStored } from '../modalities/image/radiograph-pixels.ts';
import { Rng } from '../model/rng.ts';
import { ageBin, parseSchema, type AgeAttribute, type ImageFindingAttribute } from '../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../simulator/index.ts';
import { resampleToGrid } from '../site-agent/connectors/dicom/index.ts';
import { gridImageScores, imageFindingCodes } from '../site-agent/features/image.ts';

const n = Number(process.argv[2] ?? 150);
if (!(Number.isInteger(n) && n > 0)) throw new Error(`radiograph-by-age: images ${process.argv[2]} is not a positive integer`);
const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const attrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
const ageAttr = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age')!;
/** The lower edge of the schema's age band at `years` (the row's band: the cardiomegaly cut is that band's). */
const bandFrom = (years: number): number => ageAttr.edges[ageBin(ageAttr, Math.floor(years))]!;
const FINDINGS: (keyof RadiographFindings)[] = ['cardiomegaly', 'opacity', 'nodule'];
const ATTR: Record<keyof RadiographFindings, string> = { cardiomegaly: 'img_cardiomegaly', opacity: 'img_opacity', nodule: 'img_nodule' };
const BANDS: [string, number, number][] = [
  ['0-1', 0, 1],
  ['1-3', 1, 3],
  ['3-7', 3, 7],
  ['7-12', 7, 12],
  ['12-18', 12, 18],
  ['18-90', 18, 90],
];

console.log('age (y) | cardiomegaly sens/spec | opacity sens/spec | nodule sens/spec | normal-heart CTR median (5–95 %)');
for (const [band, a0, a1] of BANDS) {
  const cells = [band];
  const normalCtr: number[] = [];
  for (const finding of FINDINGS) {
    const j = attrs.findIndex((a) => a.name === ATTR[finding]);
    let tp = 0;
    let tn = 0;
    for (const present of [true, false])
      for (let i = 0; i < n; i++) {
        const rng = new Rng(`byage-${band}-${finding}-${present}-${i}`);
        const f: RadiographFindings = { cardiomegaly: rng.bernoulli(0.15), opacity: rng.bernoulli(0.15), nodule: rng.bernoulli(0.15) };
        f[finding] = present;
        const anatomy = { ageYears: a0 + (a1 - a0) * rng.next(), sex: rng.bernoulli(0.5) ? 'female' : 'male', habitus: rng.normal() };
        const img = renderChestRadiograph(256, anatomy, f, rng);
        const stored = densityToStored(img.density, 16, rng);
        const s = gridImageScores(resampleToGrid(stored.pixels, 256, 256, 64), 64);
        if (!s.ok) continue; // a miss either way
        if (!f.cardiomegaly) normalCtr.push(s.scores['cardiothoracic-ratio']);
        const call = imageFindingCodes(attrs, s.scores, bandFrom(anatomy.ageYears))[j] === 1;
        if (present && call) tp++;
        if (!present && !call) tn++;
      }
    cells.push(`${(tp / n).toFixed(2)}/${(tn / n).toFixed(2)}`);
  }
  normalCtr.sort((x, y) => x - y);
  const q = (p: number) => normalCtr[Math.floor(p * (normalCtr.length - 1))]!.toFixed(3);
  cells.push(`${q(0.5)} (${q(0.05)}–${q(0.95)})`);
  console.log(cells.join(' | '));
}
