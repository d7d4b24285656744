/**
 * Federated AIM-style adaptive plan. See docs/synthesis.md for the design and the
 * privacy analysis; in short:
 *
 *   round 1  "one-way"       every 1-way marginal                          share `oneWayShare` of ρ
 *   round 2  "screen-pairs"  every pair that could pay for its own noise   share `screenShare` of ρ
 *   round 3… "measure-k"     a batch of chosen 1-/2-/3-way marginals      the rest, in `measureRounds`
 *
 * Every round is one distributed measurement (sites answer marginals, the coordinator sees only
 * the noised sum over sites). Selection is pure post-processing of the POOLED noisy answers of
 * earlier rounds: before each measurement round the plan fits the graphical model to what it
 * will use, and scores every candidate by AIM's "error it would fix minus noise it would add",
 * with the error estimated from pooled noisy answers instead of the exact data:
 *
 *  - a pair the model does not contain yet: its misfit ‖D_r − M_r(p̂)‖₁, estimated from the
 *    screening answer by a chi-square-style excess Σ(ȳ−μ)² − cells·σ² (minus `confidence` sd's,
 *    against the winner's curse; fewer on a table where a strong dependence could not clear that
 *    bar for most pairs: `barConfidence`), turned into an L1 size by assuming deviations ∝ √μ;
 *  - a set the model already contains: the noise it still carries, √(2/π)·σ̄·cells_eff, minus
 *    what is left after pooling one more answer (cells_eff = Σ min(1, μ/σ): cells far below the
 *    noise are fixed by non-negativity and barely cost noise);
 *  - a triple: the sum of what it fixes on its three pairs;
 *  - minus the noise the new answer adds on the set itself, √(2/π)·σ_next·cells_eff.
 *
 * The batch is chosen greedily (diminishing returns: a pair fixed by one pick is not counted
 * again), and its size k — hence the per-marginal noise σ_next = √(k / 2ρ_round) — is the one
 * that maximises the batch's total estimated gain. This replaces AIM's annealing: while big
 * structural errors remain, many marginals at moderate noise win; once they are fixed, few
 * marginals at low noise win. Because every score comes from pooled sums, the choice reflects the
 * pooled error however heterogeneous the sites are (FLAIM's point), and selection costs no budget
 * beyond the measurements themselves: no exponential mechanism is run.
 *
 * The measurement budget is split evenly over `measureRounds` rounds; the last round always
 * takes exactly the remaining budget, so the rounds' ρ sum to `rhoTotal`.
 *
 * Junction-tree cap: a candidate is only chosen if the model over everything measured so far
 * plus the candidate stays within `maxCliqueCells` per clique and `maxTotalCells` in total.
 *
 * Pure: no I/O, no data access.
 */
import type { Dataset, Domain } from '../domain.ts';
import { marginal } from '../marginals.ts';
import { sample } from '../sample.ts';
import { type Measurement, estimateTotal, isCoarsened } from '../measurement.ts';
import { kWayWorkload } from '../metrics.ts';
import type { FitPlan, RoundResult, RoundSpec } from './plan.ts';
import { estimateWithReport } from '../pgm/estimate.ts';
import { buildJunctionTree, containingClique, treeSize } from '../pgm/junction-tree.ts';
import type { GraphicalModel } from '../pgm/model.ts';
import { MaxHeap } from './max-heap.ts';
import { barConfidence, confidenceCap } from './screen-confidence.ts';

export interface AimPlanOptions {
  /** Hard cap on the number of rounds (network round trips), at least 3. Default 8. */
  maxRounds?: number;
  /** Share of ρ for the 1-way round. Default 0.1. */
  oneWayShare?: number;
  /**
   * Share of ρ for the pair-screening round (0 disables it). Default: `defaultScreenShare(ρ)`,
   * 0.1·(0.015/ρ)^(1/4) within [0.05, 0.15] (0.1 at ε = 1, δ = 1e-9).
   */
  screenShare?: number;
  /** Planned number of measurement rounds after screening (capped by maxRounds). Default 4. */
  measureRounds?: number;
  /**
   * Most marginals per measurement round. Default min(d, 16) (d attributes): larger batches make
   * the greedy search score many more triples per round (at d = 50 a batch of 43 took minutes).
   */
  maxBatch?: number;
  /** Largest marginal (cells) that may be measured. Default 100,000. */
  maxMarginalCells?: number;
  /** Junction-tree cap per clique (cells). Default 50,000. */
  maxCliqueCells?: number;
  /** Junction-tree cap over all cliques (cells). Default 150,000 (keeps a fit of ~1000 iterations well under a minute). */
  maxTotalCells?: number;
  /** Largest cliques considered: 2 (pairs only) or 3 (pairs and triples). Default 3. */
  maxCliqueSize?: 2 | 3;
  /** Mirror-descent iterations of the selection fit before each measurement round. Default 300. */
  selectionIterations?: number;
  /**
   * Standard deviations subtracted from a screened pair's excess (against the winner's curse),
   * capped by `barConfidence` on tables where the screen cannot certify strong pairs. Default 2.
   */
  confidence?: number;
  /**
   * Pairs with more cells are not screened (nor, lacking evidence, chosen). Default: adaptive,
   * the cells at which the expected L1 noise of a typical measurement (per-cell σ of a full batch
   * of d marginals in one measurement round) reaches twice the estimated number of records —
   * beyond that a pair cannot pay for its own noise — capped by maxCliqueCells.
   */
  screenMaxCells?: number;
  /**
   * Repeat each 1-way marginal in round 1 about ∝ cells^⅔ times (the allocation that minimises
   * Σ cells·σ, i.e. the expected total L1 noise, for a fixed ρ). Default false: on Adult it made
   * no measurable difference, and plain rounds keep one answer per attribute set.
   */
  weightOneWays?: boolean;
  /**
   * Use the screening answers of pairs the model does not contain as 1-way evidence: each is
   * summed onto its attribute with more values (per-cell σ·√(size of the other)), once, so the
   * derived measurements keep independent noise. Default true.
   */
  projectScreening?: boolean;
}

export interface AimPlan extends FitPlan {
  /** The latest model fitted for selection after (a prefix of) `done`: a warm start for the final fit. */
  selectionModel(done: readonly RoundResult[], prior?: readonly Measurement[]): GraphicalModel | undefined;
  readonly options: Readonly<Required<AimPlanOptions>>;
}

const key = (attrs: readonly string[]): string => [...attrs].sort().join('\u0000');

/** A candidate marginal; `pairs` are the sub-pairs of a triple (empty otherwise). */
interface Candidate {
  readonly attrs: string[];
  readonly key: string;
  readonly cells: number;
  readonly pairs: readonly Candidate[];
}
const SQRT_2_PI = Math.sqrt(2 / Math.PI);
/** Rows of the model sample that stands in for marginals outside the junction tree's cliques. */
const SELECTION_SAMPLE_ROWS = 200_000;

/** The ρ at which the screening share is 0.1: ε = 1 at δ = 1e-9 (ρ 0.01497). */
export const SCREEN_SHARE_PIVOT_RHO = 0.015;

/**
 * The screening round's default share of ρ: 0.1·(pivot/ρ)^(1/4), kept within [0.05, 0.15] —
 * 0.15 at ε = 0.1 and 0.3, 0.1 at ε = 1, 0.06 at ε = 3, 0.05 at ε = 10 (δ = 1e-9). At a
 * small budget the screening answers are most of what the estimator knows about pairs (an MST-like
 * regime), so a larger share pays; at a large one a smaller share still screens precisely (its
 * per-cell noise keeps falling with ρ) and the measurements get the rest. Measured on Adult, 10
 * heterogeneous sites (docs/benchmarks.md): ε = 0.1 0.368 → 0.358 with 0.15 instead of 0.1
 * (0.2 was no better); ε = 0.3 0.265 → 0.256 with 0.15 or 0.2; ε = 3 0.1426 → 0.139–0.140 with
 * 0.05–0.06. The 0.05 floor is a precaution: at ε = 10 shares of 0.012, 0.05 and 0.1 gave
 * 0.138, 0.144, 0.145 (two runs each), within the run-to-run spread.
 */
export function defaultScreenShare(rhoTotal: number): number {
  return Math.min(0.15, Math.max(0.05, 0.1 * Math.sqrt(Math.sqrt(SCREEN_SHARE_PIVOT_RHO / rhoTotal))));
}

export function aimPlan(domain: Domain, rhoTotal: number, options: AimPlanOptions = {}): AimPlan {
  if (!(rhoTotal > 0) || !Number.isFinite(rhoTotal)) throw new Error(`aimPlan: rho must be positive, got ${rhoTotal}`);
  const d = domain.length;
  const refusalBound = maxCapRefusals(d);
  const maxCliqueCells = options.maxCliqueCells ?? 50_000;
  const o: Required<AimPlanOptions> = {
    maxRounds: options.maxRounds ?? 8,
    oneWayShare: options.oneWayShare ?? 0.1,
    screenShare: options.screenShare ?? defaultScreenShare(rhoTotal),
    measureRounds: options.measureRounds ?? 4,
    maxBatch: options.maxBatch ?? Math.max(2, Math.min(d, 16)),
    maxMarginalCells: options.maxMarginalCells ?? 100_000,
    maxCliqueCells,
    maxTotalCells: options.maxTotalCells ?? 150_000,
    maxCliqueSize: options.maxCliqueSize ?? 3,
    selectionIterations: options.selectionIterations ?? 300,
    confidence: options.confidence ?? 2,
    screenMaxCells: options.screenMaxCells ?? Infinity,
    weightOneWays: options.weightOneWays ?? false,
    projectScreening: options.projectScreening ?? true,
  };
  if (!Number.isInteger(o.maxRounds) || o.maxRounds < 3) throw new Error(`aimPlan: maxRounds must be an integer >= 3, got ${o.maxRounds}`);
  if (!(o.oneWayShare > 0 && o.screenShare >= 0 && o.oneWayShare + o.screenShare < 1))
    throw new Error('aimPlan: need oneWayShare > 0, screenShare >= 0 and their sum < 1');
  if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1) throw new Error(`aimPlan: maxBatch must be a positive integer, got ${o.maxBatch}`);
  if (!Number.isInteger(o.measureRounds) || o.measureRounds < 1)
    throw new Error(`aimPlan: measureRounds must be a positive integer, got ${o.measureRounds}`);
  if (!(o.confidence >= 0)) throw new Error('aimPlan: confidence must be >= 0');

  const oneWay = domain.attrs.map((a) => [a]);
  const maxMeasured = Math.min(o.maxMarginalCells, o.maxCliqueCells);
  const pairs = kWayWorkload(domain, 2).filter((p) => domain.cells(p) <= maxMeasured);
  const triples = o.maxCliqueSize >= 3 ? kWayWorkload(domain, 3).filter((t) => domain.cells(t) <= maxMeasured) : [];
  // Candidates with their keys and sub-pairs precomputed (selection scans them many times).
  const byKey = new Map<string, Candidate>();
  const candidate = (attrs: string[]): Candidate => {
    const k = key(attrs);
    let c = byKey.get(k);
    if (!c) {
      const subs = attrs.length === 3 ? subPairs(attrs).map(candidate) : [];
      c = { attrs, key: k, cells: domain.cells(attrs), pairs: subs };
      byKey.set(k, c);
    }
    return c;
  };
  const candidates: Candidate[] = [...oneWay, ...pairs, ...triples].map(candidate);
  const rhoOne = pairs.length === 0 ? rhoTotal : rhoTotal * o.oneWayShare;
  const rhoScreen = rhoTotal * o.screenShare;
  const hasScreen = pairs.length > 0 && rhoScreen > 0;
  const firstMeasure = hasScreen ? 2 : 1;
  /** Pairs worth screening, given the 1-way answers (for the estimated number of records). */
  const screenedPairs = (oneWayAnswers: readonly Measurement[]): string[][] => {
    let limit = Math.min(o.screenMaxCells, maxMeasured);
    if (options.screenMaxCells === undefined) {
      const total = estimateTotal(oneWayAnswers).total;
      const sigmaTyp = Math.sqrt(d / (2 * ((rhoTotal - rhoOne - rhoScreen) / o.measureRounds)));
      limit = Math.min(limit, (2 * total) / (SQRT_2_PI * sigmaTyp));
    }
    const out = pairs.filter((p) => domain.cells(p) <= limit);
    // Always screen something: the smallest pairs if the limit excludes them all.
    return out.length > 0 ? out : [...pairs].sort((a, b) => domain.cells(a) - domain.cells(b)).slice(0, Math.max(1, d - 1));
  };
  // Round 1: every attribute once, or (weightOneWays) repeated ≈ ∝ cells^⅔ with the smallest
  // attribute once; the pooled answer of k copies is one measurement with σ/√k.
  const oneWayRound: string[][] = [];
  {
    const w = domain.attrs.map((a) => Math.cbrt(domain.sizeOf(a)) ** 2);
    const wMin = Math.min(...w);
    domain.attrs.forEach((a, i) => {
      const copies = o.weightOneWays ? Math.max(1, Math.min(16, Math.round(w[i] / wMin))) : 1;
      for (let c = 0; c < copies; c++) oneWayRound.push([a]);
    });
  }

  // Models fitted for selection, keyed by the number of completed rounds; valid while the caller
  // passes the same RoundResult objects (a coordinator restart rebuilds them deterministically).
  const models: (GraphicalModel | undefined)[] = [];
  const specs: (RoundSpec | undefined)[] = [];
  let seen: readonly RoundResult[] = [];

  const sync = (done: readonly RoundResult[]): void => {
    let same = 0;
    while (same < done.length && same < seen.length && done[same] === seen[same]) same++;
    if (same < seen.length) {
      models.length = Math.min(models.length, same + 1);
      specs.length = Math.min(specs.length, same + 1);
    }
    seen = [...done];
  };

  const estimationInputs = (done: readonly RoundResult[]): Measurement[] => {
    const raw: Measurement[] = [];
    const measuredSets: string[][] = [];
    done.forEach((r, i) => {
      if (i === 1 && hasScreen) return;
      raw.push(...r.measurements);
      if (i >= 1) measuredSets.push(...r.measurements.map((m) => m.attrs));
    });
    if (hasScreen && done.length >= 2) {
      // Screening answers of pairs inside a measured clique are free information that does not
      // enlarge the model; the others stay out (they would densify the junction tree).
      const inside = (p: readonly string[]) => measuredSets.some((s) => p.every((a) => s.includes(a)));
      for (const m of done[1].measurements) {
        if (inside(m.attrs)) raw.push(m);
        else if (o.projectScreening) raw.push(projectOnLarger(domain, m));
      }
    }
    return poolRepeats(domain, raw);
  };

  // Measurements made outside the plan (declared structure): selection fits and scores with them.
  let prior: readonly Measurement[] = [];
  const withPrior = (ms: Measurement[]): Measurement[] => (prior.length > 0 ? poolRepeats(domain, [...prior, ...ms]) : ms);

  const fitModel = (done: readonly RoundResult[]): GraphicalModel => {
    const n = done.length;
    const cached = models[n];
    if (cached) return cached;
    let warm: GraphicalModel | undefined;
    for (let i = n - 1; i >= 0 && !warm; i--) warm = models[i];
    const { model } = estimateWithReport(domain, withPrior(estimationInputs(done)), {
      iterations: o.selectionIterations,
      warmStart: warm,
      maxCliqueCells: o.maxCliqueCells,
      maxTotalCells: o.maxTotalCells,
      onOversize: 'drop',
    });
    models[n] = model;
    return model;
  };

  const plan: AimPlan = {
    rhoTotal,
    options: o,
    selectionModel(done, p) {
      prior = p ?? [];
      sync(done);
      for (let i = done.length; i >= 0; i--) if (models[i]) return models[i];
      return undefined;
    },
    estimationInputs,
    next(done, p) {
      prior = p ?? [];
      sync(done);
      const n = done.length;
      if (specs[n] !== undefined || n < specs.length) return specs[n];
      const spec = decide(done);
      specs[n] = spec;
      return spec;
    },
  };

  function decide(done: readonly RoundResult[]): RoundSpec | undefined {
    const n = done.length;
    if (n === 0) return { name: 'one-way', marginals: oneWayRound, rho: rhoOne };
    if (n === 1 && hasScreen) return { name: 'screen-pairs', marginals: screenedPairs(done[0].measurements), rho: rhoScreen };
    const spent = done.reduce((s, r) => s + r.spec.rho, 0);
    const remaining = rhoTotal - spent;
    if (!(remaining > rhoTotal * 1e-12) || pairs.length === 0) return undefined;
    if (n >= o.maxRounds) return undefined;
    const roundsLeft = Math.min(o.measureRounds - (n - firstMeasure), o.maxRounds - n);
    const last = roundsLeft <= 1;
    const rho = last ? remaining : remaining / roundsLeft;

    const model = fitModel(done);
    const stats = new Stats(
      domain,
      [...prior, ...done.flatMap((r) => r.measurements)],
      withPrior(estimationInputs(done)),
      model,
      o.confidence,
    );
    const inModel = withPrior(estimationInputs(done))
      .filter((m) => m.attrs.length >= 2)
      .map((m) => [...m.attrs]);
    let best: string[][] = [];
    let bestGain = 0;
    for (const k of batchSizes(o.maxBatch)) {
      const sigma = Math.sqrt(k / (2 * rho));
      const { chosen, gain } = select(stats, inModel, sigma, k);
      if (chosen.length < k) break; // fewer than k worth measuring at this σ: larger k only adds noise
      if (gain > bestGain) {
        best = chosen;
        bestGain = gain;
      }
    }
    // Nothing estimated to help (tiny budgets): spend it where it always helps, on the 1-ways.
    if (best.length === 0) best = oneWay;
    return { name: `measure-${n - firstMeasure + 1}`, marginals: best, rho };
  }

  /**
   * Greedy batch of at most k candidates at per-cell noise σ; returns the picks and their total
   * gain. Lazy greedy: a candidate's gain only falls as the batch consumes the pairs it would fix,
   * so candidates sit in a max-heap under an upper bound and only the top one is re-scored (a
   * triple's own noise — its model marginal, the costly part — only then). Exact: the pick is the
   * one a full rescan would make. A candidate the junction-tree cap refuses stays refused (the
   * tree only grows within a batch); after maxCapRefusals(d) refusals the batch stops, which bounds
   * the junction-tree builds of a round on wide schemas whose model is near the cap.
   */
  function select(stats: Stats, inModel: readonly string[][], sigma: number, k: number): { chosen: string[][]; gain: number } {
    const consumed = new Set<string>();
    const chosen: string[][] = [];
    let total = 0;
    /** What measuring set r at σ_r (per cell of r) would fix on r itself. */
    const fixes = (r: Candidate, sigmaR: number): number => {
      const s = stats.get(r.attrs, r.key);
      if (s.inModel) return s.noise(s.sigma) - s.noise(pool(s.sigma, sigmaR));
      return s.misfit - s.noise(pool(s.sigma, sigmaR));
    };
    const isNewTriple = (c: Candidate) => c.pairs.length > 0 && !stats.covered(c.attrs, c.key);
    /** What a new triple fixes on its pairs not consumed yet (its answer projected onto a pair has per-cell σ·√(cells(triple)/cells(pair))). */
    const pairFixes = (c: Candidate): number => {
      let g = 0;
      for (const p of c.pairs) if (!consumed.has(p.key)) g += Math.max(0, fixes(p, sigma * Math.sqrt(c.cells / p.cells)));
      return g;
    };
    /** The candidate's gain given the picks so far. */
    const gainNow = (c: Candidate): number => {
      if (consumed.has(c.key)) return -Infinity;
      if (!isNewTriple(c)) return fixes(c, sigma);
      const g = pairFixes(c);
      return g > 0 ? g - stats.get(c.attrs, c.key).noise(sigma) : -Infinity;
    };
    const heap = new MaxHeap<Candidate>();
    for (const c of candidates) {
      const bound = isNewTriple(c) ? pairFixes(c) : fixes(c, sigma);
      if (bound > 0) heap.push(bound, c);
    }
    let refusals = 0;
    while (chosen.length < k && heap.size > 0 && refusals < refusalBound) {
      const { item: c } = heap.pop()!;
      const g = gainNow(c);
      if (!(g > 0)) continue;
      if (heap.size > 0 && g < heap.peekKey()) {
        heap.push(g, c);
        continue;
      }
      if (c.attrs.length >= 2) {
        const size = treeSize(domain, buildJunctionTree(domain, [...inModel, ...chosen, c.attrs]));
        if (size.maxCliqueCells > o.maxCliqueCells || size.totalCells > o.maxTotalCells) {
          refusals++;
          continue;
        }
      }
      chosen.push(c.attrs);
      total += g;
      consumed.add(c.key);
      for (const p of c.pairs) consumed.add(p.key);
    }
    return { chosen, gain: total };
  }

  return plan;
}

/**
 * Junction-tree cap refusals after which a batch stops growing (see `select`): 16,384 / d, at
 * least 64 — a refusal costs one junction-tree build, whose cost grows with the number of
 * attributes d, so this bounds a batch's work rather than its count. 64 flat was too few: on
 * Adult (d = 14, 455 candidates, so now unbounded in effect) at ε = 10, where the model sits at
 * its cell cap, batches stopped early and the 3-way L1 rose to 0.138–0.150 (0.130–0.131 without
 * the bound); on the demo's 56 attributes whole rounds fell back to re-measuring the one-ways.
 * 1,024 flat made each of the demo's selection rounds take ≈ 30 s.
 */
export function maxCapRefusals(d: number): number {
  return Math.max(64, Math.floor(16_384 / Math.max(1, d)));
}

/**
 * Batch sizes tried for a round: every k up to 16; beyond that a geometric grid (×1.4) ending at
 * maxBatch, so that with many attributes the search stays ~15 greedy selections per round.
 */
export function batchSizes(maxBatch: number): number[] {
  const out: number[] = [];
  for (let k = 1; k <= Math.min(16, maxBatch); k++) out.push(k);
  for (let k = 16; k < maxBatch;) {
    k = Math.min(maxBatch, Math.max(k + 1, Math.round(k * 1.4)));
    out.push(k);
  }
  return out;
}

/** Per-cell σ of the inverse-variance average of two answers with per-cell σ a and b. */
function pool(a: number, b: number): number {
  if (!Number.isFinite(a)) return b;
  return 1 / Math.sqrt(1 / (a * a) + 1 / (b * b));
}

function subPairs(c: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < c.length; i++) for (let j = i + 1; j < c.length; j++) out.push([c[i], c[j]]);
  return out;
}

/**
 * A pair answer summed onto its attribute with more values (the first on a tie): an exact linear
 * function of the answer, whose cells carry independent noise of variance σ²·size(other).
 */
export function projectOnLarger(domain: Domain, m: Measurement): Measurement {
  const [a, b] = m.attrs;
  const onto = domain.sizeOf(b) > domain.sizeOf(a) ? b : a;
  const other = onto === a ? b : a;
  const values = new Float64Array(domain.sizeOf(onto));
  const map = domain.indexMap(m.attrs, [onto]);
  for (let i = 0; i < m.values.length; i++) values[map[i]] += m.values[i];
  return { attrs: [onto], values, sigma: m.sigma * Math.sqrt(domain.sizeOf(other)) };
}

/**
 * Repeated answers of the same attribute set (same layout) pooled into one measurement: the
 * inverse-variance average, with σ = (Σ 1/σ_i²)^(−½). Order of first appearance is kept.
 */
export function poolRepeats(domain: Domain, ms: readonly Measurement[]): Measurement[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of ms) {
    // A band query of the same attributes is another linear query: pooled only with its like.
    const k = m.attrs.join('\u0000') + (isCoarsened(m) ? `\u0001${JSON.stringify(m.coarsen)}` : '');
    const g = groups.get(k);
    if (g) g.push(m);
    else groups.set(k, [m]);
  }
  const out: Measurement[] = [];
  for (const g of groups.values()) {
    if (g.length === 1) {
      out.push(g[0]);
      continue;
    }
    const n = g[0].values.length;
    const acc = new Float64Array(n);
    let wsum = 0;
    for (const m of g) {
      const w = 1 / (m.sigma * m.sigma);
      wsum += w;
      for (let i = 0; i < n; i++) acc[i] += w * m.values[i];
    }
    for (let i = 0; i < n; i++) acc[i] /= wsum;
    out.push({ attrs: [...g[0].attrs], values: acc, sigma: 1 / Math.sqrt(wsum), ...(g[0].coarsen ? { coarsen: g[0].coarsen } : {}) });
  }
  return out;
}

export interface SetStats {
  /** Whether the model was fitted to a measurement covering this set. */
  inModel: boolean;
  /** Pooled per-cell σ of the evidence on the set (estimation inputs if inModel, else all answers); Infinity if none. */
  sigma: number;
  /** Estimated structural misfit ‖D_r − M_r(p̂)‖₁ (records) of a set the model does not contain; 0 without evidence. */
  misfit: number;
  /** Expected L1 noise (records) the model keeps on this set when its evidence has per-cell σ. */
  noise(sigma: number): number;
}

/**
 * Pooled evidence about attribute sets from noisy answers: each answer whose attributes contain r
 * is projected onto r (per-cell variance σ²·cells(m)/cells(r)) and they are averaged by inverse
 * variance.
 */
export class Stats {
  private readonly cache = new Map<string, SetStats>();
  private readonly inputKeys: string[][];
  constructor(
    private readonly domain: Domain,
    private readonly answers: readonly Measurement[],
    private readonly inputs: readonly Measurement[],
    private readonly model: GraphicalModel,
    private readonly confidence = 2,
  ) {
    // Band queries (coarsened measurements) are no evidence about a set's fine cells: a set only
    // they measure is scored as one the model lacks, so selection may still measure it in full.
    this.inputKeys = inputs.filter((m) => !isCoarsened(m)).map((m) => m.attrs);
  }

  private readonly coveredCache = new Map<string, boolean>();

  /** Whether an estimation input covers r (cheap: no model marginal). `k` is key(r) if known. */
  covered(r: readonly string[], k = key(r)): boolean {
    let c = this.coveredCache.get(k);
    if (c === undefined) {
      c = this.inputKeys.some((s) => r.every((a) => s.includes(a)));
      this.coveredCache.set(k, c);
    }
    return c;
  }

  /** Statistics of r (computed once per Stats); `k` is key(r) if known. */
  get(r: readonly string[], k = key(r)): SetStats {
    let s = this.cache.get(k);
    if (!s) {
      s = this.compute(r);
      this.cache.set(k, s);
    }
    return s;
  }

  private bar: number | undefined;

  /** `barConfidence` over the pairs this model lacks that have evidence (computed once). */
  private barConfidence(): number {
    if (this.bar !== undefined) return this.bar;
    const caps: number[] = [];
    const seenPairs = new Set<string>();
    for (const m of this.answers) {
      if (m.attrs.length !== 2 || isCoarsened(m)) continue;
      const k = key(m.attrs);
      if (seenPairs.has(k) || this.covered(m.attrs, k)) continue;
      seenPairs.add(k);
      const ev = this.pooled(m.attrs, this.answers)!;
      const { mu } = this.modelMarginal(m.attrs);
      let rootMass = 0;
      for (let i = 0; i < mu.length; i++) rootMass += Math.sqrt(Math.max(0, mu[i]));
      const sd = ev.sigma * ev.sigma * Math.sqrt(2 * mu.length);
      caps.push(confidenceCap(sd, this.model.total, rootMass));
    }
    this.bar = barConfidence(this.confidence, caps);
    return this.bar;
  }

  private synthetic: Dataset | undefined;

  /**
   * The model's marginal over r: exact when a junction-tree clique holds r, else from a large
   * rounding sample of the model (variable elimination for hundreds of triples per round would
   * dominate the plan's time; the sample's error is far below the measurement noise the score is
   * compared with, and its known variance is subtracted from the misfit statistic).
   */
  private modelMarginal(r: readonly string[]): { mu: Float64Array; sampleVar: number } {
    // The bar and the score both need a pair's marginal: computed once, in r's own order.
    const k = r.join('\u0000');
    let m = this.marginals.get(k);
    if (!m) {
      m = this.computeModelMarginal(r);
      this.marginals.set(k, m);
    }
    return m;
  }

  private readonly marginals = new Map<string, { mu: Float64Array; sampleVar: number }>();

  private computeModelMarginal(r: readonly string[]): { mu: Float64Array; sampleVar: number } {
    if (containingClique(this.domain, this.model.structure.tree, r) >= 0) {
      return { mu: this.model.marginal(r), sampleVar: 0 };
    }
    const rows = SELECTION_SAMPLE_ROWS;
    this.synthetic ??= sample(this.model, { rows, seed: 'aim-selection' });
    const counts = marginal(this.synthetic, r);
    const scale = this.model.total / rows;
    for (let i = 0; i < counts.length; i++) counts[i] *= scale;
    // Each cell's count is ≈ scale·Binomial(rows, μ/total): variance ≈ scale·μ, Σ = scale·total.
    return { mu: counts, sampleVar: scale * this.model.total };
  }

  private pooled(r: readonly string[], from: readonly Measurement[]): { mean: Float64Array; sigma: number } | undefined {
    const domain = this.domain;
    const cells = domain.cells(r);
    const acc = new Float64Array(cells);
    let wsum = 0;
    for (const m of from) {
      if (isCoarsened(m) || !r.every((a) => m.attrs.includes(a))) continue;
      const map = domain.indexMap(m.attrs, r);
      const w = cells / (m.sigma * m.sigma * m.values.length);
      for (let i = 0; i < m.values.length; i++) acc[map[i]] += w * m.values[i];
      wsum += w;
    }
    if (wsum === 0) return undefined;
    for (let i = 0; i < cells; i++) acc[i] /= wsum;
    return { mean: acc, sigma: Math.sqrt(1 / wsum) };
  }

  private compute(r: readonly string[]): SetStats {
    const cells = this.domain.cells(r);
    const { mu, sampleVar } = this.modelMarginal(r);
    // Σ min(1, μ/σ) for any σ in O(log cells): sorted μ with prefix sums.
    const sorted = Float64Array.from(mu, (v) => Math.max(0, v)).sort();
    const prefix = new Float64Array(cells + 1);
    for (let i = 0; i < cells; i++) prefix[i + 1] = prefix[i] + sorted[i];
    const noise = (sigma: number): number => {
      if (!Number.isFinite(sigma)) return Infinity;
      let lo = 0;
      let hi = cells;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid] < sigma) lo = mid + 1;
        else hi = mid;
      }
      const eff = cells - lo + prefix[lo] / sigma;
      return SQRT_2_PI * sigma * Math.max(1, eff);
    };
    const inModel = this.covered(r);
    if (inModel) {
      const ev = this.pooled(r, this.inputs)!;
      return { inModel, sigma: ev.sigma, misfit: 0, noise };
    }
    const ev = this.pooled(r, this.answers);
    if (!ev) return { inModel, sigma: Infinity, misfit: 0, noise };
    // Chi-square-style excess of the answer over the model beyond its noise, at a lower
    // confidence bound (sd of Σ Z² is σ²·√(2·cells)).
    let ss = 0;
    let rootMass = 0;
    for (let i = 0; i < cells; i++) {
      const dlt = ev.mean[i] - mu[i];
      ss += dlt * dlt;
      rootMass += Math.sqrt(Math.max(0, mu[i]));
    }
    const s2 = ev.sigma * ev.sigma;
    const total = this.model.total;
    const sd = s2 * Math.sqrt(2 * cells);
    const excess = ss - cells * s2 - sampleVar - this.barConfidence() * sd;
    // L1 size of a deviation with that squared norm, spread like sampling noise (δ_i ∝ √μ_i).
    const misfit = excess > 0 ? Math.min(2 * total, Math.sqrt(excess / total) * rootMass) : 0;
    return { inModel, sigma: ev.sigma, misfit, noise };
  }
}

/** Baseline plan: every 1-way marginal, once, with the whole budget (independent attributes). */
export function independentPlan(domain: Domain, rhoTotal: number): FitPlan {
  if (!(rhoTotal > 0) || !Number.isFinite(rhoTotal)) throw new Error(`independentPlan: rho must be positive, got ${rhoTotal}`);
  const oneWay = domain.attrs.map((a) => [a]);
  return {
    rhoTotal,
    next: (done) => (done.length === 0 ? { name: 'one-way', marginals: oneWay, rho: rhoTotal } : undefined),
    estimationInputs: (done) => done.flatMap((r) => r.measurements),
  };
}
