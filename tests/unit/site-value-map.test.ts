// Rare-value compression on the site side: a measure task's value map travels in its spec; the
// site checks it against its own schema before touching data (a malformed map is refused, nothing
// charged), recodes its rows with it and answers on the compressed domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import type { FederationRoster } from '../../proto/roster.ts';
import { InvalidTaskSpecError, parseTaskSpec, type CommitteeMemberSpec, type MeasureSpec } from '../../proto/task-spec.ts';
import { Bfv } from '../../privacy/crypto/bfv.ts';
import { bfvParams } from '../../coordinator/engine.ts';
import { oneMemberCommittee, provisionedKits } from '../support/kits.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { siteCounts } from '../../federation/site-answer.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { measure, siteRho, TaskRefusal, type TaskContext } from '../../site-agent/tasks.ts';

const FED = 'vm-fed';
const SCHEMA_HASH = 'schema-hash';
let dir: string;
let bfv: Bfv;
let kit: { certPem: string; keyPem: string };
let caCert: X509Certificate;
let roster: FederationRoster;
let committee: CommitteeMemberSpec[];

const BFV = bfvParams();
const domain = new Domain(['code', 'sex'], [6, 2]);
// code: 0 ×3, 1 ×1, 2 ×2, 3 ×1, 4 ×0, 5 ×1; sex alternating.
const data = new Dataset(domain, [Uint8Array.from([0, 0, 0, 1, 2, 2, 3, 5]), Uint8Array.from([0, 1, 0, 1, 0, 1, 0, 1])], 8);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-valuemap-'));
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

function spec(valueMap: unknown, dimension: number): MeasureSpec {
  const s = {
    kind: 'measure',
    marginals: [['code'], ['code', 'sex']],
    sigmaSite2: { num: '400', den: '1' },
    quorum: 1,
    rho: 0,
    threshold: 1,
    committee,
    bfv: BFV,
    valueMap,
  } as MeasureSpec;
  s.rho = siteRho(s, dimension);
  return s;
}

function context(taskId: string, state: string, noised: BigInt64Array[]): TaskContext {
  return {
    siteId: 'hospital-a',
    federationId: FED,
    schemaHash: SCHEMA_HASH,
    taskId,
    roundId: `r-${taskId}`,
    bfv,
    ledger: openLedger(join(dir, state)),
    policy: parsePolicy({ epsilon: 5, delta: 1e-6, minQuorum: 1, minThreshold: 1 }),
    data,
    attributeKinds: { code: 'categorical', sex: 'categorical' },
    caCert,
    roster: () => roster,
    certPem: kit.certPem,
    keyPem: kit.keyPem,
    stateDir: join(dir, state),
    now: () => new Date(),
    onNoisedVector: (_id, v) => noised.push(v),
  };
}

describe('value map in the measure task spec', () => {
  const base = {
    kind: 'measure',
    marginals: [['code']],
    sigmaSite2: { num: '4', den: '1' },
    quorum: 1,
    rho: 0.1,
    threshold: 1,
    committee: [{ memberId: 'm', point: 1, publicKey: 'k', signature: 's', certificatePem: 'c' }],
    bfv: BFV,
  };
  const parse = (valueMap: unknown) => parseTaskSpec('measure', JSON.stringify({ ...base, valueMap }));
  it('round-trips a well-formed map and is absent when not sent', () => {
    expect(parse({ code: [0, 1, 1, 2, 1, 1] }).valueMap).toEqual({ code: [0, 1, 1, 2, 1, 1] });
    expect('valueMap' in parseTaskSpec('measure', JSON.stringify(base))).toBe(false);
  });
  const bad: [unknown, RegExp][] = [
    [[0, 1], /valueMap must be an object/],
    [{ code: 'x' }, /valueMap\.code must be a non-empty array/],
    [{ code: [] }, /valueMap\.code must be a non-empty array/],
    [{ code: [0, -1] }, /valueMap\.code\[1\] must be a non-negative integer/],
    [{ code: [0, 1.5] }, /valueMap\.code\[1\] must be a non-negative integer/],
    [{ code: [0, '1'] }, /valueMap\.code\[1\] must be a non-negative integer/],
  ];
  for (const [valueMap, re] of bad)
    it(`refuses ${JSON.stringify(valueMap)}`, () => {
      expect(() => parse(valueMap)).toThrow(InvalidTaskSpecError);
      expect(() => parse(valueMap)).toThrow(re);
    });
});

describe('a site answers on the compressed domain', () => {
  it('counts its rows through the map (each row still once)', () => {
    // code: kept 0 → 0, 2 → 1; rare 1, 3, 4, 5 → bucket 2.
    const map = { code: [0, 2, 1, 2, 2, 2] };
    expect(Array.from(siteCounts(data, [['code'], ['code', 'sex']], map), Number)).toEqual([3, 2, 3, 2, 1, 1, 1, 1, 2]);
  });

  it('refuses a map that does not fit its schema, before data is read or budget charged', () => {
    const cases: [unknown, RegExp][] = [
      [{ code: [0, 1, 1] }, /malformed rare-value map: value map of "code" has 3 codes, the attribute has 6 values/],
      [{ age: [0, 0] }, /malformed rare-value map: value map names unknown attribute "age"/],
      [{ code: [0, 2, 2, 2, 2, 2] }, /malformed rare-value map: value map of "code": no value maps to code 1/],
      [{ code: [0, 1, 1, 1, 1, 6] }, /malformed rare-value map: value map of "code": code of value 5 must be an integer in 0\.\.5/],
    ];
    cases.forEach(([map, re], i) => {
      const noised: BigInt64Array[] = [];
      const ctx = context(`bad-${i}`, `state-bad-${i}`, noised);
      expect(() => measure(ctx, spec(map, 9))).toThrow(TaskRefusal);
      expect(() => measure(ctx, spec(map, 9))).toThrow(re);
      expect(noised).toEqual([]);
      expect(ctx.ledger.state().charges).toBe(0);
    });
  });

  it('answers a well-formed map with the compressed dimension and charges ρ for it', () => {
    const noised: BigInt64Array[] = [];
    const ctx = context('good', 'state-good', noised);
    // 3 + 3·2 cells on the compressed domain (6 + 6·2 on the original).
    const s = spec({ code: [0, 2, 1, 2, 2, 2] }, 9);
    const answer = measure(ctx, s);
    expect(answer.kind).toBe('contribution');
    expect(noised).toHaveLength(1);
    expect(noised[0].length).toBe(9);
    expect(answer.rho).toBeCloseTo(s.rho, 12);
    expect(ctx.ledger.state().charges).toBe(1);
  });
});
