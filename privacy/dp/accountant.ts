/**
 * Privacy accounting in zero-concentrated DP (ρ-zCDP, Bun–Steinke 2016).
 *
 * Accounting runs in doubles (it is analysis, not sampling). Every function takes and returns
 * values whose unit is in its name: `rho` (zCDP ρ), `epsilon` / `delta` ((ε, δ)-DP), `sigma`
 * (standard-deviation parameter of a Gaussian), `sigma2` (its square), sensitivities in the
 * query's own units (one patient added or removed).
 */
import { rational, rationalToNumber, type Rational } from './rational.ts';

/** zCDP ρ (dimensionless, ≥ 0). */
export type Rho = number;
/** (ε, δ)-DP ε (nats, ≥ 0). */
export type Epsilon = number;
/** (ε, δ)-DP δ (probability in (0, 1)). */
export type Delta = number;

function assertFiniteNonNeg(name: string, x: number): void {
  if (!Number.isFinite(x) || x < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${x}`);
}
function assertDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
}

/** Sequential composition in zCDP: ρ's add up (Bun–Steinke 2016, Lemma 2.3). */
export function composeRho(rhos: readonly Rho[]): Rho {
  // Neumaier summation: many small charges must not lose mass to rounding.
  let sum = 0;
  let c = 0;
  for (const r of rhos) {
    assertFiniteNonNeg('rho', r);
    const t = sum + r;
    c += Math.abs(sum) >= Math.abs(r) ? sum - t + r : r - t + sum;
    sum = t;
  }
  return sum + c;
}

/**
 * ρ of the (continuous or discrete) Gaussian mechanism with L2 sensitivity Δ and noise
 * parameter σ: ρ = Δ²/(2σ²). For the discrete Gaussian N_Z(0, σ²) this is CKS 2020 Thm 4.
 */
export function rhoGaussian(l2Sensitivity: number, sigma: number): Rho {
  assertFiniteNonNeg('l2Sensitivity', l2Sensitivity);
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma must be > 0, got ${sigma}`);
  return (l2Sensitivity * l2Sensitivity) / (2 * sigma * sigma);
}

/** Same as rhoGaussian, from the exact variance parameter σ² actually used by the sampler. */
export function rhoGaussianFromSigma2(l2Sensitivity: number, sigma2: Rational | number): Rho {
  const s2 = typeof sigma2 === 'number' ? sigma2 : rationalToNumber(sigma2);
  if (!(s2 > 0) || !Number.isFinite(s2)) throw new RangeError(`sigma2 must be > 0, got ${s2}`);
  assertFiniteNonNeg('l2Sensitivity', l2Sensitivity);
  return (l2Sensitivity * l2Sensitivity) / (2 * s2);
}

/**
 * Tight conversion ρ-zCDP ⇒ (ε, δ)-DP of Canonne–Kamath–Steinke 2020 (Cor. 13 / §2.3):
 *   ε(ρ, δ) = inf_{α>1} αρ + (log(1/δ) + (α−1)·log(1−1/α) − log α)/(α−1).
 * The objective's derivative is ρ + log(αδ)/(α−1)², which has a single sign change on
 * (1, ∞), so we bisect on its sign. Any α gives a valid (upper) bound, so numerical error in
 * α only makes ε slightly conservative, never optimistic.
 */
export function epsilonFromRho(rho: Rho, delta: Delta): Epsilon {
  assertFiniteNonNeg('rho', rho);
  assertDelta(delta);
  if (rho === 0) return 0;
  const objective = (a: number): number => a * rho + (-Math.log(delta) + (a - 1) * Math.log1p(-1 / a) - Math.log(a)) / (a - 1);
  const derivPositive = (a: number): boolean => rho + Math.log(a * delta) / ((a - 1) * (a - 1)) > 0;
  let lo = 1;
  let hi = 2;
  while (!derivPositive(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) break;
  }
  for (let i = 0; i < 200; i++) {
    const mid = lo + (hi - lo) / 2;
    if (mid === lo || mid === hi) break;
    if (derivPositive(mid)) hi = mid;
    else lo = mid;
  }
  // Evaluate at both ends (lo may still be exactly 1 where the objective is undefined).
  const candidates = [hi, lo]
    .filter((a) => a > 1)
    .map(objective)
    .filter(Number.isFinite);
  return Math.max(0, Math.min(...candidates));
}

/**
 * The smallest δ such that ρ-zCDP ⇒ (ε, δ)-DP (CKS 2020):
 *   δ = inf_{α>1} exp((α−1)(αρ−ε)) / α · (1 − 1/α)^{α−1}.
 * log δ(α) is convex in α with derivative (2α−1)ρ − ε + log(1−1/α); bisect on its sign.
 */
export function deltaFromRhoEpsilon(rho: Rho, epsilon: Epsilon): Delta {
  assertFiniteNonNeg('rho', rho);
  assertFiniteNonNeg('epsilon', epsilon);
  if (rho === 0) return 0;
  const logDelta = (a: number): number => (a - 1) * (a * rho - epsilon) + (a - 1) * Math.log1p(-1 / a) - Math.log(a);
  const deriv = (a: number): number => (2 * a - 1) * rho - epsilon + Math.log1p(-1 / a);
  let lo = 1;
  // At this α the derivative is positive: (2α−1)ρ ≥ ε + 1 + 3ρ and log(1−1/α) > −1.
  let hi = (epsilon + 1) / (2 * rho) + 2;
  for (let i = 0; i < 400; i++) {
    const mid = lo + (hi - lo) / 2;
    if (mid === lo || mid === hi) break;
    if (deriv(mid) < 0) lo = mid;
    else hi = mid;
  }
  const a = lo > 1 ? Math.min(logDelta(lo), logDelta(hi)) : logDelta(hi);
  return Math.min(1, Math.exp(a));
}

/**
 * The largest ρ with epsilonFromRho(ρ, δ) ≤ ε, by bisection (epsilonFromRho is increasing in
 * ρ). The returned ρ always satisfies the (ε, δ) target; it is below the exact root by at
 * most a relative 1e-13.
 */
export function rhoFromEpsilonDelta(epsilon: Epsilon, delta: Delta): Rho {
  assertFiniteNonNeg('epsilon', epsilon);
  assertDelta(delta);
  if (epsilon === 0) return 0;
  let lo = 0;
  let hi = epsilon; // ε(ρ, δ) ≥ ρ, so ρ = ε is never feasible beyond equality
  while (epsilonFromRho(hi, delta) <= epsilon) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (epsilonFromRho(mid, delta) <= epsilon) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface DistributedDiscreteGaussianParams {
  /** L2 sensitivity Δ2 of the summed integer vector (one patient added/removed at one site). */
  readonly l2Sensitivity: number;
  /** L1 sensitivity Δ1 of the same. */
  readonly l1Sensitivity: number;
  /** σ² parameter of each site's N_Z(0, σ²) noise, exactly as sampled. */
  readonly sigmaSite2: Rational | number;
  /** n: the number of parties whose noise is trusted to be in the sum (the quorum). */
  readonly parties: number;
  /** d: the vector dimension. */
  readonly dimension: number;
}

/**
 * ρ for a sum of n independent N_Z(0, σ²) vectors (the distributed discrete Gaussian).
 *
 * Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism for Federated Learning
 * with Secure Aggregation", ICML 2021 (arXiv:2102.06387). With τ = 10·Σ_{k=1}^{n−1}
 * exp(−2π²σ²·k/(k+1)) and σ ≥ 1/2, Proposition 14 bounds the Rényi divergence of order α by
 *   min{ α/2·Δ2²/(nσ²) + τd,
 *        α/2·(Δ2²/(nσ²) + 2Δ1τ/(√n σ) + τ²d),
 *        α/2·(Δ2/(√n σ) + τ√d)² }
 * (checked against Google's reference accountant, google-research/federated
 * distributed_dp/accounting_utils.py, compute_rdp_dgaussian, which cites Prop. 14).
 * Each term is a·α + b with b ≥ 0, so sup_α D_α/α ≤ a + b and the mechanism is ρ-zCDP with
 *   ρ = min{ Δ2²/(2nσ²) + τd, ½(Δ2²/(nσ²) + 2Δ1τ/(√n σ) + τ²d), ½(Δ2/(√n σ) + τ√d)² }.
 * Theorem 1 of the paper states ½ε²-zCDP with ε = min{√(Δ2²/(nσ²) + ½τd), Δ1/(√n σ) + τ√d};
 * its second branch is never tighter than our second term, and we deliberately do not use its
 * first branch (it charges τd/4 where the RDP bound justifies τd for α < 4). For σ ≥ 1 the τ
 * terms are < 1e-3·n and vanish for σ ≥ 2, so the difference only matters for tiny σ.
 * With n = 1, τ = 0 and this is exactly the single discrete Gaussian's Δ2²/(2σ²).
 */
export function rhoDistributedDiscreteGaussian(p: DistributedDiscreteGaussianParams): Rho {
  const sigma2 = typeof p.sigmaSite2 === 'number' ? p.sigmaSite2 : rationalToNumber(p.sigmaSite2);
  assertFiniteNonNeg('l2Sensitivity', p.l2Sensitivity);
  assertFiniteNonNeg('l1Sensitivity', p.l1Sensitivity);
  if (!(sigma2 >= 0.25) || !Number.isFinite(sigma2))
    throw new RangeError(`sigmaSite2 must be >= 1/4 (σ ≥ 1/2, KLS Prop. 14), got ${sigma2}`);
  if (!Number.isInteger(p.parties) || p.parties < 1) throw new RangeError(`parties must be an integer >= 1, got ${p.parties}`);
  if (!Number.isInteger(p.dimension) || p.dimension < 1) throw new RangeError(`dimension must be an integer >= 1, got ${p.dimension}`);
  const n = p.parties;
  const d = p.dimension;
  let tau = 0;
  for (let k = 1; k < n; k++) tau += Math.exp((-2 * Math.PI * Math.PI * sigma2 * k) / (k + 1));
  tau *= 10;
  const nSigma2 = n * sigma2;
  const l2sq = (p.l2Sensitivity * p.l2Sensitivity) / nSigma2;
  const l1s = p.l1Sensitivity / Math.sqrt(nSigma2);
  const l2s = p.l2Sensitivity / Math.sqrt(nSigma2);
  const r1 = l2sq / 2 + tau * d;
  const r2 = (l2sq + 2 * l1s * tau + tau * tau * d) / 2;
  const r3 = (l2s + tau * Math.sqrt(d)) ** 2 / 2;
  return Math.min(r1, r2, r3);
}

export type SigmaPlanParams = Omit<DistributedDiscreteGaussianParams, 'sigmaSite2'> & { readonly targetRho: Rho };

/**
 * Per-site σ² (as a double) such that `parties` sites' independent N_Z(0, σ²) noise meets
 * `targetRho`: the smallest σ² ≥ 1/4 (to bisection precision, erring high) with
 * rhoDistributedDiscreteGaussian(σ²) ≤ targetRho. The caller turns it into an exact rational
 * (see planDistributedNoise) and must charge ρ recomputed from that rational.
 */
export function sigmaSite2ForRho(p: SigmaPlanParams): number {
  if (!(p.targetRho > 0) || !Number.isFinite(p.targetRho)) throw new RangeError(`targetRho must be > 0, got ${p.targetRho}`);
  const rhoAt = (s2: number): number => rhoDistributedDiscreteGaussian({ ...p, sigmaSite2: s2 });
  let lo = 0.25;
  if (rhoAt(lo) <= p.targetRho) return lo;
  let hi = 1;
  while (rhoAt(hi) > p.targetRho) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) throw new RangeError('sigmaSite2ForRho: target unreachable');
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (rhoAt(mid) <= p.targetRho) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Plans the noise for one distributed measurement: σ² per site rounded UP to a multiple of
 * 1/1024 (a small exact rational keeps the sampler on its fast integer path), and the ρ that
 * this exact σ² actually gives; that ρ, not the target, is what must be charged.
 */
export function planDistributedNoise(p: SigmaPlanParams): { sigmaSite2: Rational; rho: Rho } {
  const s2 = sigmaSite2ForRho(p);
  // s2·1024 is exact (power-of-two scaling), so the ceiling really rounds up.
  const sigmaSite2 = rational(BigInt(Math.ceil(s2 * 1024)), 1024n);
  const rho = rhoDistributedDiscreteGaussian({ ...p, sigmaSite2 });
  return { sigmaSite2, rho };
}
