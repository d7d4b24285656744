// A malicious site adds 2·10⁹ to one cell of its noised vector before encrypting it (the hook
// mutates the vector the agent then shares, exactly what a modified agent would send). The
// coordinator range-checks the decrypted sum against [−B, n_max + B] and refuses the release:
// the round fails, no charge is recorded and no measurement is released.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort } from '../../coordinator/coordinator.ts';
import { SiteAgent } from '../../site-agent/agent.ts';
import { releaseRangeProblem } from '../../coordinator/he-aggregator.ts';
import { DEFAULT_MAX_CELL_COUNT } from '../../proto/task-spec.ts';
import { clipCounts } from '../../federation/site-answer.ts';

const SHIFT = 2_000_000_000n;
let fed: TestFederation;
let fitError: unknown;

beforeAll(async () => {
  fed = await startTestFederation({ sites: 3, patients: 80, quorum: 3, manualSites: ['hospital-c'], deadlineMs: 20_000 });
  const site = 'hospital-c';
  const agent = new SiteAgent(fed.siteCfgs[site], fed.siteData[site], (l) => fed.logs.push(`${site}: ${l}`), {
    onNoisedVector: (_task, v) => {
      v[0] += SHIFT;
    },
  });
  fed.agents[site] = agent;
  fed.agentRuns[site] = agent.run().catch(() => undefined);
  fitError = await runFitAndCohort(fed.cfg, fed.coordinator).then(
    () => null,
    (err: unknown) => err,
  );
}, 180_000);

afterAll(async () => {
  await fed?.close();
});

describe('range check on released sums', () => {
  it('refuses the release of a sum carrying an out-of-range contribution', () => {
    expect(fitError).toBeInstanceOf(Error);
    const m = /released sum out of range, refused: cell 0 is (\d+), outside \[-\d+, \d+\]/.exec((fitError as Error).message);
    expect(m, (fitError as Error).message).not.toBeNull();
    // The shift is carried by the sum (plus a small count and noise), and that is what is refused.
    expect(Math.abs(Number(m![1]) - Number(SHIFT))).toBeLessThan(10_000);
  });

  it('records no charge and no measurement for the refused round, and marks it failed', async () => {
    const store = fed.coordinator.store;
    const fedId = fed.cfg.federationId;
    const measureRounds = (await store.listRounds(fedId, { kind: 'measure' })).sort((a, b) => a.roundId.localeCompare(b.roundId));
    expect(measureRounds).toHaveLength(1);
    const round = measureRounds[0];
    expect(round.state).toBe('failed');
    expect(round.failureReason).toMatch(/out of range/);
    expect(await store.chargesByRound(fedId, round.roundId)).toEqual([]);
    expect(await store.listMeasurements(fedId, round.roundId)).toEqual([]);
    const audit = await store.listAudit(fedId);
    expect(audit.filter((e) => e.event.type === 'charge' || e.event.type === 'measurement-released')).toEqual([]);
  });
});

describe('releaseRangeProblem', () => {
  it('accepts honest sums at the edges and refuses just outside them', () => {
    const sigma = 10;
    const high = 2n * BigInt(DEFAULT_MAX_CELL_COUNT) + 120n;
    expect(releaseRangeProblem([-120n, 0n, high], 2, sigma)).toBeNull();
    expect(releaseRangeProblem([-121n], 2, sigma)).toMatch(/^cell 0 is -121, outside \[-120, /);
    expect(releaseRangeProblem([0n, high + 1n], 2, sigma)).toMatch(/^cell 1 is /);
  });

  it('uses the declared contribution bound: three sites clipped to 1,000 cannot release 3,121', () => {
    expect(releaseRangeProblem([3120n], 3, 10, 1000)).toBeNull();
    expect(releaseRangeProblem([3121n], 3, 10, 1000)).toMatch(
      /^cell 0 is 3121, outside \[-120, 3120\] \(3 contributors, each cell clipped to 1000/,
    );
  });
});

describe('clipCounts', () => {
  it('clips each cell to [0, bound] in place and counts what changed', () => {
    const v = BigInt64Array.from([0n, 5n, 1000n, 1001n, 250_000n, -3n]);
    expect(clipCounts(v, 1000)).toBe(3);
    expect([...v]).toEqual([0n, 5n, 1000n, 1000n, 1000n, 0n]);
    expect(clipCounts(BigInt64Array.from([1n, 2n]), 2)).toBe(0);
  });
});
