// Image component bins: what the coordinator decodes, the sites' encoder reads back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  componentBin,
  componentCodes,
  componentCoefficient,
  dctBasisImage,
  addImageComponents,
  imageComponentAttributes,
} from '../../modalities/image/components.ts';
import { renderChestRadiograph } from '../../modalities/image/chest-radiograph.ts';
import { densityToStored } from '../../modalities/image/radiograph-pixels.ts';
import { synthesiseRadiograph } from '../../modalities/image/radiograph-synth.ts';
import { componentBinRange, normalisedGridCoefficients } from '../../modalities/image/components.ts';
import { resampleToGrid } from '../../site-agent/connectors/dicom/pixels.ts';
import { imageFindingCodes, imageScores } from '../../site-agent/features/image.ts';
import { parseSchema, SchemaError, schemaAttributes, type ImageFindingAttribute } from '../../schema/schema.ts';
import { Rng } from '../../model/rng.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const attrs = imageComponentAttributes(schema);
const ADULT = { ageYears: 45, sex: 'male' };

describe('image-component attributes', () => {
  it('parse, with bins then "no-image" as values', () => {
    expect(attrs.map((a) => a.name)).toEqual(['img_pc_0_2', 'img_pc_1_0', 'img_pc_2_0']);
    const dom = schemaAttributes(schema).find((a) => a.name === 'img_pc_1_0')!;
    expect(dom.labels).toEqual(['<-5.5', '-5.5-<-4.25', '-4.25-<-3.2', '>=-3.2', 'no-image']);
    expect(() => parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace('basis: [0, 2]', 'basis: [0, 0]'))).toThrow(SchemaError);
    expect(() => parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace('range: [-8, -1.5]', 'range: [-5, -1.5]'))).toThrow(
      SchemaError,
    );
  });

  it('the basis is orthonormal on the grid', () => {
    const a = dctBasisImage(0, 2, 64);
    const b = dctBasisImage(1, 0, 64);
    let aa = 0;
    let ab = 0;
    for (let i = 0; i < a.length; i++) {
      aa += a[i] * a[i];
      ab += a[i] * b[i];
    }
    expect(aa).toBeCloseTo(1, 9);
    expect(ab).toBeCloseTo(0, 9);
    expect(componentCoefficient(a, 64, [0, 2])).toBeCloseTo(1, 9);
    expect(componentBin(attrs[0], -5)).toBe(1);
  });

  it('decoded bins are read back by the site encoder from the 16-bit 256×256 image', () => {
    const rng = new Rng('components');
    let agree = 0;
    let total = 0;
    let findingAgree = 0;
    let findingTotal = 0;
    for (let t = 0; t < 40; t++) {
      // Inner bins (the outer ones are open-ended extremes the sites rarely produce).
      const bins = attrs.map((a) => 1 + rng.int(a.edges.length - 1));
      const findings = { cardiomegaly: rng.bernoulli(0.3), opacity: rng.bernoulli(0.3), nodule: false };
      const img = renderChestRadiograph(256, ADULT, findings, rng);
      addImageComponents(schema, img.density, 256, bins, rng, img.lungSpans);
      const stored = densityToStored(img.density, 16, rng);
      const f = imageScores(stored.pixels, 256, 256, 64);
      expect(f.ok).toBe(true);
      if (!f.ok) continue;
      const back = componentCodes(attrs, f.grid, 64);
      // The findings survive the component shifts.
      const fa = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
      const codes = imageFindingCodes(fa, f.scores);
      findingTotal += 2;
      findingAgree += +(codes[0] === (findings.cardiomegaly ? 1 : 0)) + +(codes[1] === (findings.opacity ? 1 : 0));
      back.forEach((b, j) => {
        total++;
        agree += b === bins[j] ? 1 : 0;
      });
    }
    if (process.env.COMP_PRINT) console.log(agree / total, findingAgree / findingTotal);
    expect(agree / total).toBeGreaterThan(0.9);
    // Real anatomy: the extractors' accuracy is that of docs/modalities.md (0.86 on this seed).
    expect(findingAgree / findingTotal).toBeGreaterThan(0.8);
  });

  it('the cohort path (components solved on the grid): every bin, outer ones too, read back from the stored pixels, as reported', () => {
    const rng = new Rng('components-grid');
    const fa = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
    let findingAgree = 0;
    let findingTotal = 0;
    for (let t = 0; t < 60; t++) {
      const bins = attrs.map((a) => rng.int(a.edges.length + 1));
      const findings = { cardiomegaly: rng.bernoulli(0.3), opacity: rng.bernoulli(0.3), nodule: false };
      const img = synthesiseRadiograph(schema, 256, ADULT, findings, bins, rng);
      const f = imageScores(img.pixels, 256, 256, 64);
      expect(f.ok).toBe(true);
      if (!f.ok) continue;
      expect(componentCodes(attrs, f.grid, 64)).toEqual(bins);
      // The reported coefficients are the encoder's, from the stored grid.
      const grid = Float64Array.from(resampleToGrid(img.pixels, 256, 256, 64));
      const back = normalisedGridCoefficients(schema, grid);
      img.components!.forEach((c, j) => expect(c).toBeCloseTo(back[j], 6));
      img.components!.forEach((c, j) => expect(componentBinRange(attrs[j], bins[j])![0] <= c).toBe(true));
      const codes = imageFindingCodes(fa, f.scores);
      findingTotal += 2;
      findingAgree += +(codes[0] === (findings.cardiomegaly ? 1 : 0)) + +(codes[1] === (findings.opacity ? 1 : 0));
    }
    // Real anatomy: the extractors' accuracy is that of docs/modalities.md (0.78 on this seed).
    expect(findingAgree / findingTotal).toBeGreaterThan(0.72);
  });

  it('the cohort path is deterministic, and without components it is the prior and densityToStored', () => {
    const a = synthesiseRadiograph(schema, 256, ADULT, { cardiomegaly: true, opacity: false, nodule: false }, [1, 2, 1], new Rng('det'));
    const b = synthesiseRadiograph(schema, 256, ADULT, { cardiomegaly: true, opacity: false, nodule: false }, [1, 2, 1], new Rng('det'), {
      density: new Float32Array(65536),
      pixels: new Uint16Array(65536),
    });
    expect(Buffer.from(a.pixels.buffer).equals(Buffer.from(b.pixels.buffer))).toBe(true);
    expect([a.windowCenter, a.windowWidth]).toEqual([b.windowCenter, b.windowWidth]);
    const r1 = new Rng('plain');
    const plain = synthesiseRadiograph(schema, 256, ADULT, { cardiomegaly: false, opacity: true, nodule: false }, undefined, r1);
    const r2 = new Rng('plain');
    const prior = renderChestRadiograph(256, ADULT, { cardiomegaly: false, opacity: true, nodule: false }, r2);
    const stored = densityToStored(prior.density, 16, r2);
    expect(Buffer.from(plain.pixels.buffer).equals(Buffer.from(stored.pixels.buffer))).toBe(true);
    // A size that is not a multiple of the grid takes the full-resolution search.
    const odd = synthesiseRadiograph(schema, 200, ADULT, { cardiomegaly: false, opacity: false, nodule: false }, [1, 1, 1], new Rng('odd'));
    expect(odd.pixels.length).toBe(200 * 200);
    expect(odd.components).toHaveLength(3);
  });

  it('enforced cell by cell, the stored grid is the solved one: the bins read back, the findings survive', () => {
    const rng = new Rng('components-enforced');
    for (let t = 0; t < 12; t++) {
      const bins = attrs.map((a) => rng.int(a.edges.length + 1));
      const findings = { cardiomegaly: t % 2 === 0, opacity: t % 3 === 0, nodule: false };
      const img = synthesiseRadiograph(schema, 256, ADULT, findings, bins, rng, { enforce: true, bitsStored: t % 4 === 0 ? 12 : 16 });
      if (t % 4 === 0) expect(Math.max(...img.pixels)).toBeLessThanOrEqual(4095);
      const f = imageScores(img.pixels, 256, 256, 64);
      expect(f.ok).toBe(true);
      if (!f.ok) continue;
      expect(componentCodes(attrs, f.grid, 64)).toEqual(bins);
      const back = normalisedGridCoefficients(schema, Float64Array.from(resampleToGrid(img.pixels, 256, 256, 64)));
      img.components!.forEach((c, j) => expect(c).toBeCloseTo(back[j], 6));
    }
  });
});
