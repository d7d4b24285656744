/**
 * FHIR Bulk Data NDJSON connector: a FhirSource over a folder of `<Type>*.ndjson` files
 * (`Patient.ndjson`, `Condition.000.ndjson`, `Observation.001.ndjson`, also `.ndjson.gz`), as
 * written by a FHIR `$export`. Streams line by line (memory bounded by the longest line), and
 * never throws on bad input: invalid JSON, a non-object, a wrong resourceType or a missing id is
 * quarantined with the file and line number, and reading goes on with the next line. Blank lines
 * are skipped.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { FhirResource, FhirSource, Quarantine } from './types.ts';

const FILE_RE = /^([A-Z][A-Za-z]+)(?:[._-][^/]*)?\.ndjson(\.gz)?$/;

export interface NdjsonFile {
  path: string;
  resourceType: string;
  gzip: boolean;
}

/** Lists `<Type>*.ndjson[.gz]` files of a folder, sorted by name (deterministic order). */
export async function listNdjsonFiles(dir: string): Promise<NdjsonFile[]> {
  const names = (await readdir(dir)).sort();
  const out: NdjsonFile[] = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    out.push({ path: join(dir, name), resourceType: m[1], gzip: m[2] !== undefined });
  }
  return out;
}

export interface NdjsonReadStats {
  files: number;
  lines: number;
  bytes: number;
}

export class NdjsonFhirSource implements FhirSource {
  readonly dir: string;
  /** Totals over every read so far. */
  readonly stats: NdjsonReadStats = { files: 0, lines: 0, bytes: 0 };

  constructor(dir: string) {
    this.dir = dir;
  }

  async *resources(resourceTypes: readonly string[], quarantine: Quarantine): AsyncIterable<FhirResource> {
    let files: NdjsonFile[];
    try {
      const st = await stat(this.dir);
      if (!st.isDirectory()) {
        quarantine.add({ source: this.dir, modality: 'fhir', reason: 'not a folder' });
        return;
      }
      files = await listNdjsonFiles(this.dir);
    } catch (e) {
      quarantine.add({ source: this.dir, modality: 'fhir', reason: 'folder not readable', detail: (e as Error).message });
      return;
    }
    const wanted = new Set(resourceTypes);
    for (const file of files) {
      if (!wanted.has(file.resourceType)) continue;
      yield* this.readFile(file, quarantine);
    }
  }

  private async *readFile(file: NdjsonFile, quarantine: Quarantine): AsyncIterable<FhirResource> {
    this.stats.files++;
    let lineNo = 0;
    const raw = createReadStream(file.path);
    raw.on('data', (chunk) => (this.stats.bytes += chunk.length));
    const input = file.gzip ? raw.pipe(createGunzip()) : raw;
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (let line of lines) {
        lineNo++;
        this.stats.lines++;
        if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
        if (line.trim() === '') continue;
        const q = (reason: string, detail?: string) =>
          quarantine.add({ source: file.path, modality: 'fhir', reason, offset: lineNo, ...(detail === undefined ? {} : { detail }) });
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (e) {
          q('invalid JSON', (e as Error).message);
          continue;
        }
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          q('not a JSON object');
          continue;
        }
        const r = value as FhirResource;
        if (typeof r.resourceType !== 'string') {
          q('missing resourceType');
          continue;
        }
        if (r.resourceType !== file.resourceType) {
          q('wrong resourceType', `${r.resourceType} in a ${file.resourceType} file`);
          continue;
        }
        if (typeof r.id !== 'string' || r.id === '') {
          q('missing id');
          continue;
        }
        yield r;
      }
    } catch (e) {
      quarantine.add({ source: file.path, modality: 'fhir', reason: 'file not readable', offset: lineNo, detail: (e as Error).message });
    } finally {
      lines.close();
      raw.destroy();
    }
  }
}
