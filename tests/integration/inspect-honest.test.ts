// `agent inspect` names what it quarantined, counts every decoded artefact honestly and warns
// about what the schema needs but the export lacks.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { writeDicomFixture } from '../../site-agent/connectors/dicom/write.ts';
import { formatInspectReport, inspectSite, ITEMS_PER_REASON } from '../../site-agent/inspect.ts';
import { runInspectCommand } from '../../cli/inspect.ts';

const schema = parseSchema(readFileSync(new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url), 'utf8'));
const root = mkdtempSync(join(tmpdir(), 'fedsynth-inspect-honest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fhir = join(root, 'fhir');
const dicom = join(root, 'dicom');
mkdirSync(fhir);
mkdirSync(dicom);
const patients = ['p1', 'p2', 'p3'].map((id) => JSON.stringify({ resourceType: 'Patient', id, gender: 'female', birthDate: '1970-01-01' }));
// Seven broken lines: more than the human report lists per reason.
writeFileSync(join(fhir, 'Patient.ndjson'), [...patients, ...Array.from({ length: 7 }, (_, i) => `{broken ${i}`)].join('\n'));
const image = (pid: string, modality: string, body: string) =>
  writeDicomFixture({
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    attributes: {
      PatientID: pid,
      SOPInstanceUID: `1.2.3.${pid}.${modality}`,
      Modality: modality,
      BodyPartExamined: body,
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: 64,
      Columns: 64,
      BitsAllocated: 8,
      BitsStored: 8,
      HighBit: 7,
      PixelRepresentation: 0,
    },
    pixelValues: Array.from({ length: 64 * 64 }, (_, i) => (i * 7) % 256),
  });
writeFileSync(join(dicom, 'chest.dcm'), image('p1', 'DX', 'CHEST'));
writeFileSync(join(dicom, 'ct.dcm'), image('p2', 'CT', 'HEAD'));
writeFileSync(join(dicom, 'rtdose.dcm'), image('p3', 'RTDOSE', 'PELVIS'));
writeFileSync(join(dicom, 'broken.dcm'), 'not dicom at all, just text');
// A VCF whose samples are the patients but which has no usable record.
const vcf = join(root, 'empty.vcf');
writeFileSync(
  vcf,
  ['##fileformat=VCFv4.2', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tp1\tp2', '1\tx\t.\tA\tG\t.\t.\t.\tGT\t0/1\t1/1'].join(
    '\n',
  ),
);

describe('agent inspect: honest counts, named quarantine, warnings', () => {
  it('names each quarantined file with reason and line; counts every decoded image; no genome without a called SNP; warns', async () => {
    const r = await inspectSite({ data: { kind: 'fhir-ndjson', dir: fhir, dicom, vcf } }, schema);
    expect(r.patients.fhir).toBe(3);
    // Quarantine items: every broken line, by file and line number.
    const bad = r.quarantine.items.filter((i) => i.reason === 'invalid JSON');
    expect(bad.map((i) => [i.source, i.offset])).toEqual(Array.from({ length: 7 }, (_, k) => [join(fhir, 'Patient.ndjson'), 4 + k]));
    expect(r.quarantine.items.some((i) => i.source === join(dicom, 'broken.dcm') && i.reason === 'not a DICOM file')).toBe(true);
    expect(r.quarantine.items.some((i) => i.source === vcf && i.reason === 'malformed line' && i.offset === 3)).toBe(true);
    // Images: the chest DX is the schema image; CT and RTDOSE are decoded and counted as others.
    expect(r.details.dicom!.images).toBe(3);
    expect(r.details.dicom!.otherByModality).toEqual({ CT: 1, RTDOSE: 1 });
    // The gradient test image has no lung fields for the pixel rules: named, not silently dropped.
    expect(r.patients.withImage).toBe(0);
    expect(r.quarantine.items.find((i) => i.source === join(dicom, 'chest.dcm'))!.reason).toMatch(/^image features not computable/);
    // The VCF names p1 and p2 but has no usable record: nobody has a genome.
    expect(r.patients.withGenome).toBe(0);
    expect(r.warnings).toContain('Patients but no Condition resources: every condition indicator will be 0 for this site');
    expect(r.warnings).toContain('Patients but no Observation resources: every lab will be missing for this site');
    expect(r.warnings).toContain('no patient has a genome with a called panel genotype');

    const text = formatInspectReport(r);
    expect(text).toContain('images decoded                3 (1 of the schema');
    expect(text).toMatch(/CT 1, RTDOSE 1|RTDOSE 1, CT 1/);
    expect(text).toContain('with a genome (≥1 called SNP)  0');
    expect(text).toContain(`${join(fhir, 'Patient.ndjson')} @4`);
    expect(text).not.toContain(`${join(fhir, 'Patient.ndjson')} @${4 + ITEMS_PER_REASON}`);
    expect(text).toContain(`… ${7 - ITEMS_PER_REASON} more (--json lists them)`);
    expect(text).toContain('! Patients but no Condition resources');
  });

  it('the CLI prints the same in --json', async () => {
    writeFileSync(
      join(root, 'site.yaml'),
      `schema: ${new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url).pathname}\ndata:\n  fhirNdjson: ./fhir\n  dicom: ./dicom\n`,
    );
    let out = '';
    const code = await runInspectCommand(['--config', join(root, 'site.yaml'), '--json'], { out: (t) => (out += t), err: () => {} });
    expect(code).toBe(0);
    const json = JSON.parse(out) as { quarantine: { items: { source: string; reason: string; offset?: number }[] } };
    expect(json.quarantine.items.filter((i) => i.reason === 'invalid JSON')).toHaveLength(7);
  });
});
