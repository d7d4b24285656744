/**
 * A sampled row planned as a life (public knowledge only, no budget): birth, the visits of the
 * last years at a realistic cadence, a diagnosis visit per condition at an onset age drawn from
 * the knowledge base conditional on the patient's age, a follow-up after each chronic diagnosis,
 * repeated vitals and labs whose values follow the related condition's course, and prescriptions
 * from public treatment guidance. The *latest* value of every lab (the index visit's) lies in the
 * row's bin, so the model's marginals hold for what the sites' encoder reads back. Pure: the Rng
 * drives every draw.
 */
import type { Rng } from '../../model/rng.ts';
import { chainLines, planEscalation } from './therapy-plan.ts';
import { treatmentStartDays } from './treatment-start.ts';
import type { LabAttribute } from '../../schema/schema.ts';
import {
  CONDITIONS,
  consistentRange,
  DEATH_WINDOW_YEARS,
  deathProbability,
  drawOnsetYears,
  LABS,
  BMI_FOR_AGE_YEARS,
  bmiForAgeP95,
  HBA1C_FALL_SLACK,
  highestHba1cBefore,
  medianHeightCm,
  minOnsetYears,
  pneumoniaAdmitted,
  pneumoniaCourses,
  CAP_COMORBIDITIES,
  DEFINING_LAB_REASON,
  DEFINING_LABS,
  definingLabViolations,
  YOUNG_INFANT_ADMISSION_DAYS,
  TREATMENTS,
  type Course,
  type Drug,
} from '../clinical/index.ts';

export const DAY_MS = 86_400_000;
export const YEAR_MS = 365.2425 * DAY_MS;
/** Years of routine visits before the index visit that the record holds. */
export const RECORD_YEARS = 3;

/** `inpatient`: a hospital stay (an infant's pneumonia), the only non-ambulatory kind. */
export type EncounterKind = 'wellness' | 'diagnosis' | 'follow-up' | 'imaging' | 'inpatient';

export interface PlanEncounter {
  kind: EncounterKind;
  startMs: number;
  endMs: number;
  /** Condition diagnosed or followed up. */
  reason?: string;
}
export interface PlanCondition {
  name: string;
  onsetMs: number;
  encounter: number;
  acute: boolean;
  /** An acute episode's resolution day, when the record's end (the reference date or death) is past it. */
  abatementMs?: number;
  /** Why the diagnosis visit has no value meeting the definition (clinical/defining-labs.ts), when it has none. */
  definingLabReason?: string;
}
export interface PlanMeasurement {
  lab: string;
  ms: number;
  value: number;
  encounter: number;
}
export interface PlanMedication {
  drug: Drug;
  reasons: string[];
  authoredMs: number;
  encounter: number;
  /** When a later prescription of the same drug (an adult or higher strength) replaced this one. */
  stoppedMs?: number;
  /** Why it was stopped (FHIR statusReason text). */
  stopReason?: string;
  /** The prescription of the same drug this one replaced (FHIR priorPrescription). */
  prior?: PlanMedication;
  /** Why this step up was taken (a lab above target), when it was one. */
  stepReason?: string;
  /** An acute course (an antibiotic): its doses and days; the prescription is then completed. */
  course?: Course;
  /** A child's step up by weight (AAP 2017): the weight (kg) it was dosed for, weighed at its visit. */
  weightKg?: number;
}

export interface PatientTimeline {
  birthMs: number;
  /** Whole years at the reference date, or at death (the sampled age band's value: the sites' encoder reads the age at death). */
  ageYears: number;
  /** The most recent visit: its labs are the row's values; notes, imaging and genome belong to it. */
  indexEncounter: number;
  indexMs: number;
  encounters: PlanEncounter[];
  conditions: PlanCondition[];
  measurements: PlanMeasurement[];
  medications: PlanMedication[];
  /**
   * Death, when the life ends before the reference date. The schemas have no death attribute:
   * it is derived from the row's age and conditions by the knowledge base's mortality
   * (clinical/mortality.ts), at most DEATH_WINDOW_YEARS before the reference date, after the
   * index visit; nothing of the record is dated after it.
   */
  deathMs?: number;
}

/** What the planner needs from a row. */
export interface RowFacts {
  ageBand: [number, number];
  sex: string;
  conditions: string[];
  labs: { attr: LabAttribute; bin: number }[];
}

/** A row no life fits (e.g. no age in the band allows every lab value): the draft is rejected. */
export class ClinicalInfeasibleError extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** The lab → condition whose course shapes it, and the value range at diagnosis (adult, child). */
const COURSE: Record<string, { condition: string; adult: [number, number]; child: [number, number] }> = {
  hba1c: { condition: 'type2_diabetes', adult: [6.5, 9.5], child: [6.5, 9] },
  systolic_bp: { condition: 'hypertension', adult: [140, 172], child: [122, 140] },
  ldl_cholesterol: { condition: 'hyperlipidemia', adult: [160, 225], child: [130, 190] },
  egfr: { condition: 'chronic_kidney_disease', adult: [35, 59], child: [40, 59] },
  bmi: { condition: 'obesity', adult: [30, 37], child: [24, 30] },
};

/** Bounds of a lab bin (open bins end at the schema's range). */
export function binBounds(lab: LabAttribute, bin: number): [number, number] {
  const lo = bin === 0 ? lab.range[0] : lab.edges[bin - 1];
  const hi = bin === lab.edges.length ? lab.range[1] : lab.edges[bin];
  return [lo, hi];
}

/** Grid points k/10^decimals inside [lo, hi] that also lie in bin `bin` (as [kLo, kHi]), or undefined. */
function gridIn(lab: LabAttribute, bin: number, lo: number, hi: number): [number, number] | undefined {
  const [bLo, bHi] = binBounds(lab, bin);
  const s = 10 ** lab.decimals;
  const kLo = Math.ceil(Math.max(lo, bLo) * s - 1e-9);
  let kHi = Math.floor(Math.min(hi, bHi) * s + 1e-9);
  // Bins are [edge, next edge): the upper edge belongs to the next bin (except the range's max).
  if (bin !== lab.edges.length && kHi / s >= bHi - 1e-12) kHi -= 1;
  return kHi >= kLo ? [kLo, kHi] : undefined;
}

/**
 * A value of `lab` in bin `bin` and inside [lo, hi] (the consistent range), on the schema's
 * decimal grid. A bin holding `typical` (the age's typical value) draws a normal around it with
 * the knowledge base's tail scale as its spread, truncated to the bin; other interior bins are
 * uniform; an open bin (or one cut by the range) decays exponentially from its finite edge with
 * the tail scale, so values thin out towards physiological limits instead of piling up at a bin
 * or range limit.
 */
export function drawInBin(lab: LabAttribute, bin: number, lo: number, hi: number, rng: Rng, typical?: number): number | undefined {
  const g = gridIn(lab, bin, lo, hi);
  if (!g) return undefined;
  const s = 10 ** lab.decimals;
  const [kLo, kHi] = g;
  const spread = LABS[lab.name]?.tailScale;
  // The age's typical value inside the bin (a toddler's systolic pressure ~95 in the bin below
  // 120): values gather around it, as a population's do, instead of spreading over the bin or
  // crowding its upper edge.
  if (typical !== undefined && spread !== undefined && typical * s >= kLo && typical * s <= kHi) {
    for (let tries = 0; tries < 32; tries++) {
      const k = Math.round((typical + spread * rng.normal()) * s);
      if (k >= kLo && k <= kHi) return Number((k / s).toFixed(lab.decimals));
    }
  }
  const [bLo, bHi] = binBounds(lab, bin);
  const lowerOpen = bin === 0 || lo > bLo;
  const upperOpen = bin === lab.edges.length || hi < bHi;
  const scale = (LABS[lab.name]?.tailScale ?? (kHi - kLo) / s / 3) * s;
  let k: number;
  if (lowerOpen === upperOpen || kHi - kLo < 2) k = kLo + rng.int(kHi - kLo + 1);
  else {
    // Truncated exponential by inversion: no rejection loop, no mass at the far limit.
    const span = kHi - kLo + 1;
    const u = rng.next();
    const d = Math.min(span - 1, Math.floor(-scale * Math.log(1 - u * (1 - Math.exp(-span / scale)))));
    k = upperOpen ? kLo + d : kHi - d;
  }
  return Number((k / s).toFixed(lab.decimals));
}

/**
 * `v` on the decimal grid inside [lo, hi]: a value beyond a bound is reflected back into the
 * range (a drift past a physiological limit does not pile values up on that limit).
 */
function clampToGrid(v: number, lo: number, hi: number, decimals: number): number {
  const s = 10 ** decimals;
  if (v < lo) v = Math.min(hi, lo + (lo - v));
  else if (v > hi) v = Math.max(lo, hi - (v - hi));
  let k = Math.round(v * s);
  k = Math.max(Math.ceil(lo * s - 1e-9), Math.min(Math.floor(hi * s + 1e-9), k));
  return Number((k / s).toFixed(decimals));
}

/** Whole years between two instants (calendar birthdays). */
export function wholeYears(fromMs: number, toMs: number): number {
  const a = new Date(fromMs);
  const b = new Date(toMs);
  let y = b.getUTCFullYear() - a.getUTCFullYear();
  if (b.getUTCMonth() < a.getUTCMonth() || (b.getUTCMonth() === a.getUTCMonth() && b.getUTCDate() < a.getUTCDate())) y--;
  return y;
}

const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

/** Routine visit ages (years): the infant schedule, yearly in childhood, then by adult age group. */
function wellnessAges(untilYears: number): number[] {
  const out = [2 / 52, 2 / 12, 4 / 12, 6 / 12, 9 / 12, 1, 1.25, 1.5, 2, 2.5];
  for (let a = 3; a < 18; a++) out.push(a);
  for (let a = 18; a < 40; a += 3) out.push(a);
  for (let a = 40; a < 65; a += 2) out.push(a);
  for (let a = 65; a < 110; a++) out.push(a);
  return out.filter((a) => a < untilYears);
}

/**
 * The shortest time between two routine check-ups at `ageYears`: half the schedule's interval
 * (infant visits 1-3 months apart, toddlers' 3-6 months, yearly or rarer from 3).
 */
export function routineGapDays(ageYears: number): number {
  return ageYears < 1 ? 21 : ageYears < 3 ? 45 : 180;
}

/** Ages in the band at which every condition may have begun and every lab value is plausible. */
export function feasibleAges(row: RowFacts): number[] {
  const out: number[] = [];
  const has = (c: string) => row.conditions.includes(c);
  const [lo, hi] = row.ageBand;
  // The verdict only changes where a range, an adult rule or a minimum onset age starts: one
  // check per segment between those ages.
  const cuts = new Set<number>([lo, ADULT_CUT]);
  for (const c of row.conditions) cuts.add(minOnsetYears(c));
  for (const { attr } of row.labs) for (const r of LABS[attr.name]?.byAge ?? []) cuts.add(r.fromYears);
  // Children's BMI limit (the 95th percentile for age) changes every year of age.
  if (row.labs.some(({ attr }) => attr.name === 'bmi')) for (let y = BMI_FOR_AGE_YEARS[0]; y <= BMI_FOR_AGE_YEARS[1]; y++) cuts.add(y);
  const starts = [...cuts].filter((y) => y >= lo && y < hi).sort((a, b) => a - b);
  for (let i = 0; i < starts.length; i++) {
    const y = starts[i];
    if (row.conditions.some((c) => minOnsetYears(c) > y)) continue;
    if (row.labs.some(({ attr, bin }) => !labFits(attr, bin, y, has, row.sex))) continue;
    for (let a = y; a < (i + 1 < starts.length ? starts[i + 1] : hi); a++) out.push(a);
  }
  return out;
}
/** Lab–condition rules marked adults-only start here (ranges.ts). */
const ADULT_CUT = 18;

function labFits(attr: LabAttribute, bin: number, ageYears: number, has: (c: string) => boolean, sex: string): boolean {
  const r = consistentRange(attr.name, ageYears, has, sex) ?? [attr.range[0], attr.range[1]];
  return gridIn(attr, bin, r[0], r[1]) !== undefined;
}

/** Plans one patient's life from a row. Throws ClinicalInfeasibleError when no life fits it. */
export function planTimeline(row: RowFacts, refMs: number, rng: Rng): PatientTimeline {
  const ages = feasibleAges(row);
  if (ages.length === 0)
    throw new ClinicalInfeasibleError(
      'no-plausible-age-in-band',
      `no age in [${row.ageBand[0]}, ${row.ageBand[1]}) fits conditions ${row.conditions.join(', ') || 'none'} and the lab values`,
    );
  const years = ages[rng.int(ages.length)];
  // Death (its own stream, so the rest of the plan draws as before): the life then ends at the
  // death day, which takes the reference date's place below (the age at death is `years`).
  const fate = rng.fork('death');
  let deathMs: number | undefined;
  if (fate.next() < deathProbability(years, row.conditions, DEATH_WINDOW_YEARS)) {
    const daysBack = 1 + fate.int(Math.round(DEATH_WINDOW_YEARS * 365));
    // In the evening: after the index visit and its note even when they fall on the death day.
    deathMs = dayStart(refMs) - daysBack * DAY_MS + (20 + fate.int(4)) * 3600_000;
    refMs = dayStart(deathMs);
  }
  const { birthMs, indexDay } = planBirthAndIndex(row, years, refMs, rng);
  const indexMs = indexDay + 9 * 3600_000;
  const ageAt = (ms: number) => (ms - birthMs) / YEAR_MS;
  const ageIndex = ageAt(indexMs);

  const encounters: PlanEncounter[] = [];
  const addEncounter = (kind: EncounterKind, startMs: number, minutes: number, reason?: string) => {
    encounters.push({ kind, startMs, endMs: startMs + minutes * 60_000, ...(reason ? { reason } : {}) });
    return encounters.length - 1;
  };

  const { conditions, firstFinding } = planConditions(row, rng, { birthMs, indexDay, ageIndex, refMs }, addEncounter);
  // A treatment that could not start at the diagnosis (the drug not yet on the market, the child
  // too young for it) starts at a visit when it first could, not decades later at the first
  // visit of the record's window (a chart review found hypertension from 1983 untreated until 2022).
  for (const day of treatmentStartDays(row, conditions, birthMs, indexDay - RECORD_YEARS * YEAR_MS))
    addEncounter('follow-up', day.ms, 20, day.condition);
  const pneumonia = conditions.find((c) => c.acute);
  // Routine visits of the record's window, each jittered by up to a month, before the index visit.
  for (const a of wellnessAges(ageIndex)) {
    if (a < ageIndex - RECORD_YEARS) continue;
    const jitter = a < 1 ? 0 : rng.int(31) - 15;
    const day = dayStart(birthMs + a * YEAR_MS) + jitter * DAY_MS;
    if (day <= dayStart(birthMs) || day >= indexDay) continue;
    // No check-up while the child is in hospital.
    if (encounters.some((e) => e.kind === 'inpatient' && day + 9 * 3600_000 >= dayStart(e.startMs) && day <= e.endMs)) continue;
    // A routine index visit is this age's scheduled check-up: no second one days or weeks before it.
    if (!pneumonia && indexDay - day < routineGapDays(a) * DAY_MS) continue;
    addEncounter('wellness', day + 9 * 3600_000, 30);
  }
  const indexEncounter = addEncounter(pneumonia ? 'follow-up' : 'wellness', indexMs, 40, pneumonia?.name);
  for (const c of conditions) if (c.encounter < 0) c.encounter = indexEncounter;
  // Chronological order (stable: a diagnosis at 08:00 precedes a visit at 09:00 the same day).
  const order = encounters.map((_, i) => i).sort((x, y) => encounters[x].startMs - encounters[y].startMs || x - y);
  const renumber = new Map(order.map((old, i) => [old, i]));
  const sorted = order.map((i) => encounters[i]);
  for (const c of conditions) c.encounter = renumber.get(c.encounter)!;
  const onset = new Map(conditions.map((c) => [c.name, c.onsetMs]));
  const hasAt = (ms: number) => (c: string) => onset.has(c) && onset.get(c)! <= ms;

  // The visits that record each diagnosis's defining lab: its diagnosis visit and any first finding.
  const defining = new Map<number, string[]>();
  const definedAt = (i: number, name: string) => defining.set(i, [...(defining.get(i) ?? []), name]);
  for (const c of conditions) if (DEFINING_LABS[c.name]) definedAt(c.encounter, c.name);
  for (const [name, i] of firstFinding) definedAt(renumber.get(i)!, name);
  const measurements = planMeasurements(row, sorted, renumber.get(indexEncounter)!, birthMs, onset, hasAt, rng, defining);
  for (const c of conditions) {
    const reason = definingLabReason(row, c, sorted, measurements, ageAt);
    if (reason) c.definingLabReason = reason;
  }
  const diagnosed = new Map(conditions.map((c) => [c.name, sorted[c.encounter].startMs]));
  const weightAt = (ms: number) => estimatedWeightKg(row.sex, measurements, ms, ageAt(ms));
  const medications = [
    ...planEscalation(chainLines(planMedications(row, sorted, diagnosed, ageAt)), sorted, measurements, onset, ageAt, weightAt),
    ...planAntibiotics(row, sorted, conditions, measurements, onset, ageAt),
  ];
  return {
    birthMs,
    ageYears: years,
    indexEncounter: renumber.get(indexEncounter)!,
    indexMs,
    encounters: sorted,
    conditions,
    measurements,
    medications,
    ...(deathMs !== undefined ? { deathMs } : {}),
  };
}

/**
 * The stated reason of a diagnosis whose visit has no value meeting its definition (none when it
 * has one): its lab is missing from the row (never measured here), or the diagnosis was made on the
 * index visit, whose value is the row's (or CKD's earlier finding did not fit in the life).
 */
function definingLabReason(
  row: RowFacts,
  c: PlanCondition,
  encounters: PlanEncounter[],
  measurements: PlanMeasurement[],
  ageAt: (ms: number) => number,
): string | undefined {
  const d = DEFINING_LABS[c.name];
  if (!d) return undefined;
  const all = measurements.filter((m) => m.lab === d.lab);
  const atVisit = all.filter((m) => m.encounter === c.encounter);
  if (definingLabViolations(c.name, ageAt(encounters[c.encounter].startMs), atVisit, all, false).length === 0) return undefined;
  if (!row.labs.some((l) => l.attr.name === d.lab)) return `${DEFINING_LAB_REASON}: no ${d.lab} result is on file for this patient`;
  return `${DEFINING_LAB_REASON}: diagnosed on an earlier result from outside this record`;
}

/**
 * The conditions of a life: onsets drawn conditional on the age reached at the index visit, a
 * diagnosis visit each (and CKD's first finding), a follow-up 90 days after a chronic diagnosis,
 * an acute episode's resolution. `addEncounter` adds a visit and returns its (pre-sort) index.
 */
function planConditions(
  row: RowFacts,
  rng: Rng,
  life: { birthMs: number; indexDay: number; ageIndex: number; refMs: number },
  addEncounter: (kind: EncounterKind, startMs: number, minutes: number, reason?: string) => number,
): { conditions: PlanCondition[]; firstFinding: Map<string, number> } {
  const { birthMs, indexDay, ageIndex, refMs } = life;
  const ageAt = (ms: number) => (ms - birthMs) / YEAR_MS;
  const conditions: PlanCondition[] = [];
  /** Condition → the visit (pre-sort index) of its first defining finding, where it needs two. */
  const firstFinding = new Map<string, number>();
  for (const name of row.conditions) {
    const acute = CONDITIONS[name]?.course === 'acute';
    const { onsetDay, admitted } = acute
      ? acuteOnset(indexDay, birthMs, rng)
      : { onsetDay: chronicOnsetDay(name, ageIndex, indexDay, birthMs, rng), admitted: false };
    // A chronic onset on the index day is diagnosed at the index visit, not at a visit an hour before it.
    const enc =
      onsetDay >= indexDay
        ? -1
        : admitted
          ? addEncounter('inpatient', onsetDay + 8 * 3600_000, YOUNG_INFANT_ADMISSION_DAYS * 24 * 60, name)
          : addEncounter('diagnosis', onsetDay + 8 * 3600_000, 30, name);
    // A diagnosis that needs its lab on two occasions (CKD: KDIGO 2012, eGFR < 60 for more than 3
    // months) began at the first one, a visit 90-120 days before the confirming diagnosis visit
    // (its own stream: the rest of the plan draws as before).
    let onsetMs = onsetDay;
    const confirm = DEFINING_LABS[name]?.confirmedAfterDays;
    if (!acute && confirm !== undefined && row.labs.some((l) => l.attr.name === DEFINING_LABS[name].lab)) {
      const first = onsetDay - (confirm + rng.fork(`first-${name}`).int(31)) * DAY_MS;
      if (first > dayStart(birthMs) + DAY_MS && ageAt(first) >= minOnsetYears(name)) {
        firstFinding.set(name, addEncounter('diagnosis', first + 8 * 3600_000, 20, name));
        onsetMs = first;
      }
    }
    conditions.push({ name, onsetMs, encounter: enc, acute });
    // A follow-up 90 days after a chronic diagnosis, when it falls in the record's window.
    const followUp = onsetDay + 90 * DAY_MS;
    if (!acute && followUp < indexDay - DAY_MS && followUp >= indexDay - RECORD_YEARS * YEAR_MS)
      addEncounter('follow-up', followUp + 8.5 * 3600_000, 20, name);
  }
  // An acute episode resolves after the knowledge base's time (its own stream: the rest of the plan
  // draws as before); it stays active when the record ends first (refMs is the death day for a death).
  const resolution = rng.fork('resolution');
  for (const c of conditions) {
    const days = CONDITIONS[c.name]?.resolvesInDays;
    if (!c.acute || !days) continue;
    const abatementMs = c.onsetMs + (days[0] + resolution.int(days[1] - days[0] + 1)) * DAY_MS;
    if (abatementMs <= refMs) c.abatementMs = abatementMs;
  }
  return { conditions, firstFinding };
}

/**
 * Birth (whole years at the reference date — or death — equal to `years`, at least two days old)
 * and the index visit's day, within the last year and on or after the last birthday.
 */
function planBirthAndIndex(row: RowFacts, years: number, refMs: number, rng: Rng): { birthMs: number; indexDay: number } {
  // Birth: whole years at the reference date (or death) == years (at least two days old).
  const ref = new Date(refMs);
  // An infant with pneumonia is old enough for a week in hospital before the index visit (a young
  // infant is admitted): born at least 11 days before the reference date.
  const infantAcute = years === 0 && row.conditions.some((c) => CONDITIONS[c]?.course === 'acute');
  const youngest = infantAcute ? YOUNG_INFANT_ADMISSION_DAYS + 4 : 2;
  const latest = Date.UTC(ref.getUTCFullYear() - years, ref.getUTCMonth(), ref.getUTCDate()) - (years === 0 ? youngest * DAY_MS : 0);
  const earliest = Date.UTC(ref.getUTCFullYear() - years - 1, ref.getUTCMonth(), ref.getUTCDate()) + DAY_MS;
  const birthMs = earliest + rng.int(Math.round((latest - earliest) / DAY_MS) + 1) * DAY_MS;
  // Index visit within the last year, on or after the last birthday (so its age is `years`).
  const b = new Date(birthMs);
  const birthday = Date.UTC(b.getUTCFullYear() + years, b.getUTCMonth(), b.getUTCDate());
  // An infant's pneumonia may need a week in hospital before the index visit follows it up.
  const admissionRoom = infantAcute ? (YOUNG_INFANT_ADMISSION_DAYS + 3) * DAY_MS : DAY_MS;
  const lowDay = Math.max(birthday, refMs - 365 * DAY_MS, birthMs + admissionRoom);
  if (infantAcute && lowDay > refMs - DAY_MS)
    throw new ClinicalInfeasibleError(
      'young-infant-admission-infeasible',
      'an infant with pneumonia born too recently for a hospital stay before the index visit',
    );
  const highDay = Math.max(lowDay, refMs - DAY_MS);
  const indexDay = lowDay + rng.int(Math.round((highDay - lowDay) / DAY_MS) + 1) * DAY_MS;
  return { birthMs, indexDay };
}

/**
 * An acute episode's onset day, 3 to 21 days before the index visit; an infant under 3 months is
 * admitted for the course (PIDS/IDSA 2011), the onset then moved back so that the stay ends before
 * the index visit follows it up.
 */
function acuteOnset(indexDay: number, birthMs: number, rng: Rng): { onsetDay: number; admitted: boolean } {
  const ageAt = (ms: number) => (ms - birthMs) / YEAR_MS;
  let onsetDay = Math.max(dayStart(birthMs), indexDay - (3 + rng.int(19)) * DAY_MS);
  if (!pneumoniaAdmitted(ageAt(onsetDay + 8 * 3600_000))) return { onsetDay, admitted: false };
  onsetDay = Math.max(dayStart(birthMs) + DAY_MS, indexDay - (YOUNG_INFANT_ADMISSION_DAYS + 2 + rng.int(14)) * DAY_MS);
  if (indexDay - onsetDay < (YOUNG_INFANT_ADMISSION_DAYS + 1) * DAY_MS)
    throw new ClinicalInfeasibleError('young-infant-admission-infeasible', 'no room for a hospital stay between birth and the index visit');
  return { onsetDay, admitted: pneumoniaAdmitted(ageAt(onsetDay + 8 * 3600_000)) };
}

/**
 * A chronic condition's onset day, drawn from the knowledge base conditional on the age reached at
 * the index visit. The age reached in whole calendar years is at least the minimum
 * (feasibleAges), but fractional years of 365.2425 days may fall short of it by under a day: the
 * onset is then the minimum, on or before the index visit.
 */
function chronicOnsetDay(name: string, ageIndex: number, indexDay: number, birthMs: number, rng: Rng): number {
  const upper = Math.max(minOnsetYears(name), ageIndex - 1 / 365.2425);
  let onsetYears: number;
  try {
    onsetYears = drawOnsetYears(name, upper, rng.next(), rng.next());
  } catch (e) {
    throw new ClinicalInfeasibleError('onset-age-infeasible', (e as Error).message);
  }
  return Math.min(indexDay, dayStart(birthMs + Math.ceil((onsetYears * YEAR_MS) / DAY_MS) * DAY_MS));
}

function planMeasurements(
  row: RowFacts,
  encounters: PlanEncounter[],
  index: number,
  birthMs: number,
  onset: Map<string, number>,
  hasAt: (ms: number) => (c: string) => boolean,
  rng: Rng,
  defining: ReadonlyMap<number, readonly string[]> = new Map(),
): PlanMeasurement[] {
  const out: PlanMeasurement[] = [];
  const ageAt = (ms: number) => (ms - birthMs) / YEAR_MS;
  const indexMs = encounters[index].startMs + 15 * 60_000;
  const ageIndex = ageAt(indexMs);
  for (const { attr, bin } of row.labs) {
    const k = LABS[attr.name];
    const r = consistentRange(attr.name, Math.floor(ageIndex), hasAt(indexMs), row.sex) ?? [attr.range[0], attr.range[1]];
    const latest = drawInBin(attr, bin, r[0], r[1], rng, k?.baseline(ageIndex));
    if (latest === undefined)
      throw new ClinicalInfeasibleError(
        `${attr.name}-out-of-range-for-age`,
        `${attr.name} bin ${bin} has no plausible value at age ${Math.floor(ageIndex)}`,
      );
    const course = COURSE[attr.name];
    const condOnset = course ? onset.get(course.condition) : undefined;
    let dxRange = course ? (ageAt(condOnset ?? indexMs) < 18 ? course.child : course.adult) : undefined;
    // A child's obesity is diagnosed from the 95th percentile of BMI-for-age up to the 120 % of it
    // where severe obesity begins (CDC), not at adult BMI values (a toddler's 95th percentile is ~18).
    const p95 = attr.name === 'bmi' ? bmiForAgeP95(ageAt(condOnset ?? indexMs), row.sex) : undefined;
    if (p95 !== undefined && ageAt(condOnset ?? indexMs) < 18) dxRange = [p95, 1.2 * p95];
    let dxValue = dxRange ? dxRange[0] + rng.next() * (dxRange[1] - dxRange[0]) : undefined;
    // HbA1c cannot fall faster than its kinetics allow (clinical/ranges.ts): a diagnosis weeks
    // before a low latest value had a lower diagnostic value (an 11-year-old went 7.6 → 4.8 % in 6 weeks).
    if (attr.name === 'hba1c' && dxValue !== undefined && condOnset !== undefined && condOnset < indexMs)
      dxValue = Math.min(dxValue, highestHba1cBefore(latest, (indexMs - condOnset) / DAY_MS) - HBA1C_FALL_SLACK / 2);
    const baseline = (ms: number) => k?.baseline(ageAt(ms)) ?? latest;
    encounters.forEach((e, i) => {
      if (i === index) {
        out.push({ lab: attr.name, ms: indexMs, value: latest, encounter: i });
        return;
      }
      const age = ageAt(e.startMs);
      const related = course !== undefined && e.reason === course.condition;
      const routine =
        e.kind === 'wellness' &&
        age >= (k?.measuredFromYears ?? 0) &&
        (attr.category === 'vital-signs' || age >= 18 || condOnset !== undefined);
      if (!related && !routine) return;
      const ms = e.startMs + 15 * 60_000;
      let v: number;
      if (condOnset !== undefined && dxValue !== undefined && ms < condOnset) {
        // Before diagnosis: drifting from the baseline towards the diagnostic value over 5 years.
        const w = Math.max(0, 1 - (condOnset - ms) / (5 * YEAR_MS));
        v = baseline(ms) + (dxValue - baseline(ms)) * 0.85 * w;
      } else if (condOnset !== undefined && dxValue !== undefined) {
        // From the diagnostic value towards the latest (treated) value.
        const span = Math.max(DAY_MS, indexMs - condOnset);
        v = dxValue + (latest - dxValue) * Math.min(1, (ms - condOnset) / span);
      } else v = latest + baseline(ms) - baseline(indexMs);
      v += (k?.sd ?? 0) * rng.normal();
      let cr = consistentRange(attr.name, Math.floor(age), hasAt(ms), row.sex) ?? [attr.range[0], attr.range[1]];
      // The visit that makes the diagnosis records a value meeting its definition (defining-labs.ts),
      // within what HbA1c's kinetics allow before the latest value: a diabetes diagnosed weeks before
      // a low HbA1c cannot have shown 6.5 % then, so its value is not forced up (definingBounds leaves
      // a range none of which meets the definition) and the Condition states its reason instead
      // (definingLabReason: an earlier result from outside the record, e.g. a plasma glucose).
      if (course && defining.get(i)?.includes(course.condition)) {
        if (attr.name === 'hba1c') {
          const cap = highestHba1cBefore(latest, (indexMs - ms) / DAY_MS) - HBA1C_FALL_SLACK / 2;
          cr = [cr[0], Math.max(cr[0], Math.min(cr[1], cap))];
        }
        cr = definingBounds(course.condition, age, cr, attr.decimals);
      }
      out.push({ lab: attr.name, ms, value: clampToGrid(v, cr[0], cr[1], attr.decimals), encounter: i });
    });
  }
  return out;
}

/** `range` narrowed to the values that meet `condition`'s definition at `ageYears` (unchanged when none of it does). */
function definingBounds(condition: string, ageYears: number, range: [number, number], decimals: number): [number, number] {
  const l = DEFINING_LABS[condition]?.limit(ageYears);
  if (!l) return range;
  const step = 10 ** -decimals;
  const r: [number, number] =
    'atLeast' in l
      ? [Math.max(range[0], Math.ceil(l.atLeast / step - 1e-9) * step), range[1]]
      : [range[0], Math.min(range[1], l.below - step)];
  return r[0] <= r[1] ? r : range;
}

/** Prescriptions from each condition's diagnosis visit (`onset`: when each condition was diagnosed). */
function planMedications(
  row: RowFacts,
  encounters: PlanEncounter[],
  onset: Map<string, number>,
  ageAt: (ms: number) => number,
): PlanMedication[] {
  const byDrug = new Map<string, PlanMedication>();
  for (const name of row.conditions) {
    const t = TREATMENTS[name];
    const on = onset.get(name);
    if (!t || on === undefined) continue;
    for (const drug of t.drugs) {
      // First visit on or after the diagnosis (and the drug's approval) at an age the drug is used
      // at, and started at for this condition.
      const from = Math.max(on, drug.availableFromYear === undefined ? -Infinity : Date.UTC(drug.availableFromYear, 0, 1));
      const [startFrom, startBefore] = t.startAgeYears?.[drug.rxnorm] ?? [-Infinity, Infinity];
      const minAge = Math.max(drug.minAgeYears, startFrom);
      const maxAge = Math.min(drug.maxAgeYears ?? Infinity, startBefore);
      const i = encounters.findIndex((e) => e.startMs >= from && ageAt(e.startMs) >= minAge && ageAt(e.startMs) < maxAge);
      if (i < 0) continue;
      const prev = byDrug.get(drug.rxnorm);
      if (!prev || encounters[i].startMs < prev.authoredMs)
        byDrug.set(drug.rxnorm, { drug, reasons: [...(prev?.reasons ?? []), name], authoredMs: encounters[i].startMs, encounter: i });
      else prev.reasons.push(name);
    }
  }
  // A prescription names only the indications diagnosed by the day it was written. Strengths of one
  // drug are linked into a course by chainLines (therapy-plan.ts).
  for (const m of byDrug.values()) m.reasons = m.reasons.filter((c) => onset.get(c)! <= m.authoredMs);
  return [...byDrug.values()];
}

/**
 * A child's weight at `ms` for dosing: the latest BMI measured by then (else the age's typical BMI)
 * times the squared median height for age and sex.
 */
function estimatedWeightKg(sex: string, measurements: PlanMeasurement[], ms: number, ageYears: number): number {
  let bmi = LABS.bmi.baseline(ageYears);
  let bmiMs = -Infinity;
  for (const m of measurements)
    if (m.lab === 'bmi' && m.ms <= ms && m.ms > bmiMs) {
      bmi = m.value;
      bmiMs = m.ms;
    }
  const heightM = medianHeightCm(ageYears, sex) / 100;
  return bmi * heightM * heightM;
}

/**
 * The antibiotic course of each acute episode (clinical/antibiotics.ts), written at its diagnosis
 * visit: a child's dose from a weight estimated as the latest BMI measured by then (else the age's
 * typical BMI) times the squared median height for age and sex; an adult's regimen by the
 * comorbidities diagnosed by then.
 */
function planAntibiotics(
  row: RowFacts,
  encounters: PlanEncounter[],
  conditions: PlanCondition[],
  measurements: PlanMeasurement[],
  onset: Map<string, number>,
  ageAt: (ms: number) => number,
): PlanMedication[] {
  const out: PlanMedication[] = [];
  for (const c of conditions) {
    if (c.name !== 'pneumonia') continue;
    const at = encounters[c.encounter].startMs;
    const age = ageAt(at);
    let bmi = LABS.bmi.baseline(age);
    let bmiMs = -Infinity;
    for (const m of measurements)
      if (m.lab === 'bmi' && (m.ms <= at || m.encounter === c.encounter) && m.ms > bmiMs) {
        bmi = m.value;
        bmiMs = m.ms;
      }
    const heightM = medianHeightCm(age, row.sex) / 100;
    const comorbid = CAP_COMORBIDITIES.some((x) => onset.has(x) && onset.get(x)! <= at);
    for (const course of pneumoniaCourses(age, bmi * heightM * heightM, comorbid))
      out.push({ drug: course.drug, reasons: [c.name], authoredMs: at, encounter: c.encounter, course });
  }
  return out;
}
