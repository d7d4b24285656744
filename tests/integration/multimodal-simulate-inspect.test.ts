// fedsynth simulate (all modalities) → fedsynth agent inspect on every simulated site: the counts
// match truth.json, the encoded rows reproduce the planted per-site marginals, and the planted
// cross-modal structure is visible in the encoded data.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';
import { MULTIMODAL_SCHEMA_PATH, simulateFederation } from '../../simulator/index.ts';
import { runInspectCommand } from '../../cli/inspect.ts';
import { parseSiteDataSection } from '../../cli/agent-config.ts';
import { Fields, loadConfigFile } from '../../cli/config-file.ts';
import { loadMultimodalSiteData, type MultimodalSiteData } from '../../site-agent/site-data.ts';
import type { InspectReport } from '../../site-agent/inspect.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-mm-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const schema = parseSchema(readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8'));
const N = 400;

describe('simulate → inspect, all modalities', () => {
  let truth: any;
  const reports: InspectReport[] = [];
  const loaded: MultimodalSiteData[] = [];

  beforeAll(async () => {
    const sim = await simulateFederation({
      sites: 3,
      patients: N,
      seed: 21,
      outDir: root,
      schema,
      schemaPath: MULTIMODAL_SCHEMA_PATH,
      modalities: ['fhir', 'dicom', 'vcf', 'notes'],
      vcfBgzip: true,
    });
    truth = JSON.parse(readFileSync(sim.truthPath, 'utf8'));
    for (const s of sim.sites) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runInspectCommand(['--config', join(s.dir, 'inspect.yaml'), '--json'], {
        out: (t) => out.push(t),
        err: (t) => err.push(t),
      });
      expect(err).toEqual([]);
      expect(code).toBe(0);
      reports.push(JSON.parse(out.join('\n')));
      const file = loadConfigFile(join(s.dir, 'inspect.yaml'));
      loaded.push(
        await loadMultimodalSiteData(
          { data: parseSiteDataSection(new Fields(file.path, file.raw), file.path, file.dir, file.raw) },
          schema,
        ),
      );
    }
  }, 60_000);

  it('writes every modality per site', () => {
    for (const s of truth.siteMixes) {
      const dir = join(root, s.id);
      for (const f of ['Patient.ndjson', 'dicom', 'genomes.vcf.gz', 'vcf-samples.tsv', 'notes', 'inspect.yaml'])
        expect(existsSync(join(dir, f)), `${s.id}/${f}`).toBe(true);
    }
    expect(truth.modalities).toEqual(['fhir', 'dicom', 'vcf', 'notes']);
    expect(truth.model.genome.causal.length).toBeGreaterThan(0);
  });

  it('patients per modality, linkage and quarantine match truth.json', () => {
    truth.siteMixes.forEach((s: any, i: number) => {
      const r = reports[i]!;
      const m = s.modalities;
      expect(r.patients.fhir).toBe(N);
      // Images: one per imaged patient + a repeat (over the bound) + an orphan (unlinked); a truncated file is quarantined.
      expect(r.patients.withImage).toBe(m.dicom.imagedPatients);
      expect(r.linkage.dicom).toMatchObject({
        artefacts: m.dicom.imagedPatients + 2,
        linked: m.dicom.imagedPatients + 1,
        unlinked: 1,
        ambiguous: 0,
        beyondBound: 1,
        unlinkedExamples: ['MRN0000001'],
      });
      expect(r.quarantine.byReason).toEqual({ 'dicom: truncated file': 1 });
      // Genomes: every mapped sample links, the orphan sample does not.
      expect(r.patients.withGenome).toBe(m.vcf.linkedSamples);
      expect(r.linkage.vcf).toMatchObject({ artefacts: m.vcf.samples, linked: m.vcf.linkedSamples, unlinked: 1, ambiguous: 0 });
      expect(r.coverage.snpCallRate).toBeCloseTo(m.vcf.panelCallRate, 4);
      expect(r.coverage.snpPanelFound).toBe(20);
      // Notes.
      expect(r.patients.withNotes).toBe(m.notes.patientsWithNotes);
      expect(r.linkage.note!.unlinked).toBe(1);
      expect(r.linkage.note!.linked).toBe(m.notes.files - 1);
      for (const [concept, count] of Object.entries(m.notes.patientsMentioning as Record<string, number>)) {
        expect(r.coverage.noteMentions[`note_${concept}`], concept).toBeCloseTo(count / m.notes.patientsWithNotes, 4);
      }
      // Conditions: the share of FHIR patients with each condition.
      for (const [name, share] of Object.entries(r.coverage.conditions)) expect(share, name).toBeCloseTo(s.oneWay[name][1] / N, 4);
      // Image findings: the fixed extractor recovers the planted finding shares.
      const f = m.dicom.findings;
      const img = m.dicom.imagedPatients;
      expect(Math.abs(r.coverage.imageFindings.img_opacity!.opacity! - f.opacity / img)).toBeLessThan(0.04);
      expect(Math.abs(r.coverage.imageFindings.img_nodule!.nodule! - f.nodule / img)).toBeLessThan(0.03);
      expect(Math.abs(r.coverage.imageFindings.img_cardiomegaly!.enlarged! - f.cardiomegaly / img)).toBeLessThan(0.04);
    });
  });

  it('encoded rows reproduce the per-site truth marginals (FHIR, SNP and note attributes exactly)', () => {
    truth.siteMixes.forEach((s: any, i: number) => {
      const d = loaded[i]!.data;
      schema.attributes.forEach((a, j) => {
        if (a.kind === 'image-finding') return; // extractor output vs planted findings: compared above
        if (a.kind === 'image-component') {
          // Not planted: the truth leaves it out rather than report a distribution it does not know.
          expect(s.oneWay[a.name]).toBeUndefined();
          return;
        }
        const counts = new Array(d.domain.sizes[j]).fill(0);
        for (const v of d.columns[j]!) counts[v]++;
        expect(counts, `${s.id} ${a.name}`).toEqual(s.oneWay[a.name]);
      });
      // "no image" exactly for patients without an image.
      const j = schema.attributes.findIndex((a) => a.name === 'img_opacity');
      expect(s.oneWay.img_opacity[2]).toBe([...d.columns[j]!].filter((v) => v === 2).length);
    });
  });

  it('planted cross-modal structure is visible in the encoded rows', () => {
    const col = (i: number, name: string) => loaded[i]!.data.columns[schema.attributes.findIndex((a) => a.name === name)]!;
    let [pneumoOpacity, pneumoImaged, otherOpacity, otherImaged] = [0, 0, 0, 0];
    loaded.forEach((_, i) => {
      const pn = col(i, 'pneumonia');
      const op = col(i, 'img_opacity');
      for (let r = 0; r < pn.length; r++) {
        if (op[r] === 2) continue;
        if (pn[r]) {
          pneumoImaged++;
          pneumoOpacity += op[r]!;
        } else {
          otherImaged++;
          otherOpacity += op[r]!;
        }
      }
    });
    expect(pneumoOpacity / pneumoImaged).toBeGreaterThan(0.6);
    expect(otherOpacity / otherImaged).toBeLessThan(0.1);
    // Causal SNPs (OR 1.8 per allele): more alt alleles with the condition, WITHIN each site —
    // pooled over sites, population structure (ancestry and prevalence both differ by site)
    // confounds the comparison, as in real multi-site genetics.
    const diffs: number[] = [];
    for (const [snp, cond] of [
      ['snp_b1_2', 'type2_diabetes'],
      ['snp_b3_3', 'asthma'],
    ] as const) {
      loaded.forEach((_, i) => {
        const g = col(i, snp);
        const c = col(i, cond);
        let [dw, nw, dn, nn] = [0, 0, 0, 0];
        for (let r = 0; r < g.length; r++) {
          if (g[r]! === 3) continue;
          if (c[r]) {
            dw += g[r]!;
            nw++;
          } else {
            dn += g[r]!;
            nn++;
          }
        }
        if (nw >= 5) diffs.push(dw / nw - dn / nn);
      });
    }
    expect(diffs.reduce((a, b) => a + b, 0) / diffs.length).toBeGreaterThan(0.08);
  });
});
