// DICOM Structured Reports (SOP classes 1.2.840.10008.5.1.4.1.1.88.*): the coded findings of the
// content tree, for labelling the images of the same study. Only CODE content items are read
// (ConceptCodeSequence of each item, recursively); text, names and dates are never copied out.
import type { DataSet } from 'dicom-parser';

export const SR_SOP_CLASS_PREFIX = '1.2.840.10008.5.1.4.1.1.88.';

export interface DicomStructuredReport {
  source: string;
  patientId?: string;
  studyInstanceUid?: string;
  /** SNOMED CT concept ids of CODE items (coding scheme SCT, or numeric SRT/SNM3 ids). */
  snomedCodes: string[];
}

const CONTENT_SEQUENCE = 'x0040a730';
const VALUE_TYPE = 'x0040a040';
const CONCEPT_CODE_SEQUENCE = 'x0040a168';
const CODE_VALUE = 'x00080100';
const CODING_SCHEME = 'x00080102';

/** Walks the content tree (depth-bounded against malformed nesting) and collects SNOMED codes. */
export function srSnomedCodes(ds: DataSet, depth = 0, out: string[] = []): string[] {
  if (depth > 32) return out;
  for (const item of ds.elements[CONTENT_SEQUENCE]?.items ?? []) {
    const it = item.dataSet;
    if (!it) continue;
    if (it.string(VALUE_TYPE) === 'CODE') {
      const code = it.elements[CONCEPT_CODE_SEQUENCE]?.items?.[0]?.dataSet;
      const value = code?.string(CODE_VALUE);
      const scheme = code?.string(CODING_SCHEME);
      if (value && (scheme === 'SCT' || ((scheme === 'SRT' || scheme === 'SNM3') && /^\d+$/.test(value)))) out.push(value);
    }
    srSnomedCodes(it, depth + 1, out);
  }
  return out;
}
