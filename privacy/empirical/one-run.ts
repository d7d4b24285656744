/**
 * One-run privacy auditing: Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training
 * Run", NeurIPS 2023 (arXiv:2305.08846). Pure statistics, no I/O.
 *
 * The experiment: m canaries, each included in the input independently with probability ½; the
 * mechanism runs ONCE; an attacker scores every canary from the output and guesses "included"
 * for the k₊ highest scores and "excluded" for the k₋ lowest (abstaining on the rest). With
 * r = k₊ + k₋ guesses of which v are correct, the paper's Theorem 3 (ε-DP) / its (ε, δ)
 * extension bounds the probability of ≥ v correct guesses for any (ε, δ)-DP mechanism:
 *
 *   P[V ≥ v] ≤ P[Binomial(r, q) ≥ v] + 2mδ · α,   q = e^ε / (1 + e^ε),
 *   α = max_{1 ≤ i ≤ v} P[v > Binomial(r, q) ≥ v − i] / i,
 *
 * which is exactly the p-value computed by the authors' reference code (Algorithm/Appendix:
 * `p_value_DP_audit`). The ε lower bound at confidence 1 − β is the largest ε whose p-value is
 * still < β: if the mechanism were (ε, δ)-DP for that ε, seeing v correct guesses would have
 * probability < β. Found by bisection exactly as the reference (`get_eps_audit`).
 */

/** ln(n!) for integers 0..n, cached. */
const logFactCache: number[] = [0];
function logFactorial(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`logFactorial: ${n}`);
  for (let k = logFactCache.length; k <= n; k++) logFactCache.push(logFactCache[k - 1] + Math.log(k));
  return logFactCache[n];
}

/** P[Binomial(n, q) = k], in log space for accuracy at large n. */
export function binomialPmf(k: number, n: number, q: number): number {
  if (k < 0 || k > n) return 0;
  if (q <= 0) return k === 0 ? 1 : 0;
  if (q >= 1) return k === n ? 1 : 0;
  return Math.exp(logFactorial(n) - logFactorial(k) - logFactorial(n - k) + k * Math.log(q) + (n - k) * Math.log1p(-q));
}

/** P[Binomial(n, q) ≥ k]. */
export function binomialSf(k: number, n: number, q: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // Sum the smaller tail for accuracy.
  let s = 0;
  if (k > n * q) {
    for (let j = k; j <= n; j++) s += binomialPmf(j, n, q);
    return Math.min(1, s);
  }
  for (let j = 0; j < k; j++) s += binomialPmf(j, n, q);
  return Math.max(0, 1 - s);
}

function checkCounts(m: number, r: number, v: number): void {
  if (![m, r, v].every((x) => Number.isSafeInteger(x) && x >= 0) || !(v <= r && r <= m)) {
    throw new RangeError(`one-run audit needs integers 0 ≤ v ≤ r ≤ m, got m=${m} r=${r} v=${v}`);
  }
}

/**
 * p-value of "the mechanism is (ε, δ)-DP" after v correct guesses out of r, with m canaries:
 * an upper bound on P[≥ v correct] under that hypothesis.
 */
export function oneRunPValue(m: number, r: number, v: number, epsilon: number, delta: number): number {
  checkCounts(m, r, v);
  if (!(epsilon >= 0) || !(delta >= 0 && delta <= 1)) throw new RangeError(`bad ε ${epsilon} or δ ${delta}`);
  const q = 1 / (1 + Math.exp(-epsilon));
  const beta = binomialSf(v, r, q);
  let alpha = 0;
  let sum = 0;
  for (let i = 1; i <= v; i++) {
    sum += binomialPmf(v - i, r, q);
    if (sum > i * alpha) alpha = sum / i;
  }
  return Math.min(1, beta + alpha * delta * 2 * m);
}

/**
 * The ε lower bound at confidence 1 − `beta` (default 95%): the largest ε (to bisection
 * precision, erring low) such that an (ε, δ)-DP mechanism would give ≥ v correct guesses with
 * probability < beta. 0 when even ε = 0 cannot be rejected.
 */
export function oneRunEpsilonLowerBound(m: number, r: number, v: number, delta: number, beta = 0.05): number {
  checkCounts(m, r, v);
  if (!(beta > 0 && beta < 1)) throw new RangeError(`beta must be in (0, 1), got ${beta}`);
  if (oneRunPValue(m, r, v, 0, delta) >= beta) return 0;
  let lo = 0;
  let hi = 1;
  while (oneRunPValue(m, r, v, hi, delta) < beta) {
    lo = hi;
    hi += 1;
    if (hi > 1000) return lo;
  }
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (oneRunPValue(m, r, v, mid, delta) < beta) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface OneRunGuesses {
  /** +1 guessed included, −1 guessed excluded, 0 abstained; by canary index. */
  guesses: Int8Array;
  r: number;
  v: number;
}

/**
 * The paper's guessing rule: "included" for the kPlus highest scores, "excluded" for the kMinus
 * lowest, abstain on the rest; then counts the correct guesses against the true inclusion bits.
 * Ties are broken by index (deterministic; the attacker must not look at `included`).
 */
export function guessTopBottom(scores: ArrayLike<number>, included: ArrayLike<boolean>, kPlus: number, kMinus: number): OneRunGuesses {
  const m = scores.length;
  if (included.length !== m) throw new RangeError('scores and inclusion bits differ in length');
  if (!(Number.isInteger(kPlus) && Number.isInteger(kMinus) && kPlus >= 0 && kMinus >= 0 && kPlus + kMinus <= m)) {
    throw new RangeError(`need k+ + k- ≤ m, got ${kPlus} + ${kMinus} > ${m}`);
  }
  for (let i = 0; i < m; i++) if (!Number.isFinite(scores[i])) throw new RangeError(`score ${i} is not finite`);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const guesses = new Int8Array(m);
  for (let j = 0; j < kPlus; j++) guesses[order[j]] = 1;
  for (let j = 0; j < kMinus; j++) guesses[order[m - 1 - j]] = -1;
  let v = 0;
  for (let i = 0; i < m; i++) if (guesses[i] !== 0 && (guesses[i] === 1) === Boolean(included[i])) v++;
  return { guesses, r: kPlus + kMinus, v };
}

export interface OneRunAuditResult {
  m: number;
  kPlus: number;
  kMinus: number;
  r: number;
  v: number;
  delta: number;
  confidence: number;
  epsilonLower: number;
}

/** Guesses from scores, then the ε lower bound: the whole of the paper's Algorithm 1 after the run. */
export function oneRunAudit(
  scores: ArrayLike<number>,
  included: ArrayLike<boolean>,
  opts: { kPlus: number; kMinus: number; delta: number; beta?: number },
): OneRunAuditResult {
  const g = guessTopBottom(scores, included, opts.kPlus, opts.kMinus);
  const beta = opts.beta ?? 0.05;
  return {
    m: scores.length,
    kPlus: opts.kPlus,
    kMinus: opts.kMinus,
    r: g.r,
    v: g.v,
    delta: opts.delta,
    confidence: 1 - beta,
    epsilonLower: oneRunEpsilonLowerBound(scores.length, g.r, g.v, opts.delta, beta),
  };
}
