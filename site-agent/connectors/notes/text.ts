// Pure text helpers for clinical notes: strict UTF-8 decoding, removal of identifier header
// lines, and a tokenizer that counts only the terms of a given public vocabulary.

/** Byte offset of the first invalid UTF-8 sequence, or -1 when the bytes are valid UTF-8. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else return i;
    if (i + need > n - 1) return i; // sequence cut off by the end of the data
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

export type DecodeResult = { ok: true; text: string } | { ok: false; offset: number };

/** Decodes UTF-8 strictly (a leading BOM is dropped); reports the offset of the first bad byte. */
export function decodeUtf8Strict(bytes: Uint8Array): DecodeResult {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) return { ok: false, offset: bad };
  let text = new TextDecoder('utf-8').decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { ok: true, text };
}

/** Labels of lines that carry direct identifiers ("Name: …", "DOB: …", "MRN: …", …). */
export const IDENTIFIER_LINE =
  /^\s*(?:re|patient(?:'s)?\s+(?:full\s+)?name|(?:first|last|full|given|family|maiden)\s+name|name|patient|pt(?:\s+name)?|dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|mrn|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s+(?:number|no\.?|#)|patient\s+(?:id|number|no\.?|#)|account(?:\s+(?:number|no\.?|#))?|acct(?:\s+(?:number|no\.?|#))?|ssn|social\s+security(?:\s+(?:number|no\.?|#))?|(?:home\s+)?address|street|city|zip(?:\s+code)?|postal\s+code|(?:home\s+|cell\s+|mobile\s+|work\s+)?(?:phone|telephone|tel)(?:\s+(?:number|no\.?|#))?|mobile|cell|fax|e-?mail|guarantor|next\s+of\s+kin|emergency\s+contact|insurance\s+(?:id|number|no\.?))\s*[:#]/i;

export interface HeaderStripOptions {
  /** Drop every line before the first section heading (default false). */
  dropBeforeFirstHeading?: boolean;
  /** More site-specific identifier line patterns. */
  extraPatterns?: RegExp[];
}

/** A section heading: `# Heading` (markdown), `HEADING:` or an all-capitals line. */
export function isSectionHeading(line: string): boolean {
  if (IDENTIFIER_LINE.test(line)) return false;
  return /^\s*#{1,6}\s+\S/.test(line) || /^\s*[A-Z][A-Z0-9 /&,()'-]{2,}:/.test(line) || /^\s*[A-Z][A-Z0-9 /&,()'-]{2,}\s*$/.test(line);
}

/**
 * Removes lines labelled with a direct identifier (anywhere in the note) and, when configured,
 * everything before the first section heading. Returns the text and how many lines were removed.
 */
export function stripIdentifyingHeader(text: string, options: HeaderStripOptions = {}): { text: string; removedLines: number } {
  const lines = text.split(/\r?\n/);
  let start = 0;
  if (options.dropBeforeFirstHeading) {
    const first = lines.findIndex(isSectionHeading);
    if (first > 0) start = first;
  }
  const extra = options.extraPatterns ?? [];
  const kept: string[] = [];
  let removed = start;
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]!;
    if (IDENTIFIER_LINE.test(line) || extra.some((p) => p.test(line))) removed++;
    else kept.push(line);
  }
  return { text: kept.join('\n'), removedLines: removed };
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

const WORD = /[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu;
/** Characters that end a phrase: bigrams never span them. */
const BREAK = /[.,;:!?()[\]{}"<>|*=+\u2013\u2014]/;

/**
 * Splits text into phrases of lowercase words. Phrases end at punctuation, blank lines and
 * heading lines, so bigrams never join words across them. Hyphens and slashes separate words
 * without ending the phrase ("follow-up" → follow, up).
 */
export function phrases(text: string): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length) out.push(current);
    current = [];
  };
  const normal = text
    .normalize('NFKC')
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .toLowerCase();
  for (const line of normal.split(/\r?\n/)) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    const heading = /^\s*#/.test(line);
    if (heading) flush();
    // Walk the line: words, with breaks at punctuation between them.
    let last = 0;
    WORD.lastIndex = 0;
    for (let m = WORD.exec(line); m; m = WORD.exec(line)) {
      if (BREAK.test(line.slice(last, m.index))) flush();
      current.push(m[0]);
      last = m.index + m[0].length;
    }
    if (BREAK.test(line.slice(last)) || heading) flush();
  }
  flush();
  return out;
}

export interface Vocabulary {
  unigrams: Set<string>;
  bigrams: Set<string>;
}

/**
 * Builds a vocabulary of unigrams and bigrams. Terms are normalised like note text (lower case,
 * same word splitting), so "Follow-up" matches "follow up". Terms of more than two words are
 * rejected.
 */
export function buildVocabulary(terms: Iterable<string>): Vocabulary {
  const unigrams = new Set<string>();
  const bigrams = new Set<string>();
  for (const term of terms) {
    const words = phrases(term).flat();
    if (words.length === 1) unigrams.add(words[0]!);
    else if (words.length === 2) bigrams.add(`${words[0]} ${words[1]}`);
    else if (words.length > 2) throw new RangeError(`vocabulary term "${term}" has more than two words`);
  }
  return { unigrams, bigrams };
}

/**
 * Counts the in-vocabulary unigrams and bigrams of `text` ("w1 w2" for bigrams). Words outside
 * the vocabulary, names included, are never returned.
 */
export function tokenize(text: string, vocabulary: Vocabulary | Iterable<string>): Map<string, number> {
  const vocab = isVocabulary(vocabulary) ? vocabulary : buildVocabulary(vocabulary);
  const counts = new Map<string, number>();
  const add = (t: string) => counts.set(t, (counts.get(t) ?? 0) + 1);
  const wantBigrams = vocab.bigrams.size > 0;
  for (const words of phrases(text)) {
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (vocab.unigrams.has(w)) add(w);
      if (wantBigrams && i + 1 < words.length) {
        const b = `${w} ${words[i + 1]}`;
        if (vocab.bigrams.has(b)) add(b);
      }
    }
  }
  return counts;
}

function isVocabulary(v: unknown): v is Vocabulary {
  return typeof v === 'object' && v !== null && (v as Vocabulary).unigrams instanceof Set && (v as Vocabulary).bigrams instanceof Set;
}
