/**
 * Site-side genome features: the schema's SNP panel as a connector panel, and dosage → codes.
 * Pure. Code = alt-allele dosage 0/1/2 (a haploid call counts its one allele), SNP_MISSING for a
 * no-call, a SNP absent from the VCF, or a patient without a genome.
 */
import { SNP_MISSING, snpPanel, type Schema, type SnpAttribute } from '../../schema/schema.ts';
import type { SnpPanelEntry } from '../connectors/vcf/index.ts';

export function connectorPanel(schema: Schema): { attrs: SnpAttribute[]; panel: SnpPanelEntry[] } {
  const attrs = snpPanel(schema);
  return { attrs, panel: attrs.map((a) => ({ chrom: a.chrom, pos: a.pos, ref: a.ref, alt: a.alt, ...(a.rsid ? { rsid: a.rsid } : {}) })) };
}

/** Codes of one dosage vector (panel order). */
export function snpCodes(dosage: Int8Array | undefined, n: number): Uint8Array {
  const out = new Uint8Array(n).fill(SNP_MISSING);
  if (!dosage) return out;
  for (let j = 0; j < n; j++) {
    const d = dosage[j]!;
    if (d >= 0 && d <= 2) out[j] = d;
  }
  return out;
}
