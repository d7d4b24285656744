// The long-running coordinator's studies: one fit per study under the fit id
// `<federation>/<study>`, run one at a time through the fit engine, resumed after a restart from
// the database (the engine resumes a fit from its stored rounds, so nothing is charged twice).
import type * as grpc from '@grpc/grpc-js';
import YAML from 'yaml';
import { epsilonFromRho } from '../privacy/dp/accountant.ts';
import { fitRhoBudget } from '../privacy/dp/mechanisms.ts';
import { parseSchema, schemaAttributes, type Schema } from '../schema/schema.ts';
import type { CoordinatorConfig } from './config.ts';
import { FederationEngine } from './engine.ts';
import type { FitRouter } from './service.ts';
import type { TaskBoard } from './task-board.ts';
import type { Store, Study, StudyStore } from './store/index.ts';

/** Study ids are short, URL-safe and usable inside a fit id. */
export const STUDY_ID = /^study-[a-z0-9]{10}$/;

export const fitIdOf = (federationId: string, studyId: string) => `${federationId}/${studyId}`;

export interface SiteBudget {
  siteId: string;
  /** The ε cap the site published for this federation (at its δ), and what is left of it. */
  epsilonCap: number;
  delta: number;
  rhoCap: number;
  spentRho: number;
  remainingRho: number;
  remainingEpsilon: number;
  /** ρ the coordinator charged the site across this federation's fits. */
  chargedRho: number;
  publishedAt: string;
}

/**
 * Each site's budget as the coordinator knows it: the cap and remaining ρ the site published at
 * its last registration, less the charges recorded since. Spend at other coordinators after that
 * registration is invisible here; the site's own ledger stays the authority on every charge.
 */
export async function siteBudgets(store: StudyStore, federationId: string): Promise<SiteBudget[]> {
  const policies = await store.listPolicies(federationId);
  const charges = await store.chargesBySite(federationId, Object.fromEntries(policies.map((p) => [p.siteId, p.publishedAt])));
  return policies.map((p) => {
    const c = charges[p.siteId] ?? { total: 0, after: 0 };
    const remainingRho = Math.max(0, p.rhoCap - p.spentRho - c.after);
    return {
      siteId: p.siteId,
      epsilonCap: p.epsilonCap,
      delta: p.delta,
      rhoCap: p.rhoCap,
      spentRho: p.rhoCap - remainingRho,
      remainingRho,
      remainingEpsilon: remainingRho > 0 ? epsilonFromRho(remainingRho, p.delta) : 0,
      chargedRho: c.total,
      publishedAt: p.publishedAt.toISOString(),
    };
  });
}

/** Why a study of (ε, δ) cannot fit some site's remaining budget, or null when every site can take it. */
export function budgetProblem(
  budgets: SiteBudget[],
  sites: readonly string[],
  epsilon: number,
  delta: number,
): { siteId: string; remainingEpsilon: number; message: string } | null {
  const rho = fitRhoBudget(epsilon, delta);
  for (const site of sites) {
    const b = budgets.find((x) => x.siteId === site);
    if (!b) return { siteId: site, remainingEpsilon: 0, message: `site ${site} has not registered yet: its policy and budget are unknown` };
    // A site converts its cap at its own δ; the study's ρ is what each round charges it.
    if (rho > b.remainingRho) {
      return {
        siteId: site,
        remainingEpsilon: b.remainingEpsilon,
        message:
          `site ${site} has ε ${b.remainingEpsilon.toFixed(4)} left (δ=${b.delta}; ρ ${b.remainingRho.toPrecision(4)}), ` +
          `the study needs ρ ${rho.toPrecision(4)} (ε=${epsilon}, δ=${delta})`,
      };
    }
  }
  return null;
}

type Entry = string[];
type SubsetGroup = { share: number; marginals: Entry[]; coarsen?: Record<string, number[]> };
interface SubsetDoc {
  attributes: { name: string; kind: string }[];
  structure?: SubsetGroup | SubsetGroup[];
  workload?: { ageBands?: number[]; queries: { family: string; marginals: Entry[] }[] };
}

/**
 * The schema restricted to some attributes: declared structure and workload queries are kept
 * where every attribute they name remains (a `kind:K` selector needs at least one kept attribute
 * of that kind), and a group or query left empty is dropped, as is a group that coarsens an
 * attribute not kept.
 */
export function subsetSchemaText(schemaText: string, attributes: readonly string[]): string {
  const doc = YAML.parse(schemaText) as SubsetDoc;
  const keep = new Set(attributes);
  doc.attributes = doc.attributes.filter((a) => keep.has(a.name));
  const ofKind = (k: string) => doc.attributes.filter((a) => a.kind === k).length;
  // A selector used j times in one entry needs j distinct attributes of its kind.
  const kept = (e: Entry) => e.every((n) => (n.startsWith('kind:') ? ofKind(n.slice(5)) >= e.filter((m) => m === n).length : keep.has(n)));
  if (doc.structure) {
    const groups = (Array.isArray(doc.structure) ? doc.structure : [doc.structure])
      .map((g) => ({ ...g, marginals: g.marginals.filter(kept) }))
      // A band group (coarsen) whose coarsened attribute is gone measures nothing it was for.
      .filter((g) => g.marginals.length > 0 && Object.keys(g.coarsen ?? {}).every((a) => keep.has(a)));
    if (groups.length === 0) delete doc.structure;
    else doc.structure = Array.isArray(doc.structure) ? groups : groups[0];
  }
  if (doc.workload) {
    const queries = doc.workload.queries.map((q) => ({ ...q, marginals: q.marginals.filter(kept) })).filter((q) => q.marginals.length > 0);
    if (queries.length === 0 || (doc.workload.ageBands && !doc.attributes.some((a) => a.kind === 'age'))) delete doc.workload;
    else doc.workload.queries = queries;
  }
  const text = YAML.stringify(doc);
  parseSchema(text);
  return text;
}

export function studySchema(cfg: CoordinatorConfig, study: Pick<Study, 'attributes'>): { text: string; schema: Schema } {
  const text = study.attributes ? subsetSchemaText(cfg.schemaText, study.attributes) : cfg.schemaText;
  return { text, schema: parseSchema(text) };
}

/** Measurement rounds a plan runs at most (the AIM-style plan stops early when it can). */
export function roundsAtMost(plan: 'aim' | 'mst', schema: Schema): number {
  // One declared round per structure group (three in the shipped multimodal schema).
  return (plan === 'mst' ? 3 : 8) + (schema.structure ? (schema.structure.groups?.length ?? 1) : 0);
}

interface Deps {
  store: Store;
  studies: StudyStore;
  board: TaskBoard;
  cfg: CoordinatorConfig;
  log: (line: string) => void;
}

/** The running fits, for the gRPC service: agents pull tasks of the federation and of these. */
export class StudyRunner implements FitRouter {
  private readonly engines = new Map<string, FederationEngine>();
  private stopped = false;
  private wake: () => void = () => undefined;
  private loop?: Promise<void>;

  constructor(private readonly deps: Deps) {}

  active(): string[] {
    return [...this.engines.keys()];
  }

  engine(fitId: string): FederationEngine | undefined {
    return this.engines.get(fitId);
  }

  async onRegister(siteId: string, metadata: grpc.Metadata): Promise<void> {
    const raw = metadata.get('fedsynth-policy')[0];
    if (typeof raw === 'string') {
      const p = JSON.parse(raw) as { epsilon: number; delta: number; rhoCap: number; remainingRho: number };
      const ok = [p.epsilon, p.delta, p.rhoCap, p.remainingRho].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
      if (ok) {
        await this.deps.studies.publishPolicy(this.deps.cfg.federationId, {
          siteId,
          epsilonCap: p.epsilon,
          delta: p.delta,
          rhoCap: p.rhoCap,
          spentRho: Math.max(0, p.rhoCap - p.remainingRho),
        });
      } else this.deps.log(`site ${siteId} published an unreadable policy; its budget stays unknown`);
    }
    for (const fitId of this.engines.keys()) await this.deps.store.registerSite(fitId, siteId);
  }

  /** Wakes the runner (a study was approved). */
  poke(): void {
    this.wake();
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const e of this.engines.values()) e.stop();
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const next = await this.deps.studies.nextStudy(this.deps.cfg.federationId).catch((err: Error) => {
        this.deps.log(`cannot read studies: ${err.message}`);
        return null;
      });
      if (!next) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        continue;
      }
      await this.runStudy(next);
    }
  }

  private async runStudy(study: Study): Promise<void> {
    const { store, studies, cfg, log } = this.deps;
    const fitId = study.fitId;
    let engine: FederationEngine | undefined;
    try {
      const { text, schema } = studySchema(cfg, study);
      const fitCfg: CoordinatorConfig = {
        ...cfg,
        federationId: fitId,
        schemaText: text,
        // An audited fit (holdout, membership-inference rounds) runs under `fedsynth coordinator`
        // only: a study would hold patients out without ever auditing them.
        fit: { ...cfg.fit, epsilon: study.epsilon, delta: study.delta, plan: study.plan, audit: undefined },
      };
      engine = new FederationEngine(store, this.deps.board, fitCfg);
      // The fit's rows need its federation row and the sites that are already connected.
      if (!(await store.getFederation(fitId))) {
        await store.upsertFederation({
          id: fitId,
          schemaHash: cfg.schemaHash,
          schema,
          config: { study: study.id, epsilon: study.epsilon, delta: study.delta, plan: study.plan, attributes: study.attributes },
        });
      }
      for (const s of await store.listSites(cfg.federationId)) await store.registerSite(fitId, s.siteId, s.agentVersion ?? undefined);
      this.engines.set(fitId, engine);
      const rounds = roundsAtMost(study.plan, schema);
      await studies.setStudyState(study.id, { status: 'fitting', progress: { phase: 'starting', message: 'starting the fit', rounds } });
      log(`study ${study.id} (${study.title}): fitting at ε=${study.epsilon}, δ=${study.delta}`);
      let pending = Promise.resolve();
      engine.onProgress((e) => {
        pending = pending.then(async () => {
          const released = (await store.listRounds(fitId, { kind: 'measure', state: 'released' })).length;
          const m = /^round (\d+)/.exec(e.message);
          await studies.setStudyState(study.id, {
            progress: { phase: e.phase, message: e.message, round: m ? Number(m[1]) : released, rounds },
          });
        });
      });
      const outcome = await engine.run();
      await pending;
      await studies.setStudyState(study.id, {
        status: 'fitted',
        modelId: outcome.modelId,
        progress: {
          phase: 'fitted',
          message: `model ${outcome.modelId} fitted`,
          round: outcome.rounds.length,
          rounds: outcome.rounds.length,
        },
      });
      log(`study ${study.id}: fitted (${outcome.rounds.length} rounds, model ${outcome.modelId})`);
    } catch (err) {
      if (this.stopped) return; // a restart resumes it
      let message = (err as Error).message;
      const unreleased = await unreleasedCharges(store, fitId);
      if (unreleased.length > 0) message += `; ${describeUnreleased(unreleased)}`;
      log(`study ${study.id} failed: ${message}`);
      await studies
        .setStudyState(study.id, {
          status: 'failed',
          error: message,
          ...(unreleased.length ? { progress: { ...study.progress, phase: 'failed', unreleasedCharges: unreleased } } : {}),
        })
        .catch(() => undefined);
    } finally {
      this.engines.delete(fitId);
    }
  }
}

export function attributeNames(schema: Schema): string[] {
  return schemaAttributes(schema).map((a) => a.name);
}

/** Sites charged (by their own ledgers) for rounds of this fit that were never released. */
export async function unreleasedCharges(store: Store, fitId: string): Promise<{ roundId: string; state: string; sites: string[] }[]> {
  const rows = await store.unreleasedContributions(fitId).catch(() => []);
  return rows.map((r) => ({ roundId: r.roundId, state: r.state, sites: r.sites }));
}

export function describeUnreleased(rows: readonly { roundId: string; sites: string[] }[]): string {
  return `budget spent on rounds never released: ${rows.map((r) => `${r.sites.join(', ')} charged for ${r.roundId}`).join('; ')}`;
}
