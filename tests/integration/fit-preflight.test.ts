// Before any budget is spent (real in-process federation: mTLS gRPC, real agents and ledgers,
// PGlite): a committee member that never registered refuses the fit with a clear message and
// writes nothing, and a restart once it has registered completes; the pre-flight refuses a fit
// that cannot finish, naming each site and why, in four scenarios, and no site pays anything;
// a site charged for a round that is never released fails `fedsynth audit verify`.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { subsetSchemaText } from '../../coordinator/studies.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { ledgerRecords } from '../support/crash-windows.ts';
import { parseChainLines, type AuditEntry, type PreflightAnsweredEvent } from '../../privacy/audit-log/chain.ts';
import { certSidecar, runAuditVerify } from '../../cli/audit/verify.ts';

const SMALL_SCHEMA = subsetSchemaText(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'), ['age', 'sex', 'hypertension', 'type2_diabetes']);

let fed: TestFederation | undefined;
afterEach(async () => {
  await fed?.close();
  fed = undefined;
});

const small = (o: Parameters<typeof startTestFederation>[0]) =>
  startTestFederation({ patients: 80, plan: 'mst', schemaText: SMALL_SCHEMA, cohortSize: 0, iterations: 20, ...o });

const ledgerCharges = (f: TestFederation, site: string) => ledgerRecords(f.siteCfgs[site].stateDir).length;

const siteLog = (f: TestFederation, s: string) =>
  parseChainLines(readFileSync(join(f.siteCfgs[s].stateDir, 'audit.jsonl'), 'utf8')) as AuditEntry[];
const preflightAnswers = (f: TestFederation, s: string) =>
  siteLog(f, s)
    .map((e) => e.event)
    .filter((e): e is PreflightAnsweredEvent => e.type === 'preflight-answered');

/** The fit is refused with `message`; no measure round exists; no site charged anything. */
async function expectRefusedBeforeRound1(f: TestFederation, message: RegExp): Promise<string> {
  const err = await f.coordinator.engine.run().then(
    () => null,
    (e: Error) => e,
  );
  expect(err?.message).toMatch(message);
  expect(err!.message).toMatch(/refused before round 1 \(no budget spent\)/);
  expect(await f.coordinator.store.listRounds(f.cfg.federationId, { kind: 'measure' })).toEqual([]);
  expect(await f.coordinator.store.listRounds(f.cfg.federationId, { kind: 'keygen' })).toEqual([]);
  for (const s of f.cfg.sites) expect(ledgerCharges(f, s)).toBe(0);
  const [pre] = await f.coordinator.store.listRounds(f.cfg.federationId, { kind: 'preflight' });
  expect(pre.state).toBe('failed');
  return err!.message;
}

describe('a committee member that has not registered by the registration deadline', () => {
  it('refuses the fit before any task is written, and a restart once it has registered completes', async () => {
    // The agents that are up have been retrying Register since they started (the coordinator
    // refuses it until the fit has begun): with the default backoff (waits up to 5 s) they missed
    // a short registration deadline on a loaded machine, and the fit was refused for too few sites;
    // 3 s was still too short at load 12 (neither registered), hence 8 s.
    fed = await small({ sites: 3, registrationMs: 8000, manualSites: ['hospital-c'], agentRetryMaxMs: 250 });
    const f = fed;
    const err = await f.coordinator.engine.run().then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /^committee member hospital-c had not registered when the registration deadline \(8 s\) passed: key generation needs every member of the committee \(hospital-a, hospital-b, hospital-c, threshold 2\), so the fit is refused before any task is written/,
    );
    expect(await f.coordinator.store.listRounds(f.cfg.federationId)).toEqual([]);
    // The member's agent starts late; the coordinator is restarted and the other agents rejoin.
    for (const s of ['hospital-a', 'hospital-b']) f.agents[s].stop();
    await Promise.all(Object.values(f.agentRuns));
    await f.restartCoordinator();
    for (const s of f.cfg.sites) f.startAgent(s);
    const outcome = await f.coordinator.engine.run();
    expect(outcome.rounds.length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(outcome.spendBySite).sort()).toEqual(f.cfg.sites);
  }, 240_000);
});

describe('pre-flight: a fit that cannot finish is refused before round 1, and nobody pays', () => {
  it("every site's cap is below the fit's ε", async () => {
    fed = await small({
      sites: 3,
      policy: Object.fromEntries(['hospital-a', 'hospital-b', 'hospital-c'].map((s) => [s, { epsilon: 0.2 }])),
    });
    const message = await expectRefusedBeforeRound1(
      fed,
      /only 0 site\(s\) \(none\) can contribute to every round of the plan, the quorum is 2/,
    );
    for (const s of fed.cfg.sites) {
      expect(message).toMatch(
        new RegExp(
          `${s}: the fit's plan needs up to rho [\\d.e-]+ from this site: would spend rho [\\d.e-]+ but only [\\d.e-]+ of the site's total 0\\.2-epsilon cap`,
        ),
      );
      // The site's own audit log records what it answered, and nothing was spent.
      const [answer] = preflightAnswers(fed, s);
      expect(answer).toMatchObject({ contribute: false, site: s });
      expect(answer.remainingRho).toBeLessThan(answer.neededRho);
      expect(siteLog(fed, s).some((e) => e.event.type === 'charge')).toBe(false);
    }
  }, 240_000);

  it('fewer sites than the quorum can afford the plan (one federation cap, one monthly cap)', async () => {
    fed = await small({ sites: 3, quorum: 2, policy: { 'hospital-b': { federationEpsilon: 0.1 }, 'hospital-c': { monthlyEpsilon: 0.1 } } });
    const message = await expectRefusedBeforeRound1(
      fed,
      /only 1 site\(s\) \(hospital-a\) can contribute to every round of the plan, the quorum is 2/,
    );
    expect(message).toMatch(/hospital-b: .*of the federation "test-fed"'s 0\.1-epsilon cap/);
    expect(message).toMatch(/hospital-c: .*monthly 0\.1-epsilon cap/);
    expect(preflightAnswers(fed, 'hospital-a')[0]).toMatchObject({ contribute: true, decrypt: true });
  }, 240_000);

  it('the committee cannot reach its threshold: two of three members will not decrypt a sum of the quorum', async () => {
    fed = await small({ sites: 4, quorum: 2, threshold: 2, policy: { 'hospital-b': { minQuorum: 3 }, 'hospital-c': { minQuorum: 3 } } });
    await expectRefusedBeforeRound1(
      fed,
      /the committee cannot reach its threshold: only 1 of its 3 members \(hospital-a\) will decrypt, the threshold is 2\. .*hospital-b \(committee\): decryption of a sum of 2 contribution\(s\) is below this site's minimum quorum 3/,
    );
  }, 240_000);

  it('a committee member is registered but does not answer (its agent is down)', async () => {
    // The preflight waits out this deadline for hospital-c; the others answer within a second.
    fed = await small({ sites: 3, deadlineMs: 6000, manualSites: ['hospital-c'] });
    const f = fed;
    // hospital-c registers (its row is in the coordinator's database) and its agent is down.
    const refused = expectRefusedBeforeRound1(
      f,
      /committee member\(s\) hospital-c cannot be reached, and key generation needs every member.*hospital-c: did not answer the preflight before its deadline/,
    );
    for (let i = 0; i < 600 && !(await f.coordinator.store.getFederation(f.cfg.federationId)); i++)
      await new Promise((r) => setTimeout(r, 50));
    await f.coordinator.store.registerSite(f.cfg.federationId, 'hospital-c', '0.1.0');
    await refused;
  }, 240_000);
});

describe('a site charged for a round that is never released', () => {
  it('fails the fit naming the charged sites, and `fedsynth audit verify` exits 1', async () => {
    // The decrypt round of round 1 waits out this deadline for the two members that went away.
    fed = await small({ sites: 3, deadlineMs: 12_000 });
    const f = fed;
    // Two committee members go away once the coordinator holds their first contribution (stop()
    // cancels calls in flight, so stopping earlier would lose the upload): round 1 is answered
    // (every site charges its ledger) but only one member is left to decrypt it.
    const stopWhenMeasured = async () => {
      const gone = new Set<string>();
      for (let i = 0; i < 12_000 && gone.size < 2; i++) {
        const subs = await f.coordinator.store.listSubmissions(f.cfg.federationId, 'm1-one-way').catch(() => []);
        for (const s of ['hospital-b', 'hospital-c'])
          if (!gone.has(s) && subs.some((x) => x.siteId === s)) {
            f.agents[s].stop();
            gone.add(s);
          }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const [err] = await Promise.all([
      f.coordinator.engine.run().then(
        () => null,
        (e: Error) => e,
      ),
      stopWhenMeasured(),
    ]);
    expect(err?.message).toMatch(
      /round 1 .* failed: only [01] of the required 2 committee members decrypted before the deadline; hospital-a, hospital-b, hospital-c charged their own ledger for this round, which is never released/,
    );
    for (const s of f.cfg.sites) expect(ledgerCharges(f, s)).toBe(1);
    expect(await f.coordinator.store.chargesByRound(f.cfg.federationId)).toEqual([]);
    expect(await f.coordinator.store.unreleasedContributions(f.cfg.federationId)).toEqual([
      { roundId: 'm1-one-way', state: 'failed', failureReason: expect.stringMatching(/committee members decrypted/), sites: f.cfg.sites },
    ]);

    const coordLog = join(f.dir, 'coordinator-audit.jsonl');
    writeFileSync(coordLog, await f.coordinator.store.exportAudit(f.cfg.federationId));
    writeFileSync(certSidecar(coordLog), f.cfg.kit.certPem);
    const logs = [coordLog, ...f.cfg.sites.map((s) => join(f.siteCfgs[s].stateDir, 'audit.jsonl'))];
    const out: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s) };
    const code = await runAuditVerify(
      ['--log', logs.join(','), '--ca', join(f.kitsDir, 'ca', 'ca.pem'), '--certs', join(f.kitsDir, 'sites')],
      io,
    );
    expect(code).toBe(1);
    const text = out.join('');
    for (const s of f.cfg.sites)
      expect(text).toMatch(
        new RegExp(
          `FINDING \\[unreleased-site-charge\\] .*${s} charged itself ρ [\\d.e-]+ for task \\S+ of round m1-one-way, which the coordinator's log issued but never released or charged`,
        ),
      );
  }, 240_000);
});
