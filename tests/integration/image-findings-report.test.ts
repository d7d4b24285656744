// Findings from the radiologist's coded report label the image; the pixel rules are the fallback.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSchema, type ImageFindingAttribute } from '../../schema/schema.ts';
import type { FhirResource } from '../../site-agent/connectors/types.ts';
import { ReportFindingIndex, reportFindingCodes } from '../../site-agent/features/image-findings-report.ts';
import { loadMultimodalSiteData } from '../../site-agent/site-data.ts';
import { writeDicomFixture, type SrItem } from '../../site-agent/connectors/dicom/write.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url), 'utf8'));
const findingAttrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
const sct = (code: string) => ({ coding: [{ system: 'http://snomed.info/sct', code }] });
const study = (id: string, uid: string): FhirResource => ({
  resourceType: 'ImagingStudy',
  id,
  identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
});
const report = (id: string, studyId: string, codes: string[], status = 'final'): FhirResource => ({
  resourceType: 'DiagnosticReport',
  id,
  status,
  imagingStudy: [{ reference: `ImagingStudy/${studyId}` }],
  conclusionCode: codes.map(sct),
});

describe('report labels (pure index)', () => {
  it('links DiagnosticReport → ImagingStudy → StudyInstanceUID in any order; present → last class, absent → 0', () => {
    const idx = new ReportFindingIndex();
    idx.add(report('r1', 's1', ['8186001', '786838002']));
    idx.add(study('s1', '1.2.3'));
    idx.add(study('s2', '1.2.4'));
    idx.add(report('r2', 's2', ['827032003']));
    idx.add(report('r3', 's3', ['999999999'])); // unknown code, unknown study
    idx.add(report('r4', 's2', ['233604007'], 'entered-in-error'));
    const l1 = idx.labelsFor('1.2.3')!;
    expect(reportFindingCodes(findingAttrs, l1)).toEqual(findingAttrs.map((a) => (a.name === 'img_opacity' ? 0 : 1)));
    expect(reportFindingCodes(findingAttrs, idx.labelsFor('1.2.4')!)).toEqual([0, 0, 0]);
    expect(idx.labelsFor('9.9.9')).toBeUndefined();
    expect(idx.labelledStudies).toBe(2);
  });

  it('a report whose codes are all outside the table leaves the study to the pixel rules', () => {
    const idx = new ReportFindingIndex();
    idx.add(study('s1', '1.2.3'));
    idx.add(report('r1', 's1', ['22298006']));
    expect(idx.labelsFor('1.2.3')).toBeUndefined();
    idx.addStructuredReport('1.2.3', ['46621007']);
    expect([...idx.labelsFor('1.2.3')!]).toEqual(['lung-opacity']);
  });
});

const dataRoot = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
const nih = join(dataRoot, 'dicom', 'nih_chest_xray_dx.dcm');
const NIH_STUDY = '1.3.6.1.4.1.11129.5.5.112507010803284478207522016832191866964708';

describe.skipIf(!existsSync(nih))('report labels on the real NIH chest radiograph', () => {
  const root = mkdtempSync(join(tmpdir(), 'fedsynth-report-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const dicom = join(root, 'dicom');
  mkdirSync(dicom);
  symlinkSync(nih, join(dicom, 'chest.dcm'));
  const site = (resources: FhirResource[]) => {
    const dir = mkdtempSync(join(root, 'fhir-'));
    writeFileSync(
      join(dir, 'Patient.ndjson'),
      JSON.stringify({ resourceType: 'Patient', id: 'Covid0000', gender: 'male', birthDate: '1940-01-01' }),
    );
    writeFileSync(
      join(dir, 'all.json'),
      JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) }),
    );
    return loadMultimodalSiteData({ data: { kind: 'fhir-ndjson', dir, dicom } }, schema);
  };
  const classes = (s: Awaited<ReturnType<typeof site>>) =>
    Object.fromEntries(findingAttrs.map((a) => [a.name, a.classes[s.data.columns[schema.attributes.indexOf(a)]![0]!]]));

  it('without a report the pixel rules label it (they agree with its ChestX-ray14 label "No Finding")', async () => {
    const s = await site([]);
    expect(s.stats.dicom!.reportLabelled).toBe(0);
    expect(classes(s)).toEqual({ img_cardiomegaly: 'normal', img_opacity: 'clear', img_nodule: 'none' });
  });

  it('a coded DiagnosticReport for its study overrides the pixel rules', async () => {
    const s = await site([study('is1', NIH_STUDY), report('dr1', 'is1', ['8186001', '786838002'])]);
    expect(s.stats.dicom!.reportLabelled).toBe(1);
    expect(classes(s)).toEqual({ img_cardiomegaly: 'enlarged', img_opacity: 'clear', img_nodule: 'nodule' });
  });

  it('a report for another study, or entered in error, does not', async () => {
    const s = await site([
      study('is1', '1.2.3.4'),
      report('dr1', 'is1', ['8186001']),
      study('is2', NIH_STUDY),
      report('dr2', 'is2', ['8186001'], 'entered-in-error'),
    ]);
    expect(s.stats.dicom!.reportLabelled).toBe(0);
    expect(classes(s).img_cardiomegaly).toBe('normal');
  });
});

describe.skipIf(!existsSync(nih))('DICOM Structured Report findings', () => {
  const root = mkdtempSync(join(tmpdir(), 'fedsynth-sr-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('an SR of the same study (met after the image in the walk) labels it; the SR is neither an image nor quarantined', async () => {
    const dicom = join(root, 'dicom');
    mkdirSync(dicom);
    symlinkSync(nih, join(dicom, 'a-chest.dcm'));
    const sr = (study: string, items: SrItem[]) =>
      writeDicomFixture({
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        attributes: {
          PatientID: 'Covid0000',
          StudyInstanceUID: study,
          SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.33',
          SOPInstanceUID: '1.2.9.1',
          Modality: 'SR',
        },
        srContent: items,
      });
    // Findings nested under a container item, as in TID 2000 reports; an SRT text code is ignored.
    writeFileSync(
      join(dicom, 'z-report.dcm'),
      sr(NIH_STUDY, [
        {
          scheme: 'DCM',
          code: '121071',
          children: [
            { scheme: 'SCT', code: '233604007' },
            { scheme: 'SRT', code: 'D3-13040' },
          ],
        },
      ]),
    );
    writeFileSync(join(dicom, 'z-other.dcm'), sr('1.2.3.999', [{ scheme: 'SCT', code: '8186001' }]));
    const dir = mkdtempSync(join(root, 'fhir-'));
    writeFileSync(
      join(dir, 'Patient.ndjson'),
      JSON.stringify({ resourceType: 'Patient', id: 'Covid0000', gender: 'male', birthDate: '1940-01-01' }),
    );
    const s = await loadMultimodalSiteData({ data: { kind: 'fhir-ndjson', dir, dicom } }, schema);
    expect(s.stats.dicom!.reportLabelled).toBe(1);
    expect(s.stats.dicom!.images).toBe(1);
    expect(s.stats.dicom!.skipped).toBe(2);
    expect(s.quarantine.records.filter((r) => r.modality === 'dicom')).toEqual([]);
    const col = (name: string) => s.data.columns[schema.attributes.findIndex((a) => a.name === name)]![0];
    expect([col('img_cardiomegaly'), col('img_opacity'), col('img_nodule')]).toEqual([0, 1, 0]);
  });

  it('a malformed SR (content items without codes) gives no labels and no crash', async () => {
    const dicom = join(root, 'dicom2');
    mkdirSync(dicom);
    const bytes = writeDicomFixture({
      transferSyntaxUid: '1.2.840.10008.1.2',
      attributes: { PatientID: 'X', StudyInstanceUID: '1.2.3', SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.22', Modality: 'SR' },
      srContent: [{ scheme: '', code: '' }],
    });
    writeFileSync(join(dicom, 'sr.dcm'), bytes);
    writeFileSync(join(dicom, 'sr-cut.dcm'), bytes.subarray(0, bytes.length - 9));
    const idx = new ReportFindingIndex();
    const { readDicomFolder } = await import('../../site-agent/connectors/dicom/index.ts');
    const { Quarantine } = await import('../../site-agent/connectors/types.ts');
    const q = new Quarantine();
    for await (const _ of readDicomFolder(dicom, q, {
      onStructuredReport: (r) => idx.addStructuredReport(r.studyInstanceUid ?? '', r.snomedCodes),
    }))
      void _;
    expect(idx.labelsFor('1.2.3')).toBeUndefined();
    expect(q.records).toHaveLength(1);
    expect(['truncated file', 'unparseable DICOM']).toContain(q.records[0]!.reason);
  });
});
