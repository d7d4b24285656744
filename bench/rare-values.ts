/**
 * Rare-value compression (issue 13): federated AIM with compression against the central peers —
 * the same plans fitted by one site holding all the data (private-pgm's MST compresses rare values,
 * its AIM does not) — on the wide/small table (model/wide-small.ts: 1,300 rows, 15 attributes,
 * one of 90 values) and on Adult, at ε = 1, δ = 1e-9. Each configuration runs on the same seeds;
 * the table prints mean 2-way / 3-way L1 and each mean's ratio to the first configuration run
 * (by default central MST with compression, the private-pgm peer), measured in the same run.
 * Seeds are the outer loop, so the configurations are interleaved.
 *
 *   npx tsx bench/rare-values.ts [--data wide-small|adult|both|adult-pub025] [--seeds 1,2,3] [--sites 3] [--only 2,4,5] [--out FILE.jsonl]
 *   (--only: indices into CONFIGS, e.g. --only 2,4 for central vs federated AIM)
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { parseCsvDataset, parseDomainJson, type Dataset } from '../model/domain.ts';
import { wideSmallTable } from '../model/wide-small.ts';
import { runUtility } from '../federation/utility-bench.ts';
import type { PlanKind } from '../federation/plan.ts';
import { positiveIntegers } from './support/int-list.ts';

const ADULT = process.env.FEDSYNTH_ADULT ?? '/work/shared/data/tabular/adult.csv';
const ADULT_DOMAIN = process.env.FEDSYNTH_ADULT_DOMAIN ?? '/work/shared/data/tabular/adult-domain.json';
const PUB = process.env.FEDSYNTH_ADULT_PUB025 ?? '/work/shared/data/tabular/adult_pub025_01';

interface Config {
  label: string;
  plan: PlanKind;
  central: boolean;
  compress: boolean;
}
const CONFIGS: Config[] = [
  { label: 'central MST + compression (1 site; as private-pgm MST)', plan: 'mst', central: true, compress: true },
  { label: 'central MST', plan: 'mst', central: true, compress: false },
  { label: 'central AIM (1 site; as private-pgm AIM, no compression)', plan: 'aim', central: true, compress: false },
  { label: 'central AIM + compression', plan: 'aim', central: true, compress: true },
  { label: 'federated AIM', plan: 'aim', central: false, compress: false },
  { label: 'federated AIM + compression', plan: 'aim', central: false, compress: true },
  { label: 'federated MST + compression', plan: 'mst', central: false, compress: true },
  { label: 'independent', plan: 'independent', central: true, compress: false },
];

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(`${readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]}*/\n`);
    return;
  }
  const which = flag('data', 'both');
  if (!['wide-small', 'adult', 'both', 'adult-pub025'].includes(which))
    throw new Error(`--data must be wide-small, adult, both or adult-pub025, got ${which}`);
  const seeds = positiveIntegers('seeds', flag('seeds', '1,2,3'));
  const sites = Number(flag('sites', '3'));
  if (!Number.isInteger(sites) || sites < 2) throw new Error('--sites must be an integer >= 2');
  const out = process.argv.includes('--out') ? flag('out', '') : undefined;
  const sets: [string, () => Dataset, number][] = [];
  if (which === 'adult-pub025')
    sets.push([
      'Adult pub025 private part (32,384 × 15, coarsened)',
      () =>
        parseCsvDataset(
          readFileSync(`${PUB}/priv.csv`, 'utf8'),
          parseDomainJson(readFileSync(`${PUB}/adult_pub025_01-domain.json`, 'utf8')),
        ),
      10,
    ]);
  if (which === 'wide-small' || which === 'both')
    sets.push(['wide-small (1,300 × 15, a 90-value attribute)', () => wideSmallTable(), sites]);
  if (which === 'adult' || which === 'both')
    sets.push([
      'Adult (48,842 × 14)',
      () => parseCsvDataset(readFileSync(ADULT, 'utf8'), parseDomainJson(readFileSync(ADULT_DOMAIN, 'utf8'))),
      10,
    ]);
  for (const [name, load, nSites] of sets) {
    const data = load();
    const only = process.argv.includes('--only') ? flag('only', '').split(',').map(Number) : undefined;
    if (only && !only.every((i) => Number.isInteger(i) && i >= 0 && i < CONFIGS.length))
      throw new Error(`--only: indices must be integers in 0..${CONFIGS.length - 1}`);
    const chosen = CONFIGS.filter((_, ci) => !only || only.includes(ci));
    const rows = chosen.map((c) => ({ label: c.label, e2: [] as number[], e3: [] as number[], s: [] as number[] }));
    // Seeds outside, configurations inside: a change of machine load during the run then
    // affects every configuration alike (only times depend on it; the errors do not).
    for (const seed of seeds) {
      for (const [ci, c] of chosen.entries()) {
        const r = await runUtility(data, {
          sites: c.central ? 1 : nSites,
          split: 'heterogeneous',
          epsilon: 1,
          delta: 1e-9,
          seed,
          plan: c.plan,
          iterations: 1000,
          ...(c.compress ? { compress: {} } : {}),
        });
        rows[ci].e2.push(r.l1TwoWay);
        rows[ci].e3.push(r.l1ThreeWay);
        rows[ci].s.push(r.wallMs / 1000);
        if (out)
          appendFileSync(
            out,
            `${JSON.stringify({ data: name, config: c.label, seed, l1TwoWay: r.l1TwoWay, l1ThreeWay: r.l1ThreeWay, wallMs: r.wallMs, rounds: r.rounds.map((x) => `${x.name}:${x.cells}`) })}\n`,
          );
        process.stderr.write(
          `${name} | ${c.label} | seed ${seed}: 3-way ${r.l1ThreeWay.toFixed(4)} 2-way ${r.l1TwoWay.toFixed(4)} (${(r.wallMs / 1000).toFixed(1)} s)\n`,
        );
      }
    }
    printTable(name, seeds, nSites, rows);
  }
}

function printTable(
  name: string,
  seeds: number[],
  nSites: number,
  rows: { label: string; e2: number[]; e3: number[]; s: number[] }[],
): void {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = rows[0];
  process.stdout.write(`\n${name}, ε = 1, δ = 1e-9, seeds ${seeds.join(', ')} (federated: ${nSites} heterogeneous sites)\n\n`);
  process.stdout.write(
    `| configuration | 2-way L1 | 3-way L1 | 3-way / ${base.label.split(' (')[0]} | runs (3-way) | mean time |\n|---|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.label} | ${mean(r.e2).toFixed(4)} | ${mean(r.e3).toFixed(4)} | ${(mean(r.e3) / mean(base.e3)).toFixed(3)} | ${r.e3.map((x) => x.toFixed(3)).join(' ')} | ${mean(r.s).toFixed(1)} s |\n`,
    );
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
