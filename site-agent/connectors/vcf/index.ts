// VCF 4.x connector: a streaming reader for plain or bgzipped files (detected by magic bytes),
// header parsing, GT parsing, and genotype extraction for a SNP panel into per-patient dosage
// vectors. A malformed line is quarantined with its line number and reading continues; a corrupt
// gzip stream is quarantined with the last line read.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Quarantine } from '../types.ts';
import { bgzfChunks, GAP, isBgzfHeader, type BgzfBadBlock } from './bgzf.ts';

export interface VcfContig {
  id: string;
  length?: number;
}

export interface VcfHeader {
  /** e.g. "VCFv4.2"; '' when the file has no ##fileformat line. */
  fileformat: string;
  samples: string[];
  contigs: VcfContig[];
  /** All `##` meta lines, without the leading `##`. */
  meta: string[];
  /** Line number of the `#CHROM` line (1-based). */
  headerLine: number;
}

export interface VcfRecord {
  /** 1-based line number in the (decompressed) file. */
  line: number;
  chrom: string;
  pos: number;
  ids: string[];
  ref: string;
  alts: string[];
  qual: string;
  filter: string;
  info: string;
  format: string[];
  /** Raw per-sample columns, in header sample order. */
  sampleFields: string[];
}

export interface SnpPanelEntry {
  rsid?: string;
  chrom: string;
  pos: number;
  ref: string;
  alt: string;
}

export type SampleToPatient = Map<string, string> | Record<string, string> | ((sample: string) => string | undefined);

export interface PanelGenotypes {
  header?: VcfHeader;
  /** Dosage vector per linked patient: panel order, 0/1/2 copies of the panel's alt allele (0/1 when haploid), -1 missing. */
  patients: Map<string, Int8Array>;
  /** Whether each panel entry was found in the file. */
  found: boolean[];
  stats: {
    records: number;
    /** Panel records matched (one per panel entry found). */
    panelRecords: number;
    /** Genotypes decoded (matched records × samples). */
    genotypes: number;
    missingGenotypes: number;
    quarantinedLines: number;
    /** Samples the mapping gave no patient for. */
    unlinkedSamples: string[];
    /** Patients more than one sample mapped to: dropped, never guessed. */
    ambiguousPatients: string[];
    /** Records matching a panel entry already filled by an earlier record (the first wins). */
    duplicateRecords: number;
  };
}

/** Normalises a chromosome name: without `chr`, upper case, M → MT. */
export function normaliseChrom(chrom: string): string {
  let c = chrom.trim();
  if (c.length > 3 && c.slice(0, 3).toLowerCase() === 'chr') c = c.slice(3);
  c = c.toUpperCase();
  return c === 'M' ? 'MT' : c;
}

/**
 * Parses the GT of one sample column (up to the first ':'): allele indices, -1 for a missing
 * allele; `phased` when every separator is '|'. Returns undefined when the GT is malformed.
 */
export function parseGT(field: string): { alleles: number[]; phased: boolean } | undefined {
  const end = field.indexOf(':');
  const gt = end < 0 ? field : field.slice(0, end);
  if (gt.length === 0) return undefined;
  const alleles: number[] = [];
  let phased = true;
  let i = 0;
  for (;;) {
    let c = gt.charCodeAt(i);
    if (c === 46) {
      alleles.push(-1);
      i++;
    } else {
      let v = 0;
      let digits = 0;
      while (c >= 48 && c <= 57) {
        v = v * 10 + c - 48;
        digits++;
        c = gt.charCodeAt(++i);
      }
      if (digits === 0) return undefined;
      alleles.push(v);
    }
    if (i >= gt.length) break;
    const sep = gt.charCodeAt(i++);
    if (sep === 47) phased = false;
    else if (sep !== 124) return undefined;
    if (i >= gt.length) return undefined;
  }
  if (alleles.length === 1) phased = false;
  return { alleles, phased };
}

/**
 * Dosage of allele `k` in one sample column: number of its copies, -1 if any allele is missing,
 * -2 if the GT is malformed or names an allele beyond `nAlts`.
 */
function dosageOf(field: string, k: number, nAlts: number): number {
  let i = 0;
  let count = 0;
  const len = field.length;
  if (len === 0) return -2;
  let missing = false;
  for (;;) {
    let c = field.charCodeAt(i);
    if (c === 46) {
      missing = true;
      c = field.charCodeAt(++i);
    } else {
      let v = 0;
      let digits = 0;
      while (c >= 48 && c <= 57) {
        v = v * 10 + c - 48;
        digits++;
        c = field.charCodeAt(++i);
      }
      if (digits === 0 || v > nAlts) return -2;
      if (v === k) count++;
    }
    if (i >= len || c === 58) break; // end or ':'
    if (c !== 47 && c !== 124) return -2;
    i++;
    if (i >= len) return -2;
  }
  return missing ? -1 : count;
}

class GzipError extends Error {}

/** The text's lines with CR of CRLF endings removed; the last element is the unfinished rest. */
function completeLines(text: string): string[] {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length - 1; i++) {
    const l = lines[i]!;
    if (l.length > 0 && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
  }
  return lines;
}

/** Lines lost around a corrupt BGZF block: where, and why. */
type LineGap = (bad: BgzfBadBlock) => void;

/**
 * Streams the lines of a plain, gzip or BGZF file (detected by its first bytes), a chunk at a
 * time. BGZF is read block by block: a corrupt block is reported through `onGap` and skipped, and
 * the partial lines on either side of it are dropped (they are not whole records).
 */
async function* readLineBatches(path: string, onGap: LineGap = () => {}): AsyncGenerator<string[]> {
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(18);
  let got: number;
  try {
    got = (await fh.read(magic, 0, 18, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  if (got === 18 && isBgzfHeader(magic)) {
    yield* bgzfLineBatches(path, onGap);
    return;
  }
  const gz = magic[0] === 0x1f && magic[1] === 0x8b;
  const file = createReadStream(path, { highWaterMark: 1 << 16 });
  const stream = gz ? file.pipe(createGunzip()) : file;
  if (gz) file.on('error', (err) => stream.destroy(err));
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const lines = completeLines(rest + decoder.decode(chunk, { stream: true }));
      rest = lines.pop()!;
      if (lines.length > 0) yield lines;
    }
  } catch (err) {
    if (gz) throw new GzipError((err as Error).message);
    throw err;
  } finally {
    file.destroy();
    if (stream !== file) stream.destroy();
  }
  rest += decoder.decode();
  if (rest.length > 0) yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

async function* bgzfLineBatches(path: string, onGap: LineGap): AsyncGenerator<string[]> {
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  let dropFirst = false; // after a gap: the text up to the next newline is the tail of a lost line
  for await (const chunk of bgzfChunks(path, (bad) =>
    onGap({ ...bad, reason: bad.reason + (rest ? ' (the line being read when it broke was dropped)' : '') }),
  )) {
    if (chunk === GAP) {
      rest = '';
      decoder.decode(); // reset any partial UTF-8 sequence
      dropFirst = true;
      continue;
    }
    let text = rest + decoder.decode(chunk, { stream: true });
    if (dropFirst) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        rest = '';
        continue;
      }
      text = text.slice(nl + 1);
      dropFirst = false;
    }
    const lines = completeLines(text);
    rest = lines.pop()!;
    if (lines.length > 0) yield lines;
  }
  rest += decoder.decode();
  if (rest.length > 0 && !dropFirst) yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

function parseContig(value: string): VcfContig | undefined {
  const id = /(?:^<|,)ID=([^,>]+)/.exec(value)?.[1];
  if (!id) return undefined;
  const len = /(?:^<|,)length=(\d+)/.exec(value)?.[1];
  return len ? { id, length: Number(len) } : { id };
}

export interface VcfReadOptions {
  /** Called once the `#CHROM` line has been read. */
  onHeader?: (header: VcfHeader) => void;
}

/** Data lines after the header; `lines[i]` is line number `firstLine + i` (empty lines included). */
interface DataBatch {
  header: VcfHeader;
  lines: string[];
  firstLine: number;
}

/**
 * Core scan: parses the header, then yields batches of data lines. A file that is not a usable
 * VCF is quarantined and yields nothing; a corrupt gzip stream is quarantined where it breaks.
 * Never throws on bad input.
 */
async function* scan(path: string, quarantine: Quarantine, onHeader?: (h: VcfHeader) => void): AsyncGenerator<DataBatch> {
  const q = (reason: string, offset?: number, detail?: string) =>
    quarantine.add({ source: path, modality: 'vcf', reason, ...(offset !== undefined ? { offset } : {}), ...(detail ? { detail } : {}) });
  let lineNo = 0;
  let header: VcfHeader | undefined;
  const meta: string[] = [];
  let fileformat = '';
  try {
    const onGap = (bad: BgzfBadBlock) =>
      q(
        'corrupt bgzip block',
        lineNo,
        `block at byte ${bad.offset}: ${bad.reason}; the records in it are lost, reading resumed at the next block (line numbers after this count the lines read)`,
      );
    for await (const batch of readLineBatches(path, onGap)) {
      if (header) {
        const firstLine = lineNo + 1;
        lineNo += batch.length;
        yield { header, lines: batch, firstLine };
        continue;
      }
      for (let b = 0; b < batch.length; b++) {
        const line = batch[b]!;
        lineNo++;
        if (header) {
          // the rest of this batch is data
          const firstLine = lineNo;
          const lines = batch.slice(b);
          lineNo += lines.length - 1;
          yield { header, lines, firstLine };
          break;
        }
        if (lineNo === 1) {
          if (!line.startsWith('##fileformat=')) {
            // Required by the spec, but some writers omit it: accept a file that looks like VCF.
            if (!line.startsWith('##') && !line.startsWith('#CHROM')) {
              q('not a VCF file', 1, 'first line is neither ##fileformat= nor a header line');
              return;
            }
          } else fileformat = line.slice('##fileformat='.length).trim();
          if (fileformat !== '' && !/^VCFv4\.\d+$/.test(fileformat)) {
            q('unsupported VCF version', 1, fileformat);
            return;
          }
        }
        if (line.startsWith('##')) {
          meta.push(line.slice(2));
          continue;
        }
        if (line.startsWith('#CHROM')) {
          const cols = line.split('\t');
          if (cols.length < 8 || cols.length === 9) {
            q('invalid #CHROM header line', lineNo, `${cols.length} columns`);
            return;
          }
          const contigs: VcfContig[] = [];
          for (const m of meta) {
            if (m.startsWith('contig=')) {
              const c = parseContig(m.slice('contig='.length));
              if (c) contigs.push(c);
            }
          }
          header = { fileformat, samples: cols.slice(9), contigs, meta, headerLine: lineNo };
          onHeader?.(header);
          continue;
        }
        if (line.length === 0) continue;
        q('missing #CHROM header line', lineNo, 'data line before the #CHROM line');
        return;
      }
    }
  } catch (err) {
    if (err instanceof GzipError) {
      q('corrupt gzip/bgzip data', lineNo, `stream broke after line ${lineNo}: ${err.message}`);
      return;
    }
    q('unreadable file', lineNo || undefined, (err as Error).message);
    return;
  }
  if (!header) {
    if (lineNo === 0) q('empty file');
    else q('missing #CHROM header line', lineNo, 'file ended before the #CHROM line');
  }
}

/** Reads only the header (stops at the `#CHROM` line). */
export async function readVcfHeader(path: string, quarantine: Quarantine): Promise<VcfHeader | undefined> {
  let found: VcfHeader | undefined;
  const it = scan(path, quarantine, (h) => (found = h));
  // The header is set before the first data batch is yielded; stop there.
  await it.next();
  await it.return(undefined);
  return found;
}

/**
 * Validates the fixed columns of a data line; returns an error reason or undefined. `tabs` is
 * the number of tab characters the line must have.
 */
function checkLine(line: string, tabs: number): string | undefined {
  let n = 0;
  let at = line.indexOf('\t');
  while (at >= 0) {
    n++;
    at = line.indexOf('\t', at + 1);
  }
  if (n !== tabs) return `wrong number of columns (${n + 1}, expected ${tabs + 1})`;
  return undefined;
}

function invalidFixed(chrom: string, posText: string, ref: string, alt: string): string | undefined {
  if (chrom.length === 0) return 'empty CHROM';
  if (!/^\d+$/.test(posText)) return `invalid POS "${posText.slice(0, 20)}"`;
  if (!/^[ACGTNacgtn]+$/.test(ref)) return `invalid REF "${ref.slice(0, 20)}"`;
  if (alt.length === 0) return 'empty ALT';
  return undefined;
}

/**
 * Streams parsed records. Malformed lines are quarantined (with line number) and skipped.
 */
export async function* readVcfRecords(path: string, quarantine: Quarantine, options: VcfReadOptions = {}): AsyncGenerator<VcfRecord> {
  for await (const { header, lines, firstLine } of scan(path, quarantine, options.onHeader)) {
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.length === 0) continue;
      const rec = parseRecord(lines[i]!, firstLine + i, header, path, quarantine);
      if (rec) yield rec;
    }
  }
}

function parseRecord(line: string, lineNo: number, header: VcfHeader, path: string, quarantine: Quarantine): VcfRecord | undefined {
  const cols = line.split('\t');
  const expected = header.samples.length > 0 ? 9 + header.samples.length : cols.length === 9 ? 9 : 8;
  const bad =
    cols.length !== expected
      ? `wrong number of columns (${cols.length}, expected ${expected})`
      : invalidFixed(cols[0]!, cols[1]!, cols[3]!, cols[4]!);
  if (bad) {
    quarantine.add({ source: path, modality: 'vcf', reason: 'malformed line', offset: lineNo, detail: bad });
    return undefined;
  }
  return {
    line: lineNo,
    chrom: cols[0]!,
    pos: Number(cols[1]),
    ids: cols[2] === '.' ? [] : cols[2]!.split(';'),
    ref: cols[3]!,
    alts: cols[4] === '.' ? [] : cols[4]!.split(','),
    qual: cols[5]!,
    filter: cols[6]!,
    info: cols[7]!,
    format: cols.length > 8 ? cols[8]!.split(':') : [],
    sampleFields: cols.slice(9),
  };
}

function mappingFunction(map: SampleToPatient | undefined): (s: string) => string | undefined {
  if (!map) return (s) => s;
  if (typeof map === 'function') return map;
  if (map instanceof Map) return (s) => map.get(s);
  return (s) => (Object.prototype.hasOwnProperty.call(map, s) ? map[s] : undefined);
}

export interface PanelOptions {
  /** Sample name → patient id; default: the sample name is the patient id. */
  sampleToPatient?: SampleToPatient;
}

/**
 * Extracts genotypes for `panel` from a VCF (plain or bgzipped). Matches by chrom/pos/ref/alt
 * (chrom with or without `chr`) or by rsID with matching alleles; for a multi-allelic record the
 * dosage counts only the panel's alt allele. Per linked patient, a dosage vector in panel order.
 */
export async function extractPanelGenotypes(
  path: string,
  panel: readonly SnpPanelEntry[],
  quarantine: Quarantine,
  options: PanelOptions = {},
): Promise<PanelGenotypes> {
  const byPos = new Map<string, number[]>();
  const byRsid = new Map<string, number[]>();
  panel.forEach((p, i) => {
    const key = `${normaliseChrom(p.chrom)}:${p.pos}`;
    (byPos.get(key) ?? byPos.set(key, []).get(key)!).push(i);
    if (p.rsid) (byRsid.get(p.rsid) ?? byRsid.set(p.rsid, []).get(p.rsid)!).push(i);
  });
  const panelRef = panel.map((p) => p.ref.toUpperCase());
  const panelAlt = panel.map((p) => p.alt.toUpperCase());

  const stats: PanelGenotypes['stats'] = {
    records: 0,
    panelRecords: 0,
    genotypes: 0,
    missingGenotypes: 0,
    quarantinedLines: 0,
    unlinkedSamples: [],
    ambiguousPatients: [],
    duplicateRecords: 0,
  };
  const found = new Array<boolean>(panel.length).fill(false);
  let dosages: Int8Array[] = [];
  let tabs = 8;
  let hasSamples = false;
  const qLine = (lineNo: number, detail: string) => {
    stats.quarantinedLines++;
    quarantine.add({ source: path, modality: 'vcf', reason: 'malformed line', offset: lineNo, detail });
  };

  const onLine = (line: string, lineNo: number, header: VcfHeader): void => {
    stats.records++;
    // Fixed columns via indexOf; samples are split only for panel records.
    const t1 = line.indexOf('\t');
    const t2 = t1 < 0 ? -1 : line.indexOf('\t', t1 + 1);
    const t3 = t2 < 0 ? -1 : line.indexOf('\t', t2 + 1);
    const t4 = t3 < 0 ? -1 : line.indexOf('\t', t3 + 1);
    const t5 = t4 < 0 ? -1 : line.indexOf('\t', t4 + 1);
    if (t5 < 0) return qLine(lineNo, 'fewer than 8 columns');
    const chrom = line.slice(0, t1);
    const posText = line.slice(t1 + 1, t2);
    const ref = line.slice(t3 + 1, t4);
    const alt = line.slice(t4 + 1, t5);
    const bad = invalidFixed(chrom, posText, ref, alt) ?? (hasSamples || tabs !== 8 ? checkLine(line, tabs) : undefined);
    if (bad) return qLine(lineNo, bad);

    // Candidate panel entries: by position, then by rsID.
    let candidates = byPos.get(`${normaliseChrom(chrom)}:${posText}`);
    if (byRsid.size > 0) {
      const idText = line.slice(t2 + 1, t3);
      if (idText !== '.') {
        for (const id of idText.split(';')) {
          const r = byRsid.get(id);
          if (r) candidates = candidates ? [...new Set([...candidates, ...r])] : r;
        }
      }
    }
    if (!candidates) return;
    const refU = ref.toUpperCase();
    const alts = alt.toUpperCase().split(',');
    const matches: [number, number][] = []; // [panel index, alt allele index (1-based)]
    for (const i of candidates) {
      if (panelRef[i] !== refU) continue;
      const k = alts.indexOf(panelAlt[i]!);
      if (k < 0) continue;
      if (found[i]) {
        stats.duplicateRecords++;
        continue;
      }
      matches.push([i, k + 1]);
    }
    if (matches.length === 0 || !hasSamples) {
      for (const [i] of matches) found[i] = true;
      if (matches.length) stats.panelRecords += matches.length;
      return;
    }
    const cols = line.split('\t');
    const gtFirst = cols[8]!.startsWith('GT') && (cols[8]!.length === 2 || cols[8]!.charCodeAt(2) === 58);
    let badSamples = 0;
    let firstBad = '';
    for (const [i, k] of matches) {
      found[i] = true;
      stats.panelRecords++;
      const n = header.samples.length;
      for (let s = 0; s < n; s++) {
        const d = gtFirst ? dosageOf(cols[9 + s]!, k, alts.length) : -1;
        stats.genotypes++;
        if (d === -2) {
          if (badSamples++ === 0) firstBad = `${header.samples[s]}="${cols[9 + s]!.slice(0, 20)}"`;
          dosages[s]![i] = -1;
          stats.missingGenotypes++;
        } else {
          if (d < 0) stats.missingGenotypes++;
          dosages[s]![i] = d;
        }
      }
    }
    if (badSamples > 0) {
      stats.quarantinedLines++;
      quarantine.add({
        source: path,
        modality: 'vcf',
        reason: 'invalid genotype',
        offset: lineNo,
        detail: `${badSamples} sample(s) with a malformed GT, treated as missing; first: ${firstBad}`,
      });
    }
  };

  let header: VcfHeader | undefined;
  const batches = scan(path, quarantine, (h) => {
    header = h;
    hasSamples = h.samples.length > 0;
    tabs = hasSamples ? 8 + h.samples.length : 8;
    dosages = h.samples.map(() => new Int8Array(panel.length).fill(-1));
  });
  for await (const { header: h, lines, firstLine } of batches) {
    for (let i = 0; i < lines.length; i++) if (lines[i]!.length > 0) onLine(lines[i]!, firstLine + i, h);
  }

  const patients = new Map<string, Int8Array>();
  if (header) {
    const toPatient = mappingFunction(options.sampleToPatient);
    const owners = new Map<string, number>();
    header.samples.forEach((sample) => {
      const pid = toPatient(sample);
      if (pid === undefined || pid === '') stats.unlinkedSamples.push(sample);
      else owners.set(pid, (owners.get(pid) ?? 0) + 1);
    });
    header.samples.forEach((sample, s) => {
      const pid = toPatient(sample);
      if (pid === undefined || pid === '') return;
      if (owners.get(pid)! > 1) return;
      patients.set(pid, dosages[s]!);
    });
    for (const [pid, n] of owners) if (n > 1) stats.ambiguousPatients.push(pid);
  }
  return { ...(header ? { header } : {}), patients, found, stats };
}
