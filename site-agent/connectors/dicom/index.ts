// DICOM connector: walks a folder tree one file at a time (memory bounded by the largest file),
// yields decoded images, and quarantines every file it cannot use with a reason.

import { open, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Quarantine } from '../types.ts';
import { parseDicomFile, type DicomDecodeOptions, type DicomImage } from './decode.ts';
import type { DicomStructuredReport } from './sr.ts';

export { dicomGrid, parseDicomBytes, parseDicomFile } from './decode.ts';
export { decodeFrame, loadCodec, CodecError, type CodecName, type DecodedFrame } from './codecs.ts';
export type { DicomDecodeOptions, DicomImage, DicomParseResult, FrameChoice } from './decode.ts';
export { transferSyntax } from './transfer-syntax.ts';
export type { DicomStructuredReport } from './sr.ts';
export type { TransferSyntaxInfo } from './transfer-syntax.ts';
export { resampleStoredToGrid, resampleToGrid, normalise, normaliseMinMax, normaliseWindow } from './pixels.ts';
export { decodeRleFrame, encodeRleFrame, packBits, unpackBits } from './rle.ts';

/** Extensions that are never DICOM, skipped silently while walking (README files and the like). */
const NON_DICOM_EXTENSIONS = /\.(txt|md|json|ndjson|xml|csv|tsv|html?|pdf|png|jpe?g|gif|yaml|yml|zip|gz|tbi|vcf|log)$/i;

export interface DicomFolderOptions extends DicomDecodeOptions {
  /** Receives each DICOM Structured Report (not an image: neither yielded nor quarantined, counted as skipped). */
  onStructuredReport?: (sr: DicomStructuredReport) => void;
  /** Which files to try; default: every non-hidden file whose extension is not obviously non-DICOM. */
  include?: (path: string) => boolean;
  /** Files larger than this are quarantined unread (default 2 GiB). */
  maxFileBytes?: number;
}

export interface DicomScanStats {
  filesSeen: number;
  images: number;
  quarantined: number;
  skipped: number;
}

export const defaultDicomInclude = (path: string): boolean => {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return !name.startsWith('.') && !NON_DICOM_EXTENSIONS.test(name) && name !== 'DICOMDIR';
};

/** Yields every regular file under `dir`, depth first, names sorted within each directory. */
export async function* walkFiles(dir: string): AsyncGenerator<string> {
  const handle = await opendir(dir);
  const files: string[] = [];
  const dirs: string[] = [];
  for await (const entry of handle) {
    if (entry.isDirectory()) dirs.push(entry.name);
    else if (entry.isFile() || entry.isSymbolicLink()) files.push(entry.name);
  }
  files.sort();
  dirs.sort();
  for (const f of files) yield join(dir, f);
  for (const d of dirs) yield* walkFiles(join(dir, d));
}

/** Reads and decodes one file; a failure is recorded in `quarantine` and yields undefined. */
export async function readDicomFile(
  path: string,
  quarantine: Quarantine,
  options: DicomFolderOptions = {},
): Promise<DicomImage | undefined> {
  let bytes: Uint8Array;
  try {
    const max = options.maxFileBytes ?? 2 ** 31;
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      if (size > max) {
        quarantine.add({ source: path, modality: 'dicom', reason: 'file too large', detail: `${size} bytes > ${max}` });
        return undefined;
      }
      // One positioned read into a buffer of the stat'ed size (fh.readFile reads in chunks and
      // re-stats); a file that shrank meanwhile is parsed as what was read.
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await fh.read(buf, got, size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      bytes = got === size ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  } catch (err) {
    quarantine.add({ source: path, modality: 'dicom', reason: 'unreadable file', detail: (err as Error).message });
    return undefined;
  }
  const result = await parseDicomFile(bytes, path, options);
  if (!result.ok && result.structuredReport) {
    options.onStructuredReport?.(result.structuredReport);
    return undefined;
  }
  if (!result.ok) {
    quarantine.add(result.record);
    return undefined;
  }
  return result.image;
}

/**
 * Streams the images of a folder tree. One bad file never stops the walk: it becomes a
 * quarantine record. `stats`, when given, is updated as the walk proceeds.
 */
export async function* readDicomFolder(
  dir: string,
  quarantine: Quarantine,
  options: DicomFolderOptions = {},
  stats?: DicomScanStats,
): AsyncGenerator<DicomImage> {
  const include = options.include ?? defaultDicomInclude;
  let files: AsyncGenerator<string>;
  try {
    files = walkFiles(dir);
  } catch (err) {
    quarantine.add({ source: dir, modality: 'dicom', reason: 'unreadable folder', detail: (err as Error).message });
    return;
  }
  try {
    for await (const path of files) {
      if (stats) stats.filesSeen++;
      if (!include(path)) {
        if (stats) stats.skipped++;
        continue;
      }
      const before = quarantine.records.length;
      const image = await readDicomFile(path, quarantine, options);
      if (image) {
        if (stats) stats.images++;
        yield image;
      } else if (stats) {
        if (quarantine.records.length > before) stats.quarantined++;
        else stats.skipped++;
      }
    }
  } catch (err) {
    quarantine.add({ source: dir, modality: 'dicom', reason: 'unreadable folder', detail: (err as Error).message });
  }
}
