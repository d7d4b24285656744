// Child process for tests/unit/ledger-disk-full.test.ts: run under a file-size limit (ulimit -f),
// it charges and refuses tasks in the ledger at argv[2] until the disk refuses a write, then
// reports what happened as one JSON line. Real files, real limit: the kernel cuts the writes.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLedger } from '../../site-agent/ledger.ts';

const dir = process.argv[2];
const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
writeFileSync(join(dir, '..', 'key.pem'), keyPem);
const ledger = openLedger(dir, { audit: { party: 'hospital-a', privateKeyPem: keyPem } });
const out: { charged: number; chargeError?: string; refused: number; refuseError?: string } = { charged: 0, refused: 0 };
for (let i = 0; i < 10_000; i++) {
  try {
    ledger.charge({
      taskId: `t${i}`,
      roundId: `r${i}`,
      federationId: 'fed',
      rho: 0.001,
      mechanism: 'distributed-discrete-gaussian',
      answer: new Uint8Array(600).fill(i % 251),
    });
    out.charged++;
  } catch (err) {
    out.chargeError = (err as Error).message;
    break;
  }
}
for (let i = 0; i < 10_000; i++) {
  try {
    ledger.refuse({ taskId: `q${i}`, roundId: `q${i}`, federationId: 'fed', reason: 'x'.repeat(200) });
    out.refused++;
  } catch (err) {
    out.refuseError = (err as Error).message;
    break;
  }
}
ledger.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
