// The site's side of an audited fit (site-agent/audit-tasks.ts), on a real ledger, committee key
// and BFV: the holdout is drawn once per fit and stored, kept out of every measure answer of that
// fit (the rows it reads are exactly the stored members; its noised counts, at the smallest noise the
// mechanism allows, σ = 1/2, are within 3 of the members' in every cell: a draw of |X| ≥ 4 has
// probability ≈ 2·10⁻¹⁴, and the whole site's counts are 100 patients away),
// and a `mia-histogram` task is checked against the policy, the cohort's digest and the fit's
// holdout before it is answered and charged at single-party ρ; a malformed spec names its field.
import type { FederationRoster } from '../../proto/roster.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  InvalidTaskSpecError,
  parseTaskSpec,
  type CommitteeMemberSpec,
  type MeasureSpec,
  type MiaHistogramSpec,
} from '../../proto/task-spec.ts';
import { encodeCohort, decodeHistogram } from '../../proto/mia-wire.ts';
import { Bfv } from '../../privacy/crypto/bfv.ts';
import { bfvParams } from '../../coordinator/engine.ts';
import { oneMemberCommittee, provisionedKits } from '../support/kits.ts';
import { SCORE_HISTOGRAM_MECHANISM, scoreHistogramRho } from '../../privacy/dp/mechanisms.ts';
import { rational } from '../../privacy/dp/rational.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { siteCounts } from '../../federation/site-answer.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { fitSplit, holdoutSize, measureRows, miaHistogram } from '../../site-agent/audit-tasks.ts';
import { measure, siteRho, TaskRefusal, type TaskContext } from '../../site-agent/tasks.ts';

const FED = 'audit-fed';
const SCHEMA_HASH = 'schema-hash';
const N = 200;
const domain = new Domain(['code', 'sex'], [6, 2]);
const data = new Dataset(
  domain,
  [Uint8Array.from({ length: N }, (_, i) => (i * 7) % 6), Uint8Array.from({ length: N }, (_, i) => i % 2)],
  N,
);
const patientIds = Array.from({ length: N }, (_, i) => `patient-${i}`);
const BFV = bfvParams();
// σ² = 1/4, the least the accountant accepts: P(|X| ≥ 4) ≈ 2·10⁻¹⁴ per cell.
const TINY = { num: '1', den: '4' };
const NOISE = 3;
const near = (got: ArrayLike<bigint | number>, want: readonly number[]) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(Number(got[i]) - want[i])).toBeLessThanOrEqual(NOISE);
};
const PERMISSIVE = { epsilon: 1e8, delta: 1e-6, minQuorum: 1, minThreshold: 1, allowedStatistics: ['marginal', 'mia-histogram'] };

let dir: string;
let bfv: Bfv;
let kit: { certPem: string; keyPem: string };
let caCert: X509Certificate;
let committee: CommitteeMemberSpec[];
let roster: FederationRoster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-audit-tasks-'));
  const p = await provisionedKits(dir, FED, ['hospital-a']);
  kit = p.kits['hospital-a'];
  caCert = p.caCert;
  roster = p.roster;
  bfv = await Bfv.create();
  committee = oneMemberCommittee(bfv, kit, 'hospital-a', FED, SCHEMA_HASH);
});
afterAll(() => {
  bfv?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function measureSpec(holdoutFraction?: number): MeasureSpec {
  const s = {
    kind: 'measure',
    marginals: [['code'], ['code', 'sex']],
    sigmaSite2: TINY,
    quorum: 1,
    rho: 0,
    threshold: 1,
    committee,
    bfv: BFV,
    maxCellCount: 1000,
    ...(holdoutFraction === undefined ? {} : { holdoutFraction }),
  } as MeasureSpec;
  s.rho = siteRho(s, 6 + 12);
  return s;
}

function context(state: string, taskId: string, noised: BigInt64Array[] = [], over: Partial<TaskContext> = {}): TaskContext {
  return {
    siteId: 'hospital-a',
    federationId: FED,
    schemaHash: SCHEMA_HASH,
    taskId,
    roundId: `r-${taskId}`,
    bfv,
    ledger: openLedger(join(dir, state)),
    policy: parsePolicy(PERMISSIVE),
    data,
    patientIds,
    attributeKinds: { code: 'categorical', sex: 'categorical' },
    caCert,
    roster: () => roster,
    certPem: kit.certPem,
    keyPem: kit.keyPem,
    stateDir: join(dir, state),
    now: () => new Date(),
    onNoisedVector: (_id, v) => noised.push(v),
    ...over,
  };
}

function rows(keep: (i: number) => boolean): Dataset {
  const idx = Array.from({ length: N }, (_, i) => i).filter(keep);
  return new Dataset(
    domain,
    data.columns.map((c) => Uint8Array.from(idx, (i) => c[i])),
    idx.length,
  );
}

const heldOutIds = (state: string): Set<string> => {
  const hdir = join(dir, state, 'holdout');
  const rec = JSON.parse(readFileSync(join(hdir, readdirSync(hdir)[0]), 'utf8')) as { heldOut: string[] };
  return new Set(rec.heldOut);
};
const key = (i: number) => createHash('sha256').update(`id:${patientIds[i]}`).digest('hex').slice(0, 32);

describe('an audited fit keeps its holdout out of every measure answer', () => {
  it("a holdout patient's rows are in no count of the fit's answers; a restarted agent keeps the same split", () => {
    const first: BigInt64Array[] = [];
    const ctx = context('holdout', 't1', first);
    measure(ctx, measureSpec(0.5));
    const held = heldOutIds('holdout');
    expect(held.size).toBe(holdoutSize(N, 0.5));
    const isHeld = (i: number) => held.has(key(i));
    const members = rows((i) => !isHeld(i));
    // The rows the answers are computed from are exactly the stored members.
    expect(measureRows(ctx, { holdoutFraction: 0.5 }).columns.map((c) => Array.from(c))).toEqual(members.columns.map((c) => Array.from(c)));
    ctx.ledger.close();
    const expected = Array.from(siteCounts(members, measureSpec().marginals), Number);
    const whole = Array.from(siteCounts(data, measureSpec().marginals), Number);
    near(first[0], expected);
    // The one-way marginal totals the members, not the site: 100 patients apart, noise ≤ 6 · 3.
    const total = Array.from(first[0].subarray(0, 6), Number).reduce((a, b) => a + b, 0);
    expect(Math.abs(total - (N - held.size))).toBeLessThanOrEqual(6 * NOISE);
    expect(Math.abs(total - whole.slice(0, 6).reduce((a, b) => a + b, 0))).toBeGreaterThan(50);

    // Another round of the same fit, from a freshly opened state (a restarted agent), with and
    // without the fraction in its spec: the same members, the same split on disk.
    const again: BigInt64Array[] = [];
    const ctx2 = context('holdout', 't2', again);
    measure(ctx2, measureSpec(0.5));
    measure({ ...ctx2, taskId: 't3', roundId: 'r-t3' }, measureSpec());
    ctx2.ledger.close();
    expect(again).toHaveLength(2);
    for (const v of again) near(v, expected);
    expect(heldOutIds('holdout')).toEqual(held);
  });

  it('a task of the same fit asking another fraction is refused, nothing charged', () => {
    const ctx = context('holdout', 't4');
    expect(() => measure(ctx, measureSpec(0.25))).toThrow(/asks for a holdout fraction of 0.25, but this site already holds out 0.5/);
    expect(ctx.ledger.charged('t4')).toBe(false);
    ctx.ledger.close();
  });

  it('two draws of a 100-of-200 split differ (a CSPRNG draw, not a fixed split)', () => {
    const split = (state: string) => fitSplit({ stateDir: join(dir, state), federationId: FED, data, patientIds }, 0.5, true)!;
    const a = split('split-a');
    const b = split('split-b');
    // Two uniform 100-subsets of 200 coincide with probability 1/C(200,100) < 10⁻⁵⁸.
    expect(heldOutIds('split-a')).not.toEqual(heldOutIds('split-b'));
    expect(a.holdout.rows + a.members.rows).toBe(N);
    expect(b.holdout.rows).toBe(100);
  });
});

describe('a mia-histogram task at the site', () => {
  const cohort = encodeCohort({
    attrs: ['code', 'sex'],
    rows: 3,
    columns: [
      [0, 1, 2],
      [0, 1, 0],
    ],
  });
  const cohortSha256 = createHash('sha256').update(cohort).digest('hex');
  const miaSpec = (over: Partial<MiaHistogramSpec> = {}): MiaHistogramSpec => {
    const s = {
      kind: 'mia-histogram',
      score: 'dcr',
      bins: 4,
      sigmaSite2: TINY,
      rho: 0,
      holdoutFraction: 0.5,
      cohortRows: 3,
      cohortSha256,
      ...over,
    } as MiaHistogramSpec;
    if (!over.rho) s.rho = scoreHistogramRho({ bins: s.bins, sigmaSite2: rational(BigInt(s.sigmaSite2.num), BigInt(s.sigmaSite2.den)) });
    return s;
  };

  it('answers [members | holdout] of the stored split, charged once at single-party ρ; a retry gets the same bytes', () => {
    const ctx = context('holdout', 'm1');
    const a = miaHistogram(ctx, miaSpec(), cohort);
    const h = Array.from(decodeHistogram(a.body, 8), Number);
    const held = heldOutIds('holdout').size;
    // [members | holdout] of the stored split (4 bins each, noise ≤ 3 per bin).
    expect(Math.abs(h.slice(0, 4).reduce((x, y) => x + y, 0) - (N - held))).toBeLessThanOrEqual(4 * NOISE);
    expect(Math.abs(h.slice(4).reduce((x, y) => x + y, 0) - held)).toBeLessThanOrEqual(4 * NOISE);
    const rec = ctx.ledger.record('m1')!;
    expect(rec.mechanism).toBe(SCORE_HISTOGRAM_MECHANISM);
    expect(rec.rho).toBe(scoreHistogramRho({ bins: 4, sigmaSite2: rational(1n, 4n) }));
    // One party's noise, Δ2 = 1: ρ = 1/(2σ²) = 2.
    expect(rec.rho).toBeCloseTo(2, 12);
    const retry = miaHistogram(ctx, miaSpec(), cohort);
    expect(retry.fresh).toBe(false);
    expect(Buffer.compare(Buffer.from(retry.body), Buffer.from(a.body))).toBe(0);
    expect(ctx.ledger.records()).toHaveLength(4); // t1, t2, t3 and m1
    ctx.ledger.close();
  });

  const refusals: [string, Partial<TaskContext>, Partial<MiaHistogramSpec>, Uint8Array, RegExp][] = [
    [
      'a fit that kept no holdout here',
      { fitId: `${FED}/other-study` },
      {},
      cohort,
      /fit audit-fed\/other-study kept no holdout at this site/,
    ],
    ['a cohort other than the announced one', {}, {}, Buffer.from(cohort).reverse(), /cohort payload's SHA-256/],
    [
      'a policy that does not allow the statistic',
      { policy: parsePolicy({ ...PERMISSIVE, allowedStatistics: ['marginal'] }) },
      {},
      cohort,
      /^statistic "mia-histogram" is not allowed by this site's policy/,
    ],
    [
      'a ρ other than the single-party ρ',
      {},
      { rho: 1e-3 },
      cohort,
      /this site computes rho 2 for its own histogram \(one party's noise\)/,
    ],
    [
      'a budget that cannot afford it',
      { policy: parsePolicy({ ...PERMISSIVE, epsilon: 1 }) },
      {},
      cohort,
      /^task would spend rho 2 but only/,
    ],
  ];
  refusals.forEach(([what, over, specOver, payload, reason], i) =>
    it(`refuses ${what}, before charging anything`, () => {
      const ctx = context('holdout', `bad-${i}`, [], over);
      try {
        expect(() => miaHistogram(ctx, miaSpec(specOver), payload)).toThrow(TaskRefusal);
        expect(() => miaHistogram(ctx, miaSpec(specOver), payload)).toThrow(reason);
        expect(ctx.ledger.charged(`bad-${i}`)).toBe(false);
      } finally {
        ctx.ledger.close();
      }
    }),
  );
});

describe('a malformed mia-histogram spec is refused with the field named', () => {
  const ok = {
    kind: 'mia-histogram',
    score: 'dcr',
    bins: 8,
    sigmaSite2: { num: '4', den: '1' },
    rho: 0.125,
    holdoutFraction: 0.5,
    cohortRows: 10,
    cohortSha256: 'a'.repeat(64),
  };
  it('parses a well-formed spec', () => {
    expect(parseTaskSpec('mia-histogram', JSON.stringify(ok))).toEqual(ok);
  });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ score: 'nearest' }, /^score must be one of dcr, density/],
    [{ bins: undefined }, /^bins must be a positive integer/],
    [{ bins: 65 }, /^bins must be an integer in \[2, 64\]/],
    [{ sigmaSite2: { num: '0', den: '1' } }, /^sigmaSite2 must be positive/],
    [{ rho: -1 }, /^rho must be a positive number/],
    [{ holdoutFraction: 1 }, /^holdoutFraction must be a number strictly between 0 and 1/],
    [{ cohortRows: 0 }, /^cohortRows must be a positive integer/],
    [{ cohortSha256: 'xyz' }, /^cohortSha256 must be 64 lowercase hex digits/],
    [{ coordinatorHead: { seq: -1, hash: 'a'.repeat(64) } }, /^coordinatorHead.seq/],
  ];
  for (const [patch, re] of bad)
    it(`refuses ${JSON.stringify(patch)}`, () => {
      const json = JSON.stringify({ ...ok, ...patch });
      expect(() => parseTaskSpec('mia-histogram', json)).toThrow(InvalidTaskSpecError);
      expect(() => parseTaskSpec('mia-histogram', json)).toThrow(re);
    });
  it('a measure spec with a holdout fraction outside (0, 1) names it', () => {
    const m = {
      kind: 'measure',
      marginals: [['code']],
      sigmaSite2: { num: '4', den: '1' },
      quorum: 1,
      rho: 0.1,
      threshold: 1,
      committee: [{ memberId: 'm', point: 1, publicKey: 'k', signature: 's', certificatePem: 'c' }],
      bfv: BFV,
    };
    expect(() => parseTaskSpec('measure', JSON.stringify({ ...m, holdoutFraction: 0 }))).toThrow(/^holdoutFraction must be/);
    expect(parseTaskSpec('measure', JSON.stringify({ ...m, holdoutFraction: 0.2 })).holdoutFraction).toBe(0.2);
    const bad: [unknown, RegExp][] = [
      [[], /^canaryRows must be a non-empty array of at most 5000 rows/],
      ['0,1', /^canaryRows must be a non-empty array/],
      [Array.from({ length: 5001 }, () => [0, 0]), /^canaryRows must be a non-empty array of at most 5000 rows/],
      [[[0, 1], [1]], /^canaryRows\[1\] must be a non-empty array of 2 value indices/],
      [[[]], /^canaryRows\[0\] must be a non-empty array/],
      [
        [
          [0, 1],
          [1, -1],
        ],
        /^canaryRows\[1\]\[1\] must be a non-negative integer, got -1/,
      ],
      [[[0, 1.5]], /^canaryRows\[0\]\[1\] must be a non-negative integer, got 1.5/],
      [[['0', 1]], /^canaryRows\[0\]\[0\] must be a non-negative integer, got "0"/],
    ];
    for (const [canaryRows, re] of bad) {
      const json = JSON.stringify({ ...m, holdoutFraction: 0.2, canaryRows });
      expect(() => parseTaskSpec('measure', json)).toThrow(InvalidTaskSpecError);
      expect(() => parseTaskSpec('measure', json)).toThrow(re);
    }
    expect(parseTaskSpec('measure', JSON.stringify({ ...m, canaryRows: [[5, 1]] })).canaryRows).toEqual([[5, 1]]);
  });
});

describe('canary rows in an audited fit (a canary audit)', () => {
  const CANARY_POLICY = parsePolicy({ ...PERMISSIVE, allowedStatistics: ['marginal', 'canary'] });
  const canaryRows = [
    [5, 1],
    [5, 1],
    [0, 0],
  ];
  const withCanaries = (rows: number[][] | undefined, fraction: number | null = 0.5): MeasureSpec => ({
    ...measureSpec(fraction ?? undefined),
    ...(rows ? { canaryRows: rows } : {}),
  });

  it("every answer of the fit counts the members plus exactly the task's canary rows (noise σ 1/2, within 3 per cell)", () => {
    const noised: BigInt64Array[] = [];
    const ctx = context('canary', 'c1', noised, { policy: CANARY_POLICY });
    measure(ctx, withCanaries(canaryRows));
    measure({ ...ctx, taskId: 'c2', roundId: 'r-c2' }, withCanaries(canaryRows));
    ctx.ledger.close();
    const members = fitSplit(ctx, undefined, false)!.members;
    const plus = new Dataset(
      domain,
      members.columns.map((c, j) => Uint8Array.from([...Array.from(c), ...canaryRows.map((r) => r[j])])),
      members.rows + canaryRows.length,
    );
    const want = Array.from(siteCounts(plus, measureSpec().marginals), Number);
    expect(noised).toHaveLength(2);
    for (const v of noised) near(v, want);
    // Cell (code 5, sex 1) of the 2-way marginal holds the members' count plus the two canaries:
    // its expected count differs from the members' alone by 2, which a ±3 window cannot show, so
    // compare the one-way totals instead: members + 3, against a noise of at most 6 · 3.
    const total = Array.from(noised[0].subarray(0, 6), Number).reduce((a, b) => a + b, 0);
    expect(Math.abs(total - (members.rows + 3))).toBeLessThanOrEqual(6 * NOISE);
    // Same charge as without canaries: the rows change nothing of the sensitivity.
    expect(ctx.ledger.record('c1')?.rho).toBe(measureSpec().rho);
  });

  it('refused before any charge: a policy without the canary switch, a fit that is not audited, a row outside the schema, another set than the earlier answers', () => {
    const refusals: [string, Partial<TaskContext>, MeasureSpec, RegExp][] = [
      [
        'p1',
        {},
        withCanaries(canaryRows),
        /^canary rows are not allowed by this site's policy \(allowedStatistics: marginal, mia-histogram; add canary/,
      ],
      [
        'p2',
        { policy: CANARY_POLICY },
        withCanaries(canaryRows, null),
        /not part of an audited fit \(no holdoutFraction\): canaries are refused/,
      ],
      ['p3', { policy: CANARY_POLICY }, withCanaries([[6, 0]]), /^canaryRows\[0\]\[0\] is 6, outside attribute code's 6 values/],
      ['p4', { policy: CANARY_POLICY }, withCanaries([[1, 0, 0]]), /^canaryRows\[0\] has 3 values, this site's schema has 2 attributes/],
    ];
    for (const [state, over, spec, re] of refusals) {
      const ctx = context(state, `t-${state}`, [], over);
      expect(() => measure(ctx, spec)).toThrow(TaskRefusal);
      expect(() => measure(ctx, spec)).toThrow(re);
      expect(ctx.ledger.charged(`t-${state}`)).toBe(false);
      ctx.ledger.close();
    }
    // The fit of state 'canary' added `canaryRows` to its answers: another set, or none, is refused.
    for (const [i, other] of [[[0, 0]], undefined].entries()) {
      const ctx = context('canary', `c-other-${i}`, [], { policy: CANARY_POLICY });
      expect(() => measure(ctx, withCanaries(other))).toThrow(
        /but this site added 3 other canary row\(s\) to the earlier answers of fit audit-fed/,
      );
      expect(ctx.ledger.charged(`c-other-${i}`)).toBe(false);
      ctx.ledger.close();
    }
  });
});
