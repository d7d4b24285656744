/**
 * Public note templates (written for fedsynth, not learned from any private note): per style,
 * the sections history, findings, assessment and plan, each a list of phrase variants per topic.
 * Slots are `{{name}}` tokens filled by the generator; a variant may use only the slots its
 * topic provides. Phrase choice per topic is uniform, or weighted by a table of (DP) noisy
 * phrase counts (docs/modalities.md §Notes).
 *
 * Some variants hedge ("possibly reflecting pneumonia"): realistic, and exactly what the verifier
 * rejects when the patient lacks that condition, so rejection sampling has work to do.
 */

export type NoteStyle = 'narrative' | 'soap' | 'telegraphic';
export const NOTE_STYLES: readonly NoteStyle[] = ['narrative', 'soap', 'telegraphic'];
export type NoteSection = 'history' | 'findings' | 'assessment' | 'plan';

/** Section headings per style; null = the section is not written as a heading (inline text). */
export const SECTION_HEADINGS: Record<NoteStyle, Record<NoteSection, string>> = {
  narrative: { history: 'History', findings: 'Imaging', assessment: 'Assessment', plan: 'Plan' },
  soap: { history: 'S', findings: 'O', assessment: 'A', plan: 'P' },
  telegraphic: { history: 'HPI/PMH', findings: 'CXR', assessment: 'Impression', plan: 'Plan' },
};

/** Topic → phrase variants. Topic keys are stable: a phrase-weight table is keyed by them. */
export const PHRASES: Record<string, string[]> = {
  // History
  'history.intro': [
    '{{ageText}} {{sexNoun}} with a history of {{conditionList}}.',
    '{{Pronoun}} is a {{ageText}} {{sexNoun}} with {{conditionList}}.',
    '{{ageShort}} {{sexShort}} with past medical history significant for {{conditionList}}.',
    'Patient is a {{ageText}} {{sexNoun}}; known {{conditionList}}.',
  ],
  'history.intro.none': [
    '{{ageText}} {{sexNoun}} without significant past medical history.',
    '{{Pronoun}} is a {{ageText}} {{sexNoun}}, previously healthy.',
    '{{ageShort}} {{sexShort}}, no chronic medical problems.',
  ],
  'history.visit': [
    'Seen today for routine follow-up.',
    'Presents for a scheduled review.',
    'Here for follow-up of chronic conditions.',
    'Attends clinic for reassessment.',
  ],
  // The visit's reason when the patient has no chronic condition to follow up.
  'history.visit.routine': [
    'Seen today for a routine check-up.',
    'Presents for a scheduled health check.',
    'Attends for a preventive visit.',
  ],
  'history.visit.acute': [
    'Seen today to review recovery from the recent illness.',
    'Attends for review after the recent illness.',
    'Presents for a scheduled review.',
  ],
  // The list mixes vital signs (blood pressure, BMI) with laboratory results, so never "labs".
  'history.labs': ['Recent results: {{labList}}.', 'Results reviewed: {{labList}}.', 'Most recent values: {{labList}}.'],
  // Prescriptions running at the note's date, with their doses (notes/medications.ts).
  'history.medications': ['Current medications: {{medList}}.', 'Medications: {{medList}}.', 'Takes {{medList}}.'],
  // Findings (one topic per image class)
  // Why the radiograph was taken (notes/indication.ts); symptoms, never a coded diagnosis.
  'indication.acute': ['Requested to follow up the recent {{condition}}.', 'Radiograph to review the recent {{condition}}.'],
  'indication.heart_failure': [
    'Requested for breathlessness on exertion in known {{condition}}.',
    'Requested for increasing ankle swelling and breathlessness; known {{condition}}.',
  ],
  'indication.airways': [
    'Requested for increased cough and breathlessness in known {{condition}}.',
    'Requested for a cough of three weeks; known {{condition}}.',
  ],
  'indication.symptom': [
    'Requested for a persistent cough of three weeks.',
    'Requested for breathlessness on exertion.',
    'Requested as part of a pre-operative assessment.',
  ],
  'indication.symptom.child': ['Requested for a persistent cough.', 'Requested for a cough with noisy breathing.'],
  'findings.normal': [
    'Chest radiograph ({{view}}): no acute cardiopulmonary abnormality.',
    'Chest radiograph ({{view}}): lungs are clear; heart size within normal limits.',
    'CXR {{view}}: no acute cardiopulmonary process.',
  ],
  'findings.opacity': [
    'Chest radiograph ({{view}}): focal opacity in the {{side}} lower zone.',
    'Chest radiograph ({{view}}): {{side}} basilar consolidation.',
    'CXR {{view}}: airspace opacity at the {{side}} base, possibly reflecting pneumonia.',
  ],
  'findings.cardiomegaly': [
    'Chest radiograph ({{view}}): cardiomegaly; lungs otherwise clear.',
    'Chest radiograph ({{view}}): enlarged cardiac silhouette.',
    'CXR {{view}}: cardiomegaly, as can be seen with heart failure.',
  ],
  'findings.effusion': [
    'Chest radiograph ({{view}}): small {{side}} pleural effusion.',
    'Chest radiograph ({{view}}): blunting of the costophrenic angle on the {{side}}, consistent with a small effusion.',
    'CXR {{view}}: {{side}} pleural effusion, which may relate to heart failure.',
  ],
  'findings.other': ['Chest radiograph ({{view}}): {{finding}}.'],
  // Assessment, per condition (generic; a condition-specific topic `assessment.<name>` wins when
  // present, then `assessment.acute` for an acute condition)
  'assessment.condition': [
    '{{Condition}}, stable.',
    '{{Condition}}, reviewed today.',
    '{{Condition}} remains under follow-up.',
    'Known {{condition}}, monitored.',
  ],
  'assessment.type2_diabetes': [
    '{{Condition}}, HbA1c reviewed.',
    '{{Condition}} on current regimen.',
    '{{Condition}}, glycaemic control discussed.',
  ],
  'assessment.hypertension': ['{{Condition}}, blood pressure reviewed.', '{{Condition}}, on treatment.'],
  // An acute illness (pneumonia, weeks old at the visit) is recovering, not "stable" or "monitored".
  'assessment.acute': ['{{Condition}}, improving.', '{{Condition}}, resolving.', 'Recent {{condition}}, recovering.'],
  'assessment.finding': ['Imaging shows {{finding}}.', 'Radiograph demonstrates {{finding}}.'],
  // An airspace opacity without a diagnosed pneumonia: an open differential, no coded diagnosis.
  'assessment.opacity.undiagnosed': [
    '{{Finding}} of uncertain cause: possible early infection versus atelectasis or other causes.',
    '{{Finding}} on the radiograph; differential includes infection, aspiration and atelectasis.',
    'Radiographic {{finding}} not explained by a current diagnosis; infection versus other causes considered.',
  ],
  'assessment.finding.normal': ['Chest radiograph normal.', 'Imaging unremarkable.'],
  // A value flagged high or low that no listed condition explains.
  'assessment.lab.high': [
    '{{lab}} above the reference range; recheck at the next visit.',
    'Raised {{lab}} noted; repeat measurement planned.',
  ],
  'assessment.lab.low': ['{{lab}} below the reference range; recheck at the next visit.', 'Low {{lab}} noted; repeat measurement planned.'],
  'assessment.none': ['No active problems.', 'Healthy {{lifeStage}}; preventive care.'],
  // Plan
  'plan.condition': [
    'Continue management of {{condition}}.',
    'Follow up {{condition}} in 3 months.',
    'Review {{condition}} at next visit.',
  ],
  'plan.acute': [
    'Review {{condition}} in 2 weeks, sooner if fever or breathlessness return.',
    'Recheck {{condition}} once treatment is complete.',
    'Safety-netting advice given for {{condition}}.',
  ],
  // The recent illness's antibiotic course (its drug and dose, from its first day).
  'plan.acute.course.done': ['Completed {{course}} from {{date}}.', 'Course of {{course}} from {{date}} completed.'],
  'plan.acute.course.running': [
    'Continue {{course}}, started {{date}}, to complete the course.',
    'Completing {{course}}, started {{date}}.',
  ],
  'plan.finding': ['Repeat chest radiograph in 6 weeks.', 'Clinical correlation and interval imaging.', 'Follow-up imaging as indicated.'],
  'plan.opacity.undiagnosed': [
    'Repeat chest radiograph in 6-8 weeks to confirm resolution; review sooner if fever, cough or breathlessness develop.',
    'Repeat chest radiograph in 6 to 8 weeks to confirm resolution; CT of the chest if it persists.',
    'Follow-up radiograph in 6-8 weeks to confirm resolution; advised to return sooner if symptoms develop.',
  ],
  'plan.general': ['Return if symptoms worsen.', 'Next routine visit in 6 months.', 'Patient agrees with the plan.'],
  // Infants and children under 13: the plan is agreed with the parents, not the patient.
  'plan.general.child': ['Return if symptoms worsen.', 'Next routine visit in 6 months.', 'Plan discussed with the parents, who agree.'],
};

/** Short lab labels (notes use these, not the LOINC long names). */
export const LAB_LABELS: Record<string, string> = {
  hba1c: 'HbA1c',
  ldl_cholesterol: 'LDL-C',
  systolic_bp: 'systolic BP',
  diastolic_bp: 'diastolic BP',
  bmi: 'BMI',
  egfr: 'eGFR',
  creatinine: 'creatinine',
  glucose: 'glucose',
};
