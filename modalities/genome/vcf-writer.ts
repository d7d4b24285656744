/**
 * VCF 4.2 writer for synthetic genotypes (coordinator side). One sample (per patient) or many
 * (one file per cohort): header with fileformat, fileDate, source, reference build, a contig
 * line (ID, length, assembly) for every chromosome used, INFO (AC, AN, AF over called
 * genotypes) and FORMAT=GT; records sorted by chromosome order (1..22, X, Y, MT) then
 * position, one per distinct (chrom, pos, ref, alt); GT from alt-allele dosage (0/0, 0/1, 1/1;
 * ./. when missing or absent from a sample). Pure: returns text.
 */
import { chromLength, chromRank, vcfContigName, type ReferenceBuild } from './reference.ts';

export interface Genotype {
  /** dbSNP id (rs…) or undefined ('.' in the file). */
  rsid?: string;
  chrom: string;
  /** 1-based position on the reference build. */
  pos: number;
  ref: string;
  alt: string;
  /** Copies of the alt allele: 0, 1, 2; -1 (or null) for a missing call. */
  dosage: number | null;
  /** HGNC gene symbol, when known (FHIR only). */
  gene?: string;
}

export interface VcfSample {
  id: string;
  genotypes: Genotype[];
}

export interface VcfWriteOptions {
  build: ReferenceBuild;
  /** YYYY-MM-DD or YYYYMMDD; fixed by the caller so output is deterministic. */
  fileDate: string;
  source?: string;
  chromStyle?: 'chr' | 'plain';
  /** Emit INFO AC/AN/AF (default true). */
  info?: boolean;
}

const ALLELE_RE = /^[ACGTN]+$/;

/** GT text of an alt-allele dosage (diploid, unphased). */
export function gtFromDosage(dosage: number | null | undefined): string {
  switch (dosage) {
    case 0:
      return '0/0';
    case 1:
      return '0/1';
    case 2:
      return '1/1';
    case -1:
    case null:
    case undefined:
      return './.';
    default:
      throw new Error(`gtFromDosage: dosage must be 0, 1, 2 or missing, got ${dosage}`);
  }
}

interface Site {
  key: string;
  rank: number;
  g: Genotype;
}

function siteKey(g: Genotype): string {
  return `${chromRank(g.chrom)}:${g.pos}:${g.ref}:${g.alt}`;
}

function checkGenotype(g: Genotype, build: ReferenceBuild): void {
  if (!Number.isInteger(g.pos) || g.pos < 1) throw new Error(`VCF: position ${g.pos} of ${g.rsid ?? g.chrom} is not a positive integer`);
  const len = chromLength(build, g.chrom);
  if (g.pos > len) throw new Error(`VCF: ${g.chrom}:${g.pos} is past the end of the chromosome on ${build} (${len})`);
  if (!ALLELE_RE.test(g.ref) || !ALLELE_RE.test(g.alt)) throw new Error(`VCF: alleles ${g.ref}>${g.alt} must be A/C/G/T/N strings`);
  if (g.ref === g.alt) throw new Error(`VCF: ${g.rsid ?? g.chrom + ':' + g.pos}: ALT equals REF`);
  if (g.rsid !== undefined && !/^rs[0-9]+$/.test(g.rsid)) throw new Error(`VCF: ID ${JSON.stringify(g.rsid)} is not a dbSNP rs id`);
}

function compactDate(d: string): string {
  if (/^\d{8}$/.test(d)) return d;
  if (/^\d{4}-\d{2}-\d{2}$/.test(d)) return d.replace(/-/g, '');
  throw new Error(`VCF: fileDate must be YYYY-MM-DD or YYYYMMDD, got ${d}`);
}

/** Writes a VCF 4.2 text with the given samples (column order = array order). */
export function writeVcf(samples: VcfSample[], opts: VcfWriteOptions): string {
  if (samples.length === 0) throw new Error('writeVcf: at least one sample is required');
  const ids = new Set<string>();
  for (const s of samples) {
    if (!s.id || /[\s]/.test(s.id)) throw new Error(`writeVcf: sample id ${JSON.stringify(s.id)} is empty or has whitespace`);
    if (ids.has(s.id)) throw new Error(`writeVcf: duplicate sample id ${s.id}`);
    ids.add(s.id);
  }
  // Union of sites; per sample, site → dosage.
  const sites = new Map<string, Site>();
  const perSample: Map<string, number | null>[] = samples.map((s) => {
    const m = new Map<string, number | null>();
    for (const g of s.genotypes) {
      checkGenotype(g, opts.build);
      const key = siteKey(g);
      if (m.has(key)) throw new Error(`writeVcf: sample ${s.id} has two genotypes at ${g.chrom}:${g.pos} ${g.ref}>${g.alt}`);
      gtFromDosage(g.dosage);
      m.set(key, g.dosage);
      const prev = sites.get(key);
      if (!prev) sites.set(key, { key, rank: chromRank(g.chrom), g });
      else if ((prev.g.rsid ?? '') !== (g.rsid ?? ''))
        throw new Error(`writeVcf: ${g.chrom}:${g.pos} has ids ${prev.g.rsid} and ${g.rsid}`);
    }
    return m;
  });
  const ordered = [...sites.values()].sort(
    (a, b) =>
      a.rank - b.rank ||
      a.g.pos - b.g.pos ||
      (a.g.ref < b.g.ref ? -1 : a.g.ref > b.g.ref ? 1 : 0) ||
      (a.g.alt < b.g.alt ? -1 : a.g.alt > b.g.alt ? 1 : 0),
  );
  const info = opts.info ?? true;
  const lines: string[] = [
    '##fileformat=VCFv4.2',
    `##fileDate=${compactDate(opts.fileDate)}`,
    `##source=${opts.source ?? 'fedsynth'}`,
    `##reference=${opts.build}`,
  ];
  const usedRanks = [...new Set(ordered.map((s) => s.rank))].sort((a, b) => a - b);
  for (const r of usedRanks) {
    const chrom = ordered.find((s) => s.rank === r)!.g.chrom;
    lines.push(
      `##contig=<ID=${vcfContigName(opts.build, chrom, opts.chromStyle)},length=${chromLength(opts.build, chrom)},assembly=${opts.build}>`,
    );
  }
  if (info) {
    lines.push(
      '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes, for each ALT allele, in the same order as listed">',
    );
    lines.push('##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">');
    lines.push('##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency, for each ALT allele, in the same order as listed">');
  }
  lines.push('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">');
  lines.push(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', ...samples.map((s) => s.id)].join('\t'));
  for (const site of ordered) {
    const g = site.g;
    let ac = 0;
    let an = 0;
    const gts = perSample.map((m) => {
      const d = m.get(site.key);
      if (d === 0 || d === 1 || d === 2) {
        ac += d;
        an += 2;
      }
      return gtFromDosage(d === undefined ? null : d);
    });
    const infoText = info ? (an > 0 ? `AC=${ac};AN=${an};AF=${Number((ac / an).toFixed(4))}` : `AC=0;AN=0`) : '.';
    lines.push(
      [vcfContigName(opts.build, g.chrom, opts.chromStyle), g.pos, g.rsid ?? '.', g.ref, g.alt, '.', 'PASS', infoText, 'GT', ...gts].join(
        '\t',
      ),
    );
  }
  return lines.join('\n') + '\n';
}
