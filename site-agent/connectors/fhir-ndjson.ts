/**
 * FHIR folder connector: a FhirSource over a folder holding a Bulk Data export
 * (`<Type>*.ndjson[.gz]`: `Patient.ndjson`, `Condition.000.ndjson`, …) and/or Bundle files
 * (`*.json`: transaction, collection, searchset; see fhir-bundle.ts), read alike. NDJSON streams
 * line by line, linear in the line length, with a maximum line size (lines.ts); Bundles are parsed
 * per file. Only FHIR R4 is read (fhir-version.ts): the folder's release is probed on the first
 * resources of the version-revealing types before anything is yielded, and a non-R4 folder
 * yields nothing but one quarantine record naming the release. Never throws on bad input: invalid
 * JSON, a non-object, a wrong resourceType, a missing id or an over-long line is quarantined with
 * the file and line number (or Bundle entry index), and reading goes on.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { DEFAULT_MAX_BUNDLE_BYTES, readBundleFile } from './fhir-bundle.ts';
import { probeRelease, r4Only, VERSION_PROBE_TYPES, type VersionEvidence, type VersionedSource } from './fhir-version.ts';
import { DEFAULT_MAX_NDJSON_LINE_CHARS, splitLines } from './lines.ts';
import { Quarantine, type FhirResource } from './types.ts';

const FILE_RE = /^([A-Z][A-Za-z]+)(?:[._-][^/]*)?\.ndjson(\.gz)?$/;
const BUNDLE_RE = /\.json$/i;

export interface NdjsonFile {
  path: string;
  resourceType: string;
  gzip: boolean;
}

/** Lists `<Type>*.ndjson[.gz]` files of a folder, sorted by name (deterministic order). */
export async function listNdjsonFiles(dir: string): Promise<NdjsonFile[]> {
  return (await listFolder(dir)).ndjson;
}

async function listFolder(dir: string): Promise<{ ndjson: NdjsonFile[]; bundles: string[] }> {
  const names = (await readdir(dir)).sort();
  const ndjson: NdjsonFile[] = [];
  const bundles: string[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const m = FILE_RE.exec(name);
    if (m) ndjson.push({ path: join(dir, name), resourceType: m[1], gzip: m[2] !== undefined });
    else if (BUNDLE_RE.test(name)) bundles.push(join(dir, name));
  }
  return { ndjson, bundles };
}

export interface NdjsonReadStats {
  files: number;
  lines: number;
  bytes: number;
  bundleFiles: number;
}

export interface FhirFolderOptions {
  /** NDJSON lines longer than this are quarantined unread (default DEFAULT_MAX_NDJSON_LINE_CHARS). */
  maxLineChars?: number;
  /** Bundle files larger than this are quarantined unread (default DEFAULT_MAX_BUNDLE_BYTES). */
  maxBundleBytes?: number;
}

/** Where a yielded resource came from (quarantine records of later checks name it). */
const origins = new WeakMap<FhirResource, { source: string; offset?: number }>();

export class NdjsonFhirSource implements VersionedSource {
  readonly dir: string;
  /** Totals over every read so far. */
  readonly stats: NdjsonReadStats = { files: 0, lines: 0, bytes: 0, bundleFiles: 0 };
  private release?: Promise<VersionEvidence | undefined>;

  constructor(
    dir: string,
    private readonly options: FhirFolderOptions = {},
  ) {
    this.dir = dir;
  }

  get location(): string {
    return this.dir;
  }

  resources(resourceTypes: readonly string[], quarantine: Quarantine): AsyncIterable<FhirResource> {
    return r4Only(this, resourceTypes, quarantine, (r) => origins.get(r) ?? { source: this.dir });
  }

  /** The release the folder's first resources show (probed once; read problems are reported by the real read). */
  declaredRelease(): Promise<VersionEvidence | undefined> {
    this.release ??= probeRelease(this.sample());
    return this.release;
  }

  private async *sample(): AsyncGenerator<FhirResource> {
    const scratch = new Quarantine();
    let listing;
    try {
      listing = await listFolder(this.dir);
    } catch {
      return;
    }
    const probe = new Set(VERSION_PROBE_TYPES);
    for (const file of listing.ndjson) {
      if (!probe.has(file.resourceType)) continue;
      let k = 0;
      for await (const r of this.readFile(file, scratch, false)) {
        yield r;
        if (++k >= 50) break;
      }
    }
    for (const path of listing.bundles.slice(0, 3)) {
      for await (const [r] of readBundleFile(path, probe, scratch, this.options.maxBundleBytes)) yield r;
    }
  }

  /** Every resource of the wanted types, R4 or not (resources() filters). */
  async *raw(resourceTypes: readonly string[], quarantine: Quarantine): AsyncGenerator<FhirResource> {
    let listing;
    try {
      const st = await stat(this.dir);
      if (!st.isDirectory()) {
        quarantine.add({ source: this.dir, modality: 'fhir', reason: 'not a folder' });
        return;
      }
      listing = await listFolder(this.dir);
    } catch (e) {
      quarantine.add({ source: this.dir, modality: 'fhir', reason: 'folder not readable', detail: (e as Error).message });
      return;
    }
    const wanted = new Set(resourceTypes);
    for (const file of listing.ndjson) {
      if (!wanted.has(file.resourceType)) continue;
      yield* this.readFile(file, quarantine, true);
    }
    for (const path of listing.bundles) {
      this.stats.bundleFiles++;
      for await (const [r, o] of readBundleFile(path, wanted, quarantine, this.options.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES)) {
        origins.set(r, { source: path, ...(o.entry === undefined ? {} : { offset: o.entry }) });
        yield r;
      }
    }
  }

  private async *readFile(file: NdjsonFile, quarantine: Quarantine, count: boolean): AsyncGenerator<FhirResource> {
    if (count) this.stats.files++;
    const max = this.options.maxLineChars ?? DEFAULT_MAX_NDJSON_LINE_CHARS;
    let lineNo = 0;
    const raw = createReadStream(file.path, { highWaterMark: 1 << 16 });
    if (count) raw.on('data', (chunk) => (this.stats.bytes += chunk.length));
    const input = file.gzip ? raw.pipe(createGunzip()) : raw;
    if (file.gzip) raw.on('error', (e) => input.destroy(e));
    const onLong = (line: number, chars: number) =>
      quarantine.add({
        source: file.path,
        modality: 'fhir',
        reason: 'line too long',
        offset: line,
        detail: `${chars} characters > the limit of ${max}; the line was skipped`,
      });
    try {
      for await (const batch of splitLines(input as AsyncIterable<Uint8Array>, max, onLong)) {
        for (let line of batch) {
          lineNo++;
          if (count) this.stats.lines++;
          if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
          if (line.trim() === '') continue;
          const r = parseLine(line, file, lineNo, quarantine);
          if (!r) continue;
          origins.set(r, { source: file.path, offset: lineNo });
          yield r;
        }
      }
    } catch (e) {
      quarantine.add({ source: file.path, modality: 'fhir', reason: 'file not readable', offset: lineNo, detail: (e as Error).message });
    } finally {
      raw.destroy();
      if (input !== raw) input.destroy();
    }
  }
}

function parseLine(line: string, file: NdjsonFile, lineNo: number, quarantine: Quarantine): FhirResource | undefined {
  const q = (reason: string, detail?: string) =>
    quarantine.add({ source: file.path, modality: 'fhir', reason, offset: lineNo, ...(detail === undefined ? {} : { detail }) });
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    q('invalid JSON', (e as Error).message);
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    q('not a JSON object');
    return undefined;
  }
  const r = value as FhirResource;
  if (typeof r.resourceType !== 'string') q('missing resourceType');
  else if (r.resourceType !== file.resourceType) q('wrong resourceType', `${r.resourceType} in a ${file.resourceType} file`);
  else if (typeof r.id !== 'string' || r.id === '') q('missing id');
  else return r;
  return undefined;
}
