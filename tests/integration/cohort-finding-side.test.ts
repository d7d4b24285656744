// The side of each lateralised image finding (opacity, nodule) agrees across the three places a
// cohort states it: the pixels (read by the sites' own extractor, site-agent/features/image.ts),
// the FHIR imaging Observation (a component per finding: SNOMED CT finding, laterality qualifier)
// and the note's text. Fixed seeds; the cohorts are conditioned on the finding so that every
// patient has one.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCohort } from '../../synthesis/cohort.ts';
import { LATERALITY_CODES, SIDED_FINDING_CODES } from '../../modalities/fhir/bundle.ts';
import { buildVocabulary, findingTerms } from '../../modalities/notes/index.ts';
import { dicomGrid, parseDicomBytes } from '../../site-agent/connectors/dicom/index.ts';
import { gridImageScores } from '../../site-agent/features/image.ts';
import { centralModelWithPairs, pooledMultimodal } from './cohort-multimodal-helpers.ts';
import { SURFACE } from '../../simulator/notes.ts';
import type { Schema } from '../../schema/schema.ts';

type Side = 'right' | 'left' | 'bilateral';
type Finding = 'opacity' | 'nodule';
const FEATURE = { opacity: 'lung-opacity', nodule: 'nodule' } as const;
const SEED = 13;
const VOCAB = buildVocabulary();

interface PatientSides {
  pixels: Partial<Record<Finding, Side>>;
  fhir: Partial<Record<Finding, Side>>;
  note?: string;
  /** The lateralised findings the FHIR record names (the sampled ones). */
  findings: Finding[];
}

let dir: string;
let schema: Schema;
const cohorts: Record<Finding, Map<string, PatientSides>> = { opacity: new Map(), nodule: new Map() };

/** Per patient of a cohort folder: the sides read from the pixels, from FHIR, and the note's text. */
function readCohort(cohortDir: string): Map<string, PatientSides> {
  const out = new Map<string, PatientSides>();
  const grid = schema.image?.grid ?? 64;
  const cutOf = (f: Finding) => (schema.attributes.find((a) => a.name === `img_${f}`) as { edges: number[] }).edges[0]!;
  const CUT = { opacity: cutOf('opacity'), nodule: cutOf('nodule') };
  const lateral = (code: string): Side | undefined =>
    (Object.entries(LATERALITY_CODES) as [Side, { code: string }][]).find(([, c]) => c.code === code)?.[0];
  for (const line of readFileSync(join(cohortDir, 'fhir', 'Observation.ndjson'), 'utf8').split('\n')) {
    if (!line) continue;
    const o = JSON.parse(line) as {
      subject: { reference: string };
      code: { coding: { code: string }[] };
      valueString?: string;
      component?: { code: { coding: { code: string }[] }; valueCodeableConcept: { coding: { system: string; code: string }[] } }[];
    };
    if (o.code.coding[0]?.code !== '18782-3') continue;
    const id = o.subject.reference.replace('Patient/', '');
    const p: PatientSides = { pixels: {}, fhir: {}, findings: [] };
    for (const f of ['opacity', 'nodule'] as const) if ((o.valueString ?? '').split(', ').includes(f)) p.findings.push(f);
    for (const c of o.component ?? []) {
      const f = (Object.entries(SIDED_FINDING_CODES) as [Finding, { code: string }][]).find(
        ([, x]) => x.code === c.code.coding[0]?.code,
      )?.[0];
      const v = c.valueCodeableConcept.coding[0]!;
      expect(v.system).toBe('http://snomed.info/sct');
      if (f) p.fhir[f] = lateral(v.code);
    }
    out.set(id, p);
  }
  for (const name of readdirSync(join(cohortDir, 'dicom'))) {
    const id = name.replace(/\.dcm$/, '');
    const p = out.get(id);
    if (!p) continue;
    const r = parseDicomBytes(readFileSync(join(cohortDir, 'dicom', name)), name);
    if (!r.ok) throw new Error(`${name}: ${r.record.reason}`);
    const s = gridImageScores(dicomGrid(r.image, grid), grid);
    if (!s.ok) continue;
    // The side where the extractor calls the finding (a missed finding has no side to read).
    for (const f of p.findings) if (s.scores[FEATURE[f]] >= CUT[f]) p.pixels[f] = s.sides[FEATURE[f]];
  }
  for (const [id, p] of out) {
    try {
      p.note = readFileSync(join(cohortDir, 'notes', `${id}.txt`), 'utf8');
    } catch {
      // a patient without a note
    }
  }
  return out;
}

/**
 * The side a note gives a finding: "<term> in the right lung" (or "in both lungs") where several
 * findings share a sentence, else — the patient's only lateralised finding — the one side word
 * the note uses (its templates put "right"/"left" only in the finding's sentence).
 */
function noteSide(text: string, finding: Finding, lateralCount: number): Side | undefined {
  const terms = findingTerms(VOCAB, finding);
  for (const t of terms) {
    const m = new RegExp(`${t} in (?:the (right|left) lung|both lungs)`, 'i').exec(text);
    if (m) return (m[1] as Side | undefined) ?? 'bilateral';
  }
  if (lateralCount !== 1) return undefined;
  const words = new Set([...text.matchAll(/\b(right|left)\b/gi)].map((m) => m[1]!.toLowerCase() as Side));
  if (/\bboth lungs\b/i.test(text)) words.add('bilateral');
  return words.size === 1 ? [...words][0] : undefined;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-side-'));
  const p = await pooledMultimodal(join(dir, 'data'), { sites: 2, patients: 300, seed: SEED });
  schema = p.schema;
  const model = centralModelWithPairs(p.pooled, [
    ['img_opacity', 'pneumonia'],
    ['img_nodule', 'copd'],
  ]);
  for (const f of ['opacity', 'nodule'] as const) {
    const attr = schema.attributes.find((a) => a.name === `img_${f}`)!;
    const present = (attr as { classes: string[] }).classes.indexOf(f);
    await writeCohort(schema, model, { n: 40, seed: SEED, dir: join(dir, f), where: { [`img_${f}`]: [present] } });
    cohorts[f] = readCohort(join(dir, f));
  }
}, 240_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The simulated sites: per imaged patient (MRN), the sides the extractor reads where it calls a
 * finding, and the sides the patient's notes give ("<term> in the right lung").
 */
function readSites(): { f: Finding; pixels: Side; notes: Side[] }[] {
  const out: { f: Finding; pixels: Side; notes: Side[] }[] = [];
  const grid = schema.image?.grid ?? 64;
  const cut = (f: Finding) => (schema.attributes.find((a) => a.name === `img_${f}`) as { edges: number[] }).edges[0]!;
  for (const site of readdirSync(join(dir, 'data')).filter((d) => d.startsWith('hospital-'))) {
    const root = join(dir, 'data', site);
    const noteFiles = readdirSync(join(root, 'notes'));
    for (const mrn of readdirSync(join(root, 'dicom'))) {
      const first = readdirSync(join(root, 'dicom', mrn)).find((n) => n.endsWith('_1.dcm'));
      if (!first) continue;
      const r = parseDicomBytes(readFileSync(join(root, 'dicom', mrn, first)), first);
      if (!r.ok) continue;
      const s = gridImageScores(dicomGrid(r.image, grid), grid);
      if (!s.ok) continue;
      const texts = noteFiles.filter((n) => n.startsWith(`${mrn}_`)).map((n) => readFileSync(join(root, 'notes', n), 'utf8'));
      for (const f of ['opacity', 'nodule'] as const) {
        if (s.scores[FEATURE[f]] < cut(f)) continue;
        const notes: Side[] = [];
        for (const t of texts)
          for (const term of SURFACE[f]) {
            const m = new RegExp(`(?:^|[^a-z])${term} in the (right|left) lung`, 'i').exec(t);
            if (m) notes.push(m[1]!.toLowerCase() as Side);
          }
        out.push({ f, pixels: s.sides[FEATURE[f]], notes });
      }
    }
  }
  return out;
}

describe('the side of a lateralised finding: pixels, FHIR and note agree', () => {
  it('simulated sites: a note names the side the radiograph was drawn on', () => {
    const rows = readSites().filter((r) => r.notes.length > 0);
    const agree = rows.filter((r) => r.notes.every((n) => n === r.pixels)).length;
    if (process.env.SIDE_PRINT) console.info('sites', { called: rows.length, agree });
    expect(rows.length).toBeGreaterThan(10);
    // The extractor reads the side of what it calls; a nodule score from a rib crossing on the
    // other side (sites' images are not redrawn) is the exception.
    expect(agree / rows.length).toBeGreaterThanOrEqual(0.8);
  });

  for (const f of ['opacity', 'nodule'] as const) {
    it(`${f}: FHIR codes a SNOMED CT laterality for every drawn ${f}, the note names the same side, the pixels show it`, () => {
      const withFinding = [...cohorts[f].values()].filter((p) => p.findings.includes(f));
      expect(withFinding.length, `${f} patients`).toBeGreaterThanOrEqual(30);
      let pixelAgree = 0;
      let pixelRead = 0;
      let notes = 0;
      let bilateral = 0;
      let bilateralRead = 0;
      for (const p of withFinding) {
        const fhir = p.fhir[f];
        if (fhir === 'bilateral') {
          bilateral++;
          if (p.pixels[f] === 'bilateral') bilateralRead++;
        }
        expect(fhir, 'FHIR side').toMatch(/^(right|left|bilateral)$/);
        // Every lateralised finding of the record has its component, and no other finding does.
        expect(Object.keys(p.fhir).sort()).toEqual([...p.findings].sort());
        if (p.note !== undefined) {
          notes++;
          expect(noteSide(p.note, f, p.findings.length), p.note).toBe(fhir);
        }
        if (p.pixels[f] !== undefined) {
          pixelRead++;
          if (p.pixels[f] === fhir) pixelAgree++;
        }
      }
      if (process.env.SIDE_PRINT) console.info(f, { patients: withFinding.length, notes, pixelRead, pixelAgree, bilateral, bilateralRead });
      // Opacities in both lungs are drawn in both (coded 51440002, "in both lungs" in the note)
      // and read back as bilateral, which a left–right difference could not show.
      if (f === 'opacity') expect(bilateralRead).toBeGreaterThan(0);
      expect(notes).toBeGreaterThan(0.5 * withFinding.length);
      // Drawn again until the extractor reads it back, up to MAX_FINDING_DRAWS: most images read
      // back (measured 39 of 39 opacities, 30 of 35 nodules on this seed).
      expect(pixelRead).toBeGreaterThanOrEqual(0.6 * withFinding.length);
      // Where the extractor calls the finding, on the side FHIR and the note give (measured: all).
      expect(pixelAgree / pixelRead, `${f}: the extractor's side matches FHIR`).toBeGreaterThanOrEqual(0.95);
    });
  }
});
