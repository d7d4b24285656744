/**
 * Emitters of the non-FHIR modalities of one simulated site, and their truth:
 * - `dicom/<MRN>/<accession>_<k>.dcm`: one frontal chest radiograph per imaged patient (the
 *   site's scanner: DX or CR, MONOCHROME1/2, bits stored, intensity, thorax size), plus three
 *   planted anomalies: a repeat image of the first imaged patient (same study, another series:
 *   the contribution bound keeps one), an orphan image whose PatientID matches no patient, and a
 *   truncated file (quarantined by the connector).
 * - `genomes.vcf[.gz]` + `vcf-samples.tsv`: sequenced patients under biobank sample ids, mapped
 *   to MRNs by the TSV; one planted orphan sample missing from the map.
 * - `notes/<MRN>_<date>_<k>.txt`: 1–3 notes for patients with notes, plus one planted orphan
 *   note for an MRN that is not a patient.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { syncFileWriter, type FileWriter } from './file-sink.ts';
import { join } from 'node:path';
import { Rng } from '../model/rng.ts';
import { PANEL, drawGenome } from './genome.ts';
import type { LatentPatient, SiteProfile } from './latent.ts';
import { writePatientNotes } from './notes.ts';
import { acquire, ageAtStudy, radiographDicom, renderRadiograph, uid } from './radiograph.ts';
import { writeSiteVcf, type VcfSample } from './vcf-writer.ts';

export const SIM_MODALITIES = ['fhir', 'dicom', 'vcf', 'notes'] as const;
export type SimModality = (typeof SIM_MODALITIES)[number];

/** An MRN that no simulated patient has (MRNs are MRN1000000–MRN9999999). */
export const ORPHAN_MRN = 'MRN0000001';

export interface PatientArtefacts {
  /** Written image (for the patient); undefined when not imaged or DICOM not written. */
  image?: { findings: LatentPatient['findings'] };
  /** Panel no-call flags, filled when the VCF is written (close). */
  genomeIndex?: number;
  /** Concepts positively mentioned in any of the patient's notes. */
  mentions?: Set<string>;
}

export class DicomEmitter {
  readonly modality = 'dicom';
  private readonly dir: string;
  private files = 0;
  private imaged = 0;
  private repeatWritten = false;
  private firstMrn: string | undefined;
  readonly findings = { opacity: 0, cardiomegaly: 0, nodule: 0 };
  constructor(
    siteDir: string,
    private readonly site: SiteProfile,
    private readonly siteId: string,
    private readonly size: number,
    private readonly referenceDate: string,
    private readonly sink: FileWriter = syncFileWriter,
  ) {
    this.dir = join(siteDir, 'dicom');
    mkdirSync(this.dir, { recursive: true });
  }

  private writeImage(p: LatentPatient, rng: Rng, study: { uid: string; accession: string; date: string }, seriesNumber: number): void {
    // Drawn at the age at the study (the projection, AP under 4, and the proportions follow it, as
    // the header's ViewPosition does), not at the reference date.
    const img = renderRadiograph(
      this.size,
      { ageYears: ageAtStudy(p.birthDate, study.date), sex: p.sex },
      p.findings,
      this.site.scanner,
      rng.fork('render'),
    );
    // The first series' sides are the patient's: the notes name them.
    if (seriesNumber === 1) p.imageSides = { ...img.sides };
    const pixels = acquire(img, this.site.scanner, rng.fork('acquire'));
    const ids = rng.fork('uids');
    const bytes = radiographDicom(pixels, this.size, img.fieldMm, this.site.scanner, {
      patientId: p.mrn,
      patientName: `${p.family}^${p.given}`,
      birthDate: p.birthDate,
      sex: p.sex,
      studyDate: study.date,
      studyInstanceUid: study.uid,
      seriesInstanceUid: uid(ids),
      sopInstanceUid: uid(ids),
      accessionNumber: study.accession,
      institution: `Simulated ${this.siteId}`,
      seriesNumber,
      instanceNumber: 1,
    });
    this.sink.write(join(this.dir, p.mrn, `${study.accession}_${seriesNumber}.dcm`), bytes);
    this.files++;
  }

  private study(p: LatentPatient, rng: Rng): { uid: string; accession: string; date: string } {
    const refMs = Date.parse(`${this.referenceDate}T00:00:00Z`);
    return {
      uid: uid(rng),
      accession: `ACC${String(100_000_000 + rng.int(900_000_000))}`,
      date: new Date(refMs - (10 + rng.int(600)) * 86_400_000).toISOString().slice(0, 10),
    };
  }

  write(p: LatentPatient, rng: Rng): PatientArtefacts['image'] {
    if (!p.imaged) return undefined;
    const study = this.study(p, rng.fork('study'));
    this.writeImage(p, rng, study, 1);
    this.imaged++;
    for (const f of ['opacity', 'cardiomegaly', 'nodule'] as const) this.findings[f] += +p.findings[f];
    if (!this.repeatWritten) {
      // A repeat exposure of the first imaged patient: same study, same findings, series 2.
      this.writeImage(p, rng.fork('repeat'), study, 2);
      this.repeatWritten = true;
      this.firstMrn = p.mrn;
    }
    return { findings: p.findings };
  }

  /** Writes the planted orphan image and truncated file. */
  close(orphan: LatentPatient, rng: Rng): void {
    const o = { ...orphan, mrn: ORPHAN_MRN, imaged: true };
    this.writeImage(o, rng.fork('orphan'), this.study(o, rng.fork('orphan-study')), 1);
    // A truncated transfer: a valid file of a real patient cut in the middle of its pixel data.
    const t = rng.fork('truncated');
    const img = renderRadiograph(
      this.size,
      { ageYears: ageAtStudy(orphan.birthDate, this.referenceDate), sex: orphan.sex },
      orphan.findings,
      this.site.scanner,
      t.fork('render'),
    );
    const bytes = radiographDicom(acquire(img, this.site.scanner, t.fork('acquire')), this.size, img.fieldMm, this.site.scanner, {
      patientId: this.firstMrn ?? ORPHAN_MRN,
      patientName: `${orphan.family}^${orphan.given}`,
      birthDate: orphan.birthDate,
      sex: orphan.sex,
      studyDate: this.referenceDate,
      studyInstanceUid: uid(t),
      seriesInstanceUid: uid(t),
      sopInstanceUid: uid(t),
      accessionNumber: 'ACC000000000',
      institution: `Simulated ${this.siteId}`,
      seriesNumber: 9,
      instanceNumber: 1,
    });
    this.sink.write(join(this.dir, '_incoming', 'transfer-interrupted.dcm'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    this.files++;
  }

  get stats() {
    return {
      files: this.files,
      imagedPatients: this.imaged,
      repeatImages: this.repeatWritten ? 1 : 0,
      orphanImages: 1,
      truncatedFiles: 1,
      findings: { ...this.findings },
    };
  }
}

export class VcfEmitter {
  readonly modality = 'vcf';
  private readonly samples: VcfSample[] = [];
  private readonly mrns: string[] = [];
  private readonly letter: string;
  constructor(
    private readonly siteDir: string,
    private readonly siteId: string,
    private readonly bgzip: boolean,
  ) {
    this.letter = siteId.slice(-1).toUpperCase();
  }
  /** Registers the patient's genome; returns its sample index. */
  write(p: LatentPatient): number | undefined {
    if (!p.hasGenome) return undefined;
    const name = `BB-${this.letter}-${String(100_000 + p.index).padStart(6, '0')}`;
    this.samples.push({ name, hap: p.genome.hap });
    this.mrns.push(p.mrn);
    return this.samples.length - 1;
  }
  /** Writes the VCF (with one orphan sample, absent from the map) and the sample map. */
  close(
    site: SiteProfile,
    rng: Rng,
  ): {
    path: string;
    mapPath: string;
    records: number;
    genotypes: number;
    noCalls: number;
    panelNoCall: Uint8Array[];
    absent: string[];
    samples: number;
  } {
    const orphan = drawGenome(site.ancestry, rng.fork('orphan-genome'));
    const all = [...this.samples, { name: `BB-${this.letter}-999999`, hap: orphan.hap }];
    const path = join(this.siteDir, this.bgzip ? 'genomes.vcf.gz' : 'genomes.vcf');
    const res = writeSiteVcf(path, all, { siteId: this.siteId, arrayLacks: site.arrayLacks }, this.bgzip, rng.fork('vcf'));
    const mapPath = join(this.siteDir, 'vcf-samples.tsv');
    writeFileSync(mapPath, `sample\tmrn\n${this.samples.map((s, i) => `${s.name}\t${this.mrns[i]}`).join('\n')}\n`);
    return { path, mapPath, ...res, samples: all.length };
  }
}

export class NotesEmitter {
  readonly modality = 'notes';
  private readonly dir: string;
  files = 0;
  patients = 0;
  readonly mentionCounts: Record<string, number> = {};
  constructor(
    siteDir: string,
    private readonly site: SiteProfile,
    private readonly referenceDate: string,
    private readonly sink: FileWriter = syncFileWriter,
  ) {
    this.dir = join(siteDir, 'notes');
    mkdirSync(this.dir, { recursive: true });
  }
  write(p: LatentPatient, rng: Rng): Set<string> | undefined {
    if (p.notes === 0) return undefined;
    const notes = writePatientNotes(p, this.site.noteStyles, this.referenceDate, rng);
    const mentions = new Set<string>();
    for (const n of notes) {
      this.sink.write(join(this.dir, n.fileName), n.text);
      for (const m of n.mentioned) mentions.add(m);
      this.files++;
    }
    this.patients++;
    for (const m of mentions) this.mentionCounts[m] = (this.mentionCounts[m] ?? 0) + 1;
    return mentions;
  }
  close(orphan: LatentPatient, rng: Rng): void {
    const o = { ...orphan, mrn: ORPHAN_MRN, notes: 1 };
    for (const n of writePatientNotes(o, this.site.noteStyles, this.referenceDate, rng)) {
      this.sink.write(join(this.dir, n.fileName), n.text);
      this.files++;
    }
  }
}

/** The panel SNP index of (chrom, pos, ref, alt), or -1. */
export function panelIndex(chrom: string, pos: number, ref: string, alt: string): number {
  return PANEL.findIndex((s) => s.chrom === chrom && s.pos === pos && s.ref === ref && s.alt === alt);
}
