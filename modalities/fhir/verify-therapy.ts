/**
 * The record verifier's treatment-course rules (clinical/escalation.ts), on a patient's flat
 * resources: an adult with coronary disease or heart failure is on the drugs the guidance requires
 * at each visit (`coronary-disease-without-high-intensity-statin` after the first year,
 * `coronary-disease-without-aspirin`, `heart-failure-without-beta-blocker`,
 * `heart-failure-without-diuretic`); a step up (a higher strength, an add-on agent) has its reason
 * (`dose-increase-without-lab`); an add-on agent is written on its base drug's maximal strength
 * (`add-on-without-maximal-base`); one strength of a drug is active at a time
 * (`duplicate-active-strength`); a child's lisinopril step stays within 0.6 mg/kg of the weight
 * measured at its visit (`paediatric-dose-above-max`, AAP 2017). Pure.
 */
import {
  addOnViolations,
  ESCALATION_MIN_AGE_YEARS,
  LINE_OF,
  LISINOPRIL_MG,
  paediatricDoseViolations,
  REQUIRED_THERAPIES,
  requiredFromYear,
  stepUpViolations,
  TREATMENTS,
} from '../clinical/index.ts';
import type { FhirResourceLike } from './types.ts';

const DAY_MS = 86_400_000;

export interface TherapyContext {
  ageAt: (ms: number) => number;
  onset: Map<string, number>;
  /** `Encounter/<id>` → [start, end] (ms). */
  encounters: ReadonlyMap<string, readonly [number, number]>;
  /** Lab measurements: name, value, time, `Encounter/<id>`. */
  labs: { lab: string; value: number; ms: number; encounter: string }[];
  /** The patient's death (ms), if the record has one: a prescription stopped without a successor in a dead patient's chart ran until then. */
  deathMs?: number;
  /** Body weights (kg) measured, by `Encounter/<id>` (a child's antihypertensive step is dosed by weight). */
  weights?: ReadonlyMap<string, number>;
}

interface Rx {
  r: FhirResourceLike;
  key: string;
  rxnorm: string;
  status: string;
  authoredMs: number;
  encounter: string;
  prior?: string;
}

const refOf = (v: unknown) => (v as { reference?: string } | undefined)?.reference;

export function therapyViolations(
  resources: readonly FhirResourceLike[],
  ctx: TherapyContext,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const rxs: Rx[] = [];
  for (const r of resources) {
    if (r.resourceType !== 'MedicationRequest' || r.dispenseRequest) continue;
    const rxnorm = (r.medicationCodeableConcept as { coding?: { code?: string }[] } | undefined)?.coding?.[0]?.code ?? '';
    const authoredMs = Date.parse(String(r.authoredOn));
    if (!Number.isFinite(authoredMs)) continue;
    rxs.push({
      r,
      key: `MedicationRequest/${r.id}`,
      rxnorm,
      status: String(r.status),
      authoredMs,
      encounter: refOf(r.encounter) ?? '',
      prior: refOf(r.priorPrescription),
    });
  }
  const byKey = new Map(rxs.map((x) => [x.key, x]));
  // When each prescription ended: the prescription that replaced it, else never (active), the death
  // (stopped without a successor in a dead patient's chart), or at once (stopped, no successor).
  const endMs = new Map<string, number>();
  for (const x of rxs) if (x.prior && byKey.has(x.prior)) endMs.set(x.prior, Math.min(endMs.get(x.prior) ?? Infinity, x.authoredMs));
  const end = (x: Rx) => endMs.get(x.key) ?? (x.status === 'active' ? Infinity : (ctx.deathMs ?? x.authoredMs));
  const has = (ms: number) => (c: string) => ctx.onset.has(c) && ctx.onset.get(c)! <= ms;

  // One active strength per drug.
  const activeByLine = new Map<string, Rx[]>();
  for (const x of rxs) {
    const line = LINE_OF.get(x.rxnorm)?.line.id;
    if (line && x.status === 'active') activeByLine.set(line, [...(activeByLine.get(line) ?? []), x]);
  }
  for (const [line, xs] of activeByLine)
    if (xs.length > 1)
      for (const x of xs.slice(1))
        add('duplicate-active-strength', x.r, `${xs.length} active prescriptions of ${line}: ${xs.map((y) => y.rxnorm).join(', ')}`);

  // Step ups have a reason.
  for (const x of rxs) {
    const at = LINE_OF.get(x.rxnorm);
    if (!at) continue;
    const prior = x.prior ? byKey.get(x.prior) : undefined;
    const priorAt = prior ? LINE_OF.get(prior.rxnorm) : undefined;
    const priorStep = priorAt && priorAt.line.id === at.line.id ? priorAt.step : undefined;
    if (!prior) {
      // A first-line drug of a condition held (adult lisinopril, a coronary patient's 40 mg statin) starts a course.
      const held = has(x.authoredMs);
      if (Object.entries(TREATMENTS).some(([c, t]) => held(c) && t.drugs.some((d) => d.rxnorm === x.rxnorm))) continue;
      // Any other strength above the first, or an add-on, is a step up that needs its lab.
      if (!at.line.addOnTo && at.step > 0) {
        for (const rule of stepUpViolations(x.rxnorm, labContext(x, -1, undefined, ctx, has)))
          add(rule, x.r, `RxNorm ${x.rxnorm} written without a lower strength or a lab above target`);
        continue;
      }
    }
    for (const rule of stepUpViolations(x.rxnorm, labContext(x, priorStep, prior?.rxnorm, ctx, has)))
      add(rule, x.r, `RxNorm ${x.rxnorm} (step ${at.step + 1} of ${at.line.id}) without a lab above target at its visit`);
  }

  paediatricDoseChecks(rxs, byKey, ctx, add);
  addOnChecks(rxs, end, add);

  // Required therapies at every adult visit.
  for (const t of REQUIRED_THERAPIES) {
    const on = ctx.onset.get(t.condition);
    if (on === undefined) continue;
    const fromYear = requiredFromYear(t);
    const codes = new Set(t.anyOf.map((d) => d.rxnorm));
    for (const [enc, [start]] of ctx.encounters) {
      if (!Number.isFinite(start) || start < on + t.graceDays * DAY_MS || ctx.ageAt(start) < ESCALATION_MIN_AGE_YEARS) continue;
      if (t.ageYears && (ctx.ageAt(start) < t.ageYears[0] || ctx.ageAt(start) >= t.ageYears[1])) continue;
      if (new Date(start).getUTCFullYear() < fromYear) continue;
      const ok = rxs.some((x) => codes.has(x.rxnorm) && x.authoredMs <= start && end(x) > start);
      if (!ok) {
        const r = resources.find((y) => `${y.resourceType}/${y.id}` === enc)!;
        add(
          t.rule,
          r,
          `${t.condition} since ${new Date(on).toISOString().slice(0, 10)}: none of ${[...codes].join(', ')} active at ${enc}`,
        );
        break;
      }
    }
  }
}

/** A child's lisinopril raised from a lower strength: within the AAP 2017 maximum for the weight measured at that visit. */
function paediatricDoseChecks(
  rxs: readonly Rx[],
  byKey: ReadonlyMap<string, Rx>,
  ctx: TherapyContext,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  for (const x of rxs) {
    const mg = LISINOPRIL_MG.get(x.rxnorm);
    if (mg === undefined) continue;
    const prior = x.prior ? byKey.get(x.prior) : undefined;
    const priorMg = prior ? LISINOPRIL_MG.get(prior.rxnorm) : undefined;
    const kg = ctx.weights?.get(x.encounter);
    const age = ctx.ageAt(x.authoredMs);
    for (const rule of paediatricDoseViolations(x.rxnorm, age, priorMg !== undefined && mg > priorMg, kg))
      add(rule, x.r, `lisinopril ${mg} mg at ${age.toFixed(1)} y, weight ${kg === undefined ? 'not measured at the visit' : `${kg} kg`}`);
  }
}

/** An add-on agent is written on top of the maximal step of its base line, running at that time. */
function addOnChecks(rxs: readonly Rx[], end: (x: Rx) => number, add: (rule: string, r: FhirResourceLike, detail: string) => void): void {
  for (const x of rxs) {
    if (!LINE_OF.get(x.rxnorm)?.line.addOnTo) continue;
    const running = rxs.filter((y) => y !== x && y.authoredMs <= x.authoredMs && end(y) > x.authoredMs).map((y) => y.rxnorm);
    for (const rule of addOnViolations(x.rxnorm, running))
      add(rule, x.r, `RxNorm ${x.rxnorm} added while ${running.join(', ') || 'nothing'} was running`);
  }
}

function labContext(
  x: Rx,
  priorStep: number | undefined,
  priorRxnorm: string | undefined,
  ctx: TherapyContext,
  has: (ms: number) => (c: string) => boolean,
) {
  const lab = LINE_OF.get(x.rxnorm)?.line.lab;
  const priorMax = priorRxnorm ? LINE_OF.get(priorRxnorm)?.line.steps.find((d) => d.rxnorm === priorRxnorm)?.maxAgeYears : undefined;
  return {
    priorStep,
    ...(priorMax !== undefined ? { priorMaxAgeYears: priorMax } : {}),
    ageYears: ctx.ageAt(x.authoredMs),
    has: has(x.authoredMs),
    labValuesAtVisit: lab
      ? ctx.labs.filter((l) => l.lab === lab && l.encounter === x.encounter && l.ms <= x.authoredMs).map((l) => l.value)
      : [],
  };
}
