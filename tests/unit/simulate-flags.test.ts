import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { siteId } from '../../simulator/index.ts';
import { parseSimulateArgs, runSimulateCommand } from '../../cli/simulate.ts';
import { HelpRequest, UsageError } from '../../cli/args.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-simflags-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function usage(args: string[]): string {
  try {
    parseSimulateArgs(args);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('fedsynth simulate flags', () => {
  it('parses valid flags, both --flag value and --flag=value', () => {
    expect(parseSimulateArgs(['--sites', '3', '--patients', '2000', '--out', 'DIR'])).toEqual({
      sites: 3,
      patients: 2000,
      outDir: 'DIR',
      seed: 1,
      modalities: ['fhir', 'dicom', 'vcf', 'notes'],
      imageSize: 128,
      vcfBgzip: false,
    });
    expect(parseSimulateArgs(['--sites=2', '--patients=5', '--out=x', '--seed=42', '--schema', 's.yaml'])).toMatchObject({
      sites: 2,
      seed: 42,
      schemaPath: 's.yaml',
    });
    expect(() => parseSimulateArgs(['--help'])).toThrow(HelpRequest);
  });

  it('rejects bad flags with precise messages', () => {
    expect(usage(['--patients', '10', '--out', 'x'])).toBe('missing required flag --sites');
    expect(usage(['--sites', '3', '--patients', '10'])).toBe('missing required flag --out');
    expect(usage(['--sites', 'three', '--patients', '10', '--out', 'x'])).toBe('--sites must be an integer from 1 to 26, got "three"');
    expect(usage(['--sites', '0', '--patients', '10', '--out', 'x'])).toBe('--sites must be an integer from 1 to 26, got "0"');
    expect(usage(['--sites', '27', '--patients', '10', '--out', 'x'])).toBe('--sites must be an integer from 1 to 26, got "27"');
    expect(usage(['--sites', '2', '--patients', '1.5', '--out', 'x'])).toBe('--patients must be an integer from 1 to 1000000, got "1.5"');
    expect(usage(['--sites', '2', '--patients', '-4', '--out', 'x'])).toBe('--patients must be an integer from 1 to 1000000, got "-4"');
    expect(usage(['--sites', '2', '--patients', '4', '--out', 'x', '--seed', 'abc'])).toBe(
      '--seed must be an integer from 0 to 9007199254740991, got "abc"',
    );
    expect(usage(['--sites', '--patients', '4', '--out', 'x'])).toBe('--sites needs a value');
    expect(usage(['--sites', '2', '--patients', '4', '--out'])).toBe('--out needs a value');
    expect(usage(['--sites', '2', '--sites', '3'])).toBe('--sites given more than once');
    expect(usage(['--site', '2'])).toMatch(/^unknown flag --site \(known: --sites, /);
    expect(usage(['simulate'])).toBe('unexpected argument "simulate"');
  });

  it('runSimulateCommand: exit 2 with message and usage on bad flags, 0 and a summary on success', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    expect(await runSimulateCommand(['--sites', 'x', '--patients', '5', '--out', join(root, 'o')], io)).toBe(2);
    expect(err[0]).toBe('fedsynth simulate: --sites must be an integer from 1 to 26, got "x"\nRun `fedsynth simulate --help` for usage.\n');
    err.length = 0;
    expect(
      await runSimulateCommand(['--sites', '1', '--patients', '5', '--out', join(root, 'o'), '--schema', join(root, 'nope.yaml')], io),
    ).toBe(2);
    expect(err[0]).toMatch(/cannot read schema .*nope\.yaml/);
    const dir = join(root, 'ok');
    expect(await runSimulateCommand(['--sites', '2', '--patients', '20', '--out', dir, '--seed', '5'], io)).toBe(0);
    expect(out.some((l) => l.startsWith('hospital-b (cardiac): 20 patients'))).toBe(true);
    expect(existsSync(join(dir, 'truth.json'))).toBe(true);
    expect(existsSync(join(dir, 'hospital-b', 'Observation.ndjson'))).toBe(true);
    out.length = 0;
    expect(await runSimulateCommand(['-h'], io)).toBe(0);
    expect(out[0]).toMatch(/^usage:/);
  });

  it('site ids', () => {
    expect([0, 1, 2, 25].map(siteId)).toEqual(['hospital-a', 'hospital-b', 'hospital-c', 'hospital-z']);
    expect(() => siteId(26)).toThrow(/out of range/);
  });
});
