// Genome modality: the public GWAS panel, reference assemblies, VCF 4.2 writer and validator for synthetic genotypes.
export * from './reference.ts';
export * from './vcf-writer.ts';
export * from './validate.ts';
export * from './gwas-panel.ts';
