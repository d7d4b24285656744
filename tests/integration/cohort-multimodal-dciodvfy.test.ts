// Every DX the cohort writer makes is a conformant Digital X-Ray Image for Presentation: dciodvfy
// (dicom3tools, installed by .ci/run) reports 0 errors; its StudyDate/StudyTime (UTC) is the
// ImagingStudy's started instant; its pixel spacing is the field of view for the patient's age
// and sex over the image size.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { frontalChestView } from '../../modalities/clinical/index.ts';
import { writeCohort } from '../../synthesis/cohort.ts';
import { centralModel, pooledMultimodal } from './cohort-multimodal-helpers.ts';

const hasDciodvfy = spawnSync('sh', ['-c', 'command -v dciodvfy'], { encoding: 'utf8' }).status === 0;
if (!hasDciodvfy) console.warn('cohort-multimodal-dciodvfy: dciodvfy not installed (apt-get install -y dicom3tools): skipped');

let dir: string;

beforeAll(async () => {
  if (!hasDciodvfy) return;
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-dciodvfy-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 300 });
  await writeCohort(p.schema, centralModel(p.pooled), { n: 40, seed: 5, dir: join(dir, 'cohort') });
}, 120_000);
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

/** dciodvfy's messages for one file (it writes them to stderr and exits 0 either way). */
function verify(path: string): { errors: string[]; warnings: string[] } {
  const r = spawnSync('dciodvfy', [path], { encoding: 'utf8' });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
  return { errors: lines.filter((l) => l.startsWith('Error')), warnings: lines.filter((l) => l.startsWith('Warning')) };
}

describe.skipIf(!hasDciodvfy)('cohort DX conformance (dciodvfy)', () => {
  it('reports 0 errors on every DX written (warnings listed)', () => {
    const files = readdirSync(join(dir, 'cohort', 'dicom'));
    expect(files.length).toBeGreaterThan(5);
    const warnings = new Map<string, number>();
    for (const f of files) {
      const { errors, warnings: w } = verify(join(dir, 'cohort', 'dicom', f));
      expect(errors, f).toEqual([]);
      for (const line of w) warnings.set(line, (warnings.get(line) ?? 0) + 1);
    }
    if (warnings.size > 0) console.info(`dciodvfy warnings over ${files.length} files:`, Object.fromEntries(warnings));
    // The IOD it checked against: a DX for presentation.
    const iod = execFileSync('sh', ['-c', `dciodvfy ${join(dir, 'cohort', 'dicom', files[0])} 2>&1 | head -1`], { encoding: 'utf8' });
    expect(iod.trim()).toBe('DXImageForPresentation');
  });

  it('a file that breaks the IOD is reported (the check can fail)', () => {
    const f = readdirSync(join(dir, 'cohort', 'dicom'))[0];
    const bytes = Buffer.from(readFileSync(join(dir, 'cohort', 'dicom', f)));
    // Blank the BurnedInAnnotation value (Type 1): "NO" → two spaces.
    const at = bytes.indexOf(Buffer.from([0x28, 0x00, 0x01, 0x03]));
    expect(at).toBeGreaterThan(0);
    bytes.write('  ', at + 8, 'latin1');
    const broken = join(dir, 'broken.dcm');
    writeFileSync(broken, bytes);
    expect(verify(broken).errors.length).toBeGreaterThan(0);
  });

  it('StudyDate/StudyTime are ImagingStudy.started; pixel spacing follows the age', () => {
    const studies = readFileSync(join(dir, 'cohort', 'fhir', 'ImagingStudy.ndjson'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(studies.length).toBeGreaterThan(5);
    const spacingByAge: [number, number][] = [];
    for (const s of studies) {
      const uid = s.identifier[0].value.replace('urn:oid:', '');
      const file = readdirSync(join(dir, 'cohort', 'dicom')).find((f) => {
        const ds = dicomParser.parseDicom(readFileSync(join(dir, 'cohort', 'dicom', f)));
        return ds.string('x0020000d') === uid;
      });
      expect(file, uid).toBeDefined();
      const ds = dicomParser.parseDicom(readFileSync(join(dir, 'cohort', 'dicom', file!)));
      const date = ds.string('x00080020')!;
      const time = ds.string('x00080030')!;
      expect(ds.string('x00080201')).toBe('+0000');
      expect(
        `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${time.slice(0, 2)}:${time.slice(2, 4)}:${time.slice(4, 6)}Z`,
      ).toBe(s.started);
      const birth = ds.string('x00100030')!;
      const ageYears =
        (Date.parse(s.started) - Date.parse(`${birth.slice(0, 4)}-${birth.slice(4, 6)}-${birth.slice(6, 8)}`)) / (365.2425 * 86400e3);
      const spacing = Number(ds.string('x00280030')!.split('\\')[0]);
      expect(ds.string('x00181164')).toBe(ds.string('x00280030'));
      spacingByAge.push([ageYears, spacing * ds.uint16('x00280010')!]);
      // AP for infants and young children, PA from 4 years: header, series and the note agree.
      const view = frontalChestView(ageYears);
      expect([ds.string('x00185101'), ds.string('x0008103e')], `age ${ageYears}`).toEqual([view, view]);
      const note = join(dir, 'cohort', 'notes', `${s.subject.reference.split('/')[1]}.txt`);
      if (existsSync(note)) expect(readFileSync(note, 'utf8')).not.toMatch(view === 'AP' ? /\(PA\)/ : /\(AP\)/);
    }
    // Field of view: 15–20 cm for infants, 30–45 cm for adults, growing with age.
    for (const [age, field] of spacingByAge) {
      if (age < 1) expect([field >= 150, field <= 210], `age ${age}`).toEqual([true, true]);
      if (age >= 18) expect([field >= 300, field <= 450], `age ${age}`).toEqual([true, true]);
    }
    const fields = new Set(spacingByAge.map(([, f]) => f.toFixed(1)));
    expect(fields.size).toBeGreaterThan(1);
  });
});
