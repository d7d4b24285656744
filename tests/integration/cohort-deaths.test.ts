// Deaths in decoded lives (modalities/clinical/mortality.ts: derived from the row's age and
// conditions, the schemas having no death attribute): a fixed-seed sample of 2,000 rows of a
// model fitted to simulated sites, each decoded into its record. A deceased patient has
// Patient.deceasedDateTime inside the year before the reference date, the sampled age at death,
// and no Encounter, Observation, Condition, prescription, radiograph or note dated after it; the
// clinical verifier finds no chronology violation. The death rates follow the knowledge base.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../model/sample.ts';
import { Rng } from '../../model/rng.ts';
import { decodePatient, type DecodedPatient } from '../../modalities/fhir/decode.ts';
import { ClinicalInfeasibleError, wholeYears } from '../../modalities/fhir/timeline.ts';
import { recordIndex, verifyRecord } from '../../modalities/fhir/verify-record.ts';
import { DEATH_WINDOW_YEARS, deathProbability } from '../../modalities/clinical/index.ts';
import type { Schema } from '../../schema/schema.ts';
import { centralModel, pooledMultimodal } from './cohort-multimodal-helpers.ts';

/** Patients decoded; rows the planner finds no life for (counted) are replaced by the next sampled ones. */
const N = 2000;
let dir: string;
let schema: Schema;
const decoded: { row: number[]; p: DecodedPatient }[] = [];
let infeasible = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-deaths-'));
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 300, seed: 21 });
  schema = p.schema;
  const rows = sample(centralModel(p.pooled), { rows: Math.round(N * 1.25), seed: 21 });
  const root = new Rng('deaths-21');
  for (let r = 0; r < rows.rows && decoded.length < N; r++) {
    const row = rows.columns.map((c) => c[r]!);
    try {
      decoded.push({ row, p: decodePatient(schema, row, root.fork(r)) });
    } catch (e) {
      if (!(e instanceof ClinicalInfeasibleError)) throw e;
      infeasible++;
    }
  }
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CHRONOLOGY = new Set([
  'after-death',
  'onset-after-death',
  'before-birth',
  'after-reference-date',
  'onset-before-birth',
  'prescription-active-after-death',
]);

describe('deaths in decoded lives', () => {
  it('a deceased patient has nothing dated after death, and dies at the sampled age inside the window', () => {
    const refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
    const ageAttr = schema.attributes.find((a) => a.kind === 'age')!;
    const ageCol = schema.attributes.findIndex((a) => a.kind === 'age');
    const edges = (ageAttr as { edges: number[] }).edges;
    let deaths = 0;
    let afterDeath = 0;
    let chronology = 0;
    let stoppedAtDeath = 0;
    const index = recordIndex(schema);
    for (const { row, p } of decoded) {
      const resources = [p.patient, ...p.encounters, ...p.conditions, ...p.observations, ...p.medications];
      chronology += verifyRecord(index, resources).filter((v) => CHRONOLOGY.has(v.rule)).length;
      const death = p.patient.deceasedDateTime;
      expect(death === undefined).toBe(p.timeline.deathMs === undefined);
      if (typeof death !== 'string') continue;
      deaths++;
      const deathMs = Date.parse(death);
      expect(deathMs).toBeLessThan(refMs);
      expect(deathMs).toBeGreaterThanOrEqual(refMs - (DEATH_WINDOW_YEARS * 365 + 1) * 86_400_000);
      // The age at death is the sampled band's (what the sites' encoder reads for the deceased).
      const years = wholeYears(Date.parse(`${String(p.patient.birthDate)}T00:00:00Z`), deathMs);
      const band = row[ageCol]!;
      expect(years).toBeGreaterThanOrEqual(edges[band]!);
      if (band + 1 < edges.length) expect(years).toBeLessThan(edges[band + 1]!);
      const dated: string[] = [p.noteDate, p.imagingStarted];
      for (const e of p.encounters) {
        const period = e.period as { start: string; end?: string };
        dated.push(period.start, period.end ?? period.start);
      }
      for (const o of p.observations) dated.push(String(o.effectiveDateTime));
      for (const c of p.conditions) dated.push(String(c.onsetDateTime), String(c.recordedDate));
      for (const m of p.medications) dated.push(String(m.authoredOn));
      // Nothing is still being taken by a dead patient: what ran until the death stopped with it.
      for (const m of p.medications) {
        expect(m.status, String(m.id)).not.toBe('active');
        if ((m.statusReason as { text?: string } | undefined)?.text === `Patient died on ${death.slice(0, 10)}`) stoppedAtDeath++;
      }
      for (const d of dated) if (Date.parse(d.length === 10 ? `${d}T00:00:00Z` : d) > deathMs) afterDeath++;
    }
    const expected = decoded.reduce((s, { p }) => {
      const conds = p.timeline.conditions.map((c) => c.name);
      return s + deathProbability(p.timeline.ageYears, conds, DEATH_WINDOW_YEARS);
    }, 0);
    if (process.env.DEATHS_PRINT) console.info({ decoded: decoded.length, infeasible, deaths, expected, afterDeath, chronology });
    expect(decoded.length).toBe(N);
    expect(afterDeath).toBe(0);
    expect(chronology).toBe(0);
    expect(stoppedAtDeath).toBeGreaterThan(0);
    // Bernoulli draws: within 5 standard deviations of the knowledge base's expectation (chance of failing < 1e-6).
    expect(Math.abs(deaths - expected)).toBeLessThan(5 * Math.sqrt(expected) + 1);
    expect(deaths).toBeGreaterThan(0);
  });

  it('the verifier catches an Encounter that ends after death and an onset after death', () => {
    const { p } = decoded.find(({ p }) => p.patient.deceasedDateTime === undefined && p.conditions.length > 0)!;
    const enc = p.encounters[p.encounters.length - 1]!;
    const period = enc.period as { start: string; end: string };
    const patient = { ...p.patient, deceasedDateTime: new Date(Date.parse(period.start) + 60_000).toISOString() };
    const cond = { ...p.conditions[0]!, onsetDateTime: new Date(Date.parse(period.start) + 2 * 86_400_000).toISOString().slice(0, 10) };
    const rules = verifyRecord(recordIndex(schema), [patient, ...p.encounters, cond]).map((v) => v.rule);
    expect(rules).toContain('after-death');
    expect(rules).toContain('onset-after-death');
    // A prescription left active in a dead patient's chart.
    const active = p.medications.find((m) => m.status === 'active');
    if (active)
      expect(verifyRecord(recordIndex(schema), [patient, active]).map((v) => v.rule)).toContain('prescription-active-after-death');
    // The same record without the death passes these rules.
    const alive = verifyRecord(recordIndex(schema), [p.patient, ...p.encounters, ...p.conditions]).map((v) => v.rule);
    expect(alive).not.toContain('after-death');
  });
});
