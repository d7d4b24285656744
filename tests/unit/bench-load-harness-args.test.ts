// Flags of bench/load-harness.ts, and the harness's round arithmetic: defaults, clear errors for
// malformed input, and percentiles that pick an observed value.
import { describe, expect, it } from 'vitest';
import { parseHarnessArgs } from '../../bench/load-harness.ts';
import { percentile, siteName } from '../../bench/support/load-federation.ts';
import { HelpRequest, UsageError } from '../../cli/args.ts';

describe('load harness flags', () => {
  it('defaults to 100 sites against a 3-site baseline and reads every flag', () => {
    expect(parseHarnessArgs([])).toEqual({
      sites: 100,
      baselineSites: 3,
      patients: 40,
      epsilon: 1,
      plan: 'aim',
      committee: 3,
      iterations: 300,
      deadlineSeconds: 600,
      json: false,
      keep: false,
    });
    expect(
      parseHarnessArgs([
        '--sites',
        '300',
        '--baseline-sites=0',
        '--patients',
        '10',
        '--plan',
        'mst',
        '--postgres',
        'postgres://127.0.0.1/test',
        '--json',
      ]),
    ).toMatchObject({ sites: 300, baselineSites: 0, patients: 10, plan: 'mst', postgresUrl: 'postgres://127.0.0.1/test', json: true });
  });

  it('rejects malformed flags with the flag named', () => {
    const bad = (argv: string[]) => () => parseHarnessArgs(argv);
    expect(bad(['--sites', 'many'])).toThrow(/--sites must be an integer/);
    expect(bad(['--sites', '1'])).toThrow(/--sites must be an integer from 2/);
    expect(bad(['--sites', '5000'])).toThrow(/--sites/);
    expect(bad(['--epsilon', '0'])).toThrow(/--epsilon must be/);
    expect(bad(['--plan', 'greedy'])).toThrow(/--plan/);
    expect(bad(['--sites', '2', '--committee', '3'])).toThrow(/--committee 3 exceeds --sites 2/);
    expect(bad(['--postgres', 'mysql://x'])).toThrow(/--postgres must be a postgres:\/\/ URL/);
    expect(bad(['--postgres', 'mysql://x'])).toThrow(UsageError);
    expect(bad(['--deadline-seconds', '1'])).toThrow(/--deadline-seconds/);
    expect(bad(['--rounds', '3'])).toThrow(/unknown flag --rounds/);
    expect(bad(['extra'])).toThrow(/unexpected argument "extra"/);
  });

  it('answers --help with every flag', () => {
    try {
      parseHarnessArgs(['--help']);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(HelpRequest);
      for (const f of ['--sites', '--baseline-sites', '--patients', '--postgres', '--json', '--keep'])
        expect((e as HelpRequest).text).toContain(f);
    }
  });
});

describe('harness arithmetic', () => {
  it('names sites as valid, sortable certificate ids', () => {
    expect([siteName(0), siteName(99), siteName(299)]).toEqual(['site-001', 'site-100', 'site-300']);
  });

  it('takes percentiles as observed values (nearest rank)', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});
