/**
 * DICOM writer for synthetic radiographs: Digital X-Ray Image for Presentation (DX) or Computed
 * Radiography (CR), explicit VR little endian, 16-bit MONOCHROME2.
 *
 * One attribute list (`dicomAttributes`) feeds two serialisers that produce the same bytes:
 * `dcmjs` (the reference, DicomDict.write) and a direct serialiser for the cohort hot path
 * (dcmjs spends ~3 ms per 256×256 file, more than the whole per-patient budget). The unit tests
 * check byte equality of the two. The caller supplies the UIDs (so they match the FHIR
 * ImagingStudy) and the PatientID (the FHIR Patient id). Pure: returns bytes.
 */
import dcmjs from 'dcmjs';

export const SOP_CLASS = {
  DX: '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray Image Storage – For Presentation
  CR: '1.2.840.10008.5.1.4.1.1.1', // Computed Radiography Image Storage
} as const;
export type RadiographModality = keyof typeof SOP_CLASS;

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** fedsynth's implementation class UID (2.25 form of a fixed UUID). */
export const IMPLEMENTATION_CLASS_UID = '2.25.212880290430563431186349546620455532866';
export const IMPLEMENTATION_VERSION_NAME = 'FEDSYNTH_0_1';

/** A UUID as a DICOM UID under the 2.25 root (ISO/IEC 9834-8): "2.25." + the UUID as a decimal integer. */
export function uuidToDicomUid(uuid: string): string {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`uuidToDicomUid: not a UUID: ${uuid}`);
  return `2.25.${BigInt(`0x${hex}`).toString(10)}`;
}

const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
export function isDicomUid(s: string): boolean {
  return s.length <= 64 && UID_RE.test(s);
}

export interface DicomImageSpec {
  /** rows×cols stored values, row-major. */
  pixels: Uint16Array;
  rows: number;
  cols: number;
  bitsStored?: number;
  modality?: RadiographModality;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  /** The FHIR Patient id (PatientID, 0010,0020). */
  patientId: string;
  patientName?: string;
  /** FHIR birthDate YYYY-MM-DD. */
  patientBirthDate?: string;
  /** FHIR administrative gender; written as M/F/O. */
  patientSex?: string;
  /** YYYY-MM-DD. */
  studyDate: string;
  /** HH:MM:SS in UTC (TimezoneOffsetFromUTC +0000), so it equals the FHIR ImagingStudy.started instant. */
  studyTime: string;
  accessionNumber?: string;
  studyDescription?: string;
  seriesDescription?: string;
  bodyPart?: string;
  viewPosition?: string;
  /** Row, column spacing in mm (PixelSpacing; ImagerPixelSpacing for DX). */
  pixelSpacing: [number, number];
  windowCenter: number;
  windowWidth: number;
  seriesNumber?: number;
  instanceNumber?: number;
}

type Vr = 'UL' | 'OB' | 'OW' | 'UI' | 'SH' | 'CS' | 'DA' | 'TM' | 'LO' | 'PN' | 'DS' | 'IS' | 'US' | 'SS' | 'SQ';

export interface DicomAttribute {
  keyword: string;
  tag: number;
  vr: Vr;
  /** Strings (multi-valued joined by backslash in the file) or numbers for US/SS/UL; empty for SQ. */
  value: string[] | number[];
  /** SQ only: the items, each a data set in tag order. */
  items?: DicomAttribute[][];
}

/** Decimal string ≤ 16 chars (DS). */
export function formatDS(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`formatDS: ${v} is not finite`);
  let s = String(Number(v.toPrecision(10)));
  if (s.length > 16) s = v.toExponential(8);
  return s;
}

const SEX: Record<string, string> = { male: 'M', female: 'F', other: 'O', unknown: 'O' };

/** A code sequence item (Code Sequence Macro): value, scheme, meaning. */
function codeItem(value: string, scheme: string, meaning: string): DicomAttribute[] {
  return [
    { keyword: 'CodeValue', tag: 0x00080100, vr: 'SH', value: [value] },
    { keyword: 'CodingSchemeDesignator', tag: 0x00080102, vr: 'SH', value: [scheme] },
    { keyword: 'CodeMeaning', tag: 0x00080104, vr: 'LO', value: [meaning] },
  ];
}

/** Projections with their SNOMED CT codes (DICOM CID 4010, DX View). */
const VIEW_CODES: Record<string, [string, string]> = {
  PA: ['399348003', 'postero-anterior'],
  AP: ['399352003', 'antero-posterior'],
};

function da(date: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new Error(`DICOM date must be YYYY-MM-DD, got ${date}`);
  return date.replace(/-/g, '');
}

/** The file meta group (0002) and the data set, in tag order, without PixelData. */
export function dicomAttributes(spec: DicomImageSpec): { meta: DicomAttribute[]; dataset: DicomAttribute[] } {
  const modality = spec.modality ?? 'DX';
  const sopClass = SOP_CLASS[modality];
  if (!sopClass) throw new Error(`dicomAttributes: unsupported modality ${modality}`);
  for (const [k, u] of [
    ['studyInstanceUid', spec.studyInstanceUid],
    ['seriesInstanceUid', spec.seriesInstanceUid],
    ['sopInstanceUid', spec.sopInstanceUid],
  ] as const) {
    if (!isDicomUid(u)) throw new Error(`dicomAttributes: ${k} ${JSON.stringify(u)} is not a DICOM UID`);
  }
  if (spec.patientId.length === 0 || spec.patientId.length > 64) throw new Error('dicomAttributes: PatientID must be 1..64 characters');
  const bitsStored = spec.bitsStored ?? 16;
  if (spec.pixels.length !== spec.rows * spec.cols)
    throw new Error(`dicomAttributes: ${spec.pixels.length} pixels for ${spec.rows}×${spec.cols}`);
  const date = da(spec.studyDate);
  if (!/^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/.test(spec.studyTime)) throw new Error(`DICOM time must be HH:MM:SS, got ${spec.studyTime}`);
  const time = spec.studyTime.replace(/:/g, '');
  const view = spec.viewPosition ?? 'PA';
  const viewCode = VIEW_CODES[view];
  if (!viewCode) throw new Error(`dicomAttributes: view position ${view} is not one of ${Object.keys(VIEW_CODES).join(', ')}`);
  const spacing = spec.pixelSpacing.map(formatDS);
  const s = (keyword: string, tag: number, vr: Vr, ...v: string[]): DicomAttribute => ({ keyword, tag, vr, value: v });
  const n = (keyword: string, tag: number, vr: Vr, v: number): DicomAttribute => ({ keyword, tag, vr, value: [v] });
  const sq = (keyword: string, tag: number, ...items: DicomAttribute[][]): DicomAttribute => ({ keyword, tag, vr: 'SQ', value: [], items });
  const meta: DicomAttribute[] = [
    s('MediaStorageSOPClassUID', 0x00020002, 'UI', sopClass),
    s('MediaStorageSOPInstanceUID', 0x00020003, 'UI', spec.sopInstanceUid),
    s('TransferSyntaxUID', 0x00020010, 'UI', EXPLICIT_VR_LITTLE_ENDIAN),
    s('ImplementationClassUID', 0x00020012, 'UI', IMPLEMENTATION_CLASS_UID),
    s('ImplementationVersionName', 0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME),
  ];
  const dx = modality === 'DX';
  const dataset: (DicomAttribute | undefined)[] = [
    s('SpecificCharacterSet', 0x00080005, 'CS', 'ISO_IR 100'),
    s('ImageType', 0x00080008, 'CS', 'DERIVED', 'PRIMARY'),
    s('SOPClassUID', 0x00080016, 'UI', sopClass),
    s('SOPInstanceUID', 0x00080018, 'UI', spec.sopInstanceUid),
    s('StudyDate', 0x00080020, 'DA', date),
    s('ContentDate', 0x00080023, 'DA', date),
    s('StudyTime', 0x00080030, 'TM', time),
    s('ContentTime', 0x00080033, 'TM', time),
    s('TimezoneOffsetFromUTC', 0x00080201, 'SH', '+0000'),
    s('AccessionNumber', 0x00080050, 'SH', spec.accessionNumber ?? ''),
    s('Modality', 0x00080060, 'CS', modality),
    dx ? s('PresentationIntentType', 0x00080068, 'CS', 'FOR PRESENTATION') : undefined,
    s('Manufacturer', 0x00080070, 'LO', 'fedsynth'),
    s('ReferringPhysicianName', 0x00080090, 'PN', ''),
    s('ManufacturerModelName', 0x00081090, 'LO', 'fedsynth synthetic radiograph'),
    s('StudyDescription', 0x00081030, 'LO', spec.studyDescription ?? 'Synthetic chest radiograph'),
    s('SeriesDescription', 0x0008103e, 'LO', spec.seriesDescription ?? `${view} view`),
    // Chest: SNOMED CT 43799004 (DICOM CID 4009, DX Anatomy Imaged).
    sq('AnatomicRegionSequence', 0x00082218, codeItem('43799004', 'SCT', 'Chest')),
    s('PatientName', 0x00100010, 'PN', spec.patientName ?? `Synthetic^${spec.patientId.slice(0, 8)}`),
    s('PatientID', 0x00100020, 'LO', spec.patientId),
    s('PatientBirthDate', 0x00100030, 'DA', spec.patientBirthDate ? da(spec.patientBirthDate) : ''),
    s('PatientSex', 0x00100040, 'CS', spec.patientSex ? (SEX[spec.patientSex] ?? 'O') : ''),
    s('PatientIdentityRemoved', 0x00120062, 'CS', 'YES'),
    s('DeidentificationMethod', 0x00120063, 'LO', 'Synthetic: fedsynth differentially private model'),
    s('BodyPartExamined', 0x00180015, 'CS', spec.bodyPart ?? 'CHEST'),
    // No positioner is simulated; the detector type of the synthetic acquisition is unknown (Type 2: empty).
    dx ? s('PositionerType', 0x00181508, 'CS', '') : undefined,
    dx ? s('ImagerPixelSpacing', 0x00181164, 'DS', ...spacing) : undefined,
    s('ViewPosition', 0x00185101, 'CS', view),
    dx ? s('DetectorType', 0x00187004, 'CS', '') : undefined,
    s('StudyInstanceUID', 0x0020000d, 'UI', spec.studyInstanceUid),
    s('SeriesInstanceUID', 0x0020000e, 'UI', spec.seriesInstanceUid),
    s('StudyID', 0x00200010, 'SH', '1'),
    s('SeriesNumber', 0x00200011, 'IS', String(spec.seriesNumber ?? 1)),
    s('InstanceNumber', 0x00200013, 'IS', String(spec.instanceNumber ?? 1)),
    s('PatientOrientation', 0x00200020, 'CS', 'L', 'F'),
    // The chest is an unpaired structure.
    s('ImageLaterality', 0x00200062, 'CS', 'U'),
    n('SamplesPerPixel', 0x00280002, 'US', 1),
    s('PhotometricInterpretation', 0x00280004, 'CS', 'MONOCHROME2'),
    n('Rows', 0x00280010, 'US', spec.rows),
    n('Columns', 0x00280011, 'US', spec.cols),
    s('PixelSpacing', 0x00280030, 'DS', ...spacing),
    n('BitsAllocated', 0x00280100, 'US', 16),
    n('BitsStored', 0x00280101, 'US', bitsStored),
    n('HighBit', 0x00280102, 'US', bitsStored - 1),
    n('PixelRepresentation', 0x00280103, 'US', 0),
    s('PixelIntensityRelationship', 0x00281040, 'CS', 'LIN'),
    n('PixelIntensityRelationshipSign', 0x00281041, 'SS', 1),
    s('WindowCenter', 0x00281050, 'DS', formatDS(spec.windowCenter)),
    s('WindowWidth', 0x00281051, 'DS', formatDS(spec.windowWidth)),
    s('RescaleIntercept', 0x00281052, 'DS', '0'),
    s('RescaleSlope', 0x00281053, 'DS', '1'),
    s('RescaleType', 0x00281054, 'LO', 'US'),
    dx ? s('BurnedInAnnotation', 0x00280301, 'CS', 'NO') : undefined,
    s('LossyImageCompression', 0x00282110, 'CS', '00'),
    dx ? sq('AcquisitionContextSequence', 0x00400555) : undefined,
    dx
      ? sq('ViewCodeSequence', 0x00540220, [...codeItem(viewCode[0], 'SCT', viewCode[1]), sq('ViewModifierCodeSequence', 0x00540222)])
      : undefined,
    s('PresentationLUTShape', 0x20500020, 'CS', 'IDENTITY'),
  ];
  // A data set is written in ascending tag order.
  return { meta, dataset: dataset.filter((a): a is DicomAttribute => a !== undefined).sort((x, y) => x.tag - y.tag) };
}

// ---------------------------------------------------------------------------------------------
// dcmjs (reference) serialiser

function tagHex(tag: number): string {
  return tag.toString(16).toUpperCase().padStart(8, '0');
}

function toDcmjsDict(attrs: DicomAttribute[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of attrs) {
    const empty = a.value.length === 1 && a.value[0] === '';
    out[tagHex(a.tag)] = { vr: a.vr, Value: a.vr === 'SQ' ? (a.items ?? []).map(toDcmjsDict) : empty ? [] : a.value };
  }
  return out;
}

/** The file written by dcmjs (DicomDict.write). */
export function writeDicomDcmjs(spec: DicomImageSpec): Uint8Array {
  const { meta, dataset } = dicomAttributes(spec);
  const metaDict = { '00020001': { vr: 'OB', Value: [Uint8Array.from([0, 1]).buffer] }, ...toDcmjsDict(meta) };
  const dict = new dcmjs.data.DicomDict(metaDict);
  const pixelBytes = new Uint8Array(spec.pixels.byteLength);
  pixelBytes.set(new Uint8Array(spec.pixels.buffer, spec.pixels.byteOffset, spec.pixels.byteLength));
  if (!LITTLE_ENDIAN) swap16(pixelBytes);
  dict.dict = { ...toDcmjsDict(dataset), '7FE00010': { vr: 'OW', Value: [pixelBytes.buffer] } };
  return new Uint8Array(dict.write());
}

// ---------------------------------------------------------------------------------------------
// Direct serialiser (same bytes)

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LONG_VR = new Set<Vr>(['OB', 'OW', 'SQ']);

function swap16(b: Uint8Array): void {
  for (let i = 0; i + 1 < b.length; i += 2) {
    const t = b[i];
    b[i] = b[i + 1];
    b[i + 1] = t;
  }
}

/** A string VR's value as written: values joined by '\\', padded to even length (UI with NUL, others with a space). */
function paddedString(a: DicomAttribute): string {
  let s = (a.value as string[]).join('\\');
  if (s.length % 2) s += a.vr === 'UI' ? '\0' : ' ';
  return s;
}

/**
 * Sequences are written as dcmjs writes them: undefined length, each item of undefined length
 * closed by an Item Delimitation Item, the sequence closed by a Sequence Delimitation Item.
 */
const UNDEFINED_LENGTH = 0xffffffff;

/** Bytes of the element's value (strings: one byte per character, latin1; a sequence: its items and delimiters). */
function valueLength(a: DicomAttribute, str: string | undefined): number {
  switch (a.vr) {
    case 'SQ': {
      let len = 8;
      for (const item of a.items ?? []) {
        len += 16;
        for (const e of item) len += elementLength(e, isStringVr(e) ? paddedString(e) : undefined);
      }
      return len;
    }
    case 'US':
    case 'SS':
      return 2 * a.value.length;
    case 'UL':
      return 4 * a.value.length;
    default:
      return str!.length;
  }
}

/** Header and value length of an element. */
function elementLength(a: DicomAttribute, str: string | undefined): number {
  const v = valueLength(a, str);
  if (!LONG_VR.has(a.vr) && v > 0xffff) throw new Error(`DICOM ${a.keyword}: value too long`);
  return (LONG_VR.has(a.vr) ? 12 : 8) + v;
}

/** Writes the element at `at` of `out`; returns the offset after it. */
function writeElement(out: Buffer, at: number, a: DicomAttribute, str: string | undefined): number {
  const v = a.vr === 'SQ' ? UNDEFINED_LENGTH : valueLength(a, str);
  out.writeUInt16LE(a.tag >>> 16, at);
  out.writeUInt16LE(a.tag & 0xffff, at + 2);
  out.write(a.vr, at + 4, 'latin1');
  if (LONG_VR.has(a.vr)) {
    out.writeUInt16LE(0, at + 6);
    out.writeUInt32LE(v, at + 8);
    at += 12;
  } else {
    out.writeUInt16LE(v, at + 6);
    at += 8;
  }
  switch (a.vr) {
    case 'SQ':
      for (const item of a.items ?? []) {
        at = delimiter(out, at, 0xe000, UNDEFINED_LENGTH);
        for (const e of item) at = writeElement(out, at, e, isStringVr(e) ? paddedString(e) : undefined);
        at = delimiter(out, at, 0xe00d, 0);
      }
      return delimiter(out, at, 0xe0dd, 0);
    case 'US':
      for (const x of a.value as number[]) at = out.writeUInt16LE(x, at);
      return at;
    case 'SS':
      for (const x of a.value as number[]) at = out.writeInt16LE(x, at);
      return at;
    case 'UL':
      for (const x of a.value as number[]) at = out.writeUInt32LE(x, at);
      return at;
    default:
      return at + out.write(str!, at, 'latin1');
  }
}

/** An item tag (FFFE,element) with its 32-bit length. */
function delimiter(out: Buffer, at: number, element: number, length: number): number {
  out.writeUInt16LE(0xfffe, at);
  out.writeUInt16LE(element, at + 2);
  out.writeUInt32LE(length, at + 4);
  return at + 8;
}

const isStringVr = (a: DicomAttribute) => a.vr !== 'US' && a.vr !== 'SS' && a.vr !== 'UL' && a.vr !== 'SQ';
/** FileMetaInformationVersion (0002,0001) OB 00\01, as written. */
const META_VERSION = Uint8Array.from([0x02, 0x00, 0x01, 0x00, 0x4f, 0x42, 0, 0, 2, 0, 0, 0, 0, 1]);

/** The same bytes as `writeDicomDcmjs`, ~50× faster: sizes first, then every element written into one buffer. */
/**
 * The file's bytes. With `into` (a buffer reused from file to file, e.g. by a worker that writes
 * each file before making the next) they are written there when it is large enough and a view of
 * it is returned: a fresh 130 KiB buffer per image is external memory that drives V8's full
 * collections.
 */
export function writeDicom(spec: DicomImageSpec, into?: Buffer): Uint8Array {
  const { meta, dataset } = dicomAttributes(spec);
  const metaStr = meta.map((a) => (isStringVr(a) ? paddedString(a) : undefined));
  const dataStr = dataset.map((a) => (isStringVr(a) ? paddedString(a) : undefined));
  let metaLen = META_VERSION.length;
  for (let i = 0; i < meta.length; i++) metaLen += elementLength(meta[i], metaStr[i]);
  let dataLen = 0;
  for (let i = 0; i < dataset.length; i++) dataLen += elementLength(dataset[i], dataStr[i]);
  const groupLength: DicomAttribute = { keyword: 'FileMetaInformationGroupLength', tag: 0x00020000, vr: 'UL', value: [metaLen] };
  const pixelLen = spec.pixels.byteLength;
  const length = 128 + 4 + elementLength(groupLength, undefined) + metaLen + dataLen + 12 + pixelLen;
  const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  out.fill(0, 0, 128);
  let at = out.write('DICM', 128, 'latin1') + 128;
  at = writeElement(out, at, groupLength, undefined);
  out.set(META_VERSION, at);
  at += META_VERSION.length;
  for (let i = 0; i < meta.length; i++) at = writeElement(out, at, meta[i], metaStr[i]);
  for (let i = 0; i < dataset.length; i++) at = writeElement(out, at, dataset[i], dataStr[i]);
  out.writeUInt32LE(0x00107fe0, at);
  out.write('OW', at + 4, 'latin1');
  out.writeUInt16LE(0, at + 6);
  out.writeUInt32LE(pixelLen, at + 8);
  at += 12;
  const px = new Uint8Array(spec.pixels.buffer, spec.pixels.byteOffset, pixelLen);
  out.set(px, at);
  if (!LITTLE_ENDIAN) swap16(out.subarray(at));
  return out;
}
