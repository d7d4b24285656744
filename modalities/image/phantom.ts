/**
 * Procedural chest-radiograph phantoms: a public, data-free prior for the image model (used
 * for tests, benchmarks and as a fallback model when a federation has measured no image
 * statistics). Shapes only — body outline, lung fields, heart, diaphragm — with per-class
 * findings: "normal", "opacity" (a focal consolidation), "cardiomegaly" (a wide heart),
 * "effusion" (a dense lower lung zone with a meniscus). Values in [0, 1], bright = dense. Pure.
 */
import { Rng } from '../../model/rng.ts';
import { classSums, encodeImageFeatures, modelFromNoisySums, type ImageModel } from './model.ts';

export const PHANTOM_CLASSES = ['normal', 'opacity', 'cardiomegaly', 'effusion'] as const;

function inEllipse(x: number, y: number, cx: number, cy: number, rx: number, ry: number): number {
  const dx = (x - cx) / rx;
  const dy = (y - cy) / ry;
  return dx * dx + dy * dy;
}

/** One phantom on an n×n grid. */
export function chestPhantom(n: number, findingClass: string, rng: Rng): Float64Array {
  const img = new Float64Array(n * n);
  const j = () => rng.uniform(-0.03, 0.03);
  const lungL = { cx: 0.33 + j(), cy: 0.45 + j(), rx: 0.15 + j() / 2, ry: 0.3 + j() };
  const lungR = { cx: 0.67 + j(), cy: 0.45 + j(), rx: 0.15 + j() / 2, ry: 0.3 + j() };
  const heartW = findingClass === 'cardiomegaly' ? 0.2 + rng.uniform(0, 0.04) : 0.12 + rng.uniform(0, 0.02);
  const heart = { cx: 0.53 + j() / 2, cy: 0.62 + j() / 2, rx: heartW, ry: 0.13 };
  const blob = { cx: rng.pick([0.3, 0.7]) + j(), cy: 0.55 + rng.uniform(-0.1, 0.1), r: 0.07 + rng.uniform(0, 0.03) };
  const effSide = rng.pick([lungL, lungR]);
  const effLevel = 0.6 + rng.uniform(0, 0.08);
  const base = 0.1 + rng.uniform(0, 0.05);
  for (let yi = 0; yi < n; yi++) {
    const y = (yi + 0.5) / n;
    for (let xi = 0; xi < n; xi++) {
      const x = (xi + 0.5) / n;
      let v = base;
      if (inEllipse(x, y, 0.5, 0.55, 0.45, 0.5) < 1) v = 0.6; // soft tissue
      for (const l of [lungL, lungR]) if (inEllipse(x, y, l.cx, l.cy, l.rx, l.ry) < 1) v = 0.25;
      if (inEllipse(x, y, heart.cx, heart.cy, heart.rx, heart.ry) < 1) v = 0.75;
      if (Math.abs(x - 0.5) < 0.05 && y < 0.5) v = 0.7; // mediastinum / spine
      if (findingClass === 'opacity' && inEllipse(x, y, blob.cx, blob.cy, blob.r, blob.r) < 1) v = Math.max(v, 0.65);
      if (findingClass === 'effusion' && inEllipse(x, y, effSide.cx, effSide.cy, effSide.rx, effSide.ry) < 1) {
        const meniscus = effLevel - (0.05 * Math.abs(x - effSide.cx)) / effSide.rx;
        if (y > meniscus) v = 0.65;
      }
      img[yi * n + xi] = v;
    }
  }
  return img;
}

export interface PhantomModelOptions {
  grid?: number;
  k?: number;
  clip?: number;
  perClass?: number;
  seed?: number | string;
  classes?: readonly string[];
}

/** An image model fitted (exactly, without noise) to procedural phantoms: public, costs no budget. */
export function phantomImageModel(opts: PhantomModelOptions = {}): ImageModel {
  const grid = opts.grid ?? 32;
  const k = opts.k ?? 12;
  const clip = opts.clip ?? grid; // a [0,1] image has L2 norm ≤ grid: no clipping for phantoms
  const perClass = opts.perClass ?? 64;
  const classes = [...(opts.classes ?? PHANTOM_CLASSES)];
  const rng = new Rng(opts.seed ?? 'phantom-prior');
  const vectors: Float64Array[] = [];
  const labels: string[] = [];
  for (const c of classes) {
    for (let i = 0; i < perClass; i++) {
      vectors.push(encodeImageFeatures(chestPhantom(grid, c, rng), grid, k, clip));
      labels.push(c);
    }
  }
  return modelFromNoisySums(classSums(vectors, labels, classes, k * k), { grid, k, clip });
}
