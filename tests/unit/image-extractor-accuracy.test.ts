// The site's image-finding extractors (site-agent/features/image.ts) on the synthetic
// radiographs (real anatomy, modalities/image/chest-radiograph.ts) and on the real NIH chest
// radiograph: per finding, sensitivity and specificity at the schema's cut points (the
// cardiothoracic ratio's at the age band's normal limit), on fixed seeds
// (deterministic). IMAGE_ACCURACY=N prints the table for N images per class (docs/modalities.md).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderChestRadiograph, type RadiographFindings } from '../../modalities/image/chest-radiograph.ts';
import { densityToStored } from '../../modalities/image/radiograph-pixels.ts';
import { Rng } from '../../model/rng.ts';
import { ageBin, parseSchema, type AgeAttribute, type ImageFindingAttribute } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { dicomGrid, parseDicomBytes, resampleToGrid } from '../../site-agent/connectors/dicom/index.ts';
import { gridImageScores, imageFindingCodes, lungMask, normaliseToGrid } from '../../site-agent/features/image.ts';
import { SITE_PROFILES } from '../../simulator/latent.ts';
import { acquire, renderRadiograph } from '../../simulator/radiograph.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const findingAttrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
const ageAttr = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age')!;
/** The lower edge of the schema's age band at `years`: a cardiomegaly is called at that band's normal limit (finding-scores.ts). */
const bandFrom = (years: number): number => ageAttr.edges[ageBin(ageAttr, Math.floor(years))]!;
const FINDINGS: (keyof RadiographFindings)[] = ['cardiomegaly', 'opacity', 'nodule'];
const ATTR: Record<keyof RadiographFindings, string> = { cardiomegaly: 'img_cardiomegaly', opacity: 'img_opacity', nodule: 'img_nodule' };

interface Accuracy {
  sensitivity: number;
  specificity: number;
  /** Images per class (with the finding, without it). */
  n: number;
}

/** Opacities drawn in one lung and in both, and how many the extractor calls on the extent drawn. */
interface OpacitySides {
  unilateral: number;
  unilateralRead: number;
  bilateral: number;
  bilateralRead: number;
}

/**
 * Per finding: n images with it and n without (ages 0–90, both sexes, builds z ~ N(0, 1), each
 * other finding present with probability 0.15), 256×256 16-bit, read back on the 64×64 grid.
 */
function measure(n: number): { acc: Record<keyof RadiographFindings, Accuracy>; sides: OpacitySides } {
  const out = {} as Record<keyof RadiographFindings, Accuracy>;
  const sides: OpacitySides = { unilateral: 0, unilateralRead: 0, bilateral: 0, bilateralRead: 0 };
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
        const call = imageFindingCodes(findingAttrs, s.scores, bandFrom(anatomy.ageYears))[j] === 1;
        if (present && call) tp++;
        if (!present && !call) tn++;
        if (finding === 'opacity' && present) {
          const both = img.sides.opacity === 'bilateral';
          const read = call && s.sides['lung-opacity'] === img.sides.opacity ? 1 : 0;
          if (both) {
            sides.bilateral++;
            sides.bilateralRead += read;
          } else {
            sides.unilateral++;
            sides.unilateralRead += read;
          }
        }
      }
    }
    out[finding] = { sensitivity: tp / n, specificity: tn / n, n };
  }
  return { acc: out, sides };
}

describe('image-finding extractors on real anatomy', () => {
  it('read the findings back from the synthetic radiographs (fixed seeds)', () => {
    const n = Number(process.env.IMAGE_ACCURACY ?? 60);
    const { acc, sides } = measure(n);
    if (process.env.IMAGE_ACCURACY) console.info(JSON.stringify({ acc, sides }, null, 1));
    // Floors below the measured values on these seeds (docs/modalities.md): a regression in the
    // drawing or the extractors fails here.
    expect(acc.cardiomegaly.sensitivity).toBeGreaterThanOrEqual(0.8);
    expect(acc.cardiomegaly.specificity).toBeGreaterThanOrEqual(0.7);
    expect(acc.opacity.sensitivity).toBeGreaterThanOrEqual(0.85);
    expect(acc.opacity.specificity).toBeGreaterThanOrEqual(0.95);
    // The side: a one-lung opacity called on its lung, an opacity in both lungs called bilateral
    // (which no left–right difference can show) in most cases.
    expect(sides.bilateral).toBeGreaterThan(0.1 * n);
    expect(sides.unilateralRead / sides.unilateral).toBeGreaterThanOrEqual(0.85);
    expect(sides.bilateralRead / sides.bilateral).toBeGreaterThanOrEqual(0.4);
    expect(acc.nodule.sensitivity).toBeGreaterThanOrEqual(0.6);
    expect(acc.nodule.specificity).toBeGreaterThanOrEqual(0.9);
  });

  it('do not read an enlarged heart as an opacity (fixed seeds)', () => {
    // An enlarged heart compresses the left lung: a plain left–right zone difference read it as an
    // opacity on 30 of these 100 images; the zones' differences are now taken from a normal chest's.
    let called = 0;
    const cut = findingAttrs.find((a) => a.name === 'img_opacity')!.edges[0]!;
    for (let i = 0; i < 100; i++) {
      const rng = new Rng(`cardio-opacity-true-${i}`);
      const anatomy = { ageYears: 90 * rng.next(), sex: rng.bernoulli(0.5) ? 'female' : 'male' };
      const img = renderChestRadiograph(256, anatomy, { cardiomegaly: true, opacity: false, nodule: false }, rng);
      const s = gridImageScores(resampleToGrid(densityToStored(img.density, 16, rng).pixels, 256, 256, 64), 64);
      expect(s.ok).toBe(true);
      if (s.ok && s.scores['lung-opacity'] >= cut) called++;
    }
    if (process.env.IMAGE_ACCURACY) console.info({ opacityCalledOnCardiomegaly: called });
    expect(called).toBeLessThanOrEqual(6);
  });

  it('keep both lungs of tightly framed 64² films whose apex meets the air above the shoulder (fixed seeds)', () => {
    // The simulated scanner framing the chest at 1.04: a flood from the border takes one lung for
    // outside air on about half of these enlarged hearts (CTR ≈ 0.05, read "normal") unless the
    // one-lung fallback of step 3 closes the gap.
    const scanner = SITE_PROFILES.find((p) => p.scanner.scale === 1.04)!.scanner;
    let oneLungFirst = 0;
    let lost = 0;
    let called = 0;
    const n = 40;
    for (let i = 0; i < n; i++) {
      const rng = new Rng(`leak-true-${i}`);
      const img = renderRadiograph(
        64,
        { ageYears: 90 * rng.next(), sex: rng.bernoulli(0.5) ? 'female' : 'male' },
        { cardiomegaly: true, opacity: false, nodule: false },
        scanner,
        rng,
      );
      const px = Float32Array.from(acquire(img, scanner, rng));
      // The first mask: its box's midline runs through lung in most rows when one lung is lost.
      const mask = lungMask(normaliseToGrid(px, 64, 64, 64), 64);
      let c0 = 64,
        c1 = -1,
        r0 = 64,
        r1 = -1;
      for (let k = 0; k < mask.length; k++)
        if (mask[k]) {
          const r = (k / 64) | 0,
            c = k % 64;
          c0 = Math.min(c0, c);
          c1 = Math.max(c1, c);
          r0 = Math.min(r0, r);
          r1 = Math.max(r1, r);
        }
      let through = 0;
      for (let r = r0; r <= r1; r++) through += mask[r * 64 + Math.round((c0 + c1) / 2)]!;
      if (through > 0.5 * (r1 - r0 + 1)) oneLungFirst++;
      const s = gridImageScores(resampleToGrid(px, 64, 64, 64), 64);
      expect(s.ok).toBe(true);
      if (!s.ok) continue;
      if (s.scores['cardiothoracic-ratio'] < 0.25) lost++;
      if (s.scores['cardiothoracic-ratio'] >= 0.5) called++;
    }
    if (process.env.IMAGE_ACCURACY) console.info({ oneLungFirst, lost, called, n });
    // Measured on these seeds: the first mask holds one lung in 17 of 40, the fallback leaves 3
    // (a wider link to the outside than it closes), 37 enlarged hearts are called.
    expect(oneLungFirst).toBeGreaterThan(10);
    expect(lost).toBeLessThanOrEqual(3);
    expect(called / n).toBeGreaterThanOrEqual(0.9);
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
