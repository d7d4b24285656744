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

/**
 * A member decrypts at most one contributor set per measure round: two different sets of the same
 * round would let their difference reveal what neither release was charged for. The set's digest
 * is written durably before the partial decryption leaves; the same set again (a retried task)
 * is answered again.
 */
export function recordDecryptedSet(stateDir: string, fitId: string, point: number, roundId: string, setDigest: string): void {
  const dir = join(keyDir(stateDir, fitId, point), 'decrypted');
  const file = join(dir, `${createHash('sha256').update(roundId).digest('hex').slice(0, 32)}.set`);
  if (existsSync(file)) {
    const [storedRound, storedDigest] = readFileSync(file, 'utf8').split('\n');
    if (storedRound === roundId && storedDigest === setDigest) return;
    throw new Error(
      `this member already decrypted a different set of contributions for round ${roundId}: a second set could reveal one site's vector`,
    );
  }
  ensureDirDurable(dir);
  writeFileDurable(file, Buffer.from(`${roundId}\n${setDigest}\n`, 'utf8'));
}
