/**
 * Declared structure (schema `structure`, docs/synthesis.md): a first round that measures the
 * schema's public attribute sets with their own share of ρ, then the adaptive plan with the rest.
 *
 * Why a separate round and not a hint to selection: the links it carries (a finding and its
 * cause, a locus and its trait) are strong per patient but involve few patients, so in a noisy
 * screening of every pair they do not stand out; measured directly at a moderate σ they do.
 * Choosing the sets costs nothing (they are fixed in the public schema before any data is seen);
 * measuring them is one ordinary distributed measurement, charged like any round.
 *
 * The inner plan sees its own rounds only (indices unchanged) and gets the declared answers as
 * `prior` measurements, so its selection fits a model that already has them.
 * Pure: no I/O, no data access.
 */
import { validateValueMap, type ValueMap } from '../compress.ts';
import type { Domain } from '../domain.ts';
import type { Measurement } from '../measurement.ts';
import type { FitPlan, RoundResult, RoundSpec } from './plan.ts';
import type { GraphicalModel } from '../pgm/model.ts';

export interface StructureGroup {
  /** Share of the total ρ for this group's round, in (0, 1). */
  share: number;
  marginals: string[][];
  /**
   * Band queries (schema `coarsen`, docs/synthesis.md "Band queries"): the group's round carries
   * this value map, so the sites count the coarsened attributes in bands and every marginal
   * naming one is released as a linear query over its bins (Measurement.coarsen).
   */
  valueMap?: ValueMap;
}

/**
 * One declared round (`share`, `marginals`), or one round per group when `groups` is given (then
 * `share` and `marginals` are their sum and union): a group of few, important sets (the clinical
 * workload's age and sex links) gets less noise per set than if it shared a round with many.
 */
export interface DeclaredStructure extends StructureGroup {
  groups?: StructureGroup[];
}

/** A plan whose first rounds can be told about measurements it did not make. */
export type InnerPlan = FitPlan & {
  selectionModel?(done: readonly RoundResult[], prior?: readonly Measurement[]): GraphicalModel | undefined;
};

export type PlanFactory = (rhoInner: number) => InnerPlan;

/** The wrapped plan; `inner` is the adaptive plan it runs after the declared round. */
export type StructuredPlan = InnerPlan & { readonly inner: InnerPlan };

export const STRUCTURE_ROUND = 'declared-structure';

/** Name of the declared round of group `i` (0-based): the first keeps the historical name. */
export const structureRoundName = (i: number): string => (i === 0 ? STRUCTURE_ROUND : `${STRUCTURE_ROUND}-${i + 1}`);

/**
 * Wraps the plan `make(ρ·(1 − share))` with a first round measuring `declared.marginals` at
 * ρ·share. Rounds still sum to ρ exactly: the inner plan spends exactly what it is given.
 */
export function withDeclaredStructure(domain: Domain, rhoTotal: number, declared: DeclaredStructure, make: PlanFactory): StructuredPlan {
  const groups = declared.groups ?? [
    { share: declared.share, marginals: declared.marginals, ...(declared.valueMap ? { valueMap: declared.valueMap } : {}) },
  ];
  if (groups.length === 0) throw new Error('declared structure: no groups');
  for (const g of groups) {
    if (!(g.share > 0 && g.share < 1)) throw new Error(`declared structure: share must be in (0, 1), got ${g.share}`);
    if (g.marginals.length === 0) throw new Error('declared structure: no marginals');
    for (const m of g.marginals) {
      for (const a of m) if (!domain.attrs.includes(a)) throw new Error(`declared structure: unknown attribute ${JSON.stringify(a)}`);
    }
    if (g.valueMap) {
      validateValueMap(domain, g.valueMap);
      for (const a of Object.keys(g.valueMap))
        if (!g.marginals.some((m) => m.includes(a)))
          throw new Error(`declared structure: the group coarsens "${a}", which none of its marginals names`);
    }
  }
  const shareTotal = groups.reduce((p, g) => p + g.share, 0);
  if (!(shareTotal < 1)) throw new Error(`declared structure: the shares sum to ${shareTotal}, leaving nothing for the adaptive plan`);
  const rhoGroups = groups.map((g) => rhoTotal * g.share);
  const inner = make(rhoTotal - rhoGroups.reduce((p, r) => p + r, 0));
  const k = groups.length;
  const split = (done: readonly RoundResult[]) => {
    done.slice(0, k).forEach((r, i) => {
      if (r.spec.name !== structureRoundName(i))
        throw new Error(`declared structure: round ${i + 1} must be ${structureRoundName(i)}, got ${r.spec.name}`);
    });
    return { prior: done.slice(0, k).flatMap((r) => r.measurements), rest: done.slice(k) };
  };
  const plan: StructuredPlan = {
    rhoTotal,
    inner,
    next(done): RoundSpec | undefined {
      if (done.length < k) {
        split(done);
        const i = done.length;
        const g = groups[i];
        return {
          name: structureRoundName(i),
          marginals: g.marginals.map((m) => [...m]),
          rho: rhoGroups[i],
          ...(g.valueMap ? { valueMap: g.valueMap } : {}),
        };
      }
      const { prior, rest } = split(done);
      return inner.next(rest, prior);
    },
    estimationInputs(done) {
      const { prior, rest } = split(done);
      return [...prior, ...inner.estimationInputs(rest)];
    },
  };
  if (inner.selectionModel) {
    const sel = inner.selectionModel.bind(inner);
    plan.selectionModel = (done) => {
      const { prior, rest } = split(done);
      return sel(rest, prior);
    };
  }
  return plan;
}
