// The site's image-finding extractors (site-agent/features/image.ts) on the synthetic
// radiographs (real anatomy, modalities/image/chest-radiograph.ts) and on the real NIH chest
// radiograph: per finding, sensitivity and specificity at the schema's cut points, on fixed seeds
// (deterministic). IMAGE_ACCURACY=N prints the table for N images per class (docs/modalities.md).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderChestRadiograph, type RadiographFindings } from '../../modalities/image/chest-radiograph.ts';
import { densityToStored } from '../../modalities/image/radiograph-pixels.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema, type ImageFindingAttribute } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { dicomGrid, parseDicomBytes, resampleToGrid } from '../../site-agent/connectors/dicom/index.ts';
import { gridImageScores, imageFindingCodes } from '../../site-agent/features/image.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const findingAttrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
const FINDINGS: (keyof RadiographFindings)[] = ['cardiomegaly', 'opacity', 'nodule'];
const ATTR: Record<keyof RadiographFindings, string> = { cardiomegaly: 'img_cardiomegaly', opacity: 'img_opacity', nodule: 'img_nodule' };

interface Accuracy {
  sensitivity: number;
  specificity: number;
  /** Images per class (with the finding, without it). */
  n: number;
}

/**
 * Per finding: n images with it and n without (ages 0–90, both sexes, builds z ~ N(0, 1), each
 * other finding present with probability 0.15), 256×256 16-bit, read back on the 64×64 grid.
 */
function measure(n: number): Record<keyof RadiographFindings, Accuracy> {
  const out = {} as Record<keyof RadiographFindings, Accuracy>;
  for (const finding of FINDINGS) {
    const j = findingAttrs.findIndex((a) => a.name === ATTR[finding]);
    let tp = 0;
    let tn = 0;
    for (const present of [true, false]) {
      for (let i = 0; i < n; i++) {
        const rng = new Rng(`accuracy-${finding}-${present}-${i}`);
        const f: RadiographFindings = { cardiomegaly: rng.bernoulli(0.15), opacity: rng.bernoulli(0.15), nodule: rng.bernoulli(0.15) };
        f[finding] = present;
        const anatomy = { ageYears: 90 * rng.next(), sex: rng.bernoulli(0.5) ? 'female' : 'male', habitus: rng.normal() };
        const img = renderChestRadiograph(256, anatomy, f, rng);
        const stored = densityToStored(img.density, 16, rng);
        const s = gridImageScores(resampleToGrid(stored.pixels, 256, 256, 64), 64);
        if (!s.ok) continue; // counted as a miss either way
        const call = imageFindingCodes(findingAttrs, s.scores)[j] === 1;
        if (present && call) tp++;
        if (!present && !call) tn++;
      }
    }
    out[finding] = { sensitivity: tp / n, specificity: tn / n, n };
  }
  return out;
}

describe('image-finding extractors on real anatomy', () => {
  it('read the findings back from the synthetic radiographs (fixed seeds)', () => {
    const n = Number(process.env.IMAGE_ACCURACY ?? 60);
    const acc = measure(n);
    if (process.env.IMAGE_ACCURACY) console.info(JSON.stringify(acc, null, 1));
    // Floors below the measured values on these seeds (docs/modalities.md): a regression in the
    // drawing or the extractors fails here.
    expect(acc.cardiomegaly.sensitivity).toBeGreaterThanOrEqual(0.8);
    expect(acc.cardiomegaly.specificity).toBeGreaterThanOrEqual(0.7);
    expect(acc.opacity.sensitivity).toBeGreaterThanOrEqual(0.55);
    expect(acc.opacity.specificity).toBeGreaterThanOrEqual(0.9);
    expect(acc.nodule.sensitivity).toBeGreaterThanOrEqual(0.6);
    expect(acc.nodule.specificity).toBeGreaterThanOrEqual(0.9);
  });

  const root = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
  const nih = resolve(root, 'dicom', 'nih_chest_xray_dx.dcm');
  it.skipIf(!existsSync(nih))('call no finding on the real NIH radiograph (labelled "No Finding")', () => {
    const r = parseDicomBytes(readFileSync(nih), nih);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const s = gridImageScores(dicomGrid(r.image, 64), 64);
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    if (process.env.IMAGE_ACCURACY) console.info('NIH scores', s.scores);
    expect(imageFindingCodes(findingAttrs, s.scores)).toEqual([0, 0, 0]);
  });
  if (!existsSync(nih)) console.warn(`[skip] real NIH radiograph not found at ${nih}; set FEDSYNTH_SAMPLE_DATA to run it`);
});
