// gRPC transport for the coordinator: mutual TLS only. The server presents the coordinator
// certificate of its startup kit and *requires* every client to present a certificate that
// chains to the federation CA (the kit's ca.pem); connections without one never reach a handler.
//
// The startup-kit layout is produced by `fedsynth provision`; reading and checking it is shared
// with the site agent through proto/tls-kit.ts.
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { channelOptions } from '../proto/wire.ts';
import { checkKitMaterial, OID_SERVER_AUTH, readKitMaterial, TransportConfigError, type TlsMaterial } from '../proto/tls-kit.ts';

export { readKitMaterial, TransportConfigError, type TlsMaterial };

/** Checks that the material is a coordinator kit: key matches, issued by the CA, serverAuth. */
export function checkCoordinatorMaterial(m: TlsMaterial, where = 'coordinator kit'): void {
  checkKitMaterial(m, where, { oid: OID_SERVER_AUTH, wrongKindHint: 'is not a server (coordinator) certificate; is this a site kit?' });
}

/**
 * Server credentials from the coordinator's startup kit (a directory or its PEM bytes), with
 * client-certificate verification required: a client without a certificate issued by the
 * federation CA fails the TLS handshake.
 */
export function serverCredentialsFromKit(kit: string | TlsMaterial): grpc.ServerCredentials {
  const where = typeof kit === 'string' ? `coordinator kit ${resolve(kit)}` : 'coordinator kit';
  const m = typeof kit === 'string' ? readKitMaterial(kit) : kit;
  checkCoordinatorMaterial(m, where);
  return grpc.ServerCredentials.createSsl(m.ca, [{ cert_chain: m.cert, private_key: m.key }], true);
}

/** A gRPC server with the wire contract's message-size limits. */
export function createGrpcServer(options: grpc.ServerOptions = {}): grpc.Server {
  return new grpc.Server({ ...channelOptions, ...options });
}

/** Binds `server` to `address` (e.g. `127.0.0.1:0`) with mTLS credentials; resolves the bound port. */
export function bindServer(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.bindAsync(address, credentials, (err, port) => {
      if (err) reject(new TransportConfigError(`cannot listen on ${address}: ${err.message}`));
      else resolvePort(port);
    });
  });
}
