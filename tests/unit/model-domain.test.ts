import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Domain, parseCsvDataset, parseDomainJson } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { Rng } from '../../model/rng.ts';
import { makeDataset, sampleDataDir } from './model-fixtures.ts';

describe('Domain', () => {
  const d = new Domain(['a', 'b', 'c'], [2, 3, 4]);

  it('computes sizes, strides and canonical order', () => {
    expect(d.cells(['a', 'c'])).toBe(8);
    expect(d.cells([])).toBe(1);
    expect(d.strides(['c', 'a', 'b'])).toEqual([6, 3, 1]);
    expect(d.canonical(['c', 'a', 'c'])).toEqual(['a', 'c']);
    expect(d.project(['c', 'a']).toRecord()).toEqual({ c: 4, a: 2 });
    expect(() => d.cells(['z'])).toThrow(/unknown attribute "z"/);
    expect(() => new Domain(['a', 'a'], [2, 2])).toThrow(/duplicate/);
  });

  it('indexMap projects and reorders row-major tables', () => {
    const map = d.indexMap(['a', 'b', 'c'], ['c', 'a']);
    for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 4; c++) expect(map[(a * 3 + b) * 4 + c]).toBe(c * 2 + a);
    expect(() => d.indexMap(['a'], ['b'])).toThrow(/not in/);
  });
});

describe('Dataset and marginals', () => {
  it('parses integer-coded CSV (any column order) and a private-pgm domain', () => {
    const domain = parseDomainJson('{"x": 3, "y": 2}');
    const ds = parseCsvDataset('y,x\n1,2\n0,0\n1,2\n', domain);
    expect(ds.rows).toBe(3);
    expect([...ds.column('x')]).toEqual([2, 0, 2]);
    expect([...marginal(ds, ['x', 'y'])]).toEqual([1, 0, 0, 0, 0, 2]);
    expect([...marginal(ds, ['y', 'x'])]).toEqual([1, 0, 0, 0, 0, 2]);
    expect([...marginal(ds, [])]).toEqual([3]);
  });

  it('rejects bad CSV with the line and column', () => {
    const domain = parseDomainJson('{"x": 3, "y": 2}');
    expect(() => parseCsvDataset('x,y\n1,2\n', domain)).toThrow(/line 2, column "y": value "2"/);
    expect(() => parseCsvDataset('x,y\n1\n', domain)).toThrow(/line 2: 1 fields, expected 2/);
    expect(() => parseCsvDataset('x\n1\n', domain)).toThrow(/missing column "y"/);
    expect(() => parseCsvDataset('x,y,z\n1,1,1\n', domain)).toThrow(/"z" is not in the domain/);
    expect(() => parseCsvDataset('x,y\n1.5,0\n', domain)).toThrow(/not an integer/);
    expect(() => parseDomainJson('[1]')).toThrow(/expected an object/);
  });

  it('marginals match a naive count for 1-, 2- and 3-way sets, with wide columns', () => {
    const domain = new Domain(['a', 'b', 'c', 'd'], [3, 300, 70000, 2]);
    const ds = makeDataset(domain, 3000, 1, (rng: Rng) => [rng.nextInt(3), rng.nextInt(300), rng.nextInt(70000), rng.nextInt(2)]);
    expect(ds.column('b')).toBeInstanceOf(Uint16Array);
    expect(ds.column('c')).toBeInstanceOf(Int32Array);
    for (const attrs of [['b'], ['d', 'a'], ['a', 'd', 'b'], ['c', 'a'], ['d', 'b', 'a']]) {
      const naive = new Map<number, number>();
      const strides = domain.strides(attrs);
      for (let r = 0; r < ds.rows; r++) {
        const i = attrs.reduce((s, a, k) => s + ds.column(a)[r] * strides[k], 0);
        naive.set(i, (naive.get(i) ?? 0) + 1);
      }
      const m = marginal(ds, attrs);
      expect(m.reduce((x, y) => x + y, 0)).toBe(3000);
      for (const [i, c] of naive) expect(m[i]).toBe(c);
    }
  });

  const dir = sampleDataDir();
  it.skipIf(!dir)('loads UCI Adult (skipped when ../shared/data or $FEDSYNTH_SAMPLE_DATA is absent)', () => {
    const domain = parseDomainJson(readFileSync(path.join(dir!, 'tabular', 'adult-domain.json'), 'utf8'));
    const ds = parseCsvDataset(readFileSync(path.join(dir!, 'tabular', 'adult.csv'), 'utf8'), domain);
    expect(domain.length).toBe(14);
    expect(ds.rows).toBe(48842);
    expect(marginal(ds, ['sex', 'income>50K']).reduce((a, b) => a + b, 0)).toBe(48842);
  });
  if (!dir)
    console.warn(
      'model-domain.test: UCI Adult sample data not found (../shared/data or $FEDSYNTH_SAMPLE_DATA); skipping the Adult load test',
    );
});
