/**
 * One multi-sample VCF 4.2 per site, as a biobank's genotyping array export would deliver it:
 * the public panel's SNPs that the site's array carries (GRCh38 `chr` contigs with their
 * lengths, ID = rsID, REF = the GRCh38 base), sorted by chromosome and position, unphased GT with
 * `./.` for failed calls (`NO_CALL_RATE`), INFO AC/AN/AF over called genotypes. SNPs the array
 * lacks have no record. Sample names are biobank ids (`BB-<site letter>-<6 digits>`), linked to
 * MRNs through `vcf-samples.tsv`. Optionally bgzipped (BGZF blocks, readable by tabix/htslib and
 * by the site's VCF connector).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import type { Rng } from '../model/rng.ts';
import { chromLength, chromRank, vcfContigName } from '../modalities/genome/reference.ts';
import { NO_CALL_RATE, PANEL } from './genome.ts';

export interface VcfSample {
  name: string;
  /** Alleles (0 = REF, 1 = ALT) of the two copies per panel SNP. */
  hap: [Uint8Array, Uint8Array];
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

/** Writes the site VCF; returns genotype counts and, per sample, which panel SNPs have no call (absent or failed). */
export function writeSiteVcf(
  path: string,
  samples: VcfSample[],
  site: { siteId: string; arrayLacks: readonly string[] },
  bgzip: boolean,
  rng: Rng,
): { records: number; genotypes: number; noCalls: number; panelNoCall: Uint8Array[]; absent: string[] } {
  for (const rsid of site.arrayLacks)
    if (!PANEL.some((s) => s.rsid === rsid)) throw new Error(`site ${site.siteId}: arrayLacks names ${rsid}, which is not in the panel`);
  const carried = PANEL.map((s, j) => ({ s, j }))
    .filter(({ s }) => !site.arrayLacks.includes(s.rsid))
    .sort((a, b) => chromRank(a.s.chrom) - chromRank(b.s.chrom) || a.s.pos - b.s.pos);
  const fd = openSync(path, 'w');
  const bg = bgzip ? new BgzfWriter(fd) : undefined;
  let buf = '';
  const emit = (text: string) => {
    buf += text;
    if (buf.length > 1 << 20) flush();
  };
  const flush = () => {
    if (bg) bg.write(buf);
    else writeSync(fd, buf);
    buf = '';
  };
  emit('##fileformat=VCFv4.2\n##fileDate=20250101\n##source=fedsynth-simulate\n##reference=GRCh38\n');
  for (const c of [...new Set(carried.map(({ s }) => s.chrom))])
    emit(`##contig=<ID=${vcfContigName('GRCh38', c)},length=${chromLength('GRCh38', c)},assembly=GRCh38>\n`);
  emit('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in called genotypes">\n');
  emit('##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">\n');
  emit('##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency in called genotypes">\n');
  emit('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n');
  emit(`##fedsynthSite=${site.siteId}\n`);
  emit(`#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t${samples.map((x) => x.name).join('\t')}\n`);
  let genotypes = 0;
  let noCalls = 0;
  // Every panel SNP starts as "no call"; carried SNPs clear it per successful call.
  const panelNoCall = samples.map(() => new Uint8Array(PANEL.length).fill(1));
  const gtRng = rng.fork('calls');
  for (const { s, j } of carried) {
    const gts: string[] = new Array(samples.length);
    let ac = 0;
    let an = 0;
    for (let k = 0; k < samples.length; k++) {
      genotypes++;
      if (gtRng.bernoulli(NO_CALL_RATE)) {
        gts[k] = './.';
        noCalls++;
        continue;
      }
      const a = samples[k].hap[0][j];
      const b = samples[k].hap[1][j];
      panelNoCall[k][j] = 0;
      ac += a + b;
      an += 2;
      // Unphased, as an array export: the lower allele index first.
      gts[k] = a <= b ? `${a}/${b}` : `${b}/${a}`;
    }
    const info = an > 0 ? `AC=${ac};AN=${an};AF=${Number((ac / an).toFixed(4))}` : 'AC=0;AN=0';
    emit(`${vcfContigName('GRCh38', s.chrom)}\t${s.pos}\t${s.rsid}\t${s.ref}\t${s.alt}\t.\tPASS\t${info}\tGT\t${gts.join('\t')}\n`);
  }
  flush();
  bg?.close();
  closeSync(fd);
  const absent = PANEL.filter((s) => site.arrayLacks.includes(s.rsid)).map((s) => s.rsid);
  return { records: carried.length, genotypes, noCalls, panelNoCall, absent };
}
