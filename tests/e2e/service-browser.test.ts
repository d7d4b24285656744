// The service as deployed, driven by people: `fedsynth serve` and three agents as separate
// processes (gRPC with mTLS on loopback), tokens from `fedsynth token create`, a researcher and an
// operator in a real headless Chromium (the web page), the CLI client, and a coordinator killed
// with SIGKILL in the middle of a study and restarted: the study resumes, no site is charged twice.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { prepareFederation, spawnFedsynth, exited } from '../../cli/demo.ts';
import { freePort } from '../support/federation.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { seedPgliteDir } from '../support/db.ts';

const CHROMIUM = process.env.FEDSYNTH_CHROMIUM ?? '/usr/bin/chromium';
const work = mkdtempSync(join(tmpdir(), 'fedsynth-svc-e2e-'));
const children: ChildProcess[] = [];
let browser: BrowserContext | undefined;

afterAll(async () => {
  await browser?.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (!process.env.FEDSYNTH_KEEP_E2E) rmSync(work, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const child = spawnFedsynth(args, (l) => out.push(l));
  return { code: await exited(child), out };
}

async function waitForLine(lines: string[], pattern: RegExp, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!lines.some((l) => pattern.test(l))) {
    if (Date.now() > until) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const started = Date.now();
/** Phase times on stderr: where this test spends its minutes. */
const mark = (phase: string) => process.stderr.write(`[service e2e ${((Date.now() - started) / 1000).toFixed(1)} s] ${phase}\n`);

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.fill('#token', token);
  await page.click('#signin-form button');
  await page.waitForSelector('#app:not(.hidden)');
}

describe.skipIf(!existsSync(CHROMIUM))('the service in a browser (separate processes)', () => {
  it('a researcher requests a study and a filtered cohort, an operator approves, the report shows plots and previews', async () => {
    const files = await prepareFederation({
      work,
      outDir: join(work, 'out'),
      sites: 3,
      patients: 100,
      cohortSize: 50,
      epsilon: 1,
      delta: 1e-9,
      seed: 8,
      deadlineSeconds: 40,
      simImageSize: 32,
    });
    const httpPort = await freePort();
    mark('federation files prepared');
    const url = `http://127.0.0.1:${httpPort}`;
    const raw = YAML.parse(readFileSync(files.coordinatorConfig, 'utf8'));
    raw.http = { listen: `127.0.0.1:${httpPort}` };
    writeFileSync(files.coordinatorConfig, YAML.stringify(raw));
    for (const path of Object.values(files.siteConfigs)) {
      const site = YAML.parse(readFileSync(path, 'utf8'));
      site.policy.epsilon = 4;
      writeFileSync(path, YAML.stringify(site));
    }
    // The store starts as a copy of the cached migrated database (as the other store tests do), so
    // the first `token create` does not spend its time in PGlite's initdb.
    await seedPgliteDir(raw.storage.pglite);
    const tokens: Record<string, string> = {};
    // A bad role is refused before the store is opened, so it runs beside the first key; the keys
    // themselves are made one after the other (a PGlite store takes one process at a time).
    const badRole = run(['token', 'create', '--config', files.coordinatorConfig, '--role', 'admin', '--name', 'x']);
    for (const role of ['researcher', 'operator']) {
      const r = await run(['token', 'create', '--config', files.coordinatorConfig, '--role', role, '--name', `e2e ${role}`]);
      expect(r.code).toBe(0);
      tokens[role] = r.out.find((l) => l.startsWith('fsk_'))!;
    }
    expect((await badRole).code).toBe(2);

    const lines: string[] = [];
    const startServe = () => {
      const c = spawnFedsynth(['serve', '--config', files.coordinatorConfig], (l) => lines.push(`serve: ${l}`));
      children.push(c);
      return c;
    };
    let serve = startServe();
    mark('tokens created');
    const agents = Object.entries(files.siteConfigs).map(([site, cfg]) => {
      const c = spawnFedsynth(['agent', '--config', cfg], (l) => lines.push(`${site}: ${l}`));
      children.push(c);
      return c;
    });

    // A fresh profile; sessionStorage is per tab, so the two people sign in independently.
    browser = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const researcher = await browser.newPage();
    const operator = await browser.newPage();
    const pageErrors: string[] = [];
    for (const p of [researcher, operator]) p.on('pageerror', (e) => pageErrors.push(e.message));

    // Wait for the serve process to listen, then sign in; a wrong token is refused on the page.
    await waitForLine(lines, /HTTP API and web page/, 90_000);
    await researcher.goto(url);
    await researcher.fill('#token', 'fsk_wrong');
    await researcher.click('#signin-form button');
    // (Polled from the test: the page's CSP forbids the string evaluation waitForFunction uses.)
    await researcher.waitForSelector('#signin-error:has-text("Sign-in failed")');
    await signIn(researcher, url, tokens.researcher);
    mark('serve listening, wrong token refused');
    await expect
      .poll(
        async () =>
          (await researcher.locator('#budget tbody tr').count()) === 3 &&
          !(await researcher.textContent('#budget tbody'))!.includes('not registered'),
        { timeout: 60_000 },
      )
      .toBe(true);

    // A study on a cross-modal subset of the schema, with a typo caught by the API first.
    await researcher.fill('#study-title', 'pneumonia imaging');
    await researcher.fill('#study-epsilon', '100');
    await researcher.click('#study-form button');
    await researcher.waitForSelector('#study-result.error');
    expect(await researcher.textContent('#study-result')).toMatch(/ε [0-9.]+ left/);
    await researcher.fill('#study-epsilon', '0.5');
    await researcher.selectOption('#study-plan', 'mst');
    for (const a of ['age', 'sex', 'pneumonia', 'img_opacity', 'snp_tcf7l2', 'note_hypertension'])
      await researcher.check(`input[data-attr][value="${a}"]`);
    await researcher.click('#study-form button');
    await researcher.waitForSelector('#study-result.ok');
    const studyId = (await researcher.textContent('#study-result'))!.match(/study-[a-z0-9]+/)![0];
    mark('study requested');
    expect(await researcher.locator(`[data-approve]`).count()).toBe(0);

    await signIn(operator, url, tokens.operator);
    await operator.click(`button[data-approve="${studyId}"]`);
    await researcher.waitForSelector(`tr[data-study="${studyId}"][data-status="fitting"]`, { timeout: 30_000 });

    // SIGKILL the coordinator once a round has been charged; restart it; the page keeps polling.
    await waitForLine(lines, /charged ρ/, 90_000);
    mark('study fitting');
    serve.kill('SIGKILL');
    await exited(serve);
    serve = startServe();
    mark('serve killed');
    // While the restarted serve holds the store, the CLI may not write keys into it.
    const whileServing = (async () => {
      const until = Date.now() + 120_000;
      while (lines.filter((l) => /^serve: .*HTTP API and web page/.test(l)).length < 2 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 200));
      return run(['token', 'create', '--config', files.coordinatorConfig, '--role', 'researcher', '--name', 'while serving']);
    })();
    await researcher.waitForSelector(`tr[data-study="${studyId}"][data-status="fitted"]`, { timeout: 120_000 });
    mark('study fitted');
    const refused = await whileServing;
    expect(refused.code).toBe(1);
    expect(refused.out.join('\n')).toMatch(/cannot create keys now: the store .* is in use by fedsynth serve/);

    // The CLI client sees the same study (checked below, while the page requests a cohort).
    const statusRun = run(['study', 'status', studyId, '--url', url, '--token', tokens.researcher, '--json']);

    // A filtered cohort: a typo first (400 shown on the page with the valid names), then a valid one.
    await researcher.selectOption('#cohort-study', studyId);
    await researcher.fill('#cohort-n', '60');
    await researcher.fill('#cohort-where', 'sexx=female');
    await researcher.click('#cohort-form button');
    await researcher.waitForSelector('#cohort-result.error');
    expect(await researcher.textContent('#cohort-result')).toMatch(/unknown attribute "sexx".*sex/);
    await researcher.fill('#cohort-where', 'age>=40');
    await researcher.click('#cohort-form button');
    await researcher.waitForSelector('#cohort-result.ok');
    const cohortId = (await researcher.textContent('#cohort-result'))!.match(/cohort-[a-z0-9]+/)![0];
    mark('cohort requested');
    const status = await statusRun;
    expect(status.code).toBe(0);
    const study = JSON.parse(status.out.join('\n'));
    expect(study.status).toBe('fitted');
    // The declared structure's three rounds (cross-modal, clinical, age-band queries) plus MST's three; every site charged once per round.
    expect(study.progress.round).toBe(6);
    for (const x of Object.values(study.spend) as { rounds: number }[]) expect(x.rounds).toBe(6);
    await researcher.click(`button[data-report="${cohortId}"]`, { timeout: 90_000 });
    await researcher.waitForSelector('#report:not(.hidden)');
    mark('cohort report open');
    // The CLI downloads it (checked below) while the page's report is checked.
    const out = join(work, 'download');
    const download = run(['cohort', 'download', cohortId, '--url', url, '--token', tokens.researcher, '--out', out]);
    expect(await researcher.locator('#plot-marginals svg rect').count()).toBeGreaterThan(4);
    expect(await researcher.locator('#plot-spend svg polyline').count()).toBe(3);
    await expect
      .poll(() => researcher.locator('#preview-radiograph').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), {
        timeout: 30_000,
      })
      .toBeGreaterThan(0);
    expect(await researcher.textContent('#preview-vcf')).toMatch(/#CHROM/);
    expect((await researcher.textContent('#preview-note'))!.length).toBeGreaterThan(20);
    await researcher.click('#bulk-export');
    await researcher.waitForSelector('#bulk-files li[data-type="Patient"]', { timeout: 30_000 });
    expect(pageErrors).toEqual([]);

    mark('page checks done');
    // The CLI downloads it through FHIR Bulk Data, with the DICOM, VCF and note files of the report.
    const dl = await download;
    expect(dl.code, dl.out.join('\n')).toBe(0);
    expect(
      readFileSync(join(out, 'fhir', 'Patient.ndjson'), 'utf8')
        .trim()
        .split('\n').length,
    ).toBeGreaterThan(0);
    expect(readdirSync(join(out, 'dicom'), { recursive: true }).some((f) => String(f).endsWith('.dcm'))).toBe(true);
    expect(existsSync(join(out, 'vcf', 'cohort.vcf'))).toBe(true);

    mark('download done');
    // No double charge across the SIGKILL: each site's ledger equals the coordinator's record.
    const budget = (await (await fetch(`${url}/api/v1/budget`, { headers: { authorization: `Bearer ${tokens.operator}` } })).json()) as {
      sites: { siteId: string; chargedRho: number }[];
    };
    serve.kill('SIGTERM');
    for (const a of agents) a.kill('SIGTERM');
    await Promise.all([exited(serve), ...agents.map(exited)]);
    for (const [site, cfg] of Object.entries(files.siteConfigs)) {
      const state = YAML.parse(readFileSync(cfg, 'utf8')).state as string;
      const ledger = openLedger(state);
      expect(ledger.totalRho()).toBeCloseTo(budget.sites.find((b) => b.siteId === site)!.chargedRho, 12);
      ledger.close();
    }
  }, 360_000);
});
