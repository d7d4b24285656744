// The one flag parser: typed flags with ranges, errors that name the flag and the valid values,
// and --help for every command and subcommand of `fedsynth`, generated from the declarations.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { command, groupHelp, helpText, HelpRequest, parseArgs, runCommand, UsageError, usageMessage } from '../../cli/args.ts';
import { main } from '../../cli/main.ts';

const SPEC = command({
  command: 'fedsynth test',
  summary: 'A command for the tests.',
  positionals: { name: 'NAME', min: 0, max: 1, help: 'an optional name' },
  flags: {
    sites: { type: 'int', min: 1, max: 26, default: 3, help: 'sites' },
    seed: { type: 'int', min: 0, max: 100, help: 'seed' },
    epsilon: { type: 'number', min: 0, max: 10, minExclusive: true, required: true, help: 'epsilon' },
    split: { type: 'enum', values: ['iid', 'skewed'], default: 'iid', help: 'split' },
    mods: { type: 'list', values: ['fhir', 'dicom'], default: ['fhir'], help: 'modalities' },
    names: { type: 'list', help: 'free list' },
    out: { type: 'path', value: 'DIR', help: 'output' },
    json: { type: 'boolean', help: 'json' },
  },
});

function usage(args: string[]): string {
  try {
    parseArgs(SPEC, args);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).command).toBe('fedsynth test');
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseArgs', () => {
  it('converts each flag type, applies defaults, accepts --flag value and --flag=value', () => {
    const { flags, positional } = parseArgs(SPEC, [
      'alice',
      '--epsilon=0.5',
      '--seed',
      '7',
      '--mods',
      'dicom, fhir',
      '--json',
      '--out',
      'o',
    ]);
    expect(flags).toEqual({
      sites: 3,
      seed: 7,
      epsilon: 0.5,
      split: 'iid',
      mods: ['dicom', 'fhir'],
      names: undefined,
      out: 'o',
      json: true,
    });
    expect(positional).toEqual(['alice']);
    // The declared types flow to the values: these would not compile with the wrong type.
    const n: number = flags.sites;
    const s: 'iid' | 'skewed' = flags.split;
    const b: boolean = flags.json;
    expect([n, s, b]).toEqual([3, 'iid', true]);
    expect(parseArgs(SPEC, ['--epsilon', '10', '--seed=-0']).flags.seed).toBe(0);
  });

  it('defaults are copies: a parsed list can be changed without touching the declaration', () => {
    parseArgs(SPEC, ['--epsilon', '1']).flags.mods.push('dicom');
    expect(parseArgs(SPEC, ['--epsilon', '1']).flags.mods).toEqual(['fhir']);
  });

  it('names the flag and the valid values in every error', () => {
    expect(usage(['--epsilon', '1', '--site', '2'])).toBe(
      'unknown flag --site (known: --sites, --seed, --epsilon, --split, --mods, --names, --out, --json, --help)',
    );
    expect(usage([])).toBe('missing required flag --epsilon');
    expect(usage(['--epsilon'])).toBe('--epsilon needs a value');
    expect(usage(['--epsilon', '--json'])).toBe('--epsilon needs a value');
    expect(usage(['--epsilon='])).toBe('--epsilon needs a value');
    expect(usage(['--epsilon', ' '])).toBe('--epsilon needs a value');
    expect(usage(['--epsilon', '1', '--epsilon', '2'])).toBe('--epsilon given more than once');
    expect(usage(['--epsilon', '1', '--json', '--json'])).toBe('--json given more than once');
    expect(usage(['--epsilon', '1', '--json=yes'])).toBe('--json takes no value');
    expect(usage(['--epsilon', '0'])).toBe('--epsilon must be a number in (0, 10], got "0"');
    expect(usage(['--epsilon', '1e3'])).toBe('--epsilon must be a number in (0, 10], got "1e3"');
    expect(usage(['--epsilon', 'NaN'])).toBe('--epsilon must be a number in (0, 10], got "NaN"');
    expect(usage(['--epsilon', 'one'])).toBe('--epsilon must be a number in (0, 10], got "one"');
    expect(usage(['--epsilon', '1', '--sites', '27'])).toBe('--sites must be an integer from 1 to 26, got "27"');
    expect(usage(['--epsilon', '1', '--sites', '2.5'])).toBe('--sites must be an integer from 1 to 26, got "2.5"');
    expect(usage(['--epsilon', '1', '--sites', '0x10'])).toBe('--sites must be an integer from 1 to 26, got "0x10"');
    expect(usage(['--epsilon', '1', '--seed', '99999999999999999999'])).toBe(
      '--seed must be an integer from 0 to 100, got "99999999999999999999"',
    );
    expect(usage(['--epsilon', '1', '--split', 'random'])).toBe('--split must be one of iid, skewed, got "random"');
    expect(usage(['--epsilon', '1', '--mods', 'fhir,vcf'])).toBe('--mods: unknown entry "vcf" (known: fhir, dicom)');
    expect(usage(['--epsilon', '1', '--mods', 'fhir,,dicom'])).toBe('--mods has an empty entry in "fhir,,dicom" (use a,b,c)');
    expect(usage(['--epsilon', '1', '--names', 'a,b,a'])).toBe('--names lists "a" twice');
    expect(usage(['--epsilon', '1', 'a', 'b'])).toBe('expected at most 1 NAME, got 2: a b');
  });

  it('refuses positional arguments a command does not take', () => {
    const plain = command({ command: 'fedsynth plain', summary: 's', flags: {} });
    expect(() => parseArgs(plain, ['extra'])).toThrow('unexpected argument "extra"');
    const needs = command({
      command: 'fedsynth needs',
      summary: 's',
      positionals: { name: 'NAME', min: 1, max: 1, help: 'the name' },
      flags: {},
    });
    expect(() => parseArgs(needs, [])).toThrow('missing NAME (the name)');
  });

  it('--help or -h anywhere asks for the help text, even next to bad flags', () => {
    for (const args of [['--help'], ['-h'], ['--epsilon', 'bad', '-h'], ['--nope', '--help']]) {
      expect(() => parseArgs(SPEC, args)).toThrow(new HelpRequest(helpText(SPEC)));
    }
  });

  it('the help text lists every flag with its placeholder, range, default and requirement', () => {
    const text = helpText(SPEC);
    expect(text.split('\n')[0]).toBe(
      'usage: fedsynth test [NAME] [--sites N] [--seed N] --epsilon X [--split iid|skewed] [--mods fhir,dicom] [--names A,B,…] [--out DIR] [--json]',
    );
    expect(text).toMatch(/--sites N\s+sites \(1–26; default 3\)/);
    expect(text).toMatch(/--epsilon X\s+epsilon \(required\)/);
    expect(text).toMatch(/--mods fhir,dicom\s+modalities \(default fhir\)/);
    expect(text).toMatch(/-h, --help\s+show this help/);
  });

  it('runCommand: help to out (exit 0), usage errors to err with the pointer to --help (exit 2)', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    const run = (args: string[]) => runCommand('fedsynth test', io, async () => (parseArgs(SPEC, args), 0));
    expect(await run(['--help'])).toBe(0);
    expect(out).toEqual([helpText(SPEC)]);
    expect(await run(['--epsilon', '1', '--sites', 'x'])).toBe(2);
    expect(err).toEqual(['fedsynth test: --sites must be an integer from 1 to 26, got "x"\nRun `fedsynth test --help` for usage.\n']);
    expect(await run(['--epsilon', '1'])).toBe(0);
    await expect(runCommand('fedsynth test', io, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(usageMessage(new UsageError('bad'), 'fedsynth x')).toBe('fedsynth x: bad\nRun `fedsynth x --help` for usage.\n');
  });

  it('group help lists the subcommands', () => {
    expect(
      groupHelp('fedsynth g', 'Group.', [
        ['one', 'first'],
        ['three', 'third'],
      ]),
    ).toBe(
      'usage: fedsynth g <command> [flags]\n\nGroup.\n\nCommands:\n  one    first\n  three  third\n\nRun `fedsynth g <command> --help` for the flags of one command.\n',
    );
  });
});

describe('fedsynth --help for every command and subcommand', () => {
  let stdout = '';
  let stderr = '';
  afterEach(() => vi.restoreAllMocks());
  async function run(...argv: string[]): Promise<number> {
    stdout = '';
    stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
    const code = await main(argv);
    vi.restoreAllMocks();
    return code;
  }

  it.each([
    [['--help'], 'fedsynth <command>'],
    [['help'], 'fedsynth <command>'],
    [['-h'], 'fedsynth <command>'],
    [['bench', '--help'], 'fedsynth bench <command>'],
    [['audit', '--help'], 'fedsynth audit <command>'],
  ])('%j prints the command list', async (argv, head) => {
    expect(await run(...argv)).toBe(0);
    expect(stdout.startsWith(`usage: ${head} [flags]`)).toBe(true);
    expect(stdout).toMatch(/Commands:/);
  });

  it.each([
    ['provision'],
    ['provision add-site'],
    ['provision rotate-coordinator'],
    ['simulate'],
    ['coordinator'],
    ['agent'],
    ['agent inspect'],
    ['demo'],
    ['cohort'],
    ['bench utility'],
    ['audit export'],
    ['audit verify'],
    ['audit report'],
    ['audit canary'],
    ['audit mia'],
  ])('fedsynth %s --help and -h', async (cmd) => {
    for (const flag of ['--help', '-h']) {
      expect(await run(...cmd.split(' '), flag)).toBe(0);
      expect(stderr).toBe('');
      expect(stdout.startsWith(`usage: fedsynth ${cmd} `)).toBe(true);
      expect(stdout).toMatch(/-h, --help\s+show this help\n/);
    }
  });

  it('usage errors exit 2 and point to the right --help', async () => {
    expect(await run('provision', 'add-site', 'carol')).toBe(2);
    expect(stderr).toBe('fedsynth provision add-site: missing required flag --out\nRun `fedsynth provision add-site --help` for usage.\n');
    expect(await run('audit', 'verify', '--ca', 'ca.pem')).toBe(2);
    expect(stderr).toMatch(/^fedsynth audit verify: needs --log FILE/);
    expect(await run('audit', 'verify', '--log')).toBe(2);
    expect(stderr).toMatch(/^fedsynth audit verify: --log needs a value\n/);
    expect(await run('audit', 'frob')).toBe(2);
    expect(stderr).toMatch(
      /^fedsynth audit: unknown audit command "frob" \(known: export, verify, report, canary, mia\)\nRun `fedsynth audit --help`/,
    );
    expect(await run('bench', 'speed')).toBe(2);
    expect(stderr).toMatch(/^fedsynth bench: unknown benchmark "speed" \(known: utility\)/);
    expect(await run('cohort', '--config', 'c.yaml', '--out', 'o', '--n', '0')).toBe(2);
    expect(stderr).toMatch(/^fedsynth cohort: --n must be an integer from 1 to 10000000, got "0"/);
    expect(await run('audit', 'canary', '--out', 'x.json', '--canaries', '10', '--k-plus', '11')).toBe(2);
    expect(stderr).toMatch(/--k-plus must be at most --canaries \(10\)/);
    expect(await run()).toBe(2);
    expect(stderr).toMatch(/^fedsynth: needs a command \(provision, simulate, /);
  });
});
