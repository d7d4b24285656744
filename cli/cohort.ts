// `fedsynth cohort`: a new synthetic cohort from a fitted model, with filters, at no privacy
// cost (post-processing). Same model, seed, size and filter → the same cohort.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { command, parseArgs, UsageError } from './args.ts';
import { openStore } from '../coordinator/store/index.ts';
import { emitCohort } from '../coordinator/coordinator.ts';
import { COORDINATOR_PARTY } from '../coordinator/store/index.ts';
import { GraphicalModel, type GraphicalModelJSON } from '../model/pgm/index.ts';
import { parseSchema } from '../schema/schema.ts';
import { parseWhere, WhereError } from '../schema/where.ts';
import { epsilonFromRho } from '../privacy/dp/accountant.ts';

export const COHORT = command({
  command: 'fedsynth cohort',
  summary:
    'Writes a new synthetic cohort from a fitted model, at no privacy cost (post-processing).\nSame model, seed, size and filter give the same cohort.',
  flags: {
    config: {
      type: 'path',
      value: 'coordinator.yaml',
      required: true,
      help: 'the coordinator config (finds the federation and its store)',
    },
    out: { type: 'path', value: 'DIR', required: true, help: 'output folder of the cohort' },
    n: { type: 'int', min: 1, max: 10_000_000, default: 1000, help: 'patients to sample' },
    where: { type: 'string', value: 'FILTER', help: 'cohort filter over public bins, e.g. age>=40,condition=pneumonia' },
    seed: { type: 'int', min: 0, max: 2 ** 31, default: 1, help: 'sampling seed' },
    model: { type: 'string', value: 'ID', default: 'latest', help: 'fitted model id' },
  },
});

export async function runCohortCommand(args: string[]): Promise<number> {
  const { flags } = parseArgs(COHORT, args);
  const { n, seed } = flags;
  const cfg = parseCoordinatorConfig(flags.config);
  const schema = parseSchema(cfg.schemaText);
  const whereText = flags.where ?? '';
  let where: Record<string, number[]> | undefined;
  try {
    where = whereText ? parseWhere(schema, whereText) : undefined;
  } catch (err) {
    if (err instanceof WhereError) throw new UsageError(`--where: ${err.message}`);
    throw err;
  }
  const store = await openStore(
    cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
  );
  // Cohort emissions are signed into the federation's audit log like every other event.
  store.setAuditSigner({ party: COORDINATOR_PARTY, privateKeyPem: cfg.kit.keyPem });
  try {
    const models = await store.listModels(cfg.federationId);
    const wanted = flags.model !== 'latest' ? flags.model : undefined;
    const row = wanted ? models.find((m) => m.id === wanted) : models.sort((a, b) => +b.createdAt - +a.createdAt)[0];
    if (!row) {
      throw new UsageError(
        wanted
          ? `no model ${wanted} in federation ${cfg.federationId} (known: ${models.map((m) => m.id).join(', ') || 'none'})`
          : `federation ${cfg.federationId} has no fitted model yet`,
      );
    }
    const model = GraphicalModel.fromJSON(row.model as GraphicalModelJSON);
    const dir = resolve(flags.out);
    await mkdir(dir, { recursive: true });
    console.log(`sampling ${n} patients from ${row.id}${whereText ? ` where ${whereText}` : ''} (seed ${seed})`);
    const cohort = await emitCohort(cfg, store, schema, row.id, model, { n, seed, where, whereText, dir });
    const report = {
      cohortId: cohort.cohortId,
      federationId: cfg.federationId,
      modelId: row.id,
      n,
      seed,
      where: { text: whereText, allowedValues: where ?? {} },
      privacy: {
        note: 'a cohort is post-processing of the model: it spends no privacy budget',
        modelRho: row.rhoTotal,
        modelEpsilon: epsilonFromRho(row.rhoTotal, cfg.fit.delta),
        delta: cfg.fit.delta,
      },
      files: cohort.files,
      patients: cohort.dataset.rows,
      plausibility: cohort.plausibility,
      rejected: cohort.rejected,
      clinical: cohort.clinical,
      ...(cohort.modalities ? { modalities: cohort.modalities } : {}),
    };
    await writeFile(join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    if (cohort.dataset.rows === 0) {
      // Every draw broke a plausibility rule or failed its validators: say which, and fail.
      const rules = Object.entries(cohort.plausibility.byRule)
        .map(([r, k]) => `${r} ${k}`)
        .join(', ');
      console.error(
        `no patient passed: ${cohort.plausibility.dropped} draws dropped as implausible (${rules || 'no rule'}), ${cohort.rejected.dropped} after failed validation; see ${join(dir, 'report.json')}`,
      );
      return 1;
    }
    console.log(
      `wrote ${Object.values(cohort.files)
        .map((f) => `${f.resources} ${f.path}`)
        .join(', ')} and ${join(dir, 'report.json')}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
