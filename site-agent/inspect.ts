/**
 * `fedsynth agent inspect`: what a site's IT team needs to see before joining a federation.
 * Reads everything locally through loadMultimodalSiteData and SENDS NOTHING: the report is
 * printed on the site's own terminal. It contains counts and shares only (no identifiers beyond
 * a few unlinked keys shown as examples, which also stay local).
 */
import { labMissingCode, type Schema } from '../schema/schema.ts';
import { clinicalSourceLabel, type SiteDataConfig } from './config.ts';
import type { QuarantineRecord } from './connectors/types.ts';
import { loadMultimodalSiteData, type LoadOptions, type MultimodalStats } from './site-data.ts';

export interface InspectReport {
  schema: { name: string; version: number; attributes: number };
  sources: Record<string, string>;
  patients: {
    fhir: number;
    withImage: number;
    withGenome: number;
    withNotes: number;
  };
  linkage: Record<
    string,
    {
      artefacts: number;
      linked: number;
      unlinked: number;
      ambiguous: number;
      beyondBound: number;
      linkedRate: number;
      patientShare: number;
      unlinkedExamples: string[];
    }
  >;
  coverage: {
    conditions: Record<string, number>;
    labsMeasured: Record<string, number>;
    snpCallRate?: number;
    snpPanelFound?: number;
    snpPanelMissing?: string[];
    /** Panel SNPs read re-oriented (swapped or other-strand alleles). */
    snpAlleleFlips?: string[];
    imageFindings: Record<string, Record<string, number>>;
    noteMentions: Record<string, number>;
  };
  quarantine: {
    total: number;
    byReason: Record<string, number>;
    /** Every quarantined file or resource (up to MAX_ITEMS): path or id, reason, line/offset/entry. Stays local. */
    items: QuarantineRecord[];
    itemsOmitted: number;
  };
  /** What the schema needs that the data lacks (resource types, images, genomes). */
  warnings: string[];
  details: MultimodalStats;
  elapsedMs: number;
}

const r4 = (x: number) => Number(x.toFixed(4));

/** Quarantine records listed one by one in the JSON report (the counts cover all). */
export const MAX_ITEMS = 10_000;
/** Records shown per reason in the human report. */
export const ITEMS_PER_REASON = 5;

/** Schema needs the data does not meet: a site should see these before it joins. */
function schemaWarnings(schema: Schema, cfg: { data: SiteDataConfig }, stats: MultimodalStats, n: number): string[] {
  const out: string[] = [];
  const kinds = new Set(schema.attributes.map((a) => a.kind));
  const read = stats.fhir.counts.resourcesByType;
  if (n === 0) out.push('no patient was read: every other count below is empty');
  if (n > 0 && kinds.has('condition') && !read.Condition)
    out.push('Patients but no Condition resources: every condition indicator will be 0 for this site');
  if (n > 0 && kinds.has('lab') && !read.Observation)
    out.push('Patients but no Observation resources: every lab will be missing for this site');
  const wantsImages = kinds.has('image-finding') || kinds.has('image-component');
  if (wantsImages && !cfg.data.dicom) out.push('the schema has image attributes but data.dicom is not set');
  if (wantsImages && cfg.data.dicom && stats.linkage.dicom.patients === 0)
    out.push(
      `no patient has a usable ${(schema.image?.modalities ?? []).join('/')} image${schema.image?.bodyPart ? ` of the ${schema.image.bodyPart}` : ''}`,
    );
  if (kinds.has('snp') && cfg.data.vcf && stats.linkage.vcf.patients === 0)
    out.push('no patient has a genome with a called panel genotype');
  return out;
}

/** Inspects a site's data (never throws on bad input; a missing folder becomes a quarantine line). */
export async function inspectSite(cfg: { data: SiteDataConfig }, schema: Schema, options: LoadOptions = {}): Promise<InspectReport> {
  const t0 = performance.now();
  const site = await loadMultimodalSiteData(cfg, schema, options);
  const n = site.patients;
  const cols = site.data.columns;
  const share = (num: number, den: number) => (den > 0 ? r4(num / den) : 0);
  const count = (j: number, pred: (v: number) => boolean) => {
    let c = 0;
    const col = cols[j]!;
    for (let r = 0; r < col.length; r++) if (pred(col[r]!)) c++;
    return c;
  };
  const withImage = site.stats.linkage.dicom.patients;
  // Patients with at least one called panel genotype (site-data.ts drops samples with none).
  const withGenome = site.stats.linkage.vcf.patients;
  const withNotes = site.stats.linkage.note.patients;
  const conditions: Record<string, number> = {};
  const labsMeasured: Record<string, number> = {};
  const imageFindings: Record<string, Record<string, number>> = {};
  const noteMentions: Record<string, number> = {};
  schema.attributes.forEach((a, j) => {
    if (a.kind === 'condition')
      conditions[a.name] = share(
        count(j, (v) => v === 1),
        n,
      );
    else if (a.kind === 'lab')
      labsMeasured[a.name] = share(
        count(j, (v) => v !== labMissingCode(a)),
        n,
      );
    else if (a.kind === 'image-finding') {
      imageFindings[a.name] = Object.fromEntries(
        a.classes.map((c, k) => [
          c,
          share(
            count(j, (v) => v === k),
            withImage,
          ),
        ]),
      );
    } else if (a.kind === 'note-mention')
      noteMentions[a.name] = share(
        count(j, (v) => v === 1),
        withNotes,
      );
  });
  const linkage: InspectReport['linkage'] = {};
  const withOf = { dicom: withImage, vcf: withGenome, note: withNotes };
  for (const [m, s] of Object.entries(site.stats.linkage)) {
    linkage[m] = {
      artefacts: s.artefacts,
      linked: s.linked,
      unlinked: s.unlinked,
      ambiguous: s.ambiguous,
      beyondBound: s.beyondBound,
      linkedRate: share(s.linked, s.artefacts),
      patientShare: share(withOf[m as keyof typeof withOf], n),
      unlinkedExamples: s.unlinkedExamples,
    };
  }
  const d = cfg.data;
  const sources: Record<string, string> = { fhir: clinicalSourceLabel(d) };
  if (d.dicom) sources.dicom = d.dicom;
  if (d.vcf) sources.vcf = d.vcf;
  if (d.notes) sources.notes = d.notes;
  if (d.fhirNotes) sources.fhirNotes = 'DocumentReference/DiagnosticReport';
  const byReason = site.quarantine.countsByReason();
  return {
    schema: { name: schema.name, version: schema.version, attributes: schema.attributes.length },
    sources,
    patients: { fhir: n, withImage, withGenome, withNotes },
    linkage,
    coverage: {
      conditions,
      labsMeasured,
      ...(site.stats.vcf
        ? {
            snpCallRate: r4(site.stats.vcf.callRate),
            snpPanelFound: site.stats.vcf.panelFound,
            snpPanelMissing: site.stats.vcf.panelMissing,
            snpAlleleFlips: site.stats.vcf.alleleFlips.map((f) => `${f.entry} (${f.how}, line ${f.line})`),
          }
        : {}),
      imageFindings,
      noteMentions,
    },
    quarantine: {
      total: site.quarantine.records.length,
      byReason,
      items: site.quarantine.records.slice(0, MAX_ITEMS),
      itemsOmitted: Math.max(0, site.quarantine.records.length - MAX_ITEMS),
    },
    warnings: schemaWarnings(schema, cfg, site.stats, n),
    details: site.stats,
    elapsedMs: Math.round(performance.now() - t0),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** Human-readable report. */
export function formatInspectReport(r: InspectReport): string {
  const out: string[] = [];
  out.push(
    `fedsynth agent inspect — schema ${r.schema.name} v${r.schema.version} (${r.schema.attributes} attributes); nothing was sent anywhere`,
  );
  out.push('');
  out.push('Sources');
  for (const [k, v] of Object.entries(r.sources)) out.push(`  ${k.padEnd(10)} ${v}`);
  out.push('');
  out.push('Patients');
  out.push(`  FHIR patients (one row each)   ${r.patients.fhir}`);
  const dd = r.details.dicom;
  if (r.sources.dicom && dd) {
    out.push(`  with a schema image           ${r.patients.withImage} (${pct(r.linkage.dicom!.patientShare)})`);
    const others = Object.entries(dd.otherByModality)
      .sort((a, b) => b[1] - a[1])
      .map(([m, c]) => `${m} ${c}`)
      .join(', ');
    out.push(
      `  images decoded                ${dd.images} (${dd.images - dd.otherImages} of the schema's kind${dd.otherImages ? `; ${dd.otherImages} others, not used: ${others}` : ''})`,
    );
  }
  if (r.sources.vcf) out.push(`  with a genome (≥1 called SNP)  ${r.patients.withGenome} (${pct(r.linkage.vcf!.patientShare)})`);
  if (r.sources.notes || r.sources.fhirNotes)
    out.push(`  with notes                    ${r.patients.withNotes} (${pct(r.linkage.note!.patientShare)})`);
  const fh = r.details.fhir;
  if (fh.patientsWithoutLinkageKey || fh.ambiguousKeys)
    out.push(
      `  FHIR patients without a linkage key: ${fh.patientsWithoutLinkageKey}; keys shared by several patients: ${fh.ambiguousKeys}`,
    );
  out.push('');
  out.push('Linkage (artefacts → patients)');
  const name = { dicom: 'images', vcf: 'VCF samples', note: 'notes' } as const;
  for (const [m, s] of Object.entries(r.linkage)) {
    if (s.artefacts === 0 && !(m === 'dicom' ? r.sources.dicom : m === 'vcf' ? r.sources.vcf : r.sources.notes || r.sources.fhirNotes))
      continue;
    out.push(
      `  ${name[m as keyof typeof name].padEnd(12)} ${s.artefacts} read, ${s.linked} linked (${pct(s.linkedRate)}), ${s.unlinked} unlinked, ${s.ambiguous} ambiguous, ${s.beyondBound} over the per-patient bound`,
    );
    if (s.unlinkedExamples.length) out.push(`               unlinked keys, e.g. ${s.unlinkedExamples.slice(0, 3).join(', ')}`);
  }
  out.push('');
  out.push('Schema coverage');
  const cond = Object.entries(r.coverage.conditions);
  if (cond.length) out.push(`  conditions (share of patients): ${cond.map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  const labs = Object.entries(r.coverage.labsMeasured);
  if (labs.length) out.push(`  labs measured: ${labs.map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  if (r.coverage.snpCallRate !== undefined) {
    out.push(
      `  SNP panel: ${r.coverage.snpPanelFound}/${r.details.vcf!.panelSnps} SNPs found in the VCF, call rate ${pct(r.coverage.snpCallRate)} (patients with a genome)`,
    );
    if (r.coverage.snpPanelMissing?.length) out.push(`  SNPs not in the VCF: ${r.coverage.snpPanelMissing.join(', ')}`);
    if (r.coverage.snpAlleleFlips?.length)
      out.push(`  SNPs read with swapped or other-strand alleles (dosage re-oriented): ${r.coverage.snpAlleleFlips.join(', ')}`);
  }
  for (const [a, classes] of Object.entries(r.coverage.imageFindings))
    out.push(
      `  ${a} (of imaged patients): ${Object.entries(classes)
        .map(([c, v]) => `${c} ${pct(v)}`)
        .join(', ')}`,
    );
  const notes = Object.entries(r.coverage.noteMentions);
  if (notes.length)
    out.push(`  note mentions (of patients with notes): ${notes.map(([k, v]) => `${k.replace(/^note_/, '')} ${pct(v)}`).join(', ')}`);
  out.push('');
  if (r.warnings.length) {
    out.push('Warnings');
    for (const w of r.warnings) out.push(`  ! ${w}`);
    out.push('');
  }
  out.push(`Quarantine: ${r.quarantine.total} record(s)`);
  for (const [k, v] of Object.entries(r.quarantine.byReason).sort((a, b) => b[1] - a[1])) {
    out.push(`  ${String(v).padStart(6)}  ${k}`);
    const shown = r.quarantine.items.filter((i) => `${i.modality}: ${i.reason}` === k).slice(0, ITEMS_PER_REASON);
    for (const i of shown)
      out.push(`            ${i.source}${i.offset !== undefined ? ` @${i.offset}` : ''}${i.detail ? ` (${i.detail.slice(0, 160)})` : ''}`);
    if (v > shown.length) out.push(`            … ${v - shown.length} more (--json lists them)`);
  }
  out.push('');
  out.push(`read in ${(r.elapsedMs / 1000).toFixed(2)} s`);
  return out.join('\n');
}
