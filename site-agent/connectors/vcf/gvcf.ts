// gVCF reference blocks: a record whose only ALT is the symbolic <NON_REF> (GATK) or <*>
// (bcftools, DRAGEN) with INFO END=, stating "no variant from POS to END" with one GT/GQ per
// sample. Panel positions inside a block are homozygous reference, not missing.
import { normaliseChrom, type SnpPanelEntry } from './index.ts';

/** The block of a data line, or undefined when the line is not a reference block. */
export function refBlockOf(alt: string, line: string, altEnd: number, posText: string): { start: number; end?: number } | undefined {
  if (alt !== '<NON_REF>' && alt !== '<*>') return undefined;
  const start = Number(posText);
  // ALT<TAB>QUAL<TAB>FILTER<TAB>INFO: INFO starts after the second tab past ALT.
  const filterEnd = line.indexOf('\t', line.indexOf('\t', altEnd + 1) + 1);
  const infoEnd = filterEnd < 0 ? -1 : line.indexOf('\t', filterEnd + 1);
  const info = filterEnd < 0 ? '' : line.slice(filterEnd + 1, infoEnd < 0 ? line.length : infoEnd);
  const m = /(?:^|;)END=(\d+)(?:;|$)/.exec(info);
  const end = m ? Number(m[1]) : undefined;
  return end !== undefined && end >= start ? { start, end } : { start };
}

/** Panel entries per chromosome sorted by position, for block lookups in O(log n + hits). */
export class RefBlockIndex {
  private readonly byChrom = new Map<string, { pos: number; index: number }[]>();
  constructor(panel: readonly SnpPanelEntry[]) {
    panel.forEach((p, index) => {
      const c = normaliseChrom(p.chrom);
      let list = this.byChrom.get(c);
      if (!list) this.byChrom.set(c, (list = []));
      list.push({ pos: p.pos, index });
    });
    for (const list of this.byChrom.values()) list.sort((a, b) => a.pos - b.pos);
  }
  /** Panel indices with start ≤ pos ≤ end on `chrom` (already normalised). */
  inside(chrom: string, start: number, end: number): number[] {
    const list = this.byChrom.get(chrom);
    if (!list) return [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.pos < start) lo = mid + 1;
      else hi = mid;
    }
    const out: number[] = [];
    for (let k = lo; k < list.length && list[k]!.pos <= end; k++) out.push(list[k]!.index);
    return out;
  }
}
