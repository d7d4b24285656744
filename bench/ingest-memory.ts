// Peak memory of the site agent's streaming reads against the size of the data: memory must stay
// bounded with 100k patients and 10 GB of images. Not a test.
//
//   npx tsx bench/ingest-memory.ts [--patients 100000] [--gb 10] [--size 2048] [--keep DIR]
//
// Generation and reading run in separate processes, so the reader's peak RSS
// (process.resourceUsage().maxRSS) is its own:
//   FHIR:  the simulator writes one site of --patients patients as Bulk NDJSON; the reader runs
//          `readPatientTable` (NdjsonFhirSource → FhirPatientEncoder: one row per patient).
//   DICOM: --gb of 16-bit --size² DX files (one template, distinct file names); the reader runs
//          `readDicomFolder` and reduces every image to the schema's 64×64 grid, as the site does.
// Prints the data size, the reader's peak RSS, the RSS of an empty Node process for reference,
// and the throughput.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

const self = fileURLToPath(import.meta.url);
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;

async function readFhir(dir: string): Promise<void> {
  const { NdjsonFhirSource } = await import('../site-agent/connectors/fhir-ndjson.ts');
  const { readPatientTable } = await import('../site-agent/patients.ts');
  const { loadDefaultSchema } = await import('../simulator/index.ts');
  const t = performance.now();
  const res = await readPatientTable(new NdjsonFhirSource(dir), loadDefaultSchema());
  const ms = performance.now() - t;
  process.stdout.write(JSON.stringify({ patients: res.table.n, seconds: ms / 1000, peakRssMb: maxRssMb() }) + '\n');
}

async function readDicom(dir: string): Promise<void> {
  const { readDicomFolder, dicomGrid } = await import('../site-agent/connectors/dicom/index.ts');
  const { Quarantine } = await import('../site-agent/connectors/types.ts');
  const q = new Quarantine();
  const t = performance.now();
  let images = 0;
  let checksum = 0;
  for await (const img of readDicomFolder(dir, q)) {
    // What the site agent computes per image (site-agent/site-data.ts): the 64×64 grid.
    const grid = dicomGrid(img, { rows: 64, cols: 64 });
    checksum += grid[0]!;
    images++;
  }
  const ms = performance.now() - t;
  if (q.records.length > 0) throw new Error(`unexpected quarantine: ${q.records[0]!.reason}`);
  process.stdout.write(JSON.stringify({ images, seconds: ms / 1000, peakRssMb: maxRssMb(), checksum }) + '\n');
}

function child(mode: string, dir: string): Record<string, number> {
  const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', mode, '--dir', dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${mode} reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const mode = arg('child', '');
    const dir = arg('dir', '');
    if (mode === 'fhir') await readFhir(dir);
    else if (mode === 'dicom') await readDicom(dir);
    else if (mode === 'empty') process.stdout.write(JSON.stringify({ peakRssMb: maxRssMb() }) + '\n');
    return;
  }
  const patients = Number(arg('patients', '100000'));
  const gb = Number(arg('gb', '10'));
  const size = Number(arg('size', '2048'));
  const keep = arg('keep', '');
  const root = keep || mkdtempSync(join(tmpdir(), 'fedsynth-bench-memory-'));
  try {
    const empty = child('empty', root);
    // ---------------------------------------------------------------- FHIR
    const fhirDir = join(root, 'fhir');
    const { simulateFederation, siteId } = await import('../simulator/index.ts');
    let t = performance.now();
    await simulateFederation({ sites: 1, patients, seed: 1, outDir: fhirDir });
    const siteDir = join(fhirDir, siteId(0));
    const fhirBytes = dirBytes(siteDir);
    process.stderr.write(
      `[memory] wrote ${patients} patients (${(fhirBytes / 2 ** 20).toFixed(0)} MiB NDJSON) in ${((performance.now() - t) / 1000).toFixed(0)} s\n`,
    );
    const fhir = child('fhir', siteDir);
    // ---------------------------------------------------------------- DICOM
    const { writeDicomFixture } = await import('../site-agent/connectors/dicom/write.ts');
    const px = new Uint16Array(size * size);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 20;
    const template = writeDicomFixture({
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      attributes: {
        PatientID: 'P',
        Modality: 'DX',
        SamplesPerPixel: 1,
        PhotometricInterpretation: 'MONOCHROME2',
        Rows: size,
        Columns: size,
        BitsAllocated: 16,
        BitsStored: 12,
        HighBit: 11,
        PixelRepresentation: 0,
      },
      pixelValues: px,
    });
    const files = Math.ceil((gb * 2 ** 30) / template.length);
    const dicomDir = join(root, 'dicom');
    t = performance.now();
    for (let f = 0; f < files; f++) {
      const sub = join(dicomDir, String(Math.floor(f / 500)).padStart(3, '0'));
      if (f % 500 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `img${String(f).padStart(6, '0')}.dcm`), template);
    }
    const dicomBytes = files * template.length;
    process.stderr.write(
      `[memory] wrote ${files} DICOM files (${(dicomBytes / 2 ** 30).toFixed(1)} GiB) in ${((performance.now() - t) / 1000).toFixed(0)} s\n`,
    );
    const dicom = child('dicom', dicomDir);
    const out = {
      emptyNodeRssMb: Math.round(empty.peakRssMb!),
      fhir: {
        patients: fhir.patients,
        ndjsonMiB: Math.round(fhirBytes / 2 ** 20),
        readSeconds: +fhir.seconds!.toFixed(1),
        peakRssMb: Math.round(fhir.peakRssMb!),
      },
      dicom: {
        files,
        GiB: +(dicomBytes / 2 ** 30).toFixed(2),
        matrix: `${size}x${size}`,
        readSeconds: +dicom.seconds!.toFixed(1),
        imagesPerSecond: Math.round(dicom.images! / dicom.seconds!),
        peakRssMb: Math.round(dicom.peakRssMb!),
      },
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
