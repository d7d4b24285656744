// The signed, versioned federation roster: what provision, add-site, rotate-site and revoke write
// (versions and public-key fingerprints), what a site accepts from it (CA signature, the
// coordinator never a site), and what a site refuses (a tampered file, an older version after a
// newer one, another roster under an accepted version), kept across restarts in its state folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from 'node:crypto';
import { addSite, provisionFederation } from '../../pki/index.ts';
import { initRoster, revokeCertificates, rotateSite, siteCertificates } from '../../pki/rotate.ts';
import { parseRoster, publicKeySha256, RosterError, type FederationRoster } from '../../proto/roster.ts';
import { SiteRoster, SiteRosterError } from '../../site-agent/roster.ts';
import { runProvisionCommand, ROSTER } from '../../cli/provision.ts';
import { helpText } from '../../cli/args.ts';
import { SiteAgent, type LoadedSiteData } from '../../site-agent/agent.ts';
import { AGENT_EXIT_CODES, AgentStopError } from '../../site-agent/agent-errors.ts';
import type { SiteConfig } from '../../site-agent/config.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const FED = 'roster-fed';
let root: string;
let out: string;
let caPem: string;
let caKeyPem: string;
/** The roster file text of each version, as provisioning wrote it. */
const versions: Record<number, string> = {};

const read = (p: string) => readFileSync(p, 'utf8');
const rosterOf = (text: string): FederationRoster => parseRoster(text, caPem, 'test roster');
const keyOf = (site: string) => publicKeySha256(read(join(out, 'sites', site, 'cert.pem')));

/** A roster file signed with the CA key over an arbitrary payload: what only a CA holder can make. */
function caSigned(payload: object): string {
  const text = JSON.stringify(payload);
  const signature = sign('sha256', Buffer.from(text, 'utf8'), { key: caKeyPem, dsaEncoding: 'ieee-p1363' }).toString('base64');
  return JSON.stringify({ format: 'fedsynth-roster/1', payload: text, signature });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fedsynth-roster-'));
  out = join(root, 'kits');
  await provisionFederation({ outDir: out, federationId: FED, sites: ['hospital-a', 'hospital-b'], validityDays: 2 });
  caPem = read(join(out, 'ca', 'ca.pem'));
  caKeyPem = read(join(out, 'ca', 'ca.key'));
  versions[1] = read(join(out, 'roster.json'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('provisioning writes the roster (pki/roster.ts)', () => {
  it('provision: version 1, every site with the SHA-256 of its certificate key, the same file in every site kit', () => {
    const r = rosterOf(versions[1]);
    expect(r.federationId).toBe(FED);
    expect(r.version).toBe(1);
    expect(r.sites).toEqual([
      { siteId: 'hospital-a', publicKeySha256: keyOf('hospital-a') },
      { siteId: 'hospital-b', publicKeySha256: keyOf('hospital-b') },
    ]);
    for (const s of ['hospital-a', 'hospital-b']) expect(read(join(out, 'sites', s, 'roster.json'))).toBe(versions[1]);
    expect(existsSync(join(out, 'coordinator', 'roster.json'))).toBe(false);
  });

  it('add-site, rotate-site and revoke each write the next version with the right keys; revoking a key it no longer lists does not', async () => {
    const added = await addSite({ outDir: out, siteId: 'hospital-c' });
    expect(added.roster.version).toBe(2);
    versions[2] = read(join(out, 'roster.json'));
    const v2 = rosterOf(versions[2]);
    expect(v2.sites.map((s) => s.siteId)).toEqual(['hospital-a', 'hospital-b', 'hospital-c']);
    expect(v2.sites.find((s) => s.siteId === 'hospital-c')!.publicKeySha256).toBe(keyOf('hospital-c'));
    // Every listed kit gets the new version, the new site's included.
    for (const s of ['hospital-a', 'hospital-b', 'hospital-c']) expect(read(join(out, 'sites', s, 'roster.json'))).toBe(versions[2]);

    const oldKeyB = keyOf('hospital-b');
    const rotated = await rotateSite({ outDir: out, siteId: 'hospital-b' });
    expect(rotated.roster.version).toBe(3);
    versions[3] = read(join(out, 'roster.json'));
    const v3 = rosterOf(versions[3]);
    const b = v3.sites.find((s) => s.siteId === 'hospital-b')!.publicKeySha256;
    expect(b).toBe(keyOf('hospital-b'));
    expect(b).not.toBe(oldKeyB);
    expect(v3.sites.filter((s) => s.siteId !== 'hospital-b')).toEqual(v2.sites.filter((s) => s.siteId !== 'hospital-b'));

    // hospital-b's previous certificate: on the CRL, but the roster does not list its key any more.
    const prev = await revokeCertificates({ outDir: out, certPems: siteCertificates(out, 'hospital-b', 'previous') });
    expect(prev.added).toHaveLength(1);
    expect(prev.roster).toBeUndefined();
    expect(read(join(out, 'roster.json'))).toBe(versions[3]);

    const revoked = await revokeCertificates({ outDir: out, certPems: siteCertificates(out, 'hospital-c', 'current') });
    expect(revoked.removedFromRoster).toEqual(['hospital-c']);
    expect(revoked.roster?.version).toBe(4);
    versions[4] = read(join(out, 'roster.json'));
    expect(rosterOf(versions[4]).sites.map((s) => s.siteId)).toEqual(['hospital-a', 'hospital-b']);
    // A revoked site is not handed the roster that drops it; the others are.
    expect(read(join(out, 'sites', 'hospital-c', 'roster.json'))).toBe(versions[3]);
    expect(read(join(out, 'sites', 'hospital-a', 'roster.json'))).toBe(versions[4]);

    await expect(rotateSite({ outDir: out, siteId: 'hospital-c' })).rejects.toThrow(/site hospital-c is not in the roster \(version 4\)/);
  });

  it('never lists the coordinator, and refuses a change to a roster it cannot verify before writing anything', async () => {
    await expect(addSite({ outDir: out, siteId: 'fedsynth-coordinator' })).rejects.toThrow(/that is the coordinator's name/);
    await expect(
      provisionFederation({ outDir: join(root, 'coord'), federationId: FED, sites: ['fedsynth-coordinator'], validityDays: 2 }),
    ).rejects.toThrow(/that is the coordinator's name/);

    const copy = join(root, 'tampered-kits');
    cpSync(out, copy, { recursive: true });
    const tampered = JSON.parse(versions[4]) as { payload: string };
    tampered.payload = tampered.payload.replace('"version":4', '"version":5');
    writeFileSync(join(copy, 'roster.json'), JSON.stringify(tampered));
    await expect(addSite({ outDir: copy, siteId: 'hospital-d' })).rejects.toThrow(
      /roster\.json is not signed by this federation's CA; restore it/,
    );
    expect(existsSync(join(copy, 'sites', 'hospital-d'))).toBe(false);
    writeFileSync(join(copy, 'roster.json'), '{ not json');
    await expect(rotateSite({ outDir: copy, siteId: 'hospital-a' })).rejects.toThrow(/roster\.json is not JSON/);
  });

  it('roster --init writes version 1 for a federation provisioned before rosters, without revoked sites; refused when one exists', async () => {
    const copy = join(root, 'pre-roster-kits');
    cpSync(out, copy, { recursive: true });
    unlinkSync(join(copy, 'roster.json'));
    await expect(addSite({ outDir: copy, siteId: 'hospital-d' })).rejects.toThrow(/fedsynth provision roster --init/);
    const r = await initRoster({ outDir: copy });
    expect(r.version).toBe(1);
    expect(r.sites.map((s) => s.siteId)).toEqual(['hospital-a', 'hospital-b']);
    await expect(initRoster({ outDir: copy })).rejects.toThrow(/already exists/);
  });

  it('fedsynth provision roster answers --help, shows the roster, and names a malformed file', async () => {
    const captured = { out: '', err: '' };
    const io = { out: (t: string) => void (captured.out += t), err: (t: string) => void (captured.err += t) };
    expect(await runProvisionCommand(['roster', '--help'], io)).toBe(0);
    expect(captured.out).toBe(helpText(ROSTER));
    captured.out = '';
    expect(await runProvisionCommand(['roster', '--out', out], io)).toBe(0);
    expect(captured.out).toMatch(new RegExp(`^Federation ${FED}, roster version 4, issued `));
    expect(captured.out).toContain(`hospital-a  public key SHA-256 ${keyOf('hospital-a')}`);
    expect(await runProvisionCommand(['roster', '--out', out, '--bogus'], io)).toBe(2);
    const copy = join(root, 'malformed-kits');
    cpSync(out, copy, { recursive: true });
    writeFileSync(join(copy, 'roster.json'), JSON.stringify({ format: 'something-else' }));
    captured.err = '';
    expect(await runProvisionCommand(['roster', '--out', copy], io)).toBe(1);
    expect(captured.err).toMatch(/^fedsynth provision: .*roster\.json is not a fedsynth-roster\/1 roster/);
  });
});

describe('a site verifies the roster (proto/roster.ts)', () => {
  it('refuses a tampered roster, one signed by another CA, and malformed files, naming the problem', async () => {
    const tampered = JSON.parse(versions[1]) as { payload: string };
    tampered.payload = tampered.payload.replace('hospital-b', 'hospital-x');
    expect(() => rosterOf(JSON.stringify(tampered))).toThrow(RosterError);
    expect(() => rosterOf(JSON.stringify(tampered))).toThrow(/is not signed by this federation's CA/);
    const other = join(root, 'other');
    await provisionFederation({ outDir: other, federationId: FED, sites: ['hospital-a'], validityDays: 2 });
    expect(() => rosterOf(read(join(other, 'roster.json')))).toThrow(/is not signed by this federation's CA/);
    expect(() => rosterOf('[')).toThrow(/is not JSON/);
    expect(() => rosterOf('{"format":"fedsynth-roster/1","payload":1,"signature":""}')).toThrow(/"payload" must be the signed roster/);
    expect(() => rosterOf('{"format":"fedsynth-roster/9","payload":"","signature":""}')).toThrow(/unknown roster format/);
  });

  it('refuses a CA-signed roster that lists the coordinator, lists an id twice, or names another federation', () => {
    const base = { format: 'fedsynth-roster/1', federationId: FED, version: 9, issuedAt: new Date().toISOString() };
    const key = 'ab'.repeat(32);
    expect(() => rosterOf(caSigned({ ...base, sites: [{ siteId: 'fedsynth-coordinator', publicKeySha256: key }] }))).toThrow(
      /the coordinator \(fedsynth-coordinator\) is never a site of the roster/,
    );
    expect(() =>
      rosterOf(
        caSigned({
          ...base,
          sites: [
            { siteId: 'hospital-a', publicKeySha256: key },
            { siteId: 'hospital-a', publicKeySha256: 'cd'.repeat(32) },
          ],
        }),
      ),
    ).toThrow(/site hospital-a is listed twice/);
    expect(() => rosterOf(caSigned({ ...base, federationId: 'elsewhere', sites: [] }))).toThrow(/roster of federation "elsewhere"/);
    expect(() => rosterOf(caSigned({ ...base, version: 0, sites: [] }))).toThrow(/"version" must be a whole number ≥ 1/);
    expect(rosterOf(caSigned({ ...base, sites: [] })).version).toBe(9);
  });
});

describe('a site holds the highest roster version it accepted (site-agent/roster.ts)', () => {
  const open = (state: string, kitFile?: string, log?: (l: string) => void) =>
    SiteRoster.open({ stateDir: join(root, state), kitRosterFile: kitFile, caPem, federationId: FED, log });

  it('accepts the kit roster and keeps it; takes a newer version from the kit file when it changes', () => {
    const kitFile = join(root, 'kit-roster.json');
    writeFileSync(kitFile, versions[1]);
    const lines: string[] = [];
    const r = open('state-new', kitFile, (l) => lines.push(l));
    expect(r.current().version).toBe(1);
    expect(read(join(root, 'state-new', 'roster.json'))).toBe(versions[1]);
    writeFileSync(kitFile, versions[2]);
    expect(r.current().version).toBe(2);
    expect(lines.at(-1)).toMatch(/^federation roster version 2 accepted from roster .*: hospital-a, hospital-b, hospital-c$/);
  });

  it('refuses an older version after a newer one, at once and after a restart with the older kit file', () => {
    const kitFile = join(root, 'kit-roster-rollback.json');
    writeFileSync(kitFile, versions[4]);
    const r = open('state-rollback', kitFile);
    expect(r.current().version).toBe(4);
    const verdict = r.offer(versions[2], 'roster from an old kit');
    expect(verdict).toEqual({
      accepted: false,
      reason: 'roster from an old kit is version 2, older than version 4 this site accepted: refusing a rollback',
    });
    expect(r.current().version).toBe(4);
    // hospital-c, revoked in version 4, stays out however the kit folder is put back.
    writeFileSync(kitFile, versions[2]);
    const lines: string[] = [];
    const restarted = open('state-rollback', kitFile, (l) => lines.push(l));
    expect(restarted.current().version).toBe(4);
    expect(restarted.current().sites.map((s) => s.siteId)).not.toContain('hospital-c');
    expect(lines.join('\n')).toMatch(/federation roster refused: .*version 2, older than version 4 .*; keeping version 4/);
  });

  it('refuses a tampered roster and another roster under an accepted version', () => {
    const kitFile = join(root, 'kit-roster-tamper.json');
    writeFileSync(kitFile, versions[1]);
    const r = open('state-tamper', kitFile);
    expect(r.current().version).toBe(1);
    const tampered = JSON.parse(versions[2]) as { payload: string };
    tampered.payload = tampered.payload.replace('"version":2', '"version":7');
    expect(r.offer(JSON.stringify(tampered), 'tampered roster')).toMatchObject({
      accepted: false,
      reason: expect.stringMatching(/^tampered roster is not signed by this federation's CA/),
    });
    const same = rosterOf(versions[1]);
    const fork = caSigned({
      format: 'fedsynth-roster/1',
      federationId: FED,
      version: 1,
      issuedAt: same.issuedAt.toISOString(),
      sites: [...same.sites, { siteId: 'hospital-x', publicKeySha256: 'ef'.repeat(32) }],
    });
    expect(r.offer(fork, 'forked roster')).toMatchObject({
      accepted: false,
      reason: 'forked roster is another roster under version 1, which this site already accepted: refusing it',
    });
    expect(r.offer(versions[1], 'the same roster again')).toMatchObject({ accepted: true });
    expect(r.current().sites.map((s) => s.siteId)).toEqual(['hospital-a', 'hospital-b']);
  });

  it('does not start without a roster it can verify', () => {
    expect(() => open('state-none', join(root, 'missing-roster.json'))).toThrow(SiteRosterError);
    expect(() => open('state-none', join(root, 'missing-roster.json'))).toThrow(/no federation roster this site can use/);
    const bad = join(root, 'bad-roster.json');
    writeFileSync(bad, versions[1].replace('hospital', 'hospitaL'));
    expect(() => open('state-none', bad)).toThrow(/no federation roster this site can use/);
    writeFileSync(join(root, 'state-corrupt.json'), 'x');
    cpSync(join(root, 'state-corrupt.json'), join(root, 'state-tamper', 'roster.json'));
    expect(() => open('state-tamper', undefined)).toThrow(/Only this agent writes that file/);
  });

  it('an agent without a roster stops with exit 11 before dialling, and releases its state folder', () => {
    const kit = join(out, 'sites', 'hospital-a');
    const cfg: SiteConfig = {
      siteId: 'hospital-a',
      federationId: FED,
      coordinator: 'localhost:1',
      kit: { caPem, certPem: read(join(kit, 'cert.pem')), keyPem: read(join(kit, 'key.pem')) },
      rosterFile: join(root, 'no-such-roster.json'),
      schemaText: read(DEFAULT_SCHEMA_PATH),
      schemaHash: 'unused',
      data: { kind: 'fhir-ndjson', dir: root },
      stateDir: join(root, 'agent-state'),
      policy: parsePolicy({ epsilon: 1, delta: 1e-6 }),
      exitWhenDone: true,
    };
    const site = {} as LoadedSiteData;
    let stop: unknown;
    try {
      new SiteAgent(cfg, site);
    } catch (err) {
      stop = err;
    }
    expect(stop).toBeInstanceOf(AgentStopError);
    expect((stop as AgentStopError).exitCode).toBe(AGENT_EXIT_CODES.tls);
    expect((stop as Error).message).toMatch(/no federation roster this site can use: .*no-such-roster\.json is missing or refused/);
    // The same state folder opens (its ledger lock was let go) once the kit has its roster.
    const agent = new SiteAgent({ ...cfg, rosterFile: join(kit, 'roster.json') }, site);
    agent.close();
    expect(read(join(root, 'agent-state', 'roster.json'))).toBe(versions[4]);
  });
});
