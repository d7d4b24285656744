// Clinical notes connector: a folder of text files named by patient, or FHIR DocumentReference /
// DiagnosticReport attachments (inline base64 `data`, or `url` to a Binary fetched by a
// caller-provided function). Identifier header lines are removed before a note leaves here;
// non-UTF-8, empty or unusable notes are quarantined.

import { opendir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { FhirResource, Quarantine, QuarantineRecord } from '../types.ts';
import { decodeUtf8Strict, stripIdentifyingHeader, type HeaderStripOptions } from './text.ts';

export {
  buildVocabulary,
  decodeUtf8Strict,
  firstInvalidUtf8,
  IDENTIFIER_LINE,
  isSectionHeading,
  phrases,
  stripIdentifyingHeader,
  tokenize,
} from './text.ts';
export type { DecodeResult, HeaderStripOptions, Vocabulary } from './text.ts';

export interface Note {
  /** The linkage id: from the file name, or the FHIR subject reference. */
  patientId: string;
  /** File path, or `ResourceType/id#attachment-index`. */
  source: string;
  /** Note text with identifier lines removed. */
  text: string;
  /** Lines removed by header stripping. */
  removedLines: number;
  date?: string;
}

export interface NoteTextOptions {
  /** Header stripping options; identifier lines are always removed. */
  header?: HeaderStripOptions;
  /** Notes larger than this many bytes are quarantined (default 10 MiB). */
  maxBytes?: number;
}

/** `<patientId>.txt` or `<patientId>_<anything>.txt`. */
export const DEFAULT_NOTE_FILE_PATTERN = /^(?<patientId>[^_]+?)(?:_.*)?\.txt$/i;

export interface NotesFolderOptions extends NoteTextOptions {
  /**
   * File name pattern (matched against the base name); the patient id is the named group
   * `patientId`, else the first group. Files that do not match are counted as unlinked.
   */
  pattern?: RegExp;
  /** Only files ending with this are considered (default ".txt"); others are skipped silently. */
  extension?: string;
}

export interface NotesScanStats {
  files: number;
  notes: number;
  quarantined: number;
  /** Files whose name does not identify a patient (not read). */
  unlinked: number;
}

function q(source: string, reason: string, offset?: number, detail?: string): QuarantineRecord {
  return { source, modality: 'note', reason, ...(offset !== undefined ? { offset } : {}), ...(detail ? { detail } : {}) };
}

/** Turns note bytes into a cleaned note text, or the reason it cannot be used. */
export function noteFromBytes(
  bytes: Uint8Array,
  source: string,
  options: NoteTextOptions = {},
  /** Applied to the decoded text before identifier lines are removed (e.g. HTML to text). */
  transform?: (text: string) => string,
): { ok: true; text: string; removedLines: number } | { ok: false; record: QuarantineRecord } {
  const max = options.maxBytes ?? 10 * 2 ** 20;
  if (bytes.length > max) return { ok: false, record: q(source, 'note too large', undefined, `${bytes.length} bytes > ${max}`) };
  const decoded = decodeUtf8Strict(bytes);
  if (!decoded.ok) {
    return {
      ok: false,
      record: q(
        source,
        'not valid UTF-8',
        decoded.offset,
        `invalid byte 0x${bytes[decoded.offset]!.toString(16)} at offset ${decoded.offset}`,
      ),
    };
  }
  if (decoded.text.trim() === '') return { ok: false, record: q(source, 'empty note') };
  if (decoded.text.includes('\u0000')) return { ok: false, record: q(source, 'binary content in note', decoded.text.indexOf('\u0000')) };
  const stripped = stripIdentifyingHeader(transform ? transform(decoded.text) : decoded.text, options.header);
  if (stripped.text.trim() === '')
    return { ok: false, record: q(source, 'empty note', undefined, 'nothing left after removing identifier lines') };
  return { ok: true, text: stripped.text, removedLines: stripped.removedLines };
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries: { name: string; dir: boolean }[] = [];
  for await (const e of await opendir(dir)) entries.push({ name: e.name, dir: e.isDirectory() });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) if (!e.dir) yield join(dir, e.name);
  for (const e of entries) if (e.dir) yield* walk(join(dir, e.name));
}

/** Patient id from a note file name, or undefined when the name does not match the pattern. */
export function patientIdFromFileName(name: string, pattern: RegExp = DEFAULT_NOTE_FILE_PATTERN): string | undefined {
  const m = pattern.exec(name);
  if (!m) return undefined;
  const id = m.groups?.patientId ?? m[1];
  return id && id.length > 0 ? id : undefined;
}

/** Streams the notes of a folder tree, one file at a time. */
export async function* readNotesFolder(
  dir: string,
  quarantine: Quarantine,
  options: NotesFolderOptions = {},
  stats?: NotesScanStats,
): AsyncGenerator<Note> {
  const ext = (options.extension ?? '.txt').toLowerCase();
  try {
    for await (const path of walk(dir)) {
      const name = basename(path);
      if (name.startsWith('.') || !name.toLowerCase().endsWith(ext)) continue;
      if (stats) stats.files++;
      const patientId = patientIdFromFileName(name, options.pattern);
      if (!patientId) {
        if (stats) stats.unlinked++;
        continue;
      }
      let bytes: Uint8Array;
      try {
        const max = options.maxBytes ?? 10 * 2 ** 20;
        const st = await stat(path);
        if (st.size > max) {
          quarantine.add(q(path, 'note too large', undefined, `${st.size} bytes > ${max}`));
          if (stats) stats.quarantined++;
          continue;
        }
        bytes = await readFile(path);
      } catch (err) {
        quarantine.add(q(path, 'unreadable file', undefined, (err as Error).message));
        if (stats) stats.quarantined++;
        continue;
      }
      const r = noteFromBytes(bytes, path, options);
      if (!r.ok) {
        quarantine.add(r.record);
        if (stats) stats.quarantined++;
        continue;
      }
      if (stats) stats.notes++;
      yield { patientId, source: path, text: r.text, removedLines: r.removedLines };
    }
  } catch (err) {
    quarantine.add(q(dir, 'unreadable folder', undefined, (err as Error).message));
  }
}

// ---------------------------------------------------------------------------------------------
// FHIR

/** What a fetch of an attachment URL may return: text, bytes, a FHIR Binary, or bytes with a type. */
export type FetchedAttachment = string | Uint8Array | FhirResource | { contentType?: string; data: Uint8Array };

export interface FhirNotesOptions extends NoteTextOptions {
  /** Resolves `attachment.url` (e.g. "Binary/123" or an absolute URL); needed for URL attachments. */
  fetchAttachment?: (url: string, resource: FhirResource) => Promise<FetchedAttachment>;
  /** Patient id of a resource; default: the id in `subject.reference` ("Patient/x" or "urn:uuid:x"). */
  patientIdOf?: (resource: FhirResource) => string | undefined;
}

interface Attachment {
  contentType?: string;
  data?: string;
  url?: string;
}

export function subjectPatientId(resource: FhirResource): string | undefined {
  const ref = (resource.subject as { reference?: string } | undefined)?.reference;
  if (!ref) return undefined;
  if (ref.startsWith('urn:uuid:')) return ref.slice('urn:uuid:'.length);
  const m = /(?:^|\/)Patient\/([^/]+)(?:\/_history\/.*)?$/.exec(ref);
  return m?.[1];
}

function attachmentsOf(resource: FhirResource): Attachment[] {
  if (resource.resourceType === 'DocumentReference') {
    const content = (resource.content as { attachment?: Attachment }[] | undefined) ?? [];
    return content.map((c) => c.attachment ?? {});
  }
  if (resource.resourceType === 'DiagnosticReport') return (resource.presentedForm as Attachment[] | undefined) ?? [];
  return [];
}

function mediaType(contentType: string | undefined): { type: string; charset?: string } {
  if (!contentType) return { type: 'text/plain' };
  const [type, ...params] = contentType.split(';').map((s) => s.trim());
  const charset = params
    .find((p) => /^charset=/i.test(p))
    ?.slice('charset='.length)
    .replace(/"/g, '')
    .toLowerCase();
  return { type: type!.toLowerCase(), ...(charset ? { charset } : {}) };
}

const TEXT_TYPES = new Set(['text/plain', 'text/markdown', 'text/x-markdown', 'text/html', 'application/xhtml+xml']);

function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|li|h\d|tr)>/gi, '\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function dateOf(resource: FhirResource): string | undefined {
  const d = resource.date ?? resource.effectiveDateTime ?? resource.issued;
  return typeof d === 'string' ? d : undefined;
}

/**
 * Notes from DocumentReference and DiagnosticReport resources (other types are ignored). One
 * note per text attachment; a resource without a usable text attachment is quarantined.
 */
export async function* notesFromFhir(
  resources: AsyncIterable<FhirResource> | Iterable<FhirResource>,
  quarantine: Quarantine,
  options: FhirNotesOptions = {},
): AsyncGenerator<Note> {
  const patientIdOf = options.patientIdOf ?? subjectPatientId;
  for await (const resource of resources) {
    if (resource.resourceType !== 'DocumentReference' && resource.resourceType !== 'DiagnosticReport') continue;
    const rid = `${resource.resourceType}/${resource.id ?? '?'}`;
    const attachments = attachmentsOf(resource);
    if (resource.resourceType === 'DiagnosticReport' && attachments.length === 0) continue; // a report with results only
    const patientId = patientIdOf(resource);
    if (!patientId) {
      quarantine.add(q(rid, 'no patient reference'));
      continue;
    }
    let yielded = 0;
    const types: string[] = [];
    for (let i = 0; i < attachments.length; i++) {
      const att = attachments[i]!;
      const source = `${rid}#${i}`;
      let { type, charset } = mediaType(att.contentType);
      types.push(type);
      if (!TEXT_TYPES.has(type)) continue;
      let bytes: Uint8Array | undefined;
      if (typeof att.data === 'string') {
        if (!/^[A-Za-z0-9+/=\s_-]*$/.test(att.data)) {
          quarantine.add(q(source, 'invalid base64 attachment'));
          continue;
        }
        bytes = Buffer.from(att.data, 'base64');
      } else if (typeof att.url === 'string') {
        if (!options.fetchAttachment) {
          quarantine.add(q(source, 'attachment URL without a fetch function', undefined, att.url));
          continue;
        }
        try {
          const fetched = await options.fetchAttachment(att.url, resource);
          const got = fetchedBytes(fetched);
          if (!got) {
            quarantine.add(q(source, 'attachment fetch returned no data', undefined, att.url));
            continue;
          }
          bytes = got.bytes;
          if (got.contentType) ({ type, charset } = mediaType(got.contentType));
          if (!TEXT_TYPES.has(type)) {
            quarantine.add(q(source, 'unsupported attachment content type', undefined, type));
            continue;
          }
        } catch (err) {
          quarantine.add(q(source, 'attachment fetch failed', undefined, `${att.url}: ${(err as Error).message}`));
          continue;
        }
      } else {
        quarantine.add(q(source, 'attachment has neither data nor url'));
        continue;
      }
      if (charset && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
        try {
          bytes = new TextEncoder().encode(new TextDecoder(charset).decode(bytes));
        } catch {
          quarantine.add(q(source, 'unsupported charset', undefined, charset));
          continue;
        }
      }
      const html = type === 'text/html' || type === 'application/xhtml+xml';
      const r = noteFromBytes(bytes, source, options, html ? htmlToText : undefined);
      if (!r.ok) {
        quarantine.add(r.record);
        continue;
      }
      const text = r.text;
      const date = dateOf(resource);
      yielded++;
      yield { patientId, source, text, removedLines: r.removedLines, ...(date ? { date } : {}) };
    }
    if (yielded === 0 && !types.some((t) => TEXT_TYPES.has(t))) {
      quarantine.add(q(rid, 'no text attachment', undefined, types.length ? types.join(', ') : 'no attachments'));
    }
  }
}

function fetchedBytes(f: FetchedAttachment): { bytes: Uint8Array; contentType?: string } | undefined {
  if (typeof f === 'string') return { bytes: new TextEncoder().encode(f), contentType: 'text/plain' };
  if (f instanceof Uint8Array) return { bytes: f };
  if ('resourceType' in f) {
    if (f.resourceType !== 'Binary' || typeof f.data !== 'string') return undefined;
    return { bytes: Buffer.from(f.data, 'base64'), ...(typeof f.contentType === 'string' ? { contentType: f.contentType } : {}) };
  }
  if (f.data instanceof Uint8Array) return { bytes: f.data, ...(f.contentType ? { contentType: f.contentType } : {}) };
  return undefined;
}
