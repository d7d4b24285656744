/**
 * Public vocabulary of condition and imaging-finding terms (preferred term first, then
 * synonyms and abbreviations), used by the note generator to word facts and by the verifier to
 * find mentions. Extendable from a schema: every condition attribute gets at least its display
 * text (without the SNOMED semantic tag) as a term.
 */

export interface VocabularyEntry {
  name: string;
  /** Lower-case phrases; the first is the preferred wording. */
  terms: string[];
}

export interface Vocabulary {
  conditions: VocabularyEntry[];
  /** Abnormal findings; "normal" is handled by `normalFindingTerms`. */
  findings: VocabularyEntry[];
  /** Phrases that state a normal study (not negation-checked: they are negative by design). */
  normalFindingTerms: string[];
}

export const DEFAULT_CONDITION_TERMS: Record<string, string[]> = {
  hypertension: ['hypertension', 'essential hypertension', 'high blood pressure', 'htn'],
  type2_diabetes: ['type 2 diabetes mellitus', 'type 2 diabetes', 'diabetes mellitus type 2', 't2dm'],
  type1_diabetes: ['type 1 diabetes mellitus', 'type 1 diabetes', 'diabetes mellitus type 1', 't1dm'],
  hyperlipidemia: ['hyperlipidemia', 'dyslipidemia', 'hypercholesterolemia'],
  coronary_artery_disease: ['coronary artery disease', 'coronary arteriosclerosis', 'ischemic heart disease', 'cad'],
  heart_failure: ['heart failure', 'congestive heart failure', 'chf'],
  atrial_fibrillation: ['atrial fibrillation', 'afib'],
  asthma: ['asthma'],
  copd: ['chronic obstructive pulmonary disease', 'chronic obstructive lung disease', 'copd', 'emphysema'],
  pneumonia: ['pneumonia', 'community-acquired pneumonia'],
  obesity: ['obesity'],
  chronic_kidney_disease: ['chronic kidney disease', 'ckd', 'chronic renal insufficiency'],
  depression: ['depression', 'major depressive disorder'],
  stroke: ['stroke', 'cerebrovascular accident'],
  osteoarthritis: ['osteoarthritis'],
  breast_cancer: ['breast cancer', 'malignant neoplasm of breast'],
  prostate_cancer: ['prostate cancer', 'malignant neoplasm of prostate'],
  lung_cancer: ['lung cancer', 'malignant neoplasm of lung'],
};

export const DEFAULT_FINDING_TERMS: Record<string, string[]> = {
  opacity: ['airspace opacity', 'focal opacity', 'consolidation', 'opacity', 'infiltrate'],
  cardiomegaly: ['cardiomegaly', 'enlarged cardiac silhouette', 'cardiac enlargement'],
  effusion: ['pleural effusion', 'effusion', 'blunting of the costophrenic angle'],
  nodule: ['pulmonary nodule', 'nodule'],
  pneumothorax: ['pneumothorax'],
};

export const DEFAULT_NORMAL_FINDING_TERMS = [
  'no acute cardiopulmonary abnormality',
  'no acute cardiopulmonary process',
  'lungs are clear',
  'normal chest radiograph',
  'unremarkable chest radiograph',
];

/** "Diabetes mellitus type 2 (disorder)" → "diabetes mellitus type 2". */
export function displayToTerm(display: string): string {
  return display
    .replace(/\s*\((disorder|finding|disease|morphologic abnormality|situation)\)\s*$/i, '')
    .trim()
    .toLowerCase();
}

/**
 * The default vocabulary, plus every given condition (schema attributes) with its display text
 * as an extra synonym; conditions not in the defaults get their display as preferred term.
 */
export function buildVocabulary(
  conditions: readonly { name: string; display: string }[] = [],
  extra: Partial<Vocabulary> = {},
): Vocabulary {
  const map = new Map<string, string[]>();
  for (const [name, terms] of Object.entries(DEFAULT_CONDITION_TERMS)) map.set(name, [...terms]);
  for (const c of conditions) {
    const t = displayToTerm(c.display);
    const terms = map.get(c.name) ?? [];
    if (!terms.includes(t)) terms.push(t);
    map.set(c.name, terms);
  }
  for (const e of extra.conditions ?? [])
    map.set(e.name, [...new Set([...(map.get(e.name) ?? []), ...e.terms.map((t) => t.toLowerCase())])]);
  const findings = new Map<string, string[]>(Object.entries(DEFAULT_FINDING_TERMS).map(([k, v]) => [k, [...v]]));
  for (const e of extra.findings ?? [])
    findings.set(e.name, [...new Set([...(findings.get(e.name) ?? []), ...e.terms.map((t) => t.toLowerCase())])]);
  return {
    conditions: [...map].map(([name, terms]) => ({ name, terms })),
    findings: [...findings].map(([name, terms]) => ({ name, terms })),
    normalFindingTerms: extra.normalFindingTerms ?? [...DEFAULT_NORMAL_FINDING_TERMS],
  };
}

export function conditionTerms(vocab: Vocabulary, name: string, display?: string): string[] {
  const e = vocab.conditions.find((c) => c.name === name);
  if (e) return e.terms;
  return display ? [displayToTerm(display)] : [name.replace(/_/g, ' ')];
}

export function findingTerms(vocab: Vocabulary, findingClass: string): string[] {
  if (findingClass === 'normal') return vocab.normalFindingTerms;
  const e = vocab.findings.find((f) => f.name === findingClass);
  if (!e) throw new Error(`vocabulary has no imaging finding ${JSON.stringify(findingClass)}`);
  return e.terms;
}
