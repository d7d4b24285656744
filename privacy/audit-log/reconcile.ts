/**
 * Verification and reconciliation of audit logs (pure: no I/O). Input: the coordinator's log and
 * any number of site logs (privacy/audit-log/chain.ts entries, as parsed from JSON lines) and each
 * party's verification key. Output: every finding, and each party's spend recomputed with the
 * accountant from the recorded mechanisms — never from the ρ the logs state.
 *
 * Checks, per log: the chain (hashes, links, seq, signatures; `verifyChain`) and that one party
 * wrote it. Across logs:
 *   - every `measurement-released`: ρ recomputed from sigmaSite2, quorum, sensitivities and
 *     dimension (privacy/dp/accountant.ts `rhoDistributedDiscreteGaussian`) must equal the recorded
 *     ρ; the sensitivities must be those of the enforced bound for its marginals
 *     (privacy/dp/mechanisms.ts `marginalsSensitivity`); a membership-inference score histogram
 *     (each site's own, released alone) must record quorum 1 and one bin per patient;
 *   - every party in a release has a coordinator `charge` for that round with the recomputed ρ
 *     (else: a release without a charge), and every coordinator charge has a release
 *     (else: a charge without a release) and an issued task;
 *   - with a site's own log: every coordinator charge to that site is one the site itself made
 *     for the same task with the same ρ (else: a charge the site never agreed to / a ρ
 *     mismatch); every site refusal is recorded by the coordinator and vice versa;
 *   - `model-fitted` spend per site equals the recomputed charges;
 *   - every coordinator chain head a site countersigned in its own charge entries is in the
 *     coordinator's log with the same hash (a cut or rewritten log no longer holds it).
 */
import { composeRho, epsilonFromRho, rhoDistributedDiscreteGaussian } from '../dp/accountant.ts';
import { answerSensitivity, marginalsSensitivity, SCORE_HISTOGRAM_MECHANISM } from '../dp/mechanisms.ts';
import {
  verifyChain,
  type AuditEntry,
  type ChargeEvent,
  type ChainFinding,
  type KeysByParty,
  type MeasurementReleasedEvent,
  type TaskIssuedEvent,
  type TaskRefusedEvent,
  type ModelFittedEvent,
} from './chain.ts';

export const COORDINATOR = 'coordinator';

export type ReconcileFindingKind =
  | ChainFinding['kind']
  | 'mixed-parties'
  | 'no-coordinator-log'
  | 'rho-mismatch'
  | 'sensitivity-mismatch'
  | 'duplicate-release'
  | 'release-without-charge'
  | 'charge-without-release'
  | 'charge-without-task'
  | 'unagreed-charge'
  | 'countersigned-head-missing'
  | 'other-fit'
  | 'unrecorded-site-charge'
  | 'unreleased-site-charge'
  | 'missing-site-log'
  | 'refusal-not-recorded'
  | 'model-spend-mismatch'
  /** An entry signed with a certificate after its revocation (revoked-signers.ts, checked by audit verify). */
  | 'signed-after-revocation';

export interface ReconcileFinding {
  /** The log the finding is about (its name as given). */
  log: string;
  kind: ReconcileFindingKind;
  message: string;
  seq?: number;
}

export interface AuditLogInput {
  name: string;
  entries: readonly unknown[];
}

export interface SpendPoint {
  /** ISO time of the charge. */
  at: string;
  roundId: string;
  rho: number;
  cumulativeRho: number;
  cumulativeEpsilon: number;
}

export interface MechanismSummary {
  roundId: string;
  mechanism: string;
  marginals: string[][] | null;
  l2Sensitivity: number;
  l1Sensitivity: number;
  dimension: number;
  sigmaSite2: string;
  sigmaSite: number;
  quorum: number;
  parties: string[];
  rhoRecorded: number;
  rhoRecomputed: number;
  at: string;
}

export interface PartySpend {
  party: string;
  /** Recomputed from the coordinator's releases (the charges it recorded for this party). */
  rho: number;
  epsilon: number;
  charges: number;
  /** From the party's own log, when given (the ρ the site itself charged). */
  ownLog?: { rho: number; epsilon: number; charges: number; refusals: number };
  timeline: SpendPoint[];
}

export interface ReconcileResult {
  ok: boolean;
  delta: number;
  findings: ReconcileFinding[];
  logs: { name: string; party: string | null; entries: number; chainFindings: number }[];
  parties: Record<string, PartySpend>;
  mechanisms: MechanismSummary[];
  /** Counts of events by type in the coordinator's log. */
  events: Record<string, number>;
  /**
   * What could not be reconciled but is not proven wrong: sites the coordinator's log names whose
   * own log was not given, and site charges for rounds the coordinator issued but never released.
   */
  warnings: ReconcileFinding[];
}

const REL = 1e-9;
const close = (a: number, b: number) => Math.abs(a - b) <= REL * Math.max(Math.abs(a), Math.abs(b), 1e-300);

function isEntry(e: unknown): e is AuditEntry {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as AuditEntry).event === 'object' &&
    (e as AuditEntry).event !== null &&
    typeof (e as AuditEntry).party === 'string'
  );
}

/** ρ of a release recomputed from its recorded mechanism parameters (throws on impossible ones). */
export function recomputeReleaseRho(e: MeasurementReleasedEvent): number {
  return rhoDistributedDiscreteGaussian({
    l2Sensitivity: e.l2Sensitivity,
    l1Sensitivity: e.l1Sensitivity,
    sigmaSite2: { num: BigInt(e.sigmaSite2.num), den: BigInt(e.sigmaSite2.den) },
    parties: e.quorum,
    dimension: e.dimension,
  });
}

export function reconcileAuditLogs(logs: readonly AuditLogInput[], keys: KeysByParty, options: { delta: number }): ReconcileResult {
  const findings: ReconcileFinding[] = [];
  const logInfo: ReconcileResult['logs'] = [];
  const byParty = new Map<string, { name: string; entries: AuditEntry[] }>();

  for (const log of logs) {
    const chain = verifyChain(log.entries, keys);
    for (const f of chain) findings.push({ log: log.name, kind: f.kind, message: f.message, seq: f.seq });
    const entries = log.entries.filter(isEntry);
    const parties = [...new Set(entries.map((e) => e.party))];
    if (parties.length > 1)
      findings.push({
        log: log.name,
        kind: 'mixed-parties',
        message: `${log.name} holds entries of several parties (${parties.join(', ')}); a log is written by one party`,
      });
    const party = parties[0] ?? null;
    logInfo.push({ name: log.name, party, entries: log.entries.length, chainFindings: chain.length });
    if (party !== null) {
      if (byParty.has(party))
        findings.push({
          log: log.name,
          kind: 'mixed-parties',
          message: `two logs of party ${party}: ${byParty.get(party)!.name} and ${log.name}`,
        });
      else byParty.set(party, { name: log.name, entries });
    }
  }

  const coord = byParty.get(COORDINATOR);
  const result: ReconcileResult = {
    ok: false,
    delta: options.delta,
    findings,
    logs: logInfo,
    parties: {},
    mechanisms: [],
    events: {},
    warnings: [],
  };
  if (!coord) {
    findings.push({
      log: '(all)',
      kind: 'no-coordinator-log',
      message: `no log of party "${COORDINATOR}" was given; spend cannot be recomputed`,
    });
  } else {
    reconcileWithCoordinator(coord, byParty, result);
  }
  // Parties with only their own log still get their own figures.
  for (const [party, log] of byParty) {
    if (party === COORDINATOR || result.parties[party]) continue;
    result.parties[party] = { party, rho: 0, epsilon: 0, charges: 0, timeline: [], ownLog: ownSpend(log.entries, options.delta) };
  }
  result.ok = findings.length === 0;
  return result;
}

function ownSpend(entries: readonly AuditEntry[], delta: number): PartySpend['ownLog'] {
  const charges = entries.filter((e) => e.event.type === 'charge').map((e) => (e.event as ChargeEvent).rho);
  const rho = composeRho(charges);
  return {
    rho,
    epsilon: rho > 0 ? epsilonFromRho(rho, delta) : 0,
    charges: charges.length,
    refusals: entries.filter((e) => e.event.type === 'task-refused').length,
  };
}

function reconcileWithCoordinator(
  coord: { name: string; entries: AuditEntry[] },
  byParty: Map<string, { name: string; entries: AuditEntry[] }>,
  result: ReconcileResult,
): void {
  const { findings, delta } = { findings: result.findings, delta: result.delta };
  const C = coord.name;
  const releases = new Map<string, { entry: AuditEntry; event: MeasurementReleasedEvent; rho: number | null }>();
  const charges: { entry: AuditEntry; event: ChargeEvent }[] = [];
  const issued = new Map<string, TaskIssuedEvent>();
  const refusals = new Map<string, TaskRefusedEvent>();
  const models: { entry: AuditEntry; event: ModelFittedEvent }[] = [];
  for (const entry of coord.entries) {
    const ev = entry.event;
    result.events[ev.type] = (result.events[ev.type] ?? 0) + 1;
    switch (ev.type) {
      case 'measurement-released': {
        if (releases.has(ev.roundId)) {
          findings.push({ log: C, kind: 'duplicate-release', seq: entry.seq, message: `round ${ev.roundId} is released twice` });
          break;
        }
        let rho: number | null = null;
        try {
          rho = recomputeReleaseRho(ev);
        } catch (e) {
          findings.push({
            log: C,
            kind: 'rho-mismatch',
            seq: entry.seq,
            message: `release of ${ev.roundId}: its mechanism parameters give no valid ρ: ${(e as Error).message}`,
          });
        }
        if (rho !== null && !close(rho, ev.rho)) {
          findings.push({
            log: C,
            kind: 'rho-mismatch',
            seq: entry.seq,
            message: `release of ${ev.roundId} records ρ ${ev.rho} but its mechanism (σ² ${ev.sigmaSite2.num}/${ev.sigmaSite2.den}, quorum ${ev.quorum}, Δ2 ${ev.l2Sensitivity}, Δ1 ${ev.l1Sensitivity}, d ${ev.dimension}) gives ρ ${rho}`,
          });
        }
        if (ev.marginals) {
          const m = ev.marginals.length;
          const want = marginalsSensitivity(m);
          if (!close(ev.l2Sensitivity, want.l2Sensitivity) || !close(ev.l1Sensitivity, want.l1Sensitivity)) {
            findings.push({
              log: C,
              kind: 'sensitivity-mismatch',
              seq: entry.seq,
              message: `release of ${ev.roundId} measures ${m} marginals (one row per patient: Δ2 = ${want.l2Sensitivity}, Δ1 = ${want.l1Sensitivity}) but records Δ2 ${ev.l2Sensitivity}, Δ1 ${ev.l1Sensitivity}`,
            });
          }
        }
        if (ev.mechanism === SCORE_HISTOGRAM_MECHANISM) {
          // Each site's histogram is released alone: only its own noise protects it (quorum 1),
          // and one patient moves one bin of it.
          const want = answerSensitivity(1);
          if (ev.quorum !== 1 || !close(ev.l2Sensitivity, want.l2Sensitivity) || !close(ev.l1Sensitivity, want.l1Sensitivity)) {
            findings.push({
              log: C,
              kind: 'sensitivity-mismatch',
              seq: entry.seq,
              message: `release of ${ev.roundId} is a per-site score histogram (released alone, one bin per patient: quorum 1, Δ2 = ${want.l2Sensitivity}, Δ1 = ${want.l1Sensitivity}) but records quorum ${ev.quorum}, Δ2 ${ev.l2Sensitivity}, Δ1 ${ev.l1Sensitivity}`,
            });
          }
        }
        releases.set(ev.roundId, { entry, event: ev, rho });
        const s2 = Number(BigInt(ev.sigmaSite2.num)) / Number(BigInt(ev.sigmaSite2.den));
        result.mechanisms.push({
          roundId: ev.roundId,
          mechanism: ev.mechanism,
          marginals: ev.marginals ?? null,
          l2Sensitivity: ev.l2Sensitivity,
          l1Sensitivity: ev.l1Sensitivity,
          dimension: ev.dimension,
          sigmaSite2: `${ev.sigmaSite2.num}/${ev.sigmaSite2.den}`,
          sigmaSite: Math.sqrt(s2),
          quorum: ev.quorum,
          parties: ev.parties,
          rhoRecorded: ev.rho,
          rhoRecomputed: rho ?? NaN,
          at: entry.timestamp,
        });
        break;
      }
      case 'charge':
        charges.push({ entry, event: ev });
        break;
      case 'task-issued':
        issued.set(ev.taskId, ev);
        break;
      case 'task-refused':
        refusals.set(ev.taskId, ev);
        break;
      case 'model-fitted':
        models.push({ entry, event: ev });
        break;
      default:
        break;
    }
  }

  // Charges ↔ releases ↔ tasks, on the coordinator's side.
  const chargeKey = (round: string, site: string) => `${round}\u0000${site}`;
  const chargeBy = new Map<string, { entry: AuditEntry; event: ChargeEvent }>();
  for (const c of charges) {
    const k = chargeKey(c.event.roundId, c.event.site);
    if (chargeBy.has(k))
      findings.push({
        log: C,
        kind: 'rho-mismatch',
        seq: c.entry.seq,
        message: `site ${c.event.site} is charged twice for round ${c.event.roundId}`,
      });
    chargeBy.set(k, c);
    const rel = releases.get(c.event.roundId);
    if (!rel || !rel.event.parties.includes(c.event.site)) {
      findings.push({
        log: C,
        kind: 'charge-without-release',
        seq: c.entry.seq,
        message: `charge of ρ ${c.event.rho} to ${c.event.site} for round ${c.event.roundId} has no release listing that site`,
      });
    } else if (rel.rho !== null && !close(rel.rho, c.event.rho)) {
      findings.push({
        log: C,
        kind: 'rho-mismatch',
        seq: c.entry.seq,
        message: `charge to ${c.event.site} for round ${c.event.roundId} records ρ ${c.event.rho}; the release's mechanism gives ρ ${rel.rho}`,
      });
    }
    const task = issued.get(c.event.taskId);
    if (!task || task.site !== c.event.site || task.roundId !== c.event.roundId) {
      findings.push({
        log: C,
        kind: 'charge-without-task',
        seq: c.entry.seq,
        message: `charge to ${c.event.site} for round ${c.event.roundId} names task ${c.event.taskId}, which was not issued to that site in that round`,
      });
    }
  }
  for (const [roundId, rel] of releases) {
    for (const p of rel.event.parties) {
      if (!chargeBy.has(chargeKey(roundId, p))) {
        findings.push({
          log: C,
          kind: 'release-without-charge',
          seq: rel.entry.seq,
          message: `round ${roundId} was released with ${p}'s contribution, but ${p} was never charged for it`,
        });
      }
    }
  }

  // Spend per site, recomputed: the release's ρ (from its mechanism), summed over the site's charges.
  const sites = new Set<string>([...charges.map((c) => c.event.site), ...[...byParty.keys()].filter((p) => p !== COORDINATOR)]);
  for (const site of sites) {
    const mine = charges.filter((c) => c.event.site === site).sort((a, b) => a.entry.seq - b.entry.seq);
    const timeline: SpendPoint[] = [];
    const rhos: number[] = [];
    for (const c of mine) {
      const rel = releases.get(c.event.roundId);
      const rho = rel?.rho ?? c.event.rho;
      rhos.push(rho);
      const cum = composeRho(rhos);
      timeline.push({
        at: c.entry.timestamp,
        roundId: c.event.roundId,
        rho,
        cumulativeRho: cum,
        cumulativeEpsilon: cum > 0 ? epsilonFromRho(cum, delta) : 0,
      });
    }
    const rho = composeRho(rhos);
    const own = byParty.get(site);
    result.parties[site] = {
      party: site,
      rho,
      epsilon: rho > 0 ? epsilonFromRho(rho, delta) : 0,
      charges: mine.length,
      timeline,
      ...(own ? { ownLog: ownSpend(own.entries, delta) } : {}),
    };
  }

  // The model's stated spend: every charge but the audit histograms, which follow the model.
  const fitRho = (site: string) =>
    composeRho(
      charges
        .filter((c) => c.event.site === site && releases.get(c.event.roundId)?.event.mechanism !== SCORE_HISTOGRAM_MECHANISM)
        .map((c) => releases.get(c.event.roundId)?.rho ?? c.event.rho),
    );
  for (const m of models) {
    for (const [site, stated] of Object.entries(m.event.rhoBySite)) {
      const got = fitRho(site);
      if (!close(stated, got)) {
        findings.push({
          log: C,
          kind: 'model-spend-mismatch',
          seq: m.entry.seq,
          message: `model ${m.event.modelId} states ρ ${stated} for ${site}; its recomputed charges sum to ${got}`,
        });
      }
    }
  }

  const named = new Set([...issued.values()].map((t) => t.site).concat(charges.map((c) => c.event.site)));
  const missing = [...named].filter((site) => !byParty.has(site)).sort();
  if (missing.length > 0)
    result.warnings.push({
      log: '(all)',
      kind: 'missing-site-log',
      message: `no own log given for site(s) ${missing.join(', ')}: the coordinator's charges to them are not checked against what they recorded`,
    });

  // Each site's own log against the coordinator's.
  const fits = new Set(coord.entries.map((e) => e.event.federationId));
  for (const [site, own] of byParty) {
    if (site === COORDINATOR) continue;
    const S = own.name;
    const siteCharges = new Map<string, { entry: AuditEntry; event: ChargeEvent }>();
    const siteRefusals = new Map<string, TaskRefusedEvent>();
    // A site's log covers every fit it answered; this coordinator log covers its own fit(s) only.
    const otherFits = new Map<string, number>();
    for (const e of own.entries) {
      if (e.event.type !== 'charge' && e.event.type !== 'task-refused') continue;
      const fit = e.event.fitId ?? e.event.federationId;
      if (!fits.has(fit)) {
        otherFits.set(fit, (otherFits.get(fit) ?? 0) + 1);
        continue;
      }
      if (e.event.type === 'charge') siteCharges.set(e.event.taskId, { entry: e, event: e.event });
      else siteRefusals.set(e.event.taskId, e.event);
    }
    if (otherFits.size > 0) {
      result.warnings.push({
        log: S,
        kind: 'other-fit',
        message: `${S} also holds ${[...otherFits].map(([f, n]) => `${n} charge/refusal entr${n === 1 ? 'y' : 'ies'} of ${f}`).join(', ')}, which the coordinator log given does not cover: not reconciled here`,
      });
    }
    for (const c of charges.filter((x) => x.event.site === site)) {
      const mine = siteCharges.get(c.event.taskId);
      if (!mine) {
        findings.push({
          log: C,
          kind: 'unagreed-charge',
          seq: c.entry.seq,
          message: `coordinator charges ${site} ρ ${c.event.rho} for round ${c.event.roundId} (task ${c.event.taskId}), a charge ${site}'s own log (${S}) never made`,
        });
        continue;
      }
      const rel = releases.get(c.event.roundId);
      const ref = rel?.rho ?? c.event.rho;
      if (!close(mine.event.rho, c.event.rho) || !close(mine.event.rho, ref)) {
        findings.push({
          log: S,
          kind: 'rho-mismatch',
          seq: mine.entry.seq,
          message: `${site} charged itself ρ ${mine.event.rho} for task ${c.event.taskId}; the coordinator records ρ ${c.event.rho} (recomputed ${ref})`,
        });
      }
    }
    reverseCheck(C, site, siteCharges, charges, issued, result);
    countersignedHeads(C, site, S, siteCharges, coord.entries, findings);
    for (const [taskId, r] of siteRefusals) {
      if (!refusals.has(taskId))
        findings.push({
          log: C,
          kind: 'refusal-not-recorded',
          message: `${site} refused task ${taskId} (${r.reason}) but the coordinator's log has no record of the refusal`,
        });
    }
    for (const [taskId, r] of refusals) {
      if (r.site === site && !siteRefusals.has(taskId))
        findings.push({
          log: S,
          kind: 'refusal-not-recorded',
          message: `coordinator records that ${site} refused task ${taskId}, but ${site}'s own log has no such refusal`,
        });
    }
  }
}

/**
 * Every coordinator chain head a site countersigned (in a charge of its own signed log, for a fit
 * this coordinator log covers) must be in that log with the same hash: a log cut below it, or
 * rewritten and re-signed, no longer contains it.
 */
function countersignedHeads(
  C: string,
  site: string,
  S: string,
  siteCharges: ReadonlyMap<string, { entry: AuditEntry; event: ChargeEvent }>,
  coordEntries: readonly AuditEntry[],
  findings: ReconcileFinding[],
): void {
  const bySeq = new Map(coordEntries.map((e) => [e.seq, e]));
  const last = coordEntries.length ? coordEntries[coordEntries.length - 1].seq : -1;
  for (const { entry, event } of siteCharges.values()) {
    const head = event.coordinatorHead;
    if (!head) continue;
    const there = bySeq.get(head.seq);
    if (!there) {
      findings.push({
        log: C,
        kind: 'countersigned-head-missing',
        seq: head.seq,
        message: `${site} countersigned the coordinator's chain head at seq ${head.seq} for round ${event.roundId} (${S} seq ${entry.seq}), but this log ends at seq ${last}: it was cut`,
      });
    } else if (there.hash !== head.hash) {
      findings.push({
        log: C,
        kind: 'countersigned-head-missing',
        seq: head.seq,
        message: `${site} countersigned hash ${head.hash.slice(0, 12)}… at seq ${head.seq} for round ${event.roundId}, but this log has ${there.hash.slice(0, 12)}… there: it was rewritten`,
      });
    }
  }
}

/** The other direction: every charge a site made is one the coordinator's log accounts for. */
function reverseCheck(
  C: string,
  site: string,
  siteCharges: ReadonlyMap<string, { entry: AuditEntry; event: ChargeEvent }>,
  charges: readonly { entry: AuditEntry; event: ChargeEvent }[],
  issued: ReadonlyMap<string, TaskIssuedEvent>,
  result: ReconcileResult,
): void {
  const coordTasks = new Set(charges.filter((x) => x.event.site === site).map((x) => x.event.taskId));
  for (const [taskId, mine] of siteCharges) {
    if (coordTasks.has(taskId)) continue;
    const task = issued.get(taskId);
    if (!task || task.site !== site) {
      result.findings.push({
        log: C,
        kind: 'unrecorded-site-charge',
        message: `${site} charged itself ρ ${mine.event.rho} for task ${taskId} (round ${mine.event.roundId}), which the coordinator's log never issued: the coordinator's log lost or removed that round`,
      });
    } else {
      // The site's ledger exceeds the coordinator's charges: it paid for a round the coordinator
      // never released (a failed round, a fit abandoned mid-round, or a log cut after the tasks).
      result.findings.push({
        log: C,
        kind: 'unreleased-site-charge',
        message: `${site} charged itself ρ ${mine.event.rho} for task ${taskId} of round ${task.roundId}, which the coordinator's log issued but never released or charged: the site paid for a result nobody received (a failed round, a fit abandoned or still running, or a log cut after the tasks were issued)`,
      });
    }
  }
}
