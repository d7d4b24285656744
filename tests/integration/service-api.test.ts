// fedsynth serve end to end inside one process: real HTTP, real gRPC with mTLS, real agents and
// ledgers. Roles, bad input per endpoint, the budget pre-check, a study fitted and a second one
// interrupted by a coordinator restart (resumed, charged once), cohorts while a fit runs and two
// at once, the FHIR Bulk Data export, and the audit log of every request.
import { ledgerRecords } from '../support/crash-windows.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChainLines, verifyChain, type ApiRequestEvent, type AuditEntry } from '../../privacy/audit-log/chain.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil, startTestService, type TestService } from '../support/service.ts';

let t: TestService;
let study1 = '';

beforeAll(async () => {
  t = await startTestService({ siteEpsilon: 4 });
  await pollUntil(t, '/api/v1/budget', (b) => b.sites?.every((s: { registered: boolean }) => s.registered), 30_000);
}, 120_000);
afterAll(async () => t?.close());

const fitted = (id: string) => pollUntil(t, `/api/v1/studies/${id}`, (b) => ['fitted', 'failed'].includes(b.status), 240_000);
const completed = (id: string) => pollUntil(t, `/api/v1/cohorts/${id}`, (b) => ['completed', 'failed'].includes(b.status), 120_000);

describe('authentication and roles', () => {
  it('refuses requests without a valid token and tokens of another role', async () => {
    expect((await t.api('GET', '/api/v1/studies', { token: null })).status).toBe(401);
    expect((await t.api('GET', '/api/v1/studies', { token: 'fsk_0123456789abcdef_' + 'x'.repeat(43) })).status).toBe(401);
    expect((await t.api('GET', '/api/v1/studies', { token: 'not-a-token' })).status).toBe(401);
    const auditorPost = await t.api('POST', '/api/v1/studies', { token: t.tokens.auditor, body: { title: 'x', epsilon: 0.1 } });
    expect(auditorPost.status).toBe(403);
    expect(auditorPost.body.error).toMatch(/role auditor/);
    expect((await t.api('GET', '/api/v1/audit', { token: t.tokens.researcher })).status).toBe(403);
    expect((await t.api('DELETE', '/api/v1/studies')).status).toBe(405);
    expect((await t.api('GET', '/api/v1/nothing')).status).toBe(404);
    expect((await t.api('GET', '/api/v1/openapi.json', { token: null })).status).toBe(200);
  });
});

describe('studies', () => {
  it('rejects bad study bodies with the reason and the valid names', async () => {
    const typo = await t.api('POST', '/api/v1/studies', { body: { title: 'x', epsilon: 0.5, attributes: ['age', 'hypertensoin'] } });
    expect(typo.status).toBe(400);
    expect(typo.body.error).toMatch(/unknown attribute "hypertensoin"/);
    expect(typo.body.valid).toContain('hypertension');
    for (const body of [
      { epsilon: 0.5 },
      { title: 'x', epsilon: -1 },
      { title: 'x', epsilon: '0.5' },
      { title: 'x', epsilon: 0.5, delta: 0.5 },
      { title: 'x', epsilon: 0.5, plan: 'magic' },
      { title: 'x', epsilon: 0.5, attributes: ['age'] },
      { title: 'x', epsilon: 0.5, epsilom: 1 },
    ]) {
      const r = await t.api('POST', '/api/v1/studies', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.length).toBeGreaterThan(5);
    }
    expect((await t.api('POST', '/api/v1/studies', { raw: '{"title": "x", ' })).status).toBe(400);
    expect((await t.api('POST', '/api/v1/studies', { raw: '[1]' })).status).toBe(400);
    const big = await t.api('POST', '/api/v1/studies', { raw: JSON.stringify({ title: 'x'.repeat(100_000), epsilon: 1 }) });
    expect(big.status).toBe(413);
    const noType = await fetch(`${t.url}/api/v1/studies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tokens.researcher}` },
      body: '{}',
    });
    expect(noType.status).toBe(415);
  });

  it('refuses a study no site can afford with 409 naming the site and its remaining ε', async () => {
    const r = await t.api('POST', '/api/v1/studies', { body: { title: 'too much', epsilon: 50 } });
    expect(r.status).toBe(409);
    expect(r.body.site).toMatch(/^hospital-/);
    expect(r.body.remainingEpsilon).toBeGreaterThan(3.9);
    expect(r.body.remainingEpsilon).toBeLessThanOrEqual(4);
    expect(r.body.error).toContain(r.body.site);
  });

  it('fits an approved study: pending → queued/fitting → fitted, with round progress and spend per site', async () => {
    const r = await t.api('POST', '/api/v1/studies', { body: { title: 'first', epsilon: 0.5, plan: 'mst' } });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe('pending-approval');
    study1 = r.body.id;
    expect((await t.api('POST', `/api/v1/studies/${study1}/approve`)).status).toBe(403);
    expect((await t.api('POST', `/api/v1/studies/study-nonexisten/approve`, { token: t.tokens.operator })).status).toBe(404);
    const ok = await t.api('POST', `/api/v1/studies/${study1}/approve`, { token: t.tokens.operator });
    expect(ok.status).toBe(202);
    expect((await t.api('POST', `/api/v1/studies/${study1}/approve`, { token: t.tokens.operator })).status).toBe(409);
    const s = await fitted(study1);
    expect(s.status).toBe('fitted');
    expect(s.progress).toMatchObject({ round: 3, rounds: 3 });
    expect(Object.keys(s.spend).sort()).toEqual(['hospital-a', 'hospital-b', 'hospital-c']);
    for (const x of Object.values(s.spend) as { epsilon: number }[]) expect(x.epsilon).toBeLessThanOrEqual(0.5 + 1e-9);
    const budget = await t.api('GET', '/api/v1/budget', { token: t.tokens.auditor });
    for (const b of budget.body.sites) expect(b.remainingEpsilon).toBeLessThan(4);
  }, 300_000);
});

describe('cohorts', () => {
  it('rejects bad cohort requests: filter typos with the valid names, ages inside a bin, unknown studies', async () => {
    const typo = await t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 10, where: 'sexx=female' } });
    expect(typo.status).toBe(400);
    expect(typo.body.error).toMatch(/unknown attribute "sexx".*sex/);
    const label = await t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 10, where: 'sex=femal' } });
    expect(label.body.error).toMatch(/values: female, male/);
    const inBin = await t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 10, where: 'age>=45' } });
    expect(inBin.status).toBe(400);
    expect(inBin.body.error).toMatch(/cuts inside an age bin.*40, 50/);
    const exact = await t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 10, where: 'age=45' } });
    expect(exact.status).toBe(400);
    for (const body of [
      { study: study1, n: 0 },
      { study: study1, n: 1.5 },
      { study: study1, n: 10, modalities: ['dicom'] },
      { study: study1, n: 10, seed: -1 },
      { n: 10 },
    ]) {
      expect((await t.api('POST', '/api/v1/cohorts', { body })).status, JSON.stringify(body)).toBe(400);
    }
    expect((await t.api('POST', '/api/v1/cohorts', { body: { study: 'study-nope', n: 10 } })).status).toBe(404);
    expect((await t.api('POST', '/api/v1/cohorts', { token: t.tokens.auditor, body: { study: study1, n: 10 } })).status).toBe(403);
  });

  it('writes a cohort while another study fits, and two cohorts requested at once; a restart mid-study resumes with no double charge', async () => {
    const s2 = await t.api('POST', '/api/v1/studies', {
      body: { title: 'second', epsilon: 0.4, plan: 'mst', attributes: ['age', 'sex', 'hypertension', 'type2_diabetes'] },
    });
    expect(s2.status).toBe(201);
    expect((await t.api('POST', `/api/v1/studies/${s2.body.id}/approve`, { token: t.tokens.operator })).status).toBe(202);
    await pollUntil(t, `/api/v1/studies/${s2.body.id}`, (b) => b.status === 'fitting', 30_000);
    const [c1, c2] = await Promise.all([
      t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 80, seed: 4, where: 'age>=60,condition=hypertension' } }),
      t.api('POST', '/api/v1/cohorts', { token: t.tokens.operator, body: { study: study1, n: 60, seed: 5 } }),
    ]);
    expect(c1.status).toBe(202);
    expect(c1.headers.get('location')).toBe(`/api/v1/cohorts/${c1.body.id}`);
    expect(c2.status).toBe(202);
    const [r1, r2] = await Promise.all([completed(c1.body.id), completed(c2.body.id)]);
    expect(r1.status).toBe('completed');
    expect(r2.status).toBe('completed');
    expect((await t.api('GET', `/api/v1/studies/${s2.body.id}`)).body.status).toBe('fitting');
    expect(r1.report.patients).toBeGreaterThan(0);
    expect(r1.report.where.text).toBe('age>=60,condition=hypertension');
    expect(r2.report.fidelity.marginals.length).toBeGreaterThan(0);
    expect(r2.report.fidelity.meanL1VsReleasedMeasurements).toBeGreaterThan(0);

    // Restart the coordinator once study 2 has released a round: it resumes, every site is charged once per round.
    await pollUntil(t, `/api/v1/studies/${s2.body.id}`, (b) => Object.keys(b.spend).length > 0, 120_000);
    await t.restart();
    const done = await fitted(s2.body.id);
    expect(done.status).toBe('fitted');
    for (const x of Object.values(done.spend) as { rounds: number }[]) expect(x.rounds).toBe(3);
    // The sites' own ledgers (read from their files: an answer re-sent from the cache after the
    // restart is not a fresh charge in the agent's list) sum to what the coordinator recorded.
    const budget = (await t.api('GET', '/api/v1/budget')).body.sites as { siteId: string; chargedRho: number }[];
    for (const agent of t.agents) {
      const { siteId: site, stateDir } = (agent as unknown as { cfg: { siteId: string; stateDir: string } }).cfg;
      const records = ledgerRecords(stateDir);
      expect(new Set(records.map((r) => r.taskId)).size).toBe(records.length);
      const ledgerRho = records.reduce((s, r) => s + r.rho, 0);
      expect(ledgerRho).toBeCloseTo(budget.find((b) => b.siteId === site)!.chargedRho, 12);
    }
  }, 400_000);

  it('exports a cohort with FHIR Bulk Data: kick-off, polling, manifest, files with the same token', async () => {
    const c = await t.api('POST', '/api/v1/cohorts', { body: { study: study1, n: 50, seed: 9 } });
    const bad = await t.api('GET', `/fhir/Group/${c.body.id}/$export`, {
      headers: { accept: 'application/json', prefer: 'respond-async' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    expect((await t.api('GET', `/fhir/Group/${c.body.id}/$export`, { headers: { accept: 'application/fhir+json' } })).status).toBe(400);
    expect(
      (await t.api('GET', `/fhir/Group/nope/$export`, { headers: { accept: 'application/fhir+json', prefer: 'respond-async' } })).status,
    ).toBe(404);
    const kick = await t.api('GET', `/fhir/Group/${c.body.id}/$export`, {
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    expect(kick.status).toBe(202);
    const statusPath = new URL(kick.headers.get('content-location')!).pathname;
    let manifest: any;
    for (let i = 0; i < 600; i++) {
      const s = await t.api('GET', statusPath);
      if (s.status === 200) {
        manifest = s.body;
        break;
      }
      expect(s.status).toBe(202);
      expect(s.headers.get('x-progress')).toBeTruthy();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toContain(`/fhir/Group/${c.body.id}/$export`);
    expect(Number.isNaN(Date.parse(manifest.transactionTime))).toBe(false);
    const types = manifest.output.map((o: { type: string }) => o.type);
    expect(types).toContain('Patient');
    const patient = manifest.output.find((o: { type: string }) => o.type === 'Patient');
    const path = new URL(patient.url).pathname;
    expect((await t.api('GET', path, { token: null })).status).toBe(401);
    const file = await t.api('GET', path);
    expect(file.status).toBe(200);
    const lines = String(file.body).trim().split('\n');
    expect(lines.length).toBe(patient.count);
    expect(JSON.parse(lines[0]).resourceType).toBe('Patient');
    const typed = await t.api('GET', `/fhir/Group/${c.body.id}/$export?_type=Patient`, {
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    const m2 = (await t.api('GET', new URL(typed.headers.get('content-location')!).pathname)).body;
    expect(m2.output.map((o: { type: string }) => o.type)).toEqual(['Patient']);
    expect(
      (
        await t.api('GET', `/fhir/Group/${c.body.id}/$export?_type=Patinet`, {
          headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
        })
      ).status,
    ).toBe(400);
    // Report files: only what the report lists.
    expect((await t.api('GET', `/api/v1/cohorts/${c.body.id}/file?path=../../coordinator.yaml`)).status).toBe(404);
    const listed = (await t.api('GET', `/api/v1/cohorts/${c.body.id}`)).body.report.downloads.fhir.paths[0];
    expect((await t.api('GET', `/api/v1/cohorts/${c.body.id}/file?path=${encodeURIComponent(listed)}`)).status).toBe(200);
  }, 120_000);
});

describe('audit log', () => {
  it('records every API request with its requester and the cohort filter, signed and chained', async () => {
    const res = await t.api('GET', '/api/v1/audit', { token: t.tokens.auditor });
    expect(res.status).toBe(200);
    const entries = parseChainLines(String(res.body)) as AuditEntry[];
    const requests = entries.map((e) => e.event).filter((e): e is ApiRequestEvent => e.type === 'api-request');
    expect(
      requests.some((e) => e.filter === 'age>=60,condition=hypertension' && /test researcher/.test(e.requester) && e.status === 202),
    ).toBe(true);
    expect(requests.some((e) => e.requester === 'anonymous' && e.status === 401)).toBe(true);
    expect(requests.some((e) => /test operator/.test(e.requester) && e.path.endsWith('/approve'))).toBe(true);
    expect(requests.some((e) => e.filter === 'sexx=female' && e.status === 400)).toBe(true);
    const certPem = readFileSync(join(t.files.work, 'kits', 'coordinator', 'cert.pem'), 'utf8');
    expect(verifyChain(entries, { coordinator: certPem })).toEqual([]);
  });
});
