// The cardiothoracic-ratio cut by the row's age band (finding-scores.ts): the published normal
// limits per band, the class the sites and the coordinator's read-back compute from it, and the
// AP films of under-4s drawn with the larger heart an AP film shows.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import { parseSchema, type AgeAttribute, type ImageFindingAttribute } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { synthesiseRadiograph } from '../../modalities/image/radiograph-synth.ts';
import { renderChestRadiograph } from '../../modalities/image/chest-radiograph.ts';
import { densityToStored } from '../../modalities/image/radiograph-pixels.ts';
import { ageBandFrom, findingClass, imageFindingCodes, normalCtrLimit } from '../../modalities/image/finding-scores.ts';
import { imageScores } from '../../site-agent/features/image.ts';

const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const attrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
const ctrAttr = attrs.find((a) => a.feature === 'cardiothoracic-ratio')!;
const ageAttr = schema.attributes.find((a): a is AgeAttribute => a.kind === 'age')!;

describe('the cardiothoracic-ratio cut by age band', () => {
  it('is 0.6 from birth, 0.55 from 5 and the adult 0.5 from 12', () => {
    expect([0, 4.9, 5, 11, 12, 17, 18, 80].map(normalCtrLimit)).toEqual([0.6, 0.6, 0.55, 0.55, 0.5, 0.5, 0.5, 0.5]);
    expect(() => normalCtrLimit(-1)).toThrow(/not a non-negative/);
    expect(() => normalCtrLimit(Number.NaN)).toThrow(/not a non-negative/);
  });

  it("reads each band's lower edge from the row's age code", () => {
    expect(ageAttr.edges.map((_, code) => ageBandFrom(schema, code))).toEqual(ageAttr.edges);
    expect(() => ageBandFrom(schema, ageAttr.edges.length)).toThrow(/not a band/);
  });

  it('classes a ratio by the band, the other findings by the schema alone', () => {
    const enlarged = ctrAttr.classes.length - 1;
    // 0.57: enlarged for an adult or a 5–11-year-old, normal for an under-5.
    expect(findingClass(ctrAttr, 0.57, 18)).toBe(enlarged);
    expect(findingClass(ctrAttr, 0.57, 12)).toBe(enlarged);
    expect(findingClass(ctrAttr, 0.57, 5)).toBe(enlarged);
    expect(findingClass(ctrAttr, 0.57, 0)).toBe(0);
    expect(findingClass(ctrAttr, 0.52, 5)).toBe(0);
    expect(findingClass(ctrAttr, 0.52, 12)).toBe(enlarged);
    expect(findingClass(ctrAttr, 0.61, 0)).toBe(enlarged);
    // No band: the schema's cut.
    expect(findingClass(ctrAttr, 0.52)).toBe(enlarged);
    const scores = { 'cardiothoracic-ratio': 0.57, 'lung-opacity': 0.06, nodule: 0.05 };
    const adult = imageFindingCodes(attrs, scores, 18);
    const infant = imageFindingCodes(attrs, scores, 0);
    attrs.forEach((a, j) => {
      if (a.feature === 'cardiothoracic-ratio') expect([adult[j], infant[j]]).toEqual([enlarged, 0]);
      else expect(infant[j]).toBe(adult[j]);
    });
  });

  it("makes the coordinator's read-back use the row's band: an infant's normal AP heart reads normal at 0, enlarged at the adult cut", () => {
    // A normal infant chest (AP) whose ratio lies between the adult and the infant cuts.
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      const findings = { cardiomegaly: false, opacity: false, nodule: false };
      const anatomy = { ageYears: 0.5, sex: 'male' };
      const infant = synthesiseRadiograph(schema, 256, anatomy, findings, [1, 2, 1], new Rng(`ap-${i}`), { ageBandFrom: 0 });
      const s = imageScores(infant.pixels, 256, 256, 64);
      if (!s.ok || infant.readBack!.draws !== 1) continue;
      const ctr = s.scores['cardiothoracic-ratio'];
      if (ctr < 0.5 || ctr >= 0.6) continue;
      found = true;
      expect(infant.readBack!.mismatches).toEqual([]);
      // The same draw read against the adult cut does not read back: it is drawn again.
      const adultCut = synthesiseRadiograph(schema, 256, anatomy, findings, [1, 2, 1], new Rng(`ap-${i}`), { ageBandFrom: 18 });
      expect(adultCut.readBack!.draws).toBeGreaterThan(1);
    }
    expect(found).toBe(true);
  });

  it("draws under-4s' hearts larger (AP) and their cardiomegaly over the 0.6 cut", () => {
    const ctr = (age: number, cardiomegaly: boolean, i: number): number => {
      const rng = new Rng(`ctr-${age}-${cardiomegaly}-${i}`);
      const img = renderChestRadiograph(256, { ageYears: age, sex: 'male' }, { cardiomegaly, opacity: false, nodule: false }, rng);
      const s = imageScores(densityToStored(img.density, 16, rng).pixels, 256, 256, 64);
      return s.ok ? s.scores['cardiothoracic-ratio'] : Number.NaN;
    };
    const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1]!;
    const ap = Array.from({ length: 40 }, (_, i) => ctr(1 + 2.5 * (i / 40), false, i));
    const pa = Array.from({ length: 40 }, (_, i) => ctr(5 + 6 * (i / 40), false, i));
    // Measured 0.50 against 0.47 (docs/modalities.md): the AP magnification shows.
    expect(median(ap)).toBeGreaterThan(median(pa) + 0.015);
    expect(ap.filter((c) => c >= 0.6).length).toBeLessThanOrEqual(4);
    const apEnlarged = Array.from({ length: 40 }, (_, i) => ctr(1 + 2.5 * (i / 40), true, i));
    expect(apEnlarged.filter((c) => c >= 0.6).length).toBeGreaterThanOrEqual(30);
  });
});
