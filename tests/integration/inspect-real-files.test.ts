// `fedsynth agent inspect` on the real public sample files in ../shared/data (or
// $FEDSYNTH_SAMPLE_DATA): Synthea FHIR NDJSON with DocumentReference notes, the real DICOM
// objects (several transfer syntaxes, a truncated file, non-chest modalities), a real
// multi-sample VCF and real note files. Expected counts are computed from the files directly.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSchema, snpPanel } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { runInspectCommand } from '../../cli/inspect.ts';
import { inspectSite } from '../../site-agent/inspect.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { readVcfHeader } from '../../site-agent/connectors/vcf/index.ts';

const dataRoot = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
const present =
  existsSync(join(dataRoot, 'fhir', 'synthea-10')) && existsSync(join(dataRoot, 'dicom')) && existsSync(join(dataRoot, 'vcf'));
if (!present) console.warn(`[skip] real sample files not found at ${dataRoot}; set FEDSYNTH_SAMPLE_DATA to run inspect on them`);
const tmp = mkdtempSync(join(tmpdir(), 'fedsynth-real-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ndjson = (f: string) =>
  readFileSync(join(dataRoot, 'fhir', 'synthea-10', f), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

describe.skipIf(!present)('inspect on the real sample files', () => {
  it('Synthea NDJSON + its DocumentReference notes + real DICOMs + a real VCF: counts match the files', async () => {
    const patients = ndjson('Patient.000.ndjson');
    const docs = ndjson('DocumentReference.000.ndjson');
    // A schema with the multimodal attributes plus two SNPs present in 1000genomes.vcf (haploid chrY).
    const text = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace(
      '  # Image findings:',
      '  - { name: snp_real_1, kind: snp, chrom: "Y", pos: 2655180, ref: G, alt: A, rsid: rs11575897 }\n  - { name: snp_real_2, kind: snp, chrom: "Y", pos: 2655471, ref: A, alt: C }\n\n  # Image findings:',
    );
    const schemaPath = join(tmp, 'schema.yaml');
    writeFileSync(schemaPath, text);
    const schema = parseSchema(text);
    // Map the first three VCF samples to three Synthea patients; the others stay unlinked.
    const vcfPath = join(dataRoot, 'vcf', '1000genomes.vcf');
    const header = (await readVcfHeader(vcfPath, new Quarantine()))!;
    const mapPath = join(tmp, 'samples.tsv');
    writeFileSync(
      mapPath,
      header.samples
        .slice(0, 3)
        .map((s, i) => `${s}\t${patients[i].id}`)
        .join('\n') + '\n',
    );
    const cfgPath = join(tmp, 'site.yaml');
    writeFileSync(
      cfgPath,
      [
        `schema: ${JSON.stringify(schemaPath)}`,
        'data:',
        `  fhirNdjson: ${JSON.stringify(join(dataRoot, 'fhir', 'synthea-10'))}`,
        '  fhirNotes: true',
        `  dicom: ${JSON.stringify(join(dataRoot, 'dicom'))}`,
        `  vcf: ${JSON.stringify(vcfPath)}`,
        `  notes: ${JSON.stringify(join(dataRoot, 'notes', 'ctakes-synthetic'))}`,
        '  linkage:',
        '    key: id',
        `    vcfSampleMap: ${JSON.stringify(mapPath)}`,
      ].join('\n') + '\n',
    );
    const out: string[] = [];
    const err: string[] = [];
    expect(await runInspectCommand(['--config', cfgPath, '--json'], { out: (t) => out.push(t), err: (t) => err.push(t) })).toBe(0);
    expect(err).toEqual([]);
    const r = JSON.parse(out.join('\n'));

    // FHIR: every Synthea patient has birthDate and gender: one row each.
    expect(r.patients.fhir).toBe(patients.length);
    // Notes: DocumentReferences link by subject; at most maxNotesPerPatient (20) per patient.
    const perPatient = new Map<string, number>();
    for (const d of docs) perPatient.set(d.subject.reference.split('/')[1], (perPatient.get(d.subject.reference.split('/')[1]) ?? 0) + 1);
    const bound = schema.notes!.maxNotesPerPatient;
    const used = [...perPatient.values()].reduce((a, n) => a + Math.min(n, bound), 0);
    const over = [...perPatient.values()].reduce((a, n) => a + Math.max(0, n - bound), 0);
    expect(r.patients.withNotes).toBe(perPatient.size);
    expect(r.linkage.note.beyondBound).toBe(over);
    // The ctakes note files are named by ids of another data set: all unlinked.
    const noteFiles = readdirSync(join(dataRoot, 'notes', 'ctakes-synthetic')).filter((f) => f.endsWith('.txt')).length;
    expect(r.linkage.note.unlinked).toBe(noteFiles);
    expect(r.linkage.note.linked).toBe(used + over);
    // DICOM: the chest radiograph (DX) and the CR are schema images whose PatientIDs match no patient;
    // CT/MR/US/SC objects are other images; undecodable files are quarantined with their reason.
    expect(r.linkage.dicom.linked).toBe(0);
    expect(r.linkage.dicom.artefacts).toBeGreaterThanOrEqual(1);
    expect(r.linkage.dicom.unlinkedExamples).toContain('Covid0000');
    expect(r.details.dicom.otherImages).toBeGreaterThanOrEqual(5);
    expect(r.quarantine.byReason['dicom: truncated file']).toBe(1);
    // Compressed files (JPEG 2000, JPEG lossless/baseline) are decoded now, never quarantined for their transfer syntax.
    expect(Object.keys(r.quarantine.byReason).some((k) => /transfer syntax|compressed|codec/i.test(k))).toBe(false);
    // VCF: every sample read; the three mapped ones link; both real SNPs found; haploid calls.
    expect(r.linkage.vcf.artefacts).toBe(header.samples.length);
    expect(r.linkage.vcf.linked).toBe(3);
    expect(r.linkage.vcf.unlinked).toBe(header.samples.length - 3);
    expect(r.patients.withGenome).toBe(3);
    expect(r.coverage.snpPanelFound).toBe(2);
    // The GWAS panel's autosomal SNPs are not in this chrY file.
    const gwas = snpPanel(schema).length - 2;
    expect(r.coverage.snpPanelMissing).toHaveLength(gwas);
    // Call rate over the whole panel for 3 genomes: the 2 real SNPs are called (haploid 0/1).
    expect(r.coverage.snpCallRate).toBeCloseTo((3 * 2) / (3 * (gwas + 2)), 4);
  }, 30_000);

  it('one bad file never stops inspect: the real folders with garbage added', async () => {
    const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
    const notesDir = join(tmp, 'notes');
    (await import('node:fs')).mkdirSync(notesDir, { recursive: true });
    for (const f of readdirSync(join(dataRoot, 'notes', 'ctakes-curated')).slice(0, 30))
      writeFileSync(join(notesDir, f), readFileSync(join(dataRoot, 'notes', 'ctakes-curated', f)));
    writeFileSync(join(notesDir, 'binary.txt'), Buffer.from([0, 1, 2, 0xff, 0xfe]));
    const r = await inspectSite(
      {
        data: {
          kind: 'fhir-ndjson',
          dir: join(dataRoot, 'fhir', 'synthea-10'),
          dicom: join(dataRoot, 'dicom'),
          vcf: join(dataRoot, 'vcf', 'cyvcf2_test.vcf.gz'),
          notes: notesDir,
        },
      },
      schema,
    );
    expect(r.patients.fhir).toBe(13);
    expect(r.linkage.note.artefacts).toBe(30);
    expect(r.quarantine.byReason['note: not valid UTF-8']).toBe(1);
    expect(r.linkage.vcf.artefacts).toBe(189);
  }, 30_000);
});
