/**
 * The synthetic facts of one patient, as the decoders consume them: a later integration maps a
 * sampled joint-model row (conditions, age, sex, labs, image class and component bins, SNP
 * genotypes, note topics) into this shape. Everything here is synthetic (post-processing of the
 * DP model); nothing is copied from a real record.
 */
import type { Genotype } from '../genome/vcf-writer.ts';

export interface FactCondition {
  /** Schema attribute name, e.g. "type2_diabetes" (keys the vocabulary). */
  name: string;
  /** Display text, e.g. "Diabetes mellitus type 2 (disorder)". */
  display: string;
  snomed?: string;
  /** Onset (FHIR date or dateTime); a note dated before it must not list the condition. */
  onset?: string;
  /** Acute conditions (pneumonia) are only active for weeks after their onset. */
  acute?: boolean;
}

export interface FactLab {
  name: string;
  display: string;
  value: number;
  /** Digits after the point the value is written with (the schema's precision: "HbA1c 4.0 %", not "4 %"). */
  decimals?: number;
  unit: string;
  /** Relative to the reference range, when known. */
  interpretation?: 'low' | 'normal' | 'high';
  /** When it was measured (FHIR dateTime); a note may quote it only on or after this. */
  effective?: string;
}

/** The patient's side of a lateralised finding (the patient's right is the viewer's left on a PA film). */
export type FindingSide = 'right' | 'left' | 'bilateral';

export interface FactImage {
  /** Image class from the joint model: "normal", "opacity", "cardiomegaly", "effusion", … */
  findingClass: string;
  /** Every abnormal finding when several co-occur (findingClass is the first of them). */
  findings?: string[];
  componentBins?: number[];
  /**
   * The patient's side of each lateralised finding as drawn in the pixels (opacity, nodule):
   * the note names it, and the FHIR imaging Observation codes it.
   */
  sides?: Partial<Record<string, FindingSide>>;
  /** DICOM modality of the study (DX or CR). */
  modality?: 'DX' | 'CR';
  bodyPart?: string;
  view?: string;
}

/** A prescription as a note names it. */
export interface FactMedication {
  /** The drug and strength, e.g. "atorvastatin 40 mg oral tablet" (a note names it thus). */
  name: string;
  /** The dose as written, e.g. "one tablet by mouth once daily". */
  dose: string;
  /** When it was written (FHIR dateTime). */
  start: string;
  /** When it stopped (replaced, the course over); absent while it runs. */
  end?: string;
  /** An acute course (an antibiotic), with the condition it treats. */
  acute?: boolean;
  reasons?: string[];
}

export interface SyntheticFacts {
  /** Synthetic patient id (never sent to an external renderer). */
  patientId?: string;
  /** Whole years at the note's date (the age the note states). */
  age: number;
  /** Whole months at the note's date, for infants (the note says "7-month-old"). */
  ageMonths?: number;
  /** The note's date (FHIR dateTime): every fact it quotes is dated on or before it. */
  noteDate?: string;
  /** FHIR administrative gender. */
  sex: string;
  conditions: FactCondition[];
  labs?: FactLab[];
  image?: FactImage;
  /** Prescriptions of the record (running and stopped): a note names those running at its date. */
  medications?: FactMedication[];
  genotypes?: Genotype[];
  /** Note topics sampled by the joint model (phrase-table keys), optional. */
  noteTopics?: string[];
}

/** The abnormal findings of an image (none for a normal study). */
export function imageFindings(image: FactImage): string[] {
  if (image.findings && image.findings.length > 0) return image.findings;
  return image.findingClass === 'normal' ? [] : [image.findingClass];
}

/**
 * How a note names a finding: its term, with "in the right lung", "in the left lung" or "in both
 * lungs" when the image has its side.
 */
export function sidedFindingText(term: string, side: FindingSide | undefined): string {
  if (!side) return term;
  return side === 'bilateral' ? `${term} in both lungs` : `${term} in the ${side} lung`;
}

/** A lab value as a note writes it, at the lab's precision. */
export function labValueText(l: FactLab): string {
  return l.decimals === undefined ? String(l.value) : l.value.toFixed(l.decimals);
}
