import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chromLength, GWAS_PANEL, SUPER_POPULATIONS, validateVcf } from '../../modalities/genome/index.ts';
import { Rng } from '../../model/rng.ts';
import { parseSchema, snpPanel } from '../../schema/schema.ts';
import { drawGenome, geneticLogOdds, NO_CALL_RATE, PANEL } from '../../simulator/genome.ts';
import { writeSiteVcf } from '../../simulator/vcf-writer.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { extractPanelGenotypes, matchPanelAlleles } from '../../site-agent/connectors/vcf/index.ts';
import { connectorPanel } from '../../site-agent/features/genome.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-panel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = parseSchema(readFileSync(new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url), 'utf8'));

describe('the GWAS panel', () => {
  it('is well formed: rsIDs, GRCh38 positions, distinct SNV alleles, frequencies in (0, 1), ORs in the GWAS range', () => {
    const conditions = new Set(schema.attributes.filter((a) => a.kind === 'condition').map((a) => a.name));
    expect(GWAS_PANEL.length).toBeGreaterThanOrEqual(10);
    expect(new Set(GWAS_PANEL.map((s) => s.rsid)).size).toBe(GWAS_PANEL.length);
    for (const s of GWAS_PANEL) {
      expect(s.rsid, s.name).toMatch(/^rs[1-9][0-9]*$/);
      expect(s.pos, s.name).toBeLessThanOrEqual(chromLength('GRCh38', s.chrom));
      expect(s.ref).toMatch(/^[ACGT]$/);
      expect(s.alt).toMatch(/^[ACGT]$/);
      expect(s.alt).not.toBe(s.ref);
      expect(s.evidence.length).toBeGreaterThan(10);
      for (const p of SUPER_POPULATIONS) {
        expect(s.altFrequency[p], `${s.name} ${p}`).toBeGreaterThan(0);
        expect(s.altFrequency[p], `${s.name} ${p}`).toBeLessThan(1);
      }
      expect(s.effects.length).toBeGreaterThan(0);
      for (const e of s.effects) {
        expect(conditions.has(e.condition), `${s.name}: ${e.condition}`).toBe(true);
        // Common-variant GWAS effects: 1.05-1.45 per risk allele, i.e. 1/1.45 … 1.45 per ALT.
        expect(Math.max(e.oddsRatioPerAlt, 1 / e.oddsRatioPerAlt), `${s.name} → ${e.condition}`).toBeGreaterThanOrEqual(1.05);
        expect(Math.max(e.oddsRatioPerAlt, 1 / e.oddsRatioPerAlt), `${s.name} → ${e.condition}`).toBeLessThanOrEqual(1.45);
        expect([s.ref, s.alt]).toContain(e.riskAllele);
        // The OR is per ALT copy: above 1 exactly when ALT is the risk allele.
        expect(e.oddsRatioPerAlt > 1, `${s.name} → ${e.condition}`).toBe(e.riskAllele === s.alt);
        expect(e.source.length).toBeGreaterThan(10);
      }
    }
  });

  it('is the schema SNP panel, in the same order, with rsIDs', () => {
    const attrs = snpPanel(schema);
    expect(attrs.map(({ name, rsid, chrom, pos, ref, alt }) => ({ name, rsid, chrom, pos, ref, alt }))).toEqual(
      GWAS_PANEL.map(({ name, rsid, chrom, pos, ref, alt }) => ({ name, rsid, chrom, pos, ref, alt })),
    );
    // Every published association is declared structure, so the fit measures it.
    const pairs = new Set((schema.structure?.marginals ?? []).map((m) => m.join('|')));
    for (const s of GWAS_PANEL)
      for (const e of s.effects) expect(pairs.has(`${s.name}|${e.condition}`), `${s.name} × ${e.condition}`).toBe(true);
  });
});

describe('simulated genotypes', () => {
  it('follow Hardy–Weinberg at the panel frequencies, and the genetic term is centred', () => {
    const rng = new Rng('hwe');
    const n = 20_000;
    const alt = new Float64Array(PANEL.length);
    const het = new Float64Array(PANEL.length);
    let t2d = 0;
    for (let i = 0; i < n; i++) {
      const g = drawGenome([1, 0, 0], rng.fork(i));
      for (let j = 0; j < PANEL.length; j++) {
        alt[j] += g.dosage[j];
        het[j] += +(g.dosage[j] === 1);
      }
      t2d += geneticLogOdds(g, 'type2_diabetes');
    }
    PANEL.forEach((s, j) => {
      const p = s.altFrequency.EUR;
      // 40,000 alleles: sd ≤ 0.0025, so 0.015 is 6 sd (chance failure < 1e-8 per SNP).
      expect(Math.abs(alt[j] / (2 * n) - p), s.name).toBeLessThan(0.015);
      // Heterozygote share 2p(1 − p): sd ≤ 0.0036, 0.02 is > 5.5 sd.
      expect(Math.abs(het[j] / n - 2 * p * (1 - p)), s.name).toBeLessThan(0.02);
    });
    // Mean of Σ ln(OR)(d − 2p): sd of one term ≤ 0.35, of the mean ≤ 0.0025.
    expect(Math.abs(t2d / n)).toBeLessThan(0.02);
    expect(geneticLogOdds(drawGenome([1, 0, 0], rng), 'pneumonia')).toBe(0);
  });

  it('APOE: each copy carries one of ε2/ε3/ε4, so ε2 and ε4 never share a chromosome', () => {
    const rng = new Rng('apoe');
    const e4 = PANEL.findIndex((s) => s.rsid === 'rs429358');
    const e2 = PANEL.findIndex((s) => s.rsid === 'rs7412');
    let both = 0;
    let e2e4 = 0;
    for (let i = 0; i < 20_000; i++) {
      const g = drawGenome([0, 1, 0], rng.fork(i));
      for (const h of g.hap) both += h[e4] & h[e2];
      e2e4 += +(g.dosage[e4] === 1 && g.dosage[e2] === 1);
    }
    expect(both).toBe(0);
    // ε2/ε4 heterozygotes still occur (2·p₂·p₄ ≈ 0.054 in AFR): about 1,080 of 20,000.
    expect(e2e4).toBeGreaterThan(900);
    expect(e2e4).toBeLessThan(1_260);
  });

  it('rejects an ancestry mix of the wrong length', () => {
    expect(() => drawGenome([1, 0], new Rng(1))).toThrow(/3 weights/);
  });
});

describe('site VCF from the simulator', () => {
  const rng = new Rng('site-vcf');
  const samples = Array.from({ length: 400 }, (_, i) => ({
    name: `BB-A-${100_000 + i}`,
    hap: drawGenome([0.6, 0.3, 0.1], rng.fork(i)).hap,
  }));

  it('writes only the SNPs on the site array, with rsIDs, GRCh38 contigs and few failed calls', async () => {
    const path = join(dir, 'site.vcf');
    const res = writeSiteVcf(path, samples, { siteId: 'hospital-a', arrayLacks: ['rs7216389'] }, false, rng.fork('calls'));
    expect(res.absent).toEqual(['rs7216389']);
    const text = readFileSync(path, 'utf8');
    const v = validateVcf(text);
    expect(v.errors).toEqual([]);
    expect(v.reference).toBe('GRCh38');
    expect(v.records.map((r) => r.id)).toEqual(GWAS_PANEL.filter((s) => s.rsid !== 'rs7216389').map((s) => s.rsid));
    for (const r of v.records) {
      const s = GWAS_PANEL.find((x) => x.rsid === r.id)!;
      expect([r.chrom, r.pos, r.ref, r.alt[0]]).toEqual([`chr${s.chrom}`, s.pos, s.ref, s.alt]);
    }
    expect(v.contigs.find((c) => c.id === 'chr19')?.length).toBe(58617616);
    // 4,400 genotypes at 0.8 %: mean 35, sd 6; [10, 70] is beyond 4 sd either side.
    expect(res.noCalls).toBeGreaterThan(10);
    expect(res.noCalls).toBeLessThan(70);
    expect(NO_CALL_RATE).toBeLessThanOrEqual(0.01);
    const j = PANEL.findIndex((s) => s.rsid === 'rs7216389');
    expect(res.panelNoCall.every((m) => m[j] === 1)).toBe(true);

    // The site agent reads it back by the schema panel: the absent SNP is missing, the rest match the haplotypes.
    const q = new Quarantine();
    const { panel } = connectorPanel(schema);
    const got = await extractPanelGenotypes(path, panel, q);
    expect(got.found[j]).toBe(false);
    expect(got.stats.alleleFlips).toEqual([]);
    const d = got.patients.get('BB-A-100000')!;
    PANEL.forEach((_, k) => {
      if (res.panelNoCall[0][k]) expect(d[k]).toBe(-1);
      else expect(d[k]).toBe(samples[0].hap[0][k] + samples[0].hap[1][k]);
    });
  });

  it('passes bcftools view/stats and vcftools vcf-validator when they are installed', (ctx) => {
    const have = (cmd: string) => {
      try {
        execFileSync('sh', ['-c', `command -v ${cmd}`]);
        return true;
      } catch {
        return false;
      }
    };
    if (!have('bcftools') || !have('vcf-validator')) {
      ctx.skip('bcftools or vcf-validator not installed (.ci/run installs them with apt)');
      return;
    }
    const path = join(dir, 'site-tools.vcf.gz');
    writeSiteVcf(path, samples, { siteId: 'hospital-b', arrayLacks: [] }, true, rng.fork('tools'));
    expect(execFileSync('bcftools', ['view', '-h', path], { encoding: 'utf8' })).toMatch(/##contig=<ID=chr10,length=133797422/);
    const stats = execFileSync('bcftools', ['stats', path], { encoding: 'utf8' });
    expect(stats).toMatch(new RegExp(`number of records:\\t${GWAS_PANEL.length}\\n`));
    expect(stats).toMatch(new RegExp(`number of SNPs:\\t${GWAS_PANEL.length}\\n`));
    expect(stats).toMatch(/number of samples:\t400\n/);
    // vcf-validator prints what it finds on stderr (its exit status stays 0); a clean file gives no output,
    // and it recounts AC from the genotypes, so a wrong count shows the silence means something.
    const validator = (file: string) => {
      const r = spawnSync('vcf-validator', [file], { encoding: 'utf8' });
      return `${r.stdout}${r.stderr}`.trim();
    };
    expect(validator(path)).toBe('');
    const bad = join(dir, 'bad.vcf');
    writeFileSync(
      bad,
      readFileSync(join(dir, 'site.vcf'), 'utf8').replace(/AC=(\d+);/, (_, ac: string) => `AC=${Number(ac) + 1};`),
    );
    expect(validator(bad)).toMatch(/AC is \d+, should be \d+/);
  });
});

describe('site-side allele checks', () => {
  it('matchPanelAlleles: same, swapped, other strand, palindromic ambiguity, other allele, contradiction', () => {
    expect(matchPanelAlleles('C', 'T', 'C', ['T'])).toEqual({ k: 1, how: 'same' });
    expect(matchPanelAlleles('C', 'T', 'C', ['A', 'T'])).toEqual({ k: 2, how: 'same' });
    expect(matchPanelAlleles('C', 'T', 'T', ['C'])).toEqual({ k: 0, how: 'swapped' });
    expect(matchPanelAlleles('C', 'T', 'G', ['A'])).toEqual({ k: 1, how: 'strand' });
    expect(matchPanelAlleles('C', 'T', 'A', ['G'])).toEqual({ k: 0, how: 'strand-swapped' });
    expect(matchPanelAlleles('C', 'G', 'C', ['G'])).toEqual({ k: 1, how: 'same' });
    expect(matchPanelAlleles('C', 'G', 'G', ['C'])).toMatchObject({ reject: expect.stringMatching(/palindromic/) });
    expect(matchPanelAlleles('C', 'T', 'C', ['A'])).toEqual({ other: true });
    expect(matchPanelAlleles('C', 'T', 'A', ['T'])).toMatchObject({ reject: expect.stringMatching(/do not match/) });
  });

  it('a swapped record is read with flipped dosage and a stated reason; a mismatched one is quarantined', async () => {
    const vcf = [
      '##fileformat=VCFv4.2',
      '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
      ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', 'S1', 'S2', 'S3'].join('\t'),
      // rs7903146 exported with the risk allele as REF: T/C instead of C/T.
      ['chr10', '112998590', 'rs7903146', 'T', 'C', '.', 'PASS', '.', 'GT', '0/0', '0/1', '1/1'].join('\t'),
      // rs9939609 (T/A, palindromic) with REF/ALT swapped: a swap or a strand flip, ambiguous, quarantined.
      ['chr16', '53786615', 'rs9939609', 'A', 'T', '.', 'PASS', '.', 'GT', '0/1', '1/1', './.'].join('\t'),
      // rs1801282 (C/G, palindromic) with REF/ALT swapped: ambiguous, quarantined.
      ['chr3', '12351626', 'rs1801282', 'G', 'C', '.', 'PASS', '.', 'GT', '0/1', '0/0', '1/1'].join('\t'),
      // rs429358 whose REF contradicts the panel: quarantined.
      ['chr19', '44908684', 'rs429358', 'A', 'C', '.', 'PASS', '.', 'GT', '0/1', '0/1', '0/1'].join('\t'),
      // rs7412 matching, then a different allele at the same site (not the panel's variant): ignored.
      ['chr19', '44908822', 'rs7412', 'C', 'T', '.', 'PASS', '.', 'GT', '0/1', '0/0', '1/1'].join('\t'),
      ['chr19', '44908822', '.', 'C', 'A', '.', 'PASS', '.', 'GT', '0/0', '0/0', '0/1'].join('\t'),
    ].join('\n');
    const path = join(dir, 'flips.vcf');
    writeFileSync(path, vcf + '\n');
    const q = new Quarantine();
    const { panel } = connectorPanel(schema);
    const res = await extractPanelGenotypes(path, panel, q);
    const idx = (rsid: string) => panel.findIndex((p) => p.rsid === rsid);
    const col = (rsid: string) => ['S1', 'S2', 'S3'].map((s) => res.patients.get(s)![idx(rsid)]);
    expect(col('rs7903146')).toEqual([2, 1, 0]);
    expect(col('rs9939609')).toEqual([-1, -1, -1]);
    expect(col('rs1801282')).toEqual([-1, -1, -1]);
    expect(col('rs429358')).toEqual([-1, -1, -1]);
    expect(col('rs7412')).toEqual([1, 0, 2]);
    expect(res.stats.alleleFlips).toEqual([
      { entry: 'rs7903146', line: 4, how: 'swapped', reason: expect.stringMatching(/REF is the panel's ALT/) },
    ]);
    expect(res.stats.alleleMismatches).toBe(3);
    expect(q.records.filter((r) => r.reason === 'allele mismatch').map((r) => r.offset)).toEqual([5, 6, 7]);
    expect(q.records.map((r) => r.detail).join('\n')).toMatch(/rs1801282: palindromic/);
  });

  it('a non-palindromic SNP on the other strand is read on the complement', async () => {
    const vcf = [
      '##fileformat=VCFv4.2',
      '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
      ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', 'S1', 'S2'].join('\t'),
      // rs7903146 C>T reported on the reverse strand as G>A.
      ['10', '112998590', 'rs7903146', 'G', 'A', '.', 'PASS', '.', 'GT', '0/1', '1/1'].join('\t'),
      // rs5219 T>C reported on the reverse strand and swapped: G>A (complement of C>T).
      ['11', '17388025', 'rs5219', 'G', 'A', '.', 'PASS', '.', 'GT', '0/0', '0/1'].join('\t'),
    ].join('\n');
    const path = join(dir, 'strand.vcf');
    writeFileSync(path, vcf + '\n');
    const q = new Quarantine();
    const { panel } = connectorPanel(schema);
    const res = await extractPanelGenotypes(path, panel, q);
    const i = panel.findIndex((p) => p.rsid === 'rs7903146');
    const k = panel.findIndex((p) => p.rsid === 'rs5219');
    expect([res.patients.get('S1')![i], res.patients.get('S2')![i]]).toEqual([1, 2]);
    expect([res.patients.get('S1')![k], res.patients.get('S2')![k]]).toEqual([2, 1]);
    expect(res.stats.alleleFlips.map((f) => f.how)).toEqual(['strand', 'strand-swapped']);
    expect(q.records).toEqual([]);
  });
});
