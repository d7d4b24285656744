/**
 * Simulated clinical notes: plain-text files named `<MRN>_<yyyymmdd>_<k>.txt`, in several styles
 * (SOAP, narrative, consult letter, brief ED note). Every note starts with header lines that
 * carry direct identifiers (synthetic name, MRN, date of birth, phone): the notes connector must
 * strip them. The body mentions the patient's actual conditions (each with probability 0.85 per
 * note, in varied wording) and, for imaged patients, the radiograph findings; absent findings are
 * written NEGATED ("no focal consolidation", "no suspicious nodule"), so a mention detector
 * without negation handling over-counts.
 *
 * `NoteRecord.mentioned` lists the concepts written positively: truth.json counts them.
 */
import type { Rng } from '../model/rng.ts';
import { CONDITIONS, isoDate, type ConditionName, type LatentPatient } from './latent.ts';

/** Surface forms per concept (all contain a term of schema/hospital-multimodal-v1.yaml). */
export const SURFACE: Record<ConditionName | 'opacity' | 'nodule' | 'cardiomegaly', string[]> = {
  hypertension: ['hypertension', 'essential hypertension', 'HTN'],
  type2_diabetes: ['type 2 diabetes', 'diabetes mellitus type 2', 'T2DM'],
  hyperlipidemia: ['hyperlipidemia', 'dyslipidemia', 'mixed hyperlipidemia'],
  coronary_artery_disease: ['coronary artery disease', 'CAD', 'coronary disease'],
  heart_failure: ['heart failure', 'CHF', 'congestive heart failure'],
  chronic_kidney_disease: ['chronic kidney disease', 'CKD stage 3', 'CKD'],
  asthma: ['asthma', 'intermittent asthma', 'persistent asthma'],
  copd: ['COPD', 'chronic obstructive pulmonary disease', 'emphysema'],
  pneumonia: ['pneumonia', 'community-acquired pneumonia', 'lobar pneumonia'],
  obesity: ['obesity', 'class II obesity', 'morbid obesity'],
  opacity: ['airspace opacity', 'patchy opacity', 'focal opacity'],
  nodule: ['pulmonary nodule', 'nodule', 'small nodule'],
  cardiomegaly: ['cardiomegaly', 'enlarged cardiac silhouette with cardiomegaly', 'mild cardiomegaly'],
};

const NEGATED: Record<'opacity' | 'nodule' | 'cardiomegaly', string[]> = {
  opacity: ['No focal opacity or pleural effusion.', 'No airspace opacity.', 'Lungs clear without opacity.'],
  nodule: ['No suspicious nodule.', 'No pulmonary nodule is seen.', 'Without nodule or mass.'],
  cardiomegaly: ['Heart size normal, no cardiomegaly.', 'No cardiomegaly.', 'Cardiac silhouette normal without cardiomegaly.'],
};

export const NOTE_STYLES = ['soap', 'narrative', 'consult', 'brief'] as const;

export interface NoteRecord {
  fileName: string;
  text: string;
  /** Concepts written positively (not negated) in this note. */
  mentioned: Set<string>;
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function phone(rng: Rng): string {
  return `(${200 + rng.int(700)}) 555-${String(rng.int(10_000)).padStart(4, '0')}`;
}

/** The notes of one patient (empty when `p.notes` is 0). */
export function writePatientNotes(p: LatentPatient, styles: readonly string[], referenceDate: string, rng: Rng): NoteRecord[] {
  const out: NoteRecord[] = [];
  const refMs = Date.parse(`${referenceDate}T00:00:00Z`);
  const present = CONDITIONS.filter((c) => p.conditions[c]);
  for (let k = 0; k < p.notes; k++) {
    const style = rng.pick(styles);
    const date = isoDate(refMs - (5 + rng.int(700)) * 86_400_000);
    const mentioned = new Set<string>();
    const conds = present.filter(() => rng.bernoulli(0.85));
    const say = (c: keyof typeof SURFACE) => {
      mentioned.add(c);
      return rng.pick(SURFACE[c]);
    };
    const condList = conds.map((c) => say(c));
    const imaging: string[] = [];
    if (p.imaged && rng.bernoulli(0.9)) {
      for (const f of ['opacity', 'cardiomegaly', 'nodule'] as const) {
        if (p.findings[f]) {
          // The side drawn in the radiograph when there is one (the draw is kept so the stream is unchanged).
          const drawn = rng.bernoulli(0.5) ? 'right' : 'left';
          const side = (f === 'opacity' || f === 'nodule' ? p.imageSides?.[f] : undefined) ?? drawn;
          const where = side === 'bilateral' ? 'in both lungs' : `in the ${side} lung`;
          imaging.push(f === 'cardiomegaly' ? `${cap(say(f))} is present.` : `${cap(say(f))} ${where}.`);
        } else imaging.push(rng.pick(NEGATED[f]));
      }
    }
    const age = `${p.ageYears}-year-old ${p.sex === 'female' ? 'woman' : 'man'}`;
    const header = [
      `Patient: ${p.given} ${p.family}`,
      `MRN: ${p.mrn}`,
      `DOB: ${p.birthDate}`,
      ...(rng.bernoulli(0.5) ? [`Phone: ${phone(rng)}`] : []),
      `Date of service: ${date}`,
      '',
    ];
    const history = condList.length ? `${condList.map(cap).join('. ')}.` : 'No significant past medical history.';
    const denies = rng.pick(['Denies chest pain.', 'Denies fever or chills.', 'Denies recent travel.', 'No known drug allergies.']);
    const cxr = imaging.length ? imaging.join(' ') : '';
    let body: string[];
    switch (style) {
      case 'soap':
        body = [
          'SUBJECTIVE:',
          `${age} seen for follow-up. ${denies}`,
          '',
          'PAST MEDICAL HISTORY:',
          history,
          '',
          'OBJECTIVE:',
          `Vitals reviewed.${cxr ? ` Chest x-ray: ${cxr}` : ''}`,
          '',
          'ASSESSMENT AND PLAN:',
          condList.length
            ? condList.map((c, i) => `${i + 1}. ${cap(c)}, continue current management.`).join('\n')
            : 'Routine health maintenance.',
        ];
        break;
      case 'consult':
        body = [
          'Dear colleague,',
          '',
          `Thank you for referring this ${age}. ${denies}`,
          '',
          '# History',
          history,
          '',
          ...(cxr ? ['# Imaging', `Frontal chest radiograph. ${cxr}`, ''] : []),
          '# Impression',
          condList.length ? `${condList.map(cap).join('; ')}.` : 'No active problems.',
          '',
          'Kind regards,',
          'Consultant, Internal Medicine',
        ];
        break;
      case 'brief':
        body = [
          `CC: follow-up. ${denies}`,
          `PMH: ${condList.length ? condList.join(', ') : 'none'}.`,
          ...(cxr ? [`CXR: ${cxr}`] : []),
          `A/P: ${condList.length ? condList.join(', ') : 'well'}; return as needed.`,
        ];
        break;
      default:
        body = [
          'HISTORY OF PRESENT ILLNESS:',
          `The patient is a ${age} with ${condList.length ? `a history of ${condList.join(', ')}` : 'no chronic conditions'}. ${denies}`,
          '',
          ...(cxr ? ['FINDINGS:', cxr, ''] : []),
          'IMPRESSION:',
          condList.length ? `${condList.map(cap).join(', ')}.` : 'Healthy visit.',
        ];
    }
    const fileName = `${p.mrn}_${date.replaceAll('-', '')}_${k + 1}.txt`;
    out.push({ fileName, text: [...header, ...body, ''].join('\n'), mentioned });
  }
  return out;
}
