/**
 * A site's data across modalities, linked per patient and encoded into the public schema:
 * `loadMultimodalSiteData(cfg, schema)` returns ONE row per FHIR patient over every schema
 * attribute, the same shape as `loadSiteData` (site-agent/agent.ts) plus linkage statistics, so
 * the agent switches by changing one call.
 *
 * Sources: FHIR (NDJSON folder or REST server; `readPatientTable`), a DICOM folder tree, one
 * multi-sample VCF, a folder of note files and optionally FHIR DocumentReference/
 * DiagnosticReport notes — all through site-agent/connectors, one file at a time. Linkage:
 * site-agent/linkage.ts. Memory: per-patient codes (a few bytes per attribute) and, for the
 * VCF, one panel-length dosage vector per sample; never whole images or note texts beyond the
 * one being read.
 *
 * Contribution bound, enforced here, per patient:
 * - FHIR: one row (modalities/fhir/encode.ts);
 * - images: at most ONE. Among the patient's linked images of a schema modality (and body part,
 *   when the file states one) whose features could be computed, the one with the smallest
 *   SOPInstanceUID (then path) wins: deterministic and independent of file order. The others
 *   are counted as `beyondBound`;
 * - genome: at most ONE sample; a patient reached by two samples gets none (ambiguous);
 * - notes: ONE note set: the first `notes.maxNotesPerPatient` notes in source order (folder
 *   notes sorted by path, then FHIR notes in server order); the rest count as `beyondBound`.
 *   The note set contributes only its mention indicators.
 * Direct identifiers never enter features: the DICOM connector exposes PatientID (the linkage
 * key) and technical fields only; note header lines are stripped by the notes connector before
 * the text reaches the mention encoder; FHIR names/identifiers are read only for linkage.
 */
import { Dataset, Domain } from '../model/domain.ts';
import {
  componentMissingCode,
  imageMissingCode,
  NOTE_MISSING,
  SNP_MISSING,
  schemaAttributes,
  type ImageComponentAttribute,
  type ImageFindingAttribute,
  type Schema,
} from '../schema/schema.ts';
import { componentCodes } from '../modalities/image/components.ts';
import type { SiteDataConfig } from './config.ts';
import { NdjsonFhirSource } from './connectors/fhir-ndjson.ts';
import { FhirRestSource, r4RestSource } from './connectors/fhir-rest.ts';
import { OmopSource } from './connectors/omop.ts';
import { dicomGrid, readDicomFolder, type DicomScanStats, type DicomStructuredReport } from './connectors/dicom/index.ts';
import { notesFromFhir, readNotesFolder, type Note, type NotesScanStats } from './connectors/notes/index.ts';
import { Quarantine, type FhirResource, type FhirSource } from './connectors/types.ts';
import { extractPanelGenotypes, readVcfHeader, type AlleleFlip } from './connectors/vcf/index.ts';
import { LinkageLedger, PatientKeyIndex, readSampleMap, type LinkModality, type ModalityLinkStats } from './linkage.ts';
import { connectorPanel, snpCodes } from './features/genome.ts';
import { ageBandFrom, gridImageScores, imageFindingCodes } from './features/image.ts';
import { ReportFindingIndex, reportFindingCodes } from './features/image-findings-report.ts';
import { NoteMentionEncoder } from './features/notes.ts';
import { readPatientTable, type PatientReadResult } from './patients.ts';

export interface MultimodalStats {
  fhir: { patients: number; patientsWithoutLinkageKey: number; ambiguousKeys: number; counts: PatientReadResult['counts'] };
  linkage: Record<LinkModality, ModalityLinkStats>;
  dicom?: DicomScanStats & {
    /** Decoded images outside the schema's modalities/body part, by Modality code: read, but not features. */
    otherImages: number;
    otherByModality: Record<string, number>;
    featureFailures: number;
    /** Images whose findings came from a coded radiology report (DiagnosticReport or SR), not the pixel rules. */
    reportLabelled: number;
  };
  vcf?: {
    samples: number;
    panelSnps: number;
    /** Panel SNPs present in the file. */
    panelFound: number;
    panelMissing: string[];
    records: number;
    /** Of linked patients with a genome: called panel genotypes / (patients × panel size). */
    callRate: number;
    ambiguousSamples: string[];
    sampleMapBadLines: number[];
    /** Panel SNPs read from records with swapped or other-strand alleles, and why. */
    alleleFlips: AlleleFlip[];
    /** Panel entries filled from gVCF reference blocks. */
    refBlockPanelRecords: number;
  };
  notes?: NotesScanStats & { fhirNotes: number };
}

export interface MultimodalSiteData {
  data: Dataset;
  patients: number;
  quarantine: Quarantine;
  /** Local patient ids in row order: stays at the site. */
  patientIds: string[];
  stats: MultimodalStats;
}

export interface LoadOptions {
  /** Use this FHIR source instead of the one the config names (tests). */
  fhirSource?: FhirSource;
}

export function fhirSourceOf(data: SiteDataConfig): FhirSource {
  if (data.kind === 'fhir-ndjson') return new NdjsonFhirSource(data.dir);
  if (data.kind === 'omop') return new OmopSource({ url: data.url, schema: data.schema, vocabularySchema: data.vocabularySchema });
  return r4RestSource(new FhirRestSource({ baseUrl: data.baseUrl, bearerToken: data.bearerToken, pageSize: data.pageSize }));
}

/** A FhirSource that shows every Patient to the key index on its way through. */
class TappedSource implements FhirSource {
  constructor(
    private readonly inner: FhirSource,
    private readonly index: PatientKeyIndex,
  ) {}
  async *resources(types: readonly string[], quarantine: Quarantine): AsyncIterable<FhirResource> {
    for await (const r of this.inner.resources(types, quarantine)) {
      if (r.resourceType === 'Patient') this.index.addPatient(r);
      yield r;
    }
  }
}

function patientIdFromNotePattern(pattern: string | undefined): RegExp | undefined {
  return pattern ? new RegExp(pattern) : undefined;
}

/** Reads, links and encodes a site's data; see the module comment. Never throws on bad input. */
export async function loadMultimodalSiteData(
  cfg: { data: SiteDataConfig },
  schema: Schema,
  options: LoadOptions = {},
): Promise<MultimodalSiteData> {
  const data = cfg.data;
  const quarantine = new Quarantine();
  const index = new PatientKeyIndex(data.linkage ?? { key: 'id' });
  const source = options.fhirSource ?? fhirSourceOf(data);
  const read = await readPatientTable(new TappedSource(source, index), schema, quarantine);
  const n = read.table.n;
  const rowOf = new Map<string, number>();
  read.patientIds.forEach((id, i) => rowOf.set(id, i));
  const ledger = new LinkageLedger();
  const cols = read.table.columns;
  const attrs = schema.attributes;
  const stats: MultimodalStats = {
    fhir: {
      patients: n,
      patientsWithoutLinkageKey: index.patientsWithoutKey,
      ambiguousKeys: index.ambiguousKeys.size,
      counts: read.counts,
    },
    linkage: ledger.stats,
  };
  /** Links to a patient WITH a row (a quarantined FHIR patient has none: unlinked). */
  const link = (modality: LinkModality, key: string | undefined, byId = false): number | undefined => {
    let res = byId ? index.resolvePatientId(key) : index.resolve(key);
    if (res.status === 'linked' && !rowOf.has(res.patientId)) res = { status: 'unlinked' };
    const pid = ledger.record(modality, key, res);
    return pid === undefined ? undefined : rowOf.get(pid);
  };

  // ---- Images
  const imageAttrs = attrs
    .map((a, j) => [a, j] as const)
    .filter((x): x is [ImageFindingAttribute, number] => x[0].kind === 'image-finding');
  const compAttrs = attrs
    .map((a, j) => [a, j] as const)
    .filter((x): x is [ImageComponentAttribute, number] => x[0].kind === 'image-component');
  /** Per row: the chosen image, its codes, and whether its findings came from the pixel rules. */
  const imageCodes = new Map<number, { uid: string; codes: number[]; studyUid?: string; fromPixels: boolean }>();
  if (data.dicom) {
    const scan: DicomScanStats = { filesSeen: 0, images: 0, quarantined: 0, skipped: 0 };
    const dstats = { ...scan, otherImages: 0, otherByModality: {} as Record<string, number>, featureFailures: 0, reportLabelled: 0 };
    // Coded radiology reports label findings; the pixel rules are the fallback.
    const reports = new ReportFindingIndex();
    if (imageAttrs.length) for await (const r of source.resources(['ImagingStudy', 'DiagnosticReport'], quarantine)) reports.add(r);
    let beyond = 0;
    const allowed = new Set((schema.image?.modalities ?? []).map((m) => m.toUpperCase()));
    const bodyPart = schema.image?.bodyPart?.toUpperCase();
    const grid = schema.image?.grid ?? 64;
    // The row's age band (the patient table's age code; images carry no dates to the features):
    // a cardiothoracic ratio is read against the normal limit of that band (finding-scores.ts).
    const ageCol = attrs.findIndex((a) => a.kind === 'age');
    const bandFrom = (row: number): number | undefined => (ageCol < 0 ? undefined : ageBandFrom(schema, cols[ageCol]![row]!));
    const onStructuredReport = (sr: DicomStructuredReport) => {
      if (sr.studyInstanceUid) reports.addStructuredReport(sr.studyInstanceUid, sr.snomedCodes);
    };
    for await (const img of readDicomFolder(data.dicom, quarantine, { onStructuredReport }, scan)) {
      if (
        schema.image &&
        (!allowed.has((img.modality ?? '').toUpperCase()) || (bodyPart && img.bodyPart && img.bodyPart.toUpperCase() !== bodyPart))
      ) {
        dstats.otherImages++;
        const m = img.modality ?? '(none)';
        dstats.otherByModality[m] = (dstats.otherByModality[m] ?? 0) + 1;
        continue;
      }
      const row = link('dicom', img.patientId);
      if (row === undefined) continue;
      const order = `${img.sopInstanceUid ?? ''}\u0000${img.source}`;
      const prev = imageCodes.get(row);
      if (prev && prev.uid <= order) {
        beyond++;
        continue;
      }
      let codes: number[] = [];
      const labels = reports.labelsFor(img.studyInstanceUid);
      if (labels && compAttrs.length === 0) {
        codes = reportFindingCodes(
          imageAttrs.map(([a]) => a),
          labels,
        );
        dstats.reportLabelled++;
      } else if (imageAttrs.length || compAttrs.length) {
        const f = gridImageScores(dicomGrid(img, grid), grid);
        if (!f.ok) {
          dstats.featureFailures++;
          quarantine.add({ source: img.source, modality: 'dicom', reason: `image features not computable: ${f.reason}` });
          continue;
        }
        // Finding classes, then the component bins of the normalised grid image (modalities/image/components.ts).
        if (labels) dstats.reportLabelled++;
        codes = [
          ...(labels
            ? reportFindingCodes(
                imageAttrs.map(([a]) => a),
                labels,
              )
            : imageFindingCodes(
                imageAttrs.map(([a]) => a),
                f.scores,
                bandFrom(row),
              )),
          ...componentCodes(
            compAttrs.map(([a]) => a),
            f.grid,
            grid,
          ),
        ];
      }
      if (prev) beyond++;
      imageCodes.set(row, {
        uid: order,
        codes,
        fromPixels: !labels && imageAttrs.length > 0,
        ...(img.studyInstanceUid ? { studyUid: img.studyInstanceUid } : {}),
      });
      ledger.used('dicom', read.patientIds[row]!);
    }
    // A DICOM SR met after its study's image in the walk relabels that image now.
    for (const entry of imageCodes.values()) {
      const labels = entry.fromPixels ? reports.labelsFor(entry.studyUid) : undefined;
      if (!labels) continue;
      entry.codes.splice(
        0,
        imageAttrs.length,
        ...reportFindingCodes(
          imageAttrs.map(([a]) => a),
          labels,
        ),
      );
      dstats.reportLabelled++;
    }
    ledger.stats.dicom.beyondBound = beyond;
    stats.dicom = { ...dstats, ...scan };
  }
  for (const [a, j] of imageAttrs) {
    const k = imageAttrs.findIndex((x) => x[1] === j);
    const col = cols[j]!;
    for (let r = 0; r < n; r++) col[r] = imageCodes.get(r)?.codes[k] ?? imageMissingCode(a);
  }
  compAttrs.forEach(([a, j], k) => {
    const col = cols[j]!;
    for (let r = 0; r < n; r++) col[r] = imageCodes.get(r)?.codes[imageAttrs.length + k] ?? componentMissingCode(a);
  });

  // ---- Genome
  const { attrs: snpAttrs, panel } = connectorPanel(schema);
  const snpCols = attrs
    .map((a, j) => [a, j] as const)
    .filter(([a]) => a.kind === 'snp')
    .map(([, j]) => j);
  const genomes = new Map<number, Uint8Array>();
  if (data.vcf) {
    const headerQ = new Quarantine();
    const header = await readVcfHeader(data.vcf, headerQ);
    const sampleMap = data.linkage?.vcfSampleMap
      ? await readSampleMap(data.linkage.vcfSampleMap).catch((e: Error) => {
          quarantine.add({ source: data.linkage!.vcfSampleMap!, modality: 'vcf', reason: 'sample map not readable', detail: e.message });
          return { map: new Map<string, string | null>(), ambiguousSamples: [], badLines: [] };
        })
      : undefined;
    for (const line of sampleMap?.badLines ?? [])
      quarantine.add({ source: data.linkage!.vcfSampleMap!, modality: 'vcf', reason: 'malformed sample map line', offset: line });
    // Decide every sample's patient up front: sample → key → patient (with a row).
    const toPatient = new Map<string, string>();
    const owners = new Map<string, string[]>();
    for (const sample of header?.samples ?? []) {
      let key: string | undefined = sample;
      let ambiguous = false;
      if (sampleMap) {
        const k = sampleMap.map.get(sample);
        if (k === null) ambiguous = true;
        key = k ?? undefined;
      }
      if (ambiguous) {
        ledger.record('vcf', sample, { status: 'ambiguous' });
        continue;
      }
      const row = link('vcf', key ?? sample);
      if (row === undefined) continue;
      const pid = read.patientIds[row]!;
      toPatient.set(sample, pid);
      owners.set(pid, [...(owners.get(pid) ?? []), sample]);
    }
    // Two samples for one patient: both dropped, never guessed.
    for (const [pid, samples] of owners) {
      if (samples.length < 2) continue;
      for (const s of samples) toPatient.delete(s);
      ledger.stats.vcf.linked -= samples.length;
      ledger.stats.vcf.ambiguous += samples.length;
      void pid;
    }
    const res = await extractPanelGenotypes(data.vcf, panel, quarantine, { sampleToPatient: toPatient });
    let called = 0;
    let withCalls = 0;
    for (const [pid, dosage] of res.patients) {
      const row = rowOf.get(pid)!;
      const codes = snpCodes(dosage, snpAttrs.length);
      let mine = 0;
      for (const c of codes) if (c !== SNP_MISSING) mine++;
      // A sample with no called panel genotype (a VCF without usable records) is not a genome.
      if (mine === 0) continue;
      genomes.set(row, codes);
      ledger.used('vcf', pid);
      called += mine;
      withCalls++;
    }
    stats.vcf = {
      samples: header?.samples.length ?? 0,
      panelSnps: panel.length,
      panelFound: res.found.filter(Boolean).length,
      panelMissing: snpAttrs.filter((_, j) => !res.found[j]).map((a) => a.name),
      records: res.stats.records,
      callRate: withCalls && panel.length ? called / (withCalls * panel.length) : 0,
      refBlockPanelRecords: res.stats.refBlockPanelRecords,
      ambiguousSamples: sampleMap?.ambiguousSamples ?? [],
      sampleMapBadLines: sampleMap?.badLines ?? [],
      alleleFlips: res.stats.alleleFlips,
    };
  }
  snpCols.forEach((j, k) => {
    const col = cols[j]!;
    for (let r = 0; r < n; r++) col[r] = genomes.get(r)?.[k] ?? SNP_MISSING;
  });

  // ---- Notes
  const noteEncoder = new NoteMentionEncoder(schema);
  const noteCols = attrs
    .map((a, j) => [a, j] as const)
    .filter(([a]) => a.kind === 'note-mention')
    .map(([, j]) => j);
  const maxNotes = schema.notes?.maxNotesPerPatient ?? 20;
  const noteFlags = new Map<number, { count: number; flags: Uint8Array }>();
  const addNote = (note: Note, row: number | undefined) => {
    if (row === undefined) return;
    let st = noteFlags.get(row);
    if (!st) noteFlags.set(row, (st = { count: 0, flags: new Uint8Array(noteCols.length) }));
    if (st.count >= maxNotes) {
      ledger.stats.note.beyondBound++;
      return;
    }
    st.count++;
    ledger.used('note', read.patientIds[row]!);
    if (noteCols.length) {
      const m = noteEncoder.mentions(note.text);
      for (let k = 0; k < m.length; k++) st.flags[k] |= m[k]!;
    }
  };
  if (data.notes || data.fhirNotes) {
    const nstats: NotesScanStats & { fhirNotes: number } = { files: 0, notes: 0, quarantined: 0, unlinked: 0, fhirNotes: 0 };
    if (data.notes) {
      const pattern = patientIdFromNotePattern(data.linkage?.notesPattern);
      for await (const note of readNotesFolder(data.notes, quarantine, pattern ? { pattern } : {}, nstats))
        addNote(note, link('note', note.patientId));
      // File names that name no patient at all are unlinked notes too.
      ledger.stats.note.artefacts += nstats.unlinked;
      ledger.stats.note.unlinked += nstats.unlinked;
    }
    if (data.fhirNotes) {
      for await (const note of notesFromFhir(source.resources(['DocumentReference', 'DiagnosticReport'], quarantine), quarantine)) {
        nstats.fhirNotes++;
        addNote(note, link('note', note.patientId, true));
      }
    }
    stats.notes = nstats;
  }
  noteCols.forEach((j, k) => {
    const col = cols[j]!;
    for (let r = 0; r < n; r++) {
      const st = noteFlags.get(r);
      col[r] = st ? st.flags[k]! : NOTE_MISSING;
    }
  });

  const domainAttrs = schemaAttributes(schema);
  const domain = new Domain(
    domainAttrs.map((a) => a.name),
    domainAttrs.map((a) => a.size),
  );
  const dataset = new Dataset(domain, cols, n);
  dataset.validate();
  return { data: dataset, patients: n, quarantine, patientIds: read.patientIds, stats };
}
