// The federation an empirical audit runs on: each site's rows over one public domain.
import { allocColumn, Dataset, type Domain } from '../../model/domain.ts';
import type { RandomSource } from '../../privacy/random.ts';
import { inProcessAggregator } from '../in-process.ts';
import { buildFitPlan } from '../plan.ts';
import { runFit, type FitResult } from '../run-fit.ts';

export interface AuditSites {
  sites: { id: string; data: Dataset }[];
  domain: Domain;
  /** Where the rows came from, for the report. */
  source: string;
}

/** Concatenates datasets over one domain. */
export function concatDatasets(domain: Domain, parts: readonly Dataset[]): Dataset {
  const rows = parts.reduce((s, p) => s + p.rows, 0);
  const columns = domain.attrs.map((_, j) => {
    const col = allocColumn(domain.sizes[j], rows);
    let off = 0;
    for (const p of parts) {
      const src = p.columns[j];
      for (let r = 0; r < p.rows; r++) col[off + r] = src[r];
      off += p.rows;
    }
    return col;
  });
  return new Dataset(domain, columns, rows);
}

export interface AuditFitOptions {
  epsilon: number;
  delta: number;
  /** Mirror-descent iterations; 0: measurements only, no model. */
  iterations: number;
  /** Noise source of every site; tests only (default: the OS CSPRNG). */
  random?: RandomSource;
  /** TEST ONLY: sites release exact counts, to show an audit can fail. */
  unsafeDisableNoiseForAudit?: boolean;
}

/**
 * The fit the audits attack: the MST plan (the coordinator's `fit.plan: mst`; every plan's rounds
 * are the same mechanism) through the one fit loop, each site answering through the production
 * site path. Secure aggregation is left out: the sum is exact either way.
 */
export async function auditFit(sites: readonly { id: string; data: Dataset }[], opts: AuditFitOptions): Promise<FitResult> {
  if (sites.length === 0) throw new Error('no sites');
  const domain = sites[0].data.domain;
  const plan = buildFitPlan(domain, { plan: 'mst', epsilon: opts.epsilon, delta: opts.delta });
  const aggregator = await inProcessAggregator(sites, { random: opts.random, unsafeDisableNoiseForAudit: opts.unsafeDisableNoiseForAudit });
  try {
    return await runFit(plan, aggregator, { domain, iterations: opts.iterations });
  } finally {
    aggregator.dispose();
  }
}
