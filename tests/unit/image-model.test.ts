import { describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import {
  chestPhantom,
  classIndex,
  classSums,
  clipL2,
  componentBins,
  dct2,
  decodeImage,
  encodeImageFeatures,
  idct2,
  l2Norm,
  lowFrequencyBlock,
  modelFromNoisySums,
  padLowFrequencyBlock,
  phantomImageModel,
  principalComponents,
  reconstructLowRes,
  sampleCoefficients,
} from '../../modalities/image/index.ts';

describe('DCT', () => {
  it('round-trips DCT-II → DCT-III on square and rectangular images', () => {
    const rng = new Rng(1);
    for (const [h, w] of [
      [8, 8],
      [32, 32],
      [12, 20],
      [1, 5],
    ]) {
      const img = Float64Array.from({ length: h * w }, () => rng.normal());
      const back = idct2(dct2(img, h, w), h, w);
      for (let i = 0; i < img.length; i++) expect(back[i]).toBeCloseTo(img[i], 10);
    }
  });

  it('is orthonormal (Parseval) and puts a constant image in the DC coefficient only', () => {
    const rng = new Rng(2);
    const img = Float64Array.from({ length: 16 * 16 }, () => rng.uniform(0, 1));
    const c = dct2(img, 16, 16);
    expect(l2Norm(c)).toBeCloseTo(l2Norm(img), 9);
    const flat = new Float64Array(64).fill(0.5);
    const cf = dct2(flat, 8, 8);
    expect(cf[0]).toBeCloseTo(0.5 * 8, 10);
    for (let i = 1; i < 64; i++) expect(Math.abs(cf[i])).toBeLessThan(1e-12);
  });

  it('low-frequency block and padding are inverse on the block', () => {
    const rng = new Rng(3);
    const c = Float64Array.from({ length: 100 }, () => rng.normal());
    const b = lowFrequencyBlock(c, 10, 10, 4);
    const p = padLowFrequencyBlock(b, 4, 10, 10);
    expect(lowFrequencyBlock(p, 10, 10, 4)).toEqual(b);
    expect(p[4]).toBe(0);
    expect(p[40]).toBe(0);
  });
});

describe('clipping', () => {
  it('bounds the L2 norm by C and leaves small vectors unchanged', () => {
    const rng = new Rng(4);
    for (let t = 0; t < 50; t++) {
      const v = Float64Array.from({ length: 30 }, () => rng.normal(0, 5));
      const c = clipL2(v, 3);
      expect(l2Norm(c)).toBeLessThanOrEqual(3 + 1e-12);
      // Direction kept.
      const s = c[0] / v[0];
      for (let i = 0; i < v.length; i++) expect(c[i]).toBeCloseTo(v[i] * s, 12);
    }
    const small = [0.1, -0.2, 0.05];
    expect(Array.from(clipL2(small, 1))).toEqual(small);
    expect(() => clipL2(small, 0)).toThrow();
  });

  it('a clipped patient changes a class sum by at most C', () => {
    const rng = new Rng(5);
    const grid = 16;
    const k = 6;
    const C = 2;
    const imgs = Array.from({ length: 10 }, () => Float64Array.from({ length: grid * grid }, () => rng.uniform(0, 1)));
    const vs = imgs.map((im) => encodeImageFeatures(im, grid, k, C));
    const a = classSums(
      vs,
      vs.map(() => 'x'),
      ['x'],
      k * k,
    )[0];
    const b = classSums(
      vs.slice(1),
      vs.slice(1).map(() => 'x'),
      ['x'],
      k * k,
    )[0];
    const diff = Array.from(a.sum, (x, i) => x - b.sum[i]);
    expect(l2Norm(diff)).toBeLessThanOrEqual(C + 1e-9);
  });
});

describe('reconstruction', () => {
  it('exact class means recover the class difference (effusion denser low in the lungs, wide heart)', () => {
    const model = phantomImageModel({ grid: 32, k: 12, perClass: 48, seed: 'test' });
    const mean = (name: string) => reconstructLowRes(model, model.classes[classIndex(model, name)].mean);
    const normal = mean('normal');
    const effusion = mean('effusion');
    const cardio = mean('cardiomegaly');
    const region = (img: Float64Array, x0: number, x1: number, y0: number, y1: number) => {
      let s = 0;
      let n = 0;
      for (let y = Math.floor(y0 * 32); y < y1 * 32; y++)
        for (let x = Math.floor(x0 * 32); x < x1 * 32; x++) {
          s += img[y * 32 + x];
          n++;
        }
      return s / n;
    };
    // Lower lung zones: denser with effusion.
    expect(region(effusion, 0.2, 0.45, 0.65, 0.72) - region(normal, 0.2, 0.45, 0.65, 0.72)).toBeGreaterThan(0.04);
    // Beside the normal heart border: denser with cardiomegaly.
    expect(region(cardio, 0.68, 0.72, 0.58, 0.68) - region(normal, 0.68, 0.72, 0.58, 0.68)).toBeGreaterThan(0.1);
    // An upper region far from any finding: the same.
    expect(Math.abs(region(cardio, 0.25, 0.4, 0.25, 0.35) - region(normal, 0.25, 0.4, 0.25, 0.35))).toBeLessThan(0.05);
  });

  it('noisy sums post-process into bounded means and floored variances', () => {
    const dim = 4;
    const m = modelFromNoisySums([{ name: 'a', count: -3, sum: [100, 0, 0, 0], sumSq: [-5, 1, 1, 1] }], {
      grid: 4,
      k: 2,
      clip: 2,
      varianceFloor: 1e-4,
    });
    expect(l2Norm(m.classes[0].mean)).toBeLessThanOrEqual(2 + 1e-12);
    expect(Math.min(...m.classes[0].variance)).toBeGreaterThanOrEqual(1e-4);
    expect(m.classes[0].mean.length).toBe(dim);
  });

  it('PCA components and bins drive the draw along the component', () => {
    const rng = new Rng(6);
    const d = 9;
    // Class-centred vectors spread along e0 mostly.
    const vs = Array.from({ length: 400 }, () =>
      Float64Array.from({ length: d }, (_, i) => (i === 0 ? rng.normal(0, 2) : rng.normal(0, 0.1))),
    );
    const moment = new Float64Array(d * d);
    for (const v of vs) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) moment[i * d + j] += v[i] * v[j];
    const pc = principalComponents(moment, d, 2, vs.length);
    expect(Math.abs(pc.vectors[0][0])).toBeGreaterThan(0.99);
    expect(pc.sd[0]).toBeGreaterThan(1.5);
    const model = modelFromNoisySums(
      classSums(
        vs,
        vs.map(() => 'c'),
        ['c'],
        d,
      ),
      { grid: 3, k: 3, clip: 100 },
    );
    model.components = { ...pc, binEdges: [-0.5, 0.5] };
    const sign = Math.sign(pc.vectors[0][0]);
    const hi = sampleCoefficients(model, 0, new Rng(7), [2, 1], 0);
    const lo = sampleCoefficients(model, 0, new Rng(7), [0, 1], 0);
    expect(sign * (hi[0] - model.classes[0].mean[0])).toBeGreaterThan(0.5 * pc.sd[0]);
    expect(sign * (lo[0] - model.classes[0].mean[0])).toBeLessThan(-0.5 * pc.sd[0]);
    expect(componentBins(model, 0, hi)[0]).toBe(2);
    expect(componentBins(model, 0, lo)[0]).toBe(0);
  });

  it('decodes a 256×256 16-bit image deterministically with a sane window', () => {
    const model = phantomImageModel({ perClass: 16 });
    const a = decodeImage(model, { findingClass: 'opacity' }, new Rng('p1'));
    const b = decodeImage(model, { findingClass: 'opacity' }, new Rng('p1'));
    expect(a.rows).toBe(256);
    expect(a.pixels.length).toBe(256 * 256);
    expect(Buffer.from(a.pixels.buffer).equals(Buffer.from(b.pixels.buffer))).toBe(true);
    let max = 0;
    for (const v of a.pixels) max = Math.max(max, v);
    expect(max).toBeGreaterThan(30000);
    expect(a.windowWidth).toBeGreaterThan(1000);
    expect(a.windowCenter - a.windowWidth / 2).toBeGreaterThanOrEqual(-1);
    const small = decodeImage(model, { findingClass: 'normal' }, new Rng('p1'), { rows: 64, cols: 80, bitsStored: 12 });
    expect(small.pixels.length).toBe(64 * 80);
    expect(Math.max(...small.pixels)).toBeLessThanOrEqual(4095);
    expect(() => decodeImage(model, { findingClass: 'nope' }, new Rng(1))).toThrow(/no class/);
  });

  it('phantoms differ by class', () => {
    const n = chestPhantom(32, 'normal', new Rng(1));
    const o = chestPhantom(32, 'opacity', new Rng(1));
    expect(n.some((v, i) => v !== o[i])).toBe(true);
  });
});
