/** Shared helpers for the model-* unit tests (not a test file itself). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dataset, Domain, allocColumn } from '../../model/domain.ts';
import { GraphicalModel } from '../../model/pgm/model.ts';
import { Structure } from '../../model/pgm/structure.ts';
import { Rng } from '../../model/rng.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Directory of the shared sample data (../shared/data or $FEDSYNTH_SAMPLE_DATA), or undefined if absent. */
export function sampleDataDir(): string | undefined {
  const dir = process.env.FEDSYNTH_SAMPLE_DATA ?? path.resolve(repoRoot, '../shared/data');
  return existsSync(path.join(dir, 'tabular', 'adult.csv')) ? dir : undefined;
}

/** A model with random potentials on the given cliques (values in [-scale, scale]). */
export function randomModel(domain: Domain, cliques: string[][], seed: number, scale = 1.5, total = 1000): GraphicalModel {
  const rng = new Rng(seed);
  const structure = new Structure(domain, Structure.parameterCliques(domain, cliques));
  const pots = structure.cliqueCells.map((n) => Float64Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale));
  return new GraphicalModel(structure, pots, total);
}

/** Exact marginal by enumerating the whole joint: p(x) ∝ exp Σ_c θ_c(x_c), scaled to model.total. */
export function bruteForceMarginal(model: GraphicalModel, attrs: string[], where: Record<string, number[]> = {}): Float64Array {
  const d = model.domain;
  const all = [...d.attrs];
  const n = d.cells(all);
  const maps = model.cliques.map((c) => d.indexMap(all, c));
  const target = d.indexMap(all, attrs);
  const allowed = Object.entries(where).map(([a, vs]) => ({ map: d.indexMap(all, [a]), vs: new Set(vs) }));
  const out = new Float64Array(d.cells(attrs));
  let z = 0;
  for (let i = 0; i < n; i++) {
    if (!allowed.every(({ map, vs }) => vs.has(map[i]))) continue;
    let lp = 0;
    model.potentials.forEach((p, c) => (lp += p[maps[c][i]]));
    const w = Math.exp(lp);
    out[target[i]] += w;
    z += w;
  }
  return out.map((v) => (v / z) * model.total);
}

/** Random dataset: each row drawn i.i.d. from `draw(rng)` (values in domain order). */
export function makeDataset(domain: Domain, rows: number, seed: number, draw: (rng: Rng) => number[]): Dataset {
  const rng = new Rng(seed);
  const cols = domain.sizes.map((s) => allocColumn(s, rows));
  for (let r = 0; r < rows; r++) {
    const v = draw(rng);
    v.forEach((x, j) => (cols[j][r] = x));
  }
  return new Dataset(domain, cols, rows);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function l1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s;
}
