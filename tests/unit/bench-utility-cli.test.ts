import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseBenchUtilityArgs, runBenchUtilityCommand } from '../../cli/bench-utility/index.ts';
import { Domain } from '../../model/domain.ts';
import { marginal } from '../../model/marginals.ts';
import { normalisedL1 } from '../../model/metrics.ts';
import { splitSites } from '../../model/split.ts';
import { makeDataset } from './model-fixtures.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fedsynth-bench-utility-'));
const domainFile = path.join(dir, 'tiny-domain.json');
const csvFile = path.join(dir, 'tiny.csv');
const domain = new Domain(['age', 'sex', 'smoker', 'sick'], [6, 2, 2, 3]);
const data = makeDataset(domain, 3000, 11, (rng) => {
  const age = rng.nextInt(6);
  const sex = rng.nextInt(2);
  const smoker = rng.next() < 0.2 + 0.1 * sex ? 1 : 0;
  const sick = Math.min(2, Math.floor((age + 3 * smoker + rng.nextInt(3)) / 3));
  return [age, sex, smoker, sick];
});
writeFileSync(domainFile, JSON.stringify(domain.toRecord()));
writeFileSync(
  csvFile,
  [domain.attrs.join(','), ...Array.from({ length: data.rows }, (_, r) => data.columns.map((c) => c[r]).join(','))].join('\n'),
);

function capture() {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  return { out: () => out, err: () => err };
}
afterEach(() => vi.restoreAllMocks());

const base = ['--data', csvFile, '--domain', domainFile, '--sites', '3', '--epsilon', '1', '--quiet'];

describe('fedsynth bench utility: flags', () => {
  it.each([
    [['--bogus'], /unknown flag --bogus \(known: --data, /],
    [['--domain', domainFile, '--epsilon', '1'], /missing required flag --data/],
    [['--data', csvFile, '--domain', domainFile], /missing required flag --epsilon/],
    [[...base, '--split', 'random'], /--split must be one of iid, heterogeneous, got "random"/],
    [[...base, '--plan', 'gan'], /--plan must be one of/],
    [[...base.slice(0, 6), '--epsilon', '-1'], /--epsilon must be/],
    [[...base, '--delta', '2'], /--delta must be/],
    [[...base.slice(0, 4), '--sites', '2.5', '--epsilon', '1'], /--sites must be/],
    [[...base, '--seed'], /--seed needs a value/],
    [[...base, '--secure-aggregation', 'mpc'], /--secure-aggregation must be one of none, he/],
    [[...base, '--compress-rare', 'x'], /--compress-rare must be a number in \[0, 100\]/],
    [[...base, '--compress-rare', '-1'], /--compress-rare must be a number in \[0, 100\]/],
    [[...base, '--compress-rare'], /--compress-rare needs a value/],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const io = capture();
    expect(await runBenchUtilityCommand(args as string[])).toBe(2);
    expect(io.err()).toMatch(message);
    expect(io.err()).toMatch(/Run `fedsynth bench utility --help` for usage/);
  });

  it('defaults', () => {
    const a = parseBenchUtilityArgs(['--data', 'x.csv', '--domain', 'x.json', '--epsilon', '0.5']);
    expect(a).toMatchObject({ sites: 10, split: 'iid', delta: 1e-9, seed: 1, plan: 'aim', aggregation: 'plain', json: false });
    expect(a.compressRare).toBeUndefined();
    expect(parseBenchUtilityArgs(['--data', 'x.csv', '--domain', 'x.json', '--epsilon', '0.5', '--compress-rare', '3']).compressRare).toBe(
      3,
    );
  });

  it('--help describes --compress-rare', async () => {
    const io = capture();
    expect(await runBenchUtilityCommand(['--help'])).toBe(0);
    expect(io.out()).toMatch(/--compress-rare SIGMAS\s+rare-value compression/);
  });

  it('--compress-rare runs the fit on the compressed domain (rounds after the first have fewer cells)', async () => {
    const io = capture();
    expect(await runBenchUtilityCommand([...base, '--plan', 'mst', '--compress-rare', '100', '--iterations', '50', '--json'])).toBe(0);
    const r = JSON.parse(io.out()) as { rounds: { cells: number; marginals: number }[]; rhoSpent: number; rhoBudget: number };
    // 100σ (σ ≈ 26 records here): every value is rare, so every attribute is one cell after round 1.
    expect(r.rounds[0].cells).toBe(6 + 2 + 2 + 3);
    expect(r.rounds.length).toBe(3);
    for (const x of r.rounds.slice(1)) expect(x.cells).toBe(x.marginals);
    expect(r.rhoSpent).toBeLessThanOrEqual(r.rhoBudget);
  });

  it('missing files, malformed CSV and malformed domain: message and exit 1', async () => {
    const badCsv = path.join(dir, 'bad.csv');
    writeFileSync(badCsv, 'age,sex,smoker,sick\n1,0,0,2\n9,0,0,1\n');
    const badDomain = path.join(dir, 'bad-domain.json');
    writeFileSync(badDomain, '{"age": 6, "sex": ');
    const cases: [string[], RegExp][] = [
      [['--data', path.join(dir, 'nope.csv'), '--domain', domainFile, '--epsilon', '1'], /cannot read data file .*no such file/],
      [['--data', csvFile, '--domain', path.join(dir, 'nope.json'), '--epsilon', '1'], /cannot read domain file/],
      [['--data', badCsv, '--domain', domainFile, '--epsilon', '1'], /CSV line 3, column "age": value "9"/],
      [['--data', csvFile, '--domain', badDomain, '--epsilon', '1'], /domain JSON/],
      [[...base, '--split', 'heterogeneous', '--split-key', 'height'], /--split-key: "height" is not an attribute/],
    ];
    for (const [args, message] of cases) {
      const io = capture();
      expect(await runBenchUtilityCommand(args.includes('--quiet') ? args : [...args, '--quiet'])).toBe(1);
      expect(io.err()).toMatch(message);
      vi.restoreAllMocks();
    }
  });
});

describe('fedsynth bench utility: end to end on a tiny dataset', () => {
  it.each(['aim', 'mst', 'independent'])('%s plan, heterogeneous sites: finite errors, ρ within budget', async (plan) => {
    const io = capture();
    const code = await runBenchUtilityCommand([...base, '--split', 'heterogeneous', '--plan', plan, '--iterations', '200', '--json']);
    expect(code, io.err()).toBe(0);
    const r = JSON.parse(io.out());
    expect(Number.isFinite(r.l1TwoWay) && Number.isFinite(r.l1ThreeWay)).toBe(true);
    expect(r.l1ThreeWay).toBeGreaterThanOrEqual(0);
    expect(r.l1ThreeWay).toBeLessThan(2);
    expect(r.rhoSpent).toBeLessThanOrEqual(r.rhoBudget * (1 + 1e-12));
    expect(r.rhoSpent).toBeGreaterThan(r.rhoBudget * 0.99);
    expect(r.rounds.length).toBeGreaterThanOrEqual(1);
    expect(r.rows).toBe(3000);
  });

  it('real threshold-BFV aggregation gives a result of the same quality', async () => {
    const io = capture();
    const code = await runBenchUtilityCommand([...base, '--plan', 'mst', '--secure-aggregation', 'he', '--iterations', '200', '--json']);
    expect(code, io.err()).toBe(0);
    const r = JSON.parse(io.out());
    expect(r.heMs).toBeGreaterThan(0);
    expect(Number.isFinite(r.l1ThreeWay)).toBe(true);
  }, 60_000);

  it('human-readable output and progress on stderr', async () => {
    const io = capture();
    expect(await runBenchUtilityCommand([...base.filter((a) => a !== '--quiet'), '--plan', 'independent'])).toBe(0);
    expect(io.out()).toMatch(/3-way L1 \d\.\d{4}/);
    expect(io.out()).toMatch(/rounds 1, ρ spent/);
    expect(io.err()).toMatch(/round 1 one-way/);
  });
});

describe('site splits', () => {
  it('the heterogeneous split really is heterogeneous; iid is not', () => {
    const tvToPooled = (kind: 'iid' | 'heterogeneous') => {
      const { sites } = splitSites(data, { sites: 5, kind, seed: 3, key: 'age' });
      expect(sites.reduce((s, d) => s + d.rows, 0)).toBe(data.rows);
      const pooledAge = marginal(data, ['age']);
      const pooledSick = marginal(data, ['sick']);
      return {
        age: Math.max(...sites.map((s) => normalisedL1(pooledAge, marginal(s, ['age'])) / 2)),
        sick: Math.max(...sites.map((s) => normalisedL1(pooledSick, marginal(s, ['sick'])) / 2)),
      };
    };
    const het = tvToPooled('heterogeneous');
    const iid = tvToPooled('iid');
    expect(het.age).toBeGreaterThan(0.6); // sites cover disjoint age slices
    expect(het.sick).toBeGreaterThan(0.2); // and a correlated attribute shifts with it
    expect(iid.age).toBeLessThan(0.08);
    expect(iid.sick).toBeLessThan(0.08);
  });
});
