/**
 * One multi-sample VCF 4.2 per site: the SNP panel plus independent filler SNPs, sorted by
 * chromosome and position, phased GT (`0|1`), 1.5 % no-calls (`./.`). Sample names are biobank
 * ids (`BB-<site letter>-<6 digits>`), linked to MRNs through `vcf-samples.tsv` (as a biobank
 * would deliver them). Optionally bgzipped (BGZF blocks, readable by tabix/htslib and by the
 * site's VCF connector).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import type { Rng } from '../model/rng.ts';
import { NO_CALL_RATE, PANEL } from './genome.ts';

export interface VcfSample {
  name: string;
  /** Phased alleles per panel SNP; undefined = an unmapped/orphan sample with random genotypes. */
  hap: [Uint8Array, Uint8Array];
}

const CHROM_ORDER = [
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  '8',
  '9',
  '10',
  '11',
  '12',
  '13',
  '14',
  '15',
  '16',
  '17',
  '18',
  '19',
  '20',
  '21',
  '22',
  'X',
  'Y',
];

interface Row {
  chrom: string;
  pos: number;
  id: string;
  ref: string;
  alt: string;
  panelIndex: number;
  af: number;
}

/** BGZF writer: gzip members of ≤ 64 KiB input with the BC extra field, then the EOF block. */
class BgzfWriter {
  private pending: Buffer[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}
  write(text: string): void {
    const b = Buffer.from(text, 'utf8');
    this.pending.push(b);
    this.size += b.length;
    while (this.size >= 0xff00) this.flushBlock(0xff00);
  }
  private flushBlock(max: number): void {
    const all = Buffer.concat(this.pending);
    const chunk = all.subarray(0, Math.min(max, all.length));
    const rest = all.subarray(chunk.length);
    this.pending = rest.length ? [Buffer.from(rest)] : [];
    this.size = rest.length;
    writeSync(this.fd, bgzfBlock(chunk));
  }
  close(): void {
    while (this.size > 0) this.flushBlock(0xff00);
    writeSync(this.fd, bgzfBlock(Buffer.alloc(0)));
  }
}

export function bgzfBlock(data: Buffer): Buffer {
  const deflated = deflateRawSync(data, { level: 6 });
  const header = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0, 0, 0]);
  const total = header.length + deflated.length + 8;
  header.writeUInt16LE(total - 1, 16);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, deflated, trailer]);
}

/** Writes the site VCF; returns genotype counts. */
export function writeSiteVcf(
  path: string,
  samples: VcfSample[],
  siteId: string,
  bgzip: boolean,
  rng: Rng,
): { records: number; genotypes: number; noCalls: number; panelNoCall: Uint8Array[] } {
  const rows: Row[] = PANEL.map((s, i) => ({ chrom: s.chrom, pos: s.pos, id: '.', ref: s.ref, alt: s.alt, panelIndex: i, af: 0 }));
  const bases = ['A', 'C', 'G', 'T'];
  const fillerRng = rng.fork('filler');
  for (let k = 0; k < 40; k++) {
    const chrom = CHROM_ORDER[fillerRng.int(22)];
    const ref = fillerRng.pick(bases);
    const alt = fillerRng.pick(bases.filter((b) => b !== ref));
    rows.push({ chrom, pos: 1_000_000 + fillerRng.int(100_000_000), id: '.', ref, alt, panelIndex: -1, af: 0.05 + 0.4 * fillerRng.next() });
  }
  rows.sort((a, b) => CHROM_ORDER.indexOf(a.chrom) - CHROM_ORDER.indexOf(b.chrom) || a.pos - b.pos);
  const fd = openSync(path, 'w');
  const bg = bgzip ? new BgzfWriter(fd) : undefined;
  let buf = '';
  const emit = (s: string) => {
    buf += s;
    if (buf.length > 1 << 20) flush();
  };
  const flush = () => {
    if (bg) bg.write(buf);
    else writeSync(fd, buf);
    buf = '';
  };
  const contigs = [...new Set(rows.map((r) => r.chrom))];
  emit('##fileformat=VCFv4.2\n');
  emit(`##fileDate=20250101\n##source=fedsynth-simulate\n##reference=GRCh38 (simulated panel positions)\n`);
  for (const c of contigs) emit(`##contig=<ID=${c}>\n`);
  emit('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes">\n');
  emit('##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">\n');
  emit('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n');
  emit(`##fedsynthSite=${siteId}\n`);
  emit(`#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t${samples.map((s) => s.name).join('\t')}\n`);
  let genotypes = 0;
  let noCalls = 0;
  const panelNoCall = samples.map(() => new Uint8Array(PANEL.length));
  const gtRng = rng.fork('calls');
  for (const row of rows) {
    const gts: string[] = new Array(samples.length);
    let ac = 0;
    let an = 0;
    for (let j = 0; j < samples.length; j++) {
      genotypes++;
      if (gtRng.bernoulli(NO_CALL_RATE)) {
        gts[j] = './.';
        noCalls++;
        if (row.panelIndex >= 0) panelNoCall[j][row.panelIndex] = 1;
        continue;
      }
      let a: number;
      let b: number;
      if (row.panelIndex >= 0) {
        a = samples[j].hap[0][row.panelIndex];
        b = samples[j].hap[1][row.panelIndex];
      } else {
        a = +gtRng.bernoulli(row.af);
        b = +gtRng.bernoulli(row.af);
      }
      ac += a + b;
      an += 2;
      gts[j] = `${a}|${b}`;
    }
    emit(`${row.chrom}\t${row.pos}\t${row.id}\t${row.ref}\t${row.alt}\t50\tPASS\tAC=${ac};AN=${an}\tGT\t${gts.join('\t')}\n`);
  }
  flush();
  bg?.close();
  closeSync(fd);
  return { records: rows.length, genotypes, noCalls, panelNoCall };
}
