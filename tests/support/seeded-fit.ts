// A reproducible stand-in for the federated fit, for tests whose thresholds must not fail by
// chance: the real plan (declared structure, then federated AIM), the real estimator and sampler,
// but the pooled noise drawn as a continuous Gaussian of the plan's σ from a seeded PRNG instead
// of the sites' exact discrete Gaussian from the OS CSPRNG (not a privacy mechanism).
import type { Dataset } from '../../model/domain.ts';
import { toMeasurements } from '../../federation/run-fit.ts';
import { compressDataset } from '../../model/compress.ts';
import { marginal } from '../../model/marginals.ts';
import type { Measurement } from '../../model/measurement.ts';
import { aimPlan } from '../../model/plans/aim.ts';
import { sigmaForRho, type FitPlan, type RoundResult } from '../../model/plans/plan.ts';
import { withDeclaredStructure, type DeclaredStructure } from '../../model/plans/structure.ts';
import { estimateWithReport } from '../../model/pgm/estimate.ts';
import type { GraphicalModel } from '../../model/pgm/model.ts';
import { Rng } from '../../model/rng.ts';
import { sample } from '../../model/sample.ts';
import { rhoFromEpsilonDelta } from '../../privacy/dp/accountant.ts';

export function seededFit(
  data: Dataset,
  opts: { epsilon: number; delta?: number; seed: number; structure?: DeclaredStructure; iterations?: number; rows?: number },
): { synthetic: Dataset; model: GraphicalModel; rounds: RoundResult[] } {
  const domain = data.domain;
  const rho = rhoFromEpsilonDelta(opts.epsilon, opts.delta ?? 1e-9);
  const make = (r: number) => aimPlan(domain, r);
  const plan: FitPlan & { selectionModel?: (d: readonly RoundResult[]) => GraphicalModel | undefined } = opts.structure
    ? withDeclaredStructure(domain, rho, opts.structure, make)
    : make(rho);
  const rng = new Rng(`seeded-fit/${opts.seed}`);
  const done: RoundResult[] = [];
  for (let spec = plan.next(done); spec; spec = plan.next(done)) {
    const sigma = sigmaForRho(spec.rho, spec.marginals.length);
    // A round with a value map (declared band queries) counts the recoded rows, as the sites do,
    // and is released as linear queries (federation/run-fit.ts toMeasurements).
    const counted = spec.valueMap ? compressDataset(data, spec.valueMap) : data;
    const measurements: Measurement[] = toMeasurements(
      counted.domain,
      spec.marginals,
      Float64Array.from(
        spec.marginals.flatMap((attrs) => Array.from(marginal(counted, attrs))),
        (v) => v + rng.normal(0, sigma),
      ),
      sigma,
      spec.valueMap,
    );
    done.push({ spec, measurements });
  }
  const { model } = estimateWithReport(domain, plan.estimationInputs(done), {
    iterations: opts.iterations ?? 1000,
    warmStart: plan.selectionModel?.(done),
    maxCliqueCells: 50_000,
    maxTotalCells: 150_000,
    onOversize: 'drop',
  });
  const synthetic = sample(model, { rows: opts.rows ?? Math.max(1, Math.round(model.total)), seed: opts.seed });
  return { synthetic, model, rounds: done };
}
