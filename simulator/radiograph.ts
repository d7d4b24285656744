/**
 * The simulated hospitals' frontal chest radiographs, written with dcmjs as DICOM Part 10 DX/CR
 * objects. The anatomy is the cohort's (modalities/image/chest-radiograph.ts: the NIH atlas
 * deformed by the patient's age, sex and build, the site's geometric magnification
 * `scanner.scale`, findings drawn in the lungs), so the federation learns from images that look
 * like the ones it will write.
 * - acquisition: stored = (offset + gain · density + noise) · (2^bitsStored − 1), MONOCHROME1
 *   sites store the inverse; a window centre/width covering the site's range; pixel spacing from
 *   the field of view for the patient's age.
 * Identifiers written (as a real modality would): PatientName, PatientID (= the linkage id, the
 * MRN), PatientBirthDate, PatientSex; the site connector must never read the first two into
 * features.
 */
import dcmjs from 'dcmjs';
import type { Rng } from '../model/rng.ts';
import { frontalChestView } from '../modalities/clinical/index.ts';
import { renderChestRadiograph, type RenderedChest } from '../modalities/image/chest-radiograph.ts';
import type { ImageFindings, ScannerProfile } from './latent.ts';

const { DicomDict, DicomMetaDictionary } = (
  dcmjs as unknown as {
    data: {
      DicomDict: new (meta: unknown) => { dict: unknown; write(): ArrayBuffer };
      DicomMetaDictionary: { denaturalizeDataset(d: unknown): unknown };
    };
  }
).data;

export const DX_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.1.1'; // Digital X-Ray Image Storage – For Presentation
export const CR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.1'; // Computed Radiography Image Storage
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_UID = '2.25.302340289110931812097355127392051815361';

/** A DICOM UID under the 2.25 (UUID-derived) root, deterministic for the stream. */
/** Fractional years from a birth date to a study date (ISO dates), at least 0. */
export function ageAtStudy(birthDate: string, studyDate: string): number {
  return Math.max(0, (Date.parse(studyDate) - Date.parse(birthDate)) / (365.2425 * 86_400_000));
}

export function uid(rng: Rng): string {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(rng.nextU32());
  return `2.25.${v}`;
}

/** Draws the density image of one patient's radiograph. */
export function renderRadiograph(
  size: number,
  patient: { ageYears: number; sex: string },
  findings: ImageFindings,
  scanner: ScannerProfile,
  rng: Rng,
): RenderedChest {
  return renderChestRadiograph(size, { ageYears: patient.ageYears, sex: patient.sex, magnification: scanner.scale }, findings, rng);
}

/** Stored pixel values of a density image on a scanner. */
export function acquire(img: RenderedChest, scanner: ScannerProfile, rng: Rng): Uint16Array {
  const max = 2 ** scanner.bitsStored - 1;
  const out = new Uint16Array(img.density.length);
  const sd = scanner.noise;
  for (let i = 0; i < out.length; i++) {
    // Sum of 3 uniforms ≈ N(0, 0.5²): fast, bounded noise.
    const n = (rng.next() + rng.next() + rng.next() - 1.5) * 2 * sd;
    let v = scanner.offset + scanner.gain * img.density[i] + n;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    const stored = Math.round(v * max);
    out[i] = scanner.photometric === 'MONOCHROME1' ? max - stored : stored;
  }
  return out;
}

export interface RadiographMeta {
  patientId: string;
  patientName: string;
  birthDate: string;
  sex: 'female' | 'male';
  studyDate: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  accessionNumber: string;
  institution: string;
  seriesNumber: number;
  instanceNumber: number;
}

const da = (iso: string) => iso.replaceAll('-', '');

/** A DICOM Part 10 file (explicit VR little endian) of a radiograph. */
export function radiographDicom(
  pixels: Uint16Array,
  size: number,
  fieldMm: number,
  scanner: ScannerProfile,
  meta: RadiographMeta,
): Uint8Array {
  const max = 2 ** scanner.bitsStored - 1;
  const sopClass = scanner.modality === 'DX' ? DX_SOP_CLASS : CR_SOP_CLASS;
  const view = frontalChestView(ageAtStudy(meta.birthDate, meta.studyDate));
  const ds: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY'],
    SOPClassUID: sopClass,
    SOPInstanceUID: meta.sopInstanceUid,
    StudyDate: da(meta.studyDate),
    SeriesDate: da(meta.studyDate),
    ContentDate: da(meta.studyDate),
    StudyTime: '101500',
    AccessionNumber: meta.accessionNumber,
    Modality: scanner.modality,
    ...(scanner.modality === 'DX' ? { PresentationIntentType: 'FOR PRESENTATION' } : {}),
    Manufacturer: scanner.manufacturer,
    InstitutionName: meta.institution,
    StudyDescription: `XR CHEST ${view}`,
    SeriesDescription: view,
    PatientName: meta.patientName,
    PatientID: meta.patientId,
    PatientBirthDate: da(meta.birthDate),
    PatientSex: meta.sex === 'female' ? 'F' : 'M',
    BodyPartExamined: 'CHEST',
    ViewPosition: view,
    StudyInstanceUID: meta.studyInstanceUid,
    SeriesInstanceUID: meta.seriesInstanceUid,
    StudyID: meta.accessionNumber.slice(-8),
    SeriesNumber: String(meta.seriesNumber),
    InstanceNumber: String(meta.instanceNumber),
    PatientOrientation: ['L', 'F'],
    SamplesPerPixel: 1,
    PhotometricInterpretation: scanner.photometric,
    Rows: size,
    Columns: size,
    PixelSpacing: [(fieldMm / size).toFixed(4), (fieldMm / size).toFixed(4)],
    BitsAllocated: 16,
    BitsStored: scanner.bitsStored,
    HighBit: scanner.bitsStored - 1,
    PixelRepresentation: 0,
    WindowCenter: String(Math.round(max / 2)),
    WindowWidth: String(max),
    RescaleIntercept: '0',
    RescaleSlope: '1',
    PixelData: pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength),
    _vrMap: { PixelData: 'OW' },
  };
  if (scanner.modality === 'CR') delete ds.ImageType;
  const fileMeta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClass,
    MediaStorageSOPInstanceUID: meta.sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: IMPLEMENTATION_UID,
    ImplementationVersionName: 'FEDSYNTH_SIM_1',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(fileMeta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  return new Uint8Array(dict.write());
}
