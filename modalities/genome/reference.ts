/**
 * Reference assemblies: primary chromosome lengths and RefSeq accessions for GRCh37 and
 * GRCh38 (public constants from the Genome Reference Consortium assembly reports), and the
 * canonical chromosome order 1..22, X, Y, MT used to sort VCF records. Pure data.
 */

export type ReferenceBuild = 'GRCh37' | 'GRCh38';

export const CHROMOSOMES = [
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  '8',
  '9',
  '10',
  '11',
  '12',
  '13',
  '14',
  '15',
  '16',
  '17',
  '18',
  '19',
  '20',
  '21',
  '22',
  'X',
  'Y',
  'MT',
] as const;

const LENGTHS: Record<ReferenceBuild, number[]> = {
  GRCh37: [
    249250621, 243199373, 198022430, 191154276, 180915260, 171115067, 159138663, 146364022, 141213431, 135534747, 135006516, 133851895,
    115169878, 107349540, 102531392, 90354753, 81195210, 78077248, 59128983, 63025520, 48129895, 51304566, 155270560, 59373566, 16569,
  ],
  GRCh38: [
    248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973, 145138636, 138394717, 133797422, 135086622, 133275309,
    114364328, 107043718, 101991189, 90338345, 83257441, 80373285, 58617616, 64444167, 46709983, 50818468, 156040895, 57227415, 16569,
  ],
};

const REFSEQ: Record<ReferenceBuild, string[]> = {
  GRCh37: [
    'NC_000001.10',
    'NC_000002.11',
    'NC_000003.11',
    'NC_000004.11',
    'NC_000005.9',
    'NC_000006.11',
    'NC_000007.13',
    'NC_000008.10',
    'NC_000009.11',
    'NC_000010.10',
    'NC_000011.9',
    'NC_000012.11',
    'NC_000013.10',
    'NC_000014.8',
    'NC_000015.9',
    'NC_000016.9',
    'NC_000017.10',
    'NC_000018.9',
    'NC_000019.9',
    'NC_000020.10',
    'NC_000021.8',
    'NC_000022.10',
    'NC_000023.10',
    'NC_000024.9',
    'NC_012920.1',
  ],
  GRCh38: [
    'NC_000001.11',
    'NC_000002.12',
    'NC_000003.12',
    'NC_000004.12',
    'NC_000005.10',
    'NC_000006.12',
    'NC_000007.14',
    'NC_000008.11',
    'NC_000009.12',
    'NC_000010.11',
    'NC_000011.10',
    'NC_000012.12',
    'NC_000013.11',
    'NC_000014.9',
    'NC_000015.10',
    'NC_000016.10',
    'NC_000017.11',
    'NC_000018.10',
    'NC_000019.10',
    'NC_000020.11',
    'NC_000021.9',
    'NC_000022.11',
    'NC_000023.11',
    'NC_000024.10',
    'NC_012920.1',
  ],
};

/** LOINC answer codes of "Human reference sequence assembly version" (62374-4). */
export const ASSEMBLY_LOINC_ANSWER: Record<ReferenceBuild, { code: string; display: string }> = {
  GRCh37: { code: 'LA14029-5', display: 'GRCh37' },
  GRCh38: { code: 'LA26806-2', display: 'GRCh38' },
};

type Chromosome = (typeof CHROMOSOMES)[number];
/** canonicalChrom by input: a cohort names the same few contigs tens of times per patient. */
const canonicalCache = new Map<string, Chromosome | null>();

/** Chromosome name without "chr", upper case, M → MT; undefined when not a primary chromosome. */
export function canonicalChrom(chrom: string): Chromosome | undefined {
  let hit = canonicalCache.get(chrom);
  if (hit === undefined) {
    hit = parseChrom(chrom) ?? null;
    if (canonicalCache.size >= 1024) canonicalCache.clear();
    canonicalCache.set(chrom, hit);
  }
  return hit ?? undefined;
}

function parseChrom(chrom: string): Chromosome | undefined {
  let c = chrom.trim();
  if (/^chr/i.test(c)) c = c.slice(3);
  c = c.toUpperCase();
  if (c === 'M') c = 'MT';
  return (CHROMOSOMES as readonly string[]).includes(c) ? (c as Chromosome) : undefined;
}

/** Sort rank of a chromosome (0 for chr1 … 24 for MT); throws on unknown contigs. */
export function chromRank(chrom: string): number {
  const c = canonicalChrom(chrom);
  if (c === undefined) throw new Error(`unknown chromosome ${JSON.stringify(chrom)} (expected 1-22, X, Y, MT)`);
  return CHROMOSOMES.indexOf(c);
}

export function chromLength(build: ReferenceBuild, chrom: string): number {
  const l = LENGTHS[build];
  if (!l) throw new Error(`unknown reference build ${JSON.stringify(build)} (GRCh37, GRCh38)`);
  return l[chromRank(chrom)];
}

export function refSeqAccession(build: ReferenceBuild, chrom: string): string {
  return REFSEQ[build][chromRank(chrom)];
}

/** The contig name written in a VCF: "chr1" style by default for GRCh38 (UCSC/GATK bundle), "1" for GRCh37. */
export function vcfContigName(build: ReferenceBuild, chrom: string, style?: 'chr' | 'plain'): string {
  const c = canonicalChrom(chrom);
  if (c === undefined) throw new Error(`unknown chromosome ${JSON.stringify(chrom)}`);
  const s = style ?? (build === 'GRCh38' ? 'chr' : 'plain');
  return s === 'chr' ? (c === 'MT' ? 'chrM' : `chr${c}`) : c;
}
