// The coordinator's aggregator for the one fit loop (federation/run-fit.ts): each round is a
// database-driven state machine — tasks issued to every registered site, encrypted contributions
// summed homomorphically, the committee's partial decryptions interpolated, then charges and
// measurements released in one transaction — so a restarted coordinator resumes the round where
// it stopped. Round ids come from the plan position; nothing is issued, noised or charged twice.
import { randomUUID } from 'node:crypto';
import type { AggregateInput, Measurement as StoredMeasurement, MeasurementInput, Store, Round, Submission } from './store/index.ts';
import { taskIssuedEvent } from './audit.ts';
import type { TaskBoard } from './task-board.ts';
import type { CoordinatorConfig } from './config.ts';
import { combine } from '../privacy/crypto/secure-aggregation.ts';
import { marginalsSensitivity, mechanismRecord, releasedSigma, roundRho } from '../privacy/dp/mechanisms.ts';
import { rational, type Rational } from '../privacy/dp/rational.ts';
import type { Domain } from '../model/domain.ts';
import type { Measurement } from '../model/measurement.ts';
import type { RoundSpec } from '../model/plans/plan.ts';
import { roundDomain, toMeasurements, type Aggregator, type PlannedRound, type ReleasedRound } from '../federation/run-fit.ts';
import { valueMapProblem } from '../model/compress.ts';
import {
  decodeTaskSpec,
  DEFAULT_MAX_CELL_COUNT,
  type BfvParams,
  type CommitteeMemberSpec,
  type MeasureSpec,
  type DecryptSpec,
} from '../proto/task-spec.ts';
import { ContributionCodec, DecryptionInputCodec } from '../proto/wire.ts';
import { crashPoint } from './fault.ts';

export class FitError extends Error {}

/** What a measure round row and its tasks store: the wire spec and the plan's round. */
export interface StoredMeasureRound {
  measure: MeasureSpec;
  plan: RoundSpec;
}

/** A stored measure round read back from the database, checked rather than trusted as typed. */
export function decodeStoredMeasureRound(raw: unknown): StoredMeasureRound {
  const o = raw as { measure?: unknown; plan?: { name?: unknown; marginals?: unknown; rho?: unknown } } | null;
  const plan = o?.plan;
  const marginalsOk =
    Array.isArray(plan?.marginals) && plan.marginals.every((m) => Array.isArray(m) && m.every((a) => typeof a === 'string'));
  if (!o || typeof plan?.name !== 'string' || !marginalsOk || typeof plan.rho !== 'number' || !(plan.rho > 0))
    throw new FitError('stored measure round is malformed (expected { measure, plan: { name, marginals, rho } })');
  const measure = decodeTaskSpec('measure', o.measure);
  // The plan's value map is the one the sites were sent (openMeasureRound writes both).
  return {
    measure,
    plan: {
      name: plan.name,
      marginals: plan.marginals as string[][],
      rho: plan.rho,
      ...(measure.valueMap ? { valueMap: measure.valueMap } : {}),
    },
  };
}

/** A stored released measurement as the model layer reads it (a band query keeps its coarsening). */
export function modelMeasurement(m: Pick<StoredMeasurement, 'attrs' | 'values' | 'sigmaTotal' | 'coarsen'>): Measurement {
  return { attrs: m.attrs, values: Float64Array.from(m.values), sigma: m.sigmaTotal, ...(m.coarsen ? { coarsen: m.coarsen } : {}) };
}

/** A released measurement as the store keeps it: plain arrays, a band query with its coarsening. */
function storedMeasurementInput(m: Measurement, sigmaTotal: number): MeasurementInput {
  const coarsen = m.coarsen ? Object.fromEntries(Object.entries(m.coarsen).map(([a, c]) => [a, [...c]])) : undefined;
  return { attrs: m.attrs, values: Array.from(m.values), sigmaTotal, ...(coarsen ? { coarsen } : {}) };
}

/** The plan's value map as plain arrays, refused when it does not fit the schema's domain. */
function checkedValueMap(domain: Domain, map: NonNullable<RoundSpec['valueMap']>, roundId: string): Record<string, number[]> {
  const problem = valueMapProblem(domain, map);
  if (problem) throw new FitError(`round ${roundId}: ${problem}`);
  return Object.fromEntries(Object.entries(map).map(([a, c]) => [a, [...c]]));
}

/** Round ids are derived from the plan position so a restart finds the same rows. */
export const measureRoundId = (index: number, name: string) => `m${index + 1}-${name}`;
const decryptRoundId = (measureId: string) => `${measureId}.decrypt`;

const sigmaOf = (spec: MeasureSpec): Rational => rational(BigInt(spec.sigmaSite2.num), BigInt(spec.sigmaSite2.den));

/** Noise bound in released-σ units: P(|N(0, σ²)| > 12σ) ≈ 3.6·10⁻³³ per cell, so honest sums never trip it. */
export const RANGE_SIGMAS = 12;

/**
 * Why a decrypted sum cannot be an honest release, or null: every cell must lie in
 * [−B, n_max + B] with n_max = contributors · maxCellCount (the bound every site clipped its cells
 * to) and B = RANGE_SIGMAS · σ_total.
 */
export function releaseRangeProblem(
  cells: ArrayLike<bigint>,
  contributors: number,
  sigmaTotal: number,
  maxCellCount: number = DEFAULT_MAX_CELL_COUNT,
): string | null {
  const noiseBound = BigInt(Math.ceil(RANGE_SIGMAS * sigmaTotal));
  const low = -noiseBound;
  const high = BigInt(contributors) * BigInt(maxCellCount) + noiseBound;
  for (let i = 0; i < cells.length; i++) {
    const v = cells[i];
    if (v < low || v > high)
      return `cell ${i} is ${v}, outside [${low}, ${high}] (${contributors} contributors, each cell clipped to ${maxCellCount}, noise bound ${RANGE_SIGMAS}σ = ${noiseBound})`;
  }
  return null;
}

export interface HeAggregatorContext {
  store: Store;
  board: TaskBoard;
  cfg: CoordinatorConfig;
  domain: Domain;
  bfvParams: () => BfvParams;
  committee: CommitteeMemberSpec[];
  registeredSites: () => Promise<string[]>;
  waitUntil: (what: string, deadline: number, check: () => Promise<boolean>) => Promise<boolean>;
  progress: (phase: string, message: string) => void;
}

export class ThresholdHeAggregator implements Aggregator {
  readonly parties: number;

  constructor(private readonly ctx: HeAggregatorContext) {
    this.parties = ctx.cfg.rounds.quorum;
  }

  private get fed(): string {
    return this.ctx.cfg.federationId;
  }

  /** Cells of a round's answer: over the domain its value map counts on (band queries: fewer). */
  cells(marginals: readonly (readonly string[])[], valueMap?: MeasureSpec['valueMap']): number {
    const domain = roundDomain(this.ctx.domain, { valueMap });
    return marginals.reduce((s, m) => s + domain.cells(m), 0);
  }

  async measure(planned: PlannedRound): Promise<ReleasedRound> {
    const { store } = this.ctx;
    const fed = this.fed;
    const roundId = measureRoundId(planned.index, planned.spec.name);
    let round = await store.getRound(fed, roundId);
    if (!round) round = await this.openMeasureRound(roundId, planned);
    const stored = decodeStoredMeasureRound(round.spec);
    const spec = stored.measure;
    this.checkResumed(roundId, stored, planned);
    if (round.state === 'open' && (await store.listTasks(fed, roundId)).length === 0)
      round = await this.reissueMeasureTasks(roundId, stored);
    const label = `round ${planned.index + 1} (${planned.spec.name}: ${spec.marginals.length} marginals, ${this.cells(spec.marginals, spec.valueMap)} cells)`;

    if (round.state === 'open') {
      this.ctx.progress('measure', `${label}: waiting for sites`);
      await this.ctx.waitUntil(`${roundId} contributions`, round.deadlineAt.getTime(), async () => {
        const tasks = await store.taskStates(fed, roundId);
        return tasks.every((t) => t.state === 'done' || t.state === 'refused');
      });
      // Close first so that no submission can land between counting and aggregating.
      round = await store.setRoundState(fed, roundId, 'closed');
      crashPoint('measure.closed');
    }
    if (round.state === 'closed') {
      await store.expireTasks(fed, roundId);
      const subs = await store.listSubmissions(fed, roundId);
      if (subs.length < spec.quorum) {
        const reason = `only ${subs.length} of the required ${spec.quorum} sites contributed before the deadline`;
        await store.setRoundState(fed, roundId, 'failed', { failureReason: reason });
        throw await this.failed(roundId, label, reason);
      }
      this.ctx.progress('aggregate', `${label}: summing ${subs.length} encrypted contributions`);
      await this.aggregateAndRequestDecryption(roundId, spec, subs);
      crashPoint('decrypt.opened');
      round = await store.setRoundState(fed, roundId, 'decrypting');
    }
    if (round.state === 'decrypting') {
      await this.decryptAndRelease(roundId, spec, label);
      round = (await store.getRound(fed, roundId))!;
    }
    if (round.state === 'failed') throw await this.failed(roundId, label, round.failureReason ?? 'failed');

    const rows = await store.listMeasurements(fed, roundId);
    const charges = await store.chargesByRound(fed, roundId);
    const measurements = rows.sort((a, b) => a.seq - b.seq).map(modelMeasurement);
    return { roundId, measurements, contributors: charges.map((c) => c.siteId) };
  }

  /**
   * The error of a failed measure round, naming the sites that uploaded to it: each charged its
   * own ledger before uploading, so they paid for a result that is never released.
   */
  private async failed(roundId: string, label: string, reason: string): Promise<FitError> {
    const charged = (await this.ctx.store.listSubmissions(this.fed, roundId)).map((s) => s.siteId).sort();
    const paid = charged.length
      ? `; ${charged.join(', ')} charged ${charged.length > 1 ? 'their' : 'its'} own ledger for this round, which is never released`
      : '';
    return new FitError(`${label} failed: ${reason}${paid}`);
  }

  /** A round opened before a restart must be the round the plan asks for now, with the same noise. */
  private checkResumed(roundId: string, stored: StoredMeasureRound, planned: PlannedRound): void {
    const same =
      JSON.stringify(stored.plan.marginals) === JSON.stringify(planned.spec.marginals) &&
      JSON.stringify(stored.plan.valueMap ?? null) === JSON.stringify(planned.spec.valueMap ?? null) &&
      stored.measure.sigmaSite2.num === planned.noise.sigmaSite2.num.toString() &&
      stored.measure.sigmaSite2.den === planned.noise.sigmaSite2.den.toString() &&
      stored.measure.rho === planned.noise.rho;
    if (!same)
      throw new FitError(
        `round ${roundId} in the database measures other marginals or noise than the plan now asks for: the fit's configuration changed since it was opened`,
      );
  }

  private async openMeasureRound(roundId: string, { spec: plan, noise }: PlannedRound): Promise<Round> {
    const { store, cfg } = this.ctx;
    // A round with a value map (declared band queries): the sites recode before counting
    // (site-agent/tasks.ts), the sizes, the resume check and the released measurements carry it.
    const valueMap = plan.valueMap ? checkedValueMap(this.ctx.domain, plan.valueMap, roundId) : undefined;
    const fed = this.fed;
    const measure: MeasureSpec = {
      kind: 'measure',
      marginals: plan.marginals,
      sigmaSite2: { num: noise.sigmaSite2.num.toString(), den: noise.sigmaSite2.den.toString() },
      quorum: noise.parties,
      rho: noise.rho,
      threshold: cfg.committee.threshold,
      committee: this.ctx.committee,
      bfv: this.ctx.bfvParams(),
      maxCellCount: cfg.rounds.maxCellCount ?? DEFAULT_MAX_CELL_COUNT,
      ...(valueMap ? { valueMap } : {}),
      // An audited fit: every site keeps this fraction of its patients out of every round.
      ...(cfg.fit.audit ? { holdoutFraction: cfg.fit.audit.holdoutFraction } : {}),
    };
    const head = await store.auditHead(fed);
    if (head) measure.coordinatorHead = head;
    const sites = await this.ctx.registeredSites();
    const tasks = this.measureTasks(roundId, { measure, plan }, sites);
    // The round and its tasks commit together: a crash between them would leave a round no site
    // can answer, which every restart would wait out and fail.
    const { round } = await store.openRound(
      {
        federationId: fed,
        roundId,
        kind: 'measure',
        spec: { measure, plan } satisfies StoredMeasureRound,
        quorum: noise.parties,
        deadlineAt: new Date(Date.now() + cfg.rounds.deadlineMs),
      },
      tasks,
      { auditEvents: tasks.map(taskIssuedEvent), beforeCommit: () => crashPoint('measure.open-tx') },
    );
    crashPoint('measure.opened');
    for (const s of sites) this.ctx.board.notify(s);
    return round;
  }

  private measureTasks(roundId: string, stored: StoredMeasureRound, sites: readonly string[]) {
    // A canary audit: each site's task, and only its task, carries the canaries included there.
    const canaries = this.ctx.cfg.fit.audit?.canaries ?? {};
    return sites.map((siteId) => ({
      federationId: this.fed,
      taskId: randomUUID(),
      roundId,
      siteId,
      kind: 'measure' as const,
      spec: canaries[siteId]?.length ? { ...stored, measure: { ...stored.measure, canaryRows: canaries[siteId] } } : stored,
    }));
  }

  /**
   * An open measure round without a single task, as a coordinator that crashed between writing
   * the round and its tasks left it (before both went into one transaction): its tasks are
   * issued now, and its deadline moved so that they can be answered. Nobody was charged for it.
   */
  private async reissueMeasureTasks(roundId: string, stored: StoredMeasureRound): Promise<Round> {
    const { store } = this.ctx;
    const sites = await this.ctx.registeredSites();
    const tasks = this.measureTasks(roundId, stored, sites);
    await store.createTasks(tasks);
    for (const t of tasks) await store.appendAudit(this.fed, taskIssuedEvent(t));
    this.ctx.progress('resume', `${roundId}: the round had no tasks (a crash before they were written); issued them now`);
    for (const s of sites) this.ctx.board.notify(s);
    return store.extendRoundDeadline(this.fed, roundId, new Date(Date.now() + this.ctx.cfg.rounds.deadlineMs));
  }

  private async aggregateAndRequestDecryption(roundId: string, spec: MeasureSpec, subs: Submission[]): Promise<void> {
    const { store, board } = this.ctx;
    const fed = this.fed;
    const decryptId = decryptRoundId(roundId);
    const existing = await store.getRound(fed, decryptId);
    // Restarted after this step: nothing to redo, unless a crash before the decrypt round and its
    // tasks shared one transaction left the round without tasks (then they are recreated below).
    if (existing && (existing.state !== 'open' || (await store.listTasks(fed, decryptId)).length > 0)) return;
    const length = this.cells(spec.marginals, spec.valueMap);
    // Members sum the signed shares themselves (privacy/crypto/verifiable-sum.ts): the coordinator
    // forwards each site's share addressed to a member, and never a sum of its own making.
    const decoded = subs.map((s) => ContributionCodec.decode(s.body));
    const contributors = subs.map((s) => s.siteId).sort();
    const aggregates: AggregateInput[] = [];
    const tasks = [];
    for (const member of spec.committee) {
      const share = { memberId: member.memberId, point: member.point };
      const payload = DecryptionInputCodec.encode({
        member_id: share.memberId,
        point: share.point,
        length,
        contributors: contributors.length,
        contributions: decoded.map((c) => {
          const mine = c.shares.find((sh) => sh.member_id === member.memberId)!;
          return {
            site_id: c.site_id,
            certificate_pem: c.certificate_pem,
            quorum: c.quorum,
            ciphertexts: mine.ciphertexts,
            signature: mine.signature,
          };
        }),
      });
      aggregates.push({
        federationId: fed,
        roundId,
        memberId: share.memberId,
        point: share.point,
        length,
        contributors,
        ciphertexts: payload,
      });
      tasks.push({
        federationId: fed,
        taskId: randomUUID(),
        roundId: decryptId,
        siteId: share.memberId,
        kind: 'decrypt',
        spec: {
          kind: 'decrypt',
          measureRoundId: roundId,
          point: share.point,
          length,
          contributors: contributors.length,
          bfv: this.ctx.bfvParams(),
        } satisfies DecryptSpec,
        payload,
      });
    }
    if (existing) {
      for (const a of aggregates) await store.putAggregate(a);
      await store.createTasks(tasks);
      for (const t of tasks) await store.appendAudit(fed, taskIssuedEvent(t));
      await store.extendRoundDeadline(fed, decryptId, new Date(Date.now() + this.ctx.cfg.rounds.deadlineMs));
      this.ctx.progress('resume', `${decryptId}: the round had no tasks (a crash before they were written); issued them now`);
    } else {
      // The summed ciphertexts, the decrypt round and its tasks commit together.
      await store.openRound(
        {
          federationId: fed,
          roundId: decryptId,
          kind: 'decrypt',
          spec: { measureRoundId: roundId },
          quorum: spec.threshold,
          deadlineAt: new Date(Date.now() + this.ctx.cfg.rounds.deadlineMs),
        },
        tasks,
        {
          before: async (tx) => {
            for (const a of aggregates) await store.putAggregateTx(tx, a);
          },
          auditEvents: tasks.map(taskIssuedEvent),
          beforeCommit: () => crashPoint('decrypt.open-tx'),
        },
      );
    }
    for (const t of tasks) board.notify(t.siteId);
  }

  private async decryptAndRelease(roundId: string, spec: MeasureSpec, label: string): Promise<void> {
    const { store } = this.ctx;
    const fed = this.fed;
    const decryptId = decryptRoundId(roundId);
    const decryptRound = (await store.getRound(fed, decryptId))!;
    this.ctx.progress('decrypt', `${label}: committee decrypting its shares of the sum`);
    if (decryptRound.state === 'open') {
      await this.ctx.waitUntil(`${decryptId} partial decryptions`, decryptRound.deadlineAt.getTime(), async () => {
        const tasks = await store.taskStates(fed, decryptId);
        return tasks.every((t) => t.state === 'done' || t.state === 'refused');
      });
      await store.setRoundState(fed, decryptId, 'closed');
      crashPoint('decrypt.closed');
    }
    if (decryptRound.state !== 'failed') await store.expireTasks(fed, decryptId);
    const partials = await store.listPartials(fed, decryptId);
    if (partials.length < spec.threshold) {
      const reason = `only ${partials.length} of the required ${spec.threshold} committee members decrypted before the deadline`;
      if (decryptRound.state !== 'failed')
        await store.setRoundState(fed, decryptId, 'failed', { failureReason: reason }).catch(() => undefined);
      await store.setRoundState(fed, roundId, 'failed', { failureReason: reason });
      throw await this.failed(roundId, label, reason);
    }
    const totals = combine(
      partials.map((p) => ({ point: p.point, share: new Uint32Array(Uint8Array.from(p.share).buffer) })),
      spec.threshold,
    );
    const contributors = (await store.listAggregates(fed, roundId))[0].contributors;
    const m = spec.marginals.length;
    const dimension = this.cells(spec.marginals, spec.valueMap);
    const sigmaSite2 = sigmaOf(spec);
    const mechanism = mechanismRecord({ ...marginalsSensitivity(m), sigmaSite2, dimension, parties: spec.quorum }, contributors.length);
    // Recomputed from the exact noise that was added; it must not exceed what sites agreed to.
    const rho = roundRho({ cellsPerRow: m, sigmaSite2, parties: spec.quorum, dimension });
    if (rho > spec.rho * (1 + 1e-12)) throw new FitError(`${label}: recomputed rho ${rho} exceeds the announced ${spec.rho}`);
    const sigmaTotal = releasedSigma(sigmaSite2, contributors.length);
    const outOfRange = releaseRangeProblem(totals.subarray(0, dimension), contributors.length, sigmaTotal, spec.maxCellCount);
    if (outOfRange) {
      // Nothing is charged or released: a sum carrying an out-of-range contribution is not a release.
      const reason = `released sum out of range, refused: ${outOfRange}`;
      await store.setRoundState(fed, decryptId, 'failed', { failureReason: reason }).catch(() => undefined);
      await store.setRoundState(fed, roundId, 'failed', { failureReason: reason });
      throw await this.failed(roundId, label, reason);
    }
    const measurements = toMeasurements(
      roundDomain(this.ctx.domain, spec),
      spec.marginals,
      Float64Array.from(totals.subarray(0, dimension), Number),
      sigmaTotal,
      spec.valueMap,
    ).map((x) => storedMeasurementInput(x, sigmaTotal));
    const charges = contributors.map((siteId) => ({ siteId, rho: spec.rho, mechanism }));
    const taskOf = new Map((await store.taskStates(fed, roundId)).map((t) => [t.siteId, t.taskId]));
    await store.recordChargesAndRelease(fed, roundId, charges, measurements, {
      beforeRelease: async () => crashPoint('release.tx'),
      auditEvents: [
        {
          type: 'measurement-released',
          federationId: fed,
          roundId,
          mechanism: mechanism.name,
          marginals: spec.marginals,
          ...(spec.valueMap ? { valueMap: spec.valueMap } : {}),
          l2Sensitivity: mechanism.l2Sensitivity,
          l1Sensitivity: mechanism.l1Sensitivity,
          dimension,
          sigmaSite2: spec.sigmaSite2,
          parties: contributors,
          quorum: spec.quorum,
          rho: spec.rho,
        },
        ...contributors.map((siteId) => ({
          type: 'charge' as const,
          federationId: fed,
          roundId,
          taskId: taskOf.get(siteId) ?? `${roundId}/${siteId}`,
          site: siteId,
          rho: spec.rho,
          mechanism: mechanism.name,
        })),
      ],
    });
    crashPoint('release.done');
    this.ctx.progress('release', `${label}: released with ${contributors.length} contributors, ρ ${spec.rho.toFixed(5)} per site`);
  }
}
