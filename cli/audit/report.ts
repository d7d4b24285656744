// `fedsynth audit report`: a human-readable report (report.html + report.json) of verified logs:
// budget spent per site over time (an inline SVG plot drawn here), the mechanisms with their
// sensitivities and noise, the contribution bounds, the threat model, and the empirical audits
// (canary ε lower bound, membership inference) when their result files are given.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { command, parseArgs } from '../args.ts';
import type { ReconcileResult } from '../../privacy/audit-log/reconcile.ts';
import { certFilesFrom, LOG_FLAGS, logFiles, revocationListFlag, verifyFiles } from './verify.ts';
import type { CanaryAuditResult } from '../../federation/audits/canary.ts';
import type { MiaReport as MiaAuditResult } from './mia.ts';

export const THREAT_MODEL_PATH = fileURLToPath(new URL('../../docs/threat-model.md', import.meta.url));

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (x: number, d = 4) => (Number.isFinite(x) ? Number(x.toPrecision(d)).toString() : String(x));
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Cumulative ε per site over time as an SVG step plot (time on x, ε at the report's δ on y). */
export function spendPlotSvg(result: ReconcileResult, width = 760, height = 340): string {
  const series = Object.values(result.parties).filter((p) => p.timeline.length > 0);
  const m = { l: 60, r: 150, t: 20, b: 46 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="cumulative epsilon per site over time" font-family="sans-serif" font-size="11">`,
  ];
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  if (series.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle">no charges recorded</text></svg>`);
    return parts.join('');
  }
  const times = series.flatMap((s) => s.timeline.map((p) => Date.parse(p.at)));
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 1000) {
    t0 -= 500;
    t1 += 500;
  }
  const yMax = Math.max(...series.map((s) => s.epsilon)) * 1.1 || 1;
  const X = (t: number) => m.l + ((t - t0) / (t1 - t0)) * w;
  const Y = (e: number) => m.t + h - (e / yMax) * h;
  // axes and grid
  for (let i = 0; i <= 5; i++) {
    const e = (yMax * i) / 5;
    parts.push(`<line x1="${m.l}" x2="${m.l + w}" y1="${Y(e).toFixed(1)}" y2="${Y(e).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(Y(e) + 4).toFixed(1)}" text-anchor="end">${fmt(e, 3)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    parts.push(`<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${m.t + h}" y2="${m.t + h + 4}" stroke="#333"/>`);
    parts.push(`<text x="${X(t).toFixed(1)}" y="${m.t + h + 16}" text-anchor="middle">${new Date(t).toISOString().slice(11, 19)}</text>`);
  }
  parts.push(
    `<line x1="${m.l}" x2="${m.l + w}" y1="${m.t + h}" y2="${m.t + h}" stroke="#333"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + h}" stroke="#333"/>`,
  );
  parts.push(
    `<text x="${m.l + w / 2}" y="${height - 8}" text-anchor="middle">time (UTC, ${new Date(t0).toISOString().slice(0, 10)})</text>`,
  );
  parts.push(`<text transform="translate(14 ${m.t + h / 2}) rotate(-90)" text-anchor="middle">cumulative ε (δ = ${result.delta})</text>`);
  series.forEach((s, k) => {
    const c = COLORS[k % COLORS.length];
    let d = `M ${X(t0).toFixed(1)} ${Y(0).toFixed(1)}`;
    let prev = 0;
    for (const p of s.timeline) {
      const x = X(Date.parse(p.at)).toFixed(1);
      d += ` L ${x} ${Y(prev).toFixed(1)} L ${x} ${Y(p.cumulativeEpsilon).toFixed(1)}`;
      prev = p.cumulativeEpsilon;
    }
    d += ` L ${X(t1).toFixed(1)} ${Y(prev).toFixed(1)}`;
    // Dashes of different lengths keep sites with identical spend visible on top of each other.
    const dash = k === 0 ? '' : ` stroke-dasharray="${4 + 3 * k} ${3 + 2 * k}"`;
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="${k === 0 ? 3 : 2}"${dash} data-site="${esc(s.party)}"/>`);
    for (const p of s.timeline)
      parts.push(`<circle cx="${X(Date.parse(p.at)).toFixed(1)}" cy="${Y(p.cumulativeEpsilon).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = m.t + 10 + k * 18;
    parts.push(
      `<line x1="${m.l + w + 14}" x2="${m.l + w + 34}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/><text x="${m.l + w + 40}" y="${ly + 4}">${esc(s.party)} (ε ${fmt(s.epsilon, 3)})</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface ReportInputs {
  result: ReconcileResult;
  notes: string[];
  canary?: CanaryAuditResult;
  mia?: MiaAuditResult;
  threatModel: string;
  logs: string[];
}

const CONTRIBUTION_BOUNDS = [
  ['unit of privacy', 'one patient, added or removed (all of their records at a site)'],
  [
    'discrete attributes',
    'exactly one row per patient: a release of m marginals has Δ2 = √m, Δ1 = m, whatever the number of Conditions/Observations',
  ],
  ['images', 'at most one image feature vector per patient, clipped to L2 norm ≤ C'],
  ['notes', 'at most K note n-grams per patient'],
  ['MIA score histograms', 'one patient is one score in one bin of [members | holdout]: Δ1 = Δ2 = 1'],
];

export function renderHtml(inp: ReportInputs): string {
  const r = inp.result;
  const rows = (cells: string[][]) => cells.map((c) => `<tr>${c.map((x) => `<td>${x}</td>`).join('')}</tr>`).join('\n');
  const spend = rows(
    Object.values(r.parties).map((p) => [
      esc(p.party),
      fmt(p.rho, 6),
      fmt(p.epsilon, 4),
      String(p.charges),
      p.ownLog
        ? `${fmt(p.ownLog.rho, 6)} (ε ${fmt(p.ownLog.epsilon, 4)}), ${p.ownLog.charges} charges, ${p.ownLog.refusals} refusals`
        : '—',
    ]),
  );
  const mech = rows(
    r.mechanisms.map((m) => [
      esc(m.roundId),
      esc(m.mechanism),
      m.marginals
        ? `${m.marginals.length}: ${esc(
            m.marginals
              .slice(0, 8)
              .map((a) => a.join('×'))
              .join(', '),
          )}${m.marginals.length > 8 ? ', …' : ''}`
        : '—',
      fmt(m.l2Sensitivity),
      fmt(m.l1Sensitivity),
      String(m.dimension),
      `${esc(m.sigmaSite2)} (σ ${fmt(m.sigmaSite, 4)})`,
      String(m.quorum),
      esc(m.parties.join(', ')),
      fmt(m.rhoRecorded, 6),
      fmt(m.rhoRecomputed, 6),
    ]),
  );
  const findings = r.findings.length
    ? `<ul class="bad">${r.findings.map((f) => `<li><b>${esc(f.kind)}</b> in ${esc(f.log)}${f.seq !== undefined ? ` (seq ${f.seq})` : ''}: ${esc(f.message)}</li>`).join('')}</ul>`
    : '<p class="ok">No findings: every chain and signature verifies, every release is charged, every charge was agreed by its site.</p>';
  let empirical = '<p>No empirical audit results were given (<code>--canary</code>, <code>--mia</code>).</p>';
  if (inp.canary || inp.mia) {
    empirical = '';
    if (inp.canary) {
      const c = inp.canary;
      const line = (name: string, a: CanaryAuditResult['fromMeasurements'] | null) =>
        a
          ? `<tr><td>${name}</td><td>${a.v}/${a.r}</td><td><b>${fmt(a.epsilonLower, 4)}</b></td><td>${c.claimedEpsilon}</td><td class="${a.epsilonLower <= c.claimedEpsilon ? 'ok' : 'bad'}">${a.epsilonLower <= c.claimedEpsilon ? 'ε_lower ≤ claimed' : 'ε_lower > claimed'}</td></tr>`
          : '';
      empirical += `<h3>Canary audit (one run, Steinke–Nasr–Jagielski 2023)</h3><p>${c.canaries} canaries (${c.included} included), ${c.sites} sites, ${c.realPatients} real patients, noise ${esc(c.noise)}, δ ${c.delta}, 95% confidence.</p>
<table><tr><th>attacker sees</th><th>correct / guesses</th><th>ε lower bound</th><th>claimed ε</th><th>verdict</th></tr>${line('released measurements', c.fromMeasurements)}${line('synthetic cohort', c.fromCohort)}</table>`;
    }
    if (inp.mia) {
      const a = inp.mia;
      empirical += `<h3>Membership inference (held-out control set)</h3><p>${a.members} members vs ${a.holdout} held out, cohort of ${a.cohortRows}; scores computed at the sites, released as histograms with discrete Gaussian noise σ ${fmt(a.histogramSigmaSite)} per site.</p>
<table><tr><th>attack</th><th>AUC</th><th>advantage</th><th>ρ per site</th></tr>${Object.entries(a.attacks)
        .map(
          ([k, s]) => `<tr><td>${esc(k)}</td><td>${fmt(s.auc, 3)}</td><td>${fmt(s.advantage, 3)}</td><td>${fmt(s.rhoPerSite, 3)}</td></tr>`,
        )
        .join('')}</table>`;
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedsynth privacy audit report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#1a7f37}.bad{color:#b42318}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap;font-size:12px;border:1px solid #ddd}
h1{margin-bottom:.2em}.sub{color:#666;margin-top:0}
</style></head><body>
<h1>fedsynth privacy audit report</h1>
<p class="sub">Generated ${new Date().toISOString()} from ${inp.logs.map(esc).join(', ')}</p>
<h2>Verification: <span class="${r.ok ? 'ok' : 'bad'}">${r.ok ? 'PASSED' : `FAILED (${r.findings.length} findings)`}</span></h2>
${findings}
${inp.notes.length ? `<ul>${inp.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Budget spent per site over time</h2>
${spendPlotSvg(r)}
<table><tr><th>site</th><th>ρ (recomputed)</th><th>ε at δ ${r.delta}</th><th>charges</th><th>site's own log</th></tr>
${spend}</table>
<h2>Mechanisms</h2>
<table><tr><th>round</th><th>mechanism</th><th>marginals</th><th>Δ2</th><th>Δ1</th><th>cells</th><th>σ² per site</th><th>quorum</th><th>parties</th><th>ρ recorded</th><th>ρ recomputed</th></tr>
${mech}</table>
<h2>Contribution bounds</h2>
<table>${rows(CONTRIBUTION_BOUNDS.map(([a, b]) => [esc(a), esc(b)]))}</table>
<h2>Empirical audits</h2>
${empirical}
<h2>Threat model</h2>
<pre>${esc(inp.threatModel)}</pre>
</body></html>
`;
}

export const REPORT = command({
  command: 'fedsynth audit report',
  summary:
    'Verifies the logs like `audit verify` and writes DIR/report.html and DIR/report.json with the\nspend, the findings, the empirical audits given and the threat model.',
  positionals: { name: 'LOG...', min: 0, max: 1000, help: 'more audit logs' },
  flags: {
    ...LOG_FLAGS,
    out: { type: 'path', value: 'DIR', required: true, help: 'folder of the report' },
    canary: { type: 'path', value: 'FILE.json', help: 'result of `fedsynth audit canary`' },
    mia: { type: 'path', value: 'FILE.json', help: 'result of `fedsynth audit mia`' },
  },
});

export async function runAuditReport(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(REPORT, args);
  const logs = logFiles(flags.log, positional, REPORT.command);
  const caPem = readFileSync(flags.ca, 'utf8');
  const revocationList =
    flags['revocation-list'] === undefined ? undefined : await revocationListFlag(flags['revocation-list'], caPem, REPORT.command);
  const { result, notes } = verifyFiles({
    logs,
    caPem,
    certFiles: certFilesFrom(flags.certs),
    delta: flags.delta,
    ...(revocationList ? { revocationList } : {}),
  });
  const readJson = <T>(f: string | undefined): T | undefined => (f !== undefined ? (JSON.parse(readFileSync(f, 'utf8')) as T) : undefined);
  const canary = readJson<CanaryAuditResult>(flags.canary);
  const mia = readJson<MiaAuditResult>(flags.mia);
  const threatModel = existsSync(THREAT_MODEL_PATH) ? readFileSync(THREAT_MODEL_PATH, 'utf8') : '(docs/threat-model.md not found)';
  mkdirSync(flags.out, { recursive: true });
  writeFileSync(
    join(flags.out, 'report.json'),
    `${JSON.stringify({ generatedAt: new Date().toISOString(), logs, verification: result, notes, canary: canary ?? null, mia: mia ?? null }, null, 2)}\n`,
  );
  writeFileSync(join(flags.out, 'report.html'), renderHtml({ result, notes, canary, mia, threatModel, logs }));
  process.stdout.write(
    `report written to ${join(flags.out, 'report.html')} and report.json (${result.ok ? 'verification passed' : `${result.findings.length} findings`})\n`,
  );
  return result.ok ? 0 : 1;
}
