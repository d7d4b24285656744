import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../model/rng.ts';
import {
  buildVocabulary,
  llmFactsPayload,
  NoteStats,
  renderNoteWithLlm,
  verifyNote,
  type SyntheticFacts,
} from '../../modalities/notes/index.ts';

const vocab = buildVocabulary([
  { name: 'hypertension', display: 'Essential hypertension (disorder)' },
  { name: 'heart_failure', display: 'Heart failure (disorder)' },
  { name: 'asthma', display: 'Asthma (disorder)' },
]);
const facts: SyntheticFacts = {
  patientId: 'secret-patient-id-123',
  age: 71,
  sex: 'male',
  conditions: [{ name: 'hypertension', display: 'Essential hypertension (disorder)' }],
  labs: [{ name: 'systolic_bp', display: 'Systolic blood pressure', value: 152, unit: 'mm[Hg]', interpretation: 'high' }],
  image: { findingClass: 'cardiomegaly' },
  genotypes: [{ rsid: 'rs1', chrom: '1', pos: 100, ref: 'A', alt: 'G', dosage: 1 }],
};

type Mode = 'good' | 'hallucinate' | 'error' | 'leftover';
let mode: Mode = 'good';
const requests: { url: string; auth?: string; body: any }[] = [];

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    requests.push({ url: req.url ?? '', auth: req.headers.authorization, body });
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    if (mode === 'error') {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
      return;
    }
    const f = JSON.parse(body.messages[1].content);
    const content =
      mode === 'good'
        ? `History: ${f.age}-year-old ${f.sex} with ${f.conditions.join(', ')}.\nImaging: ${f.chest_radiograph}.\nAssessment: ${f.conditions[0]}, elevated pressures.\nPlan: titrate therapy.`
        : mode === 'hallucinate'
          ? `History: ${f.age}-year-old with ${f.conditions.join(', ')} and heart failure.\nImaging: ${f.chest_radiograph}.`
          : `History: {{age}}-year-old with ${f.conditions.join(', ')}. Imaging: ${f.chest_radiograph}.`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('LLM note renderer', () => {
  it('sends only the synthetic facts a note needs', () => {
    const p = llmFactsPayload(facts, vocab);
    expect(p).toEqual({
      age: 71,
      sex: 'male',
      conditions: ['hypertension'],
      labs: [{ test: 'systolic BP', value: 152, unit: 'mm[Hg]', interpretation: 'high' }],
      chest_radiograph: 'cardiomegaly',
    });
    expect(JSON.stringify(p)).not.toMatch(/secret|rs1/);
  });

  it('returns a verified LLM note from an OpenAI-compatible endpoint', async () => {
    mode = 'good';
    requests.length = 0;
    const stats = new NoteStats();
    const out = await renderNoteWithLlm(facts, vocab, new Rng(1), { url: base, model: 'tiny', apiKey: 'k' }, {}, stats);
    expect(out.source).toBe('llm');
    expect(out.llmAttempts).toBe(1);
    expect(verifyNote(out.text, facts, vocab).ok).toBe(true);
    expect(requests).toHaveLength(1);
    expect(requests[0].auth).toBe('Bearer k');
    expect(requests[0].body.model).toBe('tiny');
    expect(requests[0].body.messages[0].role).toBe('system');
    expect(JSON.stringify(requests[0].body)).not.toMatch(/secret-patient-id|rs1/);
    expect(stats.toJSON()).toMatchObject({ notes: 1, attempts: 1, rejected: 0 });
  });

  it('rejects a hallucinated condition and falls back to verified templates', async () => {
    mode = 'hallucinate';
    requests.length = 0;
    const stats = new NoteStats();
    const out = await renderNoteWithLlm(
      facts,
      vocab,
      new Rng(2),
      { url: `${base}/chat/completions`, model: 'tiny', maxTries: 3 },
      {},
      stats,
    );
    expect(requests).toHaveLength(3);
    expect(out.source).toBe('template');
    expect(out.llmRejections).toHaveLength(3);
    expect((out.llmRejections[0] as { kind: string }[]).map((i) => i.kind)).toEqual(['extra-condition']);
    expect(verifyNote(out.text, facts, vocab).ok).toBe(true);
    expect(stats.rejected).toBeGreaterThanOrEqual(3);
    expect((stats as NoteStats & { llmFallbacks?: number }).llmFallbacks).toBe(1);
  });

  it('rejects leftover tokens and survives HTTP errors', async () => {
    mode = 'leftover';
    const a = await renderNoteWithLlm(facts, vocab, new Rng(3), { url: base, model: 'tiny', maxTries: 1 });
    expect(a.source).toBe('template');
    expect((a.llmRejections[0] as { kind: string }[])[0].kind).toBe('leftover-token');
    mode = 'error';
    const b = await renderNoteWithLlm(facts, vocab, new Rng(4), { url: base, model: 'tiny', maxTries: 2 });
    expect(b.source).toBe('template');
    expect(b.llmRejections).toEqual(['chat endpoint answered HTTP 500', 'chat endpoint answered HTTP 500']);
    expect(verifyNote(b.text, facts, vocab).ok).toBe(true);
  });
});
