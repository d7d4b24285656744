// `fedsynth audit canary --federation` as an auditor runs it: the CLI in its own process, which
// provisions a temporary federation (cli/audit/audited-federation.ts `withAuditFederation`) and runs
// the coordinator and one agent per site as further processes over gRPC with mutual TLS. Each run
// gets a TMPDIR of its own, so "nothing left behind" covers every process of the federation.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CanaryFederationReport } from '../../cli/audit/canary-federation.ts';
import { leftInTmp, runCliWithOwnTmp } from '../support/cli-process.ts';

const root = mkdtempSync(join(tmpdir(), 'fedsynth-audit-cli-'));

afterAll(() => rmSync(root, { recursive: true, force: true }));

const runCli = (args: string[]) => runCliWithOwnTmp(root, args);

// Small enough for a CI run (2 sites × 150 patients, FHIR only), with the default 200 canaries: the
// audit guesses r = 100 of them, and ε_lower > 1 (a FAIL, exit 1) needs ≥ 81 right; the canary signal
// (one row in counts with σ in the tens) leaves each guess near a coin flip, P[Bin(100, 0.6) ≥ 81] < 2e-5,
// P[Bin(100, 0.5) ≥ 81] < 1e-9.
const SMALL = ['--sites', '2', '--patients', '150', '--seed', '7'];

describe('fedsynth audit canary --federation, as separate processes', () => {
  it('runs the audited fit, writes a report with the ε lower bound, exits 0 and leaves no temporary folder', async () => {
    const out = join(root, 'canary.json');
    const r = await runCli(['audit', 'canary', '--federation', ...SMALL, '--out', out]);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toMatch(/^canary audit on a real federation, claimed ε 1 \(δ 1e-9\)/);
    expect(r.stdout).toMatch(/PASS: ε_lower ≤ claimed ε; written to /);
    const report = JSON.parse(readFileSync(out, 'utf8')) as CanaryFederationReport;
    expect(report).toMatchObject({ claimedEpsilon: 1, delta: 1e-9, sites: 2, canaries: 200, passed: true, fromCohort: null });
    const m = report.fromMeasurements;
    expect(m.m).toBe(200);
    expect(m.r).toBe(100);
    expect(m.v).toBeGreaterThanOrEqual(0);
    expect(m.v).toBeLessThanOrEqual(m.r);
    expect(m.epsilonLower).toBeGreaterThanOrEqual(0);
    expect(m.epsilonLower).toBeLessThanOrEqual(report.claimedEpsilon);
    expect(r.stdout).toContain(`${m.v}/${m.r} correct guesses → ε_lower ${m.epsilonLower.toFixed(3)} (95%)`);
    // Each site carried its own canaries and was charged the fit's ε at most (canaries change no charge).
    const included = Object.values(report.includedBySite);
    expect(included).toHaveLength(2);
    expect(included.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(200);
    expect(included.every((n) => n > 0)).toBe(true);
    expect(Object.keys(report.spend).sort()).toEqual(['hospital-a', 'hospital-b']);
    for (const s of Object.values(report.spend)) {
      expect(s.rounds).toBe(report.rounds);
      expect(s.epsilon).toBeGreaterThan(0.5);
      expect(s.epsilon).toBeLessThanOrEqual(1 + 1e-9);
    }
    expect(report.realPatients + report.heldOut).toBe(300);
    expect(report.heldOut).toBeGreaterThan(0);
    expect(report.work).toBeUndefined();
    expect(leftInTmp(r.tmp)).toEqual([]);
  }, 180_000);

  it('a federation whose sites refuse the fit exits 1 with the refusal named, writes no report and leaves nothing', async () => {
    const out = join(root, 'refused.json');
    // Each site's policy caps it at ε 0.5 for a fit of ε 1: every site refuses at the pre-flight, before any round.
    const r = await runCli(['audit', 'canary', '--federation', ...SMALL, '--site-epsilon', '0.5', '--out', out]);
    expect(r.status).toBe(1);
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(
      /^fedsynth audit canary --federation: the coordinator exited with code 1: fit failed: pre-flight: the fit cannot finish, refused before round 1 \(no budget spent\)/,
    );
    expect(last).toMatch(/hospital-a: the fit's plan needs up to rho [0-9.]+ from this site: would spend/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // an expected failure, not a stack trace
    expect(existsSync(out)).toBe(false);
    expect(leftInTmp(r.tmp)).toEqual([]);
  }, 180_000);

  it('a malformed flag exits 2 naming it, before any federation is made', async () => {
    const out = join(root, 'bad.json');
    const r = await runCli(['audit', 'canary', '--federation', ...SMALL, '--holdout', '1.5', '--out', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^fedsynth audit canary: --holdout must be .*1\.5/);
    expect(existsSync(out)).toBe(false);
    expect(leftInTmp(r.tmp)).toEqual([]);
  }, 60_000);
});
