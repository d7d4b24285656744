import { afterAll, describe, expect, it } from 'vitest';
import { startTestService, pollUntil, type TestService } from '../support/service.ts';

let t: TestService;
afterAll(async () => t?.close());

describe('smoke', () => {
  it('runs a study', async () => {
    t = await startTestService();
    await pollUntil(t, '/api/v1/budget', (b) => b.sites?.every((s: any) => s.registered), 30_000);
    const r = await t.api('POST', '/api/v1/studies', { body: { title: 's1', epsilon: 0.5, plan: 'mst' } });
    console.log(r.status, r.body);
    const a = await t.api('POST', `/api/v1/studies/${r.body.id}/approve`, { token: t.tokens.operator });
    console.log(a.status, a.body);
    const s = await pollUntil(t, `/api/v1/studies/${r.body.id}`, (b) => ['fitted', 'failed'].includes(b.status), 180_000);
    console.log(JSON.stringify(s, null, 1));
    console.log(t.logs.slice(-30).join('\n'));
    expect(s.status).toBe('fitted');
  }, 300_000);
});
