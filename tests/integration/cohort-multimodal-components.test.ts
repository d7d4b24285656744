// Image appearance learned from the sites: image-component bins computed by the sites' loader
// from their DICOMs, learned by the model, decoded into the synthetic radiographs, and read back
// from the released DICOMs by the same loader.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCohort, type CohortResult } from '../../synthesis/cohort.ts';
import { componentMissingCode, parseSchema, type ImageComponentAttribute, type Schema } from '../../schema/schema.ts';
import type { Dataset } from '../../model/domain.ts';
import { loadMultimodalSiteData } from '../../site-agent/site-data.ts';
import { centralModel, pooledMultimodal } from './cohort-multimodal-helpers.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';

let dir: string;
let schema: Schema;
let real: Dataset;
let res: CohortResult;
let back: Dataset;
let order: number[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-components-'));
  const text = readFileSync(MULTIMODAL_SCHEMA_PATH, 'utf8');
  const p = await pooledMultimodal(join(dir, 'data'), { patients: 400, schemaText: text });
  schema = p.schema;
  real = p.pooled;
  res = await writeCohort(schema, centralModel(real), { n: 900, seed: 4, dir: join(dir, 'cohort') });
  const c = join(dir, 'cohort');
  const loaded = await loadMultimodalSiteData(
    { data: { kind: 'fhir-ndjson', dir: join(c, 'fhir'), dicom: join(c, 'dicom') } },
    parseSchema(text),
  );
  back = loaded.data;
  const rowOf = new Map(loaded.patientIds.map((id, i) => [id, i]));
  order = readFileSync(join(c, 'fhir', 'Patient.ndjson'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => rowOf.get(JSON.parse(l).id)!);
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const comps = () => schema.attributes.filter((a): a is ImageComponentAttribute => a.kind === 'image-component');

describe('image-component bins', () => {
  it('the sites encode them (real images spread over the bins)', () => {
    for (const a of comps()) {
      const col = real.column(a.name);
      const used = new Set<number>();
      for (let r = 0; r < real.rows; r++) if (col[r] !== componentMissingCode(a)) used.add(col[r]);
      expect(used.size, a.name).toBeGreaterThanOrEqual(3);
    }
  });

  it('the synthetic DICOMs carry the sampled bins (read back by the site loader)', () => {
    for (const a of comps()) {
      const sampled = res.dataset.column(a.name);
      const read = back.column(a.name);
      let n = 0;
      let agree = 0;
      for (let r = 0; r < res.dataset.rows; r++) {
        if (sampled[r] === componentMissingCode(a) || read[order[r]] === componentMissingCode(a)) continue;
        n++;
        agree += sampled[r] === read[order[r]] ? 1 : 0;
      }
      if (process.env.COMP_PRINT) console.log('agree', a.name, n, (agree / n).toFixed(3));
      expect(n, a.name).toBeGreaterThan(100);
      expect(agree / n, a.name).toBeGreaterThan(0.85);
    }
  });

  it('the synthetic bin distribution (read back) matches the real one', () => {
    for (const a of comps()) {
      const dist = (d: Dataset, rows: (r: number) => number) => {
        const h = new Array(a.edges.length + 1).fill(0);
        let n = 0;
        const col = d.column(a.name);
        for (let r = 0; r < d.rows; r++) {
          const v = col[rows(r)];
          if (v === componentMissingCode(a)) continue;
          h[v]++;
          n++;
        }
        return h.map((x) => x / n);
      };
      const p = dist(real, (r) => r);
      const q = dist(back, (r) => r);
      const l1 = p.reduce((s, x, i) => s + Math.abs(x - q[i]), 0);
      if (process.env.COMP_PRINT)
        console.log('l1', a.name, l1.toFixed(3), p.map((x) => x.toFixed(2)).join(' '), '|', q.map((x) => x.toFixed(2)).join(' '));
      expect(l1, `${a.name}: real ${p.map((x) => x.toFixed(2))} synthetic ${q.map((x) => x.toFixed(2))}`).toBeLessThan(0.3);
    }
  });
});
