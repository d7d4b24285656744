/**
 * The fit's plan from its public configuration: the budget from (ε, δ), the plan kind, and the
 * schema's declared structure measured first at its share. The coordinator, the utility bench
 * and the audits build their plan here, so they run the same rounds for the same settings.
 */
import type { Domain } from '../model/domain.ts';
import { aimPlan, independentPlan, type AimPlanOptions } from '../model/plans/aim.ts';
import { withRareValueCompression, type CompressionOptions } from '../model/plans/compress.ts';
import { mstPlan, type FitPlan } from '../model/plans/plan.ts';
import { withDeclaredStructure, type DeclaredStructure, type InnerPlan } from '../model/plans/structure.ts';
import { fitRhoBudget } from '../privacy/dp/mechanisms.ts';

export type PlanKind = 'aim' | 'mst' | 'independent';
export const PLAN_KINDS: readonly PlanKind[] = ['aim', 'mst', 'independent'];

export interface FitPlanConfig {
  plan: PlanKind;
  epsilon: number;
  delta: number;
  aim?: AimPlanOptions;
  /** The schema's declared structure (public), measured in its own first round. */
  structure?: DeclaredStructure;
  /**
   * Rare-value compression after the 1-way round (model/plans/compress.ts), as private-pgm's MST.
   * Not combined with declared structure yet (its rounds are over the original domain).
   */
  compress?: CompressionOptions;
}

export function makePlan(kind: PlanKind, domain: Domain, rho: number, aim?: AimPlanOptions): InnerPlan {
  if (kind === 'aim') return aimPlan(domain, rho, aim);
  if (kind === 'mst') return mstPlan(domain, rho);
  if (kind === 'independent') return independentPlan(domain, rho);
  throw new Error(`unknown plan "${kind as string}" (known: ${PLAN_KINDS.join(', ')})`);
}

/** The plan a fit with this configuration runs; its rounds sum to the budget's ρ exactly. */
export function buildFitPlan(domain: Domain, cfg: FitPlanConfig): FitPlan {
  const rhoTotal = fitRhoBudget(cfg.epsilon, cfg.delta);
  if (cfg.compress) {
    if (cfg.structure) throw new Error('rare-value compression with declared structure is not supported yet');
    const compress = cfg.compress;
    return withRareValueCompression(domain, rhoTotal, (d, rho) => makePlan(cfg.plan, d, rho, cfg.aim), compress);
  }
  const make = (rho: number) => makePlan(cfg.plan, domain, rho, cfg.aim);
  return cfg.structure ? withDeclaredStructure(domain, rhoTotal, cfg.structure, make) : make(rhoTotal);
}
