// Real gRPC over loopback with mutual TLS: the coordinator learns who a site is from its client
// certificate only; other CAs, missing certificates and plaintext are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { addSite, provisionFederation } from '../../pki/index.ts';
import { bindServer, createGrpcServer, serverCredentialsFromKit } from '../../coordinator/transport.ts';
import { PeerIdentityError, createPeerIdentityResolver } from '../../coordinator/peer-identity.ts';
import { clientCredentialsFromKit, createFederationClient } from '../../site-agent/transport.ts';
import { loadFederationService } from '../../proto/wire.ts';
import { RevocationWatcher } from '../../proto/revocation.ts';
import { parseRoster } from '../../proto/roster.ts';
import { revokeCertificates } from '../../pki/rotate.ts';
import { AGENT_EXIT_CODES, classifyCallError } from '../../site-agent/agent-errors.ts';

// proto/wire.ts loads the contract with keepCase (snake_case fields at runtime), while the
// generated TS types are camelCase; this test speaks the runtime shape through loose types.
type Msg = Record<string, any>;
interface FederationClient extends grpc.Client {
  Register(
    req: Msg,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Msg) => void,
  ): grpc.ClientUnaryCall;
  PushResult(
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Msg) => void,
  ): grpc.ClientWritableStream<Msg>;
  FetchPayload(req: Msg, opts: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
}
const loose = (c: grpc.Client) => c as unknown as FederationClient;

const root = mkdtempSync(join(tmpdir(), 'fedsynth-mtls-'));
const fedA = join(root, 'fed-a');
const fedB = join(root, 'fed-b');
let server: grpc.Server;
let target: string;
/** Every identity a handler resolved, in order: proof of which calls reached application code. */
const seen: string[] = [];
const clients: grpc.Client[] = [];

function toStatus(err: unknown): grpc.ServerErrorResponse {
  if (err instanceof PeerIdentityError) return err as unknown as grpc.ServerErrorResponse;
  return { name: 'Error', message: String(err), code: grpc.status.INTERNAL, details: String(err) };
}

/** A tiny Federation implementation whose answers are the caller's certificate identity. */
function handlers(caPem: Buffer): grpc.UntypedServiceImplementation {
  const whoIs = createPeerIdentityResolver(caPem);
  return {
    Register(call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      try {
        const id = whoIs(call);
        seen.push(id.siteId);
        callback(null, { site_id: id.siteId, federation_id: id.federationId, schema_hash: '', coordinator_version: 'test' });
      } catch (err) {
        callback(toStatus(err));
      }
    },
    PullTask(_call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test' });
    },
    FetchPayload(call: grpc.ServerWritableStream<Msg, Msg>) {
      try {
        const id = whoIs(call);
        seen.push(id.siteId);
        call.write({ kind: 'who', data: Buffer.from(id.siteId) });
        call.end();
      } catch (err) {
        call.emit('error', toStatus(err));
      }
    },
    PushResult(call: grpc.ServerReadableStream<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      let id: string;
      try {
        id = whoIs(call).siteId;
        seen.push(id);
      } catch (err) {
        callback(toStatus(err));
        return;
      }
      let bytes = 0;
      call.on('data', (c: Msg) => (bytes += c.data.length));
      call.on('end', () => callback(null, { accepted: true, duplicate: false, message: `${id}:${bytes}` }));
    },
    RefuseTask(_call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test' });
    },
  };
}

function register(client: FederationClient, metadata = new grpc.Metadata(), header = {}): Promise<Msg> {
  return new Promise((resolve, reject) => {
    client.Register(
      {
        header: { federation_id: 'fed-a', schema_hash: 'h', round_id: '', task_id: '', ...header },
        agent_version: 't',
        protocol_version: 1,
      },
      metadata,
      { deadline: Date.now() + 8000 },
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

function track<T extends grpc.Client>(c: T): T {
  clients.push(c);
  return c;
}

function rawClient(creds: grpc.ChannelCredentials): FederationClient {
  const Federation = loadFederationService().fedsynth.v1.Federation;
  return loose(track(new Federation(target, creds)));
}

async function expectRefused(client: FederationClient): Promise<grpc.ServiceError> {
  const before = seen.length;
  const err = (await register(client).then(
    () => {
      throw new Error('the call unexpectedly succeeded');
    },
    (e: grpc.ServiceError) => e,
  )) as grpc.ServiceError;
  // refused at the TLS handshake: the call never reached a handler
  expect(err.code).toBe(grpc.status.UNAVAILABLE);
  expect(seen.length).toBe(before);
  return err;
}

function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

beforeAll(async () => {
  await provisionFederation({ outDir: fedA, federationId: 'fed-a', sites: ['alice', 'bob'], validityDays: 2 });
  // Another federation with a site of the *same name*: its certificate must not pass as ours.
  await provisionFederation({ outDir: fedB, federationId: 'fed-b', sites: ['alice'], validityDays: 2 });
  const coordKit = join(fedA, 'coordinator');
  server = createGrpcServer();
  server.addService(loadFederationService().fedsynth.v1.Federation.service, handlers(readFileSync(join(coordKit, 'ca.pem'))));
  const port = await bindServer(server, '127.0.0.1:0', serverCredentialsFromKit(coordKit));
  target = `127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const c of clients) c.close();
  if (server) await new Promise<void>((r) => server.tryShutdown(() => r()));
  rmSync(root, { recursive: true, force: true });
});

describe('mutual TLS identity', () => {
  it('identifies a site by its client certificate', async () => {
    const alice = loose(track(createFederationClient(target, join(fedA, 'sites/alice'))));
    const res = await register(alice);
    expect(res.site_id).toBe('alice');
    expect(res.federation_id).toBe('fed-a');
    const bob = loose(track(createFederationClient(target, join(fedA, 'sites/bob'))));
    expect((await register(bob)).site_id).toBe('bob');
  });

  it('a site claiming another site in its header or metadata is still itself', async () => {
    const alice = loose(track(createFederationClient(target, join(fedA, 'sites/alice'))));
    const md = new grpc.Metadata();
    md.set('x-fedsynth-site-id', 'bob');
    md.set('site-id', 'bob');
    const res = await register(alice, md, { federation_id: 'fed-a', round_id: 'bob', task_id: 'bob' });
    expect(res.site_id).toBe('alice');
    expect(seen.at(-1)).toBe('alice');
  });

  it('identity also holds on client- and server-streaming calls', async () => {
    const bob = loose(track(createFederationClient(target, join(fedA, 'sites/bob'))));
    const ack = await new Promise<Msg>((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('x-fedsynth-site-id', 'alice');
      const stream = bob.PushResult(md, { deadline: Date.now() + 8000 }, (err, res) => (err ? reject(err) : resolve(res!)));
      stream.write({
        header: { federation_id: 'fed-a', task_id: 'alice' },
        kind: 'contribution',
        total_bytes: 6,
        data: Buffer.from('abc'),
      });
      stream.write({ data: Buffer.from('def') });
      stream.end();
    });
    expect(ack).toMatchObject({ accepted: true, message: 'bob:6' });

    const chunks = await new Promise<Msg[]>((resolve, reject) => {
      const got: Msg[] = [];
      const s = bob.FetchPayload({ header: { federation_id: 'fed-a', task_id: 'alice' } }, { deadline: Date.now() + 8000 });
      s.on('data', (c: Msg) => got.push(c));
      s.on('error', reject);
      s.on('end', () => resolve(got));
    });
    expect(chunks.map((c) => Buffer.from(c.data).toString())).toEqual(['bob']);
  });

  it('refuses a client certificate from another CA (even with the same site name)', async () => {
    const caA = readFileSync(join(fedA, 'ca/ca.pem'));
    const otherAlice = join(fedB, 'sites/alice');
    // The impostor trusts our CA (so the server certificate is fine); only its own cert is foreign.
    const creds = grpc.credentials.createSsl(caA, readFileSync(join(otherAlice, 'key.pem')), readFileSync(join(otherAlice, 'cert.pem')));
    await expectRefused(rawClient(creds));
    // With its own kit it does not even accept our coordinator's certificate.
    await expectRefused(loose(track(createFederationClient(target, otherAlice))));
  });

  it('refuses a client without a certificate: TLS without client cert, and plaintext', async () => {
    const caA = readFileSync(join(fedA, 'ca/ca.pem'));
    await expectRefused(rawClient(grpc.credentials.createSsl(caA)));
    await expectRefused(rawClient(grpc.credentials.createInsecure()));
  });

  it('refuses the coordinator certificate used as a client certificate', async () => {
    const coord = join(fedA, 'coordinator');
    expect(() => clientCredentialsFromKit(coord)).toThrow(/not a site \(client\) certificate/);
    const creds = grpc.credentials.createSsl(
      readFileSync(join(coord, 'ca.pem')),
      readFileSync(join(coord, 'key.pem')),
      readFileSync(join(coord, 'cert.pem')),
    );
    // OpenSSL rejects a serverAuth-only certificate as a TLS client; peer-identity would too.
    await expectRefused(rawClient(creds));
  });

  it('a site added later connects without re-issuing anything', async () => {
    const before = snapshot(fedA);
    await addSite({ outDir: fedA, siteId: 'carol' });
    const after = snapshot(fedA);
    // No certificate or key changes; the only files rewritten are the roster's, now one version
    // later and listing carol, in DIR/ and in every existing site's kit.
    const caPem = readFileSync(join(fedA, 'ca/ca.pem'));
    for (const [f, bytes] of before) {
      if (basename(f) !== 'roster.json') {
        expect(after.get(f)?.equals(bytes), f).toBe(true);
        continue;
      }
      const was = parseRoster(bytes.toString('utf8'), caPem, f);
      const now = parseRoster(after.get(f)!.toString('utf8'), caPem, f);
      expect(now.version, f).toBe(was.version + 1);
      expect(now.sites.map((x) => x.siteId)).toEqual([...was.sites.map((x) => x.siteId), 'carol']);
    }
    expect(after.size).toBe(before.size + 4);
    // the running coordinator (not restarted, same kit) accepts the new site, and old sites still work
    const carol = loose(track(createFederationClient(target, join(fedA, 'sites/carol'))));
    expect((await register(carol)).site_id).toBe('carol');
    const alice = loose(track(createFederationClient(target, join(fedA, 'sites/alice'))));
    expect((await register(alice)).site_id).toBe('alice');
  });
});

describe('transport configuration errors', () => {
  it('server credentials need a coordinator kit', () => {
    expect(() => serverCredentialsFromKit(join(fedA, 'sites/alice'))).toThrow(/not a server \(coordinator\) certificate/);
    expect(() => serverCredentialsFromKit(join(root, 'missing'))).toThrow(/startup kit directory .*missing does not exist/);
    const m = {
      ca: readFileSync(join(fedA, 'ca/ca.pem')),
      cert: readFileSync(join(fedA, 'coordinator/cert.pem')),
      key: readFileSync(join(fedB, 'ca/ca.key')),
    };
    expect(() => serverCredentialsFromKit(m)).toThrow(/key\.pem does not match cert\.pem/);
    expect(() => serverCredentialsFromKit({ ...m, cert: Buffer.from('junk') })).toThrow(/cert\.pem is not a PEM certificate/);
  });

  it('client needs a valid site kit and a host:port target', () => {
    const kit = join(fedA, 'sites/alice');
    for (const bad of ['127.0.0.1', 'localhost:', ':7443', 'host:99999', 'a b:1', '[zz]:1', 'http://x:1']) {
      expect(() => createFederationClient(bad, kit)).toThrow(/invalid coordinator address/);
    }
    for (const ok of ['localhost:7443', '[::1]:7443', 'coord.example.org:443']) track(createFederationClient(ok, kit));
    expect(() =>
      clientCredentialsFromKit({
        ca: readFileSync(join(fedB, 'ca/ca.pem')),
        cert: readFileSync(join(kit, 'cert.pem')),
        key: readFileSync(join(kit, 'key.pem')),
      }),
    ).toThrow(/cert\.pem was not issued by ca\.pem/);
    expect(() =>
      clientCredentialsFromKit({
        ca: readFileSync(join(kit, 'ca.pem')),
        cert: readFileSync(join(kit, 'cert.pem')),
        key: Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      }),
    ).toThrow(/key\.pem holds a corrupt PEM private key/);
  });
});

describe('the site verifies the coordinator too', () => {
  it('checks the coordinator certificate names the host it dials (or the configured override)', async () => {
    const fedC = join(root, 'fed-c');
    await provisionFederation({
      outDir: fedC,
      federationId: 'fed-c',
      sites: ['dora'],
      coordinatorHosts: ['coord.internal'],
      validityDays: 1,
    });
    const srv = createGrpcServer();
    srv.addService(loadFederationService().fedsynth.v1.Federation.service, handlers(readFileSync(join(fedC, 'ca/ca.pem'))));
    try {
      const port = await bindServer(srv, '127.0.0.1:0', serverCredentialsFromKit(join(fedC, 'coordinator')));
      const kit = join(fedC, 'sites/dora');
      // dialled by IP, but the certificate only names coord.internal: the site refuses it
      await expectRefused(loose(track(createFederationClient(`127.0.0.1:${port}`, kit))));
      const ok = loose(track(createFederationClient(`127.0.0.1:${port}`, kit, { serverNameOverride: 'coord.internal' })));
      expect((await register(ok)).site_id).toBe('dora');
    } finally {
      srv.forceShutdown();
    }
  });

  it("refuses a coordinator whose certificate is on the federation's revocation list, and stops with the TLS exit code", async () => {
    const fedD = join(root, 'fed-d');
    await provisionFederation({ outDir: fedD, federationId: 'fed-a', sites: ['erin'], validityDays: 1 });
    const srv = createGrpcServer();
    srv.addService(loadFederationService().fedsynth.v1.Federation.service, handlers(readFileSync(join(fedD, 'ca/ca.pem'))));
    try {
      const port = await bindServer(srv, '127.0.0.1:0', serverCredentialsFromKit(join(fedD, 'coordinator')));
      const kit = join(fedD, 'sites/erin');
      const caPem = readFileSync(join(fedD, 'ca/ca.pem'), 'utf8');
      const { file } = await revokeCertificates({ outDir: fedD, certPems: [] });
      const watcher = await RevocationWatcher.open(file, caPem, { intervalMs: 0 });
      try {
        const checks = { revoked: (serial: string) => watcher.current().lookup(serial) };
        // Not revoked yet: the same checks let the handshake through.
        const before = loose(track(createFederationClient(`127.0.0.1:${port}`, kit, { serverCertificate: checks })));
        expect((await register(before)).site_id).toBe('erin');
        await revokeCertificates({
          outDir: fedD,
          certPems: [readFileSync(join(fedD, 'coordinator/cert.pem'), 'utf8')],
          reason: 'keyCompromise',
        });
        await watcher.refresh();
        expect(watcher.current().size).toBe(1);
        const after = loose(track(createFederationClient(`127.0.0.1:${port}`, kit, { serverCertificate: checks })));
        const err = await expectRefused(after);
        expect(err.details).toMatch(
          /coordinator's certificate \(serial [0-9A-F]+\) is on the federation's revocation list since .* \(keyCompromise\)/,
        );
        const verdict = classifyCallError('register', err, `127.0.0.1:${port}`);
        expect(verdict.action).toBe('stop');
        if (verdict.action === 'stop') expect(verdict.error.exitCode).toBe(AGENT_EXIT_CODES.tls);
      } finally {
        watcher.close();
      }
    } finally {
      srv.forceShutdown();
    }
  });
});
