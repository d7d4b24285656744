import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  PolicyError,
  budgetGuard,
  certificateFingerprint,
  checkBudget,
  checkDecryptTask,
  checkPlan,
  checkTask,
  parsePolicy,
  parsePolicyYaml,
  remainingRho,
  type SitePolicy,
  type TaskContext,
} from '../../site-agent/policy.ts';
import type { LedgerState } from '../../site-agent/ledger.ts';
import { rhoDistributedDiscreteGaussian } from '../../privacy/dp/accountant.ts';
import type { DecryptSpec, MeasureSpec } from '../../proto/task-spec.ts';

const SCHEMA = { age: 8, sex: 2, ethnicity: 5, pneumonia: 2, diabetes: 2, bmi: 10 };
const FP = 'ab'.repeat(32);
const FP_COLONS = 'AB:'.repeat(31) + 'AB';

const BASE_YAML = `
site: hospital-a
coordinator: { url: "coordinator:7443" }
policy:
  epsilon: 1.0
  delta: 1e-9
  federationEpsilon: { fed-1: 0.5, "*": 0.2 }
  monthlyEpsilon: 0.4
  allowedStatistics: [marginal]
  maxMarginalAttributes: 2
  maxMarginalCells: 50
  maxMarginalsPerTask: 4
  minQuorum: 2
  minThreshold: 2
  minSigmaSite: 2
  minNoiseMultiplier: 0.5
  coordinatorFingerprint: "${FP_COLONS}"
`;
const policy = parsePolicyYaml(BASE_YAML);

const emptyState: LedgerState = { totalRho: 0, byFederation: {}, byMonth: {}, charges: 0 };
const NOW = new Date('2025-03-15T12:00:00Z');

function member(i: number) {
  return { memberId: `site-${i}`, point: i, publicKey: 'cGs=', signature: 'c2ln', certificatePem: 'PEM' };
}

function spec(over: Partial<MeasureSpec> = {}): MeasureSpec {
  const s: MeasureSpec = {
    kind: 'measure',
    marginals: [['age', 'sex'], ['pneumonia']],
    sigmaSite2: { num: '2000', den: '1' },
    quorum: 3,
    rho: 0,
    threshold: 2,
    committee: [member(1), member(2), member(3)],
    bfv: { polyModulusDegree: 4096, coeffModulusBits: [36, 36, 37], plainModulus: '65537' },
    maxCellCount: 1_000_000,
    ...over,
  };
  const known = s.marginals.every((m) => m.every((a) => Object.hasOwn(SCHEMA, a)));
  if (over.rho === undefined) s.rho = known ? rhoOf(s) : 0.001;
  return s;
}

/** ρ the site computes: one row per patient, add/remove neighbours. */
function rhoOf(s: MeasureSpec): number {
  const dimension = s.marginals.reduce((d, m) => d + m.reduce((p, a) => p * SCHEMA[a as keyof typeof SCHEMA], 1), 0);
  return rhoDistributedDiscreteGaussian({
    l2Sensitivity: Math.sqrt(s.marginals.length),
    l1Sensitivity: s.marginals.length,
    sigmaSite2: Number(s.sigmaSite2.num) / Number(s.sigmaSite2.den),
    parties: s.quorum,
    dimension,
  });
}

function ctx(s: MeasureSpec, over: Partial<TaskContext> = {}): TaskContext {
  // Lazy: only evaluated once the marginals are known to name schema attributes.
  return {
    federationId: 'fed-1',
    schemaAttributeSizes: SCHEMA,
    ledgerState: emptyState,
    now: NOW,
    computedRho: () => rhoOf(s),
    coordinatorFingerprint: FP,
    ...over,
  };
}

function reason(p: SitePolicy, s: MeasureSpec, c: Partial<TaskContext> = {}): string {
  const r = checkTask(p, s, ctx(s, c));
  if (r.ok) throw new Error('expected a refusal');
  return r.reason;
}

describe('site policy: parsing', () => {
  it('parses the full policy, converting epsilon caps to rho', () => {
    expect(policy.epsilon).toBe(1);
    expect(policy.delta).toBe(1e-9);
    expect(policy.rhoCap).toBeCloseTo(0.0149731, 6);
    expect(policy.federationCaps!.byId['fed-1'].epsilon).toBe(0.5);
    expect(policy.federationCaps!.other!.epsilon).toBe(0.2);
    expect(policy.monthlyCap!.rho).toBeLessThan(policy.rhoCap);
    expect(policy.coordinatorFingerprints).toEqual([FP]);
    expect(policy.maxMarginalCells).toBe(50);
  });

  it('applies defaults for optional fields', () => {
    const p = parsePolicy({ epsilon: 2, delta: 1e-6 });
    expect(p).toMatchObject({
      allowedStatistics: ['marginal'],
      maxMarginalAttributes: 3,
      minQuorum: 2,
      minThreshold: 2,
      federationCaps: null,
      monthlyCap: null,
      coordinatorFingerprints: null,
      minSigmaSite: null,
    });
    expect(p.rhoCap).toBeGreaterThan(0.024356); // ε=1, δ=1e-6 gives ρ=0.0243560; ε=2 allows more
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['missing section', undefined, /policy is missing/],
    ['not a mapping', [1], /policy must be a mapping/],
    ['missing epsilon', { delta: 1e-9 }, /policy.epsilon is required/],
    ['missing delta', { epsilon: 1 }, /policy.delta is required/],
    ['negative epsilon', { epsilon: -1, delta: 1e-9 }, /policy.epsilon must be a positive number, got -1/],
    ['string epsilon', { epsilon: 'one', delta: 1e-9 }, /policy.epsilon must be a positive number, got string "one"/],
    ['delta of 1', { epsilon: 1, delta: 1 }, /policy.delta must be a number strictly between 0 and 1, got 1/],
    ['delta as a string', { epsilon: 1, delta: '1e-9' }, /policy.delta .* got string "1e-9"/],
    [
      'typo in a field',
      { epsilon: 1, delta: 1e-9, minQuorom: 2 },
      /policy.minQuorom is not a known policy field \(did you mean minQuorum\?\)/,
    ],
    [
      'federation cap not a number',
      { epsilon: 1, delta: 1e-9, federationEpsilon: { 'fed-1': 'lots' } },
      /policy.federationEpsilon.fed-1 must be a positive number, got string "lots"/,
    ],
    [
      'federation cap a list',
      { epsilon: 1, delta: 1e-9, federationEpsilon: [0.5] },
      /policy.federationEpsilon must be a number or a mapping/,
    ],
    ['federation cap empty', { epsilon: 1, delta: 1e-9, federationEpsilon: {} }, /policy.federationEpsilon is an empty mapping/],
    ['monthly cap zero', { epsilon: 1, delta: 1e-9, monthlyEpsilon: 0 }, /policy.monthlyEpsilon must be a positive number, got 0/],
    [
      'unknown statistic',
      { epsilon: 1, delta: 1e-9, allowedStatistics: ['marginal', 'raw-rows'] },
      /policy.allowedStatistics\[1\] is string "raw-rows", not a known statistic \(known: marginal, mia-histogram, canary\)/,
    ],
    ['statistics not a list', { epsilon: 1, delta: 1e-9, allowedStatistics: 'marginal' }, /policy.allowedStatistics must be a list/],
    ['fractional quorum', { epsilon: 1, delta: 1e-9, minQuorum: 1.5 }, /policy.minQuorum must be a positive integer, got 1.5/],
    ['zero threshold', { epsilon: 1, delta: 1e-9, minThreshold: 0 }, /policy.minThreshold must be a positive integer, got 0/],
    [
      'marginal attributes',
      { epsilon: 1, delta: 1e-9, maxMarginalAttributes: -2 },
      /policy.maxMarginalAttributes must be a positive integer/,
    ],
    [
      'marginal cells',
      { epsilon: 1, delta: 1e-9, maxMarginalCells: 'big' },
      /policy.maxMarginalCells must be a positive integer, got string "big"/,
    ],
    ['noise sigma', { epsilon: 1, delta: 1e-9, minSigmaSite: -1 }, /policy.minSigmaSite must be a positive number/],
    [
      'noise multiplier',
      { epsilon: 1, delta: 1e-9, minNoiseMultiplier: null },
      /policy.minNoiseMultiplier must be a positive number, got null/,
    ],
    [
      'fingerprint short',
      { epsilon: 1, delta: 1e-9, coordinatorFingerprint: 'abcd' },
      /policy.coordinatorFingerprint must be a SHA-256 certificate fingerprint .* got string "abcd"/,
    ],
    [
      'fingerprint list item',
      { epsilon: 1, delta: 1e-9, coordinatorFingerprint: [FP, 42] },
      /policy.coordinatorFingerprint\[1\] must be a SHA-256/,
    ],
    ['fingerprint empty list', { epsilon: 1, delta: 1e-9, coordinatorFingerprint: [] }, /policy.coordinatorFingerprint is an empty list/],
  ];
  for (const [name, raw, re] of bad) {
    it(`rejects ${name} with a precise error`, () => {
      expect(() => parsePolicy(raw)).toThrow(PolicyError);
      expect(() => parsePolicy(raw)).toThrow(re);
    });
  }

  it('rejects broken YAML and a site.yaml without a policy section', () => {
    expect(() => parsePolicyYaml('policy:\n  epsilon: [1\n')).toThrow(/site.yaml is not valid YAML/);
    expect(() => parsePolicyYaml('site: a\n')).toThrow(/policy is missing/);
    expect(() => parsePolicyYaml('- a\n- b\n')).toThrow(/must be a mapping with a policy: section/);
    expect(() => parsePolicyYaml('policy:\n  epsilon: 1\n  delta: 1e-9\n  minQuorum: two\n')).toThrow(
      /policy.minQuorum must be a positive integer, got string "two"/,
    );
  });
});

describe('site policy: checkTask refusals', () => {
  it('accepts a task inside the policy', () => {
    expect(checkTask(policy, spec(), ctx(spec()))).toEqual({ ok: true });
  });

  it('refuses over the total cap with the remaining budget in the message', () => {
    const p = parsePolicy({ epsilon: 1, delta: 1e-9 });
    const s = spec({ sigmaSite2: { num: '20', den: '1' } });
    const st: LedgerState = { totalRho: 0.0149731 - 0.013, byFederation: {}, byMonth: {}, charges: 3 };
    const r = reason(p, s, { ledgerState: st, computedRho: rhoOf(s) });
    expect(r).toMatch(
      new RegExp(
        `^task would spend rho ${String(Number(rhoOf(s).toPrecision(6))).replace('.', '\\.')} but only 0\\.013 of the site's total 1-epsilon cap \\(rho 0\\.0149731 at delta 1e-9\\) remains`,
      ),
    );
  });

  it('refuses over the per-federation cap (named and "*")', () => {
    const fedCap = policy.federationCaps!.byId['fed-1'].rho;
    const s = spec();
    const st: LedgerState = { totalRho: fedCap, byFederation: { 'fed-1': fedCap }, byMonth: {}, charges: 1 };
    expect(reason(policy, s, { ledgerState: st })).toMatch(
      /^task would spend rho .* but only 0 of the federation "fed-1"'s 0\.5-epsilon cap/,
    );
    const other = policy.federationCaps!.other!.rho;
    const st2: LedgerState = { totalRho: other, byFederation: { 'fed-7': other }, byMonth: {}, charges: 1 };
    expect(reason(policy, s, { ledgerState: st2, federationId: 'fed-7' })).toMatch(/federation "fed-7"'s 0\.2-epsilon cap/);
    // The per-federation spend of fed-7 does not count against fed-1.
    expect(checkTask(policy, s, ctx(s, { ledgerState: st2 }))).toEqual({ ok: true });
  });

  it('refuses a federation not listed when there is no "*" entry', () => {
    const p = parsePolicy({ epsilon: 1, delta: 1e-9, federationEpsilon: { 'fed-1': 0.5 } });
    const s = spec();
    expect(reason(p, s, { federationId: 'fed-2' })).toBe(
      'federation "fed-2" is not listed in this site\'s policy.federationEpsilon (and there is no "*" entry)',
    );
  });

  it('refuses over the calendar-month cap, and accepts again next month', () => {
    const m = policy.monthlyCap!.rho;
    const st: LedgerState = { totalRho: m, byFederation: { 'fed-2': m }, byMonth: { '2025-03': m }, charges: 1 };
    const s = spec();
    expect(reason(policy, s, { ledgerState: st })).toMatch(/of the 2025-03 monthly 0\.4-epsilon cap/);
    expect(checkTask(policy, s, ctx(s, { ledgerState: st, now: new Date('2025-04-01T00:00:00Z') }))).toEqual({ ok: true });
  });

  it('refuses a quorum below the minimum', () => {
    const s = spec({ quorum: 1 });
    expect(reason(policy, s)).toBe("quorum 1 is below this site's minimum 2");
  });

  it('refuses a marginal with too many attributes', () => {
    const s = spec({ marginals: [['age', 'sex', 'pneumonia']] });
    expect(reason(policy, s)).toBe('marginal [age,sex,pneumonia] has 3 attributes, policy allows at most 2');
  });

  it('refuses a marginal with too many cells', () => {
    const s = spec({ marginals: [['age', 'bmi']] });
    expect(reason(policy, s)).toBe('marginal [age,bmi] has 80 cells, policy allows at most 50');
  });

  it('refuses too many marginals in one task', () => {
    const s = spec({ marginals: [['age'], ['sex'], ['bmi'], ['pneumonia'], ['diabetes']] });
    expect(reason(policy, s)).toBe('task asks for 5 marginals, policy allows at most 4 per task');
  });

  it('refuses an unknown attribute', () => {
    const s = spec({ marginals: [['age'], ['x']] });
    expect(reason(policy, s)).toBe("unknown attribute x in marginal [x]: not in the federation's public schema");
    // Not fooled by Object.prototype names.
    expect(reason(policy, spec({ marginals: [['constructor']] }))).toMatch(/unknown attribute constructor/);
  });

  it('refuses a statistic the site does not allow', () => {
    const p = parsePolicy({ epsilon: 1, delta: 1e-9, allowedStatistics: [] });
    expect(reason(p, spec())).toBe('statistic "marginal" is not allowed by this site\'s policy (allowed: none)');
  });

  it('refuses a marginal that reads a modality the site does not share', () => {
    const kinds = { age: 'age', sex: 'sex', ethnicity: 'sex', pneumonia: 'condition', diabetes: 'condition', bmi: 'snp' };
    const p = parsePolicy({ epsilon: 1, delta: 1e-9, minQuorum: 2, allowedModalities: ['fhir'] });
    expect(checkTask(p, spec(), ctx(spec(), { schemaAttributeKinds: kinds })).ok).toBe(true);
    const genome = spec({ marginals: [['age', 'bmi']] });
    expect(reason(p, genome, { schemaAttributeKinds: kinds })).toBe(
      "marginal [age,bmi] reads bmi (genome data); this site's policy allows only fhir data",
    );
    // Without attribute kinds the site cannot tell: a restricted policy refuses rather than guess.
    expect(reason(p, spec())).toMatch(/kind unknown/);
    expect(() => parsePolicy({ epsilon: 1, delta: 1e-9, allowedModalities: ['x-ray'] })).toThrow(/not a known modality/);
    expect(() => parsePolicy({ epsilon: 1, delta: 1e-9, allowedModalities: 'fhir' })).toThrow(/must be a list/);
    expect(parsePolicy({ epsilon: 1, delta: 1e-9 }).allowedModalities).toEqual(['fhir', 'image', 'genome', 'notes']);
  });

  it('refuses a committee threshold below 2 unless the federation is a single site', () => {
    const s = spec({ threshold: 1 });
    expect(reason(policy, s)).toMatch(/^committee threshold 1 is below this site's minimum 2/);
    const strict = parsePolicy({ epsilon: 1, delta: 1e-9, minThreshold: 3 });
    expect(reason(strict, spec({ threshold: 2 }))).toMatch(/^committee threshold 2 is below this site's minimum 3/);
    // Single site: committee of one, quorum one, and the site itself accepts quorum 1.
    const solo = parsePolicy({ epsilon: 1, delta: 1e-9, minQuorum: 1 });
    const one = spec({ threshold: 1, quorum: 1, committee: [member(1)] });
    expect(checkTask(solo, one, ctx(one))).toEqual({ ok: true });
    // ...but not for a single-site federation when the site demands a quorum of 2.
    expect(reason(policy, one)).toBe("quorum 1 is below this site's minimum 2");
    // A committee of one in a multi-site federation is refused.
    const lone = spec({ threshold: 1, committee: [member(1)] });
    expect(reason(solo, lone)).toMatch(/^committee threshold 1 is below this site's minimum 2/);
  });

  it('refuses a committee threshold that is not a majority of the committee', () => {
    const four = [member(1), member(2), member(3), member(4)];
    expect(reason(policy, spec({ threshold: 2, committee: four }))).toMatch(/^committee threshold 2 is not a majority of the 4 members/);
    expect(checkTask(policy, spec({ threshold: 3, committee: four }), ctx(spec({ threshold: 3, committee: four })))).toEqual({ ok: true });
    const two = [member(1), member(2)];
    expect(reason(parsePolicy({ epsilon: 1, delta: 1e-9, minThreshold: 1 }), spec({ threshold: 1, committee: two }))).toMatch(
      /below this site's minimum 2|not a majority/,
    );
  });

  it('refuses noise below the minimum sigma per site', () => {
    const s = spec({ sigmaSite2: { num: '15', den: '4' } }); // σ = 1.936 < 2
    expect(reason(policy, s)).toBe(
      "noise too small: this site's share has sigma 1.93649 per cell (sigma² 15/4), policy requires at least 2",
    );
    // Exactly at the minimum is fine (exact rational comparison).
    const edge = spec({ sigmaSite2: { num: '16', den: '4' }, marginals: [['age']], quorum: 3 });
    const p = parsePolicy({ epsilon: 100, delta: 1e-9, minSigmaSite: 2 });
    expect(checkTask(p, edge, ctx(edge))).toEqual({ ok: true });
  });

  it('refuses noise below the minimum noise multiplier', () => {
    const p = parsePolicy({ epsilon: 100, delta: 1e-9, minNoiseMultiplier: 3 });
    const s = spec({ sigmaSite2: { num: '4', den: '1' }, quorum: 2 }); // σ_total = √8 = 2.83, Δ2 = √2
    expect(reason(p, s)).toBe(
      "noise too small: noise multiplier 2 (sigma 2.82843 from a quorum of 2, L2 sensitivity 1.41421) is below this site's minimum 3",
    );
    expect(reason(p, s, { l2Sensitivity: 2 })).toMatch(/noise multiplier 1\.41421/);
  });

  it('refuses when the coordinator states a different rho than the site computes', () => {
    const s = spec();
    const claimed = spec({ rho: rhoOf(s) / 2 });
    expect(reason(policy, claimed)).toMatch(/^task states rho .* but this site computes rho .* for the requested noise/);
    expect(reason(policy, s, { computedRho: Number.NaN })).toMatch(/could not compute a valid rho/);
    expect(
      reason(policy, s, {
        computedRho: () => {
          throw new RangeError('sigmaSite2 must be >= 1/4');
        },
      }),
    ).toBe('this site could not compute rho for the task: sigmaSite2 must be >= 1/4');
    // A plain number works as well as a function.
    expect(checkTask(policy, s, ctx(s, { computedRho: rhoOf(s) }))).toEqual({ ok: true });
  });

  it('refuses a coordinator whose certificate fingerprint does not match, or is unknown', () => {
    const s = spec();
    expect(reason(policy, s, { coordinatorFingerprint: 'cd'.repeat(32) })).toBe(
      `coordinator certificate fingerprint ${'cd'.repeat(32)} does not match the fingerprint this site trusts (${'ab'.repeat(8)}…)`,
    );
    expect(reason(policy, s, { coordinatorFingerprint: undefined })).toMatch(/^coordinator certificate fingerprint is unknown/);
    expect(reason(policy, s, { coordinatorFingerprint: 'garbage' })).toMatch(/fingerprint "garbage" does not match/);
    // Colon-separated upper case from the TLS layer matches.
    expect(checkTask(policy, s, ctx(s, { coordinatorFingerprint: FP_COLONS }))).toEqual({ ok: true });
  });

  it('checks the coordinator first, before anything about the task', () => {
    const s = spec({ quorum: 1, marginals: [['x']] });
    expect(reason(policy, s, { coordinatorFingerprint: 'cd'.repeat(32) })).toMatch(/^coordinator certificate fingerprint/);
  });

  it('refuses a decryption of fewer contributions than the minimum quorum', () => {
    const d: DecryptSpec = { kind: 'decrypt', measureRoundId: 'r1', point: 1, length: 10, contributors: 1, bfv: spec().bfv };
    expect(checkDecryptTask(policy, d, { federationId: 'fed-1', coordinatorFingerprint: FP })).toEqual({
      ok: false,
      reason: "decryption of a sum of 1 contribution(s) is below this site's minimum quorum 2",
    });
    expect(checkDecryptTask(policy, { ...d, contributors: 3 }, { federationId: 'fed-1', coordinatorFingerprint: FP })).toEqual({
      ok: true,
    });
    expect(checkDecryptTask(policy, { ...d, contributors: 3 }, { federationId: 'fed-1' }).ok).toBe(false);
  });

  it('budgetGuard and checkBudget agree, and a charge exactly filling the cap is accepted', () => {
    const p = parsePolicy({ epsilon: 1, delta: 1e-9 });
    const st: LedgerState = { totalRho: 0, byFederation: {}, byMonth: {}, charges: 0 };
    expect(checkBudget(p, st, { federationId: 'f', rho: p.rhoCap, now: NOW })).toEqual({ ok: true });
    expect(budgetGuard(p)(st, { taskId: 't', federationId: 'f', rho: p.rhoCap * 1.000001, now: NOW }).ok).toBe(false);
    expect(checkBudget(p, st, { federationId: 'f', rho: -1, now: NOW }).ok).toBe(false);
  });
});

describe('certificate fingerprints', () => {
  it('computes the SHA-256 of the DER, matching openssl', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedsynth-fp-'));
    try {
      const key = path.join(dir, 'k.pem');
      const crt = path.join(dir, 'c.pem');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          key,
          '-out',
          crt,
          '-days',
          '1',
          '-subj',
          '/CN=coordinator',
        ],
        { stdio: 'ignore' },
      );
      const pem = fs.readFileSync(crt, 'utf8');
      const expected = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' })
        .split('=')[1]
        .trim();
      expect(certificateFingerprint(pem)).toBe(expected.replace(/:/g, '').toLowerCase());
      const p = parsePolicy({ epsilon: 1, delta: 1e-9, coordinatorFingerprint: `sha256:${expected}` });
      const s = spec();
      expect(checkTask(p, s, ctx(s, { coordinatorFingerprint: certificateFingerprint(pem) }))).toEqual({ ok: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a whole plan before any budget is spent (the preflight)', () => {
  const p = parsePolicy({
    epsilon: 1,
    delta: 1e-9,
    federationEpsilon: { 'fed-1': 0.5 },
    monthlyEpsilon: 0.4,
    minQuorum: 2,
    minThreshold: 2,
  });
  const plan = { rhoTotal: 0.001, quorum: 2, threshold: 2, committeeSize: 3 };
  const now = new Date('2026-12-07T12:00:00Z');
  const ctx = (ledgerState: LedgerState, federationId = 'fed-1') => ({ federationId, ledgerState, now });

  it('remainingRho is the least left under the total, federation and monthly caps', () => {
    expect(remainingRho(p, emptyState, 'fed-1', now)).toBeCloseTo(p.monthlyCap!.rho, 15);
    const st: LedgerState = { totalRho: 0.002, byFederation: { 'fed-1': 0.002 }, byMonth: { '2026-12': 0.002 }, charges: 1 };
    expect(remainingRho(p, st, 'fed-1', now)).toBeCloseTo(
      Math.min(p.rhoCap, p.federationCaps!.byId['fed-1'].rho, p.monthlyCap!.rho) - 0.002,
      15,
    );
    expect(remainingRho(p, emptyState, 'fed-2', now)).toBe(0);
  });

  it('accepts a plan within every cap and refuses one that is not, with the cap named', () => {
    expect(checkPlan(p, plan, ctx(emptyState))).toEqual({ ok: true });
    const big = { ...plan, rhoTotal: p.rhoCap * 2 };
    expect(checkPlan(p, big, ctx(emptyState))).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^the fit's plan needs up to rho [\d.e-]+ from this site: would spend rho [\d.e-]+ but only [\d.e-]+ of the site's total 1-epsilon cap/,
      ),
    });
    expect(checkPlan(p, { ...plan, quorum: 1 }, ctx(emptyState))).toEqual({ ok: false, reason: "quorum 1 is below this site's minimum 2" });
    expect(checkPlan(p, { ...plan, threshold: 1 }, ctx(emptyState))).toEqual({
      ok: false,
      reason: "committee threshold 1 is below this site's minimum 2",
    });
    expect(checkPlan(p, plan, ctx(emptyState, 'fed-2')).ok).toBe(false);
  });
});
