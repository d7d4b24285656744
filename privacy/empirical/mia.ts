/**
 * Membership-inference statistics (pure): ROC AUC and membership advantage from the score
 * distributions of members and of a held-out control set. Works on histograms (what leaves the
 * sites: noised counts per score bin, negatives clipped to 0) or on raw score lists.
 *
 * Convention: a higher bin index / score means "more likely a member" unless `higherIsMember`
 * is false (e.g. distance to the closest synthetic record: closer = more likely a member).
 *   AUC = P[s_member > s_holdout] + ½ P[s_member = s_holdout]
 *   advantage = max over thresholds of (TPR − FPR)   (Yeom et al. 2018), in [0, 1]
 * With no leakage both distributions are equal: AUC = ½, advantage ≈ 0.
 */

export interface MiaStats {
  auc: number;
  advantage: number;
  members: number;
  holdout: number;
}

/** AUC and advantage from per-bin counts of members and holdout (same bins, in score order). */
export function miaFromHistograms(members: ArrayLike<number>, holdout: ArrayLike<number>, higherIsMember = true): MiaStats {
  if (members.length !== holdout.length) throw new RangeError('member and holdout histograms differ in length');
  const k = members.length;
  const a = Array.from({ length: k }, (_, i) => Math.max(0, members[higherIsMember ? i : k - 1 - i]));
  const b = Array.from({ length: k }, (_, i) => Math.max(0, holdout[higherIsMember ? i : k - 1 - i]));
  const na = a.reduce((s, x) => s + x, 0);
  const nb = b.reduce((s, x) => s + x, 0);
  if (!(na > 0) || !(nb > 0)) return { auc: 0.5, advantage: 0, members: na, holdout: nb };
  // Walk bins from the most member-like down: below = holdout mass strictly below the current bin.
  let auc = 0;
  let below = nb;
  let tp = 0;
  let fp = 0;
  let adv = 0;
  for (let i = k - 1; i >= 0; i--) {
    below -= b[i];
    auc += a[i] * (below + b[i] / 2);
    tp += a[i];
    fp += b[i];
    adv = Math.max(adv, tp / na - fp / nb);
  }
  return { auc: auc / (na * nb), advantage: adv, members: na, holdout: nb };
}

/** AUC and advantage from raw scores (exact, ties counted ½). */
export function miaFromScores(members: ArrayLike<number>, holdout: ArrayLike<number>, higherIsMember = true): MiaStats {
  const values = [...new Set([...Array.from(members), ...Array.from(holdout)])].sort((x, y) => x - y);
  const index = new Map(values.map((v, i) => [v, i]));
  const ha = new Float64Array(values.length);
  const hb = new Float64Array(values.length);
  for (const v of Array.from(members)) ha[index.get(v)!]++;
  for (const v of Array.from(holdout)) hb[index.get(v)!]++;
  return miaFromHistograms(ha, hb, higherIsMember);
}
