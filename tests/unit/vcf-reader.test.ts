import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  extractPanelGenotypes,
  normaliseChrom,
  parseGT,
  readVcfHeader,
  readVcfRecords,
  type SnpPanelEntry,
  type VcfRecord,
} from '../../site-agent/connectors/vcf/index.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';
import { bgzfBlock } from '../../simulator/vcf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedsynth-vcf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: string | Uint8Array, ext = '.vcf'): string {
  const p = join(dir, `f${n++}${ext}`);
  writeFileSync(p, content);
  return p;
}

/** bgzip: a series of gzip members (each with the BC extra field in real bgzip; gunzip ignores it). */
function bgzip(text: string, blockSize = 200): Uint8Array {
  const buf = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += blockSize) parts.push(gzipSync(buf.subarray(i, i + blockSize)));
  parts.push(gzipSync(Buffer.alloc(0))); // bgzip's empty EOF block
  return Buffer.concat(parts);
}

const HEADER = [
  '##fileformat=VCFv4.2',
  '##contig=<ID=1,length=249250621>',
  '##contig=<ID=chrX,length=155270560,assembly=b37>',
  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
  '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3',
];
const RECORDS = [
  '1\t100\trs1\tA\tG\t50\tPASS\t.\tGT\t0/0\t0/1\t1/1',
  'chr1\t200\t.\tC\tT,G\t50\tPASS\t.\tGT:DP\t0|2:5\t1|2:7\t2/2:1',
  '1\t300\trs3;rs3b\tG\tA\t.\t.\t.\tGT\t./.\t0/.\t1|0',
  'X\t400\trs4\tT\tC\t.\t.\t.\tGT\t0\t1\t.',
  '1\t500\trs5\tA\tC\t.\t.\t.\tGT\t0/1\t0/1\t0/1',
];
const VCF = [...HEADER, ...RECORDS].join('\n') + '\n';

const PANEL: SnpPanelEntry[] = [
  { rsid: 'rs1', chrom: 'chr1', pos: 100, ref: 'A', alt: 'G' }, // chr prefix in the panel only
  { chrom: '1', pos: 200, ref: 'C', alt: 'G' }, // second alt of a multi-allelic record
  { chrom: '1', pos: 200, ref: 'C', alt: 'T' }, // first alt of the same record
  { rsid: 'rs3', chrom: '1', pos: 999_999, ref: 'G', alt: 'A' }, // position from another build: rsID match
  { chrom: 'chrX', pos: 400, ref: 'T', alt: 'C' }, // haploid
  { chrom: '1', pos: 500, ref: 'A', alt: 'T' }, // allele not in the record: not found
  { chrom: '2', pos: 100, ref: 'A', alt: 'G' }, // absent
];

describe('VCF reader: header, records, GT', () => {
  it('parses the header: fileformat, samples, contigs', async () => {
    const q = new Quarantine();
    const h = await readVcfHeader(file(VCF), q);
    expect(h?.fileformat).toBe('VCFv4.2');
    expect(h?.samples).toEqual(['S1', 'S2', 'S3']);
    expect(h?.contigs).toEqual([
      { id: '1', length: 249250621 },
      { id: 'chrX', length: 155270560 },
    ]);
    expect(h?.headerLine).toBe(5);
    expect(q.records).toEqual([]);
  });

  it('streams records with line numbers, plain and bgzipped alike', async () => {
    for (const path of [file(VCF), file(bgzip(VCF), '.vcf.gz'), file(gzipSync(VCF), '.vcf.gz')]) {
      const q = new Quarantine();
      const recs: VcfRecord[] = [];
      for await (const r of readVcfRecords(path, q)) recs.push(r);
      expect(recs.map((r) => r.line)).toEqual([6, 7, 8, 9, 10]);
      expect(recs[1]).toMatchObject({ chrom: 'chr1', pos: 200, ids: [], ref: 'C', alts: ['T', 'G'], format: ['GT', 'DP'] });
      expect(recs[2]!.ids).toEqual(['rs3', 'rs3b']);
      expect(recs[1]!.sampleFields).toEqual(['0|2:5', '1|2:7', '2/2:1']);
      expect(q.records).toEqual([]);
    }
  });

  it('parseGT: phased, unphased, missing, haploid, multi-allelic, malformed', () => {
    expect(parseGT('0|1')).toEqual({ alleles: [0, 1], phased: true });
    expect(parseGT('1/2:35:99')).toEqual({ alleles: [1, 2], phased: false });
    expect(parseGT('./.')).toEqual({ alleles: [-1, -1], phased: false });
    expect(parseGT('.')).toEqual({ alleles: [-1], phased: false });
    expect(parseGT('1')).toEqual({ alleles: [1], phased: false });
    expect(parseGT('0/1/2')).toEqual({ alleles: [0, 1, 2], phased: false });
    expect(parseGT('10|3')).toEqual({ alleles: [10, 3], phased: true });
    expect(parseGT('A/1')).toBeUndefined();
    expect(parseGT('0/')).toBeUndefined();
    expect(parseGT('0-1')).toBeUndefined();
    expect(parseGT('')).toBeUndefined();
  });

  it('normaliseChrom: chr prefix, case, M/MT', () => {
    expect(['chr1', 'CHR1', '1', 'chrX', 'x', 'chrM', 'MT'].map(normaliseChrom)).toEqual(['1', '1', '1', 'X', 'X', 'MT', 'MT']);
  });
});

describe('VCF panel extraction', () => {
  it('dosages for the panel: chr names, multi-allelic, rsID, haploid, missing', async () => {
    const q = new Quarantine();
    const r = await extractPanelGenotypes(file(VCF), PANEL, q);
    expect(r.found).toEqual([true, true, true, true, true, false, false]);
    expect(Array.from(r.patients.get('S1')!)).toEqual([0, 1, 0, -1, 0, -1, -1]);
    expect(Array.from(r.patients.get('S2')!)).toEqual([1, 1, 1, -1, 1, -1, -1]);
    expect(Array.from(r.patients.get('S3')!)).toEqual([2, 2, 0, 1, -1, -1, -1]);
    expect(r.stats.records).toBe(5);
    expect(r.stats.panelRecords).toBe(5);
    expect(r.stats.genotypes).toBe(15);
    expect(q.records).toEqual([]);
  });

  it('the same from a bgzipped file', async () => {
    const q = new Quarantine();
    const plain = await extractPanelGenotypes(file(VCF), PANEL, q);
    const gz = await extractPanelGenotypes(file(bgzip(VCF, 64), '.vcf.gz'), PANEL, q);
    expect([...gz.patients.entries()].map(([k, v]) => [k, Array.from(v)])).toEqual(
      [...plain.patients.entries()].map(([k, v]) => [k, Array.from(v)]),
    );
  });

  it('sample → patient mapping: map, record, function; unlinked counted, ambiguous dropped', async () => {
    const q = new Quarantine();
    const path = file(VCF);
    const viaMap = await extractPanelGenotypes(path, PANEL, q, {
      sampleToPatient: new Map([
        ['S1', 'P-1'],
        ['S3', 'P-3'],
      ]),
    });
    expect([...viaMap.patients.keys()]).toEqual(['P-1', 'P-3']);
    expect(viaMap.stats.unlinkedSamples).toEqual(['S2']);
    const viaRecord = await extractPanelGenotypes(path, PANEL, q, { sampleToPatient: { S2: 'P-2' } });
    expect([...viaRecord.patients.keys()]).toEqual(['P-2']);
    const ambiguous = await extractPanelGenotypes(path, PANEL, q, { sampleToPatient: (s) => (s === 'S3' ? 'P-3' : 'P-12') });
    expect([...ambiguous.patients.keys()]).toEqual(['P-3']);
    expect(ambiguous.stats.ambiguousPatients).toEqual(['P-12']);
  });

  it('a malformed line in the middle is quarantined with its line number; reading continues', async () => {
    const lines = [
      ...HEADER,
      RECORDS[0],
      '1\t150\t.\tA', // too few columns
      '1\tabc\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/0\t0/0', // bad POS
      '1\t160\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/0', // a sample column missing
      RECORDS[1],
      '1\t170\t.\tXYZ\tG\t.\t.\t.\tGT\t0/0\t0/0\t0/0', // bad REF
      ...RECORDS.slice(2),
    ];
    const path = file(lines.join('\n') + '\n');
    const q = new Quarantine();
    const r = await extractPanelGenotypes(path, PANEL, q);
    expect(q.records.map((x) => [x.reason, x.offset])).toEqual([
      ['malformed line', 7],
      ['malformed line', 8],
      ['malformed line', 9],
      ['malformed line', 11],
    ]);
    expect(q.records[2]!.detail).toMatch(/columns/);
    expect(q.records.every((x) => x.modality === 'vcf' && x.source === path)).toBe(true);
    expect(Array.from(r.patients.get('S3')!)).toEqual([2, 2, 0, 1, -1, -1, -1]);
    expect(r.stats.quarantinedLines).toBe(4);

    // The generic record reader reports the same lines.
    const q2 = new Quarantine();
    const recs: VcfRecord[] = [];
    for await (const rec of readVcfRecords(path, q2)) recs.push(rec);
    expect(recs.map((x) => x.line)).toEqual([6, 10, 12, 13, 14]);
    expect(q2.records.map((x) => x.offset)).toEqual([7, 8, 9, 11]);
  });

  it('a malformed GT in a panel record: that sample missing, the line reported', async () => {
    const path = file([...HEADER, '1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/X\t0/3'].join('\n'));
    const q = new Quarantine();
    const r = await extractPanelGenotypes(path, PANEL, q);
    expect(Array.from(r.patients.get('S1')!.slice(0, 1))).toEqual([0]);
    expect(r.patients.get('S2')![0]).toBe(-1);
    expect(r.patients.get('S3')![0]).toBe(-1); // allele 3 does not exist
    expect(q.records).toHaveLength(1);
    expect(q.records[0]).toMatchObject({ reason: 'invalid genotype', offset: 6 });
    expect(q.records[0]!.detail).toContain('2 sample(s)');
  });

  it('duplicate records for one panel entry: the first wins', async () => {
    const path = file([...HEADER, RECORDS[0], '1\t100\trs1\tA\tG\t.\t.\t.\tGT\t1/1\t1/1\t1/1'].join('\n'));
    const r = await extractPanelGenotypes(path, PANEL, new Quarantine());
    expect(r.patients.get('S1')![0]).toBe(0);
    expect(r.stats.duplicateRecords).toBe(1);
  });

  it('FORMAT without GT: genotypes missing', async () => {
    const path = file([...HEADER, '1\t100\trs1\tA\tG\t.\t.\t.\tDP\t3\t4\t5'].join('\n'));
    const r = await extractPanelGenotypes(path, PANEL, new Quarantine());
    expect(r.patients.get('S1')![0]).toBe(-1);
    expect(r.found[0]).toBe(true);
  });
});

describe('VCF: BGZF blocks (a corrupt block loses only its own records)', () => {
  // 3,000 records at distinct positions, genotypes a function of the position: whatever is read
  // back can be checked record by record.
  const gt = (pos: number, s: number) => ['0/0', '0/1', '1/1', '1|0'][(pos * 7 + s) % 4]!;
  const body = Array.from({ length: 3000 }, (_, i) => {
    const pos = 10_000 + i * 10;
    return `1\t${pos}\t.\tA\tG\t.\tPASS\t.\tGT\t${gt(pos, 0)}\t${gt(pos, 1)}\t${gt(pos, 2)}`;
  });
  const text = Buffer.from([...HEADER, ...body].join('\n') + '\n');
  /** Real BGZF (the simulator's writer): blocks of `size` input bytes, then the EOF block. */
  const blocks = (size: number) => {
    const out: Buffer[] = [];
    for (let i = 0; i < text.length; i += size) out.push(bgzfBlock(text.subarray(i, i + size)));
    out.push(bgzfBlock(Buffer.alloc(0)));
    return out;
  };
  async function readAll(bytes: Uint8Array) {
    const q = new Quarantine();
    const recs: VcfRecord[] = [];
    for await (const r of readVcfRecords(file(bytes, '.vcf.gz'), q)) recs.push(r);
    // Every record that came through is whole and right.
    for (const r of recs) expect(r.sampleFields, `record at ${r.pos}`).toEqual([gt(r.pos, 0), gt(r.pos, 1), gt(r.pos, 2)]);
    return { q, recs };
  }

  it('an intact BGZF file reads completely through the block reader', async () => {
    const { q, recs } = await readAll(Buffer.concat(blocks(4096)));
    expect(q.records).toEqual([]);
    expect(recs).toHaveLength(3000);
  });

  it('corrupt deflate data in one block: that block (and the two lines cut by it) are lost, the rest is read', async () => {
    const bs = blocks(4096);
    const k = Math.floor(bs.length / 2);
    const bad = Buffer.from(bs[k]!);
    for (let i = 30; i < 60; i++) bad[i] = bad[i]! ^ 0xa5;
    bs[k] = bad;
    const { q, recs } = await readAll(Buffer.concat(bs));
    expect(q.records).toHaveLength(1);
    expect(q.records[0]!.reason).toBe('corrupt bgzip block');
    expect(q.records[0]!.detail).toMatch(/block at byte \d+: (deflate error|CRC32 mismatch|decompressed)/);
    const perBlock = 4096 / body[0]!.length;
    expect(recs.length).toBeLessThan(3000);
    expect(recs.length).toBeGreaterThanOrEqual(3000 - Math.ceil(perBlock) - 2);
    // Records after the bad block are there.
    expect(recs.at(-1)!.pos).toBe(10_000 + 2999 * 10);
  });

  it('a CRC32 mismatch is caught even when the data inflates', async () => {
    const bs = blocks(4096);
    const bad = Buffer.from(bs[3]!);
    bad.writeUInt32LE((bad.readUInt32LE(bad.length - 8) ^ 1) >>> 0, bad.length - 8);
    bs[3] = bad;
    const { q, recs } = await readAll(Buffer.concat(bs));
    expect(q.records.map((r) => r.detail)).toEqual([expect.stringMatching(/CRC32 mismatch/)]);
    expect(recs.length).toBeGreaterThan(2800);
  });

  it('a broken block header (and garbage between blocks): the reader finds the next block', async () => {
    const bs = blocks(4096);
    const bad = Buffer.from(bs[5]!);
    bad[12] = 0x00; // the BC subfield id
    bs[5] = bad;
    bs.splice(9, 0, Buffer.from('this is not a block at all, \x1f\x8b\x08\x04 not even this'));
    const { q, recs } = await readAll(Buffer.concat(bs));
    expect(q.records).toHaveLength(2);
    expect(q.records.every((r) => r.reason === 'corrupt bgzip block')).toBe(true);
    expect(q.records[0]!.detail).toMatch(/no BGZF block header/);
    expect(recs.length).toBeGreaterThan(2800);
    expect(recs.at(-1)!.pos).toBe(10_000 + 2999 * 10);
  });

  it('a BGZF file cut inside a block: what came before is kept, the cut is reported', async () => {
    const bs = blocks(4096).slice(0, -1);
    const all = Buffer.concat(bs);
    const { q, recs } = await readAll(all.subarray(0, all.length - Math.floor(bs.at(-1)!.length / 2)));
    expect(q.records).toHaveLength(1);
    expect(q.records[0]!.detail).toMatch(/file ends inside a block/);
    expect(recs.length).toBeGreaterThan(2800);
    expect(recs.length).toBeLessThan(3000);
  });
});

describe('VCF: whole-file failures', () => {
  it('a corrupt bgzip stream is quarantined where it breaks; lines before it are kept', async () => {
    const body = Array.from({ length: 20_000 }, (_, i) => `1\t${1000 + i}\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1`);
    const many = [...HEADER, ...body, RECORDS[0]];
    const gz = Buffer.from(bgzip(many.join('\n') + '\n', 4000));
    // Corrupt the deflate data of a block three quarters of the way in.
    const mid = Math.floor((gz.length * 3) / 4);
    for (let i = mid; i < mid + 40; i++) gz[i] = gz[i]! ^ 0x5a;
    const q = new Quarantine();
    const r = await extractPanelGenotypes(file(gz, '.vcf.gz'), PANEL, q);
    expect(q.records).toHaveLength(1);
    expect(q.records[0]!.reason).toBe('corrupt gzip/bgzip data');
    // Lines before the broken block were read (up to one decompression chunk may be lost with it).
    expect(q.records[0]!.offset).toBeGreaterThan(5000);
    expect(r.stats.records).toBeGreaterThan(5000);
    expect(r.stats.records).toBeLessThan(20_000);
  });

  it('a truncated bgzip file', async () => {
    const gz = bgzip(VCF, 100);
    const q = new Quarantine();
    await extractPanelGenotypes(file(gz.subarray(0, gz.length - 40), '.vcf.gz'), PANEL, q);
    expect(q.records.map((x) => x.reason)).toEqual(['corrupt gzip/bgzip data']);
  });

  it('gzip magic followed by garbage', async () => {
    const q = new Quarantine();
    const r = await extractPanelGenotypes(file(Uint8Array.from([0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7]), '.vcf.gz'), PANEL, q);
    expect(q.records[0]!.reason).toBe('corrupt gzip/bgzip data');
    expect(r.header).toBeUndefined();
    expect(r.patients.size).toBe(0);
  });

  it('not a VCF, wrong version, empty, data before #CHROM, a missing file', async () => {
    const reasons = async (path: string) => {
      const q = new Quarantine();
      await extractPanelGenotypes(path, PANEL, q);
      return q.records.map((r) => r.reason);
    };
    expect(await reasons(file('hello world\n'))).toEqual(['not a VCF file']);
    expect(await reasons(file('##fileformat=VCFv3.3\n#CHROM\tPOS\n'))).toEqual(['unsupported VCF version']);
    expect(await reasons(file(''))).toEqual(['empty file']);
    expect(await reasons(file('##fileformat=VCFv4.1\n1\t100\t.\tA\tG\t.\t.\t.\n'))).toEqual(['missing #CHROM header line']);
    expect(await reasons(join(dir, 'nope.vcf'))).toEqual(['unreadable file']);
  });

  it('a sites-only VCF (no samples) still reports which panel entries exist', async () => {
    const text = ['##fileformat=VCFv4.1', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO', '1\t100\trs1\tA\tG\t.\t.\t.'].join('\n');
    const r = await extractPanelGenotypes(file(text), PANEL, new Quarantine());
    expect(r.found[0]).toBe(true);
    expect(r.patients.size).toBe(0);
  });
});
