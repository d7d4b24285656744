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

/** VCF record order: chromosome, position, then REF and ALT (the order bcftools expects). */
function bySiteOrder(a: Pick<Site, 'rank' | 'g'>, b: Pick<Site, 'rank' | 'g'>): number {
  return (
    a.rank - b.rank ||
    a.g.pos - b.g.pos ||
    (a.g.ref < b.g.ref ? -1 : a.g.ref > b.g.ref ? 1 : 0) ||
    (a.g.alt < b.g.alt ? -1 : a.g.alt > b.g.alt ? 1 : 0)
  );
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
  const ordered = [...sites.values()].sort(bySiteOrder);
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

/**
 * Single-sample VCFs over one fixed list of sites (a cohort's SNP attributes, one file per
 * patient): the site checks, the site order, the header and every record's fixed columns are made
 * once by `writeVcf` itself, so each file only fills in the sample id and the genotypes' dosages
 * (the genotypes are the sites, in their order). The text is exactly
 * `writeVcf([{ id, genotypes }], opts)` (tests/unit/genome-vcf.test.ts compares them).
 */
export function singleSampleVcfWriter(
  sites: readonly Genotype[],
  opts: VcfWriteOptions,
): (id: string, genotypes: readonly Pick<Genotype, 'dosage'>[]) => string {
  // writeVcf checks the sites (and throws its own errors); its records are in site order, one per site.
  const probe = writeVcf([{ id: 'S', genotypes: sites.map((g) => ({ ...g, dosage: null })) }], opts);
  const lines = probe.split('\n');
  const header = lines.slice(0, lines.findIndex((l) => l.startsWith('#CHROM')) + 1);
  const headerPrefix = header.slice(0, -1).join('\n') + '\n' + header[header.length - 1].slice(0, -1);
  const order = sites.map((g, i) => ({ i, rank: chromRank(g.chrom), g })).sort(bySiteOrder);
  const info = opts.info ?? true;
  // Per site: the record up to INFO, for the order above (checked against writeVcf's own lines).
  const fixed = order.map(
    ({ g }) => [vcfContigName(opts.build, g.chrom, opts.chromStyle), g.pos, g.rsid ?? '.', g.ref, g.alt, '.', 'PASS'].join('\t') + '\t',
  );
  fixed.forEach((f, r) => {
    if (!lines[header.length + r].startsWith(f)) throw new Error('singleSampleVcfWriter: site order differs from writeVcf');
  });
  // A single sample's INFO and GT by dosage: its AC, AN = 2 and AF as writeVcf computes them.
  const tail = (d: number | null): string => {
    const gt = gtFromDosage(d);
    const infoText = !info ? '.' : d === 0 || d === 1 || d === 2 ? `AC=${d};AN=2;AF=${Number((d / 2).toFixed(4))}` : 'AC=0;AN=0';
    return `${infoText}\tGT\t${gt}`;
  };
  const tails = new Map<number | null, string>([0, 1, 2, null].map((d) => [d, tail(d)]));
  return (id, genotypes) => {
    if (!id || /[\s]/.test(id)) throw new Error(`writeVcf: sample id ${JSON.stringify(id)} is empty or has whitespace`);
    if (genotypes.length !== sites.length)
      throw new Error(`singleSampleVcfWriter: ${genotypes.length} genotypes for ${sites.length} sites`);
    let text = headerPrefix + id + '\n';
    for (let r = 0; r < order.length; r++) {
      const d = genotypes[order[r].i].dosage;
      text += fixed[r] + (tails.get(d === -1 ? null : d) ?? tail(d)) + '\n';
    }
    return text;
  };
}
