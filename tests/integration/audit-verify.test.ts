// `fedsynth audit verify` on the logs of a real in-process federation (mTLS gRPC, BFV, PGlite):
// the untouched logs verify and reconcile; one flipped byte, a dropped entry, two swapped
// entries and a forged (validly signed) charge each make it fail with a non-zero exit code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort } from '../../coordinator/coordinator.ts';
import { appendEntry, type AuditEntry } from '../../privacy/audit-log/chain.ts';
import { certSidecar, runAuditVerify, verifyFiles } from '../../cli/audit/verify.ts';
import { runAuditReport } from '../../cli/audit/report.ts';

let fed: TestFederation;
let coordLog: string;
let siteLogs: string[];
let caPem: string;
const out: string[] = [];
const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s) };

beforeAll(async () => {
  fed = await startTestFederation({ sites: 3, patients: 200, cohortSize: 100, epsilon: 1 });
  await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
  coordLog = join(fed.dir, 'coordinator-audit.jsonl');
  writeFileSync(coordLog, await fed.coordinator.store.exportAudit(fed.cfg.federationId));
  writeFileSync(certSidecar(coordLog), fed.cfg.kit.certPem);
  siteLogs = fed.cfg.sites.map((s) => join(fed.siteCfgs[s].stateDir, 'audit.jsonl'));
  caPem = fed.cfg.kit.caPem;
}, 120_000);

afterAll(async () => {
  await fed?.close();
});

const lines = (f: string) => readFileSync(f, 'utf8').trimEnd().split('\n');
function variant(name: string, edit: (ls: string[]) => string[]): string {
  const f = join(fed.dir, `${name}.jsonl`);
  writeFileSync(f, `${edit(lines(coordLog)).join('\n')}\n`);
  writeFileSync(certSidecar(f), fed.cfg.kit.certPem);
  return f;
}
const verify = (coord: string, sites = siteLogs) =>
  verifyFiles({ logs: [coord, ...sites], caPem, certFiles: [join(fed.kitsDir, 'sites')], delta: 1e-9 }).result;
const kinds = (r: ReturnType<typeof verify>) => [...new Set(r.findings.map((f) => f.kind))].sort();

describe('fedsynth audit verify on a real federation', () => {
  it('accepts the untouched logs, recomputes the spend and reconciles every site', async () => {
    const r = verify(coordLog);
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    const entries = lines(coordLog).map((l) => JSON.parse(l) as AuditEntry);
    expect(entries.every((e) => e.party === 'coordinator')).toBe(true);
    expect(r.mechanisms.length).toBeGreaterThan(0);
    for (const m of r.mechanisms) expect(m.rhoRecomputed).toBeCloseTo(m.rhoRecorded, 15);
    const charges = await fed.coordinator.store.chargesByRound(fed.cfg.federationId);
    for (const site of fed.cfg.sites) {
      const p = r.parties[site];
      expect(p.rho).toBeCloseTo(
        charges.filter((c) => c.siteId === site).reduce((s, c) => s + c.rho, 0),
        12,
      );
      expect(p.ownLog!.rho).toBeCloseTo(p.rho, 12);
      expect(p.epsilon).toBeLessThanOrEqual(1 + 1e-9);
      expect(p.timeline.length).toBe(p.charges);
    }
    expect(
      await runAuditVerify(
        ['--log', [coordLog, ...siteLogs].join(','), '--ca', join(fed.kitsDir, 'ca', 'ca.pem'), '--certs', join(fed.kitsDir, 'sites')],
        io,
      ),
    ).toBe(0);
  });

  it('fedsynth audit report writes HTML with the spend plot and JSON', async () => {
    const dir = join(fed.dir, 'report');
    const canary = join(fed.dir, 'canary.json');
    writeFileSync(
      canary,
      JSON.stringify({
        claimedEpsilon: 1,
        delta: 1e-9,
        noise: 'on',
        canaries: 10,
        included: 5,
        sites: 3,
        realPatients: 600,
        fromMeasurements: { r: 4, v: 2, epsilonLower: 0 },
        fromCohort: null,
      }),
    );
    const code = await runAuditReport([
      '--log',
      [coordLog, ...siteLogs].join(','),
      '--ca',
      join(fed.kitsDir, 'ca', 'ca.pem'),
      '--certs',
      join(fed.kitsDir, 'sites'),
      '--out',
      dir,
      '--canary',
      canary,
    ]);
    expect(code).toBe(0);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    for (const site of fed.cfg.sites) expect(html).toContain(`data-site="${site}"`);
    expect(html).toContain('Threat model');
    expect(html).toContain('Canary audit');
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(json.verification.ok).toBe(true);
    expect(Object.keys(json.verification.parties).sort()).toEqual([...fed.cfg.sites].sort());
  });

  it('fails on one flipped byte', async () => {
    const f = variant('byte', (ls) => {
      const i = ls.findIndex((l) => l.includes('"type":"charge"'));
      const at = ls[i].indexOf('"rho":') + 8;
      const c = ls[i][at];
      ls[i] = ls[i].slice(0, at) + (c === '1' ? '2' : '1') + ls[i].slice(at + 1);
      return ls;
    });
    const r = verify(f);
    expect(r.ok).toBe(false);
    expect(kinds(r)).toContain('bad-hash');
    expect(await runAuditVerify(['--log', f, '--ca', join(fed.kitsDir, 'ca', 'ca.pem'), '--certs', join(fed.kitsDir, 'sites')], io)).toBe(
      1,
    );
  });

  it('fails on a dropped entry and on reordered entries', async () => {
    const dropped = variant('drop', (ls) =>
      ls.filter(
        (l) =>
          !l.includes('"type":"measurement-released"') ||
          ls.indexOf(l) !== ls.findIndex((x) => x.includes('"type":"measurement-released"')),
      ),
    );
    const r1 = verify(dropped);
    expect(r1.ok).toBe(false);
    expect(kinds(r1)).toEqual(expect.arrayContaining(['broken-link', 'seq-gap', 'charge-without-release']));

    const reordered = variant('reorder', (ls) => {
      const i = ls.findIndex((l) => l.includes('"type":"charge"'));
      [ls[i], ls[i + 1]] = [ls[i + 1], ls[i]];
      return ls;
    });
    const r2 = verify(reordered);
    expect(r2.ok).toBe(false);
    expect(kinds(r2)).toEqual(expect.arrayContaining(['broken-link', 'reordered']));
  });

  it('fails on a forged charge the site never agreed to, even when the coordinator signs it', () => {
    const forged = variant('forged', (ls) => {
      const tail = JSON.parse(ls[ls.length - 1]) as AuditEntry;
      const issued = ls
        .map((l) => JSON.parse(l) as AuditEntry)
        .find((e) => e.event.type === 'task-issued' && e.event.kind === 'measure' && e.event.site === 'hospital-c')!;
      const ev = issued.event as { roundId: string; taskId: string };
      const entry = appendEntry(
        tail,
        {
          type: 'charge',
          federationId: fed.cfg.federationId,
          roundId: `${ev.roundId}-again`,
          taskId: ev.taskId,
          site: 'hospital-c',
          rho: 0.05,
          mechanism: 'distributed-discrete-gaussian',
        },
        'coordinator',
        fed.cfg.kit.keyPem,
        new Date(Date.parse(tail.timestamp) + 1000),
      );
      return [...ls, JSON.stringify(entry)];
    });
    const r = verify(forged);
    expect(r.ok).toBe(false);
    // The chain and signature are fine: only reconciliation catches it.
    expect(kinds(r)).toEqual(expect.arrayContaining(['charge-without-release', 'charge-without-task', 'model-spend-mismatch']));
    expect(r.findings.filter((f) => ['bad-hash', 'bad-signature', 'broken-link', 'seq-gap', 'reordered'].includes(f.kind))).toEqual([]);
    expect(r.findings.some((f) => f.kind === 'charge-without-release' && f.message.includes('hospital-c'))).toBe(true);

    // A charge in a released round that the site itself never made: unagreed-charge.
    const stolen = variant('stolen', (ls) => {
      const entries = ls.map((l) => JSON.parse(l) as AuditEntry);
      const c = entries.find((e) => e.event.type === 'charge' && e.event.site === 'hospital-c')!;
      // Rewrite hospital-c's charge to a new task id and re-sign the whole chain from there, as a
      // coordinator holding its own key could.
      const out: AuditEntry[] = [];
      for (const e of entries) {
        const ev = e.seq === c.seq ? { ...e.event, taskId: 'never-issued' } : e.event;
        out.push(appendEntry(out[out.length - 1] ?? null, ev, 'coordinator', fed.cfg.kit.keyPem, new Date(e.timestamp)));
      }
      return out.map((e) => JSON.stringify(e));
    });
    const r2 = verify(stolen);
    expect(r2.ok).toBe(false);
    expect(kinds(r2)).toEqual(expect.arrayContaining(['unagreed-charge', 'charge-without-task']));
    expect(r2.findings.filter((f) => ['bad-hash', 'bad-signature', 'broken-link'].includes(f.kind))).toEqual([]);
  });

  it('fails on a tampered site log and on a log signed by a key the CA never certified', () => {
    const siteF = join(fed.dir, 'site-tampered.jsonl');
    const ls = lines(siteLogs[1]);
    // The first charge (a site's log opens with its non-spending preflight answer).
    const i = ls.findIndex((l) => l.includes('"type":"charge"'));
    expect(ls[i]).toContain('"rho":0.');
    ls[i] = ls[i].replace('"rho":0.', '"rho":1.');
    writeFileSync(siteF, `${ls.join('\n')}\n`);
    const r = verify(coordLog, [siteLogs[0], siteF, siteLogs[2]]);
    expect(r.ok).toBe(false);
    expect(kinds(r)).toContain('bad-hash');

    // Without the sites' certificates, their entries cannot be attributed.
    const r2 = verifyFiles({ logs: [coordLog, siteLogs[0]], caPem, certFiles: [], delta: 1e-9 }).result;
    expect(kinds(r2)).toEqual(['unknown-party']);
  });
});

describe('fedsynth audit verify: re-encoded numbers, missing site logs, lost tails', () => {
  const caFile = () => join(fed.kitsDir, 'ca', 'ca.pem');

  it('fails on a number re-written in another textual form (same value, other bytes)', () => {
    const f = variant('reencoded', (ls) => {
      const i = ls.findIndex((l) => l.includes('"type":"charge"'));
      ls[i] = ls[i].replace(
        /"rho":(-?[\d.]+(?:e[-+]?\d+)?)/,
        (_m, n: string) => `"rho":${n.includes('e') ? n.replace('e', 'E') : `${n}e0`}`,
      );
      return ls;
    });
    expect(readFileSync(f, 'utf8')).not.toBe(readFileSync(coordLog, 'utf8'));
    const r = verify(f);
    expect(r.ok).toBe(false);
    expect(r.findings.some((x) => x.kind === 'malformed' && /not written in its canonical encoding/.test(x.message))).toBe(true);
  });

  it('warns when site logs are missing, and exits non-zero with --strict', async () => {
    const r = verifyFiles({ logs: [coordLog], caPem, certFiles: [join(fed.kitsDir, 'sites')], delta: 1e-9 }).result;
    expect(r.ok).toBe(true);
    expect(r.warnings.map((w) => w.kind)).toEqual(['missing-site-log']);
    expect(r.warnings[0].message).toContain([...fed.cfg.sites].sort().join(', '));
    out.length = 0;
    expect(await runAuditVerify(['--log', coordLog, '--ca', caFile()], io)).toBe(0);
    expect(out.join('')).toMatch(/WARNING \[missing-site-log\] no own log given for site\(s\) hospital-a/);
    expect(await runAuditVerify(['--log', coordLog, '--ca', caFile(), '--strict'], io)).toBe(1);
    expect(
      await runAuditVerify(
        ['--log', [coordLog, ...siteLogs].join(','), '--ca', caFile(), '--certs', join(fed.kitsDir, 'sites'), '--strict'],
        io,
      ),
    ).toBe(0);
  });

  it("detects a site log that lost its last charge, from the coordinator's record of it", () => {
    const ls = lines(siteLogs[0]);
    const last = ls.findLastIndex((l) => l.includes('"type":"charge"'));
    expect(last).toBeGreaterThan(0);
    const f = join(fed.dir, 'site-tail-lost.jsonl');
    writeFileSync(f, `${ls.slice(0, last).join('\n')}\n`);
    const r = verify(coordLog, [f, siteLogs[1], siteLogs[2]]);
    expect(r.ok).toBe(false);
    expect(r.findings.some((x) => x.kind === 'unagreed-charge' && x.message.includes(fed.cfg.sites[0]))).toBe(true);
  });

  it("detects a coordinator log that lost a round a site charged for (the site's charge has no issued task)", () => {
    const f = variant('round-removed', (ls) => {
      const entries = ls.map((l) => JSON.parse(l) as AuditEntry);
      const lastRelease = entries.findLast((e) => e.event.type === 'measurement-released')!;
      const roundId = (lastRelease.event as { roundId: string }).roundId;
      // Remove every entry of that round and re-sign the chain, as a coordinator holding its key could.
      const out: AuditEntry[] = [];
      for (const e of entries) {
        if ((e.event as { roundId?: string }).roundId === roundId) continue;
        out.push(appendEntry(out[out.length - 1] ?? null, e.event, 'coordinator', fed.cfg.kit.keyPem, new Date(e.timestamp)));
      }
      return out.map((e) => JSON.stringify(e));
    });
    const r = verify(f);
    expect(r.ok).toBe(false);
    expect(kinds(r)).toContain('unrecorded-site-charge');
    expect(r.findings.filter((x) => ['bad-hash', 'bad-signature', 'broken-link', 'seq-gap'].includes(x.kind))).toEqual([]);
  });

  it('detects a coordinator log rewritten and re-signed with every charge intact, by the chain heads the sites countersigned', () => {
    // Each site's charge entries carry the coordinator's chain head at the round's opening.
    const own = lines(siteLogs[0]).map((l) => JSON.parse(l) as AuditEntry);
    const heads = own.filter((e) => e.event.type === 'charge').map((e) => (e.event as { coordinatorHead?: unknown }).coordinatorHead);
    expect(heads.length).toBeGreaterThan(0);
    expect(heads.every((h) => h !== undefined)).toBe(true);
    // Back-date the first entry by a day and re-sign the whole chain: links, hashes and signatures
    // are all valid and every charge, release and refusal is unchanged.
    const f = variant('rewritten', (ls) => {
      const entries = ls.map((l) => JSON.parse(l) as AuditEntry);
      const out: AuditEntry[] = [];
      for (const e of entries) {
        const at = new Date(Date.parse(e.timestamp) - (e.seq === 0 ? 86_400_000 : 0));
        out.push(appendEntry(out[out.length - 1] ?? null, e.event, 'coordinator', fed.cfg.kit.keyPem, at));
      }
      return out.map((e) => JSON.stringify(e));
    });
    const r = verify(f);
    expect(r.ok).toBe(false);
    expect(kinds(r)).toEqual(['countersigned-head-missing']);
    expect(r.findings[0].message).toMatch(/it was rewritten$/);
    // Cut below the last round's opening: the head the sites countersigned there is gone.
    const cut = variant('cut-below-head', (ls) => ls.slice(0, Math.max(...heads.map((h) => (h as { seq: number }).seq))));
    expect(verify(cut).findings.some((x) => x.kind === 'countersigned-head-missing' && /it was cut$/.test(x.message))).toBe(true);
  });

  it('fails on a coordinator tail cut after the tasks were issued (sites charged, nothing released), even without --strict', async () => {
    const f = variant('tail-cut', (ls) => {
      const i = ls.findLastIndex((l) => l.includes('"type":"measurement-released"'));
      return ls.slice(0, i);
    });
    const r = verify(f);
    expect(r.ok).toBe(false);
    expect(r.findings.some((w) => w.kind === 'unreleased-site-charge')).toBe(true);
    expect(await runAuditVerify(['--log', [f, ...siteLogs].join(','), '--ca', caFile(), '--certs', join(fed.kitsDir, 'sites')], io)).toBe(
      1,
    );
  });
});
