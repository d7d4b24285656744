// The threshold-HE aggregator resumes a round from the database only if it is the round the plan
// asks for now, with the same noise: a restarted coordinator whose fit configuration changed
// must not release a round sized for other parameters.
import { describe, expect, it } from 'vitest';
import { FitError, measureRoundId, ThresholdHeAggregator, type HeAggregatorContext } from '../../coordinator/he-aggregator.ts';
import { Domain } from '../../model/domain.ts';
import { planRoundNoise } from '../../privacy/dp/mechanisms.ts';
import type { PlannedRound } from '../../federation/run-fit.ts';

const domain = new Domain(['a', 'b'], [3, 2]);
const spec = { name: 'one-way', marginals: [['a'], ['b']], rho: 0.01 };
const noise = planRoundNoise({ cellsPerRow: 2, dimension: 5, parties: 2, targetRho: 0.01 });
const planned: PlannedRound = { index: 0, spec, noise };

function aggregatorWithStoredRound(stored: { sigmaSite2: { num: string; den: string }; rho: number; marginals: string[][] }) {
  const round = {
    roundId: measureRoundId(0, 'one-way'),
    state: 'failed',
    failureReason: 'reached only if the resume check passed',
    deadlineAt: new Date(),
    spec: {
      measure: {
        kind: 'measure',
        quorum: 2,
        threshold: 2,
        committee: [1, 2].map((point) => ({ memberId: `site-${point}`, point, publicKey: 'pk', signature: 'sig', certificatePem: 'pem' })),
        bfv: { polyModulusDegree: 8192, coeffModulusBits: [60, 60], plainModulus: '4294967291' },
        ...stored,
      },
      plan: { ...spec, marginals: stored.marginals },
    },
  };
  const store = { getRound: async () => round, listSubmissions: async () => [] };
  const ctx = { store, cfg: { federationId: 'f', rounds: { quorum: 2 } }, domain } as unknown as HeAggregatorContext;
  return new ThresholdHeAggregator(ctx);
}

const same = {
  sigmaSite2: { num: noise.sigmaSite2.num.toString(), den: noise.sigmaSite2.den.toString() },
  rho: noise.rho,
  marginals: spec.marginals,
};

describe('resuming a stored round', () => {
  it('refuses a stored round whose spec does not decode, naming what is wrong', async () => {
    const agg = aggregatorWithStoredRound({ ...same, marginals: 'a' as unknown as string[][] });
    const err = await agg.measure(planned).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/malformed|marginals/);
  });

  it('continues a round stored with the planned marginals and noise', async () => {
    await expect(aggregatorWithStoredRound(same).measure(planned)).rejects.toThrow(/reached only if the resume check passed/);
  });

  it('refuses a round stored with other noise, ρ or marginals', async () => {
    for (const stored of [
      { ...same, sigmaSite2: { num: '1', den: '1' } },
      { ...same, rho: noise.rho * 2 },
      { ...same, marginals: [['b'], ['a']] },
    ]) {
      const err = await aggregatorWithStoredRound(stored)
        .measure(planned)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FitError);
      expect((err as Error).message).toMatch(/configuration changed since it was opened/);
    }
  });
});
