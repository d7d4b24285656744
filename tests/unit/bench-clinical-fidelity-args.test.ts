// Flags of bench/clinical-fidelity.ts: defaults, and a clear error for malformed input.
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../bench/clinical-fidelity.ts';
import { UsageError } from '../../cli/args.ts';
import { MULTIMODAL_SCHEMA_PATH } from '../../simulator/index.ts';

describe('clinical-fidelity bench flags', () => {
  it('defaults to the demo setting and reads every flag', () => {
    expect(parseBenchArgs([])).toEqual({
      schemaPath: MULTIMODAL_SCHEMA_PATH,
      sites: 3,
      patients: 5000,
      seed: 7,
      epsilon: 1,
      runs: 1,
      json: false,
    });
    expect(
      parseBenchArgs(['--sites', '2', '--patients=300', '--epsilon', '0.5', '--runs', '3', '--json', '--schema', 'x.yaml']),
    ).toMatchObject({
      sites: 2,
      patients: 300,
      epsilon: 0.5,
      runs: 3,
      json: true,
      schemaPath: 'x.yaml',
    });
  });

  it('rejects malformed flags with the flag named', () => {
    const bad = (argv: string[]) => () => parseBenchArgs(argv);
    expect(bad(['--sites', 'three'])).toThrow(/--sites must be an integer/);
    expect(bad(['--patients', '5'])).toThrow(/--patients must be an integer from 10/);
    expect(bad(['--epsilon', '-1'])).toThrow(/--epsilon must be/);
    expect(bad(['--epsilon', 'abc'])).toThrow(UsageError);
    expect(bad(['--runs', '0'])).toThrow(/--runs/);
    expect(bad(['--share', '0.2'])).toThrow(/unknown flag --share/);
    expect(bad(['--seed', '1', '--seed', '2'])).toThrow(/given more than once/);
    expect(bad(['extra'])).toThrow(/unexpected argument "extra"/);
  });
});
