/**
 * Renders a LatentPatient as realistic FHIR R4 resources (US Core-shaped): Patient with
 * identifier, name, telecom, address; Conditions with clinical/verification status, category,
 * SNOMED CT or ICD-10-CM coding by site practice, recurring and unrelated (unknown-code)
 * conditions; Observations with category, status, LOINC code, effectiveDateTime, issued and
 * valueQuantity in UCUM, several per lab over time, blood pressure as a panel at some sites.
 */
import { CODE_SYSTEMS, LOINC_SYSTEM, UCUM_SYSTEM, type ConditionAttribute, type LabAttribute, type Schema } from '../schema/schema.ts';
import type { Rng } from '../model/rng.ts';
import type { FhirResourceLike } from '../modalities/fhir/types.ts';
import { CONDITIONS, LABS, isoDate, type ConditionName, type LabName, type LatentPatient, type SiteProfile } from './latent.ts';
import { CITIES, STREETS } from './names.ts';
import { isSecondaryHypertensionOnset, SECONDARY_HYPERTENSION } from '../modalities/clinical/hypertension.ts';

const DAY = 86_400_000;
const YEAR_MS = 365.2425 * DAY;

/** ICD-10-CM codes (descendants of the schema's lists) used when a site codes in ICD-10-CM. */
const ICD10CM: Record<ConditionName, [string, string]> = {
  hypertension: ['I10', 'Essential (primary) hypertension'],
  type2_diabetes: ['E11.9', 'Type 2 diabetes mellitus without complications'],
  hyperlipidemia: ['E78.5', 'Hyperlipidemia, unspecified'],
  coronary_artery_disease: ['I25.10', 'Atherosclerotic heart disease of native coronary artery without angina pectoris'],
  heart_failure: ['I50.9', 'Heart failure, unspecified'],
  chronic_kidney_disease: ['N18.9', 'Chronic kidney disease, unspecified'],
  asthma: ['J45.909', 'Unspecified asthma, uncomplicated'],
  copd: ['J44.9', 'Chronic obstructive pulmonary disease, unspecified'],
  pneumonia: ['J18.9', 'Pneumonia, unspecified organism'],
  obesity: ['E66.9', 'Obesity, unspecified'],
};

/** Common conditions outside the schema: encoders must ignore them. */
const UNRELATED: Array<[string, string]> = [
  ['195662009', 'Acute viral pharyngitis (disorder)'],
  ['444814009', 'Viral sinusitis (disorder)'],
  ['10509002', 'Acute bronchitis (disorder)'],
  ['44465007', 'Sprain of ankle (disorder)'],
  ['65363002', 'Otitis media (disorder)'],
  ['68566005', 'Urinary tract infectious disease (disorder)'],
];

/** Day-to-day variation of earlier measurements around the current value. */
const LAB_NOISE: Record<LabName, number> = { hba1c: 0.4, ldl_cholesterol: 15, systolic_bp: 8, bmi: 1, egfr: 6 };

const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

function dateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface SiteFhir {
  Patient: FhirResourceLike[];
  Condition: FhirResourceLike[];
  Observation: FhirResourceLike[];
}

export class FhirPatientWriter {
  private readonly conds = new Map<ConditionName, ConditionAttribute>();
  private readonly labs = new Map<LabName, LabAttribute>();
  private readonly refMs: number;

  constructor(
    private readonly schema: Schema,
    private readonly site: SiteProfile,
  ) {
    for (const a of schema.attributes) {
      if (a.kind === 'condition' && (CONDITIONS as readonly string[]).includes(a.name)) this.conds.set(a.name as ConditionName, a);
      if (a.kind === 'lab' && (LABS as readonly string[]).includes(a.name)) this.labs.set(a.name as LabName, a);
    }
    this.refMs = Date.parse(`${schema.referenceDate}T00:00:00Z`);
  }

  /** The resources of one patient. `rng` is the patient's own stream. */
  render(p: LatentPatient, rng: Rng): SiteFhir {
    const out: SiteFhir = { Patient: [], Condition: [], Observation: [] };
    const subject = { reference: `Patient/${p.id}` };
    const [city, state, zip3] = rng.pick(CITIES);
    out.Patient.push({
      resourceType: 'Patient',
      id: p.id,
      meta: { profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'] },
      identifier: [
        {
          use: 'usual',
          type: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical Record Number' }],
            text: 'Medical Record Number',
          },
          system: `urn:fedsynth:sim:${p.siteId}:mrn`,
          value: p.mrn,
        },
      ],
      name: [{ use: 'official', family: p.family, given: [p.given] }],
      telecom: [{ system: 'phone', value: `555-01${String(rng.int(100)).padStart(2, '0')}`, use: 'home' }],
      gender: p.sex,
      birthDate: p.birthDate,
      address: [
        {
          line: [`${1 + rng.int(999)} ${rng.pick(STREETS)}`],
          city,
          state,
          postalCode: `${zip3}${String(rng.int(100)).padStart(2, '0')}`,
          country: 'US',
        },
      ],
    });

    const condition = (
      code: { system: string; code: string; display: string },
      onset: string,
      opts: { status?: string; verification?: string; category?: string; abatement?: string; recorded?: string } = {},
    ) => {
      out.Condition.push({
        resourceType: 'Condition',
        id: rng.uuid(),
        meta: { profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns'] },
        clinicalStatus: { coding: [{ system: CLINICAL, code: opts.status ?? 'active' }] },
        verificationStatus: { coding: [{ system: VERIFICATION, code: opts.verification ?? 'confirmed' }] },
        category: [
          {
            coding: [
              opts.category === 'encounter-diagnosis'
                ? { system: CONDITION_CATEGORY, code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }
                : { system: CONDITION_CATEGORY, code: 'problem-list-item', display: 'Problem List Item' },
            ],
          },
        ],
        code: { coding: [code], text: code.display },
        subject,
        onsetDateTime: onset,
        ...(opts.abatement ? { abatementDateTime: opts.abatement } : {}),
        recordedDate: opts.recorded ?? onset,
      });
    };

    for (const name of CONDITIONS) {
      const attr = this.conds.get(name);
      if (!attr || !p.conditions[name]) continue;
      const useIcd = rng.bernoulli(this.site.icd10Share) && attr.codes.icd10cm !== undefined;
      const onset = p.onset[name]!;
      // Hypertension begun before 6 years is secondary (AAP 2017): written as ICD-10-CM I15.9, which
      // the schema reads (I15), never as essential hypertension. The draw above is kept so the
      // simulator's stream is unchanged.
      const secondary =
        name === 'hypertension' &&
        isSecondaryHypertensionOnset((Date.parse(onset) - Date.parse(p.birthDate)) / YEAR_MS) &&
        (attr.codes.icd10cm ?? []).some((c) => SECONDARY_HYPERTENSION.icd10cm.code.replace('.', '').startsWith(c.replace('.', '')));
      const code = secondary
        ? { system: CODE_SYSTEMS.icd10cm, ...SECONDARY_HYPERTENSION.icd10cm }
        : useIcd
          ? { system: CODE_SYSTEMS.icd10cm, code: ICD10CM[name][0], display: ICD10CM[name][1] }
          : { system: CODE_SYSTEMS.snomed, code: attr.codes.snomed[0], display: attr.display };
      if (name === 'pneumonia') {
        const abate = isoDate(Math.min(Date.parse(onset) + (10 + rng.int(20)) * DAY, this.refMs - DAY));
        condition(code, onset, { status: 'resolved', category: 'encounter-diagnosis', abatement: abate });
      } else {
        condition(code, onset);
        // Chronic conditions are often recorded again at a later encounter.
        if (rng.bernoulli(0.15)) {
          const later = isoDate(Date.parse(onset) + rng.next() * Math.max(DAY, this.refMs - DAY - Date.parse(onset)));
          condition(code, onset, { category: 'encounter-diagnosis', recorded: later });
        }
      }
    }
    // A ruled-out pneumonia (refuted): must not count.
    const pn = this.conds.get('pneumonia');
    if (pn && !p.conditions.pneumonia && rng.bernoulli(0.02)) {
      condition(
        { system: CODE_SYSTEMS.snomed, code: pn.codes.snomed[0], display: pn.display },
        isoDate(this.refMs - (30 + rng.int(700)) * DAY),
        {
          status: 'inactive',
          verification: 'refuted',
          category: 'encounter-diagnosis',
        },
      );
    }
    // Unrelated acute problems (codes outside the schema).
    const extra = rng.int(4);
    for (let i = 0; i < extra; i++) {
      const [code, display] = rng.pick(UNRELATED);
      const onset = isoDate(Math.max(Date.parse(p.birthDate) + DAY, this.refMs - rng.int(3650) * DAY));
      condition({ system: CODE_SYSTEMS.snomed, code, display }, onset, {
        status: 'resolved',
        category: 'encounter-diagnosis',
        abatement: onset,
      });
    }
    if (!p.conditions.type2_diabetes && p.labs.hba1c >= 5.7 && rng.bernoulli(0.5)) {
      condition({ system: CODE_SYSTEMS.snomed, code: '15777000', display: 'Prediabetes' }, isoDate(this.refMs - (60 + rng.int(900)) * DAY));
    }

    // Labs and vitals: 1–3 observations in the 3 years before the reference date, latest = current.
    const birthMs = Date.parse(p.birthDate);
    for (const name of LABS) {
      const attr = this.labs.get(name);
      if (!attr || !p.measured[name]) continue;
      const count = 1 + rng.int(3);
      const times: number[] = [];
      for (let i = 0; i < count; i++)
        times.push(Math.max(birthMs + DAY, this.refMs - (1 + rng.int(3 * 365)) * DAY - rng.int(86_400) * 1000));
      times.sort((a, b) => b - a);
      // Distinct instants so "latest" is unambiguous.
      for (let i = 1; i < times.length; i++) if (times[i] >= times[i - 1]) times[i] = times[i - 1] - 3_600_000;
      times.forEach((t, i) => {
        const raw = i === 0 ? p.labs[name] : p.labs[name] + rng.normal(0, LAB_NOISE[name]);
        const value = round(Math.min(attr.range[1], Math.max(attr.range[0], raw)), attr.decimals);
        out.Observation.push(this.observation(name, attr, value, t, subject, rng));
      });
    }
    return out;
  }

  private observation(
    name: LabName,
    attr: LabAttribute,
    value: number,
    t: number,
    subject: { reference: string },
    rng: Rng,
  ): FhirResourceLike {
    const category = [
      { coding: [{ system: OBS_CATEGORY, code: attr.category, display: attr.category === 'vital-signs' ? 'Vital Signs' : 'Laboratory' }] },
    ];
    const quantity = (v: number, unit: string) => ({ value: v, unit, system: UCUM_SYSTEM, code: unit });
    const base = {
      resourceType: 'Observation',
      id: rng.uuid(),
      meta: {
        profile: [
          attr.category === 'vital-signs'
            ? 'http://hl7.org/fhir/StructureDefinition/vitalsigns'
            : 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab',
        ],
      },
      status: 'final',
      category,
    };
    if (name === 'systolic_bp' && this.site.bpAsPanel) {
      const diastolic = Math.round(Math.max(40, Math.min(value - 20, value * 0.62 + rng.normal(0, 5))));
      return {
        ...base,
        code: {
          coding: [{ system: LOINC_SYSTEM, code: '85354-9', display: 'Blood pressure panel with all children optional' }],
          text: 'Blood pressure panel',
        },
        subject,
        effectiveDateTime: dateTime(t),
        issued: dateTime(t + 600_000),
        component: [
          {
            code: { coding: [{ system: LOINC_SYSTEM, code: attr.loinc[0], display: attr.display }] },
            valueQuantity: quantity(value, attr.unit),
          },
          {
            code: { coding: [{ system: LOINC_SYSTEM, code: '8462-4', display: 'Diastolic blood pressure' }] },
            valueQuantity: quantity(diastolic, attr.unit),
          },
        ],
      };
    }
    return {
      ...base,
      code: { coding: [{ system: LOINC_SYSTEM, code: attr.loinc[0], display: attr.display }], text: attr.display },
      subject,
      effectiveDateTime: dateTime(t),
      issued: dateTime(t + (attr.category === 'laboratory' ? 4 * 3_600_000 : 600_000)),
      valueQuantity: quantity(value, attr.unit),
    };
  }
}

function round(v: number, decimals: number): number {
  return Number(v.toFixed(decimals));
}
