// Validation of one attribute entry of a schema file, per kind.
import type { CodeSystemKey, ConditionAttribute, ImageFeature, LabAttribute, SchemaAttribute } from './types.ts';
import { CODE_SYSTEMS, FHIR_GENDERS, IMAGE_FEATURES, OBSERVATION_CATEGORIES } from './types.ts';
import type { Checker } from './checker.ts';

export const NAME_RE = /^[a-z][a-z0-9_]*$/;
export const ATTRIBUTE_KINDS = ['age', 'sex', 'condition', 'lab', 'snp', 'image-finding', 'image-component', 'note-mention'] as const;
const CODE_PATTERNS: Record<CodeSystemKey, [RegExp, string]> = {
  snomed: [/^[1-9][0-9]{5,17}$/, 'a SNOMED CT concept id (6–18 digits)'],
  icd10cm: [/^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$/, 'an ICD-10-CM code such as E11 or E11.9'],
  icd10: [/^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$/, 'an ICD-10 code such as J45 or J45.9'],
};
const LOINC_RE = /^[0-9]{1,7}-[0-9]$/;

export function validDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

export function checkAttribute(c: Checker, raw: unknown, path: string): SchemaAttribute | undefined {
  const o = c.object(raw, path);
  if (!o) return undefined;
  const name = c.string(o, 'name', path, NAME_RE, 'lower_snake_case ([a-z][a-z0-9_]*)');
  const kind = c.required(o, 'kind', path);
  const before = c.issues.length;
  switch (kind) {
    case 'age': {
      c.keys(o, path, ['name', 'kind', 'edges', 'max']);
      const edges = c.edges(o, 'edges', path, { integer: true, min: 0 });
      if (edges && edges[0] !== 0) c.fail(`${path}.edges[0]`, `the first age edge must be 0, got ${edges[0]}`);
      const max = c.number(o, 'max', path, { integer: true, min: 1, max: 150 });
      if (edges && max !== undefined && max <= edges[edges.length - 1]) {
        c.fail(`${path}.max`, `must be above the last edge ${edges[edges.length - 1]}, got ${max}`);
      }
      if (c.issues.length > before || name === undefined || !edges || max === undefined) return undefined;
      return { name, kind: 'age', edges, max };
    }
    case 'sex': {
      c.keys(o, path, ['name', 'kind', 'values']);
      const values = c.stringList(o, 'values', path);
      values?.forEach((v, i) => {
        if (!(FHIR_GENDERS as readonly string[]).includes(v)) {
          c.fail(`${path}.values[${i}]`, `${JSON.stringify(v)} is not a FHIR administrative-gender code (${FHIR_GENDERS.join(', ')})`);
        }
      });
      if (c.issues.length > before || name === undefined || !values) return undefined;
      return { name, kind: 'sex', values };
    }
    case 'condition': {
      c.keys(o, path, ['name', 'kind', 'display', 'codes']);
      const display = c.string(o, 'display', path);
      const codesRaw = c.required(o, 'codes', path);
      const codes: Partial<Record<CodeSystemKey, string[]>> = {};
      if (codesRaw !== undefined) {
        const co = c.object(codesRaw, `${path}.codes`);
        if (co) {
          c.keys(co, `${path}.codes`, Object.keys(CODE_SYSTEMS));
          if (!('snomed' in co)) c.fail(`${path}.codes.snomed`, 'is required (decoders emit the first SNOMED CT code)');
          for (const key of Object.keys(CODE_SYSTEMS) as CodeSystemKey[]) {
            if (!(key in co)) continue;
            const [re, text] = CODE_PATTERNS[key];
            const list = c.stringList(co, key, `${path}.codes`, re, text);
            if (list) codes[key] = list;
          }
        }
      }
      if (c.issues.length > before || name === undefined || display === undefined || !codes.snomed) return undefined;
      return { name, kind: 'condition', display, codes: codes as ConditionAttribute['codes'] };
    }
    case 'lab': {
      c.keys(o, path, ['name', 'kind', 'display', 'loinc', 'unit', 'category', 'edges', 'range', 'decimals']);
      const display = c.string(o, 'display', path);
      const loinc = c.stringList(o, 'loinc', path, LOINC_RE, 'a LOINC code such as 4548-4');
      const unit = c.string(o, 'unit', path);
      const category = c.string(o, 'category', path);
      if (category !== undefined && !(OBSERVATION_CATEGORIES as readonly string[]).includes(category)) {
        c.fail(`${path}.category`, `must be one of ${OBSERVATION_CATEGORIES.join(', ')}, got ${JSON.stringify(category)}`);
      }
      const edges = c.edges(o, 'edges', path);
      const rangeList = c.list(o, 'range', path, 2);
      let range: [number, number] | undefined;
      if (rangeList) {
        if (rangeList.length !== 2) c.fail(`${path}.range`, `must be [min, max], got ${rangeList.length} entries`);
        else {
          const lo = c.numberValue(rangeList[0], `${path}.range[0]`);
          const hi = c.numberValue(rangeList[1], `${path}.range[1]`);
          if (lo !== undefined && hi !== undefined) {
            if (edges && !(lo < edges[0] && hi > edges[edges.length - 1])) {
              c.fail(
                `${path}.range`,
                `must enclose every edge (min < ${edges[0]} and max > ${edges[edges.length - 1]}), got [${lo}, ${hi}]`,
              );
            } else if (lo >= hi) c.fail(`${path}.range`, `min must be below max, got [${lo}, ${hi}]`);
            else range = [lo, hi];
          }
        }
      }
      const decimals = c.number(o, 'decimals', path, { integer: true, min: 0, max: 6 });
      if (range && decimals !== undefined) {
        range.forEach((e, i) => {
          if (Math.abs(Math.round(e * 10 ** decimals) - e * 10 ** decimals) > 1e-9) {
            c.fail(`${path}.range[${i}]`, `${e} has more than ${decimals} decimal(s)`);
          }
        });
      }
      if (edges && decimals !== undefined) {
        edges.forEach((e, i) => {
          if (Math.abs(Math.round(e * 10 ** decimals) - e * 10 ** decimals) > 1e-9) {
            c.fail(`${path}.edges[${i}]`, `edge ${e} has more than ${decimals} decimal(s): decoded values could not land on it`);
          }
        });
      }
      if (
        c.issues.length > before ||
        name === undefined ||
        display === undefined ||
        !loinc ||
        unit === undefined ||
        !edges ||
        !range ||
        decimals === undefined
      ) {
        return undefined;
      }
      return { name, kind: 'lab', display, loinc, unit, category: category as LabAttribute['category'], edges, range, decimals };
    }
    case 'snp': {
      c.keys(o, path, ['name', 'kind', 'chrom', 'pos', 'ref', 'alt', 'rsid']);
      let chrom: string | undefined;
      const rawChrom = c.required(o, 'chrom', path);
      if (rawChrom !== undefined) {
        const t = typeof rawChrom === 'number' && Number.isInteger(rawChrom) ? String(rawChrom) : rawChrom;
        if (typeof t !== 'string' || !/^(?:[1-9]|1[0-9]|2[0-2]|X|Y|MT)$/.test(t)) {
          c.fail(`${path}.chrom`, `must be a chromosome 1–22, X, Y or MT (without "chr"), got ${c.describe(rawChrom)}`);
        } else chrom = t;
      }
      const pos = c.number(o, 'pos', path, { integer: true, min: 1, max: 3e9 });
      const ref = c.string(o, 'ref', path, /^[ACGT]$/, 'one base (A, C, G or T)');
      const alt = c.string(o, 'alt', path, /^[ACGT]$/, 'one base (A, C, G or T)');
      if (ref !== undefined && alt !== undefined && ref === alt) c.fail(`${path}.alt`, `must differ from ref ${ref}`);
      let rsid: string | undefined;
      if ('rsid' in o) rsid = c.string(o, 'rsid', path, /^rs[1-9][0-9]*$/, 'a dbSNP id such as rs429358');
      if (
        c.issues.length > before ||
        name === undefined ||
        chrom === undefined ||
        pos === undefined ||
        ref === undefined ||
        alt === undefined
      )
        return undefined;
      return { name, kind: 'snp', chrom, pos, ref, alt, ...(rsid ? { rsid } : {}) };
    }
    case 'image-finding': {
      c.keys(o, path, ['name', 'kind', 'feature', 'edges', 'classes']);
      const feature = c.string(o, 'feature', path);
      if (feature !== undefined && !(IMAGE_FEATURES as readonly string[]).includes(feature)) {
        c.fail(`${path}.feature`, `must be one of ${IMAGE_FEATURES.join(', ')}, got ${JSON.stringify(feature)}`);
      }
      const edges = c.edges(o, 'edges', path);
      const classes = c.stringList(o, 'classes', path, /^[a-z][a-z0-9_-]*$/, 'a lower-case label');
      if (edges && classes && classes.length !== edges.length + 1) {
        c.fail(`${path}.classes`, `needs ${edges.length + 1} labels for ${edges.length} edge(s), got ${classes.length}`);
      }
      if (classes?.includes('no-image')) c.fail(`${path}.classes`, '"no-image" is reserved');
      if (c.issues.length > before || name === undefined || !edges || !classes) return undefined;
      return { name, kind: 'image-finding', feature: feature as ImageFeature, edges, classes };
    }
    case 'image-component': {
      c.keys(o, path, ['name', 'kind', 'basis', 'edges', 'range']);
      const basis = c.required(o, 'basis', path);
      let uv: [number, number] | undefined;
      if (basis !== undefined) {
        if (
          !Array.isArray(basis) ||
          basis.length !== 2 ||
          !basis.every((x) => Number.isInteger(x) && x >= 0 && x <= 7) ||
          (basis[0] === 0 && basis[1] === 0)
        ) {
          c.fail(`${path}.basis`, `must be [u, v], integers 0–7, not both 0 (a low-frequency DCT basis image), got ${c.describe(basis)}`);
        } else uv = [basis[0], basis[1]];
      }
      const edges = c.edges(o, 'edges', path);
      const rawRange = c.required(o, 'range', path);
      let range: [number, number] | undefined;
      if (rawRange !== undefined) {
        if (!Array.isArray(rawRange) || rawRange.length !== 2 || !rawRange.every((x) => typeof x === 'number' && Number.isFinite(x)))
          c.fail(`${path}.range`, `must be [lo, hi], got ${c.describe(rawRange)}`);
        else if (edges && !(rawRange[0] < edges[0] && rawRange[1] > edges[edges.length - 1]))
          c.fail(`${path}.range`, 'must lie outside the edges: lo < edges[0] and hi > the last edge');
        else range = [rawRange[0], rawRange[1]];
      }
      if (c.issues.length > before || name === undefined || !uv || !edges || !range) return undefined;
      return { name, kind: 'image-component', basis: uv, edges, range };
    }
    case 'note-mention': {
      c.keys(o, path, ['name', 'kind', 'terms', 'sections']);
      const terms = c.stringList(o, 'terms', path);
      terms?.forEach((t, i) => {
        const words = t.trim().split(/\s+/);
        if (words.length > 2) c.fail(`${path}.terms[${i}]`, `terms have one or two words, got ${JSON.stringify(t)}`);
        if (t !== t.toLowerCase()) c.fail(`${path}.terms[${i}]`, `terms are lower case, got ${JSON.stringify(t)}`);
      });
      let sections: string[] | undefined;
      if ('sections' in o) sections = c.stringList(o, 'sections', path);
      if (c.issues.length > before || name === undefined || !terms) return undefined;
      return { name, kind: 'note-mention', terms, ...(sections ? { sections } : {}) };
    }
    case undefined:
      return undefined;
    default:
      c.fail(`${path}.kind`, `must be one of ${ATTRIBUTE_KINDS.join(', ')}; got ${c.describe(kind)}`);
      return undefined;
  }
}
