// Prometheus metrics of the coordinator and of a site agent (prom-client), each in its own
// registry so that several of them can live in one process (tests, the load harness). Only
// counts, sizes, durations and ρ already in the ledgers are exported: never data, never noise.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Round and task latencies run from under a second (keygen on loopback) to the round deadline. */
const LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export type RoundOutcome = 'released' | 'failed';

export interface CoordinatorMetrics {
  readonly registry: Registry;
  roundStarted(kind: string): void;
  roundFinished(kind: string, outcome: RoundOutcome, seconds: number): void;
  uploaded(bytes: number): void;
  downloaded(bytes: number): void;
  /** A call the coordinator refused, or a task a site refused; reason is a short label. */
  refused(reason: string): void;
  /** A site's cap and remaining ρ as it published them at its last registration. */
  sitePublished(siteId: string, rhoCap: number, remainingRho: number): void;
  /** ρ charged per site so far (read from the store at scrape time). */
  setSpendSource(read: () => Promise<{ siteId: string; rho: number }[]>): void;
}

export function createCoordinatorMetrics(opts: { defaultMetrics?: boolean } = {}): CoordinatorMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'fedsynth_coordinator_' });
  const started = new Counter({
    name: 'fedsynth_rounds_started_total',
    help: 'rounds opened, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  const released = new Counter({
    name: 'fedsynth_rounds_released_total',
    help: 'rounds released, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'fedsynth_rounds_failed_total',
    help: 'rounds failed, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'fedsynth_round_duration_seconds',
    help: 'time from a round opening to its release or failure',
    labelNames: ['kind', 'outcome'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const up = new Counter({ name: 'fedsynth_bytes_uploaded_total', help: 'result bytes received from sites', registers: [registry] });
  const down = new Counter({ name: 'fedsynth_bytes_downloaded_total', help: 'task payload bytes sent to sites', registers: [registry] });
  const refusals = new Counter({
    name: 'fedsynth_refusals_total',
    help: 'calls the coordinator refused and tasks sites refused, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const cap = new Gauge({
    name: 'fedsynth_site_cap_rho',
    help: "a site's ρ cap for this federation, as published at its last registration",
    labelNames: ['site'],
    registers: [registry],
  });
  const remaining = new Gauge({
    name: 'fedsynth_site_remaining_rho',
    help: "a site's remaining ρ for this federation, as published at its last registration",
    labelNames: ['site'],
    registers: [registry],
  });
  let spendSource: (() => Promise<{ siteId: string; rho: number }[]>) | undefined;
  new Gauge({
    name: 'fedsynth_site_spent_rho',
    help: 'ρ the coordinator has charged each site (released rounds, all fits of the federation)',
    labelNames: ['site'],
    registers: [registry],
    async collect() {
      if (!spendSource) return;
      this.reset();
      for (const s of await spendSource()) this.set({ site: s.siteId }, s.rho);
    },
  });
  return {
    registry,
    roundStarted: (kind) => started.inc({ kind }),
    roundFinished(kind, outcome, seconds) {
      (outcome === 'released' ? released : failed).inc({ kind });
      latency.observe({ kind, outcome }, Math.max(0, seconds));
    },
    uploaded: (n) => up.inc(n),
    downloaded: (n) => down.inc(n),
    refused: (reason) => refusals.inc({ reason }),
    sitePublished(siteId, rhoCap, remainingRho) {
      cap.set({ site: siteId }, rhoCap);
      remaining.set({ site: siteId }, remainingRho);
    },
    setSpendSource(read) {
      spendSource = read;
    },
  };
}

export type TaskOutcome = 'answered' | 'refused' | 'undelivered';

export interface AgentBudget {
  federationId: string;
  capRho: number;
  spentRho: number;
  remainingRho: number;
}

export interface AgentMetrics {
  readonly registry: Registry;
  taskStarted(kind: string): void;
  taskFinished(kind: string, outcome: TaskOutcome, seconds: number): void;
  uploaded(bytes: number): void;
  downloaded(bytes: number): void;
  /** A task this site refused; reason is a short label (refusalReason). */
  refused(reason: string): void;
  /** The site's own ledger, read at scrape time. */
  setBudgetSource(read: () => AgentBudget): void;
}

export function createAgentMetrics(opts: { defaultMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'fedsynth_agent_' });
  const started = new Counter({
    name: 'fedsynth_rounds_started_total',
    help: 'tasks of rounds received, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  const tasks = new Counter({
    name: 'fedsynth_tasks_total',
    help: 'tasks finished, by kind and outcome (answered, refused, undelivered)',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'fedsynth_round_duration_seconds',
    help: "time from receiving a round's task to the coordinator's acknowledgement (or giving up)",
    labelNames: ['kind', 'outcome'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const up = new Counter({ name: 'fedsynth_bytes_uploaded_total', help: 'answer bytes sent to the coordinator', registers: [registry] });
  const down = new Counter({ name: 'fedsynth_bytes_downloaded_total', help: 'task payload bytes received', registers: [registry] });
  const refusals = new Counter({
    name: 'fedsynth_refusals_total',
    help: 'tasks this site refused, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  let budget: (() => AgentBudget) | undefined;
  const gauge = (name: string, help: string, pick: (b: AgentBudget) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['federation'],
      registers: [registry],
      collect() {
        if (!budget) return;
        const b = budget();
        this.reset();
        this.set({ federation: b.federationId }, pick(b));
      },
    });
  gauge('fedsynth_budget_cap_rho', "the site's ρ cap for this federation (its policy)", (b) => b.capRho);
  gauge('fedsynth_budget_spent_rho', 'ρ spent for this federation (the ledger)', (b) => b.spentRho);
  gauge('fedsynth_budget_remaining_rho', 'ρ left for this federation (cap minus ledger)', (b) => b.remainingRho);
  return {
    registry,
    taskStarted: (kind) => started.inc({ kind }),
    taskFinished(kind, outcome, seconds) {
      tasks.inc({ kind, outcome });
      latency.observe({ kind, outcome }, Math.max(0, seconds));
    },
    uploaded: (n) => up.inc(n),
    downloaded: (n) => down.inc(n),
    refused: (reason) => refusals.inc({ reason }),
    setBudgetSource(read) {
      budget = read;
    },
  };
}

/**
 * A short, bounded label for a refusal's free-text reason: Prometheus labels must not carry
 * unbounded values (round ids, ρ figures), so reasons are sorted into a few families.
 */
export function refusalReason(text: string): string {
  const t = text.toLowerCase();
  if (t.includes('revoked')) return 'revoked';
  if (/budget|cap|ρ|rho|epsilon|exceed/.test(t)) return 'budget';
  if (/committee|certificate|signed|ca\b/.test(t)) return 'committee';
  if (/quorum|threshold|policy|not allowed|forbid/.test(t)) return 'policy';
  if (/spec|malformed|parameters|does not match|schema/.test(t)) return 'invalid-task';
  if (/could not process/.test(t)) return 'site-error';
  return 'other';
}
