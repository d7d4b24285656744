// A cross-modal cohort from a model fitted on every modality of simulated sites: FHIR, DICOM,
// VCF, notes and previews, cross-referenced and each passing its validator; FHIR-only schemas
// still give FHIR-only cohorts.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dicomParser from 'dicom-parser';
import { COHORT_MARKER, writeCohort, type CohortResult } from '../../synthesis/cohort.ts';
import { generatedFor } from '../../coordinator/cohort-jobs.ts';
import { validateVcf } from '../../modalities/genome/validate.ts';
import { plausibilityRules, violations } from '../../synthesis/plausibility.ts';
import { parseSchema, type Schema } from '../../schema/schema.ts';
import type { GraphicalModel } from '../../model/pgm/index.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { centralModel, pooledMultimodal } from './cohort-multimodal-helpers.ts';
import { MAX_FINDING_DRAWS } from '../../modalities/image/radiograph-synth.ts';

let dir: string;
let schema: Schema;
let model: GraphicalModel;
let res: CohortResult;
let pooled: Dataset;
const ndjson = (type: string) =>
  readFileSync(join(dir, 'cohort', 'fhir', `${type}.ndjson`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-cohort-mm-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 300 });
  schema = p.schema;
  pooled = p.pooled;
  model = centralModel(p.pooled);
  res = await writeCohort(schema, model, { n: 60, seed: 9, dir: join(dir, 'cohort') });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cross-modal cohort', () => {
  it('writes every modality and counts it in the report', () => {
    const m = res.modalities!;
    expect(m.patients).toBe(res.dataset.rows);
    expect(m.images.written).toBeGreaterThan(0);
    expect(m.genomes.written).toBeGreaterThan(0);
    expect(m.notes.written).toBeGreaterThan(0);
    expect(m.images.failed + m.genomes.failed).toBe(0);
    expect(m.fhir.bundleIssues).toBe(0);
    expect(readdirSync(join(dir, 'cohort', 'dicom'))).toHaveLength(m.images.written);
    expect(readdirSync(join(dir, 'cohort', 'notes'))).toHaveLength(m.notes.written);
    expect(readdirSync(join(dir, 'cohort', 'vcf'))).toHaveLength(m.genomes.written + 1);
    expect(readdirSync(join(dir, 'cohort', 'previews'))).toHaveLength(m.images.written);
    expect(m.images.previews).toBe(m.images.written);
    for (const t of ['Patient', 'Condition', 'Observation', 'ImagingStudy', 'DocumentReference'])
      expect(existsSync(join(dir, 'cohort', 'fhir', `${t}.ndjson`))).toBe(true);
    expect(m.notes.stats.notes).toBe(m.notes.written);
  });

  it('cross-references DICOM, ImagingStudy and Patient', () => {
    const patients = new Set(ndjson('Patient').map((p) => p.id));
    const studies = ndjson('ImagingStudy');
    expect(studies.length).toBe(res.modalities!.images.written);
    for (const s of studies.slice(0, 10)) {
      const pid = s.subject.reference.replace('Patient/', '');
      expect(patients.has(pid)).toBe(true);
      const bytes = readFileSync(join(dir, 'cohort', 'dicom', `${pid}.dcm`));
      const ds = dicomParser.parseDicom(new Uint8Array(bytes));
      expect(ds.string('x00100020')).toBe(pid);
      expect(`urn:oid:${ds.string('x0020000d')}`).toBe(s.identifier[0].value);
      expect(ds.string('x0020000e')).toBe(s.series[0].uid);
      expect(ds.string('x00080018')).toBe(s.series[0].instance[0].uid);
      expect(ds.uint16('x00280010')).toBe(256);
      expect(ds.uint16('x00280101')).toBe(16);
    }
  });

  it('writes valid VCFs whose genotypes match the variant Observations', () => {
    const cohortVcf = validateVcf(readFileSync(join(dir, 'cohort', 'vcf', 'cohort.vcf'), 'utf8'));
    expect(cohortVcf.ok).toBe(true);
    expect(cohortVcf.samples.length).toBe(res.modalities!.genomes.written);
    const pos = new Set(schema.attributes.filter((a) => a.kind === 'snp').map((a) => (a as { pos: number }).pos));
    for (const r of cohortVcf.records) expect(pos.has(r.pos)).toBe(true);
    const variants = ndjson('Observation').filter((o) => o.code.coding[0].code === '69548-6');
    expect(variants.length).toBeGreaterThan(0);
    const sample = cohortVcf.samples[0];
    const mine = variants.filter((o) => o.subject.reference === `Patient/${sample}`);
    const alt = cohortVcf.records.filter((r) => /1/.test(String((r as unknown as { genotypes: string[] }).genotypes?.[0] ?? '')));
    if (alt.length > 0) expect(mine.length).toBe(alt.length);
  });

  it('notes mention exactly the patient conditions and are linked by DocumentReference', () => {
    const docs = ndjson('DocumentReference');
    expect(docs.length).toBe(res.modalities!.notes.written);
    const conditions = ndjson('Condition');
    for (const d of docs.slice(0, 10)) {
      const pid = d.subject.reference.replace('Patient/', '');
      const text = Buffer.from(d.content[0].attachment.data, 'base64').toString('utf8');
      expect(readFileSync(join(dir, 'cohort', 'notes', `${pid}.txt`), 'utf8')).toBe(text);
      expect(conditions.length).toBeGreaterThanOrEqual(0);
      expect(text.trim().length).toBeGreaterThan(0);
    }
  });

  it('releases only plausible rows and reports the resampling', () => {
    const rules = plausibilityRules(schema);
    expect(rules.length).toBeGreaterThan(0);
    const row: number[] = [];
    for (let r = 0; r < res.dataset.rows; r++) {
      for (let j = 0; j < res.dataset.columns.length; j++) row[j] = res.dataset.columns[j][r];
      expect(violations(rules, row)).toEqual([]);
    }
    expect(res.plausibility.rules).toEqual(rules.map((r) => r.id));
  });

  it('is deterministic by seed', async () => {
    const again = await writeCohort(schema, model, { n: 60, seed: 9, dir: join(dir, 'again') });
    expect(readFileSync(join(dir, 'again', 'fhir', 'Patient.ndjson'), 'utf8')).toBe(
      readFileSync(join(dir, 'cohort', 'fhir', 'Patient.ndjson'), 'utf8'),
    );
    expect(readFileSync(join(dir, 'again', 'vcf', 'cohort.vcf'), 'utf8')).toBe(
      readFileSync(join(dir, 'cohort', 'vcf', 'cohort.vcf'), 'utf8'),
    );
    expect(again.modalities).toEqual({
      ...res.modalities,
      genomes: {
        ...res.modalities!.genomes,
        cohortVcf: { ...res.modalities!.genomes.cohortVcf!, path: join(dir, 'again', 'vcf', 'cohort.vcf') },
      },
    });
  });

  it('writes the same bytes with worker threads as in this thread, release checks and redraws included', async () => {
    const tree = (root: string) => {
      const out = new Map<string, string>();
      const walk = (rel: string) => {
        for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
          const r = join(rel, e.name);
          if (e.isDirectory()) walk(r);
          else out.set(r, readFileSync(join(root, r)).toString('base64'));
        }
      };
      walk('');
      return out;
    };
    const releaseCheck = ({ facts }: { facts: { conditions: { name: string }[] } }) =>
      facts.conditions.some((c) => c.name === 'pneumonia') ? 'no pneumonia' : undefined;
    for (const [name, extra] of [
      ['plain', {}],
      ['checked', { releaseCheck }],
    ] as const) {
      const here = await writeCohort(schema, model, { n: 60, seed: 9, dir: join(dir, `${name}-0`), modalities: { ...extra, workers: 0 } });
      const threads = await writeCohort(schema, model, {
        n: 60,
        seed: 9,
        dir: join(dir, `${name}-2`),
        modalities: { ...extra, workers: 2 },
      });
      const a = tree(join(dir, `${name}-0`));
      const b = tree(join(dir, `${name}-2`));
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [f, bytes] of a) expect(b.get(f), f).toBe(bytes);
      for (const sub of ['dicom', 'previews', 'vcf', 'notes', 'fhir'])
        expect(
          [...a.keys()].some((f) => f.startsWith(`${sub}/`)),
          sub,
        ).toBe(true);
      const strip = (r: CohortResult) =>
        JSON.parse(
          JSON.stringify({
            ...r,
            files: undefined,
            modalities: {
              ...r.modalities,
              genomes: { ...r.modalities!.genomes, cohortVcf: { ...r.modalities!.genomes.cohortVcf, path: undefined } },
            },
          }),
        );
      expect(strip(threads)).toEqual(strip(here));
      expect(JSON.stringify(strip(threads))).toBe(JSON.stringify(strip(here)));
    }
  }, 60_000);

  it('counts the images whose findings do not read back after the last draw, keeps them, and counts the same with worker threads', async () => {
    const rb = res.modalities!.images.readBack;
    expect(rb.maxDraws).toBe(MAX_FINDING_DRAWS);
    expect(rb.checked).toBe(res.modalities!.images.written);
    expect(rb.draws).toBeGreaterThanOrEqual(rb.checked);
    expect(rb.notReadBack).toBe(rb.images.length);
    // An opacity cut no score reaches: every image with an opacity sampled fails its read-back.
    const blind: Schema = {
      ...schema,
      attributes: schema.attributes.map((a) => (a.kind === 'image-finding' && a.feature === 'lung-opacity' ? { ...a, edges: [1e9] } : a)),
    };
    const [here, threads] = await Promise.all(
      [0, 2].map((workers) => writeCohort(blind, model, { n: 40, seed: 9, dir: join(dir, `blind-${workers}`), modalities: { workers } })),
    );
    const m = here.modalities!;
    const withOpacity = m.images.findings.opacity;
    expect(withOpacity).toBeGreaterThan(0);
    expect(m.images.readBack.notReadBack).toBeGreaterThanOrEqual(withOpacity);
    expect(m.images.readBack.byFinding['img_opacity: opacity → clear']).toBe(withOpacity);
    // Kept: every image is written, the unread ones included.
    expect(readdirSync(join(dir, 'blind-0', 'dicom'))).toHaveLength(m.images.written);
    for (const { patient } of m.images.readBack.images) expect(existsSync(join(dir, 'blind-0', 'dicom', `${patient}.dcm`))).toBe(true);
    expect(threads.modalities!.images.readBack).toEqual(m.images.readBack);
    expect(m.images.readBack.draws).toBeGreaterThanOrEqual(withOpacity * MAX_FINDING_DRAWS);
  }, 60_000);

  it('redraws a patient whose artefacts are rejected, leaving none of its files behind', async () => {
    const j = schema.attributes.findIndex((a) => a.name === 'pneumonia');
    const firstDraw = Array.from(res.dataset.columns[j]).filter((v) => v === 1).length;
    expect(firstDraw).toBeGreaterThan(0);
    const out = join(dir, 'redrawn');
    const r = await writeCohort(schema, model, {
      n: 60,
      seed: 9,
      dir: out,
      modalities: {
        releaseCheck: ({ facts }) =>
          facts.conditions.some((c) => c.name === 'pneumonia') ? 'site rule: no pneumonia patients' : undefined,
      },
    });
    expect(r.rejected.byStage['release-check']).toBeGreaterThanOrEqual(firstDraw);
    expect(r.rejected.replaced).toBeGreaterThan(0);
    expect(r.rejected.firstReasons[0]).toMatch(/release-check: site rule/);
    expect(r.dataset.rows + r.rejected.dropped).toBe(60);
    expect(Array.from(r.dataset.columns[j]).every((v) => v === 0)).toBe(true);
    const lines = (t: string) =>
      readFileSync(join(out, 'fhir', `${t}.ndjson`), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    expect(lines('Patient')).toHaveLength(r.dataset.rows);
    expect(lines('Condition').some((c) => /pneumonia/i.test(c.code.text))).toBe(false);
    expect(readdirSync(join(out, 'dicom'))).toHaveLength(r.modalities!.images.written);
    expect(readdirSync(join(out, 'notes'))).toHaveLength(r.modalities!.notes.written);
    await writeCohort(schema, model, {
      n: 60,
      seed: 9,
      dir: join(dir, 'redrawn-again'),
      modalities: { releaseCheck: ({ facts }) => (facts.conditions.some((c) => c.name === 'pneumonia') ? 'no' : undefined) },
    });
    expect(readFileSync(join(dir, 'redrawn-again', 'fhir', 'Patient.ndjson'), 'utf8')).toBe(
      readFileSync(join(out, 'fhir', 'Patient.ndjson'), 'utf8'),
    );
  }, 60_000);

  it('a cohort written over an earlier one leaves none of its files; a foreign folder is refused', async () => {
    const out = join(dir, 'reused');
    await writeCohort(schema, model, { n: 40, seed: 21, dir: out });
    const r = await writeCohort(schema, model, { n: 10, seed: 22, dir: out });
    const ids = new Set(
      readFileSync(join(out, 'fhir', 'Patient.ndjson'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).id),
    );
    expect(ids.size).toBe(r.dataset.rows);
    for (const sub of ['dicom', 'notes'])
      for (const f of readdirSync(join(out, sub))) expect(ids.has(f.replace(/\.(dcm|txt)$/, '')), `${sub}/${f}`).toBe(true);
    expect(
      readdirSync(join(out, 'vcf'))
        .filter((f) => f !== 'cohort.vcf')
        .every((f) => ids.has(f.replace(/\.vcf$/, ''))),
    ).toBe(true);
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'thesis.txt'), 'keep me');
    await expect(writeCohort(schema, model, { n: 5, seed: 1, dir: foreign })).rejects.toThrow(/not empty and was not written by fedsynth/);
    expect(readdirSync(foreign)).toEqual(['thesis.txt']);
  });

  it('drops patients with no valid draw and writes nothing of them', async () => {
    const out = join(dir, 'none');
    const r = await writeCohort(schema, model, {
      n: 5,
      seed: 3,
      dir: out,
      modalities: { releaseCheck: () => 'reject all', maxRedraws: 2 },
    });
    expect(r.rejected).toMatchObject({ rows: 15, replaced: 10, dropped: 5 });
    expect(r.dataset.rows).toBe(0);
    expect(readdirSync(join(out, 'dicom'))).toHaveLength(0);
    expect(readFileSync(join(out, 'fhir', 'Patient.ndjson'), 'utf8')).toBe('');
  });

  it('a FHIR-only schema gives a FHIR-only cohort', async () => {
    const fhirOnly = parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
    const names = fhirOnly.attributes.map((a) => a.name);
    const domain = new Domain(
      names,
      names.map((n) => pooled.domain.sizeOf(n)),
    );
    const projected = new Dataset(
      domain,
      names.map((n) => pooled.column(n)),
      pooled.rows,
    );
    const out = await writeCohort(fhirOnly, centralModel(projected), { n: 40, seed: 2, dir: join(dir, 'fhir-only') });
    expect(out.modalities).toBeUndefined();
    expect(readdirSync(join(dir, 'fhir-only')).sort()).toEqual(['.fedsynth-cohort', 'fhir']);
    expect(readdirSync(join(dir, 'fhir-only', 'fhir')).sort()).toEqual([
      'Condition.ndjson',
      'Encounter.ndjson',
      'MedicationRequest.ndjson',
      'Observation.ndjson',
      'Patient.ndjson',
    ]);
    // Every released record passed the clinical verifier, and the report says how many were checked.
    expect(out.clinical.recordsVerified).toBeGreaterThanOrEqual(out.dataset.rows);
  });

  it('makes only the modalities asked for: none of the others is synthesised or written', async () => {
    const types = (d: string) => readdirSync(join(d, 'fhir')).filter((f) => readFileSync(join(d, 'fhir', f), 'utf8').length > 0);
    const fhirOnly = join(dir, 'only-fhir');
    const a = await writeCohort(schema, model, {
      n: 40,
      seed: 9,
      dir: fhirOnly,
      modalities: { generate: { image: false, genome: false, notes: false } },
    });
    expect(readdirSync(fhirOnly).sort()).toEqual([COHORT_MARKER, 'fhir'].sort());
    expect(types(fhirOnly)).not.toContain('ImagingStudy.ndjson');
    expect(types(fhirOnly)).not.toContain('DocumentReference.ndjson');
    expect(a.modalities).toBeUndefined();
    expect(a.files.Patient.resources).toBe(a.dataset.rows);
    expect(a.dataset.rows).toBeGreaterThan(30);
    // No variant Observation either: genome-derived FHIR is part of the genome modality.
    const obs = readFileSync(join(fhirOnly, 'fhir', 'Observation.ndjson'), 'utf8');
    expect(obs).not.toContain('69548-6');

    const genomeOnly = join(dir, 'only-vcf');
    const b = await writeCohort(schema, model, {
      n: 40,
      seed: 9,
      dir: genomeOnly,
      modalities: { generate: { image: false, notes: false } },
    });
    expect(readdirSync(genomeOnly).sort()).toEqual([COHORT_MARKER, 'fhir', 'vcf'].sort());
    expect(b.modalities!.images.written).toBe(0);
    expect(b.modalities!.images.validated).toBe(0);
    expect(b.modalities!.notes.written).toBe(0);
    expect(b.modalities!.genomes.written).toBeGreaterThan(0);
    expect(readdirSync(join(genomeOnly, 'vcf'))).toHaveLength(b.modalities!.genomes.written + 1);
    expect(types(genomeOnly)).not.toContain('ImagingStudy.ndjson');
  });

  it('maps a service cohort request to what it generates: FHIR always, the rest only when requested', () => {
    expect(generatedFor(schema, ['fhir'])).toEqual({ generate: { image: false, genome: false, notes: false }, generated: ['fhir'] });
    expect(generatedFor(schema, ['fhir', 'notes', 'dicom']).generated).toEqual(['fhir', 'dicom', 'notes']);
    expect(generatedFor(schema, ['vcf']).generated).toEqual(['fhir', 'vcf']);
    const fhirSchema = parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
    expect(generatedFor(fhirSchema, ['fhir', 'dicom']).generated).toEqual(['fhir']);
  });
});
