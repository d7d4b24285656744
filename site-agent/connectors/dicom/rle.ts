// DICOM RLE Lossless (PS3.5 Annex G): a frame is a 64-byte header (segment count + 15 offsets)
// followed by PackBits-compressed segments, one per byte plane, most significant byte first,
// sample by sample (R's MSB, R's LSB, G's MSB, ...).

export class RleDecodeError extends Error {
  constructor(
    message: string,
    /** Byte offset inside the frame where decoding failed. */
    readonly offset: number,
  ) {
    super(message);
    this.name = 'RleDecodeError';
  }
}

function readUint32LE(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}

/**
 * Decodes one RLE frame into its byte planes. Returns `segmentCount` planes of `pixelCount` bytes
 * each; plane `s * bytesPerSample + b` holds byte `b` (0 = most significant) of sample `s`.
 */
export function decodeRleFrame(frame: Uint8Array, pixelCount: number, expectedSegments: number): Uint8Array[] {
  if (frame.length < 64) throw new RleDecodeError(`RLE frame shorter than its 64-byte header (${frame.length} bytes)`, 0);
  const segments = readUint32LE(frame, 0);
  if (segments < 1 || segments > 15) throw new RleDecodeError(`RLE header gives ${segments} segments (must be 1-15)`, 0);
  if (segments !== expectedSegments) {
    throw new RleDecodeError(`RLE frame has ${segments} segments, the image needs ${expectedSegments}`, 0);
  }
  const offsets: number[] = [];
  for (let i = 0; i < segments; i++) offsets.push(readUint32LE(frame, 4 + 4 * i));
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = offsets[s]!;
    const end = s + 1 < segments ? offsets[s + 1]! : frame.length;
    if (start < 64 || start > frame.length || end < start || end > frame.length) {
      throw new RleDecodeError(`RLE segment ${s} offset ${start} is outside the frame`, 4 + 4 * s);
    }
    planes.push(unpackBits(frame, start, end, pixelCount));
  }
  return planes;
}

/** PackBits decoding of frame[start, end) into exactly `size` bytes. */
export function unpackBits(src: Uint8Array, start: number, end: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  let i = start;
  while (o < size) {
    if (i >= end) throw new RleDecodeError(`RLE segment ends after ${o} of ${size} bytes`, i);
    const n = src[i++]!;
    if (n < 128) {
      const count = n + 1;
      if (i + count > end) throw new RleDecodeError('RLE literal run runs past the segment end', i - 1);
      if (o + count > size) throw new RleDecodeError('RLE literal run overflows the plane', i - 1);
      out.set(src.subarray(i, i + count), o);
      i += count;
      o += count;
    } else if (n > 128) {
      const count = 257 - n;
      if (i >= end) throw new RleDecodeError('RLE replicate run has no byte', i - 1);
      if (o + count > size) throw new RleDecodeError('RLE replicate run overflows the plane', i - 1);
      out.fill(src[i++]!, o, o + count);
      o += count;
    }
    // n === 128: no operation
  }
  return out;
}

/** PackBits encoding of one byte plane (used to write RLE fixtures). */
export function packBits(plane: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  const n = plane.length;
  while (i < n) {
    // run of identical bytes
    let run = 1;
    while (i + run < n && run < 128 && plane[i + run] === plane[i]) run++;
    if (run >= 2) {
      out.push(257 - run, plane[i]!);
      i += run;
      continue;
    }
    // literal run until the next repeat of 2+ bytes
    let lit = 1;
    while (i + lit < n && lit < 128 && !(i + lit + 1 < n && plane[i + lit] === plane[i + lit + 1])) lit++;
    out.push(lit - 1);
    for (let k = 0; k < lit; k++) out.push(plane[i + k]!);
    i += lit;
  }
  if (out.length % 2) out.push(128); // segments are padded to even length with a no-op
  return Uint8Array.from(out);
}

/** Builds one RLE frame from byte planes (MSB plane first for each sample). */
export function encodeRleFrame(planes: readonly Uint8Array[]): Uint8Array {
  const encoded = planes.map(packBits);
  const total = 64 + encoded.reduce((s, e) => s + e.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, planes.length, true);
  let at = 64;
  encoded.forEach((e, s) => {
    view.setUint32(4 + 4 * s, at, true);
    out.set(e, at);
    at += e.length;
  });
  return out;
}
