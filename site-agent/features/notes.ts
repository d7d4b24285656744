/**
 * Site-side note features: `note-mention` indicators from the notes connector's cleaned text
 * (identifier header lines already removed) and tokenizer (`phrases`), against the schema's
 * public vocabulary. Pure. Rules (all public, from the schema):
 * - a term (one or two words, normalised like note text) is MENTIONED when it occurs in a phrase
 *   and none of the 3 words before it in that phrase starts a negation cue (`notes.negations`,
 *   one or two words: "no", "denies", "negative for", …);
 * - with `sections`, only text under a heading of one of those canonical sections counts; a
 *   heading is a line that `isSectionHeading` accepts, compared (lower case, without `#`, a
 *   trailing colon and surrounding space) with the section's spellings; text before the first
 *   heading belongs to no section;
 * - a patient's value is 1 when any of their notes (at most `notes.maxNotesPerPatient`) mentions
 *   one of the attribute's terms. Only these indicators leave the encoder: no text, no counts.
 */
import type { NoteMentionAttribute, Schema } from '../../schema/schema.ts';
import { isSectionHeading, phrases } from '../connectors/notes/text.ts';

export const NEGATION_WINDOW = 3;

export class NoteMentionEncoder {
  private readonly attrs: NoteMentionAttribute[];
  private readonly headings = new Map<string, string>();
  private readonly negations: string[][];
  /** Per attribute, its terms split into words. */
  private readonly terms: string[][][];

  constructor(schema: Schema) {
    this.attrs = schema.attributes.filter((a): a is NoteMentionAttribute => a.kind === 'note-mention');
    for (const [section, spellings] of Object.entries(schema.notes?.sections ?? {}))
      for (const h of spellings) this.headings.set(normHeading(h), section);
    this.negations = (schema.notes?.negations ?? []).map((n) => phrases(n).flat());
    this.terms = this.attrs.map((a) => a.terms.map((t) => phrases(t).flat()));
  }

  get attributes(): readonly NoteMentionAttribute[] {
    return this.attrs;
  }

  /** Splits a note into (section, text) parts; section undefined before the first heading or under an unknown one. */
  sections(text: string): Array<{ section?: string; text: string }> {
    const out: Array<{ section?: string; text: string }> = [];
    let current: { section?: string; lines: string[] } = { lines: [] };
    for (const line of text.split(/\r?\n/)) {
      if (isSectionHeading(line)) {
        const colon = line.indexOf(':');
        const head = normHeading(colon >= 0 ? line.slice(0, colon) : line);
        const section = this.headings.get(head);
        out.push({ ...(current.section ? { section: current.section } : {}), text: current.lines.join('\n') });
        current = { ...(section ? { section } : {}), lines: [colon >= 0 ? line.slice(colon + 1) : ''] };
      } else current.lines.push(line);
    }
    out.push({ ...(current.section ? { section: current.section } : {}), text: current.lines.join('\n') });
    return out.filter((p) => p.text.trim() !== '');
  }

  /** Mention flags (one per note-mention attribute, schema order) of one note. */
  mentions(text: string): Uint8Array {
    const flags = new Uint8Array(this.attrs.length);
    for (const part of this.sections(text)) {
      const ph = phrases(part.text);
      this.attrs.forEach((a, k) => {
        if (flags[k]) return;
        if (a.sections && (!part.section || !a.sections.includes(part.section))) return;
        if (this.terms[k]!.some((t) => ph.some((words) => this.occursUnnegated(words, t)))) flags[k] = 1;
      });
    }
    return flags;
  }

  private occursUnnegated(words: string[], term: string[]): boolean {
    for (let i = 0; i + term.length <= words.length; i++) {
      let match = true;
      for (let j = 0; j < term.length; j++) if (words[i + j] !== term[j]) match = false;
      if (!match) continue;
      if (!this.negated(words, i)) return true;
    }
    return false;
  }

  private negated(words: string[], at: number): boolean {
    for (let s = Math.max(0, at - NEGATION_WINDOW); s < at; s++) {
      for (const cue of this.negations) {
        if (cue.length === 0 || s + cue.length > at) continue;
        let ok = true;
        for (let j = 0; j < cue.length; j++) if (words[s + j] !== cue[j]) ok = false;
        if (ok) return true;
      }
    }
    return false;
  }
}

function normHeading(h: string): string {
  return h
    .replace(/^\s*#+\s*/, '')
    .replace(/:\s*$/, '')
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ');
}
