// A round's upload is not capped by gRPC's per-message limit: bodies far larger than 4 MiB
// stream through in chunks over mutual TLS, while a single oversized message is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { provisionFederation } from '../../pki/index.ts';
import { bindServer, createGrpcServer, serverCredentialsFromKit } from '../../coordinator/transport.ts';
import { createFederationClient } from '../../site-agent/transport.ts';
import { loadFederationService, sliceBody, CHUNK_BYTES, MAX_BODY_BYTES } from '../../proto/wire.ts';
import { receiveBody } from '../../coordinator/chunks.ts';
import type { FederationClient } from '../../proto/generated/fedsynth/v1/Federation.ts';
import type { Chunk__Output } from '../../proto/generated/fedsynth/v1/Chunk.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-chunks-'));
let server: grpc.Server;
let client: FederationClient;

beforeAll(async () => {
  await provisionFederation({ outDir: root, federationId: 'chunks', sites: ['hospital-a'], validityDays: 1 });
  server = createGrpcServer();
  server.addService(loadFederationService().fedsynth.v1.Federation.service, {
    PushResult(call: grpc.ServerReadableStream<Chunk__Output, unknown>, cb: grpc.sendUnaryData<unknown>) {
      receiveBody(call as AsyncIterable<Chunk__Output>, MAX_BODY_BYTES).then(
        (b) => cb(null, { accepted: true, duplicate: false, message: `${b.body.length}:${b.sha256}` }),
        (e: Error) => cb({ code: grpc.status.INVALID_ARGUMENT, details: e.message }),
      );
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await bindServer(server, '127.0.0.1:0', serverCredentialsFromKit(join(root, 'coordinator')));
  client = createFederationClient(`localhost:${port}`, join(root, 'sites', 'hospital-a'));
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
  rmSync(root, { recursive: true, force: true });
});

function upload(body: Buffer, chunkBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = client.PushResult((err, res) => (err ? reject(err) : resolve(res!.message)));
    let first = true;
    for (const slice of sliceBody(body, chunkBytes)) {
      call.write({
        header: first ? { federation_id: 'chunks', schema_hash: 'x', round_id: 'r', task_id: 't' } : null,
        kind: first ? 'contribution' : '',
        total_bytes: first ? String(body.length) : '0',
        sha256: first ? createHash('sha256').update(body).digest('hex') : '',
        data: Buffer.from(slice),
      });
      first = false;
    }
    call.end();
  });
}

describe('chunked uploads over mTLS', () => {
  it('streams a 24 MiB body (six times the default 4 MiB message limit) intact', async () => {
    const body = randomBytes(24 * 1024 * 1024);
    const res = await upload(body, CHUNK_BYTES);
    expect(res).toBe(`${body.length}:${createHash('sha256').update(body).digest('hex')}`);
  });

  it('refuses one message larger than the per-message limit', async () => {
    await expect(upload(randomBytes(5 * 1024 * 1024), 5 * 1024 * 1024)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });
});
