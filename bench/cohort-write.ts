// Cross-modal cohort write throughput through the real path (not a test):
//   npx tsx bench/cohort-write.ts [--n 2000] [--warm 1000] [--workers 0,2] [--full 1] [--size 256] [--tmp DIR]
// Times `writeCohort` (synthesis/cohort.ts: what `fedsynth cohort`, the coordinator and the
// demo run) on a model fitted to a small simulated multimodal federation: sampling, plausibility,
// per patient a FHIR Bundle validated against R4 (memoised by exact shape) and written as
// NDJSON, a 256×256 16-bit DICOM parsed back with dicom-parser, a PNG preview, a VCF parsed back,
// a verified note. `--full 1` conditions the cohort on every patient having an image, a genome
// and a note (the issue's "full cross-modal patient"); `--full 0` keeps the model's own mix.
// `--workers` lists the worker-thread counts to run (0 = this thread only).
// Baseline, same run: writing the very bytes of that cohort (every file, same layout) without
// generating them. Reports patients/s and the ratio generate+validate+write / write-only.
// A first cohort of `--warm` patients runs before the timed one and is reported on its own (its
// rate includes worker start-up and the JIT compiling the hot code in each fresh worker, which
// takes several hundred patients per worker): the timed cohort is what a process that keeps its
// pool (the coordinator) delivers; `--warm 0` times a fresh pool instead. `--tmp` puts
// the cohorts elsewhere (e.g. /dev/shm, to take a shared disk's write-back stalls out of both sides).
// On Linux the timed cohort's CPU is also split by thread (main, each worker, V8's helper threads).
// With --workers 0 it also counts the radiographs drawn and how many were redraws (a finding
// that did not read back), which workers keep to themselves.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCohort } from '../synthesis/cohort.ts';
import { synthStats } from '../modalities/image/radiograph-synth.ts';
import type { GraphicalModel } from '../model/pgm/index.ts';
import { centralModel, pooledMultimodal } from '../tests/integration/cohort-multimodal-helpers.ts';
import { fullCrossModal } from './support/full-cross-modal.ts';

const USAGE = `usage: npx tsx bench/cohort-write.ts [--n 2000] [--warm 1000] [--workers 0,2] [--full 1] [--size 256] [--tmp DIR]
  --n        patients in the timed cohort (positive integer)
  --warm     patients in the untimed cohort before it, 0 for none (JIT warm-up and the worker pool's start-up)
  --workers  worker-thread counts to run, comma-separated (0 = this thread only)
  --full     1: every patient with an image, a genome and a note; 0: the model's own mix
  --size     DICOM side in pixels (at least 16)
  --tmp      folder for the cohorts (e.g. /dev/shm)
Prints patients/s, CPU ms per patient over all threads and by thread, and (one thread) the radiographs redrawn.`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const N = Number(arg('n', '2000'));
const WARM = Number(arg('warm', '1000'));
const WORKERS = arg('workers', '0,2').split(',').map(Number);
const FULL = arg('full', '1') !== '0';
const SIZE = Number(arg('size', '256'));
const TMP = arg('tmp', tmpdir());
if (
  !Number.isInteger(N) ||
  N < 1 ||
  !Number.isInteger(WARM) ||
  WARM < 0 ||
  WORKERS.some((w) => !Number.isInteger(w) || w < 0) ||
  !Number.isInteger(SIZE) ||
  SIZE < 16
) {
  console.error(`bad value among --n ${N}, --warm ${WARM}, --workers ${WORKERS.join(',')}, --size ${SIZE}\n${USAGE}`);
  process.exit(2);
}

/** Every file under dir, relative path → bytes. */
function readTree(dir: string, rel = '', out = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = join(rel, e.name);
    if (e.isDirectory()) readTree(dir, r, out);
    else out.set(r, readFileSync(join(dir, r)));
  }
  return out;
}

/** Writes the same files to a fresh folder, one call per file as the cohort does; ms. */
function writeOnly(files: Map<string, Buffer>, dir: string): number {
  const t0 = performance.now();
  const dirs = new Set<string>();
  for (const rel of files.keys()) dirs.add(join(dir, rel, '..'));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  for (const [rel, bytes] of files) writeFileSync(join(dir, rel), bytes);
  return performance.now() - t0;
}

/**
 * CPU ticks (user + system, 1/100 s) of each thread of this process (Linux /proc; empty elsewhere),
 * so the report can say which thread spends the time: the main thread, the cohort workers or
 * V8's own helper threads (GC, compiler), which process.cpuUsage() lumps together.
 */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, Number(f[11]) + Number(f[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const root = mkdtempSync(join(TMP, 'fedsynth-cohort-write-'));
try {
  const fit0 = performance.now();
  const sim = await pooledMultimodal(join(root, 'sites'), { patients: 300 });
  const model: GraphicalModel = centralModel(sim.pooled);
  const schema = sim.schema;
  const where = FULL ? fullCrossModal(schema) : undefined;
  console.log(
    `cores available: ${availableParallelism()}; ${N} patients${FULL ? ' (all with image, genome and note)' : ' (the model’s mix)'}; ${SIZE}×${SIZE} DICOM; files under ${TMP}; model fitted in ${((performance.now() - fit0) / 1000).toFixed(1)} s (not timed)`,
  );
  console.log(`load average before: ${load()}`);
  let run = 0;
  for (const workers of WORKERS) {
    const modalities = { workers, imageRows: SIZE, imageCols: SIZE };
    // First cohort: JIT warm-up and, with workers, the pool's start-up (reported, not in the rate).
    const c0 = performance.now();
    if (WARM > 0) await writeCohort(schema, model, { n: WARM, seed: `warm-${workers}`, where, dir: join(root, `warm-${run}`), modalities });
    const coldMs = performance.now() - c0;
    rmSync(join(root, `warm-${run}`), { recursive: true, force: true });
    const dir = join(root, `gen-${run}`);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const ticks0 = threadTicks();
    const stats0 = { ...synthStats, redrawnBy: { ...synthStats.redrawnBy } };
    const res = await writeCohort(schema, model, { n: N, seed: 7, where, dir, modalities });
    const genMs = performance.now() - t0;
    // CPU time of every thread of the process (user + system), which a busy machine inflates less than the wall clock.
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const ticks = [...threadTicks()].map(([tid, t]) => [tid, (t - (ticks0.get(tid) ?? 0)) * 10] as const).filter(([, ms]) => ms > 0);
    const m = res.modalities!;
    const files = readTree(dir);
    let bytes = 0;
    for (const b of files.values()) bytes += b.length;
    const bareMs = writeOnly(files, join(root, `bare-${run}`));
    const patients = res.dataset.rows;
    const label = workers === 0 ? '1 thread' : `${workers} workers`;
    console.log(
      `${label}: ${(patients / (genMs / 1000)).toFixed(0)} patients/s sample+generate+validate+write; write-only ${(patients / (bareMs / 1000)).toFixed(0)} patients/s; ratio ${(genMs / bareMs).toFixed(1)}×; ` +
        `${files.size} files, ${(bytes / patients / 1024).toFixed(1)} KiB/patient; ${WARM > 0 ? `first (warm-up) cohort of ${WARM}: ${(coldMs / 1000).toFixed(2)} s, ${(WARM / (coldMs / 1000)).toFixed(0)} patients/s${workers ? ' incl. worker start-up' : ''}; ` : 'no warm-up (fresh JIT); '}` +
        `CPU ${(cpuMs / patients).toFixed(2)} ms/patient over all threads (${(cpuMs / genMs).toFixed(2)} cores busy)`,
    );
    console.log(
      `  ${patients} patients: ${m.images.written} images (${m.images.previews} previews), ${m.genomes.written} genomes, ${m.notes.written} notes; ${m.fhir.bundlesValidated} Bundles validated, ${m.fhir.validatorShapes} resource shapes; note rejection rate ${m.notes.stats.rejectionRate.toFixed(3)}; load average ${load()}`,
    );
    // Images made in this thread only (a worker counts its own): the draws the read-back rejected.
    const images = synthStats.images - stats0.images;
    if (workers === 0 && images > 0)
      console.log(
        `  radiographs: ${images} drawn for ${m.images.written} images, ${synthStats.redrawn - stats0.redrawn} of them redraws (${(((synthStats.redrawn - stats0.redrawn) / images) * 100).toFixed(1)} % of draws), ${synthStats.enforced - stats0.enforced} grids enforced`,
      );
    if (workers === 0 && images > 0) {
      // Why a draw was rejected: the row's age band (lower edge) and the first attribute read wrong.
      const why = Object.entries(synthStats.redrawnBy)
        .map(([k, c]) => [k, c - (stats0.redrawnBy[k] ?? 0)] as const)
        .filter(([, c]) => c > 0)
        .sort((a, b) => b[1] - a[1]);
      console.log(`  redraws by age band and first attribute read wrong: ${why.map(([k, c]) => `${k} ${c}`).join('; ')}`);
    }
    if (ticks.length > 0) {
      const main = String(process.pid);
      const parts = ticks
        .sort((a, b) => b[1] - a[1])
        .map(([tid, ms]) => `${tid === main ? 'main' : tid} ${(ms / patients).toFixed(2)}`)
        .join(', ');
      console.log(`  CPU ms/patient by thread (10 ms ticks): ${parts}`);
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(root, `bare-${run}`), { recursive: true, force: true });
    run++;
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
