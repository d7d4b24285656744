import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  buildPatientBundle,
  collectReferences,
  validateBundle,
  validateR4Resource,
  VARIANT_PROFILE,
} from '../../modalities/fhir/bundle.ts';
import { decodePatient } from '../../modalities/fhir/decode.ts';
import { Rng } from '../../model/rng.ts';
import { SOP_CLASS, uuidToDicomUid } from '../../modalities/image/dicom-writer.ts';
import type { Genotype } from '../../modalities/genome/vcf-writer.ts';
import { parseSchema } from '../../schema/schema.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-v1.yaml', import.meta.url), 'utf8'));

function patient(seed: string) {
  const rng = new Rng(seed);
  const row = schema.attributes.map((a) =>
    a.kind === 'age'
      ? 3
      : a.kind === 'sex'
        ? 0
        : a.kind === 'condition'
          ? a.name === 'hypertension' || a.name === 'pneumonia'
            ? 1
            : 0
          : a.name === 'egfr'
            ? 4
            : 1,
  );
  const decoded = decodePatient(schema, row, rng);
  const genotypes: Genotype[] = [
    { rsid: 'rs7903146', chrom: '10', pos: 112998590, ref: 'C', alt: 'T', gene: 'TCF7L2', dosage: 1 },
    { rsid: 'rs429358', chrom: '19', pos: 44908684, ref: 'T', alt: 'C', gene: 'APOE', dosage: 2 },
    { rsid: 'rs1333049', chrom: '9', pos: 22125504, ref: 'C', alt: 'G', dosage: 0 },
    { chrom: '1', pos: 1000, ref: 'A', alt: 'G', dosage: -1 },
  ];
  const built = buildPatientBundle(
    decoded,
    {
      image: {
        studyInstanceUid: uuidToDicomUid(rng.uuid()),
        seriesInstanceUid: uuidToDicomUid(rng.uuid()),
        sopInstanceUid: uuidToDicomUid(rng.uuid()),
        sopClassUid: SOP_CLASS.DX,
        modality: 'DX',
        started: '2024-10-01T09:30:00Z',
        findingClass: 'opacity',
        path: 'dicom/x.dcm',
      },
      genome: { build: 'GRCh38', genotypes, effective: '2024-09-01' },
      note: {
        text: 'History: 45-year-old woman with hypertension and pneumonia.\nImaging: consolidation.\n',
        date: '2024-10-01T10:00:00Z',
      },
    },
    rng,
  );
  return { decoded, ...built };
}

describe('patient FHIR bundle', () => {
  it('holds every resource, cross-referenced, and passes R4 validation', () => {
    const { bundle, resources, decoded } = patient('b1');
    const issues = validateBundle(bundle);
    expect(issues).toEqual([]);
    const types = resources.map((r) => r.resourceType);
    expect(types.filter((t) => t === 'Patient')).toHaveLength(1);
    expect(types.filter((t) => t === 'Condition')).toHaveLength(2);
    expect(types).toContain('ImagingStudy');
    expect(types).toContain('DocumentReference');
    expect(bundle.type).toBe('collection');
    const entries = bundle.entry as { fullUrl: string; resource: any }[];
    expect(entries.every((e) => e.fullUrl === `urn:uuid:${e.resource.id}`)).toBe(true);
    // Every reference resolves inside the bundle and points at the patient where it should.
    const urls = new Set(entries.map((e) => e.fullUrl));
    for (const e of entries) for (const ref of collectReferences(e.resource)) expect(urls.has(ref)).toBe(true);
    const subjectRefs = entries.filter((e) => e.resource.subject).map((e) => e.resource.subject.reference);
    expect(new Set(subjectRefs)).toEqual(new Set([`urn:uuid:${decoded.patient.id}`]));
    // The flat resources keep relative references (Bulk NDJSON).
    expect(resources.find((r) => r.resourceType === 'ImagingStudy')!.subject).toEqual({ reference: `Patient/${decoded.patient.id}` });
  });

  it('ImagingStudy carries the DICOM UIDs; the note is base64 with size and hash; variants follow the IG', () => {
    const { resources } = patient('b2');
    const study = resources.find((r) => r.resourceType === 'ImagingStudy') as any;
    expect(study.identifier[0].value).toMatch(/^urn:oid:2\.25\.\d+$/);
    expect(study.series[0].uid).toMatch(/^2\.25\.\d+$/);
    expect(study.series[0].instance[0].sopClass.code).toBe(`urn:oid:${SOP_CLASS.DX}`);
    expect(study.modality[0]).toEqual({ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'DX' });
    const doc = resources.find((r) => r.resourceType === 'DocumentReference') as any;
    const text = Buffer.from(doc.content[0].attachment.data, 'base64').toString('utf8');
    expect(text).toMatch(/pneumonia/);
    expect(doc.content[0].attachment.size).toBe(Buffer.byteLength(text));
    expect(doc.context.related[0].reference).toBe(`ImagingStudy/${study.id}`);
    const finding = resources.find(
      (r) => r.resourceType === 'Observation' && (r.derivedFrom as any)?.[0]?.reference === `ImagingStudy/${study.id}`,
    ) as any;
    expect(finding.valueString).toBe('opacity');
    const variants = resources.filter((r) => (r.meta as any)?.profile?.includes(VARIANT_PROFILE)) as any[];
    expect(variants).toHaveLength(2); // hom-ref and missing calls are not reported by default
    const het = variants.find((v) => v.component.some((c: any) => c.valueCodeableConcept?.coding?.[0]?.code === 'rs7903146'));
    const comp = (code: string) => het.component.find((c: any) => c.code.coding[0].code === code);
    expect(het.code.coding[0].code).toBe('69548-6');
    expect(het.valueCodeableConcept.coding[0].code).toBe('LA9633-4');
    expect(comp('48013-7').valueCodeableConcept.coding[0].code).toBe('NC_000010.11');
    expect(comp('81254-5').valueRange).toEqual({ low: { value: 112998590 }, high: { value: 112998590 } });
    expect(comp('69547-8').valueString).toBe('C');
    expect(comp('69551-0').valueString).toBe('T');
    expect(comp('53034-5').valueCodeableConcept.coding[0].display).toBe('Heterozygous');
    expect(comp('48018-6').valueCodeableConcept.text).toBe('TCF7L2');
  });

  it('is deterministic per seed', () => {
    expect(JSON.stringify(patient('same').bundle)).toBe(JSON.stringify(patient('same').bundle));
  });

  it('catches invalid resources and dangling references', () => {
    const { bundle } = patient('b3');
    const entries = bundle.entry as { fullUrl: string; resource: any }[];
    const broken = structuredClone(bundle) as any;
    broken.entry.find((e: any) => e.resource.resourceType === 'ImagingStudy').resource.status = 'bogus';
    broken.entry.find((e: any) => e.resource.resourceType === 'DocumentReference').resource.subject.reference =
      'urn:uuid:00000000-0000-4000-8000-000000000000';
    const issues = validateBundle(broken);
    expect(issues.some((i) => i.resource.startsWith('ImagingStudy/') && /status "bogus"/.test(i.message))).toBe(true);
    // Structural errors come from the R4 definitions (medplum): a missing required element, a wrong type.
    const structural = structuredClone(bundle) as any;
    const doc = structural.entry.find((e: any) => e.resource.resourceType === 'DocumentReference').resource;
    delete doc.content;
    structural.entry.find((e: any) => e.resource.resourceType === 'ImagingStudy').resource.numberOfSeries = 'one';
    const sIssues = validateBundle(structural);
    expect(sIssues.some((i) => i.resource.startsWith('DocumentReference/') && /content/i.test(i.message))).toBe(true);
    expect(sIssues.some((i) => i.resource.startsWith('ImagingStudy/') && /numberOfSeries/i.test(i.message))).toBe(true);
    expect(issues.some((i) => /does not resolve/.test(i.message))).toBe(true);
    expect(validateR4Resource({ resourceType: 'Patient', id: 'x', gender: 'female', foo: 1 }).length).toBeGreaterThan(0);
    expect(entries.length).toBeGreaterThan(5);
  });
});

describe('memoised R4 validation', () => {
  it('validates each resource shape once and still catches a changed shape or bad primitive', async () => {
    const { R4Validator } = await import('../../modalities/fhir/bundle.ts');
    const v = new R4Validator('memo');
    for (const seed of ['m1', 'm2', 'm3']) expect(validateBundle(patient(seed).bundle, v)).toEqual([]);
    expect(v.memoHits).toBeGreaterThan(v.fullValidations / 2);
    const bad = structuredClone(patient('m4').bundle) as any;
    bad.entry.find((e: any) => e.resource.resourceType === 'DocumentReference').resource.date = '2024-13-45';
    expect(validateBundle(bad, v).some((i) => i.resource.startsWith('DocumentReference/'))).toBe(true);
    const extra = structuredClone(patient('m5').bundle) as any;
    extra.entry.find((e: any) => e.resource.resourceType === 'ImagingStudy').resource.bogusField = 1;
    expect(validateBundle(extra, v).some((i) => i.resource.startsWith('ImagingStudy/'))).toBe(true);
  });
});
