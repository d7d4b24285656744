import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineSplitter, splitLines } from '../../site-agent/connectors/lines.ts';
import { BCF_REASON, extractPanelGenotypes, readVcfRecords, type SnpPanelEntry } from '../../site-agent/connectors/vcf/index.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { bgzfBlock } from '../../simulator/vcf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-gvcf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content: string | Uint8Array, ext = '.vcf') => {
  const p = join(dir, `f${n++}${ext}`);
  writeFileSync(p, content);
  return p;
};

const panel: SnpPanelEntry[] = [
  { rsid: 'rsA', chrom: '1', pos: 1000, ref: 'A', alt: 'G' },
  { rsid: 'rsB', chrom: '1', pos: 1500, ref: 'C', alt: 'T' },
  { rsid: 'rsC', chrom: '1', pos: 3000, ref: 'G', alt: 'A' },
  { rsid: 'rsD', chrom: '2', pos: 50, ref: 'T', alt: 'C' },
];
const GVCF_HEADER = [
  '##fileformat=VCFv4.2',
  '##ALT=<ID=NON_REF,Description="any other allele">',
  '##INFO=<ID=END,Number=1,Type=Integer,Description="end of block">',
  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
  '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
  '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1',
];

describe('gVCF reference blocks', () => {
  it('panel positions inside a <NON_REF> block with GQ ≥ 20 are 0/0; low GQ and positions outside any block are missing', async () => {
    const path = file(
      [
        ...GVCF_HEADER,
        '1\t900\t.\tT\t<NON_REF>\t.\t.\tEND=1200\tGT:DP:GQ:MIN_DP:PL\t0/0:30:99:28:0,90,1000',
        '1\t1201\t.\tC\t<NON_REF>\t.\t.\tEND=1600\tGT:GQ\t0/0:12',
        '1\t2000\t.\tA\tC,<NON_REF>\t50\t.\t.\tGT:GQ\t0/1:60',
        '2\t40\t.\tA\t<*>\t.\t.\tEND=60\tGT:GQ\t0/0:45',
      ].join('\n') + '\n',
    );
    const q = new Quarantine();
    const res = await extractPanelGenotypes(path, panel, q);
    expect(q.records).toEqual([]);
    expect(Array.from(res.patients.get('S1')!)).toEqual([0, -1, -1, 0]);
    expect(res.found).toEqual([true, true, false, true]);
    expect(res.stats.refBlocks).toBe(3);
    expect(res.stats.refBlockPanelRecords).toBe(3);
    // The threshold is configurable.
    const loose = await extractPanelGenotypes(path, panel, new Quarantine(), { minRefBlockGq: 10 });
    expect(Array.from(loose.patients.get('S1')!)).toEqual([0, 0, -1, 0]);
  });

  it('a variant record in a gVCF (ALT with <NON_REF>) still gives its dosage; a block without END is quarantined', async () => {
    const path = file(
      [
        ...GVCF_HEADER,
        '1\t1000\t.\tA\tG,<NON_REF>\t50\t.\t.\tGT:GQ\t1/1:60',
        '1\t1400\t.\tC\t<NON_REF>\t.\t.\tDP=3\tGT:GQ\t0/0:99',
        '1\t2900\t.\tC\t<NON_REF>\t.\t.\tEND=3100\tGT:GQ\t./.:0',
      ].join('\n') + '\n',
    );
    const q = new Quarantine();
    const res = await extractPanelGenotypes(path, panel, q);
    expect(Array.from(res.patients.get('S1')!)).toEqual([2, -1, -1, -1]);
    expect(q.records.map((r) => [r.reason, r.offset, r.detail])).toEqual([
      ['malformed line', 8, 'gVCF reference block without END in INFO'],
    ]);
  });
});

describe('BCF is refused by name', () => {
  // BCF 2.2: "BCF\2\2", the header length, then the header text (bgzipped like the real thing).
  const headerText = Buffer.from(GVCF_HEADER.join('\n') + '\n\0');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerText.length);
  const bcf = Buffer.concat([Buffer.from('BCF\u0002\u0002'), len, headerText, Buffer.from([1, 2, 3, 0, 0, 0, 7])]);

  for (const [name, bytes] of [
    ['BGZF', Buffer.concat([bgzfBlock(bcf), bgzfBlock(Buffer.alloc(0))])],
    ['uncompressed', bcf],
  ] as const) {
    it(`${name} BCF: "${BCF_REASON}"`, async () => {
      const q = new Quarantine();
      const recs = [];
      for await (const r of readVcfRecords(file(bytes, '.bcf'), q)) recs.push(r);
      expect(recs).toEqual([]);
      expect(q.records).toHaveLength(1);
      expect(q.records[0]!.reason).toBe(BCF_REASON);
    });
  }
});

describe('long lines: linear, bounded, quarantined', () => {
  it('the splitter joins pieces across chunks, strips CR, counts lines, and blanks over-long lines', () => {
    const long: [number, number][] = [];
    const s = new LineSplitter(10, (line, chars) => long.push([line, chars]));
    const out: string[] = [];
    for (const piece of ['ab', 'c\r\nde', 'f\n0123456', '789ABCDEF', '\nlast']) s.push(piece, out);
    s.end(out);
    expect(out).toEqual(['abc', 'def', '', 'last']);
    expect(long).toEqual([[3, 16]]);
    expect(() => new LineSplitter(0, () => {})).toThrow(/positive/);
  });

  it('after resync the partial line is dropped up to the next newline, uncounted', () => {
    const s = new LineSplitter(100, () => {});
    const out: string[] = [];
    s.push('one\ntw', out);
    s.resync();
    s.push('o-tail\nthree\n', out);
    expect(out).toEqual(['one', 'three']);
    expect(s.lines).toBe(2);
  });

  it('a 32 MB line in 64 KiB chunks is read in linear time (well under a second per 32 MB)', async () => {
    const chunk = new Uint8Array(1 << 16).fill(0x41);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 512; i++) yield chunk;
      yield new TextEncoder().encode('\nnext\n');
    }
    // CPU time, not wall time: a loaded machine delays the test without making it do more work.
    const cpu0 = process.cpuUsage();
    const lines: string[] = [];
    for await (const batch of splitLines(chunks(), 64 << 20, () => {})) lines.push(...batch);
    const cpu = process.cpuUsage(cpu0);
    const ms = (cpu.user + cpu.system) / 1000;
    expect(lines.map((l) => l.length)).toEqual([32 << 20, 4]);
    // Quadratic re-splitting took ~20 s here; linear is ~0.1 s.
    expect(ms).toBeLessThan(5000);
  });

  it('a VCF line over maxLineChars is quarantined with its line number; the records after it are read', async () => {
    const path = file(
      [
        '##fileformat=VCFv4.2',
        '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1',
        '1\t1000\trsA\tA\tG\t.\t.\t' + 'X'.repeat(5000) + '\tGT\t0/1',
        '1\t1500\trsB\tC\tT\t.\t.\t.\tGT\t1/1',
      ].join('\n'),
    );
    const q = new Quarantine();
    const res = await extractPanelGenotypes(path, panel, q, { maxLineChars: 1000 });
    expect(q.records.map((r) => [r.reason, r.offset])).toEqual([['line too long', 3]]);
    expect(Array.from(res.patients.get('S1')!)).toEqual([-1, 2, -1, -1]);
  });
});
