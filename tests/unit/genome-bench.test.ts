import { describe, expect, it } from 'vitest';
import { mantelHaenszel, measureGenomePanel } from '../../bench/genome-panel.ts';

describe('bench/genome-panel', () => {
  it('Mantel–Haenszel: one stratum is the 2×2 odds ratio with Woolf’s SE; homogeneous strata pool to it', () => {
    const one = mantelHaenszel([{ caseAlt: 10, caseRef: 20, ctlAlt: 30, ctlRef: 40 }]);
    expect(one.or).toBeCloseTo((10 * 40) / (20 * 30), 12);
    expect(one.seLog).toBeCloseTo(Math.sqrt(1 / 10 + 1 / 20 + 1 / 30 + 1 / 40), 12);
    // Two strata with the same OR (2) but different baselines: pooled OR 2, while the crude table is confounded.
    const strata = [
      { caseAlt: 20, caseRef: 10, ctlAlt: 50, ctlRef: 50 },
      { caseAlt: 10, caseRef: 50, ctlAlt: 10, ctlRef: 100 },
    ];
    expect(mantelHaenszel(strata).or).toBeCloseTo(2, 1);
    const crude = mantelHaenszel([{ caseAlt: 30, caseRef: 60, ctlAlt: 60, ctlRef: 150 }]).or;
    expect(Math.abs(crude - 2)).toBeGreaterThan(0.2);
  });

  it('the simulated sites reproduce the published ORs and the panel frequencies (fixed seed)', () => {
    const r = measureGenomePanel(3000, 11);
    expect(r.patients).toBe(15_000);
    for (const a of r.associations) {
      // The published OR lies inside the age/sex-adjusted estimate's CI widened by 10 % either side.
      expect(a.literatureOr, `${a.snp} → ${a.condition}`).toBeGreaterThan(a.ci95[0] / 1.1);
      expect(a.literatureOr, `${a.snp} → ${a.condition}`).toBeLessThan(a.ci95[1] * 1.1);
    }
    for (const f of r.frequencies) {
      // ≥ 5,000 alleles per population (sd ≤ 0.0071); the seed is fixed, so this is deterministic.
      expect(f.alleles).toBeGreaterThan(5_000);
      expect(Math.abs(f.simulated - f.panel), `${f.snp} ${f.population}`).toBeLessThan(0.025);
    }
  });
});
