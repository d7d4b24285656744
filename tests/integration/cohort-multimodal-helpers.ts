// Shared by the cohort-multimodal tests (not a test file): simulate a small multimodal
// federation, read every site with the real multimodal loader, and fit a central MST model to
// the pooled exact marginals (plus small Gaussian noise). The decoders are what is under test,
// not the federated fit (tests/integration/federation-*.test.ts cover that).
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { simulateFederation, MULTIMODAL_SCHEMA_PATH, siteId } from '../../simulator/index.ts';
import { parseSchema, schemaAttributes, type Schema } from '../../schema/schema.ts';
import { allocColumn, Dataset, Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { estimate, type GraphicalModel } from '../../model/pgm/index.ts';
import { selectMstTree } from '../../model/plans/select-mst.ts';
import { Rng } from '../../model/rng.ts';
import { loadMultimodalSiteData } from '../../site-agent/site-data.ts';

/** Reads simulated site `s` (written under `dir`) with the real multimodal loader, every modality linked. */
export function loadSimulatedSite(dir: string, s: number, schema: Schema): ReturnType<typeof loadMultimodalSiteData> {
  const d = join(dir, siteId(s));
  return loadMultimodalSiteData(
    {
      data: {
        kind: 'fhir-ndjson',
        dir: d,
        dicom: join(d, 'dicom'),
        vcf: join(d, 'genomes.vcf'),
        notes: join(d, 'notes'),
        linkage: { key: 'identifier', identifierSystem: `urn:fedsynth:sim:${siteId(s)}:mrn`, vcfSampleMap: join(d, 'vcf-samples.tsv') },
      },
    },
    schema,
  );
}

export async function pooledMultimodal(
  dir: string,
  opts: { sites?: number; patients: number; seed?: number; imageSize?: number; schemaText?: string },
): Promise<{ schema: Schema; pooled: Dataset; truthPath: string }> {
  const schemaText = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');
  // The simulator writes files for the multimodal schema; the sites may read them with another (e.g. extended) schema.
  const schema = parseSchema(schemaText);
  const readSchema = opts.schemaText ? parseSchema(opts.schemaText) : schema;
  const sites = opts.sites ?? 3;
  const sim = await simulateFederation({
    sites,
    patients: opts.patients,
    seed: opts.seed ?? 5,
    outDir: dir,
    schema,
    schemaPath: MULTIMODAL_SCHEMA_PATH,
    modalities: ['fhir', 'dicom', 'vcf', 'notes'],
    imageSize: opts.imageSize ?? 64,
  });
  const parts: Dataset[] = [];
  for (let s = 0; s < sites; s++) parts.push((await loadSimulatedSite(dir, s, readSchema)).data);
  const attrs = schemaAttributes(readSchema);
  const domain = new Domain(
    attrs.map((a) => a.name),
    attrs.map((a) => a.size),
  );
  const n = parts.reduce((a, p) => a + p.rows, 0);
  const cols = domain.sizes.map((sz) => allocColumn(sz, n));
  let o = 0;
  for (const p of parts) {
    for (let j = 0; j < cols.length; j++) cols[j].set(p.columns[j], o);
    o += p.rows;
  }
  return { schema: readSchema, pooled: new Dataset(domain, cols, n), truthPath: sim.truthPath };
}

/** A central MST model on exact marginals plus N(0, sigma²) noise. */
export function centralModel(data: Dataset, sigma = 2, seed = 1): GraphicalModel {
  const rng = new Rng(seed);
  const noisy = (attrs: string[]) => {
    const v = marginal(data, attrs);
    for (let i = 0; i < v.length; i++) v[i] += sigma * rng.normal();
    return { attrs, values: v, sigma };
  };
  const attrs = [...data.domain.attrs];
  const one = attrs.map((a) => noisy([a]));
  const pairs = [];
  for (let i = 0; i < attrs.length; i++) for (let j = i + 1; j < attrs.length; j++) pairs.push(noisy([attrs[i], attrs[j]]));
  const tree = selectMstTree(data.domain, one, pairs);
  const chosen = pairs.filter((m) =>
    tree.edges.some(([a, b]) => (m.attrs[0] === a && m.attrs[1] === b) || (m.attrs[0] === b && m.attrs[1] === a)),
  );
  return estimate(data.domain, [...one, ...chosen], { iterations: 300 });
}

/**
 * A central model on the MST tree plus the pairs a cross-modal planner is expected to find
 * (each finding with its cause, each causal SNP with its condition, each note topic with its
 * condition), on exact marginals plus N(0, sigma²) noise. The decoders are under test: the
 * model carries the structure, the cohort must keep it.
 */
export function centralModelWithPairs(data: Dataset, extra: [string, string][], sigma = 2, seed = 1): GraphicalModel {
  const rng = new Rng(seed);
  const noisy = (attrs: string[]) => {
    const v = marginal(data, attrs);
    for (let i = 0; i < v.length; i++) v[i] += sigma * rng.normal();
    return { attrs, values: v, sigma };
  };
  const attrs = [...data.domain.attrs];
  const one = attrs.map((a) => noisy([a]));
  const pairs = [];
  for (let i = 0; i < attrs.length; i++) for (let j = i + 1; j < attrs.length; j++) pairs.push(noisy([attrs[i], attrs[j]]));
  const tree = selectMstTree(data.domain, one, pairs);
  const key = (a: string, b: string) => [a, b].sort().join('|');
  const want = new Set([...tree.edges.map(([a, b]) => key(a, b)), ...extra.map(([a, b]) => key(a, b))]);
  const chosen = pairs.filter((m) => want.has(key(m.attrs[0], m.attrs[1])));
  return estimate(data.domain, [...one, ...chosen], { iterations: 400, onOversize: 'drop' });
}
