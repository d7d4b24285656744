/**
 * Record linkage at the site: joins DICOM images, VCF samples and notes to FHIR patients by the
 * identifiers the site configures. Nothing is ever guessed:
 * - every FHIR patient has a linkage key: its resource id (`key: id`) or the value of its
 *   identifier in `identifierSystem` (`key: identifier`, e.g. the MRN). A patient without that
 *   identifier has no key (counted); a key shared by several patients is AMBIGUOUS: artefacts
 *   carrying it are not used;
 * - a DICOM image links through PatientID (0010,0020), a note file through its file name
 *   (`notesPattern`), a FHIR note through its subject reference (always the Patient id), a VCF
 *   sample through `vcfSampleMap` (sample → key; default: the sample name is the key). A sample
 *   listed twice in the map with different keys is ambiguous; two samples reaching one patient
 *   are both dropped (the VCF connector reports them);
 * - an artefact whose key matches no patient is UNLINKED; counted per modality, never used.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { LinkageConfig } from './config.ts';
import type { FhirResource } from './connectors/types.ts';

export type LinkModality = 'dicom' | 'vcf' | 'note';

export type LinkResult = { status: 'linked'; patientId: string } | { status: 'unlinked' } | { status: 'ambiguous' };

export interface ModalityLinkStats {
  /** Artefacts offered for linkage (decoded images, VCF samples, readable notes). */
  artefacts: number;
  linked: number;
  unlinked: number;
  ambiguous: number;
  /** Linked artefacts not used because the patient already has one (contribution bound). */
  beyondBound: number;
  /** Distinct patients with at least one used artefact. */
  patients: number;
  /** Up to 20 example keys that matched no patient (local report only; never sent). */
  unlinkedExamples: string[];
}

export function emptyLinkStats(): ModalityLinkStats {
  return { artefacts: 0, linked: 0, unlinked: 0, ambiguous: 0, beyondBound: 0, patients: 0, unlinkedExamples: [] };
}

/** Linkage keys of FHIR patients. */
export class PatientKeyIndex {
  private readonly byKey = new Map<string, string | null>();
  private readonly ids = new Set<string>();
  /** Patients without a key (no identifier in the configured system). */
  patientsWithoutKey = 0;
  /** Keys shared by several patients. */
  readonly ambiguousKeys = new Set<string>();

  constructor(readonly config: LinkageConfig = { key: 'id' }) {
    if (config.key === 'identifier' && !config.identifierSystem) throw new Error('linkage: key "identifier" needs identifierSystem');
  }

  /** Registers a Patient resource (other types are ignored). */
  addPatient(r: FhirResource): void {
    if (r.resourceType !== 'Patient' || typeof r.id !== 'string') return;
    if (this.ids.has(r.id)) return;
    this.ids.add(r.id);
    const keys = new Set<string>();
    if (this.config.key === 'id') keys.add(r.id);
    else {
      const list = Array.isArray(r.identifier) ? (r.identifier as Array<{ system?: unknown; value?: unknown }>) : [];
      for (const i of list)
        if (i && i.system === this.config.identifierSystem && typeof i.value === 'string' && i.value.trim() !== '')
          keys.add(i.value.trim());
    }
    if (keys.size === 0) this.patientsWithoutKey++;
    for (const k of keys) {
      if (this.byKey.has(k) && this.byKey.get(k) !== r.id) {
        this.byKey.set(k, null);
        this.ambiguousKeys.add(k);
      } else this.byKey.set(k, r.id);
    }
  }

  /** The patient of a linkage key. */
  resolve(key: string | undefined): LinkResult {
    if (key === undefined) return { status: 'unlinked' };
    const k = key.trim();
    if (!this.byKey.has(k)) return { status: 'unlinked' };
    const id = this.byKey.get(k);
    return id === null || id === undefined ? { status: 'ambiguous' } : { status: 'linked', patientId: id };
  }

  /** Resolves a FHIR subject reference ("Patient/<id>", "urn:uuid:<id>") by Patient id, whatever the key. */
  resolvePatientId(id: string | undefined): LinkResult {
    return id !== undefined && this.ids.has(id) ? { status: 'linked', patientId: id } : { status: 'unlinked' };
  }

  get patients(): number {
    return this.ids.size;
  }
}

export interface SampleMap {
  /** sample → key; null when the sample is listed with two different keys. */
  map: Map<string, string | null>;
  ambiguousSamples: string[];
  /** Lines that are not `sample<TAB>key` (1-based line numbers). */
  badLines: number[];
}

/** Reads a `sample<TAB>key` TSV (a first line `sample<TAB>…` is a header). Streams. */
export async function readSampleMap(path: string): Promise<SampleMap> {
  const map = new Map<string, string | null>();
  const ambiguous = new Set<string>();
  const badLines: number[] = [];
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of lines) {
    n++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const cols = line.split('\t');
    if (n === 1 && cols[0]!.toLowerCase() === 'sample') continue;
    if (cols.length < 2 || cols[0] === '' || cols[1]!.trim() === '') {
      badLines.push(n);
      continue;
    }
    const [sample, key] = [cols[0]!, cols[1]!.trim()];
    if (map.has(sample) && map.get(sample) !== key) {
      map.set(sample, null);
      ambiguous.add(sample);
    } else map.set(sample, key);
  }
  return { map, ambiguousSamples: [...ambiguous], badLines };
}

/** Tracks per-modality linkage outcomes and the one-artefact-per-patient bound. */
export class LinkageLedger {
  readonly stats: Record<LinkModality, ModalityLinkStats> = { dicom: emptyLinkStats(), vcf: emptyLinkStats(), note: emptyLinkStats() };
  private readonly patientsWith: Record<LinkModality, Set<string>> = { dicom: new Set(), vcf: new Set(), note: new Set() };

  /** Records one artefact's outcome; returns the patient id when linked. */
  record(modality: LinkModality, key: string | undefined, result: LinkResult): string | undefined {
    const s = this.stats[modality];
    s.artefacts++;
    if (result.status === 'linked') {
      s.linked++;
      return result.patientId;
    }
    if (result.status === 'ambiguous') s.ambiguous++;
    else {
      s.unlinked++;
      if (s.unlinkedExamples.length < 20 && key !== undefined) s.unlinkedExamples.push(key);
    }
    return undefined;
  }

  /** Marks that `patientId` contributes an artefact of `modality` (idempotent). */
  used(modality: LinkModality, patientId: string): void {
    this.patientsWith[modality].add(patientId);
    this.stats[modality].patients = this.patientsWith[modality].size;
  }

  has(modality: LinkModality, patientId: string): boolean {
    return this.patientsWith[modality].has(patientId);
  }
}
