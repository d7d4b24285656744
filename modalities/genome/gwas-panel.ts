/**
 * The federation's SNP panel: published GWAS variants for the schema's conditions, with their
 * dbSNP id, GRCh38 position, the GRCh38 reference base (REF) and the other allele (ALT), public
 * alt-allele frequencies by 1000 Genomes super-population, and per-alt-allele odds ratios taken
 * from (or, where marked, modelled on) the literature. Pure public data: it feeds the schema's
 * snp attributes, the simulator and the documentation (docs/modalities.md, "Genome panel").
 *
 * Positions and alleles are GRCh38 forward strand. Each position was found in at least one public
 * record of the variant (Ensembl REST/VEP notation, Open Targets or 1000 Genomes variant ids,
 * GWAS Catalog leads); for coding SNPs the REF follows the coding change on the gene's strand.
 * `evidence` names what was used.
 * Allele frequencies are 1000 Genomes phase 3 super-population frequencies as shown by
 * Ensembl/dbSNP, rounded to 0.01. Entries are in GRCh38 chromosome/position order, the schema's
 * order. Odds ratios are per copy of ALT: a risk allele that is the REF
 * base gives an OR below 1 here.
 */

export type SuperPopulation = 'EUR' | 'AFR' | 'EAS';
export const SUPER_POPULATIONS: readonly SuperPopulation[] = ['EUR', 'AFR', 'EAS'];

export interface PanelEffect {
  /** A condition attribute of the schema. */
  condition: string;
  /** Odds ratio per copy of the ALT allele. */
  oddsRatioPerAlt: number;
  /** The published risk allele (ALT or REF). */
  riskAllele: string;
  /** Where the size comes from; "modelled" when no single published OR exists for the coded condition. */
  source: string;
  modelled?: boolean;
}

export interface GwasPanelSnp {
  /** Schema attribute name. */
  name: string;
  rsid: string;
  /** HGNC symbol of the gene the variant sits in or near (FHIR 48018-6). */
  gene: string;
  chrom: string;
  /** 1-based GRCh38 position. */
  pos: number;
  /** GRCh38 reference base at `pos`. */
  ref: string;
  alt: string;
  /** Alt-allele frequency per super-population. */
  altFrequency: Record<SuperPopulation, number>;
  effects: PanelEffect[];
  /** How the position and alleles were checked. */
  evidence: string;
}

export const GWAS_PANEL: readonly GwasPanelSnp[] = [
  {
    name: 'snp_agt',
    rsid: 'rs699',
    gene: 'AGT',
    chrom: '1',
    pos: 230710048,
    ref: 'A',
    alt: 'G',
    altFrequency: { EUR: 0.41, AFR: 0.89, EAS: 0.79 },
    effects: [
      {
        condition: 'hypertension',
        oddsRatioPerAlt: 1.1,
        riskAllele: 'G',
        source: 'M235T (G) meta-analyses in Europeans report hypertension OR ~1.08-1.2 per allele (Sethi et al. 2003 ATVB 23:1269)',
      },
    ],
    evidence: 'Ensembl REST mapping 1:230710048 allele_string A/G on GRCh38 (strand 1); AGT reverse strand, p.Met268Thr',
  },
  {
    name: 'snp_pparg',
    rsid: 'rs1801282',
    gene: 'PPARG',
    chrom: '3',
    pos: 12351626,
    ref: 'C',
    alt: 'G',
    altFrequency: { EUR: 0.12, AFR: 0.01, EAS: 0.04 },
    effects: [
      {
        condition: 'type2_diabetes',
        oddsRatioPerAlt: 0.88,
        riskAllele: 'C',
        source: 'Pro12 (C) risk OR 1.14 per allele, Zeggini et al. 2008 Nat Genet 40:638 (PMID 18372903); 1/1.14 per Ala (G)',
      },
    ],
    evidence: 'coding change NM_015869 c.34C>G p.Pro12Ala (PPARG on the forward strand); GRCh37 3:12393125',
  },
  {
    name: 'snp_slc30a8',
    rsid: 'rs13266634',
    gene: 'SLC30A8',
    chrom: '8',
    pos: 117172544,
    ref: 'C',
    alt: 'T',
    altFrequency: { EUR: 0.3, AFR: 0.08, EAS: 0.42 },
    effects: [
      {
        condition: 'type2_diabetes',
        oddsRatioPerAlt: 0.89,
        riskAllele: 'C',
        source: 'Arg325 (C) risk OR 1.12 per allele, Sladek et al. 2007 Nature 445:881 (PMID 17293876); 1/1.12 per Trp (T)',
      },
    ],
    evidence: 'coding change c.973C>T p.Arg325Trp (forward-strand gene); GRCh37 8:118184783',
  },
  {
    name: 'snp_9p21',
    rsid: 'rs1333049',
    gene: 'CDKN2B-AS1',
    chrom: '9',
    pos: 22125504,
    ref: 'G',
    alt: 'C',
    altFrequency: { EUR: 0.47, AFR: 0.21, EAS: 0.5 },
    effects: [
      {
        condition: 'coronary_artery_disease',
        oddsRatioPerAlt: 1.29,
        riskAllele: 'C',
        source: 'CARDIoGRAM, Schunkert et al. 2011 Nat Genet 43:333 (PMID 21378990), 9p21 OR 1.29; WTCCC 2007 (PMID 17554300)',
      },
    ],
    evidence: 'Ensembl VEP example 9:g.22125504G>C; GWAS Catalog GCST003116 lead',
  },
  {
    name: 'snp_tcf7l2',
    rsid: 'rs7903146',
    gene: 'TCF7L2',
    chrom: '10',
    pos: 112998590,
    ref: 'C',
    alt: 'T',
    altFrequency: { EUR: 0.29, AFR: 0.27, EAS: 0.03 },
    effects: [
      {
        condition: 'type2_diabetes',
        oddsRatioPerAlt: 1.4,
        riskAllele: 'T',
        source: 'Grant et al. 2006 Nat Genet 38:320 (PMID 16415884); DIAGRAM meta-analyses report 1.37-1.40',
      },
    ],
    evidence: 'Open Targets variant 10_112998590_C_T; GRCh37 10:114758349',
  },
  {
    name: 'snp_kcnj11',
    rsid: 'rs5219',
    gene: 'KCNJ11',
    chrom: '11',
    pos: 17388025,
    ref: 'T',
    alt: 'C',
    altFrequency: { EUR: 0.63, AFR: 0.93, EAS: 0.6 },
    effects: [
      {
        condition: 'type2_diabetes',
        oddsRatioPerAlt: 0.88,
        riskAllele: 'T',
        source: 'Lys23 (T) risk OR 1.14 per allele, Zeggini et al. 2008 (PMID 18372903); 1/1.14 per Glu (C)',
      },
    ],
    evidence: 'coding change c.67A>G p.Lys23Glu on the reverse-strand gene = T>C forward; GRCh37 11:17409572',
  },
  {
    name: 'snp_chrna5',
    rsid: 'rs16969968',
    gene: 'CHRNA5',
    chrom: '15',
    pos: 78590583,
    ref: 'G',
    alt: 'A',
    altFrequency: { EUR: 0.34, AFR: 0.01, EAS: 0.02 },
    effects: [
      {
        condition: 'copd',
        oddsRatioPerAlt: 1.3,
        riskAllele: 'A',
        source:
          'Pillai et al. 2009 PLoS Genet 5:e1000421 (PMID 19300482), 15q25 OR ~1.3 via rs1051730 (r2 ~1 with rs16969968 in Europeans, Thorgeirsson et al. 2008, PMID 18385739)',
      },
    ],
    evidence: 'coding change c.1192G>A p.Asp398Asn (forward-strand gene); GWAS lung-cancer lead 15:78590583',
  },
  {
    name: 'snp_fto',
    rsid: 'rs9939609',
    gene: 'FTO',
    chrom: '16',
    pos: 53786615,
    ref: 'T',
    alt: 'A',
    altFrequency: { EUR: 0.41, AFR: 0.48, EAS: 0.13 },
    effects: [
      {
        condition: 'obesity',
        oddsRatioPerAlt: 1.31,
        riskAllele: 'A',
        source: 'Frayling et al. 2007 Science 316:889 (PMID 17434869), obesity OR 1.31 per A',
      },
    ],
    evidence: 'GWAS Catalog BMI lead 16:53786615 (A/T); dbSNP T>A',
  },
  {
    name: 'snp_17q21',
    rsid: 'rs7216389',
    gene: 'GSDMB',
    chrom: '17',
    pos: 39913696,
    ref: 'C',
    alt: 'T',
    altFrequency: { EUR: 0.52, AFR: 0.8, EAS: 0.68 },
    effects: [
      {
        condition: 'asthma',
        oddsRatioPerAlt: 1.45,
        riskAllele: 'T',
        source: 'Moffatt et al. 2007 Nature 448:470 (PMID 17611496), childhood asthma OR 1.45 per T',
      },
    ],
    evidence: '1000 Genomes high-coverage id 17:39913696:C:T (GRCh38)',
  },
  {
    name: 'snp_mc4r',
    rsid: 'rs17782313',
    gene: 'MC4R',
    chrom: '18',
    pos: 60183864,
    ref: 'T',
    alt: 'C',
    altFrequency: { EUR: 0.24, AFR: 0.17, EAS: 0.25 },
    effects: [
      {
        condition: 'obesity',
        oddsRatioPerAlt: 1.12,
        riskAllele: 'C',
        source: 'Loos et al. 2008 Nat Genet 40:768 (PMID 18454148), adult obesity OR 1.12 per C',
      },
    ],
    evidence: 'GWAS Catalog BMI lead 18:60183864 (C/T); dbSNP T>C',
  },
  {
    name: 'snp_apoe_e4',
    rsid: 'rs429358',
    gene: 'APOE',
    chrom: '19',
    pos: 44908684,
    ref: 'T',
    alt: 'C',
    altFrequency: { EUR: 0.16, AFR: 0.27, EAS: 0.09 },
    effects: [
      {
        condition: 'coronary_artery_disease',
        oddsRatioPerAlt: 1.06,
        riskAllele: 'C',
        source: 'epsilon4 carriers vs e3/e3 OR 1.06, Bennet et al. 2007 JAMA 298:1300 (PMID 17878422)',
      },
      {
        condition: 'hyperlipidemia',
        oddsRatioPerAlt: 1.2,
        riskAllele: 'C',
        source: 'modelled: epsilon4 raises LDL-C (Bennet et al. 2007); no single published OR for coded hyperlipidemia',
        modelled: true,
      },
    ],
    evidence: 'coding change NM_000041 c.388T>C p.Cys130Arg (forward-strand gene); GRCh37 19:45411941',
  },
  {
    name: 'snp_apoe_e2',
    rsid: 'rs7412',
    gene: 'APOE',
    chrom: '19',
    pos: 44908822,
    ref: 'C',
    alt: 'T',
    altFrequency: { EUR: 0.06, AFR: 0.1, EAS: 0.1 },
    effects: [
      {
        condition: 'coronary_artery_disease',
        oddsRatioPerAlt: 0.87,
        riskAllele: 'C',
        source: 'e2/e3 vs e3/e3 OR 0.87, UK Biobank, Kuo et al. 2020 Aging 12:12222',
      },
      {
        condition: 'hypertension',
        oddsRatioPerAlt: 0.94,
        riskAllele: 'C',
        source: 'e2/e3 vs e3/e3 OR 0.94, UK Biobank, Kuo et al. 2020 Aging 12:12222',
      },
      {
        condition: 'hyperlipidemia',
        oddsRatioPerAlt: 0.75,
        riskAllele: 'C',
        source: 'modelled: epsilon2 lowers LDL-C (Bennet et al. 2007; Kuo et al. 2020); no single published OR for coded hyperlipidemia',
        modelled: true,
      },
    ],
    evidence: 'coding change NM_000041 c.526C>T p.Arg176Cys (forward-strand gene); GRCh37 19:45412079',
  },
];

/**
 * SNPs whose ALT alleles are never on the same chromosome: a haplotype carries at most one of
 * them. APOE ε4 (rs429358 C) and ε2 (rs7412 T) define the three common APOE alleles ε2/ε3/ε4;
 * the ε1 haplotype that would carry both is very rare, so the pair is in complete LD (D′ = 1)
 * with r² ≈ p₂p₄/((1 − p₂)(1 − p₄)) ≈ 0.01.
 */
export const EXCLUSIVE_ALT_HAPLOTYPES: readonly (readonly string[])[] = [['rs429358', 'rs7412']];

/** Panel entries by schema attribute name. */
export function panelSnp(name: string): GwasPanelSnp | undefined {
  return GWAS_PANEL.find((s) => s.name === name);
}
