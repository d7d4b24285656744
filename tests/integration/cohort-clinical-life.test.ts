// A written cross-modal cohort read back from its files and checked as lives: onsets against the
// knowledge base's minimum ages and birth, an Encounter for every patient, every record passing
// the clinical verifier, notes worded for the patient's age at the note's date and quoting only
// values measured on or before it. The cohort size is FEDSYNTH_LIFE_N (default 600; the targets
// were measured at 20,000, docs/modalities.md).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCohort, type CohortResult } from '../../synthesis/cohort.ts';
import type { Schema } from '../../schema/schema.ts';
import { centralModel, pooledMultimodal } from './cohort-multimodal-helpers.ts';
import { minOnsetYears } from '../../modalities/clinical/index.ts';
import { recordIndex, verifyRecord } from '../../modalities/fhir/verify-record.ts';
import { wholeYears, YEAR_MS } from '../../modalities/fhir/timeline.ts';
import { LAB_LABELS } from '../../modalities/notes/templates.ts';
import type { FhirResourceLike } from '../../modalities/fhir/types.ts';
import { noteDrugName } from '../../synthesis/note-medications.ts';

const N = Number(process.env.FEDSYNTH_LIFE_N ?? 600);
let dir: string;
let schema: Schema;
let res: CohortResult;
const byPatient = new Map<string, FhirResourceLike[]>();

const read = (type: string): FhirResourceLike[] => {
  const text = readFileSync(join(dir, 'cohort', 'fhir', `${type}.ndjson`), 'utf8');
  return text
    ? text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];
};
const subjectOf = (r: FhirResourceLike) => ((r.subject as { reference?: string } | undefined)?.reference ?? '').replace('Patient/', '');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-life-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 300 });
  schema = p.schema;
  res = await writeCohort(schema, centralModel(p.pooled), {
    n: N,
    seed: 13,
    dir: join(dir, 'cohort'),
    modalities: { imageRows: 64, imageCols: 64 },
  });
  for (const type of Object.keys(res.files))
    for (const r of read(type)) {
      const id = r.resourceType === 'Patient' ? r.id! : subjectOf(r);
      const list = byPatient.get(id) ?? [];
      list.push(r);
      byPatient.set(id, list);
    }
}, 600_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a cohort of lives', () => {
  it('every patient has an Encounter and every clinical resource references one', () => {
    expect(byPatient.size).toBe(res.dataset.rows);
    for (const [id, rs] of byPatient) {
      expect(
        rs.some((r) => r.resourceType === 'Encounter'),
        id,
      ).toBe(true);
      for (const r of rs)
        if (['Condition', 'Observation', 'ImagingStudy', 'MedicationRequest'].includes(r.resourceType))
          expect((r.encounter as { reference?: string } | undefined)?.reference, `${r.resourceType}/${r.id}`).toMatch(/^Encounter\//);
    }
  });

  it('no onset before birth or before the knowledge base minimum; every record passes the verifier', () => {
    const index = recordIndex(schema);
    const snomed = new Map(
      schema.attributes.flatMap((a) => (a.kind === 'condition' ? a.codes.snomed.map((c) => [c, a.name] as const) : [])),
    );
    let early = 0;
    let beforeBirth = 0;
    let conditions = 0;
    for (const rs of byPatient.values()) {
      const p = rs.find((r) => r.resourceType === 'Patient')!;
      const birth = Date.parse(`${p.birthDate}T00:00:00Z`);
      for (const c of rs.filter((r) => r.resourceType === 'Condition')) {
        conditions++;
        const name = snomed.get((c.code as { coding: { code: string }[] }).coding[0].code)!;
        const onset = Date.parse(`${c.onsetDateTime}T00:00:00Z`);
        if (onset < birth) beforeBirth++;
        if ((onset - birth) / YEAR_MS < minOnsetYears(name) - 1 / 365) early++;
      }
      expect(verifyRecord(index, rs)).toEqual([]);
    }
    expect(conditions).toBeGreaterThan(0);
    expect({ early, beforeBirth }).toEqual({ early: 0, beforeBirth: 0 });
  });

  it('notes: age at their own date, children as children, values quoted only from on or before the note', () => {
    let childNotes = 0;
    let quoted = 0;
    for (const rs of byPatient.values()) {
      const doc = rs.find((r) => r.resourceType === 'DocumentReference');
      if (!doc) continue;
      const p = rs.find((r) => r.resourceType === 'Patient')!;
      const text = readFileSync(join(dir, 'cohort', 'notes', `${p.id}.txt`), 'utf8');
      const noteMs = Date.parse(doc.date as string);
      const birth = Date.parse(`${p.birthDate}T00:00:00Z`);
      const years = wholeYears(birth, noteMs);
      const stated = /(\d+)-year-old|(\d+) y\/o/.exec(text);
      if (years >= 1) expect(stated && Number(stated[1] ?? stated[2]), p.id).toBe(years);
      if (years < 18) {
        childNotes++;
        expect(text, p.id).not.toMatch(/\b(man|woman|adult)\b/i);
      }
      // Each quoted value is the latest measurement of that lab on or before the note.
      for (const a of schema.attributes) {
        if (a.kind !== 'lab') continue;
        const m = new RegExp(`${LAB_LABELS[a.name]} ([0-9.]+) `).exec(text);
        if (!m) continue;
        quoted++;
        const obs = rs
          .filter(
            (r) =>
              r.resourceType === 'Observation' && (r.code as { coding: { code: string }[] }).coding.some((c) => a.loinc.includes(c.code)),
          )
          .map((r) => ({ ms: Date.parse(r.effectiveDateTime as string), v: (r.valueQuantity as { value: number }).value }))
          .filter((o) => o.ms <= noteMs)
          .sort((x, y) => x.ms - y.ms);
        expect(obs.length, `${p.id} ${a.name}`).toBeGreaterThan(0);
        expect(Number(m[1]), `${p.id} ${a.name}`).toBe(obs[obs.length - 1].v);
      }
    }
    expect(quoted).toBeGreaterThan(0);
    expect(childNotes).toBeGreaterThanOrEqual(0);
  });

  it('notes name every prescription running at their date and the recent antibiotic, by name and dose, and no other', () => {
    let named = 0;
    let antibiotics = 0;
    for (const rs of byPatient.values()) {
      const doc = rs.find((r) => r.resourceType === 'DocumentReference');
      if (!doc) continue;
      const p = rs.find((r) => r.resourceType === 'Patient')!;
      const text = readFileSync(join(dir, 'cohort', 'notes', `${p.id}.txt`), 'utf8').toLowerCase();
      const noteMs = Date.parse(doc.date as string);
      const rxs = rs.filter((r) => r.resourceType === 'MedicationRequest') as (FhirResourceLike & Record<string, any>)[];
      // When each ended: its successor's start (priorPrescription), its course's days, or never.
      const endOf = (m: any) => {
        const next = rxs.find((x) => x.priorPrescription?.reference === `MedicationRequest/${m.id}`);
        if (next) return Date.parse(next.authoredOn);
        if (m.dispenseRequest) return Date.parse(m.authoredOn) + m.dispenseRequest.expectedSupplyDuration.value * 86_400_000;
        return Infinity;
      };
      for (const m of rxs) {
        const name = noteDrugName(m.medicationCodeableConcept.coding[0].display).toLowerCase();
        const started = Date.parse(m.authoredOn) <= noteMs;
        const due = started && (m.dispenseRequest ? true : endOf(m) > noteMs);
        expect(text.includes(name), `${p.id}: ${name} ${due ? 'running but not named' : 'named but not running'}`).toBe(due);
        if (due) named++;
        if (due && m.dispenseRequest) antibiotics++;
      }
    }
    expect(named).toBeGreaterThan(50);
    expect(antibiotics).toBeGreaterThan(0);
  });

  it('reports the verifiers per rule: plausibility rows, clinical records, notes', () => {
    expect(res.plausibility.rules).toContain('type2_diabetes-under-10');
    expect(res.clinical.recordsVerified).toBeGreaterThanOrEqual(res.dataset.rows);
    expect(res.modalities!.clinical).toEqual(res.clinical);
    expect(res.modalities!.notes.stats.byIssue).toBeDefined();
  });
});
