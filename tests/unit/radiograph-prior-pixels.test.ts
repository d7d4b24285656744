// The radiograph prior's per-pixel passes: the WebAssembly SIMD kernel and the JavaScript path
// give the same bits (density, grid, lung spans, ctr; the thorax pass on arbitrary tables and
// runs), and the grid is the documented clamp and summation order.
import { afterEach, describe, expect, it } from 'vitest';
import { clampIntoGrid, drawThorax, LUNG_ROW } from '../../modalities/image/radiograph-prior-pixels.ts';
import { pixelWorkspace, priorWorkspace, radiographKernels } from '../../modalities/image/radiograph-pixels.ts';
import { renderPriorRadiograph, type RadiographFindings } from '../../modalities/image/radiograph-prior.ts';
import { Rng } from '../../model/rng.ts';

afterEach(() => {
  radiographKernels.simd = true;
});

const bits = (a: Float32Array | Float64Array): Buffer => Buffer.from(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/** The documented order: per cell, rows in order, chunks of four (zero-padded): e += p0 + p2, o += p1 + p3; (e + o)/f². */
function referenceGrid(clamped: Float32Array, size: number, n: number): Float64Array {
  const f = size / n;
  const out = new Float64Array(n * n);
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      let e = 0;
      let o = 0;
      for (let y = gy * f; y < (gy + 1) * f; y++) {
        const p = (k: number) => (k < f ? clamped[y * size + gx * f + k] : 0);
        for (let k = 0; k < f; k += 4) {
          e += p(k) + p(k + 2);
          o += p(k + 1) + p(k + 3);
        }
      }
      out[gy * n + gx] = (e + o) * (1 / (f * f));
    }
  }
  return out;
}

const clamp01 = (v: number): number => (v > 0 && v < 1 ? v : v > 0 ? 1 : 0);

const allFindings: RadiographFindings[] = [];
for (let i = 0; i < 8; i++) allFindings.push({ cardiomegaly: (i & 1) !== 0, opacity: (i & 2) !== 0, nodule: (i & 4) !== 0 });
const label = (f: RadiographFindings) =>
  Object.entries(f)
    .filter(([, v]) => v)
    .map(([k]) => k)
    .join('+') || 'no findings';

// Cells of 1, 2, 4 (the kernel's pairs), 8 and 12 pixels (its general loop), 4 on an odd grid
// (general loop), 7 (not a multiple of 4: JavaScript path either way).
const shapes: [number, number][] = [
  [64, 64],
  [128, 64],
  [256, 64],
  [512, 64],
  [192, 16],
  [100, 25],
  [70, 10],
];

describe('radiograph prior passes', () => {
  it('the SIMD kernel compiles here (so the comparisons below ran both paths)', () => {
    if (!priorWorkspace(pixelWorkspace(256, 64, 1)).kernel)
      throw new Error('WebAssembly SIMD unavailable: the SIMD cases fell back to JavaScript');
  });

  for (const [size, n] of shapes) {
    it(`${size}×${size} on a ${n}×${n} grid: SIMD and JavaScript draw the same density, grid, lung spans and ctr, for every combination of findings`, () => {
      const ws = pixelWorkspace(size, n, 1);
      for (const findings of allFindings) {
        for (let seed = 0; seed < 3; seed++) {
          const name = `${label(findings)}, seed ${seed}`;
          radiographKernels.simd = true;
          const a = renderPriorRadiograph(size, findings, new Rng(`prior-${size}-${name}`), ws.density, priorWorkspace(ws));
          const density = bits(a.density);
          const grid = Float64Array.from(priorWorkspace(ws).out);
          radiographKernels.simd = false;
          const b = renderPriorRadiograph(size, findings, new Rng(`prior-${size}-${name}`), ws.density, priorWorkspace(ws));
          expect(bits(b.density).equals(density), `${name}: density`).toBe(true);
          expect(bits(priorWorkspace(ws).out).equals(bits(grid)), `${name}: grid`).toBe(true);
          expect(Array.from(b.lungSpans), `${name}: lung spans`).toEqual(Array.from(a.lungSpans));
          expect(b.ctr, name).toBe(a.ctr);
          // Both are the documented clamp and order.
          expect(
            a.density.every((v) => v >= 0 && v <= 1),
            `${name}: clamped`,
          ).toBe(true);
          expect(bits(referenceGrid(a.density, size, n)).equals(bits(grid)), `${name}: reference grid`).toBe(true);
          // Without a grid the same drawing, before the clamp.
          const c = renderPriorRadiograph(size, findings, new Rng(`prior-${size}-${name}`));
          expect(bits(Float32Array.from(c.density, clamp01)).equals(density), `${name}: drawn without a grid, clamped`).toBe(true);
          expect(Array.from(c.lungSpans), `${name}: lung spans without a grid`).toEqual(Array.from(a.lungSpans));
        }
      }
    });
  }

  it('the thorax pass on arbitrary tables, runs at every alignment (empty, one pixel, whole rows) and pixels around 0.62: SIMD and JavaScript give the same bits', () => {
    for (const [size, n] of [
      [96, 24],
      [100, 25],
      [36, 9],
    ]) {
      const ws = pixelWorkspace(size, n, 1);
      const t = priorWorkspace(ws).tables!;
      const rng = new Rng(`thorax-${size}`);
      const run = (into: Int32Array, at: number) => {
        const k = rng.int(6);
        const a = k === 0 ? 0 : rng.int(size + 1);
        const b = k === 0 ? size : k === 1 ? a : k === 2 ? Math.min(size, a + 1) : a + rng.int(size - a + 1);
        into[at] = a;
        into[at + 1] = b;
      };
      // Pixels at, just below and just above 0.62 in f32, and either side of 1.
      const f62 = Math.fround(0.62);
      const near = [f62, Math.fround(f62 * (1 - 2 ** -23)), Math.fround(f62 * (1 + 2 ** -23)), 0.62, 1.1];
      for (let rep = 0; rep < 12; rep++) {
        for (const a of [t.dome, t.ribBend, t.colOpacity]) for (let i = 0; i < size; i++) a[i] = rng.next();
        for (let py = 0; py < size; py++) {
          const r = LUNG_ROW.length * py;
          t.lungRow[r + LUNG_ROW.y] = rng.next();
          t.lungRow[r + LUNG_ROW.sin] = 2 * rng.next() - 1;
          t.lungRow[r + LUNG_ROW.cos] = 2 * rng.next() - 1;
          t.lungRow[r + LUNG_ROW.cos31] = 2 * rng.next() - 1;
          t.lungRow[r + LUNG_ROW.sin31] = 2 * rng.next() - 1;
          t.lungRow[r + LUNG_ROW.opacity] = rep % 2 ? 0.38 * rng.next() : 0;
          t.lungRow[r + LUNG_ROW.yRib] = rng.next() - 0.2;
          t.lungRow[r + LUNG_ROW.noduleDy2] = rng.int(3) === 0 ? -1 : 0.01 * rng.next() ** 2;
          run(t.lungSpans, 4 * py);
          run(t.lungSpans, 4 * py + 2);
          for (let k = 0; k < 3; k++) run(t.runs, 6 * py + 2 * k);
        }
        const values = Float32Array.from({ length: size * size }, (_, i) => (i % 5 === 0 ? near[rng.int(near.length)] : 1.2 * rng.next()));
        const py0 = rng.int(size);
        const py1 = py0 + rng.int(size - py0 + 1);
        const args = [
          py0,
          py1,
          0.03 + 0.03 * rng.next(),
          rng.next(),
          0.05 * rng.next(),
          0.02 + 0.02 * rng.next(),
          0.05 * rng.next(),
        ] as const;
        const out = [true, false].map((simd) => {
          ws.density.set(values);
          drawThorax(ws.density, t, ...args, simd ? priorWorkspace(ws).kernel : undefined);
          return bits(ws.density);
        });
        expect(out[0].equals(out[1]), `${size}, ${rep}`).toBe(true);
        expect(out[0].equals(bits(values)), `${size}, ${rep}: drew something`).toBe(false);
      }
    }
  });

  it('a nodule on a consolidation over a rib exceeds 1 and is clamped alike by both paths', () => {
    const size = 256;
    const ws = pixelWorkspace(size, 64, 1);
    const findings = { cardiomegaly: false, opacity: true, nodule: true };
    let clamped = 0;
    for (let seed = 0; seed < 400 && clamped < 3; seed++) {
      const raw = renderPriorRadiograph(size, findings, new Rng(`clamp-${seed}`));
      if (!raw.density.some((v) => v > 1)) continue;
      clamped++;
      radiographKernels.simd = true;
      renderPriorRadiograph(size, findings, new Rng(`clamp-${seed}`), ws.density, priorWorkspace(ws));
      const density = bits(ws.density);
      const grid = bits(priorWorkspace(ws).out);
      radiographKernels.simd = false;
      renderPriorRadiograph(size, findings, new Rng(`clamp-${seed}`), ws.density, priorWorkspace(ws));
      expect(bits(ws.density).equals(density), `seed ${seed}: density`).toBe(true);
      expect(bits(priorWorkspace(ws).out).equals(grid), `seed ${seed}: grid`).toBe(true);
      expect(bits(Float32Array.from(raw.density, clamp01)).equals(density), `seed ${seed}: clamped at 1`).toBe(true);
    }
    expect(clamped, 'images that clamp').toBe(3);
  });

  it('the grid pass on arbitrary values (below 0, above 1, exactly 0 and 1, −0, NaN): clamped and summed in the documented order by both paths', () => {
    for (const [size, n] of shapes) {
      const ws = pixelWorkspace(size, n, 1);
      const rng = new Rng(`values-${size}`);
      // Values of very different magnitudes (below 2⁻²⁹ beside ones near 1), so that the f64 sums
      // round and their order shows.
      const values = Float32Array.from({ length: size * size }, (_, i) => {
        const k = i % 37;
        if (k < 5) return [0, 1, -0, NaN, Infinity][k];
        return k % 3 === 0 ? rng.next() * 2 ** -(30 + rng.int(60)) : 2 * rng.next() - 0.5;
      });
      const want = Float32Array.from(values, clamp01);
      const results = [true, false].map((simd) => {
        radiographKernels.simd = simd;
        ws.density.set(values);
        clampIntoGrid(ws.density, size, priorWorkspace(ws));
        return { density: bits(ws.density), grid: bits(priorWorkspace(ws).out) };
      });
      for (const [i, r] of results.entries()) {
        const path = `${size}/${n} ${i === 0 ? 'SIMD' : 'JS'}`;
        expect(r.density.equals(bits(want)), `${path}: clamped`).toBe(true);
        expect(r.grid.equals(bits(referenceGrid(want, size, n))), `${path}: grid`).toBe(true);
      }
    }
  });
});
