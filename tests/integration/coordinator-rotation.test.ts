// `fedsynth provision rotate-coordinator` over real gRPC with mutual TLS on loopback: a site's kit,
// unchanged, connects to the coordinator before and after the rotation (the coordinator restarted
// with the new kit); with the old certificate revoked, an agent given the federation's revocation
// list refuses a coordinator still presenting it; a site that pins the coordinator's fingerprint
// refuses the new one until its policy lists it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { provisionFederation } from '../../pki/index.ts';
import { rotateCoordinator, type RotateCoordinatorResult } from '../../pki/rotate-coordinator.ts';
import { REVOCATION_FILE, revokeCertificates } from '../../pki/rotate.ts';
import { bindServer, createGrpcServer, serverCredentialsFromKit } from '../../coordinator/transport.ts';
import { createPeerIdentityResolver, PeerIdentityError } from '../../coordinator/peer-identity.ts';
import { createFederationClient, type ServerCertificateChecks } from '../../site-agent/transport.ts';
import { loadFederationService } from '../../proto/wire.ts';
import { normaliseSerial, RevocationWatcher } from '../../proto/revocation.ts';
import { AGENT_EXIT_CODES, classifyCallError } from '../../site-agent/agent-errors.ts';
import { certificateFingerprint, checkDecryptTask, parsePolicy } from '../../site-agent/policy.ts';
import type { TlsMaterial } from '../../proto/tls-kit.ts';
import { startCoordinator as startCoordinatorProcess } from '../../coordinator/coordinator.ts';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { parseSchema } from '../../schema/schema.ts';

type Msg = Record<string, any>;
interface RegisterClient extends grpc.Client {
  Register(
    req: Msg,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Msg) => void,
  ): grpc.ClientUnaryCall;
}

const root = mkdtempSync(join(tmpdir(), 'fedsynth-coord-rotation-'));
const fed = join(root, 'fed');
const siteKit = join(fed, 'sites', 'hospital-a');
const clients: grpc.Client[] = [];
let caPem: string;
let oldCertPem: string;
let oldKeyPem: string;
let rotated: RotateCoordinatorResult;

/** A coordinator endpoint whose Register answers with the caller's certificate identity, as the real one derives it. */
async function startCoordinator(kit: string | TlsMaterial): Promise<{ target: string; stop: () => void }> {
  const whoIs = createPeerIdentityResolver(Buffer.from(caPem));
  const server = createGrpcServer();
  server.addService(loadFederationService().fedsynth.v1.Federation.service, {
    Register(call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      try {
        const id = whoIs(call);
        callback(null, { site_id: id.siteId, federation_id: id.federationId, schema_hash: '', coordinator_version: 'test' });
      } catch (err) {
        callback(err instanceof PeerIdentityError ? (err as unknown as grpc.ServerErrorResponse) : { code: grpc.status.INTERNAL });
      }
    },
  });
  const port = await bindServer(server, '127.0.0.1:0', serverCredentialsFromKit(kit));
  return { target: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** Registers with the site's unchanged kit, through the agent's transport and its checks of the coordinator. */
function register(target: string, checks: ServerCertificateChecks, serverNameOverride?: string): Promise<Msg> {
  const client = createFederationClient(target, siteKit, {
    serverCertificate: checks,
    ...(serverNameOverride ? { serverNameOverride } : {}),
  }) as unknown as RegisterClient;
  clients.push(client);
  return new Promise((resolve, reject) => {
    client.Register(
      { header: { federation_id: 'rot', schema_hash: 'h', round_id: '', task_id: '' }, agent_version: 't', protocol_version: 1 },
      new grpc.Metadata(),
      { deadline: Date.now() + 8000 },
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

beforeAll(async () => {
  await provisionFederation({ outDir: fed, federationId: 'rot', sites: ['hospital-a'], validityDays: 2 });
  caPem = readFileSync(join(fed, 'ca/ca.pem'), 'utf8');
  oldCertPem = readFileSync(join(fed, 'coordinator/cert.pem'), 'utf8');
  oldKeyPem = readFileSync(join(fed, 'coordinator/key.pem'), 'utf8');
  // An empty list first, so the agent side watches a file from the start, as a configured agent does.
  await revokeCertificates({ outDir: fed, certPems: [] });
});

afterAll(() => {
  for (const c of clients) c.close();
  rmSync(root, { recursive: true, force: true });
});

describe('rotating the coordinator certificate', () => {
  it('the same site kit connects before and after the rotation; the old pair stays usable until revoked', async () => {
    const seen: string[] = [];
    const checks: ServerCertificateChecks = { onServerCertificate: (fp) => seen.push(fp) };
    const before = await startCoordinator(join(fed, 'coordinator'));
    try {
      expect((await register(before.target, checks)).site_id).toBe('hospital-a');
    } finally {
      before.stop();
    }

    rotated = await rotateCoordinator({ outDir: fed, validityDays: 30 });
    const after = await startCoordinator(join(fed, 'coordinator'));
    try {
      expect((await register(after.target, checks)).site_id).toBe('hospital-a');
    } finally {
      after.stop();
    }
    // The agent saw the old certificate, then the new one.
    expect(seen.at(0)).toBe(certificateFingerprint(oldCertPem));
    expect(seen.at(-1)).toBe(certificateFingerprint(readFileSync(join(fed, 'coordinator/cert.pem'))));
    expect(seen.at(-1)).toBe(rotated.newFingerprint256.replace(/:/g, '').toLowerCase());

    // Not revoked: the kept pair still serves (the way back, until the operator revokes it).
    const back = await startCoordinator({
      ca: Buffer.from(caPem),
      cert: readFileSync(rotated.previousCertPath),
      key: readFileSync(rotated.previousKeyPath!),
    });
    try {
      expect(readFileSync(rotated.previousCertPath, 'utf8')).toBe(oldCertPem);
      expect(readFileSync(rotated.previousKeyPath!, 'utf8')).toBe(oldKeyPem);
      expect((await register(back.target, checks)).site_id).toBe('hospital-a');
    } finally {
      back.stop();
    }
  });

  it('once the old certificate is revoked, an agent with the revocation list refuses it and stops with the TLS exit code, and accepts the new one', async () => {
    const watcher = await RevocationWatcher.open(join(fed, REVOCATION_FILE), caPem, { intervalMs: 0 });
    try {
      const checks: ServerCertificateChecks = { revoked: (serial) => watcher.current().lookup(serial) };
      const r = await rotateCoordinator({ outDir: fed, validityDays: 30, revokeOld: true, reason: 'keyCompromise' });
      await watcher.refresh();
      expect(watcher.current().size).toBe(1);
      // A coordinator (or whoever holds the leaked key) still presenting the revoked certificate.
      const stale = await startCoordinator({
        ca: Buffer.from(caPem),
        cert: readFileSync(r.previousCertPath),
        key: readFileSync(r.previousKeyPath!),
      });
      try {
        const err = (await register(stale.target, checks).then(
          () => {
            throw new Error('the revoked coordinator certificate was accepted');
          },
          (e: grpc.ServiceError) => e,
        )) as grpc.ServiceError;
        expect(err.code).toBe(grpc.status.UNAVAILABLE);
        expect(err.details).toMatch(
          new RegExp(
            `coordinator's certificate \\(serial ${normaliseSerial(r.oldSerial)}\\) is on the federation's revocation list since .* \\(keyCompromise\\)`,
          ),
        );
        const verdict = classifyCallError('register', err, stale.target);
        expect(verdict.action).toBe('stop');
        if (verdict.action === 'stop') expect(verdict.error.exitCode).toBe(AGENT_EXIT_CODES.tls);
      } finally {
        stale.stop();
      }
      const fresh = await startCoordinator(join(fed, 'coordinator'));
      try {
        expect((await register(fresh.target, checks)).site_id).toBe('hospital-a');
      } finally {
        fresh.stop();
      }
    } finally {
      watcher.close();
    }
  });

  it('new host names: the site checks the name it dials against the new certificate', async () => {
    await rotateCoordinator({ outDir: fed, hosts: ['coord.internal'], validityDays: 30 });
    const srv = await startCoordinator(join(fed, 'coordinator'));
    try {
      // Dialled by IP, which the new certificate no longer names: refused at the handshake.
      await expect(register(srv.target, {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect((await register(srv.target, {}, 'coord.internal')).site_id).toBe('hospital-a');
    } finally {
      srv.stop();
    }
  });

  it('a site that pins the coordinator refuses the rotated one until its policy lists the new fingerprint', async () => {
    let presented: string | undefined;
    const srv = await startCoordinator(join(fed, 'coordinator'));
    try {
      await register(srv.target, { onServerCertificate: (fp) => (presented = fp) }, 'coord.internal');
    } finally {
      srv.stop();
    }
    const oldPin = certificateFingerprint(oldCertPem);
    const current = certificateFingerprint(readFileSync(join(fed, 'coordinator/cert.pem')));
    expect(presented).toBe(current);
    const policy = (pins: string[]) => parsePolicy({ epsilon: 1, delta: 1e-9, coordinatorFingerprint: pins });
    expect(checkDecryptTask(policy([oldPin]), { contributors: 3 }, { federationId: 'rot', coordinatorFingerprint: presented })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^coordinator certificate fingerprint [0-9a-f]{64} does not match the fingerprint this site trusts/),
    });
    // During the switch a site lists both; afterwards the new one alone.
    expect(
      checkDecryptTask(policy([oldPin, current]), { contributors: 3 }, { federationId: 'rot', coordinatorFingerprint: presented }),
    ).toEqual({ ok: true });
    expect(checkDecryptTask(policy([current]), { contributors: 3 }, { federationId: 'rot', coordinatorFingerprint: presented })).toEqual({
      ok: true,
    });
  });
});

describe('a real coordinator and site agent across a coordinator rotation', () => {
  let fed: TestFederation;
  const SITE = 'hospital-a';
  const registrations = () => fed.logs.filter((l) => l === `coordinator: site ${SITE} registered (agent 0.1.0)`).length;
  async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
    for (const end = Date.now() + ms; Date.now() < end;) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}; log:\n${fed.logs.slice(-20).join('\n')}`);
  }
  async function untilAsync(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
    for (const end = Date.now() + ms; Date.now() < end;) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}; log:\n${fed.logs.slice(-20).join('\n')}`);
  }
  const kitOf = (certPem: string, keyPem: string) => ({ caPem: fed.cfg.kit.caPem, certPem, keyPem });

  beforeAll(async () => {
    fed = await startTestFederation({ sites: 1, patients: 40, manualSites: [SITE], agentRetryMaxMs: 300 });
    // The agent is given the federation's revocation list (empty so far), as an operator configures it.
    const { file } = await revokeCertificates({ outDir: fed.kitsDir, certPems: [] });
    fed.siteCfgs[SITE].revocationListFile = file;
    // What a fit's start records first: sites register into an existing federation (the rows survive restarts).
    await fed.coordinator.store.upsertFederation({
      id: fed.cfg.federationId,
      schemaHash: fed.cfg.schemaHash,
      schema: parseSchema(fed.cfg.schemaText),
    });
    fed.startAgent(SITE);
  }, 120_000);

  afterAll(async () => {
    await fed?.close();
  });

  it('the agent registers with the old certificate and keeps reaching the coordinator restarted with the new one; the old one revoked, it stops rather than talk to it', async () => {
    await until('the first registration', () => registrations() === 1);
    const old = { cert: fed.cfg.kit.certPem, key: fed.cfg.kit.keyPem };

    const r = await rotateCoordinator({ outDir: fed.kitsDir, revokeOld: true, reason: 'keyCompromise' });
    const coordKit = join(fed.kitsDir, 'coordinator');
    fed.cfg.kit = kitOf(readFileSync(join(coordKit, 'cert.pem'), 'utf8'), readFileSync(join(coordKit, 'key.pem'), 'utf8'));
    fed.cfg.revocationListFile = r.revokedIn;
    const restartAt = Date.now();
    await fed.restartCoordinator();
    // The same agent, the same kit: it lost the coordinator and dialled again; its next pull passed
    // the handshake with the new certificate (it registers again when that long poll returns).
    await untilAsync('a pull from the agent after the restart', async () => {
      const site = (await fed.coordinator.store.listSites(fed.cfg.federationId)).find((x) => x.siteId === SITE);
      return site !== undefined && site.lastSeenAt.getTime() >= restartAt;
    });

    // The coordinator will not start again on the old kit while it has the list that revokes it.
    await fed.coordinator.close();
    await expect(startCoordinatorProcess({ ...fed.cfg, kit: kitOf(old.cert, old.key) })).rejects.toThrow(
      new RegExp(
        `the coordinator's own certificate \\(serial ${normaliseSerial(r.oldSerial)}\\) is on the revocation list .* \\(keyCompromise\\): agents given the list refuse it`,
      ),
    );
    // Whoever holds the old key, without the list: the agent, once it re-read its list (within 5 s), refuses the handshake and stops.
    await until('the agent re-reading its revocation list', () =>
      fed.logs.some((l) => l.startsWith(`${SITE}: revocation list `) && /accepted: cRLNumber \d+, 1 revoked certificate\(s\)$/.test(l)),
    );
    const staleLog: string[] = [];
    fed.coordinator = await startCoordinatorProcess(
      { ...fed.cfg, kit: kitOf(old.cert, old.key), revocationListFile: undefined },
      { log: (l) => staleLog.push(l) },
    );
    await fed.agentRuns[SITE];
    expect(fed.logs.join('\n')).toMatch(
      new RegExp(
        `${SITE}: agent stopped: .*coordinator's certificate \\(serial ${normaliseSerial(r.oldSerial)}\\) is on the federation's revocation list`,
      ),
    );
    // No call of the agent reached the coordinator that presented the revoked certificate.
    expect(staleLog.some((l) => l.includes(SITE))).toBe(false);
    expect(staleLog.join('\n')).toMatch(/listening on port/);

    // Back on the new kit, the agent started again with its unchanged kit and state registers.
    await fed.restartCoordinator();
    const before = registrations();
    fed.startAgent(SITE);
    await until('the registration of the restarted agent', () => registrations() === before + 1);
  }, 120_000);
});
