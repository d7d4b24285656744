/**
 * The simulated sites' genetics against the literature: draws latent patients of every site
 * profile (the facts the site files are written from, before array coverage and call failures)
 * and reports, per panel SNP → condition, the allelic odds ratio pooled by Mantel–Haenszel over
 * (site, population, sex, age decade) strata — adjusted for age and sex as GWAS report theirs, and
 * unconfounded by ancestry and site mix — with a 95 % CI, next to the published per-allele OR; and
 * the same pooled over (site, population) only, which is attenuated for conditions whose risk
 * varies strongly with age (the odds ratio is not collapsible). Each SNP's alt-allele frequency
 * per population is reported next to the panel's.
 *
 * `npx tsx bench/genome-panel.ts [--patients 40000] [--seed 7]` (patients per site profile).
 */
import { parseArgs } from 'node:util';
import { GWAS_PANEL, SUPER_POPULATIONS } from '../modalities/genome/gwas-panel.ts';
import { Rng } from '../model/rng.ts';
import { drawLatentPatient, SITE_PROFILES, type ConditionName } from '../simulator/latent.ts';

interface Stratum {
  caseAlt: number;
  caseRef: number;
  ctlAlt: number;
  ctlRef: number;
}

/** Mantel–Haenszel odds ratio over strata, with the Robins–Breslow–Greenland SE of its log. */
export function mantelHaenszel(strata: readonly Stratum[]): { or: number; seLog: number } {
  let r = 0;
  let s = 0;
  let pr = 0;
  let ps = 0;
  let qs = 0;
  for (const { caseAlt: a, caseRef: b, ctlAlt: c, ctlRef: d } of strata) {
    const n = a + b + c + d;
    if (n === 0) continue;
    const ri = (a * d) / n;
    const si = (b * c) / n;
    const pi = (a + d) / n;
    const qi = (b + c) / n;
    r += ri;
    s += si;
    pr += pi * ri;
    ps += pi * si + qi * ri;
    qs += qi * si;
  }
  const seLog = Math.sqrt(pr / (2 * r * r) + ps / (2 * r * s) + qs / (2 * s * s));
  return { or: r / s, seLog };
}

export interface GenomePanelReport {
  patients: number;
  associations: Array<{
    snp: string;
    rsid: string;
    condition: string;
    literatureOr: number;
    /** Adjusted for age decade and sex (MH over site × population × sex × age decade). */
    simulatedOr: number;
    ci95: [number, number];
    /** MH over site × population only. */
    ancestryAdjustedOr: number;
  }>;
  frequencies: Array<{ snp: string; rsid: string; population: string; panel: number; simulated: number; alleles: number }>;
}

export function measureGenomePanel(patientsPerProfile: number, seed: number | string): GenomePanelReport {
  const pairs = GWAS_PANEL.flatMap((s, j) => s.effects.map((e) => ({ s, j, e })));
  // strata[pair][site × population]
  const strata = pairs.map(() => new Map<string, Stratum>());
  const coarse = pairs.map(() => new Map<string, Stratum>());
  const altCount = GWAS_PANEL.map(() => SUPER_POPULATIONS.map(() => [0, 0]));
  const rng = new Rng(seed);
  let patients = 0;
  SITE_PROFILES.forEach((profile, si) => {
    const siteRng = rng.fork(`site-${si}`);
    for (let i = 0; i < patientsPerProfile; i++) {
      const p = drawLatentPatient(profile, `site-${si}`, i, '2025-01-01', siteRng.fork(i));
      patients++;
      const pop = p.genome.population;
      GWAS_PANEL.forEach((_, j) => {
        altCount[j][pop][0] += p.genome.dosage[j];
        altCount[j][pop][1] += 2;
      });
      const fine = `${si}:${pop}:${p.sex}:${Math.min(8, Math.floor(p.ageYears / 10))}`;
      pairs.forEach(({ j, e }, k) => {
        const d = p.genome.dosage[j];
        const isCase = p.conditions[e.condition as ConditionName];
        for (const [map, key] of [
          [strata[k], fine],
          [coarse[k], `${si}:${pop}`],
        ] as const) {
          const st = map.get(key) ?? { caseAlt: 0, caseRef: 0, ctlAlt: 0, ctlRef: 0 };
          if (isCase) {
            st.caseAlt += d;
            st.caseRef += 2 - d;
          } else {
            st.ctlAlt += d;
            st.ctlRef += 2 - d;
          }
          map.set(key, st);
        }
      });
    }
  });
  return {
    patients,
    associations: pairs.map(({ s, e }, k) => {
      const { or, seLog } = mantelHaenszel([...strata[k].values()]);
      return {
        snp: s.name,
        rsid: s.rsid,
        condition: e.condition,
        literatureOr: e.oddsRatioPerAlt,
        simulatedOr: or,
        ci95: [or * Math.exp(-1.96 * seLog), or * Math.exp(1.96 * seLog)],
        ancestryAdjustedOr: mantelHaenszel([...coarse[k].values()]).or,
      };
    }),
    frequencies: GWAS_PANEL.flatMap((s, j) =>
      SUPER_POPULATIONS.map((population, p) => ({
        snp: s.name,
        rsid: s.rsid,
        population,
        panel: s.altFrequency[population],
        simulated: altCount[j][p][1] ? altCount[j][p][0] / altCount[j][p][1] : NaN,
        alleles: altCount[j][p][1],
      })),
    ),
  };
}

function main(): void {
  const { values } = parseArgs({ options: { patients: { type: 'string', default: '40000' }, seed: { type: 'string', default: '7' } } });
  const n = Number(values.patients);
  if (!Number.isInteger(n) || n < 100) throw new Error(`--patients must be an integer ≥ 100, got ${values.patients}`);
  const t0 = Date.now();
  const r = measureGenomePanel(n, values.seed!);
  const f2 = (x: number) => x.toFixed(2);
  const out = [
    `${r.patients} latent patients (${SITE_PROFILES.length} site profiles × ${n}), seed ${values.seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    '',
    '| SNP (rsID) → condition | literature OR per ALT | simulated allelic OR, age/sex-adjusted (95 % CI) | adjusted for site and ancestry only |',
    '| --- | --- | --- | --- |',
    ...r.associations.map(
      (a) =>
        `| ${a.snp} (${a.rsid}) → ${a.condition} | ${a.literatureOr} | ${f2(a.simulatedOr)} (${f2(a.ci95[0])}–${f2(a.ci95[1])}) | ${f2(a.ancestryAdjustedOr)} |`,
    ),
    '',
    '| SNP | population | panel ALT frequency | simulated | alleles |',
    '| --- | --- | --- | --- | --- |',
    ...r.frequencies.map((f) => `| ${f.snp} | ${f.population} | ${f.panel} | ${f.simulated.toFixed(3)} | ${f.alleles} |`),
  ];
  console.log(out.join('\n'));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
