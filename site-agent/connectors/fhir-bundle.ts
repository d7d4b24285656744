/**
 * FHIR Bundle files (`*.json`: Synthea's per-patient transaction Bundles, collection or searchset
 * Bundles saved from a server, or one bare resource per file). A Bundle is parsed whole, so a
 * file over `maxBytes` is quarantined unread (NDJSON is the format for large exports). Never
 * throws on bad input: an invalid file or entry is quarantined with the file and entry index.
 */
import { readFile, stat } from 'node:fs/promises';
import type { FhirResource, Quarantine } from './types.ts';

/** Bundle types whose entries are resources as they stand. */
const READABLE_TYPES = new Set(['transaction', 'batch', 'collection', 'searchset', 'document']);

export const DEFAULT_MAX_BUNDLE_BYTES = 256 * 1024 * 1024;

export interface BundleEntryOrigin {
  path: string;
  /** Entry index in Bundle.entry (undefined for a file holding one bare resource). */
  entry?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Yields the wanted resources of one file, each with where it came from. */
export async function* readBundleFile(
  path: string,
  wanted: ReadonlySet<string>,
  quarantine: Quarantine,
  maxBytes = DEFAULT_MAX_BUNDLE_BYTES,
): AsyncGenerator<[FhirResource, BundleEntryOrigin]> {
  const q = (reason: string, detail?: string, offset?: number) =>
    quarantine.add({
      source: path,
      modality: 'fhir',
      reason,
      ...(offset === undefined ? {} : { offset }),
      ...(detail === undefined ? {} : { detail }),
    });
  let text: string;
  try {
    const size = (await stat(path)).size;
    if (size > maxBytes) return q('Bundle file too large', `${size} bytes > ${maxBytes}; export large data as NDJSON`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    return q('file not readable', (e as Error).message);
  }
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    return q('invalid JSON', (e as Error).message);
  }
  if (!isObject(value) || typeof value.resourceType !== 'string') {
    // A Bulk Data manifest (`output`, `transactionTime`) sits next to the NDJSON files: not data.
    if (isObject(value) && Array.isArray(value.output) && 'transactionTime' in value) return;
    return q('not a FHIR Bundle or resource', 'no resourceType');
  }
  if (value.resourceType !== 'Bundle') {
    const r = value as FhirResource;
    if (!wanted.has(r.resourceType)) return;
    if (typeof r.id !== 'string' || r.id === '') return q('missing id', r.resourceType);
    yield [r, { path }];
    return;
  }
  const type = value.type;
  if (typeof type !== 'string' || !Array.isArray(value.entry ?? [])) {
    return q('malformed Bundle', typeof type !== 'string' ? 'Bundle.type missing' : 'Bundle.entry is not a list');
  }
  if (!READABLE_TYPES.has(type)) {
    return q(`unsupported Bundle type ${type}`, 'readable: transaction, batch, collection, searchset, document');
  }
  const entries = (value.entry ?? []) as unknown[];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!isObject(e)) {
      q('invalid Bundle entry', 'entry is not an object', i);
      continue;
    }
    const search = isObject(e.search) ? e.search.mode : undefined;
    if (search === 'outcome') continue;
    const r = e.resource;
    if (!isObject(r) || typeof r.resourceType !== 'string') {
      // A transaction entry may be a bare request (DELETE, conditional reference): nothing to read.
      if (isObject(e.request) && r === undefined) continue;
      q('invalid Bundle entry', 'entry without a resource', i);
      continue;
    }
    if (!wanted.has(r.resourceType)) continue;
    const resource = r as FhirResource;
    if (typeof resource.id !== 'string' || resource.id === '') {
      // Transaction Bundles may identify new resources only by a urn:uuid fullUrl.
      const full = typeof e.fullUrl === 'string' && e.fullUrl.startsWith('urn:uuid:') ? e.fullUrl.slice(9) : '';
      if (!full) {
        q('missing id', `${resource.resourceType} without id or urn:uuid fullUrl`, i);
        continue;
      }
      resource.id = full;
    }
    yield [resource, { path, entry: i }];
  }
}
