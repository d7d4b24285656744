// Reads the real public notes in ../shared/data/notes and the Synthea DocumentReferences in
// ../shared/data/fhir/synthea-10 (or under $FEDSYNTH_SAMPLE_DATA).
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  buildVocabulary,
  notesFromFhir,
  readNotesFolder,
  tokenize,
  type Note,
  type NotesScanStats,
} from '../../site-agent/connectors/notes/index.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';

function sampleDir(sub: string): string | undefined {
  const root = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
  const dir = join(root, sub);
  if (!existsSync(dir)) {
    console.warn(`[skip] real note samples not found at ${dir}; set FEDSYNTH_SAMPLE_DATA to run these tests`);
    return undefined;
  }
  return dir;
}
const notesDir = sampleDir('notes');
const fhirDir = sampleDir('fhir/synthea-10');

const VOCAB = buildVocabulary([
  'cough',
  'fever',
  'hypertension',
  'diabetes',
  'pneumonia',
  'chest pain',
  'shortness of',
  'covid 19',
  'otitis media',
  'pharyngitis',
  'bronchitis',
  'asthma',
  'no complaints',
  'allergies',
  'acetaminophen',
]);

async function collect(it: AsyncIterable<Note>): Promise<Note[]> {
  const out: Note[] = [];
  for await (const n of it) out.push(n);
  return out;
}

describe.skipIf(!notesDir)('real notes: ctakes curated and synthetic', () => {
  it('all 382 curated notes are read; the letter header (RE:, DOB:) is stripped', async () => {
    const q = new Quarantine();
    const stats: NotesScanStats = { files: 0, notes: 0, quarantined: 0, unlinked: 0 };
    const notes = await collect(readNotesFolder(join(notesDir!, 'ctakes-curated'), q, {}, stats));
    expect(stats.files).toBe(382);
    expect(notes).toHaveLength(382);
    expect(q.records).toEqual([]);
    const letter = notes.find((n) => n.patientId === 'ophthalmology-letter-1')!;
    expect(letter.removedLines).toBe(2);
    expect(letter.text).not.toMatch(/^RE:|^DOB:/m);
    expect(letter.text).toContain('evaluation of cataracts bilaterally');
    const hp = notes.find((n) => n.patientId === '1-year-old-exam-hp')!;
    expect(hp.text).toContain('CHIEF COMPLAINT');
    const counts = tokenize(notes.map((n) => n.text).join('\n\n'), VOCAB);
    expect(counts.get('hypertension')).toBeGreaterThan(20);
    expect(counts.get('chest pain')).toBeGreaterThan(5);
  });

  it('synthetic Synthea notes: one per patient id, names never counted by the tokenizer', async () => {
    const q = new Quarantine();
    const dir = join(notesDir!, 'ctakes-synthetic');
    const notes = await collect(readNotesFolder(dir, q, { header: { dropBeforeFirstHeading: true } }));
    expect(notes).toHaveLength(readdirSync(dir).filter((f) => f.endsWith('.txt')).length);
    expect(notes).toHaveLength(20);
    expect(notes[0]!.patientId).toBe('13d7f763-ca16-76f5-ceae-6317aea0c44b');
    expect(notes[0]!.text.startsWith('# Chief Complaint')).toBe(true); // leading date line dropped
    const counts = tokenize(notes[0]!.text, VOCAB);
    expect(counts.get('covid 19')).toBeGreaterThan(0);
    expect(counts.get('otitis media')).toBeGreaterThan(0);
    expect([...counts.keys()].every((k) => VOCAB.unigrams.has(k) || VOCAB.bigrams.has(k))).toBe(true);
    expect([...counts.keys()].some((k) => /alex/i.test(k))).toBe(false);
  });
});

describe.skipIf(!fhirDir)('real notes: Synthea DocumentReference (base64 text/plain)', () => {
  it('reads all 1215 notes of 13 patients from the bulk NDJSON export', async () => {
    async function* resources(): AsyncGenerator<FhirResource> {
      const rl = createInterface({ input: createReadStream(join(fhirDir!, 'DocumentReference.000.ndjson')) });
      for await (const line of rl) if (line.trim()) yield JSON.parse(line) as FhirResource;
    }
    const q = new Quarantine();
    const notes = await collect(notesFromFhir(resources(), q));
    expect(q.records).toEqual([]);
    expect(notes).toHaveLength(1215);
    expect(new Set(notes.map((n) => n.patientId)).size).toBe(13);
    expect(notes.every((n) => n.source.startsWith('DocumentReference/') && n.date)).toBe(true);
    const first = notes[0]!;
    expect(first.patientId).toBe('129c6ac7-8d06-89de-ad63-0204a93e76c3');
    expect(first.text).toContain('# Chief Complaint');
    expect(tokenize(first.text, VOCAB).get('cough')).toBeGreaterThan(0);
  });
});
