/**
 * Validation of written VCF text before release: a small independent parser (not the writer's
 * code) that checks the header (fileformat first, contigs with lengths, FORMAT=GT and every INFO
 * key used declared, #CHROM line with FORMAT and unique sample names) and every record (column
 * count, declared contig, position within the contig, sorted by contig header order then
 * position, no duplicate sites, A/C/G/T/N alleles, GT as the first FORMAT key with allele
 * indices within REF+ALT and the right ploidy). Pure.
 */

export interface ParsedVcfRecord {
  chrom: string;
  pos: number;
  id: string;
  ref: string;
  alt: string[];
  info: Record<string, string>;
  /** GT per sample, as written. */
  gt: string[];
}

export interface VcfValidation {
  ok: boolean;
  errors: string[];
  fileformat: string;
  reference?: string;
  contigs: { id: string; length: number }[];
  samples: string[];
  records: ParsedVcfRecord[];
}

const ALLELE_RE = /^[ACGTN]+$/;
const GT_RE = /^(\.|[0-9]+)([/|](\.|[0-9]+))*$/;

/** What the ## lines (1 … end − 1, after the fileformat line 0) declare, and their errors (1-based line, message). */
interface MetaBlock {
  fileformat: string;
  reference?: string;
  contigs: { id: string; length: number }[];
  contigIndex: Map<string, number>;
  infoIds: Set<string>;
  formatIds: Set<string>;
  errors: [number, string][];
}

const metaBlocks = new Map<string, MetaBlock>();

function metaBlock(lines: string[], end: number): MetaBlock {
  const key = lines.slice(0, end).join('\n');
  let m = metaBlocks.get(key);
  if (!m) {
    m = parseMetaBlock(lines, end);
    if (metaBlocks.size >= 64) metaBlocks.clear();
    metaBlocks.set(key, m);
  }
  return m;
}

function parseMetaBlock(lines: string[], end: number): MetaBlock {
  const errors: [number, string][] = [];
  const err = (line: number, msg: string) => errors.push([line, msg]);
  const out: MetaBlock = {
    fileformat: lines[0].slice('##fileformat='.length),
    contigs: [],
    contigIndex: new Map(),
    infoIds: new Set(),
    formatIds: new Set(),
    errors,
  };
  if (!/^VCFv4\.[0-3]$/.test(out.fileformat)) err(1, `unsupported fileformat ${out.fileformat}`);
  for (let i = 1; i < end; i++) {
    const l = lines[i];
    const m = /^##(\w+)=<(.*)>$/.exec(l);
    if (l.startsWith('##reference=')) out.reference = l.slice(12);
    if (!m) continue;
    const fields = new Map<string, string>();
    for (const part of m[2].match(/(\w+)=("(?:[^"\\]|\\.)*"|[^,]*)/g) ?? []) {
      const eq = part.indexOf('=');
      fields.set(part.slice(0, eq), part.slice(eq + 1));
    }
    const id = fields.get('ID');
    if (!id) {
      err(i + 1, `##${m[1]} without ID`);
      continue;
    }
    if (m[1] === 'contig') {
      const length = Number(fields.get('length'));
      if (!Number.isInteger(length) || length < 1) err(i + 1, `contig ${id} has no valid length`);
      if (out.contigIndex.has(id)) err(i + 1, `contig ${id} declared twice`);
      out.contigIndex.set(id, out.contigs.length);
      out.contigs.push({ id, length });
    } else if (m[1] === 'INFO' || m[1] === 'FORMAT') {
      for (const k of ['Number', 'Type', 'Description']) if (!fields.has(k)) err(i + 1, `##${m[1]} ${id} lacks ${k}`);
      (m[1] === 'INFO' ? out.infoIds : out.formatIds).add(id);
    }
  }
  return out;
}

export function validateVcf(text: string, opts: { ploidy?: number; maxErrors?: number } = {}): VcfValidation {
  const errors: string[] = [];
  const maxErrors = opts.maxErrors ?? 50;
  const err = (line: number, msg: string) => {
    if (errors.length < maxErrors) errors.push(`line ${line}: ${msg}`);
  };
  const out: VcfValidation = { ok: false, errors, fileformat: '', contigs: [], samples: [], records: [] };
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else err(lines.length, 'file does not end with a newline');
  if (lines.length === 0 || !lines[0].startsWith('##fileformat=')) {
    err(1, 'the first line must be ##fileformat=VCFv4.x');
    return out;
  }
  // The meta-information lines (a cohort's files share them) are parsed once per distinct block.
  let i = 1;
  while (i < lines.length && lines[i].startsWith('##')) i++;
  const meta = metaBlock(lines, i);
  for (const [line, msg] of meta.errors) err(line, msg);
  out.fileformat = meta.fileformat;
  if (meta.reference !== undefined) out.reference = meta.reference;
  out.contigs = meta.contigs.map((c) => ({ ...c }));
  const { infoIds, formatIds, contigIndex } = meta;
  if (!formatIds.has('GT')) err(i, '##FORMAT=<ID=GT,...> is not declared');
  if (i >= lines.length || !lines[i].startsWith('#CHROM')) {
    err(i + 1, 'missing #CHROM header line');
    return out;
  }
  const head = lines[i].split('\t');
  const fixed = ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO'];
  fixed.forEach((f, j) => head[j] !== f && err(i + 1, `column ${j + 1} must be ${f}, got ${head[j]}`));
  if (head.length > 8) {
    if (head[8] !== 'FORMAT') err(i + 1, `column 9 must be FORMAT, got ${head[8]}`);
    out.samples = head.slice(9);
    if (new Set(out.samples).size !== out.samples.length) err(i + 1, 'duplicate sample names');
  }
  const ploidy = opts.ploidy ?? 2;
  let prevContig = -1;
  let prevPos = 0;
  const seen = new Set<string>();
  for (i = i + 1; i < lines.length; i++) {
    const n = i + 1;
    const c = lines[i].split('\t');
    if (c.length !== head.length) {
      err(n, `${c.length} columns, header has ${head.length}`);
      continue;
    }
    const [chrom, posText, id, ref, altText, , , infoText] = c;
    const ci = contigIndex.get(chrom);
    const pos = Number(posText);
    if (ci === undefined) err(n, `contig ${chrom} is not declared in the header`);
    if (!Number.isInteger(pos) || pos < 1) err(n, `POS ${posText} is not a positive integer`);
    else if (ci !== undefined && pos > out.contigs[ci].length) err(n, `POS ${pos} is past the end of ${chrom} (${out.contigs[ci].length})`);
    if (ci !== undefined) {
      if (ci < prevContig || (ci === prevContig && pos < prevPos)) err(n, `record ${chrom}:${pos} is out of order`);
      prevContig = ci;
      prevPos = pos;
    }
    if (!ALLELE_RE.test(ref)) err(n, `REF ${ref} is not an A/C/G/T/N string`);
    const alt = altText === '.' ? [] : altText.split(',');
    for (const a of alt) if (!ALLELE_RE.test(a) || a === ref) err(n, `ALT ${a} is not a valid allele distinct from REF`);
    const key = `${chrom}:${pos}:${ref}:${altText}`;
    if (seen.has(key)) err(n, `duplicate site ${key}`);
    seen.add(key);
    if (id !== '.' && !/^[^\s;]+$/.test(id)) err(n, `bad ID ${id}`);
    const info: Record<string, string> = {};
    if (infoText !== '.') {
      for (const kv of infoText.split(';')) {
        const eq = kv.indexOf('=');
        const k = eq < 0 ? kv : kv.slice(0, eq);
        if (!infoIds.has(k)) err(n, `INFO key ${k} is not declared`);
        info[k] = eq < 0 ? '' : kv.slice(eq + 1);
      }
    }
    const gt: string[] = [];
    if (head.length > 8) {
      const format = c[8].split(':');
      if (format[0] !== 'GT') err(n, 'GT must be the first FORMAT key');
      for (const f of format) if (!formatIds.has(f)) err(n, `FORMAT key ${f} is not declared`);
      for (let s = 9; s < c.length; s++) {
        const g = c[s].split(':')[0];
        gt.push(g);
        if (!GT_RE.test(g)) {
          err(n, `sample ${out.samples[s - 9]}: malformed GT ${g}`);
          continue;
        }
        const alleles = g.split(/[/|]/);
        if (alleles.length !== ploidy) err(n, `sample ${out.samples[s - 9]}: GT ${g} is not ${ploidy}-ploid`);
        for (const a of alleles)
          if (a !== '.' && Number(a) > alt.length) err(n, `sample ${out.samples[s - 9]}: allele ${a} > number of ALT alleles`);
      }
    }
    out.records.push({ chrom, pos, id, ref, alt, info, gt });
  }
  out.ok = errors.length === 0;
  return out;
}
