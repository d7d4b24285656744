// Linkage never guesses: unlinked and ambiguous artefacts are counted and not used; one image,
// one genome and one note set per patient; one bad file never stops the read.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchema, SNP_MISSING, type Schema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';
import { DicomEmitter } from '../../simulator/modalities.ts';
import { drawLatentPatient, SITE_PROFILES } from '../../simulator/latent.ts';
import { Rng } from '../../model/rng.ts';
import { PatientKeyIndex, readSampleMap } from '../../site-agent/linkage.ts';
import { loadMultimodalSiteData } from '../../site-agent/site-data.ts';
import { NoteMentionEncoder } from '../../site-agent/features/notes.ts';
import { inspectSite } from '../../site-agent/inspect.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-link-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const schema: Schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const SYSTEM = 'urn:test:mrn';

function patient(id: string, mrn?: string) {
  return {
    resourceType: 'Patient',
    id,
    gender: 'female',
    birthDate: '1950-03-01',
    ...(mrn ? { identifier: [{ system: SYSTEM, value: mrn }] } : {}),
  };
}

describe('PatientKeyIndex', () => {
  it('links by id or identifier; shared keys are ambiguous; missing keys are counted', () => {
    const byId = new PatientKeyIndex();
    byId.addPatient(patient('p1', 'M1'));
    expect(byId.resolve('p1')).toEqual({ status: 'linked', patientId: 'p1' });
    expect(byId.resolve('M1')).toEqual({ status: 'unlinked' });
    const byMrn = new PatientKeyIndex({ key: 'identifier', identifierSystem: SYSTEM });
    byMrn.addPatient(patient('p1', 'M1'));
    byMrn.addPatient(patient('p2', 'M2'));
    byMrn.addPatient(patient('p3', 'M2')); // two patients claim MRN M2
    byMrn.addPatient(patient('p4'));
    byMrn.addPatient({ ...patient('p5'), identifier: [{ system: 'urn:other', value: 'M1' }] });
    expect(byMrn.resolve('M1')).toEqual({ status: 'linked', patientId: 'p1' });
    expect(byMrn.resolve('M2')).toEqual({ status: 'ambiguous' });
    expect(byMrn.resolve('M9')).toEqual({ status: 'unlinked' });
    expect(byMrn.patientsWithoutKey).toBe(2);
    expect(() => new PatientKeyIndex({ key: 'identifier' })).toThrow(/identifierSystem/);
  });

  it('sample maps: a sample listed with two keys is ambiguous; bad lines are reported', async () => {
    const p = join(root, 'map.tsv');
    writeFileSync(p, 'sample\tmrn\nS1\tM1\nS2\tM2\nS2\tM3\nS1\tM1\nbroken-line\n');
    const m = await readSampleMap(p);
    expect(m.map.get('S1')).toBe('M1');
    expect(m.map.get('S2')).toBeNull();
    expect(m.ambiguousSamples).toEqual(['S2']);
    expect(m.badLines).toEqual([6]);
  });
});

describe('note mentions', () => {
  it('counts terms, skips negated ones, respects sections', () => {
    const enc = new NoteMentionEncoder(schema);
    const names = enc.attributes.map((a) => a.name);
    const flags = (t: string) => Object.fromEntries(names.map((n, i) => [n.replace('note_', ''), enc.mentions(t)[i]]).filter(([, v]) => v));
    expect(flags('ASSESSMENT:\nCommunity-acquired pneumonia. HTN, T2DM.')).toEqual({ pneumonia: 1, hypertension: 1, type2_diabetes: 1 });
    expect(flags('No evidence of pneumonia. Denies asthma. Lungs clear without opacity. Heart size normal, no cardiomegaly.')).toEqual({});
    expect(flags('History of coronary artery disease and congestive heart failure; small nodule in the left lung.')).toEqual({
      coronary_artery_disease: 1,
      heart_failure: 1,
      nodule: 1,
    });
    const sectioned = parseSchema(
      readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8').replace(
        '{ name: note_pneumonia, kind: note-mention, terms: [pneumonia] }',
        '{ name: note_pneumonia, kind: note-mention, terms: [pneumonia], sections: [assessment] }',
      ),
    );
    const e2 = new NoteMentionEncoder(sectioned);
    const k = e2.attributes.findIndex((a) => a.name === 'note_pneumonia');
    expect(e2.mentions('HISTORY:\nPneumonia in 2010.\n\nIMPRESSION:\nWell.')[k]).toBe(0);
    expect(e2.mentions('HISTORY:\nWell.\n\n# Impression\nLobar pneumonia.')[k]).toBe(1);
  });
});

describe('loadMultimodalSiteData: linkage edge cases', () => {
  const dir = join(root, 'site');
  beforeAll(() => {
    mkdirSync(join(dir, 'fhir'), { recursive: true });
    const pts = [
      patient('p1', 'M1'),
      patient('p2', 'M2'),
      patient('p3', 'M3'),
      patient('p4', 'M3'),
      patient('p5', 'M5'),
      { resourceType: 'Patient', id: 'p6', identifier: [{ system: SYSTEM, value: 'M6' }] },
    ];
    writeFileSync(join(dir, 'fhir', 'Patient.ndjson'), pts.map((p) => JSON.stringify(p)).join('\n') + '\n{not json\n');
    // Images: two of M1 (one wins), one of M3 (ambiguous MRN), one of an unknown MRN, one of M6 (no row), a garbage file.
    const rng = new Rng('link');
    const em = new DicomEmitter(dir, SITE_PROFILES[0]!, 'hospital-a', 64, '2025-01-01');
    const base = drawLatentPatient(SITE_PROFILES[0]!, 'hospital-a', 0, '2025-01-01', rng.fork('p'));
    for (const [mrn, k] of [
      ['M1', 0],
      ['M3', 1],
      ['M404', 2],
      ['M6', 3],
    ] as const)
      em.write({ ...base, mrn, imaged: true, findings: { opacity: false, nodule: false, cardiomegaly: false } }, rng.fork(k));
    writeFileSync(join(dir, 'dicom', 'garbage.dcm'), Buffer.from('this is not a DICOM file at all, just text'));
    // VCF: S1→M1, S2 and S2b → M2 (two samples, one patient), S3 listed twice, S9 unmapped; a bad line in the middle.
    const head =
      '##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS2b\tS3\tS9\n';
    const snp = schema.attributes.find((a) => a.name === 'snp_apoe_e4')!;
    const snp2 = schema.attributes.find((a) => a.name === 'snp_apoe_e2')!;
    if (snp.kind !== 'snp' || snp2.kind !== 'snp') throw new Error('no snp');
    writeFileSync(
      join(dir, 'g.vcf'),
      head +
        `${snp.chrom}\t${snp.pos}\t.\t${snp.ref}\t${snp.alt}\t50\tPASS\t.\tGT\t0|1\t1|1\t0|0\t./.\t1|0\n` +
        'garbage line without tabs\n' +
        // The second SNP exported with REF/ALT swapped: read re-oriented (and reported), not dropped.
        `${snp2.chrom}\t${snp2.pos}\t.\t${snp2.alt}\t${snp2.ref}\t50\tPASS\t.\tGT\t0/0\t0/1\t1/1\t1/1\t1/1\n`,
    );
    writeFileSync(join(dir, 'map.tsv'), 'S1\tM1\nS2\tM2\nS2b\tM2\nS3\tM5\nS3\tM1\n');
    // Notes: M1 twice, M5, an unknown MRN, a file whose name has no id, a non-UTF-8 file.
    mkdirSync(join(dir, 'notes'));
    writeFileSync(join(dir, 'notes', 'M1_20240101.txt'), 'Patient: Jane Doe\nMRN: M1\nIMPRESSION:\nPneumonia.\n');
    writeFileSync(join(dir, 'notes', 'M1_20240202.txt'), 'IMPRESSION:\nNo pneumonia. Asthma.\n');
    writeFileSync(join(dir, 'notes', 'M5_20240101.txt'), 'Denies asthma.\n');
    writeFileSync(join(dir, 'notes', 'M77_20240101.txt'), 'Asthma.\n');
    writeFileSync(join(dir, 'notes', '_untitled.txt'), 'Asthma.\n');
    writeFileSync(join(dir, 'notes', 'M2_bad.txt'), Buffer.from([0x41, 0xff, 0xfe, 0x42]));
  });

  const cfg = () => ({
    data: {
      kind: 'fhir-ndjson' as const,
      dir: join(dir, 'fhir'),
      dicom: join(dir, 'dicom'),
      vcf: join(dir, 'g.vcf'),
      notes: join(dir, 'notes'),
      linkage: {
        key: 'identifier' as const,
        identifierSystem: SYSTEM,
        vcfSampleMap: join(dir, 'map.tsv'),
        notesPattern: '^(?<patientId>[^_]+)_',
      },
    },
  });

  it('counts unlinked and ambiguous artefacts, never guesses, and keeps one artefact per patient', async () => {
    const site = await loadMultimodalSiteData(cfg(), schema);
    expect(site.patients).toBe(5); // p6 has no gender/birthDate: quarantined by the FHIR encoder
    expect(site.patientIds).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    const L = site.stats.linkage;
    // Images: M1 ×2 (1 over the bound), M3 ambiguous, M404 unlinked, M6 without a row → unlinked.
    expect(L.dicom).toMatchObject({ artefacts: 5, linked: 2, ambiguous: 1, unlinked: 2, beyondBound: 1, patients: 1 });
    // Samples: S1 linked; S2/S2b reach one patient (both dropped); S3 ambiguous in the map; S9 unmapped.
    expect(L.vcf).toMatchObject({ artefacts: 5, linked: 1, ambiguous: 3, unlinked: 1, patients: 1 });
    // Notes: two of M1 and one of M5 linked; M77 and the nameless file unlinked; the bad file quarantined.
    expect(L.note).toMatchObject({ linked: 3, unlinked: 2, patients: 2 });
    const col = (name: string) => site.data.columns[schema.attributes.findIndex((a) => a.name === name)]!;
    expect([...col('img_opacity')]).toEqual([0, 2, 2, 2, 2]); // only p1 has an image
    expect([...col('snp_apoe_e4')]).toEqual([1, SNP_MISSING, SNP_MISSING, SNP_MISSING, SNP_MISSING]);
    expect([...col('snp_apoe_e2')]).toEqual([2, SNP_MISSING, SNP_MISSING, SNP_MISSING, SNP_MISSING]);
    expect(site.stats.vcf!.alleleFlips).toEqual([{ entry: 'rs7412', line: 6, how: 'swapped', reason: expect.any(String) }]);
    expect([...col('note_pneumonia')]).toEqual([1, 2, 2, 2, 0]);
    expect([...col('note_asthma')]).toEqual([1, 2, 2, 2, 0]);
    const reasons = site.quarantine.countsByReason();
    expect(reasons['fhir: invalid JSON']).toBe(1);
    expect(reasons['vcf: malformed line']).toBe(1);
    expect(reasons['note: not valid UTF-8']).toBe(1);
    expect(Object.keys(reasons).some((k) => k.startsWith('dicom: '))).toBe(true);
  });

  it('inspect survives missing sources: each becomes a quarantine line, not a crash', async () => {
    const c = cfg();
    const r = await inspectSite(
      { data: { ...c.data, dicom: join(dir, 'nope'), vcf: join(dir, 'nope.vcf'), notes: join(dir, 'nope-notes') } },
      schema,
    );
    expect(r.patients.fhir).toBe(5);
    expect(r.patients.withImage + r.patients.withGenome + r.patients.withNotes).toBe(0);
    expect(Object.keys(r.quarantine.byReason).filter((k) => /^(dicom|vcf|note): /.test(k)).length).toBeGreaterThanOrEqual(3);
  });
});
