/**
 * The record verifier's rules on acute episodes (clinical/antibiotics.ts), on a patient's flat
 * resources: every pneumonia is treated with an antibiotic of its regimens, written for it
 * (`pneumonia-without-antibiotic`); an infant under 3 months at its onset is admitted — the
 * pneumonia's Encounter is an inpatient stay (class IMP) with a period of at least a day
 * (`young-infant-pneumonia-not-admitted`, PIDS/IDSA 2011). Pure.
 */
import { ACUTE_TREATMENTS, CONDITIONS, pneumoniaAdmitted } from '../clinical/index.ts';
import { DAY_MS, YEAR_MS } from './timeline.ts';
import type { FhirResourceLike } from './types.ts';

export interface AcuteContext {
  birthMs: number;
  /** `Condition/<id>` → the schema's condition name. */
  conditionName: ReadonlyMap<string, string>;
}

const refOf = (v: unknown) => (v as { reference?: string } | undefined)?.reference;

export function acuteViolations(
  resources: readonly FhirResourceLike[],
  ctx: AcuteContext,
  add: (rule: string, r: FhirResourceLike, detail: string) => void,
): void {
  const byKey = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
  for (const [key, name] of ctx.conditionName) {
    if (CONDITIONS[name]?.course !== 'acute') continue;
    const c = byKey.get(key);
    const t = ACUTE_TREATMENTS[name];
    if (!c || !t) continue;
    const codes = new Set(t.drugs.map((d) => d.rxnorm));
    const treated = resources.some(
      (r) =>
        r.resourceType === 'MedicationRequest' &&
        codes.has((r.medicationCodeableConcept as { coding?: { code?: string }[] } | undefined)?.coding?.[0]?.code ?? '') &&
        ((r.reasonReference as unknown[] | undefined) ?? []).some((x) => refOf(x) === key),
    );
    if (!treated) add('pneumonia-without-antibiotic', c, `${name} without an antibiotic of ${t.source} written for it`);
    const onset = Date.parse(`${String(c.onsetDateTime).slice(0, 10)}T00:00:00Z`);
    if (!Number.isFinite(onset) || !pneumoniaAdmitted((onset - ctx.birthMs) / YEAR_MS)) continue;
    const enc = byKey.get(refOf(c.encounter) ?? '');
    const period = enc?.period as { start?: string; end?: string } | undefined;
    const stay = Date.parse(period?.end ?? '') - Date.parse(period?.start ?? '');
    const cls = (enc?.class as { code?: string } | undefined)?.code;
    if (!enc || cls !== 'IMP' || !(stay >= DAY_MS))
      add(
        'young-infant-pneumonia-not-admitted',
        c,
        `${name} at ${((onset - ctx.birthMs) / YEAR_MS / (1 / 12)).toFixed(1)} months seen at ${enc ? `a ${cls ?? 'class-less'} encounter of ${Math.round(stay / 3600_000)} h` : 'no encounter'}`,
      );
  }
}
