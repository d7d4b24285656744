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
import type { Domain } from '../domain.ts';
import type { Measurement } from '../measurement.ts';
import type { FitPlan, RoundResult, RoundSpec } from './plan.ts';
import type { GraphicalModel } from '../pgm/model.ts';

export interface DeclaredStructure {
  /** Share of the total ρ for the declared round, in (0, 1). */
  share: number;
  marginals: string[][];
}

/** A plan whose first rounds can be told about measurements it did not make. */
export type InnerPlan = FitPlan & {
  selectionModel?(done: readonly RoundResult[], prior?: readonly Measurement[]): GraphicalModel | undefined;
};

export type PlanFactory = (rhoInner: number) => InnerPlan;

/** The wrapped plan; `inner` is the adaptive plan it runs after the declared round. */
export type StructuredPlan = InnerPlan & { readonly inner: InnerPlan };

export const STRUCTURE_ROUND = 'declared-structure';

/**
 * Wraps the plan `make(ρ·(1 − share))` with a first round measuring `declared.marginals` at
 * ρ·share. Rounds still sum to ρ exactly: the inner plan spends exactly what it is given.
 */
export function withDeclaredStructure(domain: Domain, rhoTotal: number, declared: DeclaredStructure, make: PlanFactory): StructuredPlan {
  if (!(declared.share > 0 && declared.share < 1)) throw new Error(`declared structure: share must be in (0, 1), got ${declared.share}`);
  if (declared.marginals.length === 0) throw new Error('declared structure: no marginals');
  for (const m of declared.marginals) {
    for (const a of m) if (!domain.attrs.includes(a)) throw new Error(`declared structure: unknown attribute ${JSON.stringify(a)}`);
  }
  const rhoDeclared = rhoTotal * declared.share;
  const inner = make(rhoTotal - rhoDeclared);
  const split = (done: readonly RoundResult[]) => {
    if (done.length > 0 && done[0].spec.name !== STRUCTURE_ROUND)
      throw new Error(`declared structure: the first round must be ${STRUCTURE_ROUND}, got ${done[0].spec.name}`);
    return { prior: done.length > 0 ? done[0].measurements : [], rest: done.slice(1) };
  };
  const plan: StructuredPlan = {
    rhoTotal,
    inner,
    next(done): RoundSpec | undefined {
      if (done.length === 0) return { name: STRUCTURE_ROUND, marginals: declared.marginals.map((m) => [...m]), rho: rhoDeclared };
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
