/**
 * The simulator's genome model: a synthetic SNP panel in linkage-disequilibrium (LD) blocks,
 * three ancestral populations with different haplotype frequencies, per-site ancestry mixes
 * (population structure differs by site) and a few causal SNPs that raise named condition risks.
 *
 * - Panel: 5 blocks × 4 biallelic SNPs on GRCh38-like coordinates. The positions are SYNTHETIC
 *   (chosen for the simulation, not real variants), so the panel has no rsIDs.
 * - LD: each block has 4 haplotypes; a chromosome copy carries one of them, drawn from its
 *   population's haplotype frequencies. SNPs of one block are therefore correlated; blocks are
 *   independent given ancestry.
 * - Ancestry: each patient belongs to one population, drawn from the site's mix; both copies
 *   come from that population.
 * - Causal effects: per alt allele, the condition's log-odds gain ln(OR) (added in latent.ts).
 * - Calls: 1.5 % of genotypes are no-calls (`./.`).
 * Everything here is written to truth.json (`describeGenomeModel`).
 */
import type { Rng } from '../model/rng.ts';
import type { ConditionName } from './latent.ts';

export interface PanelSnp {
  name: string;
  chrom: string;
  pos: number;
  ref: string;
  alt: string;
  block: number;
}

const BLOCKS: Array<{ chrom: string; start: number; bases: Array<[string, string]> }> = [
  {
    chrom: '10',
    start: 112_950_000,
    bases: [
      ['C', 'T'],
      ['G', 'A'],
      ['A', 'G'],
      ['T', 'C'],
    ],
  },
  {
    chrom: '9',
    start: 22_100_000,
    bases: [
      ['A', 'G'],
      ['C', 'T'],
      ['G', 'C'],
      ['T', 'A'],
    ],
  },
  {
    chrom: '17',
    start: 39_900_000,
    bases: [
      ['G', 'A'],
      ['T', 'C'],
      ['C', 'T'],
      ['A', 'G'],
    ],
  },
  {
    chrom: '19',
    start: 44_880_000,
    bases: [
      ['T', 'C'],
      ['C', 'G'],
      ['A', 'T'],
      ['G', 'A'],
    ],
  },
  {
    chrom: '2',
    start: 27_500_000,
    bases: [
      ['C', 'A'],
      ['A', 'G'],
      ['G', 'T'],
      ['T', 'C'],
    ],
  },
];

/** The panel, in schema order (`snp_b<block>_<k>`). */
export const PANEL: PanelSnp[] = BLOCKS.flatMap((b, bi) =>
  b.bases.map(([ref, alt], k) => ({
    name: `snp_b${bi + 1}_${k + 1}`,
    chrom: b.chrom,
    pos: b.start + 1_200 * k + 137 * bi,
    ref,
    alt,
    block: bi,
  })),
);

/** Haplotypes of every block (alleles of its 4 SNPs). Same shapes in every block. */
export const HAPLOTYPES: number[][] = [
  [0, 0, 0, 0],
  [1, 1, 0, 0],
  [0, 1, 1, 1],
  [1, 0, 1, 1],
];

export const POPULATIONS = ['pop1', 'pop2', 'pop3'] as const;

/** Haplotype frequencies [block][population][haplotype]. */
export const HAPLOTYPE_FREQUENCIES: number[][][] = [
  [
    [0.55, 0.25, 0.15, 0.05],
    [0.3, 0.45, 0.1, 0.15],
    [0.25, 0.15, 0.4, 0.2],
  ],
  [
    [0.4, 0.35, 0.15, 0.1],
    [0.6, 0.1, 0.2, 0.1],
    [0.3, 0.2, 0.2, 0.3],
  ],
  [
    [0.45, 0.2, 0.25, 0.1],
    [0.35, 0.3, 0.15, 0.2],
    [0.55, 0.1, 0.3, 0.05],
  ],
  [
    [0.65, 0.15, 0.1, 0.1],
    [0.4, 0.3, 0.2, 0.1],
    [0.5, 0.1, 0.1, 0.3],
  ],
  [
    [0.3, 0.3, 0.2, 0.2],
    [0.25, 0.25, 0.25, 0.25],
    [0.1, 0.4, 0.4, 0.1],
  ],
];

/** Causal SNPs: odds ratio per alt allele on a condition's odds. */
export const CAUSAL: Array<{ snp: string; condition: ConditionName; oddsRatioPerAllele: number }> = [
  { snp: 'snp_b1_2', condition: 'type2_diabetes', oddsRatioPerAllele: 1.8 },
  { snp: 'snp_b2_1', condition: 'coronary_artery_disease', oddsRatioPerAllele: 1.7 },
  { snp: 'snp_b3_3', condition: 'asthma', oddsRatioPerAllele: 1.8 },
  { snp: 'snp_b4_2', condition: 'hyperlipidemia', oddsRatioPerAllele: 1.7 },
];

export const NO_CALL_RATE = 0.015;

/** Alt-allele frequency of each panel SNP in each population: [snp][population]. */
export function populationAlleleFrequencies(): number[][] {
  return PANEL.map((snp, j) => {
    const k = j % 4;
    return POPULATIONS.map((_, p) => HAPLOTYPES.reduce((acc, h, hi) => acc + h[k] * HAPLOTYPE_FREQUENCIES[snp.block][p][hi], 0));
  });
}

export interface LatentGenome {
  population: number;
  /** Dosage (0/1/2 copies of alt) per panel SNP: the truth, before no-calls. */
  dosage: Int8Array;
  /** Per panel SNP: 0/1 alleles on the two copies (phase), for writing GT. */
  hap: [Uint8Array, Uint8Array];
}

/** Draws a patient's genome from the site's ancestry mix. */
export function drawGenome(ancestry: readonly number[], rng: Rng): LatentGenome {
  const population = rng.weighted(ancestry);
  const dosage = new Int8Array(PANEL.length);
  const h1 = new Uint8Array(PANEL.length);
  const h2 = new Uint8Array(PANEL.length);
  for (let b = 0; b < BLOCKS.length; b++) {
    const freqs = HAPLOTYPE_FREQUENCIES[b][population];
    const a = HAPLOTYPES[rng.weighted(freqs)];
    const c = HAPLOTYPES[rng.weighted(freqs)];
    for (let k = 0; k < 4; k++) {
      const j = b * 4 + k;
      h1[j] = a[k];
      h2[j] = c[k];
      dosage[j] = a[k] + c[k];
    }
  }
  return { population, dosage, hap: [h1, h2] };
}

/** Σ ln(OR)·dosage of the causal SNPs of `condition`. */
export function geneticLogOdds(genome: LatentGenome, condition: ConditionName): number {
  let x = 0;
  for (const c of CAUSAL) {
    if (c.condition !== condition) continue;
    const j = PANEL.findIndex((s) => s.name === c.snp);
    x += Math.log(c.oddsRatioPerAllele) * genome.dosage[j];
  }
  return x;
}

/** Pairwise r² between SNPs of one block within one population (from the haplotype table). */
export function blockR2(block: number, population: number): number[][] {
  const f = HAPLOTYPE_FREQUENCIES[block][population];
  const p = [0, 1, 2, 3].map((k) => HAPLOTYPES.reduce((acc, h, hi) => acc + h[k] * f[hi], 0));
  return [0, 1, 2, 3].map((i) =>
    [0, 1, 2, 3].map((j) => {
      const pij = HAPLOTYPES.reduce((acc, h, hi) => acc + h[i] * h[j] * f[hi], 0);
      const d = pij - p[i] * p[j];
      const den = p[i] * (1 - p[i]) * p[j] * (1 - p[j]);
      return den > 0 ? Number(((d * d) / den).toFixed(4)) : 0;
    }),
  );
}

export function describeGenomeModel(): Record<string, unknown> {
  const af = populationAlleleFrequencies();
  return {
    description:
      'Synthetic SNP panel (positions are simulated, not real variants): 5 LD blocks of 4 biallelic SNPs; each chromosome copy carries one of 4 block haplotypes drawn from its population; each patient has one population drawn from the site ancestry mix; causal SNPs add ln(OR) per alt allele to a condition log-odds; 1.5 % no-calls. Non-panel filler SNPs (independent, no effect) are interleaved in the VCF.',
    panel: PANEL,
    populations: POPULATIONS,
    haplotypes: HAPLOTYPES,
    haplotypeFrequencies: HAPLOTYPE_FREQUENCIES,
    alleleFrequencies: Object.fromEntries(
      PANEL.map((s, j) => [s.name, Object.fromEntries(POPULATIONS.map((p, pi) => [p, Number(af[j][pi].toFixed(4))]))]),
    ),
    ldBlocks: BLOCKS.map((b, bi) => ({
      block: bi + 1,
      chrom: b.chrom,
      snps: PANEL.filter((s) => s.block === bi).map((s) => s.name),
      r2ByPopulation: Object.fromEntries(POPULATIONS.map((p, pi) => [p, blockR2(bi, pi)])),
    })),
    causal: CAUSAL,
    noCallRate: NO_CALL_RATE,
  };
}
