// Parses one DICOM Part 10 object and decodes one frame of its pixel data into modality values.
// Only the linkage id (PatientID) and technical fields leave this module: names, birth dates and
// every other attribute are never copied out of the parsed data set.

import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import type { QuarantineRecord } from '../types.ts';
import { decodeRleFrame, RleDecodeError } from './rle.ts';
import { transferSyntax } from './transfer-syntax.ts';
import { resampleStoredToGrid, resampleToGrid, type GridSize, type StoredValues } from './pixels.ts';

export type FrameChoice = number | 'first' | 'middle';

export interface DicomDecodeOptions {
  /** Which frame of a multi-frame object to decode: an index (0-based), 'first' (default) or 'middle'. */
  frame?: FrameChoice;
}

/** What the connector exposes about one image: the linkage id and technical fields only. */
export interface DicomImage {
  source: string;
  /** DICOM PatientID (0010,0020): the linkage id configured at the site. */
  patientId?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  sopClassUid?: string;
  modality?: string;
  bodyPart?: string;
  transferSyntaxUid: string;
  transferSyntaxName: string;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  photometricInterpretation: string;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** Window in the same (modality, inversion-applied) space as `pixels`. */
  windowCenter?: number;
  windowWidth?: number;
  numberOfFrames: number;
  /** The frame decoded into `pixels`. */
  frameIndex: number;
  /** True when MONOCHROME1 values were inverted so that bright = dense. */
  inverted: boolean;
  /** The range stored values can take, mapped like `pixels` (rescale and inversion applied). */
  valueRange: [number, number];
  /**
   * rows × columns modality values, row-major: rescale applied, MONOCHROME1 inverted, colour
   * converted to luminance (0.299 R + 0.587 G + 0.114 B; the Y channel for YBR_FULL).
   */
  pixels: Float32Array;
}

export type DicomParseResult = { ok: true; image: DicomImage } | { ok: false; record: QuarantineRecord };

class Reject extends Error {
  constructor(
    readonly reason: string,
    readonly offset?: number,
    readonly detail?: string,
  ) {
    super(reason);
  }
}

const TAG = {
  patientId: 'x00100020',
  studyUid: 'x0020000d',
  seriesUid: 'x0020000e',
  sopUid: 'x00080018',
  sopClass: 'x00080016',
  modality: 'x00080060',
  bodyPart: 'x00180015',
  transferSyntax: 'x00020010',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  planar: 'x00280006',
  frames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  pixelRepresentation: 'x00280103',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  pixelData: 'x7fe00010',
  sharedGroups: 'x52009229',
  perFrameGroups: 'x52009230',
  pixelValueTransformation: 'x00289145',
  frameVoiLut: 'x00289132',
} as const;

function inflater(arr: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(arr.subarray(position));
  const out = new Uint8Array(position + inflated.length);
  out.set(arr.subarray(0, position));
  out.set(inflated, position);
  return out;
}

function str(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === '' ? undefined : v;
}

function firstItem(ds: DataSet | undefined, tag: string): DataSet | undefined {
  return ds?.elements[tag]?.items?.[0]?.dataSet;
}

/**
 * An uninitialised Float32Array (every element is written by the decoder): zero-filling large
 * typed arrays dominated decode time, so the memory comes from Buffer.allocUnsafeSlow.
 */
function allocFloat32(n: number): Float32Array {
  const b = Buffer.allocUnsafeSlow(n * 4);
  return new Float32Array(b.buffer, b.byteOffset, n);
}

/** Parses the bytes of a Part 10 file; never throws. */
export function parseDicomBytes(bytes: Uint8Array, source: string, options: DicomDecodeOptions = {}): DicomParseResult {
  const reject = (reason: string, offset?: number, detail?: string): DicomParseResult => ({
    ok: false,
    record: { source, modality: 'dicom', reason, ...(offset !== undefined ? { offset } : {}), ...(detail ? { detail } : {}) },
  });
  if (bytes.length < 132 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    return reject('not a DICOM Part 10 file', 128, 'no "DICM" prefix at byte 128');
  }
  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, { inflater });
  } catch (err) {
    return rejectParseError(err, bytes.length, reject);
  }
  try {
    return { ok: true, image: decodeDataSet(ds, source, options) };
  } catch (err) {
    if (err instanceof Reject) return reject(err.reason, err.offset, err.detail);
    if (err instanceof RleDecodeError) return reject('corrupt RLE pixel data', undefined, err.message);
    return reject('pixel decoding failed', undefined, err instanceof Error ? err.message : String(err));
  }
}

function rejectParseError(
  err: unknown,
  fileLength: number,
  reject: (reason: string, offset?: number, detail?: string) => DicomParseResult,
): DicomParseResult {
  // dicom-parser throws either an Error/string, or { exception, dataSet } with what it parsed so far.
  const e = err as { exception?: unknown; dataSet?: DataSet } | Error | string;
  const message =
    typeof e === 'string'
      ? e
      : e instanceof Error
        ? e.message
        : typeof e.exception === 'string'
          ? e.exception
          : e.exception instanceof Error
            ? e.exception.message
            : String(e.exception);
  if (/overrun|past end|end of buffer|truncat/i.test(message)) {
    // The element that failed starts where the last complete element ends.
    let offset = 0;
    const partial = typeof e === 'object' && !(e instanceof Error) ? e.dataSet : undefined;
    for (const el of Object.values(partial?.elements ?? {})) {
      const end = el.dataOffset + (el.length >= 0 && el.length !== 0xffffffff ? el.length : 0);
      if (end > offset && end <= fileLength) offset = end;
    }
    return reject('truncated file', offset, `file is ${fileLength} bytes; data ends inside the element at byte ${offset} (${message})`);
  }
  if (/deflat|inflat|zlib|incorrect header|invalid (block|distance|code)/i.test(message)) {
    return reject('corrupt deflated data set', undefined, message);
  }
  if (/transfer syntax/i.test(message)) return reject('missing or invalid transfer syntax', undefined, message);
  return reject('unparseable DICOM', undefined, message);
}

function decodeDataSet(ds: DataSet, source: string, options: DicomDecodeOptions): DicomImage {
  const tsUid = str(ds, TAG.transferSyntax) ?? '1.2.840.10008.1.2';
  const ts = transferSyntax(tsUid);
  const pixelEl = ds.elements[TAG.pixelData];
  if (!pixelEl) throw new Reject('no pixel data');
  if (ts.encoding === 'unsupported') {
    throw new Reject(`unsupported transfer syntax ${ts.uid} (${ts.name})`, pixelEl.dataOffset);
  }
  const rows = ds.uint16(TAG.rows) ?? 0;
  const columns = ds.uint16(TAG.columns) ?? 0;
  const bitsAllocated = ds.uint16(TAG.bitsAllocated) ?? 0;
  const bitsStored = ds.uint16(TAG.bitsStored) ?? bitsAllocated;
  const pixelRepresentation = ds.uint16(TAG.pixelRepresentation) ?? 0;
  const samplesPerPixel = ds.uint16(TAG.samplesPerPixel) ?? 1;
  const planar = ds.uint16(TAG.planar) ?? 0;
  const photometric = (str(ds, TAG.photometric) ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).toUpperCase();
  const numberOfFrames = Math.max(1, ds.intString(TAG.frames) ?? 1);
  if (!(rows > 0 && columns > 0)) throw new Reject('missing image dimensions', undefined, `rows=${rows} columns=${columns}`);
  if (![1, 8, 16, 32].includes(bitsAllocated)) throw new Reject(`unsupported bits allocated ${bitsAllocated}`);
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated)) {
    throw new Reject(`invalid bits stored ${bitsStored} for bits allocated ${bitsAllocated}`);
  }
  const mono = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  const colour = photometric === 'RGB' || photometric === 'YBR_FULL';
  if (!((mono && samplesPerPixel === 1) || (colour && samplesPerPixel === 3))) {
    throw new Reject(`unsupported photometric interpretation ${photometric}`, undefined, `${samplesPerPixel} samples per pixel`);
  }
  if (ts.encoding === 'rle' && bitsAllocated === 1) throw new Reject('unsupported bits allocated 1 with RLE');

  const frameIndex = chooseFrame(options.frame ?? 'first', numberOfFrames);

  // Rescale and window: top level, else the enhanced multi-frame functional groups.
  const perFrame = ds.elements[TAG.perFrameGroups]?.items?.[frameIndex]?.dataSet;
  const shared = firstItem(ds, TAG.sharedGroups);
  const transformSets = [ds, firstItem(perFrame, TAG.pixelValueTransformation), firstItem(shared, TAG.pixelValueTransformation)];
  const voiSets = [ds, firstItem(perFrame, TAG.frameVoiLut), firstItem(shared, TAG.frameVoiLut)];
  const pick = (sets: (DataSet | undefined)[], tag: string): number | undefined => {
    for (const s of sets) {
      const v = s?.floatString(tag);
      if (v !== undefined && Number.isFinite(v)) return v;
    }
    return undefined;
  };
  const rescaleSlope = mono ? (pick(transformSets, TAG.rescaleSlope) ?? 1) : 1;
  const rescaleIntercept = mono ? (pick(transformSets, TAG.rescaleIntercept) ?? 0) : 0;
  let windowCenter = pick(voiSets, TAG.windowCenter);
  const windowWidth = pick(voiSets, TAG.windowWidth);

  const pixelCount = rows * columns;
  const layout: Layout = {
    pixelCount,
    numberOfFrames,
    frameIndex,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    planar,
  };
  let lo: number;
  let hi: number;
  if (colour) {
    lo = 0;
    hi = 2 ** bitsStored - 1;
  } else {
    const storedLo = pixelRepresentation === 1 ? -(2 ** (bitsStored - 1)) : 0;
    const storedHi = pixelRepresentation === 1 ? 2 ** (bitsStored - 1) - 1 : 2 ** bitsStored - 1;
    const m1 = storedLo * rescaleSlope + rescaleIntercept;
    const m2 = storedHi * rescaleSlope + rescaleIntercept;
    lo = Math.min(m1, m2);
    hi = Math.max(m1, m2);
  }
  const inverted = photometric === 'MONOCHROME1';
  // Modality value = stored · slope + intercept, then (MONOCHROME1) lo + hi − value: one linear map.
  const map = inverted
    ? { slope: -rescaleSlope, intercept: lo + hi - rescaleIntercept }
    : { slope: rescaleSlope, intercept: rescaleIntercept };
  if (inverted && windowCenter !== undefined) windowCenter = lo + hi - windowCenter;

  // Plain greyscale frames (the bulk of any archive) stay as stored integers: the full Float32
  // frame is built only if someone reads `pixels`, and `dicomGrid` reduces the stored values
  // straight to a grid. Every check (truncation, frame range) still happens here, at parse time.
  const stored =
    mono && ts.encoding !== 'rle' && (bitsAllocated === 8 || bitsAllocated === 16)
      ? storedFrame(ds, pixelEl, ts.encoding === 'native-le', layout)
      : undefined;
  let eager: Float32Array | undefined;
  if (!stored) {
    const channels = decodeChannels(ds, pixelEl, ts.encoding, layout, rescaleSlope, rescaleIntercept);
    eager = colour ? allocFloat32(pixelCount) : channels[0]!;
    if (colour) {
      const [a, b, c] = channels as [Float32Array, Float32Array, Float32Array];
      if (photometric === 'RGB') for (let i = 0; i < pixelCount; i++) eager[i] = 0.299 * a[i]! + 0.587 * b[i]! + 0.114 * c[i]!;
      else eager.set(a);
    }
    if (inverted) {
      const sum = lo + hi;
      for (let i = 0; i < pixelCount; i++) eager[i] = sum - eager[i]!;
    }
  }

  const image: DicomImage = {
    source,
    transferSyntaxUid: ts.uid,
    transferSyntaxName: ts.name,
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    photometricInterpretation: photometric,
    rescaleSlope,
    rescaleIntercept,
    numberOfFrames,
    frameIndex,
    inverted,
    valueRange: [lo, hi],
    pixels: eager as Float32Array,
  };
  if (stored) {
    const unpack = (): Float32Array => {
      const out = allocFloat32(pixelCount);
      const bytes = new Uint8Array(stored.values.buffer, stored.values.byteOffset, stored.values.byteLength);
      const bps = bitsAllocated / 8;
      unpackSample(
        bytes,
        0,
        bps,
        pixelCount,
        bps,
        !stored.byteSwapped,
        bitsStored,
        pixelRepresentation === 1,
        out,
        map.slope,
        map.intercept,
      );
      return out;
    };
    Object.defineProperty(image, 'pixels', {
      enumerable: true,
      configurable: true,
      get(): Float32Array {
        const px = unpack();
        Object.defineProperty(image, 'pixels', { value: px, enumerable: true, writable: true, configurable: true });
        return px;
      },
    });
    storedFrames.set(image, { ...stored, map });
  }
  const optional: [keyof DicomImage, string][] = [
    ['patientId', TAG.patientId],
    ['studyInstanceUid', TAG.studyUid],
    ['seriesInstanceUid', TAG.seriesUid],
    ['sopInstanceUid', TAG.sopUid],
    ['sopClassUid', TAG.sopClass],
    ['modality', TAG.modality],
    ['bodyPart', TAG.bodyPart],
  ];
  for (const [key, tag] of optional) {
    const v = str(ds, tag);
    if (v !== undefined) (image as unknown as Record<string, unknown>)[key] = v;
  }
  if (windowCenter !== undefined && windowWidth !== undefined && windowWidth > 0) {
    image.windowCenter = windowCenter;
    image.windowWidth = windowWidth;
  }
  return image;
}

interface StoredFrame {
  /** The frame's stored values, aligned to their size. */
  values: StoredValues;
  bitsStored: number;
  signed: boolean;
  /** Big-endian 16-bit values left in file order (swapped where they are read). */
  byteSwapped: boolean;
}

/** Lazily decodable frames of the images this module returned (dropped with the image). */
const storedFrames = new WeakMap<DicomImage, StoredFrame & { map: { slope: number; intercept: number } }>();

/** Locates one native greyscale frame of 8 or 16 bits and checks it is all there. */
function storedFrame(ds: DataSet, el: Element, littleEndian: boolean, L: Layout): StoredFrame {
  if (el.encapsulatedPixelData) throw new Reject('encapsulated pixel data in a native transfer syntax', el.dataOffset);
  const data = ds.byteArray;
  const available = Math.min(el.length, data.length - el.dataOffset);
  const bytesPerSample = L.bitsAllocated / 8;
  const frameBytes = L.pixelCount * bytesPerSample;
  if (available < (L.frameIndex + 1) * frameBytes) {
    throw new Reject(
      'truncated pixel data',
      el.dataOffset + available,
      `frame ${L.frameIndex} needs bytes up to ${(L.frameIndex + 1) * frameBytes} of the pixel data, element has ${available}`,
    );
  }
  const start = data.byteOffset + el.dataOffset + L.frameIndex * frameBytes;
  const signed = L.pixelRepresentation === 1;
  let buffer: ArrayBufferLike = data.buffer;
  let offset = start;
  let byteSwapped = bytesPerSample === 2 && !littleEndian;
  if (bytesPerSample === 2 && start % 2 !== 0) {
    // A 16-bit view needs an even offset: a native-order copy (memcpy and swap16 run in C++).
    const copy = Buffer.allocUnsafeSlow(frameBytes);
    copy.set(data.subarray(start - data.byteOffset, start - data.byteOffset + frameBytes));
    if (byteSwapped) copy.swap16();
    byteSwapped = false;
    buffer = copy.buffer;
    offset = copy.byteOffset;
  }
  const values: StoredValues =
    bytesPerSample === 1
      ? signed
        ? new Int8Array(buffer, offset, L.pixelCount)
        : new Uint8Array(buffer, offset, L.pixelCount)
      : signed
        ? new Int16Array(buffer, offset, L.pixelCount)
        : new Uint16Array(buffer, offset, L.pixelCount);
  return { values, bitsStored: L.bitsStored, signed, byteSwapped };
}

/**
 * The image's modality values (rescaled, MONOCHROME1 inverted, as in `pixels`) area-averaged onto
 * a grid. For native greyscale frames this reads the stored integers directly (no full-size float
 * frame is made); otherwise it resamples `pixels`. Equal to `resampleToGrid(image.pixels, …)` up to
 * float rounding.
 */
export function dicomGrid(image: DicomImage, targetSize: number | GridSize): Float32Array {
  const frame = storedFrames.get(image);
  const own = Object.getOwnPropertyDescriptor(image, 'pixels');
  if (!frame || (own && 'value' in own)) return resampleToGrid(image.pixels, image.rows, image.columns, targetSize);
  const mean = resampleStoredToGrid(frame.values, image.rows, image.columns, targetSize, frame.bitsStored, frame.signed, frame.byteSwapped);
  const out = new Float32Array(mean.length);
  const { slope, intercept } = frame.map;
  for (let i = 0; i < mean.length; i++) out[i] = mean[i]! * slope + intercept;
  return out;
}

function chooseFrame(choice: FrameChoice, numberOfFrames: number): number {
  if (choice === 'first') return 0;
  if (choice === 'middle') return Math.floor((numberOfFrames - 1) / 2);
  if (!Number.isInteger(choice) || choice < 0 || choice >= numberOfFrames) {
    throw new Reject('frame index out of range', undefined, `frame ${choice} requested, object has ${numberOfFrames}`);
  }
  return choice;
}

interface Layout {
  pixelCount: number;
  numberOfFrames: number;
  frameIndex: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  planar: number;
}

/**
 * Stored values of one sample (masked to bits stored, sign-extended), then `* slope + intercept`,
 * into `out`. Pixel i's sample starts at byte `base + i * stride`. Written as tight loops per
 * case: this is the hot path of DICOM ingest.
 */
function unpackSample(
  src: Uint8Array,
  base: number,
  stride: number,
  n: number,
  bytesPerSample: number,
  le: boolean,
  bitsStored: number,
  signed: boolean,
  out: Float32Array,
  slope = 1,
  intercept = 0,
): void {
  const shift = 32 - bitsStored;
  const identity = slope === 1 && intercept === 0;
  if (bytesPerSample === 2 && le && (src.byteOffset + base) % 2 === 0 && stride === 2) {
    // Contiguous, aligned little endian (the common case): typed views, native conversion when
    // no masking is needed.
    if (bitsStored === 16) {
      out.set(signed ? new Int16Array(src.buffer, src.byteOffset + base, n) : new Uint16Array(src.buffer, src.byteOffset + base, n));
      if (!identity) for (let i = 0; i < n; i++) out[i] = out[i]! * slope + intercept;
      return;
    }
    const view = new Uint16Array(src.buffer, src.byteOffset + base, n);
    const mask = (1 << bitsStored) - 1;
    if (signed) {
      if (identity) for (let i = 0; i < n; i++) out[i] = (view[i]! << shift) >> shift;
      else for (let i = 0; i < n; i++) out[i] = ((view[i]! << shift) >> shift) * slope + intercept;
    } else if (identity) for (let i = 0; i < n; i++) out[i] = view[i]! & mask;
    else for (let i = 0; i < n; i++) out[i] = (view[i]! & mask) * slope + intercept;
    return;
  }
  if (bytesPerSample === 1) {
    if (bitsStored === 8 && !signed && stride === 1 && identity) {
      out.set(src.subarray(base, base + n));
      return;
    }
    const mask = bitsStored >= 8 ? 0xff : (1 << bitsStored) - 1;
    if (signed) for (let i = 0, at = base; i < n; i++, at += stride) out[i] = (((src[at]! & mask) << shift) >> shift) * slope + intercept;
    else for (let i = 0, at = base; i < n; i++, at += stride) out[i] = (src[at]! & mask) * slope + intercept;
  } else if (bytesPerSample === 2) {
    const mask = bitsStored >= 16 ? 0xffff : (1 << bitsStored) - 1;
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    if (signed)
      for (let i = 0, at = base; i < n; i++, at += stride) out[i] = ((dv.getUint16(at, le) << shift) >> shift) * slope + intercept;
    else for (let i = 0, at = base; i < n; i++, at += stride) out[i] = (dv.getUint16(at, le) & mask) * slope + intercept;
  } else {
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0, at = base; i < n; i++, at += stride) {
      const v = dv.getUint32(at, le);
      out[i] = (signed ? (v << shift) >> shift : shift === 0 ? v : (v << shift) >>> shift) * slope + intercept;
    }
  }
}

/** Returns one Float32Array of stored values (masked to bits stored, sign-extended) per sample. */
function decodeChannels(
  ds: DataSet,
  el: Element,
  encoding: 'native-le' | 'native-be' | 'rle',
  L: Layout,
  slope: number,
  intercept: number,
): Float32Array[] {
  const data = ds.byteArray; // the inflated array for deflate, else the file bytes
  const { pixelCount, samplesPerPixel: spp, bitsAllocated: ba } = L;
  const channels = Array.from({ length: spp }, () => allocFloat32(pixelCount));
  const signed = L.pixelRepresentation === 1;

  if (encoding === 'rle') {
    if (!el.encapsulatedPixelData) throw new Reject('RLE transfer syntax without encapsulated pixel data', el.dataOffset);
    const frame = rleFrameBytes(ds, el, L);
    const bytesPerSample = ba / 8;
    const planes = decodeRleFrame(frame, pixelCount, spp * bytesPerSample);
    for (let s = 0; s < spp; s++) {
      // Re-interleave the byte planes of this sample as big-endian values, then unpack.
      if (bytesPerSample === 1) {
        unpackSample(planes[s]!, 0, 1, pixelCount, 1, true, L.bitsStored, signed, channels[s]!, slope, intercept);
        continue;
      }
      const joined = new Uint8Array(pixelCount * bytesPerSample);
      for (let b = 0; b < bytesPerSample; b++) {
        const plane = planes[s * bytesPerSample + b]!;
        for (let i = 0, at = b; i < pixelCount; i++, at += bytesPerSample) joined[at] = plane[i]!;
      }
      unpackSample(joined, 0, bytesPerSample, pixelCount, bytesPerSample, false, L.bitsStored, signed, channels[s]!, slope, intercept);
    }
    return channels;
  }

  if (el.encapsulatedPixelData) throw new Reject('encapsulated pixel data in a native transfer syntax', el.dataOffset);
  const available = Math.min(el.length, data.length - el.dataOffset);
  if (ba === 1) {
    const bitStart = L.frameIndex * pixelCount;
    const needBytes = Math.ceil((bitStart + pixelCount) / 8);
    if (available < needBytes) {
      throw new Reject('truncated pixel data', el.dataOffset + available, `need ${needBytes} bytes, have ${available}`);
    }
    const ch = channels[0]!;
    for (let i = 0; i < pixelCount; i++) {
      const bit = bitStart + i;
      ch[i] = ((data[el.dataOffset + (bit >> 3)]! >> (bit & 7)) & 1) * slope + intercept;
    }
    return channels;
  }
  const bytesPerSample = ba / 8;
  const frameBytes = pixelCount * spp * bytesPerSample;
  const start = el.dataOffset + L.frameIndex * frameBytes;
  if (available < (L.frameIndex + 1) * frameBytes) {
    throw new Reject(
      'truncated pixel data',
      el.dataOffset + available,
      `frame ${L.frameIndex} needs bytes up to ${(L.frameIndex + 1) * frameBytes} of the pixel data, element has ${available}`,
    );
  }
  let src: Uint8Array = data;
  let frameStart = start;
  let le = encoding === 'native-le';
  if (!le && bytesPerSample > 1) {
    // Big endian: byte-swap a copy of the frame natively, then take the little-endian path.
    const copy = Buffer.allocUnsafeSlow(frameBytes);
    copy.set(data.subarray(start, start + frameBytes));
    if (bytesPerSample === 2) copy.swap16();
    else copy.swap32();
    src = copy;
    frameStart = 0;
    le = true;
  }
  for (let s = 0; s < spp; s++) {
    const planar = L.planar === 1 && spp > 1;
    const base = frameStart + (planar ? s * pixelCount * bytesPerSample : s * bytesPerSample);
    const stride = planar ? bytesPerSample : spp * bytesPerSample;
    unpackSample(src, base, stride, pixelCount, bytesPerSample, le, L.bitsStored, signed, channels[s]!, slope, intercept);
  }
  return channels;
}

function rleFrameBytes(ds: DataSet, el: Element, L: Layout): Uint8Array {
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) throw new Reject('encapsulated pixel data has no fragments', el.dataOffset);
  try {
    if ((el.basicOffsetTable?.length ?? 0) > 0) {
      if (L.frameIndex >= el.basicOffsetTable!.length) {
        throw new Reject('frame index out of range', el.dataOffset, `basic offset table lists ${el.basicOffsetTable!.length} frames`);
      }
      return dicomParser.readEncapsulatedImageFrame(ds, el, L.frameIndex) as Uint8Array;
    }
    if (L.numberOfFrames === 1) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length) as Uint8Array;
    }
    if (fragments.length === L.numberOfFrames) {
      // RLE requires one fragment per frame.
      return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, L.frameIndex, 1) as Uint8Array;
    }
  } catch (err) {
    if (err instanceof Reject) throw err;
    throw new Reject('cannot read encapsulated frame', el.dataOffset, err instanceof Error ? err.message : String(err));
  }
  throw new Reject(
    'cannot locate frame in encapsulated pixel data',
    el.dataOffset,
    `${L.numberOfFrames} frames, ${fragments.length} fragments, no basic offset table`,
  );
}
