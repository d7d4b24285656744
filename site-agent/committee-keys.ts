// A committee member's BFV key pairs, one per (federation, point), kept in the state folder.
// The secret key never leaves the site; it is written durably before the public key is
// published so that a crash cannot leave a published key without its secret.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Bfv, BfvKeyPair } from '../privacy/crypto/bfv.ts';
import { ensureDirDurable, writeFileDurable } from './audit-log.ts';

function keyDir(stateDir: string, federationId: string, point: number): string {
  const fed = createHash('sha256').update(federationId).digest('hex').slice(0, 16);
  return join(stateDir, 'committee', `${fed}-p${point}`);
}

export function loadOrCreateCommitteeKeys(bfv: Bfv, stateDir: string, federationId: string, point: number): BfvKeyPair {
  const dir = keyDir(stateDir, federationId, point);
  const pub = join(dir, 'bfv-public.key');
  const sec = join(dir, 'bfv-secret.key');
  if (existsSync(pub) && existsSync(sec)) {
    return { publicKey: new Uint8Array(readFileSync(pub)), secretKey: new Uint8Array(readFileSync(sec)) };
  }
  ensureDirDurable(dir);
  const pair = bfv.generateKeyPair();
  writeFileDurable(sec, pair.secretKey);
  writeFileDurable(pub, pair.publicKey);
  return pair;
}

export function loadCommitteeSecretKey(stateDir: string, federationId: string, point: number): Uint8Array {
  const sec = join(keyDir(stateDir, federationId, point), 'bfv-secret.key');
  if (!existsSync(sec))
    throw new Error(`no committee secret key for point ${point}: this site never generated one for federation ${federationId}`);
  return new Uint8Array(readFileSync(sec));
}
