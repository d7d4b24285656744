/**
 * Pure budget-ledger logic: given a cap (ε, δ) and the charges already recorded, decide
 * whether a new charge fits. Durable storage is the caller's job (site agent, coordinator);
 * this module only decides, so both sides decide identically.
 */
import { composeRho, epsilonFromRho, rhoFromEpsilonDelta, type Delta, type Epsilon, type Rho } from './accountant.ts';

export interface PrivacyCap {
  readonly epsilon: Epsilon;
  readonly delta: Delta;
}

export interface PrivacyCharge {
  /** Unique id (task/round id); a second charge with the same id is refused. */
  readonly id: string;
  readonly rho: Rho;
  readonly description?: string;
}

export type LedgerDecision =
  | { readonly ok: true; readonly rhoCap: Rho; readonly rhoSpentBefore: Rho; readonly rhoSpentAfter: Rho; readonly rhoRemainingAfter: Rho; readonly epsilonSpentAfter: Epsilon }
  | { readonly ok: false; readonly reason: string; readonly rhoCap: Rho; readonly rhoSpentBefore: Rho };

/** The zCDP ρ equivalent to an (ε, δ) cap (tight CKS conversion). */
export function rhoCapFromEpsilonDelta(cap: PrivacyCap): Rho {
  return rhoFromEpsilonDelta(cap.epsilon, cap.delta);
}

const fmt = (x: number): string => (x === 0 ? '0' : x.toPrecision(6));

/** Decides whether `charge` fits under `cap` on top of `charges`. Pure. */
export function decideCharge(cap: PrivacyCap, charges: readonly PrivacyCharge[], charge: PrivacyCharge): LedgerDecision {
  const rhoCap = rhoCapFromEpsilonDelta(cap);
  const rhoSpentBefore = composeRho(charges.map((c) => c.rho));
  const refuse = (reason: string): LedgerDecision => ({ ok: false, reason, rhoCap, rhoSpentBefore });
  if (!Number.isFinite(charge.rho) || charge.rho < 0) {
    return refuse(`charge "${charge.id}" has invalid rho=${charge.rho} (must be a finite number >= 0)`);
  }
  if (charges.some((c) => c.id === charge.id)) {
    return refuse(`charge "${charge.id}" is already recorded in the ledger (duplicate id)`);
  }
  const rhoSpentAfter = composeRho([rhoSpentBefore, charge.rho]);
  if (rhoSpentAfter > rhoCap) {
    const remaining = Math.max(0, rhoCap - rhoSpentBefore);
    return refuse(
      `charge "${charge.id}" of rho=${fmt(charge.rho)} would bring the spend from rho=${fmt(rhoSpentBefore)} ` +
        `to rho=${fmt(rhoSpentAfter)} (epsilon=${fmt(epsilonFromRho(rhoSpentAfter, cap.delta))} at delta=${cap.delta}), ` +
        `over the cap rho=${fmt(rhoCap)} (epsilon=${cap.epsilon}, delta=${cap.delta}); remaining rho=${fmt(remaining)}`,
    );
  }
  return {
    ok: true,
    rhoCap,
    rhoSpentBefore,
    rhoSpentAfter,
    rhoRemainingAfter: rhoCap - rhoSpentAfter,
    epsilonSpentAfter: epsilonFromRho(rhoSpentAfter, cap.delta),
  };
}
