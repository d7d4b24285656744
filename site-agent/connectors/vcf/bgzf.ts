// BGZF (SAM/BAM spec §4.1): the blocked gzip that bgzip and htslib write. Each block is a gzip
// member of at most 64 KiB carrying its own size (the BC extra field), CRC32 and length, so one
// corrupt block need not end the file: the reader reports it, skips to the next block and goes on.
// A plain gzip stream has no such boundaries; its reader stops at the first error.

import { open } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';

/** Between two decoded chunks: data was lost here (the text on either side is discontinuous). */
export const GAP = Symbol('bgzf-gap');

export interface BgzfBadBlock {
  /** Byte offset of the block (or of the bytes that should have been one) in the file. */
  offset: number;
  reason: string;
}

const HEADER_MIN = 18; // 12 fixed bytes + the 6-byte BC subfield
const MAGIC = Buffer.from([0x1f, 0x8b, 0x08, 0x04]);

/** True when `head` (≥ 18 bytes) starts a BGZF block: a gzip member with the BC extra subfield. */
export function isBgzfHeader(head: Uint8Array): boolean {
  return blockSizeAt(Buffer.from(head.buffer, head.byteOffset, head.byteLength), 0) !== undefined;
}

/** The total size of the block whose header starts at `p`, or undefined if no valid header is there. */
function blockSizeAt(buf: Buffer, p: number): number | undefined {
  if (p + HEADER_MIN > buf.length) return undefined;
  if (buf[p] !== 0x1f || buf[p + 1] !== 0x8b || buf[p + 2] !== 8 || (buf[p + 3]! & 4) === 0) return undefined;
  const xlen = buf.readUInt16LE(p + 10);
  let s = p + 12;
  const end = s + xlen;
  if (end > buf.length) return undefined;
  while (s + 4 <= end) {
    const slen = buf.readUInt16LE(s + 2);
    if (buf[s] === 0x42 && buf[s + 1] === 0x43 && slen === 2 && s + 6 <= end) {
      const size = buf.readUInt16LE(s + 4) + 1;
      return size >= 12 + xlen + 8 ? size : undefined;
    }
    s += 4 + slen;
  }
  return undefined;
}

/**
 * The decompressed contents of a BGZF file, block by block (empty blocks skipped), with GAP where
 * a block was corrupt (bad header, deflate error, CRC32 or length mismatch) or the file ended
 * inside one. Every such loss is reported through `onBadBlock`. Memory: one read buffer (1 MiB)
 * plus one block.
 */
export async function* bgzfChunks(path: string, onBadBlock: (bad: BgzfBadBlock) => void): AsyncGenerator<Buffer | typeof GAP> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    let bufStart = 0; // file offset of buf[0]
    let eof = false;
    let p = 0; // position in buf
    const fill = async (need: number): Promise<void> => {
      // Make buf hold at least `need` bytes from p (or all that is left of the file).
      while (!eof && buf.length - p < need) {
        const chunk = Buffer.allocUnsafe(Math.max(1 << 20, need));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, bufStart + buf.length);
        if (bytesRead === 0) eof = true;
        buf = Buffer.concat([buf.subarray(p), chunk.subarray(0, bytesRead)]);
        bufStart += p;
        p = 0;
      }
    };
    let lastWasGap = false;
    let resyncing = false; // looking for the next header: one report per lost stretch
    const bad = (offset: number, reason: string): typeof GAP | undefined => {
      onBadBlock({ offset, reason });
      if (lastWasGap) return undefined;
      lastWasGap = true;
      return GAP;
    };
    for (;;) {
      await fill(HEADER_MIN + 0xffff);
      if (buf.length - p === 0) return;
      const at = bufStart + p;
      const size = blockSizeAt(buf, p);
      if (size === undefined) {
        // Not a block header: skip to the next place one starts.
        let next = p + 1;
        for (;;) {
          next = buf.indexOf(MAGIC, next);
          if (next < 0 || blockSizeAt(buf, next) !== undefined) break;
          next++;
        }
        if (!resyncing) {
          const gap = bad(at, buf.length - p < HEADER_MIN && eof ? 'file ends inside a block header' : 'no BGZF block header here');
          if (gap) yield gap;
          resyncing = true;
        }
        if (next < 0) {
          if (eof) return;
          p = Math.max(p + 1, buf.length - HEADER_MIN); // keep a possible header split across reads
          continue;
        }
        p = next;
        continue;
      }
      resyncing = false;
      if (buf.length - p < size) {
        const gap = bad(at, `file ends inside a block (${buf.length - p} of ${size} bytes)`);
        if (gap) yield gap;
        return;
      }
      const xlen = buf.readUInt16LE(p + 10);
      const cdata = buf.subarray(p + 12 + xlen, p + size - 8);
      const crc = buf.readUInt32LE(p + size - 8);
      const isize = buf.readUInt32LE(p + size - 4);
      let data: Buffer | undefined;
      let reason = '';
      try {
        data = inflateRawSync(cdata);
        if (data.length !== isize) reason = `decompressed ${data.length} bytes, block says ${isize}`;
        else if (crc32(data) >>> 0 !== crc) reason = 'CRC32 mismatch';
      } catch (err) {
        reason = `deflate error: ${(err as Error).message}`;
      }
      p += size;
      if (reason) {
        const gap = bad(at, reason);
        if (gap) yield gap;
        continue;
      }
      if (data!.length > 0) {
        lastWasGap = false;
        yield data!;
      }
    }
  } finally {
    await fh.close();
  }
}
