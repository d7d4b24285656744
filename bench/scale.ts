/**
 * Scale: 100 sites, 1,000,000 patients, 50 attributes, the federated AIM plan on the
 * plaintext-sum path of `fedsynth bench utility` (same noise, same plan, same estimator).
 * Synthetic data with structure: attribute j (size 2..10) copies a noisy function of its parent
 * ⌊(j−1)/2⌋ with probability 0.75 (a binary-tree Bayesian network), so selection has real
 * pairwise structure to find. Reports wall time, rounds, model size, peak RSS.
 *
 *   npx tsx bench/scale.ts [--rows 1000000] [--sites 100] [--attrs 50] [--epsilon 1]
 */
import { Dataset, Domain, allocColumn } from '../model/domain.ts';
import { Rng } from '../model/rng.ts';
import { runUtility } from '../federation/utility-bench.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

export function structuredData(rows: number, attrs: number, seed: number): Dataset {
  const sizes = Array.from({ length: attrs }, (_, j) => 2 + ((j * 7) % 9));
  const domain = new Domain(
    sizes.map((_, j) => `x${j}`),
    sizes,
  );
  const rng = new Rng(seed);
  const cols = sizes.map((s) => allocColumn(s, rows));
  for (let j = 0; j < attrs; j++) {
    const col = cols[j];
    const s = sizes[j];
    if (j === 0) {
      for (let r = 0; r < rows; r++) col[r] = rng.nextInt(s);
      continue;
    }
    const parent = cols[(j - 1) >> 1];
    for (let r = 0; r < rows; r++) col[r] = rng.next() < 0.75 ? (parent[r] * 3 + j) % s : rng.nextInt(s);
  }
  return new Dataset(domain, cols, rows);
}

async function main(): Promise<void> {
  const rows = arg('--rows', 1_000_000);
  const sites = arg('--sites', 100);
  const attrs = arg('--attrs', 50);
  const epsilon = arg('--epsilon', 1);
  const t0 = performance.now();
  const data = structuredData(rows, attrs, 1);
  const gen = performance.now() - t0;
  let peakHeap = 0;
  const note = () => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers));
  const r = await runUtility(data, {
    sites,
    split: 'heterogeneous',
    epsilon,
    delta: 1e-9,
    seed: 1,
    plan: 'aim',
    iterations: 500,
    threeWaySample: 200,
    onProgress: (m) => {
      note();
      const mem = process.memoryUsage();
      process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)}s rss ${(mem.rss / 2 ** 20).toFixed(0)} MB] ${m}\n`);
    },
  });
  note();
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  const out = {
    rows,
    sites,
    attrs,
    epsilon,
    generateSeconds: gen / 1000,
    fitSeconds: r.wallMs / 1000,
    siteAnswerSeconds: r.siteAnswerMs / 1000,
    rounds: r.rounds.map((x) => `${x.name}:${x.marginals}m/${x.cells}c`),
    rhoSpent: r.rhoSpent,
    rhoBudget: r.rhoBudget,
    modelCliques: r.modelCliques.length,
    modelCells: r.modelCells,
    largestClique: Math.max(...r.modelCliques.map((c) => c.length)),
    dropped: r.dropped,
    l1TwoWay: r.l1TwoWay,
    l1ThreeWaySample200: r.l1ThreeWay,
    peakRssMb: maxRssMb,
    peakHeapPlusBuffersMb: peakHeap / 2 ** 20,
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
