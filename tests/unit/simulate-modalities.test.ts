// The simulator's other modalities: deterministic, FHIR unchanged by them, real formats that the
// site connectors read back, identifiers where a hospital would have them.
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateFederation, type SimulationSummary } from '../../simulator/index.ts';
import { DX_SOP_CLASS, CR_SOP_CLASS } from '../../simulator/radiograph.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { readDicomFolder } from '../../site-agent/connectors/dicom/index.ts';
import { readVcfHeader } from '../../site-agent/connectors/vcf/index.ts';
import { readNotesFolder } from '../../site-agent/connectors/notes/index.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-simmod-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name).slice(dir.length), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}

describe('simulate: DICOM, VCF and notes', () => {
  let a: SimulationSummary;
  let truth: any;
  beforeAll(async () => {
    a = await simulateFederation({
      sites: 2,
      patients: 60,
      seed: 5,
      outDir: join(root, 'a'),
      modalities: ['fhir', 'dicom', 'vcf', 'notes'],
      imageSize: 64,
      vcfBgzip: true,
    });
    truth = JSON.parse(readFileSync(a.truthPath, 'utf8'));
  }, 30_000);

  it('same seed → byte-identical output; FHIR files are the same with or without other modalities', async () => {
    const b = await simulateFederation({
      sites: 2,
      patients: 60,
      seed: 5,
      outDir: join(root, 'b'),
      modalities: ['fhir', 'dicom', 'vcf', 'notes'],
      imageSize: 64,
      vcfBgzip: true,
    });
    const ta = tree(a.outDir);
    const tb = tree(b.outDir);
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [k, v] of ta) if (!k.endsWith('inspect.yaml')) expect(v.equals(tb.get(k)!), k).toBe(true);
    const fhirOnly = await simulateFederation({ sites: 2, patients: 60, seed: 5, outDir: join(root, 'c') });
    for (const f of ['Patient.ndjson', 'Condition.ndjson', 'Observation.ndjson']) {
      expect(readFileSync(join(fhirOnly.outDir, 'hospital-b', f)).equals(ta.get(`/hospital-b/${f}`)!), f).toBe(true);
    }
  }, 30_000);

  it('DICOM: proper DX/CR objects with consistent UIDs and PatientID = MRN; the connector exposes no name', async () => {
    const dir = join(a.sites[1]!.dir, 'dicom');
    const mrns = new Set(
      readFileSync(join(a.sites[1]!.dir, 'Patient.ndjson'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).identifier[0].value),
    );
    const q = new Quarantine();
    const images = [];
    for await (const img of readDicomFolder(dir, q)) images.push(img);
    expect(q.records.map((r) => r.reason)).toEqual(['truncated file']);
    expect(images.length).toBe(truth.siteMixes[1].modalities.dicom.files - 1);
    for (const img of images) {
      expect(img.modality).toBe('CR'); // the cardiac site's scanner
      expect(img.sopClassUid).toBe(CR_SOP_CLASS);
      expect(img.photometricInterpretation).toBe('MONOCHROME1');
      expect(img.inverted).toBe(true);
      expect(img.rows).toBe(64);
      expect(img.studyInstanceUid).toMatch(/^2\.25\.\d+$/);
      expect(img.sopInstanceUid).not.toBe(img.seriesInstanceUid);
      expect(Object.keys(img)).not.toContain('patientName');
    }
    const linked = images.filter((i) => mrns.has(i.patientId!));
    expect(images.length - linked.length).toBe(1); // the planted orphan
    // The repeat image shares its study with the patient's first image.
    const byPatient = new Map<string, string[]>();
    for (const i of linked) byPatient.set(i.patientId!, [...(byPatient.get(i.patientId!) ?? []), i.studyInstanceUid!]);
    const repeats = [...byPatient.values()].filter((s) => s.length > 1);
    expect(repeats).toHaveLength(1);
    expect(new Set(repeats[0]).size).toBe(1);
    // The raw file does carry name and birth date, as a modality would write them.
    const first = join(
      dir,
      readdirSync(dir).find((d) => d.startsWith('MRN'))!,
    );
    const file = join(first, readdirSync(first)[0]!);
    const ds = dicomParser.parseDicom(new Uint8Array(readFileSync(file)));
    expect(ds.string('x00100010')).toMatch(/\^/);
    expect(ds.string('x00100030')).toMatch(/^\d{8}$/);
    expect([DX_SOP_CLASS, CR_SOP_CLASS]).toContain(ds.string('x00020002'));
  });

  it('VCF: BGZF readable, one sample per sequenced patient plus the orphan; sample map to MRNs', async () => {
    const site = a.sites[0]!;
    const h = (await readVcfHeader(join(site.dir, 'genomes.vcf.gz'), new Quarantine()))!;
    expect(h.fileformat).toBe('VCFv4.2');
    expect(h.samples.length).toBe(truth.siteMixes[0].modalities.vcf.samples);
    const map = readFileSync(join(site.dir, 'vcf-samples.tsv'), 'utf8').trim().split('\n').slice(1);
    expect(map.length).toBe(h.samples.length - 1);
    expect(map[0]).toMatch(/^BB-A-\d{6}\tMRN\d{7}$/);
    // BGZF: gzip members with the BC extra field, ending with the 28-byte EOF block.
    const bytes = readFileSync(join(site.dir, 'genomes.vcf.gz'));
    expect([...bytes.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 4]);
    expect(bytes.subarray(12, 14).toString('latin1')).toBe('BC');
    expect(bytes.subarray(bytes.length - 28).toString('hex')).toBe('1f8b08040000000000ff0600424302001b0003000000000000000000');
  });

  it('notes: identifier headers are in the files and stripped by the connector', async () => {
    const dir = join(a.sites[0]!.dir, 'notes');
    const files = readdirSync(dir);
    expect(files.length).toBe(truth.siteMixes[0].modalities.notes.files);
    const raw = readFileSync(join(dir, files[0]!), 'utf8');
    expect(raw).toMatch(/^Patient: \S+ \S+\nMRN: MRN\d{7}\nDOB: \d{4}-\d{2}-\d{2}/);
    const q = new Quarantine();
    for await (const note of readNotesFolder(dir, q)) {
      expect(note.text).not.toMatch(/MRN\d{7}|^Patient:|^DOB:|^Phone:/m);
      expect(note.patientId).toMatch(/^MRN\d{7}$/);
    }
    expect(q.records).toEqual([]);
    expect(new Set(truth.siteMixes.flatMap((s: any) => s.modalities.notes.styles)).size).toBeGreaterThanOrEqual(3);
  });
});
