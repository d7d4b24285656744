/**
 * Rare-value compression around a plan (model/compress.ts; private-pgm's MST does the same
 * centrally). Round 1 is the inner plan's own 1-way round on the original domain. From its noisy
 * answers the value map is derived (post-processing: no budget, no data access), and from then on
 * the inner plan runs on the compressed domain: it is built afresh over that domain with the same
 * ρ, its 1-way round is taken as already answered (the round-1 answers summed into the buckets),
 * and every later round carries the map so each site counts its rows on the compressed domain.
 * The estimator fits the compressed domain; the model is then expanded to the original values
 * (`expandModel`), splitting each bucket by the noisy 1-way counts or uniformly.
 *
 * ρ is unchanged: the rounds are the inner plan's, so they still sum to `rhoTotal` exactly, and a
 * patient still adds one count to each marginal of a round, compressed or not.
 *
 * Pure: no I/O, no data access.
 */
import {
  DEFAULT_RARE_THRESHOLD_SIGMAS,
  compressDomain,
  compressOneWays,
  expandModel,
  isIdentityMap,
  rareValueMap,
  type ExpansionKind,
  type ValueMap,
} from '../compress.ts';
import type { Domain } from '../domain.ts';
import type { Measurement } from '../measurement.ts';
import type { GraphicalModel } from '../pgm/model.ts';
import type { EstimationDomain, FitPlan, RoundResult, RoundSpec } from './plan.ts';

export interface CompressionOptions {
  /** A value is rare when its noisy 1-way count is below this many σ. Default 3 (private-pgm's MST). */
  thresholdSigmas?: number;
  /** How the fitted model splits a bucket over its values (model/compress.ts). Default 'projected'. */
  expansion?: ExpansionKind;
  /** Only attributes with at least this many values are compressed. Default 0 (all, as private-pgm). */
  minValues?: number;
}

/** A plan that may run on a domain other than the one it was built for. */
export type DomainPlan = FitPlan & {
  selectionModel?(done: readonly RoundResult[], prior?: readonly Measurement[]): GraphicalModel | undefined;
  readonly options?: unknown;
};

export type CompressedPlan = FitPlan & {
  /** The value map once round 1 is answered (empty when nothing is rare), else undefined. */
  valueMap(done: readonly RoundResult[]): ValueMap | undefined;
  selectionModel(done: readonly RoundResult[]): GraphicalModel | undefined;
  /** The plan now running (the compressed one after round 1): its size caps apply to the estimate. */
  readonly inner: DomainPlan;
};

export function withRareValueCompression(
  domain: Domain,
  rhoTotal: number,
  make: (domain: Domain, rho: number) => DomainPlan,
  options: CompressionOptions = {},
): CompressedPlan {
  const thresholdSigmas = options.thresholdSigmas ?? DEFAULT_RARE_THRESHOLD_SIGMAS;
  const expansion = options.expansion ?? 'projected';
  const original = make(domain, rhoTotal);
  const first = original.next([]);
  if (!first) throw new Error('rare-value compression: the inner plan measures nothing');
  if (!first.marginals.every((m) => m.length === 1))
    throw new Error(`rare-value compression: the inner plan's first round (${first.name}) must measure only 1-way marginals`);
  const measured = new Set(first.marginals.map((m) => m[0]));
  const unmeasured = domain.attrs.filter((a) => !measured.has(a));
  if (unmeasured.length > 0) throw new Error(`rare-value compression: the first round does not measure ${unmeasured.join(', ')}`);

  // Derived once per round-1 answer object (a restarted coordinator passes new objects and gets
  // the same map, since the map is a deterministic function of the released counts).
  let state: { round1: RoundResult; map: ValueMap; compressed?: { domain: Domain; plan: DomainPlan; first: RoundResult } } | undefined;
  const derive = (done: readonly RoundResult[]) => {
    if (done.length === 0) return undefined;
    if (state?.round1 === done[0]) return state;
    if (done[0].spec.name !== first.name)
      throw new Error(`rare-value compression: round 1 must be ${first.name}, got ${done[0].spec.name}`);
    const map = rareValueMap(domain, done[0].measurements, thresholdSigmas, options.minValues ?? 0);
    if (isIdentityMap(map)) {
      state = { round1: done[0], map };
      return state;
    }
    const cdomain = compressDomain(domain, map);
    const plan = make(cdomain, rhoTotal);
    const cfirst = plan.next([]);
    if (!cfirst || cfirst.name !== first.name || cfirst.rho !== first.rho || cfirst.marginals.join('|') !== first.marginals.join('|'))
      throw new Error('rare-value compression: the plan on the compressed domain starts with another round than on the original');
    const measurements = compressOneWays(domain, cdomain, map, done[0].measurements);
    state = { round1: done[0], map, compressed: { domain: cdomain, plan, first: { spec: cfirst, measurements } } };
    return state;
  };
  const plain = new WeakMap<RoundResult, RoundResult>();
  /** The running plan and the rounds as it sees them. */
  const view = (done: readonly RoundResult[]): { plan: DomainPlan; done: RoundResult[] } => {
    const s = derive(done);
    if (!s?.compressed) return { plan: original, done: [...done] };
    // Later rounds carry the map, so their answers are released as linear queries over the
    // original domain (Measurement.coarsen); on the compressed domain they are plain marginals.
    // The same stripped object for the same round, so the inner plan's caches (keyed by the
    // round objects, as AIM's) stay valid.
    const later = done.slice(1).map((r) => {
      let v = plain.get(r);
      if (!v) plain.set(r, (v = { ...r, measurements: r.measurements.map(({ coarsen: _, ...m }) => m) }));
      return v;
    });
    return { plan: s.compressed.plan, done: [s.compressed.first, ...later] };
  };

  return {
    rhoTotal,
    get inner() {
      return state?.compressed?.plan ?? original;
    },
    valueMap: (done) => derive(done)?.map,
    next(done): RoundSpec | undefined {
      if (done.length === 0) return first;
      const v = view(done);
      const spec = v.plan.next(v.done);
      const map = derive(done)?.map;
      return spec && map && !isIdentityMap(map) ? { ...spec, valueMap: map } : spec;
    },
    estimationInputs(done) {
      const v = view(done);
      return v.plan.estimationInputs(v.done);
    },
    selectionModel(done) {
      const v = view(done);
      return v.plan.selectionModel?.(v.done);
    },
    estimationDomain(done): EstimationDomain | undefined {
      const s = derive(done);
      if (!s?.compressed) return undefined;
      const map = s.map;
      const oneWays = s.round1.measurements;
      return {
        domain: s.compressed.domain,
        expand: (model) => expandModel(model, domain, map, { kind: expansion, oneWays }),
      };
    },
  };
}
