// Image component bins: what the coordinator decodes, the sites' encoder reads back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { componentBin, componentCodes, componentCoefficient, dctBasisImage, addImageComponents, imageComponentAttributes } from '../../modalities/image/components.ts';
import { densityToStored, renderPriorRadiograph } from '../../modalities/image/radiograph-prior.ts';
import { imageFindingCodes, imageScores } from '../../site-agent/modalities/image.ts';
import { parseSchema, SchemaError, schemaAttributes, type ImageFindingAttribute } from '../../model/schema.ts';
import { Rng } from '../../modalities/fhir/rng.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../cli/simulate/index.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const attrs = imageComponentAttributes(schema);

describe('image-component attributes', () => {
  it('parse, with bins then "no-image" as values', () => {
    expect(attrs.map((a) => a.name)).toEqual(['img_pc_0_2', 'img_pc_1_0', 'img_pc_2_0']);
    const dom = schemaAttributes(schema).find((a) => a.name === 'img_pc_1_0')!;
    expect(dom.labels).toEqual(['<-3.4', '-3.4-<-3', '-3-<-2.6', '>=-2.6', 'no-image']);
    expect(() => parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace('basis: [0, 2]', 'basis: [0, 0]'))).toThrow(SchemaError);
    expect(() => parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace('range: [-12, -5]', 'range: [-9.5, -5]'))).toThrow(SchemaError);
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
    expect(componentBin(attrs[0], -10)).toBe(1);
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
      const img = renderPriorRadiograph(256, findings, rng);
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
    expect(findingAgree / findingTotal).toBeGreaterThan(0.95);
  });
});
