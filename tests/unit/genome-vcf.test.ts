import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chromLength,
  chromRank,
  gtFromDosage,
  refSeqAccession,
  singleSampleVcfWriter,
  validateVcf,
  vcfContigName,
  writeVcf,
  type Genotype,
} from '../../modalities/genome/index.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { extractPanelGenotypes, readVcfHeader, readVcfRecords } from '../../site-agent/connectors/vcf/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-genome-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Deliberately unsorted: X before 2, 10 before 2, positions out of order on chr1.
const PANEL: Omit<Genotype, 'dosage'>[] = [
  { rsid: 'rs7903146', chrom: '10', pos: 112998590, ref: 'C', alt: 'T', gene: 'TCF7L2' },
  { rsid: 'rs5000', chrom: 'X', pos: 1000, ref: 'G', alt: 'A' },
  { rsid: 'rs2000', chrom: '1', pos: 5000, ref: 'A', alt: 'G' },
  { rsid: 'rs1000', chrom: '1', pos: 1000, ref: 'C', alt: 'T' },
  { rsid: 'rs3000', chrom: '2', pos: 300, ref: 'T', alt: 'C' },
  { chrom: 'MT', pos: 73, ref: 'A', alt: 'G' },
];

function genotypes(dosages: (number | null)[]): Genotype[] {
  return PANEL.map((p, i) => ({ ...p, dosage: dosages[i] }));
}

describe('reference', () => {
  it('knows chromosome order, lengths, RefSeq accessions and contig naming', () => {
    expect(chromRank('chr1')).toBe(0);
    expect(chromRank('X')).toBe(22);
    expect(chromRank('chrM')).toBe(24);
    expect(chromLength('GRCh38', 'chr1')).toBe(248956422);
    expect(chromLength('GRCh37', '1')).toBe(249250621);
    expect(refSeqAccession('GRCh38', '7')).toBe('NC_000007.14');
    expect(refSeqAccession('GRCh37', 'X')).toBe('NC_000023.10');
    expect(vcfContigName('GRCh38', '1')).toBe('chr1');
    expect(vcfContigName('GRCh38', 'MT')).toBe('chrM');
    expect(vcfContigName('GRCh37', 'chr1')).toBe('1');
    expect(() => chromRank('chrUn_gl000220')).toThrow();
  });
  it('maps dosage to GT', () => {
    expect([0, 1, 2, -1, null].map(gtFromDosage)).toEqual(['0/0', '0/1', '1/1', './.', './.']);
    expect(() => gtFromDosage(3)).toThrow();
  });
});

describe('VCF writer', () => {
  it('writes a valid single-sample VCF 4.2 with header, sorted records and GT from dosage', () => {
    const text = writeVcf([{ id: 'patient-1', genotypes: genotypes([2, 1, 0, 1, -1, 1]) }], { build: 'GRCh38', fileDate: '2025-01-01' });
    const lines = text.split('\n');
    expect(lines[0]).toBe('##fileformat=VCFv4.2');
    expect(lines).toContain('##fileDate=20250101');
    expect(lines).toContain('##reference=GRCh38');
    expect(lines).toContain('##contig=<ID=chr1,length=248956422,assembly=GRCh38>');
    expect(lines).toContain('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">');
    const contigs = lines.filter((l) => l.startsWith('##contig'));
    expect(contigs.map((l) => /ID=([^,]+)/.exec(l)![1])).toEqual(['chr1', 'chr2', 'chr10', 'chrX', 'chrM']);
    const recs = lines.filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t'));
    expect(recs.map((r) => `${r[0]}:${r[1]}`)).toEqual(['chr1:1000', 'chr1:5000', 'chr2:300', 'chr10:112998590', 'chrX:1000', 'chrM:73']);
    expect(recs.map((r) => r[9])).toEqual(['0/1', '0/0', './.', '1/1', '0/1', '0/1']);
    expect(recs[0].slice(2, 9)).toEqual(['rs1000', 'C', 'T', '.', 'PASS', 'AC=1;AN=2;AF=0.5', 'GT']);
    expect(recs[5][2]).toBe('.');
    const v = validateVcf(text);
    expect(v.errors).toEqual([]);
    expect(v.samples).toEqual(['patient-1']);
    expect(v.records).toHaveLength(6);
  });

  it('writes a multi-sample cohort VCF over the union of sites (./. where a sample lacks one)', () => {
    const a = { id: 'A', genotypes: genotypes([0, 1, 2, 0, 1, 0]) };
    const b = { id: 'B', genotypes: genotypes([1, 1, 1, 1, 1, 1]).slice(0, 4) };
    const text = writeVcf([a, b], { build: 'GRCh37', fileDate: '20240102' });
    const v = validateVcf(text);
    expect(v.errors).toEqual([]);
    expect(v.samples).toEqual(['A', 'B']);
    const byId = new Map(v.records.map((r) => [r.id, r]));
    expect(byId.get('rs3000')!.gt).toEqual(['0/1', './.']);
    expect(byId.get('rs3000')!.info).toEqual({ AC: '1', AN: '2', AF: '0.5' });
    expect(byId.get('rs2000')!.gt).toEqual(['1/1', '0/1']);
    expect(byId.get('rs2000')!.info.AC).toBe('3');
    expect(v.records[0].chrom).toBe('1');
  });

  it('the single-sample writer gives writeVcf’s exact text for every dosage, build, style and INFO choice', () => {
    const dosages = [0, 1, 2, null, -1];
    for (const build of ['GRCh38', 'GRCh37'] as const)
      for (const chromStyle of [undefined, 'chr', 'plain'] as const)
        for (const info of [undefined, false]) {
          const opts = { build, fileDate: '2026-12-07', source: 'fedsynth-cohort', chromStyle, info };
          const write = singleSampleVcfWriter(
            PANEL.map((g) => ({ ...g, dosage: 0 })),
            opts,
          );
          for (let t = 0; t < 12; t++) {
            // Every dosage at every site over the twelve samples (shifted per sample), unsorted panel.
            const ds = PANEL.map((_, i) => dosages[(i + t) % dosages.length]);
            const id = `P-${t}`;
            const genotypes = PANEL.map((g, i) => ({ ...g, dosage: ds[i] }));
            expect(write(id, genotypes)).toBe(writeVcf([{ id, genotypes }], opts));
          }
        }
    const write = singleSampleVcfWriter(
      PANEL.map((g) => ({ ...g, dosage: 0 })),
      { build: 'GRCh38', fileDate: '2026-12-07' },
    );
    const all = (dosage: number) => PANEL.map(() => ({ dosage }));
    expect(() => write('has space', all(0))).toThrow(/empty or has whitespace/);
    expect(() => write('P', [{ dosage: 0 }])).toThrow(/1 genotypes for 6 sites/);
    expect(() => write('P', all(3))).toThrow(/dosage must be 0, 1, 2 or missing/);
    // The sites are checked as writeVcf checks them.
    expect(() => singleSampleVcfWriter([{ ...PANEL[0], dosage: 0, pos: 0 }], { build: 'GRCh38', fileDate: '2026-12-07' })).toThrow(
      /not a positive integer/,
    );
  });

  it('rejects invalid input', () => {
    const ok = genotypes([0, 0, 0, 0, 0, 0]);
    expect(() => writeVcf([], { build: 'GRCh38', fileDate: '2025-01-01' })).toThrow();
    expect(() => writeVcf([{ id: 'a b', genotypes: ok }], { build: 'GRCh38', fileDate: '2025-01-01' })).toThrow(/whitespace/);
    expect(() => writeVcf([{ id: 'a', genotypes: [{ ...ok[0], pos: 3e8 }] }], { build: 'GRCh38', fileDate: '2025-01-01' })).toThrow(
      /past the end/,
    );
    expect(() => writeVcf([{ id: 'a', genotypes: [{ ...ok[0], alt: 'C' }] }], { build: 'GRCh38', fileDate: '2025-01-01' })).toThrow(
      /ALT equals REF/,
    );
    expect(() => writeVcf([{ id: 'a', genotypes: [{ ...ok[0], dosage: 3 }] }], { build: 'GRCh38', fileDate: '2025-01-01' })).toThrow();
  });

  it('the validator catches unsorted records, undeclared contigs, bad GTs and missing headers', () => {
    const good = writeVcf([{ id: 'S', genotypes: genotypes([0, 1, 2, 0, 1, 0]) }], { build: 'GRCh38', fileDate: '2025-01-01' });
    const lines = good.trimEnd().split('\n');
    const body = lines.filter((l) => !l.startsWith('#'));
    const head = lines.filter((l) => l.startsWith('#'));
    const swapped = [...head, body[1], body[0], ...body.slice(2)].join('\n') + '\n';
    expect(validateVcf(swapped).errors.join()).toMatch(/out of order/);
    const noContig = [...head.filter((l) => !l.includes('ID=chr2,')), ...body].join('\n') + '\n';
    expect(validateVcf(noContig).errors.join()).toMatch(/contig chr2 is not declared/);
    const badGt = good.replace('\t0/1\n', '\t0/2\n');
    expect(validateVcf(badGt).errors.join()).toMatch(/allele 2/);
    expect(validateVcf(good.replace('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n', '')).errors.join()).toMatch(/GT/);
    expect(validateVcf(good.split('\n').slice(1).join('\n')).ok).toBe(false);
  });

  it('the validator gives a meta block the same verdict every time it sees it (parsed once, then reused)', () => {
    const good = writeVcf([{ id: 'S', genotypes: genotypes([0, 1, 2, 0, 1, 0]) }], { build: 'GRCh38', fileDate: '2025-01-01' });
    const twice = good.replace(/(##contig=<ID=chr1,[^\n]*\n)/, '$1$1');
    const noDescription = good.replace('Number=1,Type=String,Description="Genotype"', 'Number=1,Type=String');
    for (let round = 0; round < 3; round++) {
      const a = validateVcf(twice);
      expect(a.errors.join()).toMatch(/contig chr1 declared twice/);
      expect(validateVcf(noDescription).errors.join()).toMatch(/FORMAT GT lacks Description/);
      const v = validateVcf(good);
      expect(v.ok, v.errors.join()).toBe(true);
      // The caller's result is its own: changing it does not change the next verdict.
      v.contigs[0].length = -1;
      v.contigs.pop();
    }
  });

  it('is parsed back by the site VCF connector with the same dosages', async () => {
    const samples = [
      { id: 'p1', genotypes: genotypes([2, 1, 0, 1, -1, 1]) },
      { id: 'p2', genotypes: genotypes([0, 0, 1, 2, 1, 0]) },
    ];
    const path = join(dir, 'cohort.vcf');
    writeFileSync(path, writeVcf(samples, { build: 'GRCh38', fileDate: '2025-01-01' }));
    const q = new Quarantine();
    const header = await readVcfHeader(path, q);
    expect(header?.fileformat).toBe('VCFv4.2');
    expect(header?.samples).toEqual(['p1', 'p2']);
    expect(header?.contigs.find((c) => c.id === 'chr10')?.length).toBe(133797422);
    const recs = [];
    for await (const r of readVcfRecords(path, q)) recs.push(r);
    expect(recs).toHaveLength(6);
    const res = await extractPanelGenotypes(
      path,
      PANEL.map(({ rsid, chrom, pos, ref, alt }) => ({ rsid, chrom, pos, ref, alt })),
      q,
    );
    expect(Array.from(res.patients.get('p1')!)).toEqual([2, 1, 0, 1, -1, 1]);
    expect(Array.from(res.patients.get('p2')!)).toEqual([0, 0, 1, 2, 1, 0]);
    expect(res.stats.quarantinedLines).toBe(0);
  });
});
