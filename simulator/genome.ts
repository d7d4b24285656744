/**
 * The simulator's genome model, on the public GWAS panel (modalities/genome/gwas-panel.ts):
 *
 * - Ancestry: each patient belongs to one 1000 Genomes super-population (EUR, AFR, EAS), drawn
 *   from the site's mix; the panel's alt-allele frequencies differ by population.
 * - Genotypes: Hardy–Weinberg within the population, i.e. each of the two copies carries ALT
 *   with the population's frequency. The panel's loci are on different chromosomes and drawn
 *   independently, except the two APOE SNPs: each copy carries one APOE allele (ε2, ε3 or ε4)
 *   drawn with the population's ε2/ε4 frequencies, so ε2 and ε4 are never on one chromosome
 *   (`EXCLUSIVE_ALT_HAPLOTYPES`).
 * - Effects: a condition's log-odds gains Σ ln(OR)·(dosage − 2p) over its panel SNPs (OR per ALT
 *   copy from the literature, p the population's ALT frequency); centring on the expected dosage
 *   keeps each condition's prevalence where the latent model puts it, so genetics shifts risk
 *   between patients without inflating it.
 * - Calls: a site's genotyping array may lack panel SNPs entirely (`SiteProfile.arrayLacks`:
 *   those records are absent from its VCF), and each remaining call fails with probability
 *   `NO_CALL_RATE` (a `./.` in the VCF). No other missingness.
 * Everything here is written to truth.json (`describeGenomeModel`).
 */
import type { Rng } from '../model/rng.ts';
import { EXCLUSIVE_ALT_HAPLOTYPES, GWAS_PANEL, SUPER_POPULATIONS, type GwasPanelSnp } from '../modalities/genome/gwas-panel.ts';
import type { ConditionName } from './latent.ts';

export type PanelSnp = GwasPanelSnp;

/** The panel, in schema order. */
export const PANEL: readonly PanelSnp[] = GWAS_PANEL;

export const POPULATIONS = SUPER_POPULATIONS;

/** Per-call genotyping failure on an array that carries the SNP (typical array call rates are 99-99.5 %). */
export const NO_CALL_RATE = 0.008;

/** Alt-allele frequency of each panel SNP in each population: [snp][population]. */
export function populationAlleleFrequencies(): number[][] {
  return PANEL.map((s) => POPULATIONS.map((p) => s.altFrequency[p]));
}

/** Per condition: [panel index, ln OR per alt copy]. */
const EFFECTS = new Map<string, Array<[number, number]>>();
PANEL.forEach((s, j) => {
  for (const e of s.effects) {
    if (!(e.oddsRatioPerAlt > 0)) throw new Error(`panel ${s.name}: odds ratio must be positive`);
    const list = EFFECTS.get(e.condition) ?? [];
    list.push([j, Math.log(e.oddsRatioPerAlt)]);
    EFFECTS.set(e.condition, list);
  }
});

/** Panel indices of each exclusive-ALT group, and of each SNP's group (−1 when independent). */
const GROUPS: number[][] = EXCLUSIVE_ALT_HAPLOTYPES.map((g) =>
  g.map((rsid) => {
    const j = PANEL.findIndex((s) => s.rsid === rsid);
    if (j < 0) throw new Error(`exclusive haplotype group names ${rsid}, which is not in the panel`);
    return j;
  }),
);
const GROUP_OF = PANEL.map((_, j) => GROUPS.findIndex((g) => g.includes(j)));
for (const g of GROUPS)
  for (const p of SUPER_POPULATIONS)
    if (g.reduce((a, j) => a + PANEL[j].altFrequency[p], 0) >= 1) throw new Error(`exclusive ALT frequencies exceed 1 in ${p}`);

export interface LatentGenome {
  population: number;
  /** Dosage (0/1/2 copies of alt) per panel SNP: the truth, before no-calls. */
  dosage: Int8Array;
  /** Per panel SNP: 0/1 alleles on the two copies, for writing GT. */
  hap: [Uint8Array, Uint8Array];
}

/** Draws a patient's genome: a population from the site's mix, then each SNP under Hardy–Weinberg. */
export function drawGenome(ancestry: readonly number[], rng: Rng): LatentGenome {
  if (ancestry.length !== POPULATIONS.length)
    throw new Error(`ancestry mix needs ${POPULATIONS.length} weights (${POPULATIONS.join(', ')})`);
  const population = rng.weighted(ancestry);
  const pop = POPULATIONS[population];
  const n = PANEL.length;
  const dosage = new Int8Array(n);
  const h1 = new Uint8Array(n);
  const h2 = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    if (GROUP_OF[j] >= 0) continue;
    const p = PANEL[j].altFrequency[pop];
    h1[j] = +rng.bernoulli(p);
    h2[j] = +rng.bernoulli(p);
  }
  // One allele of the group per copy: ALT of member k with its frequency, else REF at all members.
  for (const g of GROUPS)
    for (const h of [h1, h2]) {
      let u = rng.next();
      for (const j of g) {
        const p = PANEL[j].altFrequency[pop];
        if (u < p) {
          h[j] = 1;
          break;
        }
        u -= p;
      }
    }
  for (let j = 0; j < n; j++) dosage[j] = h1[j] + h2[j];
  return { population, dosage, hap: [h1, h2] };
}

/** Σ ln(OR)·(dosage − 2p) over the panel SNPs with a published effect on `condition`. */
export function geneticLogOdds(genome: LatentGenome, condition: ConditionName): number {
  const effects = EFFECTS.get(condition);
  if (!effects) return 0;
  const pop = POPULATIONS[genome.population];
  let x = 0;
  for (const [j, lnOr] of effects) x += lnOr * (genome.dosage[j] - 2 * PANEL[j].altFrequency[pop]);
  return x;
}

/** The (SNP, condition, OR) links the simulator plants, for truth.json and the signal checks. */
export const CAUSAL: Array<{ snp: string; condition: ConditionName; oddsRatioPerAllele: number }> = PANEL.flatMap((s) =>
  s.effects.map((e) => ({ snp: s.name, condition: e.condition as ConditionName, oddsRatioPerAllele: e.oddsRatioPerAlt })),
);

export function describeGenomeModel(): Record<string, unknown> {
  return {
    description:
      "Published GWAS panel (modalities/genome/gwas-panel.ts): GRCh38 positions, REF = GRCh38 base, rsIDs. Each patient has one 1000 Genomes super-population drawn from the site mix; each SNP is drawn under Hardy–Weinberg from that population's alt-allele frequency; loci are unlinked and drawn independently except APOE, where each copy carries one of ε2/ε3/ε4 (rs7412 T / neither / rs429358 C), so ε2 and ε4 never share a chromosome. A condition's log-odds gains Σ ln(OR)·(dosage − 2p) over its SNPs. Missing calls: SNPs a site's array lacks are absent from its VCF; other calls fail with probability noCallRate.",
    panel: PANEL.map(({ name, rsid, gene, chrom, pos, ref, alt }) => ({ name, rsid, gene, chrom, pos, ref, alt })),
    populations: POPULATIONS,
    alleleFrequencies: Object.fromEntries(PANEL.map((s) => [s.name, s.altFrequency])),
    causal: CAUSAL,
    exclusiveAltHaplotypes: EXCLUSIVE_ALT_HAPLOTYPES,
    noCallRate: NO_CALL_RATE,
  };
}
