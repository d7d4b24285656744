// gRPC transport for the coordinator: mutual TLS only. The server presents the coordinator
// certificate of its startup kit and *requires* every client to present a certificate that
// chains to the federation CA (the kit's ca.pem); connections without one never reach a handler.
//
// The startup-kit layout is produced by `fedsynth provision` (cli/provision). The coordinator
// layer may not import cli/, so the few checks needed to fail early and clearly on a broken
// kit are made here with node:crypto.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { channelOptions } from '../proto/wire.ts';

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** PEM bytes of a kit: the federation CA, the party's certificate and its private key. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The coordinator's kit is missing, corrupt or not a coordinator kit. */
export class TransportConfigError extends Error {
  override name = 'TransportConfigError';
}

function parseCert(pem: Buffer, what: string): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new TransportConfigError(`${what} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TransportConfigError(`${what} holds a corrupt PEM certificate: ${(err as Error).message}`);
  }
}

function parseKey(pem: Buffer, what: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) throw new TransportConfigError(`${what} is not a PEM private key`);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TransportConfigError(`${what} holds a corrupt PEM private key: ${(err as Error).message}`);
  }
}

/** Reads `ca.pem`, `cert.pem`, `key.pem` from a kit directory, with a clear error for each problem. */
export function readKitMaterial(dir: string): TlsMaterial {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new TransportConfigError(`startup kit directory ${abs} does not exist`);
  const files = ['ca.pem', 'cert.pem', 'key.pem'];
  const missing = files.filter((f) => !existsSync(join(abs, f)));
  if (missing.length > 0) throw new TransportConfigError(`startup kit ${abs} is incomplete: missing ${missing.join(', ')}`);
  return {
    ca: readFileSync(join(abs, 'ca.pem')),
    cert: readFileSync(join(abs, 'cert.pem')),
    key: readFileSync(join(abs, 'key.pem')),
  };
}

/** Checks that the material is a coordinator kit: key matches, issued by the CA, serverAuth. */
export function checkCoordinatorMaterial(m: TlsMaterial, where = 'coordinator kit'): void {
  const ca = parseCert(m.ca, `${where}: ca.pem`);
  const cert = parseCert(m.cert, `${where}: cert.pem`);
  const key = parseKey(m.key, `${where}: key.pem`);
  if (!ca.ca) throw new TransportConfigError(`${where}: ca.pem is not a CA certificate`);
  if (!cert.checkPrivateKey(key)) throw new TransportConfigError(`${where}: key.pem does not match cert.pem`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new TransportConfigError(`${where}: cert.pem was not issued by ca.pem`);
  if (!(cert.keyUsage ?? []).includes(OID_SERVER_AUTH)) {
    throw new TransportConfigError(`${where}: cert.pem is not a server (coordinator) certificate; is this a site kit?`);
  }
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
