// Membership-inference statistics and the site-side score histograms (site-agent/dcr.ts): AUC and
// advantage on cases computed by hand, and the sensitivity of the released histogram — one
// patient, however many records it had, moves exactly one cell by one.
import { describe, expect, it } from 'vitest';
import { Dataset, Domain } from '../../model/domain.ts';
import { miaFromHistograms, miaFromScores } from '../../privacy/empirical/mia.ts';
import { miaScores, scoreHistogram } from '../../site-agent/dcr.ts';
import { Rng } from '../../model/rng.ts';

const domain = new Domain(['a', 'b', 'c', 'd'], [3, 4, 2, 5]);
function data(rows: number[][]): Dataset {
  return new Dataset(
    domain,
    domain.attrs.map((_, j) => Uint8Array.from(rows.map((r) => r[j]))),
    rows.length,
  );
}
function randomRows(n: number, rng: Rng): number[][] {
  return Array.from({ length: n }, () => domain.sizes.map((s) => rng.nextInt(s)));
}

describe('MIA statistics', () => {
  it('AUC and advantage on hand-computed cases', () => {
    expect(miaFromScores([3, 4], [1, 2])).toMatchObject({ auc: 1, advantage: 1 });
    expect(miaFromScores([1, 2], [3, 4])).toMatchObject({ auc: 0, advantage: 0 });
    expect(miaFromScores([1, 2, 3], [1, 2, 3])).toMatchObject({ auc: 0.5, advantage: 0 });
    // members {2, 4}, holdout {1, 3}: pairs (2>1), (2<3), (4>1), (4>3) → 3/4; best threshold ≥4: TPR ½, FPR 0.
    expect(miaFromScores([2, 4], [1, 3])).toMatchObject({ auc: 0.75, advantage: 0.5 });
    // ties count half; lower-is-member flips the order
    expect(miaFromScores([1], [1]).auc).toBe(0.5);
    expect(miaFromScores([1, 1], [5, 6], false).auc).toBe(1);
    // histograms: negative (noised) counts are clipped
    expect(miaFromHistograms([0, -3, 10], [10, 0, -1]).auc).toBe(1);
    expect(miaFromHistograms([5, 5], [5, 5])).toMatchObject({ auc: 0.5, advantage: 0 });
  });
});

describe('site-side DCR and density scores', () => {
  it('DCR is the Hamming distance to the closest synthetic record; density counts neighbours within 1', () => {
    const cohort = data([
      [0, 0, 0, 0],
      [1, 1, 1, 1],
      [0, 0, 0, 1],
    ]);
    expect(
      Array.from(
        miaScores(
          data([
            [0, 0, 0, 0],
            [2, 3, 0, 4],
            [1, 1, 1, 2],
          ]),
          cohort,
          'dcr',
        ),
      ),
    ).toEqual([0, 3, 1]);
    // [0,0,0,0] has 2 neighbours within distance 1 → ⌊log2 3⌋ = 1; [2,3,0,4] none → 0
    expect(
      Array.from(
        miaScores(
          data([
            [0, 0, 0, 0],
            [2, 3, 0, 4],
          ]),
          cohort,
          'density',
        ),
      ),
    ).toEqual([1, 0]);
  });

  it('one patient moves exactly one histogram cell by one (Δ1 = Δ2 = 1)', () => {
    const rng = new Rng('dcr-sens');
    const cohort = data(randomRows(300, rng));
    const members = randomRows(80, rng);
    const holdout = randomRows(80, rng);
    for (const kind of ['dcr', 'density'] as const) {
      const base = scoreHistogram(data(members), data(holdout), cohort, kind, 4);
      expect(base.reduce((s, x) => s + x, 0)).toBe(160);
      for (let t = 0; t < 20; t++) {
        const extra = randomRows(1, rng);
        const asMember = t % 2 === 0;
        const h = scoreHistogram(
          data(asMember ? [...members, ...extra] : members),
          data(asMember ? holdout : [...holdout, ...extra]),
          cohort,
          kind,
          4,
        );
        const diff = Array.from(h, (x, i) => x - base[i]);
        expect(diff.filter((x) => x !== 0)).toEqual([1]);
      }
    }
  });
});
