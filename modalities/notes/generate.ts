/**
 * Template note generator conditioned on synthetic facts, with optional DP phrase weights, and
 * rejection sampling through the verifier. Pure: returns strings and counts.
 */
import type { Rng } from '../../model/rng.ts';
import { SECONDARY_HYPERTENSION } from '../clinical/hypertension.ts';
import { imageFindings, labValueText, sidedFindingText, type FactLab, type FactMedication, type SyntheticFacts } from './facts.ts';
import { LAB_LABELS, NOTE_STYLES, PHRASES, SECTION_HEADINGS, type NoteSection, type NoteStyle } from './templates.ts';
import { verifyNote, type NoteIssue } from './verify.ts';
import { imagingIndication, undiagnosedOpacity } from './indication.ts';
import { conditionTerms, findingTerms, type Vocabulary } from './vocabulary.ts';
import { courseRunning, medicationsAtNote, medicationText } from './medications.ts';

/**
 * Noisy phrase counts per topic (`PHRASES` key → one weight per variant, same order), e.g. the
 * post-processed output of a DP count query. Negative noisy counts are clamped to 0; a public
 * pseudo-count `prior` is added to every variant so no variant is impossible and an all-zero row
 * falls back to uniform. Term choices use topics `term.<condition>` over the vocabulary synonyms.
 */
export type PhraseWeights = Record<string, number[]>;

export interface GenerateOptions {
  style?: NoteStyle;
  /** Style weights (narrative, soap, telegraphic) when `style` is not fixed. */
  styleWeights?: number[];
  phraseWeights?: PhraseWeights;
  /** Pseudo-count added to each variant (default 0.5). */
  prior?: number;
  /** Telegraphic notes name at most this many problems (default 3). */
  telegraphicMaxProblems?: number;
}

export interface GeneratedNote {
  text: string;
  style: NoteStyle;
}

function choose(topic: string, variants: readonly string[], rng: Rng, opts: GenerateOptions): string {
  const w = opts.phraseWeights?.[topic];
  if (!w) return variants[rng.int(variants.length)];
  if (w.length !== variants.length) throw new Error(`phrase weights for ${topic}: ${w.length} weights for ${variants.length} variants`);
  const prior = opts.prior ?? 0.5;
  return variants[rng.weighted(w.map((x) => Math.max(0, Number.isFinite(x) ? x : 0) + prior))];
}

function fill(template: string, slots: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => (key in slots ? slots[key] : whole));
}

function capitalise(s: string): string {
  return s.length ? s[0].toUpperCase() + s.slice(1) : s;
}

function listText(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function formatLab(l: FactLab): string {
  const label = LAB_LABELS[l.name] ?? l.display;
  const flag = l.interpretation === 'high' ? ' (high)' : l.interpretation === 'low' ? ' (low)' : '';
  return `${label} ${labValueText(l)} ${l.unit}${flag}`;
}

const SEX_NOUN: Record<string, [string, string, string]> = {
  female: ['woman', 'F', 'She'],
  male: ['man', 'M', 'He'],
  other: ['patient', 'pt', 'They'],
  unknown: ['patient', 'pt', 'They'],
};
const CHILD_NOUN: Record<string, string> = { female: 'girl', male: 'boy' };

/** How a note names the patient at the note's age: infants, children and adolescents as such. */
export function personWords(
  facts: SyntheticFacts,
): Record<'ageText' | 'ageShort' | 'sexNoun' | 'sexShort' | 'Pronoun' | 'lifeStage', string> {
  const [adultNoun, sexShort, Pronoun] = SEX_NOUN[facts.sex] ?? SEX_NOUN.unknown;
  const years = Math.floor(facts.age);
  if (years < 1 && facts.ageMonths !== undefined) {
    const m = facts.ageMonths;
    return m < 1
      ? { ageText: 'newborn', ageShort: 'newborn', sexNoun: 'infant', sexShort, Pronoun, lifeStage: 'infant' }
      : { ageText: `${m}-month-old`, ageShort: `${m} m/o`, sexNoun: 'infant', sexShort, Pronoun, lifeStage: 'infant' };
  }
  const ageText = `${years}-year-old`;
  const ageShort = `${years} y/o`;
  if (years < 18)
    return {
      ageText,
      ageShort,
      sexNoun: CHILD_NOUN[facts.sex] ?? 'child',
      sexShort,
      Pronoun,
      lifeStage: years < 13 ? 'child' : 'adolescent',
    };
  return { ageText, ageShort, sexNoun: adultNoun, sexShort, Pronoun, lifeStage: 'adult' };
}

const dateMs = (s: string) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s);

/**
 * The facts as of the note's date: conditions that began on or before it, labs measured on or
 * before it (everything when the facts carry no dates).
 */
export function factsAsOfNote(facts: SyntheticFacts): SyntheticFacts {
  if (!facts.noteDate) return facts;
  const at = dateMs(facts.noteDate);
  return {
    ...facts,
    conditions: facts.conditions.filter((c) => !c.onset || dateMs(c.onset) <= at),
    ...(facts.labs ? { labs: facts.labs.filter((l) => !l.effective || dateMs(l.effective) <= at) } : {}),
  };
}

/** The condition a value flagged high points to: with it the value is explained by the problem list. */
const FLAG_CONDITIONS: Record<string, readonly string[]> = {
  hba1c: ['type2_diabetes', 'type1_diabetes', 'diabetes'],
  ldl_cholesterol: ['hyperlipidemia'],
  systolic_bp: ['hypertension'],
  bmi: ['obesity'],
  egfr: ['chronic_kidney_disease'],
};

/**
 * Quoted values flagged high or low that no listed condition explains (an LDL-C of 199 in a patient
 * without hyperlipidemia, a BMI of 17): a clinician comments on them rather than writing "no active
 * problems". A low BMI is never explained by obesity.
 */
export function unexplainedLabs(facts: SyntheticFacts): FactLab[] {
  const has = (c: string) => facts.conditions.some((x) => x.name === c);
  return (facts.labs ?? []).filter((l) => {
    if (l.interpretation !== 'high' && l.interpretation !== 'low') return false;
    if (l.name === 'bmi' && l.interpretation === 'low') return true;
    return !(FLAG_CONDITIONS[l.name] ?? []).some(has);
  });
}

/** The lab a condition's own assessment phrases say was reviewed. */
const REVIEWED_LAB: Record<string, string> = { type2_diabetes: 'hba1c', hypertension: 'systolic_bp' };

/** Whether the condition-specific assessment ("HbA1c reviewed", "on treatment") is true of the note: its lab quoted, a drug for it running. */
function reviewable(name: string, facts: SyntheticFacts, current: readonly FactMedication[]): boolean {
  const lab = REVIEWED_LAB[name];
  return (lab === undefined || (facts.labs ?? []).some((l) => l.name === lab)) && current.some((m) => (m.reasons ?? []).includes(name));
}

/** One note from the templates (unverified). */
export function generateNote(all: SyntheticFacts, vocab: Vocabulary, rng: Rng, opts: GenerateOptions = {}): GeneratedNote {
  const facts = factsAsOfNote(all);
  const style = opts.style ?? NOTE_STYLES[opts.styleWeights ? rng.weighted(opts.styleWeights) : rng.int(NOTE_STYLES.length)];
  const base = personWords(facts);
  // Wording of each condition: a synonym from the vocabulary (weighted by `term.<name>`).
  const terms = facts.conditions.map((c) => {
    // Secondary hypertension (a child's, diagnosed before 6: AAP 2017) is never worded "essential".
    const all = conditionTerms(vocab, c.name, c.display);
    const t = c.snomed === SECONDARY_HYPERTENSION.snomed.code ? all.filter((x) => !x.includes('essential')) : all;
    // Abbreviations only in telegraphic notes.
    const allowed = style === 'telegraphic' ? t : t.filter((x) => x.length > 4);
    return choose(`term.${c.name}`, allowed.length ? allowed : t, rng, opts);
  });
  // Telegraphic notes only name the first few problems (a realistic omission the verifier catches).
  const maxProblems = style === 'telegraphic' ? (opts.telegraphicMaxProblems ?? 3) : Infinity;
  const listed = terms.length > maxProblems ? [...terms.slice(0, maxProblems), 'others'] : terms;
  const sections: Partial<Record<NoteSection, string[]>> = { history: [], findings: [], assessment: [], plan: [] };
  // History
  sections.history!.push(
    terms.length
      ? capitalise(fill(choose('history.intro', PHRASES['history.intro'], rng, opts), { ...base, conditionList: listText(listed) }))
      : capitalise(fill(choose('history.intro.none', PHRASES['history.intro.none'], rng, opts), base)),
  );
  if (style !== 'telegraphic') {
    // "Follow-up of chronic conditions" only for a patient who has one.
    const visit = facts.conditions.some((c) => !c.acute)
      ? 'history.visit'
      : facts.conditions.length > 0
        ? 'history.visit.acute'
        : 'history.visit.routine';
    sections.history!.push(choose(visit, PHRASES[visit], rng, opts));
  }
  if (facts.labs && facts.labs.length)
    sections.history!.push(
      fill(choose('history.labs', PHRASES['history.labs'], rng, opts), { labList: facts.labs.map(formatLab).join(', ') }),
    );
  const meds = medicationsAtNote(facts);
  if (meds.current.length)
    sections.history!.push(
      fill(choose('history.medications', PHRASES['history.medications'], rng, opts), {
        medList: meds.current.map(medicationText).join('; '),
      }),
    );
  // Findings
  const img = facts.image;
  let findingText = '';
  if (img) {
    // The side drawn in the pixels when the image has one (an opacity's side: the "{{side}}" of
    // its templates); a side-less template never names one.
    const drawnSide = img.sides?.[img.findingClass];
    const side = drawnSide === 'bilateral' ? 'bilateral' : (drawnSide ?? (rng.bernoulli(0.5) ? 'right' : 'left'));
    const view = img.view ?? 'PA';
    const found = imageFindings(img);
    // Several findings share one sentence: the single-finding templates say "lungs otherwise clear".
    // The single-finding templates that name a side take a unilateral one only.
    const single = PHRASES[`findings.${img.findingClass}`] && drawnSide !== 'bilateral' ? `findings.${img.findingClass}` : 'findings.other';
    const topic = found.length > 1 ? 'findings.other' : single;
    const term = (f: string) => findingTerms(vocab, f)[0]!;
    findingText = found.length === 0 ? 'normal' : listText(found.map(term));
    // "Imaging shows …" and the multi-finding sentence name each finding with its side.
    if (found.length > 0 && topic === 'findings.other') findingText = listText(found.map((f) => sidedFindingText(term(f), img.sides?.[f])));
    const why = imagingIndication(facts);
    const named = why.condition === undefined ? '' : terms[why.condition];
    sections.findings!.push(fill(choose(why.topic, PHRASES[why.topic], rng, opts), { condition: named }));
    sections.findings!.push(fill(choose(topic, PHRASES[topic], rng, opts), { view, side, finding: findingText }));
  }
  const openOpacity = undiagnosedOpacity(facts);
  // Assessment
  if (style !== 'telegraphic' || facts.conditions.length === 0) {
    facts.conditions.forEach((c, i) => {
      // "HbA1c reviewed", "on treatment" only when the note quotes the value and the patient takes a drug for it.
      const specific = PHRASES[`assessment.${c.name}`] && reviewable(c.name, facts, meds.current);
      const topic = specific ? `assessment.${c.name}` : c.acute ? 'assessment.acute' : 'assessment.condition';
      sections.assessment!.push(fill(choose(topic, PHRASES[topic], rng, opts), { condition: terms[i], Condition: capitalise(terms[i]) }));
    });
    if (img) {
      if (img.findingClass === 'normal')
        sections.assessment!.push(choose('assessment.finding.normal', PHRASES['assessment.finding.normal'], rng, opts));
      else if (openOpacity)
        sections.assessment!.push(
          fill(choose('assessment.opacity.undiagnosed', PHRASES['assessment.opacity.undiagnosed'], rng, opts), {
            finding: findingText,
            Finding: capitalise(findingText),
          }),
        );
      else
        sections.assessment!.push(fill(choose('assessment.finding', PHRASES['assessment.finding'], rng, opts), { finding: findingText }));
    }
    const unexplained = unexplainedLabs(facts);
    for (const l of unexplained) {
      const topic = l.interpretation === 'high' ? 'assessment.lab.high' : 'assessment.lab.low';
      sections.assessment!.push(capitalise(fill(choose(topic, PHRASES[topic], rng, opts), { lab: LAB_LABELS[l.name] ?? l.display })));
    }
    if (facts.conditions.length === 0 && (!img || img.findingClass === 'normal') && unexplained.length === 0)
      sections.assessment!.push(fill(choose('assessment.none', PHRASES['assessment.none'], rng, opts), base));
  }
  // A telegraphic note lists no assessment beside its problems, but an unexplained opacity still gets its differential.
  if (style === 'telegraphic' && facts.conditions.length > 0 && openOpacity)
    sections.assessment!.push(
      fill(choose('assessment.opacity.undiagnosed', PHRASES['assessment.opacity.undiagnosed'], rng, opts), {
        finding: findingText,
        Finding: capitalise(findingText),
      }),
    );
  // Plan
  terms.slice(0, maxProblems).forEach((t, i) => {
    const topic = facts.conditions[i].acute ? 'plan.acute' : 'plan.condition';
    sections.plan!.push(fill(choose(topic, PHRASES[topic], rng, opts), { condition: t }));
  });
  // The recent illness's antibiotic, by name and dose, completed or still being taken.
  for (const m of meds.courses) {
    const topic = courseRunning(m, facts.noteDate) ? 'plan.acute.course.running' : 'plan.acute.course.done';
    sections.plan!.push(fill(choose(topic, PHRASES[topic], rng, opts), { course: medicationText(m), date: m.start.slice(0, 10) }));
  }
  // An opacity nobody has explained gets its repeat film, not "imaging as indicated" and a visit in 6 months.
  if (openOpacity) sections.plan!.push(choose('plan.opacity.undiagnosed', PHRASES['plan.opacity.undiagnosed'], rng, opts));
  else {
    if (img && img.findingClass !== 'normal') sections.plan!.push(choose('plan.finding', PHRASES['plan.finding'], rng, opts));
    const general = base.lifeStage === 'infant' || base.lifeStage === 'child' ? 'plan.general.child' : 'plan.general';
    sections.plan!.push(choose(general, PHRASES[general], rng, opts));
  }

  const headings = SECTION_HEADINGS[style];
  const parts: string[] = [];
  for (const s of ['history', 'findings', 'assessment', 'plan'] as const) {
    const lines = sections[s]!;
    if (lines.length === 0) continue;
    if (style === 'narrative') parts.push(`${headings[s]}:\n${lines.join(' ')}`);
    else if (style === 'soap') parts.push(`${headings[s]}: ${lines.join(' ')}`);
    else parts.push(`${headings[s]}: ${lines.map((l) => l.replace(/\.$/, '')).join('; ')}.`);
  }
  return { text: parts.join(style === 'narrative' ? '\n\n' : '\n') + '\n', style };
}

/** A note that passes the verifier by construction (preferred terms, no hedges): the fallback after the retry cap. */
export function safeNote(all: SyntheticFacts, vocab: Vocabulary): string {
  const facts = factsAsOfNote(all);
  const { ageText, sexNoun } = personWords(facts);
  const terms = facts.conditions.map((c) => conditionTerms(vocab, c.name, c.display)[0]);
  const lines = [
    'History:',
    terms.length
      ? capitalise(`${ageText} ${sexNoun} with a history of ${listText(terms)}.`)
      : capitalise(`${ageText} ${sexNoun} without significant past medical history.`),
  ];
  if (facts.labs?.length) lines.push(`Results reviewed: ${facts.labs.map(formatLab).join(', ')}.`);
  const meds = medicationsAtNote(facts);
  if (meds.current.length) lines.push(`Current medications: ${meds.current.map(medicationText).join('; ')}.`);
  if (facts.image) {
    lines.push('', 'Imaging:');
    const why = imagingIndication(facts);
    lines.push(PHRASES[why.topic][0].replace('{{condition}}', why.condition === undefined ? '' : terms[why.condition]));
    const found = imageFindings(facts.image);
    lines.push(
      found.length === 0
        ? 'Chest radiograph: no acute cardiopulmonary abnormality.'
        : `Chest radiograph: ${listText(found.map((f) => sidedFindingText(findingTerms(vocab, f)[0]!, facts.image!.sides?.[f])))}.`,
    );
  }
  const plan = terms.length ? [`Continue management of ${listText(terms)}.`] : [];
  for (const m of meds.courses)
    plan.push(`${courseRunning(m, facts.noteDate) ? 'Continue' : 'Completed'} ${medicationText(m)} from ${m.start.slice(0, 10)}.`);
  if (undiagnosedOpacity(facts)) plan.push(PHRASES['plan.opacity.undiagnosed'][0]);
  else if (!terms.length) plan.push('Next routine visit in 6 months.');
  lines.push('', 'Plan:', ...plan);
  return lines.join('\n') + '\n';
}

/** Counts of the rejection sampler, accumulated over a cohort. */
export class NoteStats {
  notes = 0;
  attempts = 0;
  rejected = 0;
  /** Notes that hit the retry cap and were replaced by the safe fallback. */
  fallbacks = 0;
  byIssue: Record<string, number> = {};
  /** Rejected attempts / all attempts. */
  get rejectionRate(): number {
    return this.attempts === 0 ? 0 : this.rejected / this.attempts;
  }
  record(issues: NoteIssue[]): void {
    this.attempts++;
    if (issues.length === 0) return;
    this.rejected++;
    for (const k of new Set(issues.map((i) => i.kind))) this.byIssue[k] = (this.byIssue[k] ?? 0) + 1;
  }
  toJSON() {
    return {
      notes: this.notes,
      attempts: this.attempts,
      rejected: this.rejected,
      rejectionRate: this.rejectionRate,
      fallbacks: this.fallbacks,
      byIssue: this.byIssue,
    };
  }
  /** Adds another sampler's counts (e.g. one patient's, prepared elsewhere). */
  add(other: ReturnType<NoteStats['toJSON']>): void {
    this.notes += other.notes;
    this.attempts += other.attempts;
    this.rejected += other.rejected;
    this.fallbacks += other.fallbacks;
    for (const [k, v] of Object.entries(other.byIssue)) this.byIssue[k] = (this.byIssue[k] ?? 0) + v;
  }
}

export interface VerifiedNote {
  text: string;
  style: NoteStyle | 'safe';
  attempts: number;
  /** The issues of each rejected attempt. */
  rejections: NoteIssue[][];
}

export class SafeNoteError extends Error {}

/**
 * Rejection sampling: generate, verify, retry up to `maxTries`; then the safe fallback (verified
 * too; SafeNoteError if even it fails). Notes are worded with `vocab` and verified against
 * `verifyWith` (default `vocab`), e.g. a larger vocabulary whose extra synonyms must not appear
 * for conditions the patient lacks.
 */
export function generateVerifiedNote(
  facts: SyntheticFacts,
  vocab: Vocabulary,
  rng: Rng,
  opts: GenerateOptions & { maxTries?: number; stats?: NoteStats; verifyWith?: Vocabulary } = {},
): VerifiedNote {
  const maxTries = opts.maxTries ?? 5;
  const verifyVocab = opts.verifyWith ?? vocab;
  const rejections: NoteIssue[][] = [];
  if (opts.stats) opts.stats.notes++;
  for (let t = 0; t < maxTries; t++) {
    const note = generateNote(facts, vocab, rng, opts);
    const v = verifyNote(note.text, facts, verifyVocab);
    opts.stats?.record(v.issues);
    if (v.ok) return { text: note.text, style: note.style, attempts: t + 1, rejections };
    rejections.push(v.issues);
  }
  const text = safeNote(facts, vocab);
  const v = verifyNote(text, facts, verifyVocab);
  if (!v.ok) throw new SafeNoteError(`safe note failed verification (vocabulary bug): ${v.issues.map((i) => i.detail).join('; ')}`);
  if (opts.stats) opts.stats.fallbacks++;
  return { text, style: 'safe', attempts: maxTries, rejections };
}
