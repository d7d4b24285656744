// A site agent with a real state folder holds the highest revocation list it accepted: the old
// coordinator certificate revoked by list 2, list 1 copied back over the agent's file is refused
// (naming both cRLNumbers), and the agent still refuses a coordinator presenting the revoked
// certificate, while running and after a restart with list 1 still in its file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseSerial } from '../../proto/revocation.ts';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rotateCoordinator } from '../../pki/rotate-coordinator.ts';
import { revokeCertificates } from '../../pki/rotate.ts';
import { startCoordinator as startCoordinatorProcess } from '../../coordinator/coordinator.ts';
import { HELD_REVOCATION_FILE } from '../../site-agent/revocation.ts';
import { parseSchema } from '../../schema/schema.ts';
import { startTestFederation, type TestFederation } from '../support/federation.ts';

const SITE = 'hospital-a';
let fed: TestFederation;
/** The coordinator's kit before the rotation (its certificate revoked by list 2). */
let old: { certPem: string; keyPem: string };
let listOne: string;
let listTwo: string;

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; log:\n${fed.logs.slice(-20).join('\n')}`);
}
const siteLogs = () => fed.logs.filter((l) => l.startsWith(`${SITE}: `));
const registrations = () => fed.logs.filter((l) => l === `coordinator: site ${SITE} registered (agent 0.1.0)`).length;

beforeAll(async () => {
  fed = await startTestFederation({
    sites: 1,
    patients: 30,
    manualSites: [SITE],
    agentRetryMaxMs: 300,
    agentRevocationRefreshMs: 100,
  });
  await fed.coordinator.store.upsertFederation({
    id: fed.cfg.federationId,
    schemaHash: fed.cfg.schemaHash,
    schema: parseSchema(fed.cfg.schemaText),
  });
}, 60_000);

afterAll(async () => {
  await fed?.close();
});

describe('a site agent refuses an older revocation list', () => {
  it('list 1 copied over list 2 is refused at once and after a restart; the coordinator certificate list 2 revoked stays revoked', async () => {
    // The agent's own copy of the list, as an operator installs it beside the kit.
    const agentFile = join(fed.dir, 'agent-revoked.crl.pem');
    const one = await revokeCertificates({ outDir: fed.kitsDir, certPems: [] });
    expect(one.crlNumber).toBe(1n);
    listOne = join(fed.dir, 'list-1.crl.pem');
    copyFileSync(one.file, listOne);
    copyFileSync(listOne, agentFile);
    fed.siteCfgs[SITE].revocationListFile = agentFile;
    fed.startAgent(SITE);
    await until('the first registration', () => registrations() === 1);
    expect(siteLogs().join('\n')).toMatch(/revocation list .*agent-revoked\.crl\.pem: cRLNumber 1, 0 revoked/);

    // The coordinator is rotated, its old certificate revoked (list 2), and restarted on the new kit.
    old = { certPem: fed.cfg.kit.certPem, keyPem: fed.cfg.kit.keyPem };
    const r = await rotateCoordinator({ outDir: fed.kitsDir, revokeOld: true, reason: 'keyCompromise' });
    const coordKit = join(fed.kitsDir, 'coordinator');
    fed.cfg.kit = {
      caPem: fed.cfg.kit.caPem,
      certPem: readFileSync(join(coordKit, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(join(coordKit, 'key.pem'), 'utf8'),
    };
    copyFileSync(r.revokedIn!, agentFile);
    await until('list 2 accepted', () => siteLogs().some((l) => /accepted: cRLNumber 2, 1 revoked certificate\(s\)$/.test(l)));
    listTwo = readFileSync(r.revokedIn!, 'utf8');
    expect(readFileSync(join(fed.siteCfgs[SITE].stateDir, HELD_REVOCATION_FILE), 'utf8')).toBe(listTwo);
    await fed.restartCoordinator();

    // The rollback: list 1 (which does not revoke the old certificate) copied over the agent's file.
    copyFileSync(listOne, agentFile);
    await until('list 1 refused', () => siteLogs().some((l) => /refused: .*cRLNumber 1, lower than cRLNumber 2/.test(l)));
    expect(readFileSync(join(fed.siteCfgs[SITE].stateDir, HELD_REVOCATION_FILE), 'utf8')).toBe(listTwo);

    // Whoever holds the old key serves with the old certificate: the agent refuses it and stops.
    const revokedMessage = new RegExp(
      `${SITE}: agent stopped: .*coordinator's certificate \\(serial ${normaliseSerial(r.oldSerial)}\\) is on the federation's revocation list`,
    );
    const stale = async () => {
      await fed.coordinator.close();
      const staleLog: string[] = [];
      fed.coordinator = await startCoordinatorProcess(
        { ...fed.cfg, kit: { caPem: fed.cfg.kit.caPem, ...old } },
        { log: (l) => staleLog.push(l) },
      );
      return staleLog;
    };
    const staleLog = await stale();
    await fed.agentRuns[SITE];
    expect(fed.logs.filter((l) => revokedMessage.test(l))).toHaveLength(1);
    expect(staleLog.some((l) => l.includes(SITE))).toBe(false);

    // A restart of the agent, its file still list 1: refused at start, list 2 from the state folder in force.
    const mark = fed.logs.length;
    fed.startAgent(SITE);
    await fed.agentRuns[SITE];
    const afterRestart = fed.logs.slice(mark).filter((l) => l.startsWith(`${SITE}: `));
    expect(afterRestart.join('\n')).toMatch(/revocation list refused: .*cRLNumber 1, lower than cRLNumber 2 this holder accepted/);
    expect(afterRestart.join('\n')).toMatch(/agent-revoked\.crl\.pem: cRLNumber 2, 1 revoked/);
    expect(fed.logs.filter((l) => revokedMessage.test(l))).toHaveLength(2);
    expect(staleLog.some((l) => l.includes(SITE))).toBe(false);

    // The coordinator on its new kit: the same agent, same state, file still list 1, registers.
    await fed.restartCoordinator();
    const before = registrations();
    fed.startAgent(SITE);
    await until('the registration with the new certificate', () => registrations() === before + 1);
  }, 60_000);

  it('the coordinator keeps list 2 in its store: list 1 in its file is refused after a restart, and the old kit still cannot start', async () => {
    const coordFile = join(fed.dir, 'coordinator-revoked.crl.pem');
    writeFileSync(coordFile, listTwo);
    fed.cfg.revocationListFile = coordFile;
    await fed.restartCoordinator();
    expect(fed.logs.join('\n')).toMatch(/coordinator: revocation list .*coordinator-revoked\.crl\.pem: cRLNumber 2, 1 revoked/);
    copyFileSync(listOne, coordFile);
    const mark = fed.logs.length;
    await fed.restartCoordinator();
    const after = fed.logs.slice(mark).join('\n');
    expect(after).toMatch(/coordinator: revocation list refused: .*cRLNumber 1, lower than cRLNumber 2 this holder accepted/);
    expect(after).toMatch(/coordinator: revocation list .*coordinator-revoked\.crl\.pem: cRLNumber 2, 1 revoked/);
    // List 1 does not revoke the old certificate; the list 2 the store holds does.
    await fed.coordinator.close();
    await expect(startCoordinatorProcess({ ...fed.cfg, kit: { caPem: fed.cfg.kit.caPem, ...old } })).rejects.toThrow(
      /the coordinator's own certificate \(serial [0-9A-F]+\) is on the revocation list .* \(keyCompromise\)/,
    );
    fed.coordinator = await startCoordinatorProcess(fed.cfg, { log: () => undefined });
  }, 60_000);
});
