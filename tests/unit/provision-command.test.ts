import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKit } from '../../pki/index.ts';
import { ADD_SITE, PROVISION, parseProvisionArgs, runProvisionCommand } from '../../cli/provision.ts';
import { HelpRequest, helpText, UsageError } from '../../cli/args.ts';

const tmpRoot = mkdtempSync(join(tmpdir(), 'fedsynth-provision-cmd-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

function io() {
  const captured = { out: '', err: '' };
  return { captured, io: { out: (t: string) => void (captured.out += t), err: (t: string) => void (captured.err += t) } };
}

describe('parseProvisionArgs', () => {
  it('parses a new federation with defaults', () => {
    expect(parseProvisionArgs(['--out', 'kits', '--federation', 'demo', '--sites', 'a,b, c'])).toEqual({
      command: 'provision',
      options: { outDir: 'kits', federationId: 'demo', sites: ['a', 'b', 'c'], validityDays: 365 },
    });
  });

  it('parses all provision options, also in --flag=value form', () => {
    expect(
      parseProvisionArgs([
        '--out=kits',
        '--federation=demo',
        '--sites=a',
        '--hosts',
        'coord.example,10.0.0.1',
        '--days',
        '30',
        '--ca-days=900',
      ]),
    ).toEqual({
      command: 'provision',
      options: {
        outDir: 'kits',
        federationId: 'demo',
        sites: ['a'],
        validityDays: 30,
        coordinatorHosts: ['coord.example', '10.0.0.1'],
        caValidityDays: 900,
      },
    });
  });

  it('parses add-site, with the name before or after the flags', () => {
    const expected = { command: 'add-site', options: { outDir: 'kits', siteId: 'carol' } };
    expect(parseProvisionArgs(['add-site', 'carol', '--out', 'kits'])).toEqual(expected);
    expect(parseProvisionArgs(['add-site', '--out', 'kits', 'carol'])).toEqual(expected);
    expect(parseProvisionArgs(['add-site', 'carol', '--out', 'kits', '--days', '7'])).toEqual({
      command: 'add-site',
      options: { outDir: 'kits', siteId: 'carol', validityDays: 7 },
    });
  });

  it('recognises help', () => {
    expect(() => parseProvisionArgs(['--help'])).toThrow(new HelpRequest(helpText(PROVISION)));
    expect(() => parseProvisionArgs(['help'])).toThrow(HelpRequest);
    try {
      parseProvisionArgs(['add-site', '-h']);
    } catch (e) {
      expect((e as HelpRequest).text).toBe(helpText(ADD_SITE));
      expect((e as HelpRequest).text).toMatch(/^usage: fedsynth provision add-site NAME --out DIR \[--days N\]/);
    }
  });

  it.each([
    [[], /missing required flag --out$/],
    [['--out', 'k'], /missing required flag --federation/],
    [['--out', 'k', '--federation', 'f'], /missing required flag --sites/],
    [['--out', 'k', '--federation', 'f', '--sites', 'a,,b'], /--sites has an empty entry/],
    [['--out', 'k', '--federation', 'f', '--sites'], /^--sites needs a value$/],
    [['--out', '--federation', 'f'], /^--out needs a value$/],
    [['--out', 'k', '--out', 'j'], /^--out given more than once$/],
    [['--out=', '--federation', 'f'], /^--out needs a value$/],
    [['--out', 'k', '--federation', 'f', '--sites', 'a', '--days', 'ten'], /--days must be an integer from 1 to 36500, got "ten"/],
    [['--out', 'k', '--federation', 'f', '--sites', 'a', '--days', '0'], /--days must be an integer from 1 to 36500, got "0"/],
    [
      ['--out', 'k', '--federation', 'f', '--sites', 'a', '--bogus', '1'],
      /unknown flag --bogus \(known: --out, --federation, --sites, --hosts, --days, --ca-days, --help\)/,
    ],
    [['oops', '--out', 'k'], /unexpected argument "oops"/],
    [['add-site', '--out', 'k'], /missing NAME \(the new site id\)/],
    [['add-site', 'a', 'b', '--out', 'k'], /expected at most 1 NAME, got 2: a b/],
    [['add-site', 'a'], /missing required flag --out/],
    [['add-site', 'a', '--out', 'k', '--sites', 'x'], /unknown flag --sites \(known: --out, --days, --help\)/],
  ])('rejects %j', (args, message) => {
    expect(() => parseProvisionArgs(args)).toThrow(UsageError);
    expect(() => parseProvisionArgs(args)).toThrow(message);
  });
});

describe('runProvisionCommand', () => {
  it('prints usage for --help', async () => {
    const { captured, io: o } = io();
    expect(await runProvisionCommand(['--help'], o)).toBe(0);
    expect(captured.out).toBe(helpText(PROVISION));
  });

  it('exits 2 with a clear message on a usage error, writing nothing', async () => {
    const out = join(tmpRoot, 'usage');
    const { captured, io: o } = io();
    expect(await runProvisionCommand(['--out', out, '--federation', 'f'], o)).toBe(2);
    expect(captured.err).toMatch(/^fedsynth provision: missing required flag --sites\nRun `fedsynth provision --help` for usage\.\n$/);
    expect(existsSync(out)).toBe(false);
  });

  it('exits 1 on an invalid site id, writing nothing', async () => {
    const out = join(tmpRoot, 'badsite');
    const { captured, io: o } = io();
    expect(await runProvisionCommand(['--out', out, '--federation', 'f', '--sites', 'ok,Not_OK'], o)).toBe(1);
    expect(captured.err).toMatch(/invalid site id "Not_OK"/);
    expect(existsSync(out)).toBe(false);
  });

  it('provisions, adds a site, and refuses to redo either', async () => {
    const out = join(tmpRoot, 'fed');
    let r = io();
    expect(await runProvisionCommand(['--out', out, '--federation', 'demo', '--sites', 'alice,bob', '--days', '10'], r.io)).toBe(0);
    expect(r.captured.out).toMatch(/Provisioned federation demo/);
    expect(r.captured.out).toMatch(/site alice: /);
    expect(readdirSync(join(out, 'sites')).sort()).toEqual(['alice', 'bob']);

    r = io();
    expect(await runProvisionCommand(['add-site', 'carol', '--out', out], r.io)).toBe(0);
    expect(r.captured.out).toMatch(/Issued site carol for federation demo/);
    expect(loadKit(join(out, 'sites/carol')).siteId).toBe('carol');

    r = io();
    expect(await runProvisionCommand(['add-site', 'carol', '--out', out], r.io)).toBe(1);
    expect(r.captured.err).toMatch(/refusing to overwrite the existing kit of site carol/);

    r = io();
    expect(await runProvisionCommand(['--out', out, '--federation', 'demo', '--sites', 'dave'], r.io)).toBe(1);
    expect(r.captured.err).toMatch(/refusing to overwrite the existing federation CA/);

    r = io();
    expect(await runProvisionCommand(['add-site', 'eve', '--out', join(tmpRoot, 'nowhere')], r.io)).toBe(1);
    expect(r.captured.err).toMatch(/is not a provisioned federation/);
  });
});
