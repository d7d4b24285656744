/**
 * Private-PGM estimation (McKenna, Sheldon, Miklau, ICML 2019): find the graphical model whose
 * clique marginals μ minimise L(μ) = Σ_m ½‖(A_m μ_m − y_m)/σ_m‖² over the marginal polytope (A_m the
 * identity, or the sum over fine cells of a coarsened measurement, model/measurement.ts), by
 * entropic mirror descent on the parameters θ (θ ← θ − α∇_μL, μ = BP(θ)) with a backtracking
 * line search. The total is fixed beforehand to its minimum-variance estimate.
 */
import type { Domain } from '../domain.ts';
import { type Measurement, estimateTotal, isCoarsened, measuredCellMap, validateMeasurement } from '../measurement.ts';
import { broadcastAdd } from './factor.ts';
import { calibrate } from './bp.ts';
import { buildJunctionTree, isSubset, treeSize } from './junction-tree.ts';
import { GraphicalModel } from './model.ts';
import { Structure } from './structure.ts';

export interface EstimateOptions {
  /** Mirror-descent iterations (each runs BP at least once). */
  iterations: number;
  /** Start from this model's potentials (e.g. the previous round's fit). */
  warmStart?: GraphicalModel;
  /** Cap on the cells of any junction-tree clique (default 4,000,000 ≈ 32 MB per table). */
  maxCliqueCells?: number;
  /** Cap on the summed cells of all junction-tree cliques (default unlimited). */
  maxTotalCells?: number;
  /** What to do when the measured sets need a tree over the cap: refuse (default) or drop measurements, latest first. */
  onOversize?: 'throw' | 'drop';
  /** Known number of records; overrides the estimate from the measurements. */
  total?: number;
  /** Called after every iteration with the current loss (for progress reporting). */
  onIteration?: (iteration: number, loss: number) => void;
}

export interface EstimateReport {
  iterations: number;
  /** Belief-propagation runs (iterations plus line-search retries). */
  evaluations: number;
  /** Final loss Σ ½‖(μ − y)/σ‖². */
  loss: number;
  total: number;
  /** Measurement attribute sets left out because of the size cap, with the reason. */
  dropped: { attrs: string[]; reason: string }[];
  maxCliqueCells: number;
  totalCells: number;
}

export const DEFAULT_MAX_CLIQUE_CELLS = 4_000_000;

/**
 * Step-size growth before each line search. private-pgm doubles, which on Adult made every other
 * try fail (≈2 BP runs per iteration); 1.3 reached the same loss per iteration with ≈1.4 runs.
 */
const STEP_GROWTH = 1.3;

/** Thrown when the measured attribute sets need a junction tree larger than the cap. */
export class ModelSizeError extends Error {
  override readonly name = 'ModelSizeError';
}

export function estimate(domain: Domain, measurements: readonly Measurement[], options: EstimateOptions): GraphicalModel {
  return estimateWithReport(domain, measurements, options).model;
}

export function estimateWithReport(
  domain: Domain,
  measurements: readonly Measurement[],
  options: EstimateOptions,
): { model: GraphicalModel; report: EstimateReport } {
  if (measurements.length === 0) throw new Error('estimate: no measurements');
  for (const m of measurements) validateMeasurement(domain, m);
  const total = options.total ?? estimateTotal(measurements).total;
  const { structure, dropped } = capStructure(domain, measurements, options);
  const kept = measurements.filter((m) => structure.indexOfClique(m.attrs) >= 0);

  const lossAndGrad = measurementLoss(structure, kept);
  let evaluations = 0;
  const marginalsOf = (theta: readonly Float64Array[]): Float64Array[] => {
    evaluations++;
    const cal = calibrate(structure.compiled, structure.treePotentials(theta));
    return structure.cliqueMarginals(structure.treeMarginals(cal, total));
  };

  let theta = initialPotentials(structure, options.warmStart);
  let mu = marginalsOf(theta);
  let { loss, grad } = lossAndGrad(mu);
  // Step size: the loss curvature in θ is about w·total, so 1/(w_max·total) is a safe start;
  // the line search doubles/halves it from there.
  const wMax = Math.max(...kept.map((m) => 1 / (m.sigma * m.sigma)));
  let alpha = 1 / (wMax * total);
  let it = 0;
  for (; it < options.iterations; it++) {
    const omega = theta;
    const nu = mu;
    const dL = grad;
    const currLoss = loss;
    alpha *= STEP_GROWTH;
    for (let ls = 0; ls < 25; ls++) {
      theta = omega.map((o, c) => {
        const t = new Float64Array(o.length);
        const g = dL[c];
        for (let i = 0; i < o.length; i++) t[i] = o[i] - alpha * g[i];
        return t;
      });
      mu = marginalsOf(theta);
      ({ loss, grad } = lossAndGrad(mu));
      // Armijo-type sufficient decrease, as in private-pgm's mirror_descent.
      if (currLoss - loss >= 0.5 * alpha * dot(dL, nu, mu)) break;
      alpha *= 0.5;
    }
    options.onIteration?.(it + 1, loss);
  }
  const size = treeSize(domain, structure.tree);
  return {
    model: new GraphicalModel(structure, theta, total),
    report: { iterations: it, evaluations, loss, total, dropped, maxCliqueCells: size.maxCliqueCells, totalCells: size.totalCells },
  };
}

/**
 * The estimator's objective over the parameter cliques' marginals μ (counts) and its gradient:
 * L(μ) = Σ_m ½ w_m ‖A_m μ_c(m) − y_m‖², w_m = 1/σ_m², where each measurement's attribute set is a
 * parameter clique c(m) of `structure`. A_m is the identity for a marginal; for a coarsened
 * measurement (a linear query, model/measurement.ts) it sums the clique's fine cells into the
 * measured cells, so the loss is ½w(Σ_fine μ − y)² per measured cell and the gradient is that
 * residual broadcast back to every fine cell it sums (∂L/∂μ_i = w(A μ − y)_{cell(i)}).
 */
export function measurementLoss(
  structure: Structure,
  measurements: readonly Measurement[],
): (mu: readonly Float64Array[]) => { loss: number; grad: Float64Array[] } {
  const terms = measurements.map((m) => {
    const c = structure.indexOfClique(m.attrs);
    if (c < 0) throw new Error(`measurementLoss: [${m.attrs.join(', ')}] is not a parameter clique`);
    const map = measuredCellMap(structure.domain, structure.cliques[c], m);
    return { c, map, y: m.values, w: 1 / (m.sigma * m.sigma), coarse: isCoarsened(m), sum: new Float64Array(m.values.length) };
  });
  return (mu) => {
    const grad = structure.cliqueCells.map((n) => new Float64Array(n));
    let loss = 0;
    for (const { c, map, y, w, coarse, sum } of terms) {
      const m = mu[c];
      const g = grad[c];
      if (!coarse) {
        for (let i = 0; i < m.length; i++) {
          const d = m[i] - y[map[i]];
          loss += 0.5 * w * d * d;
          g[i] += w * d;
        }
        continue;
      }
      sum.fill(0);
      for (let i = 0; i < m.length; i++) sum[map[i]] += m[i];
      for (let j = 0; j < sum.length; j++) {
        const d = sum[j] - y[j];
        loss += 0.5 * w * d * d;
        sum[j] = w * d;
      }
      for (let i = 0; i < m.length; i++) g[i] += sum[map[i]];
    }
    return { loss, grad };
  };
}

/** Σ_c ⟨g_c, a_c − b_c⟩ */
function dot(g: readonly Float64Array[], a: readonly Float64Array[], b: readonly Float64Array[]): number {
  let s = 0;
  for (let c = 0; c < g.length; c++) {
    const gc = g[c];
    const ac = a[c];
    const bc = b[c];
    for (let i = 0; i < gc.length; i++) s += gc[i] * (ac[i] - bc[i]);
  }
  return s;
}

/**
 * Zeros (uniform model), or a warm start: each old potential is added onto a new parameter clique
 * that contains it. Measurements only accumulate between rounds, so every old clique normally has
 * a home; one that does not (dropped by the cap) is skipped, which only costs iterations.
 */
function initialPotentials(structure: Structure, warm: GraphicalModel | undefined): Float64Array[] {
  const theta = structure.cliqueCells.map((n) => new Float64Array(n));
  if (!warm) return theta;
  const domain = structure.domain;
  if (warm.domain.attrs.join('\u0000') !== domain.attrs.join('\u0000') || warm.domain.sizes.join() !== domain.sizes.join()) {
    throw new Error('estimate: warm-start model has a different domain');
  }
  warm.cliques.forEach((old, i) => {
    const exact = structure.indexOfClique(old);
    const target = exact >= 0 ? exact : structure.cliques.findIndex((c) => isSubset(old, c));
    if (target < 0) return;
    broadcastAdd(theta[target], warm.potentials[i], domain.indexMap(structure.cliques[target], old));
  });
  return theta;
}

/** Builds the model structure, enforcing the size cap by refusing or by dropping measured sets. */
function capStructure(
  domain: Domain,
  measurements: readonly Measurement[],
  options: EstimateOptions,
): { structure: Structure; dropped: { attrs: string[]; reason: string }[] } {
  const maxClique = options.maxCliqueCells ?? DEFAULT_MAX_CLIQUE_CELLS;
  const maxTotal = options.maxTotalCells ?? Infinity;
  const over = (sets: readonly (readonly string[])[]): string | undefined => {
    const size = treeSize(domain, buildJunctionTree(domain, sets));
    if (size.maxCliqueCells > maxClique) {
      return `junction-tree clique [${size.largest.join(', ')}] would have ${size.maxCliqueCells} cells, over the cap of ${maxClique}`;
    }
    if (size.totalCells > maxTotal) return `junction tree would have ${size.totalCells} cells in total, over the cap of ${maxTotal}`;
    return undefined;
  };
  const all = Structure.parameterCliques(
    domain,
    measurements.map((m) => m.attrs),
  );
  const reason = over(all);
  if (reason === undefined) return { structure: new Structure(domain, all), dropped: [] };
  if ((options.onOversize ?? 'throw') === 'throw') {
    throw new ModelSizeError(`estimate: the measured attribute sets need a model over the size cap: ${reason}`);
  }
  // Drop mode: admit measured sets in measurement order (earlier rounds first), skipping any whose
  // addition would break the cap. Singletons always fit unless one attribute alone is over the cap.
  const accepted: string[][] = domain.attrs.map((a) => [a]);
  const tooBig = over(accepted);
  if (tooBig) throw new ModelSizeError(`estimate: even independent attributes exceed the cap: ${tooBig}`);
  const dropped: { attrs: string[]; reason: string }[] = [];
  const seen = new Set<string>();
  for (const m of measurements) {
    const c = domain.canonical(m.attrs);
    const key = c.join('\u0000');
    if (seen.has(key) || c.length <= 1) continue;
    seen.add(key);
    const why = over([...accepted, c]);
    if (why) dropped.push({ attrs: [...m.attrs], reason: why });
    else accepted.push(c);
  }
  // Keep measured singletons/empty sets and the accepted sets as parameter cliques.
  const keptSets = measurements.map((m) => m.attrs).filter((a) => !dropped.some((d) => sameSet(d.attrs, a)));
  return { structure: new Structure(domain, Structure.parameterCliques(domain, keptSets)), dropped };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && isSubset(a, b);
}
