/**
 * The simulator's latent model: per-site mixes and a per-patient facts object (`LatentPatient`)
 * drawn from documented age- and sex-dependent logistic risks. Every modality writer (FHIR now;
 * DICOM images, VCF genomes and notes later) renders the SAME facts, so cross-modal structure is
 * consistent by construction. Everything here is recorded in truth.json (`describeModel`).
 *
 * Risk model (log-odds; a = (clamp(age, 15, 90) − 50) / 10, "male" = 1 for male):
 *   smoker (hidden, age ≥ 16)  −1.5 + 0.25·male − 0.10·a
 *   obesity                   −1.2 + 0.15·a (adults), −2.3 (children)
 *   hypertension              −1.4 + 0.80·a + ln 2.5·obesity + 0.20·male
 *   type2_diabetes            −2.8 + 0.50·a + ln 3.5·obesity + 0.15·male
 *   hyperlipidemia            −1.7 + 0.45·a + ln 2.0·type2_diabetes + ln 1.5·obesity
 *   coronary_artery_disease   −3.8 + 0.70·a + ln 1.8·male + ln 2·hypertension + ln 2·type2_diabetes
 *                             + ln 2.5·hyperlipidemia + ln 1.8·smoker
 *   heart_failure             −4.8 + 0.60·a + ln 4·coronary_artery_disease + ln 2·hypertension
 *                             + ln 1.5·type2_diabetes
 *   chronic_kidney_disease    −4.2 + 0.60·a + ln 3·type2_diabetes + ln 2·hypertension
 *   asthma                    −2.4 + 0.6·child + ln 1.6·obesity + 0.2·female
 *   copd                      −5.2 + 0.60·a + ln 6·smoker (−9 under 30)
 *   pneumonia                 −3.4 + 0.9·[age < 5] + 0.05·max(0, age − 65) + ln 3·copd
 *                             + ln 1.5·heart_failure + ln 1.4·smoker
 * plus a per-site shift of the intercept (`SiteProfile.logOddsShift`) and, for the conditions of
 * the public GWAS panel, Σ ln(OR)·(dosage − 2p) over its SNPs (genome.ts; published per-allele
 * odds ratios for type 2 diabetes, coronary disease, hyperlipidemia, hypertension, obesity,
 * asthma and COPD).
 * Other modalities (same facts): who has a chest radiograph, a genome and notes (site coverage,
 * imaging more likely with chest/cardiac disease), and the radiograph findings, tied to
 * conditions: lung opacity with pneumonia (85 %, else 3 %), cardiomegaly with heart failure
 * (80 %, else 4 %), a pulmonary nodule (smoker or COPD 12 %, else 3 %). Conditions are drawn in
 * the order above, so each depends only on earlier ones (a DAG).
 * Labs follow the conditions: HbA1c high with diabetes, LDL with hyperlipidemia, systolic BP
 * with hypertension and age, BMI ≥ 30 exactly for obesity, eGFR < 60 exactly for CKD.
 */
import type { Rng } from '../model/rng.ts';
import { drawGenome, geneticLogOdds, type LatentGenome } from './genome.ts';
import { FAMILY, GIVEN_FEMALE, GIVEN_MALE } from './names.ts';

export const CONDITIONS = [
  'obesity',
  'hypertension',
  'type2_diabetes',
  'hyperlipidemia',
  'coronary_artery_disease',
  'heart_failure',
  'chronic_kidney_disease',
  'asthma',
  'copd',
  'pneumonia',
] as const;
export type ConditionName = (typeof CONDITIONS)[number];

export const LABS = ['hba1c', 'ldl_cholesterol', 'systolic_bp', 'bmi', 'egfr'] as const;
export type LabName = (typeof LABS)[number];

/** Age bands of the site mixes: [lo, hi) years. */
export const AGE_BANDS: Array<[number, number]> = [
  [0, 5],
  [5, 12],
  [12, 18],
  [18, 30],
  [30, 40],
  [40, 50],
  [50, 60],
  [60, 70],
  [70, 80],
  [80, 100],
];

export interface SiteProfile {
  profile: string;
  description: string;
  /** Relative weights of AGE_BANDS. */
  ageWeights: number[];
  pFemale: number;
  /** Added to each condition's (and the smoker's) intercept. */
  logOddsShift: Partial<Record<ConditionName | 'smoker', number>>;
  /** Share of Condition records coded in ICD-10-CM only (the rest SNOMED CT). */
  icd10Share: number;
  /** Blood pressure written as a 85354-9 panel with components (else a lone 8480-6). */
  bpAsPanel: boolean;
  /** Mix of the genome model's populations (genome.ts: EUR, AFR, EAS). */
  ancestry: [number, number, number];
  /** Share of patients with a genome in the site's VCF. */
  genomeCoverage: number;
  /** rsIDs of panel SNPs the site's genotyping array does not carry (absent from its VCF). */
  arrayLacks: string[];
  /** Share of patients with clinical notes. */
  notesCoverage: number;
  /** Note styles this site writes (notes.ts). */
  noteStyles: string[];
  /** The site's radiography equipment. */
  scanner: ScannerProfile;
}

/** Per-site radiography differences: object type, storage, intensity and patient size in frame. */
export interface ScannerProfile {
  modality: 'DX' | 'CR';
  manufacturer: string;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  bitsStored: 12 | 14 | 16;
  /** Multiplier and offset of the stored values (of a 0..1 density image scaled to bitsStored). */
  gain: number;
  offset: number;
  /** Relative thorax size in the frame (1 = default). */
  scale: number;
  /** Additive Gaussian noise, as a fraction of full scale. */
  noise: number;
}

export const SITE_PROFILES: SiteProfile[] = [
  {
    profile: 'general',
    description: 'General hospital: broad adult mix, some children',
    ageWeights: [4, 5, 5, 12, 13, 13, 15, 14, 11, 8],
    pFemale: 0.52,
    logOddsShift: {},
    icd10Share: 0.3,
    bpAsPanel: false,
    ancestry: [0.7, 0.2, 0.1],
    genomeCoverage: 0.6,
    arrayLacks: [],
    notesCoverage: 0.85,
    noteStyles: ['soap', 'narrative'],
    scanner: {
      modality: 'DX',
      manufacturer: 'Simulated Radiography A',
      photometric: 'MONOCHROME2',
      bitsStored: 12,
      gain: 0.85,
      offset: 0.05,
      scale: 1,
      noise: 0.02,
    },
  },
  {
    profile: 'cardiac',
    description: 'Elderly cardiac centre: old, male-leaning, more coronary disease and heart failure',
    ageWeights: [0, 0, 0, 2, 4, 8, 17, 26, 25, 18],
    pFemale: 0.41,
    logOddsShift: { coronary_artery_disease: 0.9, heart_failure: 0.9, hypertension: 0.3, hyperlipidemia: 0.3 },
    icd10Share: 0.7,
    bpAsPanel: true,
    ancestry: [0.85, 0.1, 0.05],
    genomeCoverage: 0.75,
    arrayLacks: [],
    notesCoverage: 0.9,
    noteStyles: ['consult', 'soap'],
    scanner: {
      modality: 'CR',
      manufacturer: 'Simulated Imaging B',
      photometric: 'MONOCHROME1',
      bitsStored: 14,
      gain: 0.7,
      offset: 0.12,
      scale: 0.88,
      noise: 0.03,
    },
  },
  {
    profile: 'paediatric',
    description: 'Paediatric-heavy hospital: most patients under 18, more asthma and pneumonia',
    ageWeights: [20, 22, 18, 9, 9, 8, 6, 4, 3, 1],
    pFemale: 0.49,
    logOddsShift: { asthma: 0.6, pneumonia: 0.4 },
    icd10Share: 0.1,
    bpAsPanel: false,
    ancestry: [0.3, 0.4, 0.3],
    genomeCoverage: 0.45,
    arrayLacks: ['rs7216389', 'rs17782313'],
    notesCoverage: 0.8,
    noteStyles: ['narrative', 'brief'],
    scanner: {
      modality: 'DX',
      manufacturer: 'Simulated Medical C',
      photometric: 'MONOCHROME2',
      bitsStored: 16,
      gain: 0.6,
      offset: 0.2,
      scale: 0.94,
      noise: 0.015,
    },
  },
  {
    profile: 'metabolic',
    description: 'Metabolic and renal clinic: middle-aged adults, more obesity, diabetes and CKD',
    ageWeights: [0, 1, 2, 8, 14, 20, 22, 18, 10, 5],
    pFemale: 0.55,
    logOddsShift: { obesity: 0.8, type2_diabetes: 0.8, chronic_kidney_disease: 0.7 },
    icd10Share: 0.5,
    bpAsPanel: true,
    ancestry: [0.5, 0.3, 0.2],
    genomeCoverage: 0.55,
    arrayLacks: ['rs16969968'],
    notesCoverage: 0.85,
    noteStyles: ['soap', 'brief', 'consult'],
    scanner: {
      modality: 'DX',
      manufacturer: 'Simulated Radiography A',
      photometric: 'MONOCHROME2',
      bitsStored: 12,
      gain: 0.9,
      offset: 0.02,
      scale: 1.04,
      noise: 0.025,
    },
  },
  {
    profile: 'pulmonary',
    description: 'Rural hospital with a chest clinic: more smokers, COPD and pneumonia',
    ageWeights: [3, 4, 4, 9, 10, 12, 16, 17, 15, 10],
    pFemale: 0.47,
    logOddsShift: { smoker: 0.7, copd: 0.6, pneumonia: 0.4 },
    icd10Share: 0.2,
    bpAsPanel: false,
    ancestry: [0.2, 0.2, 0.6],
    genomeCoverage: 0.5,
    arrayLacks: ['rs1801282', 'rs5219'],
    notesCoverage: 0.75,
    noteStyles: ['brief', 'narrative'],
    scanner: {
      modality: 'CR',
      manufacturer: 'Simulated Imaging B',
      photometric: 'MONOCHROME2',
      bitsStored: 12,
      gain: 0.75,
      offset: 0.1,
      scale: 0.9,
      noise: 0.035,
    },
  },
];

export interface Coefficients {
  intercept: number;
  /** Per 10 years around 50 (ages clamped to 15–90). */
  age: number;
  male?: number;
  female?: number;
  child?: number;
  /** Odds ratios of earlier conditions (and the hidden smoker). */
  oddsRatios: Partial<Record<ConditionName | 'smoker', number>>;
}

export const RISK_MODEL: Record<ConditionName | 'smoker', Coefficients> = {
  smoker: { intercept: -1.5, age: -0.1, male: 0.25, oddsRatios: {} },
  obesity: { intercept: -1.2, age: 0.15, oddsRatios: {} },
  hypertension: { intercept: -1.4, age: 0.8, male: 0.2, oddsRatios: { obesity: 2.5 } },
  type2_diabetes: { intercept: -2.8, age: 0.5, male: 0.15, oddsRatios: { obesity: 3.5 } },
  hyperlipidemia: { intercept: -1.7, age: 0.45, oddsRatios: { type2_diabetes: 2.0, obesity: 1.5 } },
  coronary_artery_disease: {
    intercept: -3.8,
    age: 0.7,
    male: Math.log(1.8),
    oddsRatios: { hypertension: 2, type2_diabetes: 2, hyperlipidemia: 2.5, smoker: 1.8 },
  },
  heart_failure: { intercept: -4.8, age: 0.6, oddsRatios: { coronary_artery_disease: 4, hypertension: 2, type2_diabetes: 1.5 } },
  chronic_kidney_disease: { intercept: -4.2, age: 0.6, oddsRatios: { type2_diabetes: 3, hypertension: 2 } },
  asthma: { intercept: -2.4, age: 0, child: 0.6, female: 0.2, oddsRatios: { obesity: 1.6 } },
  copd: { intercept: -5.2, age: 0.6, oddsRatios: { smoker: 6 } },
  pneumonia: { intercept: -3.4, age: 0, oddsRatios: { copd: 3, heart_failure: 1.5, smoker: 1.4 } },
};

/** Everything the simulator knows about one patient; every modality writer renders these facts. */
export interface LatentPatient {
  siteId: string;
  /** 0-based index within the site. */
  index: number;
  id: string;
  mrn: string;
  sex: 'female' | 'male';
  ageYears: number;
  birthDate: string;
  given: string;
  family: string;
  smoker: boolean;
  conditions: Record<ConditionName, boolean>;
  /** Onset (YYYY-MM-DD) of each present condition. */
  onset: Partial<Record<ConditionName, string>>;
  /** True current value of each lab (always defined); `measured` says whether the site has it. */
  labs: Record<LabName, number>;
  measured: Record<LabName, boolean>;
  /** Drawn for everyone (causal SNPs act on conditions); `hasGenome` says whether the site sequenced it. */
  genome: LatentGenome;
  hasGenome: boolean;
  /** A frontal chest radiograph exists. */
  imaged: boolean;
  /** Radiograph findings (only visible when imaged). */
  findings: ImageFindings;
  /** The patient's side of each lateralised finding as drawn in the radiograph (set when it is written; its notes name it). */
  imageSides?: { opacity?: 'right' | 'left' | 'bilateral'; nodule?: 'right' | 'left' };
  /** Number of clinical notes (0 = none). */
  notes: number;
}

export interface ImageFindings {
  opacity: boolean;
  nodule: boolean;
  cardiomegaly: boolean;
}

/** Planted finding rates: P(finding | cause) and P(finding | no cause). */
export const FINDING_RATES = {
  opacity: { cause: 'pneumonia', withCause: 0.85, without: 0.03 },
  cardiomegaly: { cause: 'heart_failure', withCause: 0.8, without: 0.04 },
  nodule: { cause: 'smoker or copd', withCause: 0.12, without: 0.03 },
} as const;

/** P(chest radiograph): adults 0.25 (children 0.12), 0.95 with pneumonia, 0.9 heart failure, 0.7 COPD, 0.5 coronary disease. */
export function imagingProbability(age: number, c: Record<ConditionName, boolean>): number {
  if (c.pneumonia) return 0.95;
  if (c.heart_failure) return 0.9;
  if (c.copd) return 0.7;
  if (c.coronary_artery_disease) return 0.5;
  return age < 18 ? 0.12 : 0.25;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const DAY = 86_400_000;

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function logit(
  name: ConditionName | 'smoker',
  age: number,
  male: boolean,
  has: Partial<Record<string, boolean>>,
  site: SiteProfile,
  genome?: LatentGenome,
): number {
  const c = RISK_MODEL[name];
  const a = (clamp(age, 15, 90) - 50) / 10;
  let x = c.intercept + c.age * a + (site.logOddsShift[name] ?? 0);
  if (genome && name !== 'smoker') x += geneticLogOdds(genome, name);
  if (male && c.male) x += c.male;
  if (!male && c.female) x += c.female;
  if (age < 18 && c.child) x += c.child;
  for (const [k, or] of Object.entries(c.oddsRatios)) if (has[k]) x += Math.log(or!);
  // Age-specific terms that do not fit the linear form.
  if (name === 'obesity' && age < 18) x = -2.3 + (site.logOddsShift.obesity ?? 0);
  if (name === 'pneumonia') x += 0.9 * (age < 5 ? 1 : 0) + 0.05 * Math.max(0, age - 65);
  if (name === 'copd' && age < 30) x = -9;
  if (name === 'smoker' && age < 16) x = -12;
  return x;
}

/** Draws one patient's latent facts. */
export function drawLatentPatient(site: SiteProfile, siteId: string, index: number, referenceDate: string, rng: Rng): LatentPatient {
  const refMs = Date.parse(`${referenceDate}T00:00:00Z`);
  const [lo, hi] = AGE_BANDS[rng.weighted(site.ageWeights)];
  const ageYears = lo + rng.int(hi - lo);
  const ref = new Date(refMs);
  const latest = Date.UTC(ref.getUTCFullYear() - ageYears, ref.getUTCMonth(), ref.getUTCDate());
  const birthMs = latest - rng.int(365) * DAY;
  const sex = rng.bernoulli(site.pFemale) ? 'female' : 'male';
  const male = sex === 'male';
  const has: Partial<Record<ConditionName | 'smoker', boolean>> = {};
  const genome = drawGenome(site.ancestry, rng.fork('genome'));
  has.smoker = rng.bernoulli(sigmoid(logit('smoker', ageYears, male, has, site)));
  const conditions = {} as Record<ConditionName, boolean>;
  const onset: Partial<Record<ConditionName, string>> = {};
  for (const name of CONDITIONS) {
    const present = rng.bernoulli(sigmoid(logit(name, ageYears, male, has, site, genome)));
    has[name] = present;
    conditions[name] = present;
    if (present) {
      // Onset within the last 15 years (or since birth), at least 30 days before the reference date.
      const from = Math.max(birthMs + DAY, refMs - 15 * 365 * DAY);
      const to = refMs - 30 * DAY;
      onset[name] = isoDate(from + rng.next() * Math.max(0, to - from));
    }
  }
  const child = ageYears < 18;
  const c = conditions;
  const labs: Record<LabName, number> = {
    bmi: child
      ? c.obesity
        ? 25 + Math.abs(rng.normal(0, 4))
        : clamp(rng.normal(15 + 0.3 * ageYears, 2), 12, 24.9)
      : c.obesity
        ? 30 + Math.abs(rng.normal(0, 5))
        : clamp(rng.normal(25, 2.8), 16, 29.9),
    hba1c: c.type2_diabetes
      ? clamp(rng.normal(7.6, 1.3), 5.8, 14)
      : clamp(rng.normal(5.25 + 0.004 * Math.max(0, ageYears - 30) + 0.25 * +c.obesity, 0.33), 4, 6.4),
    ldl_cholesterol: c.hyperlipidemia
      ? clamp(rng.normal(165, 30), 100, 340)
      : child
        ? clamp(rng.normal(90, 20), 30, 160)
        : clamp(rng.normal(105 + 0.3 * Math.max(0, ageYears - 40), 24), 35, 189),
    systolic_bp: c.hypertension
      ? clamp(rng.normal(146, 14), 121, 240)
      : child
        ? clamp(rng.normal(100 + 0.6 * ageYears, 8), 75, 139)
        : clamp(rng.normal(114 + 0.25 * Math.max(0, ageYears - 30), 10), 85, 159),
    egfr: c.chronic_kidney_disease
      ? clamp(rng.normal(42, 13), 5, 59.4)
      : clamp(rng.normal(Math.min(118, 120 - 0.8 * Math.max(0, ageYears - 30)), 12), 60, 145),
  };
  const p = (x: number) => rng.bernoulli(x);
  const measured: Record<LabName, boolean> = {
    systolic_bp: p(child ? 0.85 : 0.95),
    bmi: p(child ? 0.85 : 0.9),
    hba1c: p(c.type2_diabetes ? 0.95 : c.obesity ? 0.6 : child ? 0.05 : 0.35),
    ldl_cholesterol: p(c.hyperlipidemia || c.coronary_artery_disease ? 0.9 : child ? 0.05 : ageYears >= 40 ? 0.55 : 0.3),
    egfr: p(c.chronic_kidney_disease ? 0.95 : c.type2_diabetes || c.hypertension ? 0.8 : child ? 0.05 : 0.4),
  };
  // Other modalities: a separate stream, so adding them leaves the FHIR facts above unchanged.
  const mr = rng.fork('modalities');
  const imaged = mr.bernoulli(imagingProbability(ageYears, conditions));
  const rate = (r: { withCause: number; without: number }, cause: boolean) => mr.bernoulli(cause ? r.withCause : r.without);
  const findings: ImageFindings = {
    opacity: rate(FINDING_RATES.opacity, conditions.pneumonia),
    cardiomegaly: rate(FINDING_RATES.cardiomegaly, conditions.heart_failure),
    nodule: rate(FINDING_RATES.nodule, has.smoker || conditions.copd),
  };
  const hasGenome = mr.bernoulli(site.genomeCoverage);
  const notes = mr.bernoulli(site.notesCoverage) ? 1 + mr.int(3) : 0;
  return {
    siteId,
    index,
    genome,
    hasGenome,
    imaged,
    findings,
    notes,
    id: rng.uuid(),
    mrn: `MRN${String(1_000_000 + rng.int(9_000_000))}`,
    sex,
    ageYears,
    birthDate: isoDate(birthMs),
    given: rng.pick(sex === 'female' ? GIVEN_FEMALE : GIVEN_MALE),
    family: rng.pick(FAMILY),
    smoker: has.smoker,
    conditions,
    onset,
    labs,
    measured,
  };
}

/** The latent model as data, for truth.json. */
export function describeModel(): Record<string, unknown> {
  return {
    description:
      'Logistic risks per condition, drawn in order (a DAG): log-odds = intercept + age·a + sex terms + Σ ln(OR)·parent + site shift, a = (clamp(age,15,90) − 50)/10. Extra terms: obesity under 18 has log-odds −2.3; pneumonia +0.9 under 5 and +0.05 per year over 65; COPD −9 under 30; smoking (hidden, not in the schema) only from 16. Labs follow conditions: BMI ≥ 30 iff obesity, eGFR < 60 iff CKD, HbA1c ≈ N(7.6, 1.3) with diabetes else ≈ N(5.3, 0.33), LDL ≈ N(165, 30) with hyperlipidemia, systolic BP ≈ N(146, 14) with hypertension. Missingness of labs depends on age and conditions.',
    conditionOrder: ['smoker', ...CONDITIONS],
    imaging: {
      probability:
        'P(chest radiograph) = 0.95 pneumonia, else 0.9 heart failure, else 0.7 COPD, else 0.5 coronary disease, else 0.25 adults / 0.12 children',
      findingRates: FINDING_RATES,
      oneImagePerPatient:
        'each imaged patient has one frontal radiograph; planted extras (a repeat view, an orphan and a truncated file) are listed per site',
    },
    coefficients: RISK_MODEL,
    labs: {
      bmi: 'adults: obesity → 30 + |N(0,5)|, else N(25, 2.8) in [16, 29.9]; children: obesity → 25 + |N(0,4)|, else N(15 + 0.3·age, 2) in [12, 24.9]',
      hba1c: 'type 2 diabetes → N(7.6, 1.3) in [5.8, 14]; else N(5.25 + 0.004·max(0, age−30) + 0.25·obesity, 0.33) in [4, 6.4]',
      ldl_cholesterol: 'hyperlipidemia → N(165, 30) in [100, 340]; children N(90, 20); adults N(105 + 0.3·max(0, age−40), 24) in [35, 189]',
      systolic_bp:
        'hypertension → N(146, 14) in [121, 240]; children N(100 + 0.6·age, 8); adults N(114 + 0.25·max(0, age−30), 10) in [85, 159]',
      egfr: 'CKD → N(42, 13) in [5, 59.4]; else N(min(118, 120 − 0.8·max(0, age−30)), 12) in [60, 145]',
      measuredProbability: {
        systolic_bp: 'child 0.85, adult 0.95',
        bmi: 'child 0.85, adult 0.9',
        hba1c: 'diabetes 0.95, obesity 0.6, child 0.05, else 0.35',
        ldl_cholesterol: 'hyperlipidemia or CAD 0.9, child 0.05, age ≥ 40 0.55, else 0.3',
        egfr: 'CKD 0.95, diabetes or hypertension 0.8, child 0.05, else 0.4',
      },
      history:
        'each measured lab has 1–3 observations in the 3 years before the reference date; the latest carries the current value, earlier ones are noisy versions of it',
    },
  };
}
