// Reconciliation of the coordinator's log with the sites' logs, on small hand-built chains:
// each kind of finding in isolation, and the spend recomputed from the mechanism, not the log.
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { appendEntry, type AuditEntry, type AuditEvent, type MeasurementReleasedEvent } from '../../privacy/audit-log/chain.ts';
import { reconcileAuditLogs, recomputeReleaseRho } from '../../privacy/audit-log/reconcile.ts';
import { epsilonFromRho, rhoDistributedDiscreteGaussian } from '../../privacy/dp/accountant.ts';

const key = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const K = { coordinator: key(), a: key(), b: key() };
const pub = Object.fromEntries(Object.entries(K).map(([p, k]) => [p, k.publicKey]));
const F = 'fed';
function chain(party: keyof typeof K, events: AuditEvent[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  events.forEach((e, i) =>
    out.push(appendEntry(out[out.length - 1] ?? null, e, party, K[party].privateKey, new Date(Date.UTC(2025, 0, 1, 0, 0, i)))),
  );
  return out;
}
const sigma2 = { num: '400', den: '1' };
const rho = rhoDistributedDiscreteGaussian({
  l2Sensitivity: Math.sqrt(2),
  l1Sensitivity: 2,
  sigmaSite2: { num: 400n, den: 1n },
  parties: 2,
  dimension: 12,
});
const release = (over: Partial<MeasurementReleasedEvent> = {}): AuditEvent => ({
  type: 'measurement-released',
  federationId: F,
  roundId: 'r1',
  mechanism: 'distributed-discrete-gaussian',
  marginals: [['x'], ['y']],
  l2Sensitivity: Math.sqrt(2),
  l1Sensitivity: 2,
  dimension: 12,
  sigmaSite2: sigma2,
  parties: ['a', 'b'],
  quorum: 2,
  rho,
  ...over,
});
const issued = (site: string): AuditEvent => ({
  type: 'task-issued',
  federationId: F,
  roundId: 'r1',
  taskId: `t-${site}`,
  site,
  kind: 'measure',
  specSha256: 'c'.repeat(64),
});
const charge = (site: string, r = rho, taskId = `t-${site}`): AuditEvent => ({
  type: 'charge',
  federationId: F,
  roundId: 'r1',
  taskId,
  site,
  rho: r,
  mechanism: 'distributed-discrete-gaussian',
});
const answered = (site: string): AuditEvent => ({
  type: 'task-answered',
  federationId: F,
  roundId: 'r1',
  taskId: `t-${site}`,
  site,
  answerSha256: 'd'.repeat(64),
});
const coordOk = () => [
  issued('a'),
  issued('b'),
  release(),
  charge('a'),
  charge('b'),
  { type: 'model-fitted', federationId: F, modelId: 'm', rounds: ['r1'], rhoBySite: { a: rho, b: rho } } as AuditEvent,
];
const run = (coord: AuditEvent[], a: AuditEvent[] = [charge('a'), answered('a')], b: AuditEvent[] = [charge('b'), answered('b')]) =>
  reconcileAuditLogs(
    [
      { name: 'coord', entries: chain('coordinator', coord) },
      { name: 'a', entries: chain('a', a) },
      { name: 'b', entries: chain('b', b) },
    ],
    pub,
    { delta: 1e-9 },
  );
const kinds = (r: ReturnType<typeof run>) => r.findings.map((f) => f.kind).sort();

describe('reconcileAuditLogs', () => {
  it('accepts consistent logs and recomputes spend from the mechanism', () => {
    const r = run(coordOk());
    expect(r.findings).toEqual([]);
    expect(r.parties.a.rho).toBe(rho);
    expect(r.parties.a.epsilon).toBe(epsilonFromRho(rho, 1e-9));
    expect(r.parties.b.ownLog).toMatchObject({ rho, charges: 1, refusals: 0 });
    expect(recomputeReleaseRho(release() as MeasurementReleasedEvent)).toBe(rho);
  });

  it('a release without a charge', () => {
    const c = coordOk().filter((e) => !(e.type === 'charge' && e.site === 'b'));
    // b's own log holds the charge the coordinator's lacks: b paid for a result it is not charged for.
    expect(kinds(run(c))).toEqual(['model-spend-mismatch', 'release-without-charge', 'unreleased-site-charge']);
  });

  it('a recorded ρ that its mechanism does not give, and sensitivities that are not the enforced bound', () => {
    const c = coordOk().map((e) => (e.type === 'measurement-released' ? release({ rho: rho / 2 }) : e));
    expect(kinds(run(c))).toContain('rho-mismatch');
    const s = coordOk().map((e) =>
      e.type === 'measurement-released'
        ? release({
            l2Sensitivity: 1,
            rho: rhoDistributedDiscreteGaussian({
              l2Sensitivity: 1,
              l1Sensitivity: 2,
              sigmaSite2: { num: 400n, den: 1n },
              parties: 2,
              dimension: 12,
            }),
          })
        : e,
    );
    expect(kinds(run(s))).toContain('sensitivity-mismatch');
  });

  it('a charge the site never made, and a site that charged itself a different ρ', () => {
    expect(kinds(run(coordOk(), [answered('a')]))).toEqual(['unagreed-charge']);
    expect(kinds(run(coordOk(), [charge('a', rho * 1.5), answered('a')]))).toEqual(['rho-mismatch']);
  });

  it('a refusal recorded on one side only', () => {
    const refused: AuditEvent = { type: 'task-refused', federationId: F, roundId: 'r2', taskId: 'x', site: 'a', reason: 'noise too small' };
    expect(kinds(run(coordOk(), [charge('a'), answered('a'), refused]))).toEqual(['refusal-not-recorded']);
    expect(kinds(run([...coordOk(), refused]))).toEqual(['refusal-not-recorded']);
    expect(run([...coordOk(), refused], [charge('a'), answered('a'), refused]).findings).toEqual([]);
  });

  it('entries signed with a key not given for that party, or a log mixing parties', () => {
    const forged = chain('b', [charge('a')]).map((e) => ({ ...e, party: 'a' }));
    const r = reconcileAuditLogs(
      [
        { name: 'coord', entries: chain('coordinator', coordOk()) },
        { name: 'a', entries: forged },
      ],
      pub,
      { delta: 1e-9 },
    );
    expect(kinds(r)).toContain('bad-signature');
    const r2 = reconcileAuditLogs([{ name: 'a', entries: chain('a', [charge('a')]) }], pub, { delta: 1e-9 });
    expect(kinds(r2)).toEqual(['no-coordinator-log']);
  });

  it("a site's entries of another fit (another study under fedsynth serve) are a warning, not a finding", () => {
    const otherFit = (e: AuditEvent): AuditEvent =>
      ({ ...e, taskId: `other-${(e as { taskId: string }).taskId}`, fitId: `${F}/study-2` }) as AuditEvent;
    const refusedElsewhere: AuditEvent = {
      type: 'task-refused',
      federationId: F,
      fitId: `${F}/study-2`,
      roundId: 'r9',
      taskId: 'x',
      site: 'a',
      reason: 'cap',
    };
    const r = run(coordOk(), [charge('a'), answered('a'), otherFit(charge('a')), refusedElsewhere]);
    expect(r.findings).toEqual([]);
    expect(r.warnings.map((w) => w.kind)).toEqual(['other-fit']);
    expect(r.warnings[0].message).toMatch(/2 charge\/refusal entries of fed\/study-2/);
    // The same entries under this coordinator's fit are reconciled, and fail.
    const r2 = run(coordOk(), [charge('a'), answered('a'), charge('a', rho, 'never-issued')]);
    expect(kinds(r2)).toContain('unrecorded-site-charge');
  });
});

describe('membership-inference histograms: each released alone, charged at single-party ρ', () => {
  const histRho = rhoDistributedDiscreteGaussian({
    l2Sensitivity: 1,
    l1Sensitivity: 1,
    sigmaSite2: { num: 4n, den: 1n },
    parties: 1,
    dimension: 16,
  });
  const miaRelease = (over: Partial<MeasurementReleasedEvent> = {}): AuditEvent => ({
    type: 'measurement-released',
    federationId: F,
    roundId: 'mia-dcr',
    mechanism: 'score-histogram-discrete-gaussian',
    l2Sensitivity: 1,
    l1Sensitivity: 1,
    dimension: 16,
    sigmaSite2: { num: '4', den: '1' },
    parties: ['a', 'b'],
    quorum: 1,
    rho: histRho,
    ...over,
  });
  const miaIssued = (site: string): AuditEvent =>
    ({ ...(issued(site) as object), roundId: 'mia-dcr', taskId: `m-${site}`, kind: 'mia-histogram' }) as AuditEvent;
  const miaCharge = (site: string, r = histRho): AuditEvent =>
    ({
      ...(charge(site, r, `m-${site}`) as object),
      roundId: 'mia-dcr',
      mechanism: 'score-histogram-discrete-gaussian',
    }) as AuditEvent;
  const withMia = (rel: AuditEvent, r = histRho) => [
    ...coordOk(),
    miaIssued('a'),
    miaIssued('b'),
    rel,
    miaCharge('a', r),
    miaCharge('b', r),
  ];
  const sites = (r = histRho) =>
    [
      [charge('a'), answered('a'), miaCharge('a', r)],
      [charge('b'), answered('b'), miaCharge('b', r)],
    ] as const;

  it('reconciles both ways, ρ = 1/(2σ²), and the model spend leaves the audit out', () => {
    const [a, b] = sites();
    const r = run(withMia(miaRelease()), [...a], [...b]);
    expect(r.findings).toEqual([]);
    expect(histRho).toBeCloseTo(1 / 8, 12);
    expect(r.parties.a.rho).toBeCloseTo(rho + histRho, 12);
  });

  it('a release recorded as protected by both sites’ noise (quorum 2), or with another sensitivity, is a finding', () => {
    const q2 = rhoDistributedDiscreteGaussian({
      l2Sensitivity: 1,
      l1Sensitivity: 1,
      sigmaSite2: { num: 4n, den: 1n },
      parties: 2,
      dimension: 16,
    });
    const [a, b] = sites(q2);
    expect(kinds(run(withMia(miaRelease({ quorum: 2, rho: q2 }), q2), [...a], [...b]))).toEqual(['sensitivity-mismatch']);
    const [a1, b1] = sites();
    expect(kinds(run(withMia(miaRelease({ l2Sensitivity: 0.5 })), [...a1], [...b1]))).toContain('sensitivity-mismatch');
  });
});
