import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildVocabulary,
  decodeUtf8Strict,
  firstInvalidUtf8,
  notesFromFhir,
  patientIdFromFileName,
  phrases,
  readNotesFolder,
  stripIdentifyingHeader,
  tokenize,
  type Note,
  type NotesScanStats,
} from '../../site-agent/connectors/notes/index.ts';
import { Quarantine, type FhirResource } from '../../site-agent/connectors/types.ts';

const NOTE = [
  'Name: Jane Q. Doe',
  'DOB: 01/02/1950',
  'MRN: 123456',
  'Address: 1 Elm Street, Springfield',
  'Phone: (555) 123-4567',
  'Visit date: 2024-01-02',
  '',
  'CHIEF COMPLAINT: Shortness of breath.',
  '',
  'HISTORY OF PRESENT ILLNESS: Chest pain and shortness of breath for two days;',
  'denies fever. Follow-up in two weeks.',
].join('\n');

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');

describe('header stripping', () => {
  it('removes identifier-labelled lines and keeps clinical text', () => {
    const { text, removedLines } = stripIdentifyingHeader(NOTE);
    expect(removedLines).toBe(5);
    expect(text).not.toMatch(/Jane|1950|123456|Elm Street|555/);
    expect(text).toContain('Visit date: 2024-01-02');
    expect(text).toContain('CHIEF COMPLAINT: Shortness of breath.');
  });

  it('optionally drops everything before the first section heading', () => {
    const { text, removedLines } = stripIdentifyingHeader(NOTE, { dropBeforeFirstHeading: true });
    expect(text.startsWith('CHIEF COMPLAINT')).toBe(true);
    expect(removedLines).toBe(7);
    const md = stripIdentifyingHeader('2021-05-17\nAlex454 Smith\n\n# Chief Complaint\nNo complaints.', { dropBeforeFirstHeading: true });
    expect(md.text).toBe('# Chief Complaint\nNo complaints.');
  });

  it('handles label variants and site-specific extra patterns', () => {
    const lines = [
      'Patient Name: X',
      'patient: X',
      'Date of Birth: X',
      'Medical Record Number: X',
      'SSN# X',
      'E-mail: x@y',
      'RE: X',
      'Study ID: 42',
      'Plan: rest',
    ];
    const { text } = stripIdentifyingHeader(lines.join('\n'), { extraPatterns: [/^Study ID:/] });
    expect(text).toBe('Plan: rest');
  });
});

describe('tokenizer', () => {
  const vocab = buildVocabulary([
    'chest pain',
    'shortness of breath'.split(' ').slice(0, 2).join(' '),
    'fever',
    'breath',
    'follow-up',
    'pain',
    "Crohn's",
  ]);

  it('builds a normalised vocabulary of unigrams and bigrams', () => {
    expect([...vocab.unigrams].sort()).toEqual(['breath', "crohn's", 'fever', 'pain']);
    expect([...vocab.bigrams].sort()).toEqual(['chest pain', 'follow up', 'shortness of']);
    expect(() => buildVocabulary(['three word term'])).toThrow(RangeError);
  });

  it('counts only in-vocabulary unigrams and bigrams, lowercased', () => {
    const counts = tokenize(NOTE, vocab);
    expect(Object.fromEntries(counts)).toEqual({
      'shortness of': 2,
      breath: 2,
      'chest pain': 1,
      pain: 1,
      fever: 1,
      'follow up': 1,
    });
  });

  it('bigrams never span punctuation, blank lines or headings; hard line wraps are joined', () => {
    const v = buildVocabulary(['chest pain', 'pain fever', 'complaint no']);
    expect(Object.fromEntries(tokenize('Chest\npain. Pain, fever', v))).toEqual({ 'chest pain': 1 });
    expect(Object.fromEntries(tokenize('chest\n\npain', v))).toEqual({});
    expect(Object.fromEntries(tokenize('# Chief Complaint\nNo complaints', v))).toEqual({});
  });

  it('accepts a plain list of terms; names never appear unless in the vocabulary', () => {
    const counts = tokenize('Alex454 Smith has Crohn’s disease and fever', ['fever', "crohn's", 'disease']);
    expect(Object.fromEntries(counts)).toEqual({ "crohn's": 1, disease: 1, fever: 1 });
  });

  it('phrases splits on punctuation', () => {
    expect(phrases('Hello, World. Follow-up\nvisit')).toEqual([['hello'], ['world'], ['follow', 'up', 'visit']]);
  });
});

describe('UTF-8', () => {
  it('finds the first invalid byte', () => {
    expect(firstInvalidUtf8(new TextEncoder().encode('héllo ✓ 𝄞'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xe9, 0x63]))).toBe(2); // latin-1 é
    expect(firstInvalidUtf8(Uint8Array.from([0xc0, 0x80]))).toBe(0); // overlong
    expect(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xe2, 0x9c]))).toBe(1); // cut off
    expect(decodeUtf8Strict(Uint8Array.from([0xef, 0xbb, 0xbf, 0x61]))).toEqual({ ok: true, text: 'a' });
  });
});

describe('notes folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-notes-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('file name patterns', () => {
    expect(patientIdFromFileName('P001.txt')).toBe('P001');
    expect(patientIdFromFileName('P001_2024-01-02_discharge.txt')).toBe('P001');
    expect(patientIdFromFileName('notes.csv')).toBeUndefined();
    expect(patientIdFromFileName('note-7-of-P9.txt', /-of-(\w+)\.txt$/)).toBe('P9');
  });

  it('reads notes per patient, strips headers, quarantines non-UTF-8 and empty files, continues', async () => {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'P001.txt'), NOTE);
    writeFileSync(join(dir, 'sub', 'P002_2024-01-02.txt'), 'ASSESSMENT: fever.\n');
    writeFileSync(join(dir, 'P003.txt'), Buffer.from([0x66, 0x65, 0x76, 0x65, 0x72, 0x20, 0xe9, 0x0a])); // latin-1
    writeFileSync(join(dir, 'P004.txt'), '');
    writeFileSync(join(dir, 'P005.txt'), '  \n\n ');
    writeFileSync(join(dir, 'P006.txt'), 'Name: Only A Name\nDOB: 1/1/1990\n');
    writeFileSync(join(dir, 'P007.txt'), Buffer.from('\ufeffUTF-16?', 'utf16le'));
    writeFileSync(join(dir, 'image.png'), 'skipped');
    writeFileSync(join(dir, '_no_id.txt'), 'unlinked');
    const q = new Quarantine();
    const stats: NotesScanStats = { files: 0, notes: 0, quarantined: 0, unlinked: 0 };
    const notes: Note[] = [];
    for await (const n of readNotesFolder(dir, q, {}, stats)) notes.push(n);
    expect(notes.map((n) => n.patientId)).toEqual(['P001', 'P002']);
    expect(notes[0]!.text).not.toMatch(/Jane|1950|123456/);
    expect(notes[0]!.removedLines).toBe(5);
    expect(stats).toEqual({ files: 8, notes: 2, quarantined: 5, unlinked: 1 });
    expect(q.records.map((r) => [r.source.slice(dir.length + 1), r.reason, r.offset])).toEqual([
      ['P003.txt', 'not valid UTF-8', 6],
      ['P004.txt', 'empty note', undefined],
      ['P005.txt', 'empty note', undefined],
      ['P006.txt', 'empty note', undefined],
      ['P007.txt', 'not valid UTF-8', 0],
    ]);
    expect(q.records.every((r) => r.modality === 'note')).toBe(true);
  });

  it('a configurable pattern and a size cap', async () => {
    const q = new Quarantine();
    const notes: Note[] = [];
    for await (const n of readNotesFolder(dir, q, { pattern: /^(P00[12])/, maxBytes: 100 })) notes.push(n);
    expect(notes.map((n) => n.patientId)).toEqual(['P002']);
    expect(q.records.map((r) => r.reason)).toEqual(['note too large']);
  });

  it('a missing folder is quarantined', async () => {
    const q = new Quarantine();
    for await (const _ of readNotesFolder(join(dir, 'nope'), q)) void _;
    expect(q.records[0]!.reason).toBe('unreadable folder');
  });
});

describe('notes from FHIR', () => {
  const docRef = (id: string, attachment: Record<string, unknown>, subject = 'Patient/p1'): FhirResource => ({
    resourceType: 'DocumentReference',
    id,
    subject: { reference: subject },
    date: '2024-03-04T10:00:00Z',
    content: [{ attachment }],
  });

  it('inline base64, URL to a Binary, DiagnosticReport presentedForm, HTML; other types ignored', async () => {
    const resources: FhirResource[] = [
      { resourceType: 'Patient', id: 'p1' },
      docRef('d1', { contentType: 'text/plain; charset=utf-8', data: b64(NOTE) }),
      docRef('d2', { contentType: 'text/plain', url: 'Binary/b1' }, 'urn:uuid:p2'),
      {
        resourceType: 'DiagnosticReport',
        id: 'r1',
        subject: { reference: 'https://fhir.example/Patient/p3' },
        effectiveDateTime: '2024-01-01',
        presentedForm: [{ contentType: 'text/html', data: b64('<p>Name: X Y</p><p>IMPRESSION: no <b>fever</b>.</p>') }],
      },
      { resourceType: 'DiagnosticReport', id: 'r2', subject: { reference: 'Patient/p4' }, result: [] }, // no text: ignored
    ];
    const fetched: string[] = [];
    const q = new Quarantine();
    const notes: Note[] = [];
    for await (const n of notesFromFhir(resources, q, {
      fetchAttachment: async (url) => {
        fetched.push(url);
        return { resourceType: 'Binary', contentType: 'text/plain', data: b64('MRN: 99\nPLAN: chest pain follow-up') };
      },
    }))
      notes.push(n);
    expect(q.records).toEqual([]);
    expect(fetched).toEqual(['Binary/b1']);
    expect(notes.map((n) => [n.patientId, n.source, n.date])).toEqual([
      ['p1', 'DocumentReference/d1#0', '2024-03-04T10:00:00Z'],
      ['p2', 'DocumentReference/d2#0', '2024-03-04T10:00:00Z'],
      ['p3', 'DiagnosticReport/r1#0', '2024-01-01'],
    ]);
    expect(notes[0]!.text).not.toContain('Jane');
    expect(notes[1]!.text).toBe('PLAN: chest pain follow-up');
    expect(notes[2]!.text).not.toContain('X Y');
    expect(notes[2]!.text).toContain('IMPRESSION: no  fever .');
  });

  it('failures: non-UTF-8, empty, fetch error, no fetch function, no patient, PDF only, bad base64', async () => {
    const resources: FhirResource[] = [
      docRef('bad-utf8', { contentType: 'text/plain', data: b64(Uint8Array.from([0x61, 0xff, 0x62])) }),
      docRef('empty', { contentType: 'text/plain', data: '' }),
      docRef('fetch-fails', { contentType: 'text/plain', url: 'Binary/404' }),
      docRef('pdf', { contentType: 'application/pdf', data: b64('%PDF-1.4') }),
      docRef('nopatient', { contentType: 'text/plain', data: b64('x') }, 'Group/g1'),
      docRef('badb64', { contentType: 'text/plain', data: '!!!not base64!!!' }),
      docRef('latin1', { contentType: 'text/plain; charset=ISO-8859-1', data: b64(Uint8Array.from([0x66, 0xe9, 0x76, 0x65, 0x72])) }),
    ];
    const q = new Quarantine();
    const notes: Note[] = [];
    for await (const n of notesFromFhir(resources, q, {
      fetchAttachment: async (url) => {
        throw new Error(`404 for ${url}`);
      },
    }))
      notes.push(n);
    expect(q.records.map((r) => [r.source, r.reason])).toEqual([
      ['DocumentReference/bad-utf8#0', 'not valid UTF-8'],
      ['DocumentReference/empty#0', 'empty note'],
      ['DocumentReference/fetch-fails#0', 'attachment fetch failed'],
      ['DocumentReference/pdf', 'no text attachment'],
      ['DocumentReference/nopatient', 'no patient reference'],
      ['DocumentReference/badb64#0', 'invalid base64 attachment'],
    ]);
    expect(q.records[0]!.offset).toBe(1);
    expect(notes.map((n) => n.text)).toEqual(['féver']); // ISO-8859-1 declared and honoured

    const q2 = new Quarantine();
    for await (const _ of notesFromFhir([docRef('u', { url: 'Binary/1' })], q2)) void _;
    expect(q2.records[0]!.reason).toBe('attachment URL without a fetch function');
  });
});
