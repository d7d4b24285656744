/**
 * Optional note renderer through an OpenAI-compatible chat endpoint (`POST {url}/chat/completions`).
 * Off unless configured. Only the synthetic facts needed for the note are sent (age, sex,
 * condition terms, lab values, imaging finding) — no ids, no genotypes, nothing from a site: it
 * is post-processing of DP output, so it costs no budget. Every answer goes through the same
 * verifier as template notes; after `maxTries` rejected or failed answers the template generator
 * (with its own rejection sampling) writes the note instead.
 */
import { medicationsAtNote, medicationText } from './medications.ts';
import type { Rng } from '../../model/rng.ts';
import { imageFindings, type SyntheticFacts } from './facts.ts';
import { generateVerifiedNote, NoteStats, type GenerateOptions } from './generate.ts';
import { LAB_LABELS } from './templates.ts';
import { verifyNote, type NoteIssue } from './verify.ts';
import { conditionTerms, findingTerms, type Vocabulary } from './vocabulary.ts';

export interface LlmRendererOptions {
  /** Base URL (e.g. http://127.0.0.1:8000/v1) or the full …/chat/completions URL. */
  url: string;
  model: string;
  /** Sent as a Bearer token when set (read it from the environment in the caller). */
  apiKey?: string;
  timeoutMs?: number;
  /** LLM attempts before falling back to templates (default 2). */
  maxTries?: number;
  temperature?: number;
  maxTokens?: number;
  fetchImpl?: typeof fetch;
}

export interface LlmNote {
  text: string;
  source: 'llm' | 'template';
  llmAttempts: number;
  /** Why each LLM attempt was rejected (verifier issues, or a transport error). */
  llmRejections: (NoteIssue[] | string)[];
}

/** The exact payload sent: the facts a note needs, nothing else. */
export function llmFactsPayload(facts: SyntheticFacts, vocab: Vocabulary): Record<string, unknown> {
  const meds = medicationsAtNote(facts);
  const named = [...meds.current, ...meds.courses].map(medicationText);
  return {
    age: Math.round(facts.age),
    sex: facts.sex,
    conditions: facts.conditions.map((c) => conditionTerms(vocab, c.name, c.display)[0]),
    labs: (facts.labs ?? []).map((l) => ({
      test: LAB_LABELS[l.name] ?? l.display,
      value: l.value,
      unit: l.unit,
      ...(l.interpretation ? { interpretation: l.interpretation } : {}),
    })),
    chest_radiograph: facts.image
      ? imageFindings(facts.image).length === 0
        ? 'no acute cardiopulmonary abnormality'
        : imageFindings(facts.image)
            .map((f) => findingTerms(vocab, f)[0])
            .join(' and ')
      : null,
    ...(named.length ? { medications: named } : {}),
  };
}

const SYSTEM_PROMPT = [
  'You write short synthetic outpatient clinical notes for software testing.',
  'Use only the facts given as JSON. Sections: History, Imaging (only if a chest radiograph is given), Assessment, Plan.',
  'Name every listed condition and the radiograph finding explicitly, using the given wording.',
  'Name every listed medication with its dose, exactly as given.',
  'Do not mention, suggest, or list in a differential any disease that is not in the facts. Do not invent names, ids or dates.',
  'Plain text only, no placeholders.',
].join(' ');

function endpoint(url: string): string {
  const u = url.replace(/\/+$/, '');
  return u.endsWith('/chat/completions') ? u : `${u}/chat/completions`;
}

async function callOnce(payload: Record<string, unknown>, opts: LlmRendererOptions): Promise<string> {
  const f = opts.fetchImpl ?? fetch;
  const res = await f(endpoint(opts.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
    body: JSON.stringify({
      model: opts.model,
      temperature: opts.temperature ?? 0.7,
      max_tokens: opts.maxTokens ?? 400,
      messages: [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: JSON.stringify(payload) },
      ],
    }),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  if (!res.ok) throw new Error(`chat endpoint answered HTTP ${res.status}`);
  const body = (await res.json()) as { choices?: { message?: { content?: unknown } }[] };
  const text = body.choices?.[0]?.message?.content;
  if (typeof text !== 'string' || text.trim() === '') throw new Error('chat endpoint returned no message content');
  return text.trim() + '\n';
}

/** Renders one note with the LLM, verified; falls back to verified templates. `stats` counts LLM attempts too. */
export async function renderNoteWithLlm(
  facts: SyntheticFacts,
  vocab: Vocabulary,
  rng: Rng,
  opts: LlmRendererOptions,
  templateOptions: GenerateOptions & { maxTries?: number } = {},
  stats?: NoteStats & { llmFallbacks?: number },
): Promise<LlmNote> {
  const payload = llmFactsPayload(facts, vocab);
  const maxTries = opts.maxTries ?? 2;
  const rejections: (NoteIssue[] | string)[] = [];
  for (let t = 0; t < maxTries; t++) {
    let text: string;
    try {
      text = await callOnce(payload, opts);
    } catch (e) {
      rejections.push((e as Error).message);
      continue;
    }
    const v = verifyNote(text, facts, vocab);
    stats?.record(v.issues);
    if (v.ok) {
      if (stats) stats.notes++;
      return { text, source: 'llm', llmAttempts: t + 1, llmRejections: rejections };
    }
    rejections.push(v.issues);
  }
  if (stats) stats.llmFallbacks = (stats.llmFallbacks ?? 0) + 1;
  const note = generateVerifiedNote(facts, vocab, rng, { ...templateOptions, stats });
  return { text: note.text, source: 'template', llmAttempts: maxTries, llmRejections: rejections };
}
