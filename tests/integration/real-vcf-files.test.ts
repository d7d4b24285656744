// Reads the real public VCF samples in ../shared/data/vcf (or $FEDSYNTH_SAMPLE_DATA/vcf).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  extractPanelGenotypes,
  parseGT,
  readVcfHeader,
  readVcfRecords,
  type SnpPanelEntry,
  type VcfRecord,
} from '../../site-agent/connectors/vcf/index.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';

function sampleDir(sub: string): string | undefined {
  const root = process.env.FEDSYNTH_SAMPLE_DATA ?? resolve(fileURLToPath(new URL('../../', import.meta.url)), '../shared/data');
  const dir = join(root, sub);
  if (!existsSync(dir)) {
    console.warn(`[skip] real VCF samples not found at ${dir}; set FEDSYNTH_SAMPLE_DATA to run these tests`);
    return undefined;
  }
  return dir;
}
const dir = sampleDir('vcf');

async function records(name: string): Promise<{ recs: VcfRecord[]; q: Quarantine }> {
  const q = new Quarantine();
  const recs: VcfRecord[] = [];
  for await (const r of readVcfRecords(join(dir!, name), q)) recs.push(r);
  return { recs, q };
}

describe.skipIf(!dir)('real VCF samples (vcf-js, cyvcf2)', () => {
  it('1000genomes.vcf: 1233 samples on chromosome Y, known haploid genotypes', async () => {
    const q = new Quarantine();
    const h = await readVcfHeader(join(dir!, '1000genomes.vcf'), q);
    expect(h!.fileformat).toBe('VCFv4.1');
    expect(h!.samples).toHaveLength(1233);
    expect(h!.samples[0]).toBe('HG00096');
    expect(h!.contigs).toEqual([{ id: 'Y', length: 59373566 }]);
    const panel: SnpPanelEntry[] = [
      { rsid: 'rs11575897', chrom: 'chrY', pos: 2655180, ref: 'G', alt: 'A' },
      { chrom: 'Y', pos: 2655471, ref: 'A', alt: 'C' },
    ];
    const r = await extractPanelGenotypes(join(dir!, '1000genomes.vcf'), panel, q);
    expect(r.found).toEqual([true, true]);
    expect(r.patients.size).toBe(1233);
    // AC=22 and AC=5 in the INFO column; these samples carry the alt allele.
    const carriers = (i: number) => [...r.patients.values()].filter((d) => d[i] === 1).length;
    expect(carriers(0)).toBe(22);
    expect(carriers(1)).toBe(5);
    expect(r.patients.get('HG00530')![0]).toBe(1);
    expect(r.patients.get('HG00982')![1]).toBe(1);
    expect(Array.from(r.patients.get('HG00096')!)).toEqual([0, 0]);
    expect(q.records).toEqual([]);
  });

  it('1000genomes.vcf.gz (bgzipped here) reads identically to the plain file', async () => {
    const plain = await records('1000genomes.vcf');
    const gz = await records('1000genomes.vcf.gz');
    expect(gz.recs).toEqual(plain.recs);
    expect(gz.q.records).toEqual([]);
  });

  it('cyvcf2_test.vcf.gz: 189 samples, 115 records, 16 indels, GT calls and ./. counted', async () => {
    const path = join(dir!, 'cyvcf2_test.vcf.gz');
    const { recs, q } = await records('cyvcf2_test.vcf.gz');
    expect(recs).toHaveLength(115);
    expect(recs[0]!.sampleFields).toHaveLength(189);
    expect(recs.every((r) => r.chrom === '1')).toBe(true);
    expect(recs.filter((r) => r.ref.length !== 1 || r.alts[0]!.length !== 1)).toHaveLength(16);
    expect(q.records).toEqual([]);

    // Every biallelic SNV in the panel: dosage counts match a direct count of the file.
    const panel = recs
      .filter((r) => r.ref.length === 1 && r.alts.length === 1 && r.alts[0]!.length === 1)
      .map((r) => ({ chrom: r.chrom, pos: r.pos, ref: r.ref, alt: r.alts[0]! }));
    expect(panel).toHaveLength(99);
    const res = await extractPanelGenotypes(path, panel, q);
    expect(res.header!.samples).toHaveLength(189);
    expect(res.found.every(Boolean)).toBe(true);
    const counts = new Map<number, number>();
    for (const d of res.patients.values()) for (const v of d) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ 0: 14313, 1: 3509, 2: 267, [-1]: 622 });
    // A known genotype: sample 101935-101935 is 1/1 at 1:10583 G>A, 100231-100231 is 0/1 there.
    const i = panel.findIndex((p) => p.pos === 10583);
    expect(res.patients.get('101935-101935')![i]).toBe(2);
    expect(res.patients.get('100231-100231')![i]).toBe(1);
    expect(res.stats.genotypes).toBe(99 * 189);
  });

  it('y-chrom-haploid.vcf: haploid GTs parse as single alleles', async () => {
    const { recs, q } = await records('y-chrom-haploid.vcf');
    expect(recs).toHaveLength(2);
    const gts = recs.flatMap((r) => r.sampleFields.map((f) => parseGT(f)));
    expect(gts.every((g) => g !== undefined && g.alleles.length === 1)).toBe(true);
    expect(gts.some((g) => g!.alleles[0] === -1)).toBe(true); // a '.' call
    expect(q.records).toEqual([]);
    const res = await extractPanelGenotypes(join(dir!, 'y-chrom-haploid.vcf'), [{ chrom: 'Y', pos: 2655180, ref: 'G', alt: 'A' }], q);
    expect([...res.patients.values()].map((d) => d[0])).toEqual([0, 0, 0, -1]);
  });

  it('spec-example.vcf (header only, VCFv4.3, 3 samples) and header-only files without FORMAT', async () => {
    const q = new Quarantine();
    const h = await readVcfHeader(join(dir!, 'spec-example.vcf'), q);
    expect(h!.fileformat).toBe('VCFv4.3');
    expect(h!.samples).toEqual(['NA00001', 'NA00002', 'NA00003']);
    expect(h!.contigs[0]).toEqual({ id: '20', length: 62435964 });
    const h2 = await readVcfHeader(join(dir!, 'sample2genotype.vcf'), q);
    expect(h2!.samples).toEqual([]);
    const h3 = await readVcfHeader(join(dir!, 'pedigree.vcf'), q); // no ##fileformat line: accepted
    expect(h3!.fileformat).toBe('');
    expect(q.records).toEqual([]);
  });
});
