/**
 * Procedural frontal chest radiographs, written with dcmjs as DICOM Part 10 DX/CR objects.
 *
 * Anatomy (a density image in [0, 1], bright = dense), in units of the frame width scaled by the
 * site's `scanner.scale` and a per-patient body size (±5 %):
 * - air outside the body (0.03), soft tissue of the trunk (0.45), abdomen below the diaphragm;
 * - two lung fields (ellipses at ±0.19 from the midline, semi-axes 0.15 × 0.30; 0.12 with a
 *   faint vascular texture), cut by domed hemidiaphragms;
 * - mediastinum (0.62) and spine (+0.12), ribs (+0.09 curved bands over the lungs);
 * - the heart: an ellipse below the mediastinum whose width gives a cardiothoracic ratio of
 *   ~0.42 (N(0.42, 0.025)), or ~0.60 (N(0.60, 0.03)) with cardiomegaly;
 * - findings: lung opacity (a Gaussian consolidation, σ 0.05, +0.45, in the lateral lower or
 *   middle zone of one lung), a pulmonary nodule (a disk of radius 0.024, +0.42, in the upper or
 *   middle zone of one lung), cardiomegaly (above);
 * - acquisition: stored = (offset + gain · density + noise) · (2^bitsStored − 1), MONOCHROME1
 *   sites store the inverse; a window centre/width covering the site's range.
 * Identifiers written (as a real modality would): PatientName, PatientID (= the linkage id, the
 * MRN), PatientBirthDate, PatientSex; the site connector must never read the first two into
 * features.
 */
import dcmjs from 'dcmjs';
import type { Rng } from '../model/rng.ts';
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

export interface RenderedRadiograph {
  density: Float32Array;
  size: number;
  /** The true cardiothoracic ratio drawn. */
  ctr: number;
  opacitySide?: 'left' | 'right';
  noduleSide?: 'left' | 'right';
}

/** A DICOM UID under the 2.25 (UUID-derived) root, deterministic for the stream. */
export function uid(rng: Rng): string {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(rng.nextU32());
  return `2.25.${v}`;
}

/** Draws the density image of one patient's radiograph. */
export function renderRadiograph(size: number, findings: ImageFindings, scanner: ScannerProfile, rng: Rng): RenderedRadiograph {
  const s = scanner.scale * (0.95 + 0.1 * rng.next());
  const cx = 0.5 + 0.02 * (rng.next() - 0.5);
  const cy = 0.5 + 0.03 * (rng.next() - 0.5);
  const lungDx = 0.19 * s;
  const lungA = 0.15 * s;
  const lungB = 0.3 * s;
  const lungCy = cy - 0.02 * s;
  const diaphragm = cy + 0.21 * s;
  const bodyHalf = 0.44 * s;
  const thorax = 2 * (lungDx + lungA);
  const ctr = findings.cardiomegaly ? 0.6 + 0.03 * rng.normal() : 0.42 + 0.025 * rng.normal();
  const heartA = (ctr * thorax) / 2;
  const heartB = 0.12 * s;
  const heartCx = cx + 0.025 * s;
  const heartCy = cy + 0.1 * s;
  let opacity: { x: number; y: number; sigma: number; amp: number } | undefined;
  let opacitySide: 'left' | 'right' | undefined;
  if (findings.opacity) {
    opacitySide = rng.bernoulli(0.5) ? 'left' : 'right';
    const sign = opacitySide === 'left' ? -1 : 1;
    opacity = { x: cx + sign * (0.2 + 0.04 * rng.next()) * s, y: cy + (-0.06 + 0.12 * rng.next()) * s, sigma: 0.045 * s, amp: 0.38 };
  }
  let nodule: { x: number; y: number; r: number } | undefined;
  let noduleSide: 'left' | 'right' | undefined;
  if (findings.nodule) {
    noduleSide = rng.bernoulli(0.5) ? 'left' : 'right';
    const sign = noduleSide === 'left' ? -1 : 1;
    nodule = { x: cx + sign * (0.18 + 0.06 * rng.next()) * s, y: cy + (-0.18 + 0.2 * rng.next()) * s, r: 0.024 * s };
  }
  const vessel = rng.next() * 6.28;
  const density = new Float32Array(size * size);
  const inv = 1 / size;
  for (let py = 0; py < size; py++) {
    const y = (py + 0.5) * inv;
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) * inv;
      const dxm = x - cx;
      // Trunk: slightly narrower at the shoulders.
      const half = bodyHalf * (y < cy - 0.3 * s ? 0.92 : 1);
      if (Math.abs(dxm) > half) {
        density[py * size + px] = 0.03;
        continue;
      }
      let d = 0.45;
      // Lungs (above the domed diaphragm).
      const side = dxm < 0 ? -1 : 1;
      const lx = (x - (cx + side * lungDx)) / lungA;
      const ly = (y - lungCy) / lungB;
      const dome = diaphragm - 0.03 * s * (1 - Math.min(1, Math.abs(dxm) / (lungDx + lungA)) ** 2);
      const inLung = lx * lx + ly * ly < 1 && y < dome;
      if (inLung) {
        d = 0.12 + 0.025 * Math.sin(40 * x + 25 * y + vessel) * Math.cos(31 * y - 17 * x);
        // Ribs: curved bands.
        const t = (y - (cy - 0.3 * s) - 0.035 * s * (dxm / (lungDx + lungA)) ** 2) / (0.056 * s);
        const f = t - Math.floor(t);
        if (t > 0 && f < 0.22) d += 0.09;
        if (opacity) {
          const ox = x - opacity.x;
          const oy = y - opacity.y;
          d += opacity.amp * Math.exp(-(ox * ox + oy * oy) / (2 * opacity.sigma * opacity.sigma));
        }
        if (nodule) {
          const nx = x - nodule.x;
          const ny = y - nodule.y;
          const r = Math.sqrt(nx * nx + ny * ny);
          if (r < nodule.r * 1.3) d += 0.42 * Math.min(1, Math.max(0, (nodule.r * 1.3 - r) / (nodule.r * 0.6)));
        }
      } else if (y >= dome) d = 0.5;
      // Mediastinum above the heart.
      if (Math.abs(dxm) < 0.06 * s && y < heartCy) d = Math.max(d, 0.62);
      // Heart.
      const hx = (x - heartCx) / heartA;
      const hy = (y - heartCy) / heartB;
      if (hx * hx + hy * hy < 1 && y < dome + 0.02 * s) d = Math.max(d, 0.62);
      // Spine.
      if (Math.abs(dxm) < 0.028 * s) d += 0.12;
      density[py * size + px] = d;
    }
  }
  return { density, size, ctr, ...(opacitySide ? { opacitySide } : {}), ...(noduleSide ? { noduleSide } : {}) };
}

/** Stored pixel values of a density image on a scanner. */
export function acquire(img: RenderedRadiograph, scanner: ScannerProfile, rng: Rng): Uint16Array {
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
export function radiographDicom(pixels: Uint16Array, size: number, scanner: ScannerProfile, meta: RadiographMeta): Uint8Array {
  const max = 2 ** scanner.bitsStored - 1;
  const sopClass = scanner.modality === 'DX' ? DX_SOP_CLASS : CR_SOP_CLASS;
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
    StudyDescription: 'XR CHEST PA',
    SeriesDescription: 'PA',
    PatientName: meta.patientName,
    PatientID: meta.patientId,
    PatientBirthDate: da(meta.birthDate),
    PatientSex: meta.sex === 'female' ? 'F' : 'M',
    BodyPartExamined: 'CHEST',
    ViewPosition: 'PA',
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
    PixelSpacing: [(350 / size).toFixed(4), (350 / size).toFixed(4)],
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
