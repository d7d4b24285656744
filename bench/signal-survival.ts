/**
 * Proof that cross-modal signal survives: the real simulated sites and a synthetic
 * cohort are both read with the sites' own loader and encoders (FHIR, DICOM → image findings by
 * the fixed extractors, VCF → dosages, notes → mentions), and compared on:
 * - image findings per condition: P(finding | cause) and P(finding | no cause) (opacity ←
 *   pneumonia, cardiomegaly ← heart failure, nodule ← COPD), by the extractor, and by a simple
 *   logistic classifier on the 16×16 normalised image trained on REAL images (labels: the
 *   extractor's classes) applied to the synthetic images (TRTS), and trained on SYNTHETIC images
 *   (labels: the sampled findings) applied to real ones (TSTR, accuracy);
 * - the panel's published SNP → condition associations: allelic odds ratio, crude (confounded
 *   by site/ancestry as in real pooled data, see truth.json `model.genome`) and adjusted for age
 *   and sex, with 95 % CIs; allele frequencies; missing calls among patients with a genome; r²
 *   of SNPs at one locus;
 * - notes: P(note mentions X | X) and P(note mentions X | not X) for the conditions.
 *
 * `npx tsx bench/signal-survival.ts [--patients 5000] [--sites 3] [--cohort 5000] [--seed 7] [--reuse]`
 * runs the real pipeline (`runDemo`: separate processes, mTLS, threshold-encrypted aggregation,
 * ε = 1) with every modality, then measures; `--reuse` measures the kept folders of an earlier
 * run with the same settings instead. Prints a Markdown table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseSchema, SNP_MISSING, imageMissingCode, NOTE_MISSING, type ImageFindingAttribute, type Schema } from '../schema/schema.ts';
import type { Dataset } from '../model/domain.ts';
import { loadMultimodalSiteData } from '../site-agent/site-data.ts';
import type { SiteDataConfig } from '../site-agent/config.ts';
import { readDicomFolder } from '../site-agent/connectors/dicom/index.ts';
import { Quarantine } from '../site-agent/connectors/types.ts';
import { ageBandFrom, normaliseToGrid, imageScores, imageFindingCodes } from '../site-agent/features/image.ts';
import { GWAS_PANEL } from '../modalities/genome/gwas-panel.ts';
import { mantelHaenszel } from './genome-panel.ts';

export const FINDING_CAUSE: Record<string, { attr: string; cause: string }> = {
  opacity: { attr: 'img_opacity', cause: 'pneumonia' },
  cardiomegaly: { attr: 'img_cardiomegaly', cause: 'heart_failure' },
  nodule: { attr: 'img_nodule', cause: 'copd' },
};
/** Every published SNP → condition association of the panel, with its per-ALT odds ratio. */
export const CAUSAL_SNPS = GWAS_PANEL.flatMap((s) =>
  s.effects.map((e) => ({ snp: s.name, condition: e.condition, plantedOr: e.oddsRatioPerAlt })),
);

export interface Side {
  data: Dataset;
  /** Per image: features (3 extractor scores + 16×16 normalised grid), extractor classes (0/1 per finding), row index. */
  images: { grid: Float32Array; labels: Record<string, number>; row: number }[];
}

/** Reads one folder of FHIR (+ DICOM, VCF, notes) as the sites do, plus per-image features. */
export async function readSide(schema: Schema, data: SiteDataConfig, mrnSystem?: string): Promise<Side> {
  const loaded = await loadMultimodalSiteData({ data }, schema);
  const rowOfPatient = new Map(loaded.patientIds.map((id, i) => [id, i]));
  // DICOM PatientID → row: the FHIR id (synthetic cohort) or the MRN (simulated sites).
  const keyToRow = new Map<string, number>();
  if (mrnSystem) {
    const text = readFileSync(join(data.kind === 'fhir-ndjson' ? data.dir : '', 'Patient.ndjson'), 'utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      const p = JSON.parse(line) as { id: string; identifier?: { system?: string; value?: string }[] };
      const mrn = p.identifier?.find((i) => i.system === mrnSystem)?.value;
      const row = rowOfPatient.get(p.id);
      if (mrn && row !== undefined) keyToRow.set(mrn, row);
    }
  } else for (const [id, row] of rowOfPatient) keyToRow.set(id, row);
  const images: Side['images'] = [];
  const attrs = schema.attributes.filter((a): a is ImageFindingAttribute => a.kind === 'image-finding');
  const grid = schema.image?.grid ?? 64;
  const ageAttr = schema.attributes.find((a) => a.kind === 'age');
  const ageCol = ageAttr ? loaded.data.column(ageAttr.name) : undefined;
  const seen = new Set<number>();
  if (data.dicom) {
    for await (const img of readDicomFolder(data.dicom, new Quarantine())) {
      const row = img.patientId !== undefined ? keyToRow.get(img.patientId) : undefined;
      if (row === undefined || seen.has(row)) continue;
      const f = imageScores(img.pixels, img.rows, img.columns, grid);
      if (!f.ok) continue;
      seen.add(row);
      // The cardiomegaly cut of the row's age band, as the sites' loader reads it (finding-scores.ts).
      const codes = imageFindingCodes(attrs, f.scores, ageCol ? ageBandFrom(schema, ageCol[row]!) : undefined);
      const labels: Record<string, number> = {};
      for (const [finding, { attr }] of Object.entries(FINDING_CAUSE))
        labels[finding] = codes[attrs.findIndex((a) => a.name === attr)] > 0 ? 1 : 0;
      // Features: the three extractor scores and the 16×16 normalised image.
      const g16 = normaliseToGrid(img.pixels, img.rows, img.columns, 16);
      const x = new Float32Array(3 + g16.length);
      x[0] = f.scores['cardiothoracic-ratio'];
      x[1] = f.scores['lung-opacity'];
      x[2] = f.scores.nodule;
      x.set(g16, 3);
      images.push({ grid: x, labels, row });
    }
  }
  return { data: loaded.data, images };
}

const col = (d: Dataset, name: string) => d.column(name);

/** P(attr = 1 | cond = 1), P(attr = 1 | cond = 0) among rows where attr is not `missing`. */
export function conditionalRates(
  d: Dataset,
  attr: string,
  missing: number,
  cond: string,
): { withCause: number; without: number; n: number } {
  const a = col(d, attr);
  const c = col(d, cond);
  let w = 0;
  let wn = 0;
  let o = 0;
  let on = 0;
  for (let r = 0; r < d.rows; r++) {
    if (a[r] === missing) continue;
    if (c[r] === 1) {
      wn++;
      w += a[r] === 1 ? 1 : 0;
    } else {
      on++;
      o += a[r] === 1 ? 1 : 0;
    }
  }
  return { withCause: wn ? w / wn : NaN, without: on ? o / on : NaN, n: wn + on };
}

/** Allelic odds ratio of a SNP for a condition (called genotypes only), with a 0.5 continuity correction. */
export function allelicOddsRatio(d: Dataset, snp: string, cond: string): number {
  return allelicOddsRatioSe(d, snp, cond).or;
}

/** The allelic odds ratio and the standard error of its log (Woolf: √Σ 1/cell over the allele 2×2 table). */
export function allelicOddsRatioSe(d: Dataset, snp: string, cond: string): { or: number; seLog: number } {
  const g = col(d, snp);
  const c = col(d, cond);
  let caseAlt = 0.5;
  let caseRef = 0.5;
  let ctlAlt = 0.5;
  let ctlRef = 0.5;
  for (let r = 0; r < d.rows; r++) {
    if (g[r] === SNP_MISSING) continue;
    if (c[r] === 1) {
      caseAlt += g[r];
      caseRef += 2 - g[r];
    } else {
      ctlAlt += g[r];
      ctlRef += 2 - g[r];
    }
  }
  return { or: caseAlt / caseRef / (ctlAlt / ctlRef), seLog: Math.sqrt(1 / caseAlt + 1 / caseRef + 1 / ctlAlt + 1 / ctlRef) };
}

/**
 * Allelic odds ratio adjusted for age band and sex (Mantel–Haenszel over the schema's age × sex
 * cells), as GWAS report theirs; the crude pooled OR is confounded when sites differ in ancestry
 * and age mix. Site and ancestry are not columns of the synthetic data, so they cannot be
 * adjusted for on both sides.
 */
export function adjustedAllelicOddsRatio(d: Dataset, snp: string, cond: string): { or: number; seLog: number } {
  const g = col(d, snp);
  const c = col(d, cond);
  const age = col(d, 'age');
  const sex = col(d, 'sex');
  const strata = new Map<number, { caseAlt: number; caseRef: number; ctlAlt: number; ctlRef: number }>();
  for (let r = 0; r < d.rows; r++) {
    if (g[r] === SNP_MISSING) continue;
    const key = age[r] * 16 + sex[r];
    const st = strata.get(key) ?? { caseAlt: 0, caseRef: 0, ctlAlt: 0, ctlRef: 0 };
    if (c[r] === 1) {
      st.caseAlt += g[r];
      st.caseRef += 2 - g[r];
    } else {
      st.ctlAlt += g[r];
      st.ctlRef += 2 - g[r];
    }
    strata.set(key, st);
  }
  return mantelHaenszel([...strata.values()]);
}

export function alleleFrequency(d: Dataset, snp: string): number {
  const g = col(d, snp);
  let alt = 0;
  let n = 0;
  for (let r = 0; r < d.rows; r++) {
    if (g[r] === SNP_MISSING) continue;
    alt += g[r];
    n += 2;
  }
  return n ? alt / n : NaN;
}

/** r² of the dosages of two SNPs over rows where both are called. */
export function ldR2(d: Dataset, a: string, b: string): number {
  const x = col(d, a);
  const y = col(d, b);
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let r = 0; r < d.rows; r++) {
    if (x[r] === SNP_MISSING || y[r] === SNP_MISSING) continue;
    n++;
    sx += x[r];
    sy += y[r];
    sxx += x[r] * x[r];
    syy += y[r] * y[r];
    sxy += x[r] * y[r];
  }
  const cov = sxy / n - (sx / n) * (sy / n);
  const vx = sxx / n - (sx / n) ** 2;
  const vy = syy / n - (sy / n) ** 2;
  return vx > 0 && vy > 0 ? (cov * cov) / (vx * vy) : 0;
}

/** Logistic regression by batch gradient descent on standardised features (bias included). */
export function trainLogistic(xs: Float32Array[], ys: number[], iterations = 300, lr = 0.5, l2 = 1e-3): (x: Float32Array) => number {
  const d = xs[0]?.length ?? 0;
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const x of xs) for (let j = 0; j < d; j++) mean[j] += x[j] / xs.length;
  for (const x of xs) for (let j = 0; j < d; j++) sd[j] += (x[j] - mean[j]) ** 2 / xs.length;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const w = new Float64Array(d + 1);
  const z = xs.map((x) => Float64Array.from(x, (v, j) => (v - mean[j]) / sd[j]));
  const grad = new Float64Array(d + 1);
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    for (let i = 0; i < z.length; i++) {
      let s = w[d];
      for (let j = 0; j < d; j++) s += w[j] * z[i][j];
      const e = 1 / (1 + Math.exp(-s)) - ys[i];
      for (let j = 0; j < d; j++) grad[j] += e * z[i][j];
      grad[d] += e;
    }
    for (let j = 0; j <= d; j++) w[j] -= lr * (grad[j] / z.length + (j < d ? l2 * w[j] : 0));
  }
  return (x) => {
    let s = w[d];
    for (let j = 0; j < d; j++) s += (w[j] * (x[j] - mean[j])) / sd[j];
    return 1 / (1 + Math.exp(-s)) >= 0.5 ? 1 : 0;
  };
}

export interface SignalTable {
  findings: Record<
    string,
    {
      cause: string;
      real: { withCause: number; without: number };
      synthetic: { withCause: number; without: number };
      trts: { withCause: number; without: number };
      trtsRealHeldOut: { withCause: number; without: number };
      tstrAccuracy: number;
      trtrAccuracy: number;
    }
  >;
  /** Keyed `snp → condition`; ORs per ALT allele, SEs of their logs. */
  snps: Record<
    string,
    {
      snp: string;
      condition: string;
      plantedOr: number;
      realOr: number;
      realSeLog: number;
      syntheticOr: number;
      syntheticSeLog: number;
      /** Age/sex-adjusted (Mantel–Haenszel) ORs and the SEs of their logs. */
      realAdjustedOr: number;
      realAdjustedSeLog: number;
      syntheticAdjustedOr: number;
      syntheticAdjustedSeLog: number;
    }
  >;
  alleleFrequency: { meanAbsDiff: number; maxAbsDiff: number; bySnp: Record<string, { real: number; synthetic: number }> };
  ld: { pairs: number; meanAbsDiff: number; byPair: Record<string, { real: number; synthetic: number }> };
  notes: Record<string, { real: { withCause: number; without: number }; synthetic: { withCause: number; without: number } }>;
  patients: { real: number; synthetic: number; realImages: number; syntheticImages: number };
  /** Patients with any SNP called, and the share of their panel genotypes that are missing. */
  genomes: { real: GenomeMissingness; synthetic: GenomeMissingness };
}

interface GenomeMissingness {
  patients: number;
  missingShare: number;
  missingBySnp: Record<string, number>;
}

/** Missing panel calls among the patients who have a genome (any SNP called). */
export function genomeMissingness(d: Dataset, panel: readonly string[]): GenomeMissingness {
  const cols = panel.map((s) => col(d, s));
  const bySnp = panel.map(() => 0);
  let patients = 0;
  for (let r = 0; r < d.rows; r++) {
    if (cols.every((c) => c[r] === SNP_MISSING)) continue;
    patients++;
    cols.forEach((c, j) => (bySnp[j] += +(c[r] === SNP_MISSING)));
  }
  const total = bySnp.reduce((a, b) => a + b, 0);
  return {
    patients,
    missingShare: patients ? total / (patients * panel.length) : 0,
    missingBySnp: Object.fromEntries(panel.map((s, j) => [s, patients ? bySnp[j] / patients : 0])),
  };
}

function ratesByClassifier(
  side: Side,
  finding: string,
  cause: string,
  predict: (x: Float32Array) => number,
  subset?: (i: number) => boolean,
) {
  const c = col(side.data, cause);
  let w = 0;
  let wn = 0;
  let o = 0;
  let on = 0;
  side.images.forEach((im, i) => {
    if (subset && !subset(i)) return;
    const p = predict(im.grid);
    if (c[im.row] === 1) {
      wn++;
      w += p;
    } else {
      on++;
      o += p;
    }
  });
  void finding;
  return { withCause: wn ? w / wn : NaN, without: on ? o / on : NaN };
}

export function compareSides(schema: Schema, real: Side, synth: Side): SignalTable {
  const findings: SignalTable['findings'] = {};
  for (const [finding, { attr, cause }] of Object.entries(FINDING_CAUSE)) {
    const a = schema.attributes.find((x) => x.name === attr) as ImageFindingAttribute;
    const miss = imageMissingCode(a);
    // Train on real (every 5th image held out), test on synthetic; and the reverse.
    const train = real.images.filter((_, i) => i % 5 !== 0);
    const trts = trainLogistic(
      train.map((im) => im.grid),
      train.map((im) => im.labels[finding]),
    );
    const tstr = trainLogistic(
      synth.images.map((im) => im.grid),
      synth.images.map((im) => im.labels[finding]),
    );
    const acc = (side: Side, f: (x: Float32Array) => number, subset?: (i: number) => boolean) => {
      let ok = 0;
      let n = 0;
      side.images.forEach((im, i) => {
        if (subset && !subset(i)) return;
        n++;
        ok += f(im.grid) === im.labels[finding] ? 1 : 0;
      });
      return n ? ok / n : NaN;
    };
    findings[finding] = {
      cause,
      real: conditionalRates(real.data, attr, miss, cause),
      synthetic: conditionalRates(synth.data, attr, miss, cause),
      trts: ratesByClassifier(synth, finding, cause, trts),
      trtsRealHeldOut: ratesByClassifier(real, finding, cause, trts, (i) => i % 5 === 0),
      tstrAccuracy: acc(real, tstr),
      trtrAccuracy: acc(real, trts, (i) => i % 5 === 0),
    };
  }
  const snps: SignalTable['snps'] = {};
  for (const c of CAUSAL_SNPS) {
    const r = allelicOddsRatioSe(real.data, c.snp, c.condition);
    const y = allelicOddsRatioSe(synth.data, c.snp, c.condition);
    const ra = adjustedAllelicOddsRatio(real.data, c.snp, c.condition);
    const ya = adjustedAllelicOddsRatio(synth.data, c.snp, c.condition);
    snps[`${c.snp} → ${c.condition}`] = {
      snp: c.snp,
      condition: c.condition,
      plantedOr: c.plantedOr,
      realOr: r.or,
      realSeLog: r.seLog,
      syntheticOr: y.or,
      syntheticSeLog: y.seLog,
      realAdjustedOr: ra.or,
      realAdjustedSeLog: ra.seLog,
      syntheticAdjustedOr: ya.or,
      syntheticAdjustedSeLog: ya.seLog,
    };
  }
  const panel = schema.attributes.filter((a) => a.kind === 'snp').map((a) => a.name);
  const bySnp: SignalTable['alleleFrequency']['bySnp'] = {};
  let sum = 0;
  let max = 0;
  for (const s of panel) {
    const r = alleleFrequency(real.data, s);
    const y = alleleFrequency(synth.data, s);
    bySnp[s] = { real: r, synthetic: y };
    sum += Math.abs(r - y);
    max = Math.max(max, Math.abs(r - y));
  }
  const byPair: SignalTable['ld']['byPair'] = {};
  let ldSum = 0;
  let pairs = 0;
  for (let i = 0; i + 1 < panel.length; i++) {
    const [a, b] = [panel[i], panel[i + 1]];
    if (a.split('_')[1] !== b.split('_')[1]) continue; // same locus (the gene part of the name)
    const r = ldR2(real.data, a, b);
    const y = ldR2(synth.data, a, b);
    byPair[`${a}~${b}`] = { real: r, synthetic: y };
    ldSum += Math.abs(r - y);
    pairs++;
  }
  const notes: SignalTable['notes'] = {};
  for (const a of schema.attributes) {
    if (a.kind !== 'note-mention') continue;
    const cond = a.name.replace(/^note_/, '');
    if (!schema.attributes.some((c) => c.kind === 'condition' && c.name === cond)) continue;
    notes[cond] = {
      real: conditionalRates(real.data, a.name, NOTE_MISSING, cond),
      synthetic: conditionalRates(synth.data, a.name, NOTE_MISSING, cond),
    };
  }
  return {
    findings,
    snps,
    alleleFrequency: { meanAbsDiff: sum / panel.length, maxAbsDiff: max, bySnp },
    ld: { pairs, meanAbsDiff: ldSum / Math.max(1, pairs), byPair },
    notes,
    patients: { real: real.data.rows, synthetic: synth.data.rows, realImages: real.images.length, syntheticImages: synth.images.length },
    genomes: { real: genomeMissingness(real.data, panel), synthetic: genomeMissingness(synth.data, panel) },
  };
}

/** Reads the simulated sites of a federation work folder and a cohort folder, and compares. */
export async function measureSignal(schemaPath: string, dataDir: string, sites: string[], cohortDir: string): Promise<SignalTable> {
  const schema = parseSchema(readFileSync(schemaPath, 'utf8'));
  const parts: Side[] = [];
  for (const s of sites) {
    const d = join(dataDir, s);
    const mrn = `urn:fedsynth:sim:${s}:mrn`;
    parts.push(
      await readSide(
        schema,
        {
          kind: 'fhir-ndjson',
          dir: d,
          dicom: join(d, 'dicom'),
          vcf: join(d, 'genomes.vcf'),
          notes: join(d, 'notes'),
          linkage: { key: 'identifier', identifierSystem: mrn, vcfSampleMap: join(d, 'vcf-samples.tsv') },
        },
        mrn,
      ),
    );
  }
  const real = poolSides(parts);
  const synth = await readSide(schema, {
    kind: 'fhir-ndjson',
    dir: join(cohortDir, 'fhir'),
    dicom: join(cohortDir, 'dicom'),
    vcf: join(cohortDir, 'vcf', 'cohort.vcf'),
    notes: join(cohortDir, 'notes'),
  });
  return compareSides(schema, real, synth);
}

export function poolSides(parts: Side[]): Side {
  const first = parts[0].data;
  const n = parts.reduce((a, p) => a + p.data.rows, 0);
  const cols = first.columns.map((c) => new (c.constructor as Uint8ArrayConstructor)(n));
  const images: Side['images'] = [];
  let o = 0;
  for (const p of parts) {
    for (let j = 0; j < cols.length; j++) cols[j].set(p.data.columns[j] as Uint8Array, o);
    for (const im of p.images) images.push({ ...im, row: im.row + o });
    o += p.data.rows;
  }
  const data = new (first.constructor as new (...a: unknown[]) => Dataset)(first.domain, cols, n);
  return { data, images };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '—');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '—');

export function signalMarkdown(t: SignalTable): string {
  const lines: string[] = [];
  lines.push(
    '| image finding (cause) | real: P(f\\|cause) / P(f\\|no cause) | synthetic (extractor) | synthetic (classifier trained on real) | real held-out (same classifier) | TSTR accuracy | TRTR accuracy |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [f, r] of Object.entries(t.findings)) {
    lines.push(
      `| ${f} (${r.cause}) | ${pct(r.real.withCause)} / ${pct(r.real.without)} | ${pct(r.synthetic.withCause)} / ${pct(r.synthetic.without)} | ${pct(r.trts.withCause)} / ${pct(r.trts.without)} | ${pct(r.trtsRealHeldOut.withCause)} / ${pct(r.trtsRealHeldOut.without)} | ${pct(r.tstrAccuracy)} | ${pct(r.trtrAccuracy)} |`,
    );
  }
  lines.push('');
  const ci = (or: number, se: number) => `${f2(or)} (${f2(or * Math.exp(-1.96 * se))}–${f2(or * Math.exp(1.96 * se))})`;
  lines.push(
    '| SNP → condition | literature OR per ALT | real, age/sex-adjusted (95 % CI) | synthetic, age/sex-adjusted (95 % CI) | real crude | synthetic crude |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const [s, r] of Object.entries(t.snps))
    lines.push(
      `| ${s} | ${r.plantedOr} | ${ci(r.realAdjustedOr, r.realAdjustedSeLog)} | ${ci(r.syntheticAdjustedOr, r.syntheticAdjustedSeLog)} | ${f2(r.realOr)} | ${f2(r.syntheticOr)} |`,
    );
  lines.push('');
  const afs = Object.entries(t.alleleFrequency.bySnp);
  lines.push(
    `Allele frequencies (${afs.length} SNPs): mean |real − synthetic| = ${t.alleleFrequency.meanAbsDiff.toFixed(3)}, max = ${t.alleleFrequency.maxAbsDiff.toFixed(3)}.`,
  );
  lines.push('');
  const g = t.genomes;
  lines.push('');
  lines.push(
    `Genomes: ${g.real.patients} real / ${g.synthetic.patients} synthetic patients with any SNP called; missing calls among them ${pct(g.real.missingShare)} real, ${pct(g.synthetic.missingShare)} synthetic.`,
  );
  lines.push('');
  lines.push('| SNP | real ALT frequency | synthetic | real missing (with a genome) | synthetic missing |');
  lines.push('| --- | --- | --- | --- | --- |');
  for (const [s, r] of afs)
    lines.push(
      `| ${s} | ${r.real.toFixed(3)} | ${r.synthetic.toFixed(3)} | ${pct(g.real.missingBySnp[s] ?? 0)} | ${pct(g.synthetic.missingBySnp[s] ?? 0)} |`,
    );
  lines.push('');
  lines.push('| adjacent SNPs | real r² | synthetic r² |');
  lines.push('| --- | --- | --- |');
  for (const [p, r] of Object.entries(t.ld.byPair)) lines.push(`| ${p} | ${f2(r.real)} | ${f2(r.synthetic)} |`);
  lines.push('');
  lines.push('| condition | real notes: P(mention\\|X) / P(mention\\|not X) | synthetic notes |');
  lines.push('| --- | --- | --- |');
  for (const [c, r] of Object.entries(t.notes))
    lines.push(
      `| ${c} | ${pct(r.real.withCause)} / ${pct(r.real.without)} | ${pct(r.synthetic.withCause)} / ${pct(r.synthetic.without)} |`,
    );
  lines.push('');
  lines.push(
    `Patients: ${t.patients.real} real (${t.patients.realImages} images), ${t.patients.synthetic} synthetic (${t.patients.syntheticImages} images).`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { runDemo } = await import('../cli/demo.ts');
  const { siteId, MULTIMODAL_SCHEMA_PATH } = await import('../simulator/index.ts');
  const arg = (k: string, d: number) => {
    const i = process.argv.indexOf(`--${k}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const sites = arg('sites', 3);
  const patients = arg('patients', 5000);
  const cohortSize = arg('cohort', 5000);
  const seed = arg('seed', 7);
  const out = join(tmpdir(), `fedsynth-signal-${sites}x${patients}-s${seed}`);
  const t0 = Date.now();
  // --reuse: measure the folders of an earlier run with the same settings (kept by keepWork).
  const reuse = process.argv.includes('--reuse') && existsSync(join(out, 'report.json'));
  const report = reuse
    ? undefined
    : await runDemo({
        outDir: out,
        sites,
        patients,
        cohortSize,
        epsilon: 1,
        delta: 1e-9,
        seed,
        keepWork: true,
        multimodal: true,
        log: (l) => (process.env.VERBOSE ? console.log(l) : undefined),
      });
  if (report)
    console.error(
      `pipeline: ${((Date.now() - t0) / 1000).toFixed(1)} s, ε per site ${Object.values(report.perSite)
        .map((p) => p.epsilon.toFixed(3))
        .join(', ')}`,
    );
  else console.error(`reusing ${out}`);
  const table = await measureSignal(
    MULTIMODAL_SCHEMA_PATH,
    join(out, 'work', 'data'),
    Array.from({ length: sites }, (_, i) => siteId(i)),
    join(out, 'cohort'),
  );
  console.log(JSON.stringify(table));
  console.log(signalMarkdown(table));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
