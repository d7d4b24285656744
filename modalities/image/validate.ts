/**
 * Parse-back validation of every DICOM file before release: the bytes are parsed
 * with dicom-parser (an independent reader), and the identifying and image attributes are
 * checked against what the file was meant to hold. Pure.
 */
import dicomParser from 'dicom-parser';
import { EXPLICIT_VR_LITTLE_ENDIAN, SOP_CLASS, type DicomImageSpec } from './dicom-writer.ts';

export interface DicomCheck {
  ok: boolean;
  errors: string[];
}

/** Checks `bytes` against `spec`; `comparePixels` (default true) compares every stored pixel. */
export function validateDicom(bytes: Uint8Array, spec: DicomImageSpec, comparePixels = true): DicomCheck {
  const errors: string[] = [];
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    const msg =
      e instanceof Error
        ? e.message
        : typeof e === 'object' && e && 'exception' in e
          ? String((e as { exception: unknown }).exception)
          : String(e);
    return { ok: false, errors: [`dicom-parser could not parse the file: ${msg}`] };
  }
  const modality = spec.modality ?? 'DX';
  const bitsStored = spec.bitsStored ?? 16;
  const str = (tag: string) => ds.string(tag);
  const eq = (what: string, got: unknown, want: unknown) => {
    if (got !== want) errors.push(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  eq('TransferSyntaxUID', str('x00020010'), EXPLICIT_VR_LITTLE_ENDIAN);
  eq('MediaStorageSOPClassUID', str('x00020002'), SOP_CLASS[modality]);
  eq('MediaStorageSOPInstanceUID', str('x00020003'), spec.sopInstanceUid);
  eq('SOPClassUID', str('x00080016'), SOP_CLASS[modality]);
  eq('SOPInstanceUID', str('x00080018'), spec.sopInstanceUid);
  eq('StudyInstanceUID', str('x0020000d'), spec.studyInstanceUid);
  eq('SeriesInstanceUID', str('x0020000e'), spec.seriesInstanceUid);
  eq('PatientID', str('x00100020'), spec.patientId);
  eq('Modality', str('x00080060'), modality);
  eq('PhotometricInterpretation', str('x00280004'), 'MONOCHROME2');
  eq('SamplesPerPixel', ds.uint16('x00280002'), 1);
  eq('Rows', ds.uint16('x00280010'), spec.rows);
  eq('Columns', ds.uint16('x00280011'), spec.cols);
  eq('BitsAllocated', ds.uint16('x00280100'), 16);
  eq('BitsStored', ds.uint16('x00280101'), bitsStored);
  eq('HighBit', ds.uint16('x00280102'), bitsStored - 1);
  eq('PixelRepresentation', ds.uint16('x00280103'), 0);
  const spacing = [ds.floatString('x00280030', 0), ds.floatString('x00280030', 1)];
  if (!(Math.abs((spacing[0] ?? NaN) - spec.pixelSpacing[0]) < 1e-6 && Math.abs((spacing[1] ?? NaN) - spec.pixelSpacing[1]) < 1e-6)) {
    errors.push(`PixelSpacing: got ${spacing.join('\\')}, expected ${spec.pixelSpacing.join('\\')}`);
  }
  const wc = ds.floatString('x00281050');
  const ww = ds.floatString('x00281051');
  if (wc === undefined || Math.abs(wc - spec.windowCenter) > 1e-6) errors.push(`WindowCenter: got ${wc}, expected ${spec.windowCenter}`);
  if (ww === undefined || Math.abs(ww - spec.windowWidth) > 1e-6 || ww < 1)
    errors.push(`WindowWidth: got ${ww}, expected ${spec.windowWidth} (≥ 1)`);
  const px = ds.elements.x7fe00010;
  const want = spec.rows * spec.cols * 2;
  if (!px) errors.push('PixelData is missing');
  else if (px.length !== want) errors.push(`PixelData: ${px.length} bytes, expected ${want}`);
  else if (px.dataOffset + px.length > bytes.length) errors.push('PixelData runs past the end of the file');
  else if (comparePixels) {
    const got = Buffer.from(bytes.buffer, bytes.byteOffset + px.dataOffset, px.length);
    const exp = Buffer.from(spec.pixels.buffer, spec.pixels.byteOffset, spec.pixels.byteLength);
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    if (le ? !got.equals(exp) : !got.equals(Buffer.from(exp).swap16())) errors.push('PixelData differs from the decoded image');
  }
  if (bitsStored < 16) {
    const max = 2 ** bitsStored - 1;
    for (let i = 0; i < spec.pixels.length; i++)
      if (spec.pixels[i] > max) {
        errors.push(`pixel ${i} = ${spec.pixels[i]} exceeds BitsStored ${bitsStored}`);
        break;
      }
  }
  return { ok: errors.length === 0, errors };
}
