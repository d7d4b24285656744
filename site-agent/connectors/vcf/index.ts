// VCF 4.x connector: a streaming reader for plain or bgzipped files (detected by magic bytes),
// header parsing, GT parsing, and genotype extraction for a SNP panel into per-patient dosage
// vectors. A malformed line is quarantined with its line number and reading continues; a corrupt
// gzip stream is quarantined with the last line read.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Quarantine } from '../types.ts';
import { DEFAULT_MAX_VCF_LINE_CHARS, LineSplitter, type OnLongLine } from '../lines.ts';
import { bgzfChunks, GAP, isBgzfHeader, type BgzfBadBlock } from './bgzf.ts';
import { refBlockOf, RefBlockIndex } from './gvcf.ts';

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
    /** Panel entries read from a record whose alleles are swapped and/or on the other strand, and how. */
    alleleFlips: AlleleFlip[];
    /** Records at a panel site (or with its rsID) whose REF contradicts the panel: quarantined, not read. */
    alleleMismatches: number;
    /** gVCF reference blocks read, and panel entries they covered. */
    refBlocks: number;
    refBlockPanelRecords: number;
  };
}

export interface AlleleFlip {
  /** Panel entry (rsID, else chrom:pos). */
  entry: string;
  line: number;
  how: 'swapped' | 'strand' | 'strand-swapped';
  reason: string;
}

const COMPLEMENT: Record<string, string> = { A: 'T', T: 'A', C: 'G', G: 'C' };
const complement = (allele: string) => [...allele].map((b) => COMPLEMENT[b] ?? 'N').join('');

/**
 * How a record's alleles carry a panel SNP: `k` is the record's allele index (0 = its REF) that is
 * the panel's ALT. A VCF's REF is the forward-strand reference base, so a REF equal to the panel's
 * ALT means the record's alleles are swapped relative to the panel, and complements mean the
 * other strand; both are read with the dosage re-oriented. A palindromic SNP (A/T, C/G) cannot tell
 * a swap from a strand flip, so it is rejected. A record whose REF agrees with the panel but lacks
 * its ALT is another allele at the same site (`other`); any other REF is a contradiction.
 */
export function matchPanelAlleles(
  panelRef: string,
  panelAlt: string,
  ref: string,
  alts: readonly string[],
): { k: number; how: 'same' | AlleleFlip['how'] } | { other: true } | { reject: string } {
  const same = alts.indexOf(panelAlt);
  if (ref === panelRef) return same >= 0 ? { k: same + 1, how: 'same' } : { other: true };
  const palindromic = complement(panelRef) === panelAlt;
  if (ref === panelAlt && alts.includes(panelRef)) {
    if (palindromic) return { reject: `palindromic SNP ${panelRef}/${panelAlt} with REF/ALT swapped: strand is ambiguous` };
    return { k: 0, how: 'swapped' };
  }
  if (!palindromic) {
    const strand = alts.indexOf(complement(panelAlt));
    if (ref === complement(panelRef) && strand >= 0) return { k: strand + 1, how: 'strand' };
    if (ref === complement(panelAlt) && alts.includes(complement(panelRef))) return { k: 0, how: 'strand-swapped' };
  }
  return {
    reject: `alleles ${ref}>${alts.join(',')} do not match the panel's ${panelRef}>${panelAlt} (REF is not the panel's reference base)`,
  };
}

const FLIP_REASON: Record<AlleleFlip['how'], string> = {
  swapped: "record REF is the panel's ALT: dosage counts the record's REF allele",
  strand: 'record alleles are the complements of the panel alleles (other strand): read on the complement',
  'strand-swapped': "record alleles are the complements, swapped: dosage counts the record's REF allele",
};

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

/** Lines lost around a corrupt BGZF block: where, and why. */
type LineGap = (bad: BgzfBadBlock) => void;

/**
 * Streams the lines of a plain, gzip or BGZF file (detected by its first bytes), a chunk at a
 * time, linear in the input (lines.ts). BGZF is read block by block: a corrupt block is reported
 * through `onGap` and skipped, and the partial lines on either side of it are dropped (they are
 * not whole records). Lines over `maxLineChars` are reported through `onLongLine` and come out empty.
 */
async function* readLineBatches(path: string, onGap: LineGap, maxLineChars: number, onLongLine: OnLongLine): AsyncGenerator<string[]> {
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(18);
  let got: number;
  try {
    got = (await fh.read(magic, 0, 18, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  const splitter = new LineSplitter(maxLineChars, onLongLine);
  const decoder = new TextDecoder('utf-8');
  if (got === 18 && isBgzfHeader(magic)) {
    for await (const chunk of bgzfChunks(path, (bad) => onGap(bad))) {
      const out: string[] = [];
      if (chunk === GAP) {
        decoder.decode(); // reset any partial UTF-8 sequence
        splitter.resync();
        continue;
      }
      splitter.push(decoder.decode(chunk, { stream: true }), out);
      if (out.length > 0) yield out;
    }
  } else {
    const gz = magic[0] === 0x1f && magic[1] === 0x8b;
    const file = createReadStream(path, { highWaterMark: 1 << 16 });
    const stream = gz ? file.pipe(createGunzip()) : file;
    if (gz) file.on('error', (err) => stream.destroy(err));
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const out: string[] = [];
        splitter.push(decoder.decode(chunk, { stream: true }), out);
        if (out.length > 0) yield out;
      }
    } catch (err) {
      if (gz) throw new GzipError((err as Error).message);
      throw err;
    } finally {
      file.destroy();
      if (stream !== file) stream.destroy();
    }
  }
  const out: string[] = [];
  splitter.push(decoder.decode(), out);
  splitter.end(out);
  if (out.length > 0) yield out;
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
  /** Longer lines are quarantined unread (default DEFAULT_MAX_VCF_LINE_CHARS). */
  maxLineChars?: number;
}

/** The message for a BCF file: what it is and what to do. */
export const BCF_REASON = 'BCF (binary VCF) is not supported: convert with bcftools view';

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
async function* scan(
  path: string,
  quarantine: Quarantine,
  onHeader?: (h: VcfHeader) => void,
  maxLineChars = DEFAULT_MAX_VCF_LINE_CHARS,
): AsyncGenerator<DataBatch> {
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
    const onLongLine = (line: number, chars: number) =>
      q('line too long', line, `${chars} characters > the limit of ${maxLineChars} (vcf maxLineChars); the line was skipped`);
    for await (const batch of readLineBatches(path, onGap, maxLineChars, onLongLine)) {
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
          // BCF: "BCF" then major version 2 (after BGZF or gzip decompression).
          if (line.startsWith('BCF\u0002')) {
            q(BCF_REASON, 1, `binary BCF v2.${line.charCodeAt(4)}; bcftools view -Oz -o file.vcf.gz file.bcf`);
            return;
          }
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
export async function readVcfHeader(path: string, quarantine: Quarantine, maxLineChars?: number): Promise<VcfHeader | undefined> {
  let found: VcfHeader | undefined;
  const it = scan(path, quarantine, (h) => (found = h), maxLineChars);
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
  for await (const { header, lines, firstLine } of scan(path, quarantine, options.onHeader, options.maxLineChars)) {
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
  /** Longer lines are quarantined unread (default DEFAULT_MAX_VCF_LINE_CHARS). */
  maxLineChars?: number;
  /**
   * gVCF reference blocks: a sample's 0/0 inside a block counts only when the block's GQ is at
   * least this (default 20, GATK's usual confidence floor); lower is a missing call.
   */
  minRefBlockGq?: number;
}

/**
 * Extracts genotypes for `panel` from a VCF (plain or bgzipped). Candidates are found by
 * chrom/pos (chrom with or without `chr`) or by rsID, then their alleles are checked against the
 * panel (`matchPanelAlleles`): swapped or other-strand records are read re-oriented and listed in
 * `stats.alleleFlips` with the reason; a contradicting REF is quarantined ("allele mismatch"). For
 * a multi-allelic record the dosage counts only the panel's alt allele. Per linked patient, a
 * dosage vector in panel order.
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
    alleleFlips: [],
    alleleMismatches: 0,
    refBlocks: 0,
    refBlockPanelRecords: 0,
  };
  const blocks = new RefBlockIndex(panel);
  const minGq = options.minRefBlockGq ?? 20;
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

    const block = refBlockOf(alt, line, t5, posText);
    if (block) {
      stats.refBlocks++;
      if (block.end === undefined) return qLine(lineNo, 'gVCF reference block without END in INFO');
      const inside = blocks.inside(normaliseChrom(chrom), block.start, block.end).filter((i) => !found[i]);
      if (inside.length === 0) return;
      const cols = line.split('\t');
      const format = (cols[8] ?? '').split(':');
      const gtAt = format.indexOf('GT');
      const gqAt = format.indexOf('GQ');
      for (const i of inside) {
        found[i] = true;
        stats.refBlockPanelRecords++;
        stats.panelRecords++;
        for (let s = 0; s < header.samples.length; s++) {
          const fields = cols[9 + s]!.split(':');
          const gq = gqAt >= 0 ? Number(fields[gqAt]) : NaN;
          const homRef = gtAt >= 0 && dosageOf(fields[gtAt]!, 1, 1) === 0;
          stats.genotypes++;
          if (homRef && gq >= minGq) dosages[s]![i] = 0;
          else stats.missingGenotypes++;
        }
      }
      return;
    }

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
    const matches: [number, number][] = []; // [panel index, record allele index carrying the panel's ALT]
    for (const i of candidates) {
      const m = matchPanelAlleles(panelRef[i]!, panelAlt[i]!, refU, alts);
      if ('other' in m) continue;
      const entry = panel[i]!.rsid ?? `${panel[i]!.chrom}:${panel[i]!.pos}`;
      if ('reject' in m) {
        stats.alleleMismatches++;
        quarantine.add({ source: path, modality: 'vcf', reason: 'allele mismatch', offset: lineNo, detail: `${entry}: ${m.reject}` });
        continue;
      }
      if (found[i]) {
        stats.duplicateRecords++;
        continue;
      }
      if (m.how !== 'same') stats.alleleFlips.push({ entry, line: lineNo, how: m.how, reason: FLIP_REASON[m.how] });
      matches.push([i, m.k]);
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
  const batches = scan(
    path,
    quarantine,
    (h) => {
      header = h;
      hasSamples = h.samples.length > 0;
      tabs = hasSamples ? 8 + h.samples.length : 8;
      dosages = h.samples.map(() => new Int8Array(panel.length).fill(-1));
    },
    options.maxLineChars,
  );
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
