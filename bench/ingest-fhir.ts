// FHIR NDJSON ingest throughput against a bare baseline (not a test).
//   npx tsx bench/ingest-fhir.ts [--patients 20000] [--repeats 3]
// Data: one simulated site (fedsynth simulate, FHIR only) in a temp folder.
// Bare:      stream each file, split lines (readline), JSON.parse each line.
// Connector: NdjsonFhirSource (validation, quarantine bookkeeping) yielding every resource.
// Ingest:    readPatientTable = connector + FhirPatientEncoder (one row per patient).
// Printed as MB/s and as ratios of times (connector / bare); target: within 3×.
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadDefaultSchema, simulateFederation } from '../simulator/index.ts';
import { listNdjsonFiles, NdjsonFhirSource } from '../site-agent/connectors/fhir-ndjson.ts';
import { Quarantine } from '../site-agent/connectors/types.ts';
import { readPatientTable } from '../site-agent/patients.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const PATIENTS = arg('patients', 20_000);
const REPEATS = arg('repeats', 3);

const root = mkdtempSync(join(tmpdir(), 'fedsynth-bench-fhir-'));
try {
  const sim = await simulateFederation({ sites: 1, patients: PATIENTS, seed: 1, outDir: root, modalities: ['fhir'] });
  const dir = sim.sites[0]!.dir;
  const files = await listNdjsonFiles(dir);
  const bytes = files.reduce((a, f) => a + statSync(f.path).size, 0);
  const types = [...new Set(files.map((f) => f.resourceType))];
  const schema = loadDefaultSchema();

  const bare = async (): Promise<number> => {
    let n = 0;
    for (const f of files) {
      const rl = createInterface({ input: createReadStream(f.path), crlfDelay: Infinity });
      for await (const line of rl) {
        if (line.length === 0) continue;
        const v = JSON.parse(line) as { resourceType?: string };
        if (v.resourceType) n++;
      }
    }
    return n;
  };
  const connector = async (): Promise<number> => {
    let n = 0;
    const q = new Quarantine();
    for await (const r of new NdjsonFhirSource(dir).resources(types, q)) if (r.resourceType) n++;
    if (q.records.length) throw new Error(`unexpected quarantine: ${q.records[0]!.reason}`);
    return n;
  };
  const ingest = async (): Promise<number> => (await readPatientTable(new NdjsonFhirSource(dir), schema)).table.n;

  const best = { bare: Infinity, connector: Infinity, ingest: Infinity };
  const counts = { bare: 0, connector: 0, ingest: 0 };
  for (let r = 0; r < REPEATS; r++) {
    // Alternate so every variant sees the same machine load.
    for (const [k, fn] of [
      ['bare', bare],
      ['connector', connector],
      ['ingest', ingest],
    ] as const) {
      const t0 = performance.now();
      counts[k] = await fn();
      best[k] = Math.min(best[k], performance.now() - t0);
    }
  }
  if (counts.bare !== counts.connector) throw new Error(`resource counts differ: bare ${counts.bare}, connector ${counts.connector}`);
  const mb = bytes / 2 ** 20;
  const rate = (ms: number) => (mb / (ms / 1000)).toFixed(1);
  console.log(
    `FHIR NDJSON: ${files.length} files, ${mb.toFixed(1)} MiB, ${counts.bare} resources, ${counts.ingest} patients (best of ${REPEATS})`,
  );
  console.log(`  bare line split + JSON.parse   ${best.bare.toFixed(0).padStart(6)} ms  ${rate(best.bare)} MB/s`);
  console.log(
    `  NdjsonFhirSource               ${best.connector.toFixed(0).padStart(6)} ms  ${rate(best.connector)} MB/s  ratio ${(best.connector / best.bare).toFixed(2)}×`,
  );
  console.log(
    `  readPatientTable (+ encoding)  ${best.ingest.toFixed(0).padStart(6)} ms  ${rate(best.ingest)} MB/s  ratio ${(best.ingest / best.bare).toFixed(2)}×`,
  );
  console.log(
    `  target: within 3× of the bare baseline → connector ${best.connector / best.bare <= 3 ? 'OK' : 'MISSED'}, ingest ${best.ingest / best.bare <= 3 ? 'OK' : 'MISSED'}`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
