// `fedsynth audit export --config coordinator.yaml --out FILE.jsonl`: the federation's signed log
// exactly as stored, with the coordinator's certificate next to it; `audit verify` accepts it
// against the CA and rejects it once a byte changes.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareFederation } from '../../cli/demo.ts';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { openStore } from '../../coordinator/store/index.ts';
import { taskIssuedEvent } from '../../coordinator/audit.ts';
import { certSidecar, runAuditExport, runAuditVerify } from '../../cli/audit/verify.ts';
import { pgliteSnapshot } from '../support/db.ts';

const work = mkdtempSync(join(tmpdir(), 'fedsynth-export-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const io = { out: () => undefined, err: () => undefined };

describe('fedsynth audit export', () => {
  it('writes the stored signed chain and the coordinator certificate; verify accepts it and catches a flipped byte', async () => {
    const files = await prepareFederation({
      work,
      sites: 2,
      patients: 20,
      cohortSize: 10,
      epsilon: 1,
      delta: 1e-9,
      seed: 1,
      outDir: join(work, 'out'),
      // The export reads the store, not the sites' data: FHIR-only sites are enough.
      multimodal: false,
    });
    const cfg = parseCoordinatorConfig(files.coordinatorConfig);
    if (cfg.storage.kind !== 'pglite') throw new Error('demo config uses pglite');
    const store = await openStore({ pglite: cfg.storage.dataDir, initFrom: await pgliteSnapshot() });
    store.setAuditSigner({ party: 'coordinator', privateKeyPem: cfg.kit.keyPem });
    for (const site of cfg.sites) {
      await store.appendAudit(
        cfg.federationId,
        taskIssuedEvent({
          federationId: cfg.federationId,
          roundId: 'm1',
          taskId: `t-${site}`,
          siteId: site,
          kind: 'measure',
          spec: { measure: { x: 1 } },
        }),
      );
    }
    await store.appendAudit(cfg.federationId, {
      type: 'task-refused',
      federationId: cfg.federationId,
      roundId: 'm1',
      taskId: `t-${cfg.sites[1]}`,
      site: cfg.sites[1],
      reason: "quorum 2 is below this site's minimum 3",
    });
    await store.close();

    const out = join(work, 'coord.jsonl');
    expect(await runAuditExport(['--config', files.coordinatorConfig, '--out', out], io)).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(readFileSync(certSidecar(out), 'utf8')).toBe(cfg.kit.certPem);
    const ca = join(work, 'kits', 'ca', 'ca.pem');
    expect(await runAuditVerify(['--log', out, '--ca', ca], io)).toBe(0);

    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, `${lines.map((l, i) => (i === 1 ? l.replace('"t-', '"T-') : l)).join('\n')}\n`);
    writeFileSync(certSidecar(bad), cfg.kit.certPem);
    expect(await runAuditVerify(['--log', bad, '--ca', ca], io)).toBe(1);
  });
});
