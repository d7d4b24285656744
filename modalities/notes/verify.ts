/**
 * Note ↔ facts consistency: a note must mention every condition the patient has
 * and its imaging finding, must not assert a condition or finding the patient lacks, must not
 * negate one the patient has, and must hold no leftover template tokens. Mentions are found with
 * the public vocabulary (longest match at word boundaries); a mention is negated when a NegEx-style
 * trigger ("no", "denies", "without", "negative for", "no evidence of", …) precedes it within a few
 * words of the same clause, or a post-trigger ("ruled out", "excluded", …) follows it. Pure.
 */
import { imageFindings, labValueText, type SyntheticFacts } from './facts.ts';
import { LAB_LABELS } from './templates.ts';
import type { Vocabulary } from './vocabulary.ts';
import { medicationIssues } from './medications.ts';

export type NoteIssueKind =
  | 'missing-condition'
  | 'extra-condition'
  | 'negated-condition'
  | 'missing-finding'
  | 'extra-finding'
  | 'negated-finding'
  | 'leftover-token'
  | 'empty'
  | 'age-mismatch'
  | 'adult-words-for-child'
  | 'condition-after-note'
  | 'value-after-note'
  | 'stale-acute-condition'
  | 'visit-reason-mismatch'
  | 'medication-not-current'
  | 'medication-omitted'
  | 'unsupported-review';

export interface NoteIssue {
  kind: NoteIssueKind;
  detail: string;
}

export interface NoteVerification {
  ok: boolean;
  issues: NoteIssue[];
}

export interface Mention {
  kind: 'condition' | 'finding' | 'normal';
  names: string[];
  term: string;
  index: number;
  negated: boolean;
}

const PRE_TRIGGERS = [
  'no',
  'not',
  'denies',
  'denied',
  'without',
  'negative for',
  'no evidence of',
  'no signs of',
  'no sign of',
  'free of',
  'absence of',
  'rules out',
  'ruled out',
  'rule out',
  'never had',
  'no history of',
  'family history of',
  'resolved',
];
const POST_TRIGGERS = [
  'ruled out',
  'was ruled out',
  'has been ruled out',
  'excluded',
  'was excluded',
  'is excluded',
  'not seen',
  'is absent',
  'absent',
  'resolved',
];
const TERMINATORS = ['but', 'however', 'although', 'though', 'except', 'aside from', 'apart from', 'which', 'presents with'];
const PRE_WINDOW = 8;
const POST_WINDOW = 4;

/** Leftover template tokens and rendering accidents. */
export const LEFTOVER_RE =
  /\{\{[^}]*\}\}|\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_.]*\}|\$\{[^}]*\}|<[A-Z][A-Z_]+>|\[\[[^\]]*\]\]|\[object Object\]|\bundefined\b|\bNaN\b|\bnull\b|__[A-Z_]+__/;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface Matcher {
  re: RegExp;
  byTerm: Map<string, { kind: Mention['kind']; names: string[] }>;
}

const matcherCache = new WeakMap<Vocabulary, Matcher>();

function matcher(vocab: Vocabulary): Matcher {
  let m = matcherCache.get(vocab);
  if (m) return m;
  const byTerm = new Map<string, { kind: Mention['kind']; names: string[] }>();
  const add = (kind: Mention['kind'], name: string, term: string) => {
    const t = term.toLowerCase();
    const prev = byTerm.get(t);
    if (!prev) byTerm.set(t, { kind, names: [name] });
    else if (prev.kind === kind && !prev.names.includes(name)) prev.names.push(name);
  };
  for (const t of vocab.normalFindingTerms) add('normal', 'normal', t);
  for (const c of vocab.conditions) for (const t of c.terms) add('condition', c.name, t);
  for (const f of vocab.findings) for (const t of f.terms) add('finding', f.name, t);
  const terms = [...byTerm.keys()].sort((a, b) => b.length - a.length);
  const re = new RegExp(`(?<![a-z0-9])(?:${terms.map((t) => escapeRe(t).replace(/\s+/g, '\\s+')).join('|')})(?![a-z0-9])`, 'g');
  m = { re, byTerm };
  matcherCache.set(vocab, m);
  return m;
}

function words(s: string): string[] {
  return s.toLowerCase().match(/[a-z0-9]+(?:[-'][a-z0-9]+)*/g) ?? [];
}

/** Whether ws[from, to) contains the phrase (its words p) as consecutive words. */
function containsWords(ws: string[], from: number, to: number, p: readonly string[]): boolean {
  outer: for (let i = from; i + p.length <= to; i++) {
    for (let j = 0; j < p.length; j++) if (ws[i + j] !== p[j]) continue outer;
    return true;
  }
  return false;
}

/** The trigger and terminator phrases, split into words once. */
const PRE_WORDS = PRE_TRIGGERS.map((t) => t.split(' '));
const POST_WORDS = POST_TRIGGERS.map((t) => t.split(' '));
const TERMINATOR_WORDS = TERMINATORS.map((t) => t.split(' '));
const CLAUSE_ENDS = ['.', ';', '\n', '?', '!', ','];

/** Whether the mention at [start, end) of `text` (lower case) is negated within its clause. */
export function isNegated(text: string, start: number, end: number): boolean {
  const sentStart =
    Math.max(
      text.lastIndexOf('.', start - 1),
      text.lastIndexOf(';', start - 1),
      text.lastIndexOf('\n', start - 1),
      text.lastIndexOf(':', start - 1),
      text.lastIndexOf('?', start - 1),
      text.lastIndexOf('!', start - 1),
    ) + 1;
  const before = words(text.slice(sentStart, start));
  // Cut at the last terminator: "no fever but pneumonia" is not a negated pneumonia.
  let from = 0;
  cut: for (let i = before.length - 1; i >= 0; i--) {
    for (const t of TERMINATOR_WORDS) {
      if (i + t.length <= before.length && containsWords(before, i, i + t.length, t)) {
        from = i + t.length;
        break cut;
      }
    }
  }
  // The last PRE_WINDOW words of the clause.
  const windowFrom = Math.max(from, before.length - PRE_WINDOW);
  if (PRE_WORDS.some((t) => containsWords(before, windowFrom, before.length, t))) return true;
  let stop = text.length;
  for (const c of CLAUSE_ENDS) {
    const i = text.indexOf(c, end);
    if (i >= 0 && i < stop) stop = i;
  }
  const post = words(text.slice(end, stop));
  const postTo = Math.min(post.length, POST_WINDOW);
  return POST_WORDS.some((t) => containsWords(post, 0, postTo, t));
}

/** Every vocabulary mention in a note, with its negation status. */
export function findMentions(text: string, vocab: Vocabulary): Mention[] {
  const { re, byTerm } = matcher(vocab);
  const lower = text.toLowerCase();
  const out: Mention[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(lower); m; m = re.exec(lower)) {
    const term = m[0].replace(/\s+/g, ' ');
    const info = byTerm.get(term);
    if (!info) continue;
    out.push({
      kind: info.kind,
      names: info.names,
      term,
      index: m.index,
      negated: info.kind === 'normal' ? false : isNegated(lower, m.index, m.index + m[0].length),
    });
  }
  return out;
}

const DAY_MS = 86_400_000;
/** An acute condition written as current must have begun within this many days of the note. */
export const ACUTE_DAYS = 90;
const dateMs = (s: string) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s);
const ADULT_WORDS = /\b(man|woman|gentleman|lady|adult)\b/i;
const AGE_RE = /\b(\d{1,3})(?:-year-old| y\/o|-month-old| m\/o)|\bnewborn\b/i;

/**
 * The note against the patient's timeline: the age it states is the age at its own date; a child
 * is not called a man, a woman or an adult; every lab value it quotes was measured on or before it;
 * a visit for "follow-up of chronic conditions" needs one begun by then.
 */
/** A visit reason that needs a chronic condition. */
const CHRONIC_FOLLOW_UP = /\bfollow-up of chronic conditions\b/i;

export function timelineIssues(text: string, facts: SyntheticFacts): NoteIssue[] {
  const issues: NoteIssue[] = [];
  const m = AGE_RE.exec(text);
  if (m) {
    const months = /month|m\/o/i.test(m[0]);
    const stated = m[0].toLowerCase() === 'newborn' ? 0 : Number(m[1]);
    const want = months || m[0].toLowerCase() === 'newborn' ? facts.ageMonths : Math.floor(facts.age);
    const unitOk = months || m[0].toLowerCase() === 'newborn' ? Math.floor(facts.age) < 1 : true;
    if (!unitOk || want === undefined || stated !== want)
      issues.push({
        kind: 'age-mismatch',
        detail: `the note says "${m[0]}" but the patient is ${Math.floor(facts.age)} years${facts.ageMonths !== undefined ? ` (${facts.ageMonths} months)` : ''} old at ${facts.noteDate ?? 'the note'}`,
      });
  }
  const adult = ADULT_WORDS.exec(text);
  if (Math.floor(facts.age) < 18 && adult)
    issues.push({ kind: 'adult-words-for-child', detail: `"${adult[0]}" about a ${Math.floor(facts.age)}-year-old` });
  const held = facts.noteDate ? facts.conditions.filter((c) => !c.onset || dateMs(c.onset) <= dateMs(facts.noteDate!)) : facts.conditions;
  const reason = CHRONIC_FOLLOW_UP.exec(text);
  if (reason && !held.some((c) => !c.acute))
    issues.push({ kind: 'visit-reason-mismatch', detail: `"${reason[0]}" but the patient has no chronic condition` });
  if (facts.noteDate && facts.labs) {
    const noteMs = dateMs(facts.noteDate);
    for (const l of facts.labs) {
      if (!l.effective || dateMs(l.effective) <= noteMs) continue;
      const label = LAB_LABELS[l.name] ?? l.display;
      if (text.includes(`${label} ${labValueText(l)}`))
        issues.push({
          kind: 'value-after-note',
          detail: `${label} ${labValueText(l)} was measured ${l.effective}, after the note (${facts.noteDate})`,
        });
    }
  }
  return issues;
}

/**
 * A review the note claims without its basis in the note: "HbA1c reviewed" with no HbA1c value
 * quoted, "blood pressure reviewed" with no systolic pressure, "on treatment" or "on current
 * regimen" with no medication listed.
 */
export function reviewIssues(text: string): NoteIssue[] {
  const out: NoteIssue[] = [];
  if (/\bHbA1c reviewed\b/i.test(text) && !/\bHbA1c \d/.test(text))
    out.push({ kind: 'unsupported-review', detail: '"HbA1c reviewed" but no HbA1c value is quoted' });
  if (/\bblood pressure reviewed\b/i.test(text) && !/\bsystolic BP \d/i.test(text))
    out.push({ kind: 'unsupported-review', detail: '"blood pressure reviewed" but no blood pressure is quoted' });
  if (/\bon (treatment|current regimen)\b/i.test(text) && !/\b(Current medications|Medications|Takes|Meds)\b/.test(text))
    out.push({ kind: 'unsupported-review', detail: '"on treatment" but no medication is listed' });
  return out;
}

export function verifyNote(text: string, facts: SyntheticFacts, vocab: Vocabulary): NoteVerification {
  const issues: NoteIssue[] = [];
  if (text.trim().length === 0) return { ok: false, issues: [{ kind: 'empty', detail: 'note is empty' }] };
  const leftover = LEFTOVER_RE.exec(text);
  if (leftover) issues.push({ kind: 'leftover-token', detail: `leftover token ${JSON.stringify(leftover[0])}` });
  const mentions = findMentions(text, vocab);
  issues.push(...timelineIssues(text, facts));
  issues.push(...medicationIssues(text, facts));
  issues.push(...reviewIssues(text));
  const noteMs = facts.noteDate ? dateMs(facts.noteDate) : Infinity;
  // Conditions that begin after the note are not the note's to list.
  const later = new Set(facts.conditions.filter((c) => c.onset && dateMs(c.onset) > noteMs).map((c) => c.name));
  const has = new Set(facts.conditions.map((c) => c.name).filter((n) => !later.has(n)));
  const affirmed = new Set<string>();
  for (const m of mentions) {
    if (m.kind !== 'condition') continue;
    const mine = m.names.filter((n) => has.has(n));
    if (m.negated) {
      if (mine.length > 0 && mine.length === m.names.length)
        issues.push({ kind: 'negated-condition', detail: `"${m.term}" is negated but the patient has ${mine.join('/')}` });
      continue;
    }
    const after = m.names.filter((n) => later.has(n));
    if (mine.length === 0 && after.length > 0)
      issues.push({
        kind: 'condition-after-note',
        detail: `"${m.term}" (${after.join('/')}) begins after the note's date ${facts.noteDate}`,
      });
    else if (mine.length === 0)
      issues.push({ kind: 'extra-condition', detail: `"${m.term}" (${m.names.join('/')}) is mentioned but the patient does not have it` });
    for (const n of mine) affirmed.add(n);
  }
  for (const c of facts.conditions) {
    if (later.has(c.name)) continue;
    if (!affirmed.has(c.name)) issues.push({ kind: 'missing-condition', detail: `${c.name} (${c.display}) is not mentioned` });
    else if (c.acute && c.onset && noteMs - dateMs(c.onset) > ACUTE_DAYS * DAY_MS)
      issues.push({
        kind: 'stale-acute-condition',
        detail: `${c.name} is written as current but began ${Math.round((noteMs - dateMs(c.onset)) / DAY_MS)} days before the note`,
      });
  }

  const image = facts.image;
  const found = image ? imageFindings(image) : [];
  const shown = image ? (found.length ? found.join(' and ') : 'normal') : 'absent (no image)';
  let normalMentioned = false;
  const findingAffirmed = new Set<string>();
  for (const m of mentions) {
    if (m.kind === 'normal') {
      if (image && found.length === 0) normalMentioned = true;
      else if (image) issues.push({ kind: 'extra-finding', detail: `"${m.term}" states a normal study but the finding is ${shown}` });
      continue;
    }
    if (m.kind !== 'finding') continue;
    const mine = m.names.filter((n) => found.includes(n));
    if (m.negated) {
      if (mine.length > 0) issues.push({ kind: 'negated-finding', detail: `"${m.term}" is negated but the image shows ${mine.join('/')}` });
      continue;
    }
    if (mine.length > 0) for (const n of mine) findingAffirmed.add(n);
    else issues.push({ kind: 'extra-finding', detail: `"${m.term}" is mentioned but the image finding is ${shown}` });
  }
  if (image && found.length === 0 && !normalMentioned)
    issues.push({ kind: 'missing-finding', detail: 'imaging finding normal is not mentioned' });
  for (const f of found)
    if (!findingAffirmed.has(f)) issues.push({ kind: 'missing-finding', detail: `imaging finding ${f} is not mentioned` });
  return { ok: issues.length === 0, issues };
}
