// The fedsynth web page: plain JavaScript against the HTTP API (no build step). The token lives
// in sessionStorage only; every call sends it as a bearer token; the API validates every form.
'use strict';
/* global document, sessionStorage, location, alert, Node */

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem('fedsynth-token') || '',
  me: null,
  schema: null,
  studies: [],
  cohorts: [],
  report: null,
  timer: 0,
  pollMs: 2000,
  /** Last body and ETag per GET path. */
  etags: new Map(),
};

// Polls back off while nothing changes (and stop while the page is hidden); status reads are
// conditional (If-None-Match), so an unchanged list costs a 304 and no rendering.
const POLL_MIN_MS = 2000;
const POLL_ACTIVE_MAX_MS = 4000;
const POLL_IDLE_MAX_MS = 30000;

async function api(method, path, body, headers = {}) {
  const cached = method === 'GET' ? state.etags.get(path) : undefined;
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    headers: {
      authorization: `Bearer ${state.token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(cached ? { 'if-none-match': cached.etag } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 304 && cached) return { status: 200, headers: res.headers, data: cached.data, changed: false };
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw new Error((data && (data.error || (data.issue && data.issue[0].diagnostics))) || `HTTP ${res.status}`);
  const etag = res.headers.get('etag');
  if (method === 'GET' && etag) state.etags.set(path, { etag, data });
  return { status: res.status, headers: res.headers, data, changed: true };
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'onclick') e.addEventListener('click', v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmt = (x, d = 3) => (typeof x === 'number' ? x.toFixed(d) : '–');
function bar(fraction) {
  const b = el('span', { class: 'bar' }, el('span'));
  b.firstChild.style.width = `${Math.round(100 * Math.max(0, Math.min(1, fraction)))}%`;
  return b;
}

// ------------------------------------------------------------------ sign-in

async function signIn(token) {
  state.token = token.trim();
  try {
    state.me = (await api('GET', '/api/v1/whoami')).data;
  } catch (err) {
    $('signin-error').textContent = `Sign-in failed: ${err.message}`;
    state.token = '';
    sessionStorage.removeItem('fedsynth-token');
    return;
  }
  sessionStorage.setItem('fedsynth-token', state.token);
  $('signin').classList.add('hidden');
  $('app').classList.remove('hidden');
  $('signout').classList.remove('hidden');
  $('who').textContent = `${state.me.name} · ${state.me.role} · federation ${state.me.federation}`;
  for (const f of document.querySelectorAll('.requester')) f.classList.toggle('hidden', state.me.role === 'auditor');
  state.schema = (await api('GET', '/api/v1/schema')).data;
  buildForms();
  await refresh();
  pollSoon();
}

function schedulePoll(ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, ms);
}

/** The next poll in POLL_MIN_MS (after an action, or when the page is shown again). */
function pollSoon() {
  state.pollMs = POLL_MIN_MS;
  schedulePoll(POLL_MIN_MS);
}

async function poll() {
  if (document.hidden) return; // visibilitychange polls again
  const changed = await refresh().catch(() => false);
  const busy =
    state.studies.some((s) => ['pending-approval', 'queued', 'fitting'].includes(s.status)) ||
    state.cohorts.some((c) => ['queued', 'running'].includes(c.status));
  state.pollMs = changed ? POLL_MIN_MS : Math.min(state.pollMs * 2, busy ? POLL_ACTIVE_MAX_MS : POLL_IDLE_MAX_MS);
  schedulePoll(state.pollMs);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.me) pollSoon();
});

function signOut() {
  clearTimeout(state.timer);
  sessionStorage.removeItem('fedsynth-token');
  location.reload();
}

// ------------------------------------------------------------------ forms

function buildForms() {
  const s = state.schema;
  $('study-delta').value = String(s.defaults.delta);
  $('study-plan').value = s.defaults.plan;
  const attrs = $('study-attrs');
  attrs.replaceChildren(
    ...s.attributes.map((a) => el('label', {}, el('input', { type: 'checkbox', value: a.name, 'data-attr': '1' }), ` ${a.name}`)),
  );
  $('cohort-modalities').replaceChildren(
    el('span', { class: 'muted' }, 'Modalities: '),
    ...s.modalities.map((m) =>
      el('label', {}, el('input', { type: 'checkbox', value: m, checked: 'checked', 'data-modality': '1' }), ` ${m}`),
    ),
  );
  const age = s.attributes.find((a) => a.kind === 'age');
  $('where-help').textContent =
    `Filter: comma-separated clauses, e.g. sex=female, condition=hypertension` +
    (age ? `; ${age.name} only on bin edges (${age.edges.join(', ')}), e.g. ${age.name}>=${age.edges[age.edges.length - 3]}` : '');
}

async function requestStudy(ev) {
  ev.preventDefault();
  const attributes = [...document.querySelectorAll('input[data-attr]:checked')].map((i) => i.value);
  const body = {
    title: $('study-title').value,
    epsilon: Number($('study-epsilon').value),
    delta: Number($('study-delta').value),
    plan: $('study-plan').value,
  };
  if (attributes.length) body.attributes = attributes;
  $('study-result').className = '';
  try {
    const r = await api('POST', '/api/v1/studies', body);
    $('study-result').className = 'ok';
    $('study-result').textContent = `requested ${r.data.id} (${r.data.status})`;
    await refresh();
    pollSoon();
  } catch (err) {
    $('study-result').className = 'error';
    $('study-result').textContent = err.message;
  }
}

async function requestCohort(ev) {
  ev.preventDefault();
  const body = {
    study: $('cohort-study').value,
    n: Number($('cohort-n').value),
    seed: Number($('cohort-seed').value),
    where: $('cohort-where').value,
    modalities: [...document.querySelectorAll('input[data-modality]:checked')].map((i) => i.value),
  };
  $('cohort-result').className = '';
  try {
    const r = await api('POST', '/api/v1/cohorts', body);
    $('cohort-result').className = 'ok';
    $('cohort-result').textContent = `queued ${r.data.id}`;
    await refresh();
    pollSoon();
  } catch (err) {
    $('cohort-result').className = 'error';
    $('cohort-result').textContent = err.message;
  }
}

async function approve(id) {
  try {
    await api('POST', `/api/v1/studies/${id}/approve`);
  } catch (err) {
    alert(err.message);
  }
  await refresh();
  pollSoon();
}

// ------------------------------------------------------------------ lists

function renderBudget(sites) {
  $('budget').tBodies[0].replaceChildren(
    ...sites.map((b) =>
      b.registered
        ? el(
            'tr',
            {},
            el('td', {}, b.siteId),
            el('td', {}, fmt(b.epsilonCap)),
            el('td', {}, String(b.delta)),
            el('td', {}, fmt(b.remainingEpsilon)),
            el('td', {}, fmt(b.heldRho, 5)),
            el('td', { class: 'muted' }, b.publishedAt.slice(0, 19)),
          )
        : el('tr', {}, el('td', {}, b.siteId), el('td', { colspan: '5', class: 'muted' }, 'not registered yet')),
    ),
  );
}

/** Reads the lists and redraws them if any changed; returns whether one did. */
async function refresh() {
  const [budget, studies, cohorts] = await Promise.all([
    api('GET', '/api/v1/budget'),
    api('GET', '/api/v1/studies'),
    api('GET', '/api/v1/cohorts'),
  ]);
  if (!budget.changed && !studies.changed && !cohorts.changed) return false;
  renderBudget(budget.data.sites);
  state.studies = studies.data.studies;
  $('studies').tBodies[0].replaceChildren(
    ...state.studies.map((s) => {
      const p = s.progress || {};
      const progress =
        s.status === 'fitting' || s.status === 'fitted'
          ? el(
              'span',
              {},
              bar(p.rounds ? (p.round || 0) / p.rounds : 0),
              ` round ${p.round ?? 0} of ≤ ${p.rounds ?? '?'} `,
              el('span', { class: 'muted' }, p.message || ''),
            )
          : el('span', { class: s.error ? 'error' : 'muted' }, s.error || '');
      const spend = Object.entries(s.spend)
        .map(([site, x]) => `${site} ${fmt(x.epsilon)}`)
        .join(', ');
      const action =
        s.status === 'pending-approval' && state.me.role === 'operator'
          ? el('button', { onclick: () => approve(s.id), 'data-approve': s.id }, 'Approve')
          : '';
      return el(
        'tr',
        { 'data-study': s.id, 'data-status': s.status },
        el('td', {}, s.id),
        el('td', {}, s.title),
        el('td', {}, String(s.epsilon)),
        el('td', {}, s.status),
        el('td', {}, progress),
        el('td', {}, spend),
        el('td', {}, action),
      );
    }),
  );
  const fittedStudies = state.studies.filter((s) => s.status === 'fitted');
  const sel = $('cohort-study');
  const keep = sel.value;
  sel.replaceChildren(...fittedStudies.map((s) => el('option', { value: s.id }, `${s.title} (${s.id})`)));
  if (fittedStudies.some((s) => s.id === keep)) sel.value = keep;
  state.cohorts = cohorts.data.cohorts;
  $('cohorts').tBodies[0].replaceChildren(
    ...state.cohorts.map((c) =>
      el(
        'tr',
        { 'data-cohort': c.id, 'data-status': c.status },
        el('td', {}, c.id),
        el('td', {}, c.study),
        el('td', {}, String(c.n)),
        el('td', {}, c.where || '–'),
        el('td', { class: c.status === 'failed' ? 'error' : '' }, c.status + (c.error ? `: ${c.error}` : '')),
        el('td', {}, bar(c.progress.fraction || 0)),
        el(
          'td',
          {},
          c.status === 'completed' ? el('button', { class: 'link', onclick: () => showReport(c.id), 'data-report': c.id }, 'report') : '',
        ),
      ),
    ),
  );
  return true;
}

// ------------------------------------------------------------------ report and plots

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Bars of one or two series; labels under the bars. */
function barChart(labels, series, { width = 520, height = 180, colors = ['#457b9d', '#e76f51'], legend = [] } = {}) {
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const max = Math.max(1e-9, ...series.flat());
  const left = 36,
    bottom = 36,
    plotW = width - left - 8,
    plotH = height - bottom - 14;
  const group = plotW / Math.max(1, labels.length);
  const bw = Math.max(1, (group * 0.8) / series.length);
  root.append(svg('line', { x1: left, y1: 10, x2: left, y2: 10 + plotH, stroke: '#98a2b3' }));
  root.append(svg('text', { x: 2, y: 14 }, max.toPrecision(2)));
  labels.forEach((label, i) => {
    series.forEach((values, j) => {
      const h = (plotH * values[i]) / max;
      root.append(svg('rect', { x: left + i * group + j * bw + group * 0.1, y: 10 + plotH - h, width: bw, height: h, fill: colors[j] }));
    });
    if (labels.length <= 24)
      root.append(
        svg(
          'text',
          { x: left + i * group + 2, y: height - bottom + 22, transform: `rotate(30 ${left + i * group + 2} ${height - bottom + 22})` },
          String(label).slice(0, 14),
        ),
      );
  });
  legend.forEach((name, j) => {
    root.append(svg('rect', { x: width - 150, y: 4 + j * 12, width: 8, height: 8, fill: colors[j] }));
    root.append(svg('text', { x: width - 138, y: 12 + j * 12 }, name));
  });
  return root;
}

/** Cumulative ρ per site over time. */
function spendChart(points, { width = 520, height = 180 } = {}) {
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  if (points.length === 0) return root;
  const sites = [...new Set(points.map((p) => p.site))].sort();
  const t0 = Date.parse(points[0].at),
    t1 = Math.max(t0 + 1, Date.parse(points[points.length - 1].at));
  const totals = {};
  const lines = Object.fromEntries(sites.map((s) => [s, []]));
  for (const p of points) {
    totals[p.site] = (totals[p.site] || 0) + p.rho;
    lines[p.site].push([Date.parse(p.at), totals[p.site]]);
  }
  const max = Math.max(...Object.values(totals));
  const colors = ['#1d3557', '#e76f51', '#2a9d8f', '#f4a261', '#8d99ae', '#6a4c93'];
  const x = (t) => 40 + ((width - 50) * (t - t0)) / (t1 - t0);
  const y = (v) => height - 20 - ((height - 34) * v) / max;
  root.append(svg('text', { x: 2, y: 14 }, max.toPrecision(2)));
  root.append(svg('text', { x: 40, y: height - 4 }, new Date(t0).toISOString().slice(11, 19)));
  root.append(svg('text', { x: width - 60, y: height - 4 }, new Date(t1).toISOString().slice(11, 19)));
  sites.forEach((s, i) => {
    const pts = [[t0, 0], ...lines[s]].map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points: pts, fill: 'none', stroke: colors[i % colors.length], 'stroke-width': 2, 'data-site': s }));
    root.append(svg('text', { x: width - 110, y: 12 + i * 12, fill: colors[i % colors.length] }, s));
  });
  return root;
}

async function fetchBlobUrl(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${state.token}` } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return URL.createObjectURL(await res.blob());
}

async function showReport(id) {
  const c = (await api('GET', `/api/v1/cohorts/${id}`)).data;
  const r = c.report;
  state.report = c;
  $('report').classList.remove('hidden');
  $('report-id').textContent = id;
  $('report-summary').textContent =
    `${r.patients} patients from study ${r.study} (ε=${r.privacy.studyEpsilon}, δ=${r.privacy.delta}), seed ${r.seed}${r.where.text ? `, filter ${r.where.text}` : ''}; generated: ${(r.generated || ['fhir']).join(', ')}. ${r.privacy.note}. Mean L1 vs released marginals: ${fmt(r.fidelity.meanL1VsReleasedMeasurements)}.`;
  const withError = r.fidelity.marginals.filter((m) => m.l1 !== null);
  $('plot-error').replaceChildren(
    withError.length
      ? barChart(
          withError.map((m) => m.attrs.join('×')),
          [withError.map((m) => m.l1)],
        )
      : el('p', { class: 'muted' }, r.fidelity.note),
  );
  $('plot-marginals').replaceChildren(
    ...r.fidelity.marginals.slice(0, 6).map((m) =>
      el(
        'div',
        { 'data-marginal': m.attrs.join('×') },
        el('div', {}, m.attrs.join(' × ')),
        barChart(
          m.released.map((_, i) => i),
          [m.released, m.cohort],
          { legend: ['released (noisy)', 'cohort'] },
        ),
      ),
    ),
  );
  $('plot-spend').replaceChildren(spendChart(r.spend));
  const img = $('preview-radiograph');
  img.classList.add('hidden');
  if (r.previews.radiograph) {
    img.src = await fetchBlobUrl(`/api/v1/cohorts/${id}/file?path=${encodeURIComponent(r.previews.radiograph)}`);
    img.classList.remove('hidden');
  }
  for (const [key, elId] of [
    ['note', 'preview-note'],
    ['vcf', 'preview-vcf'],
  ]) {
    $(elId).textContent = r.previews[key] || '';
    $(elId).classList.toggle('hidden', !r.previews[key]);
  }
  $('downloads').replaceChildren(
    ...Object.entries(r.downloads).map(([kind, d]) =>
      el(
        'div',
        {},
        `${kind}: ${d.files} files (${(d.bytes / 1e6).toFixed(1)} MB) `,
        ...d.paths.slice(0, 3).flatMap((p) => [el('button', { class: 'link', onclick: () => download(id, p) }, p.split('/').pop()), ' ']),
        d.paths.length > 3 ? ' …' : '',
      ),
    ),
  );
  $('bulk-status').textContent = '';
  $('bulk-files').replaceChildren();
}

async function download(id, path) {
  const a = el('a', {
    href: await fetchBlobUrl(`/api/v1/cohorts/${id}/file?path=${encodeURIComponent(path)}`),
    download: path.split('/').pop(),
  });
  a.click();
}

async function bulkExport() {
  const id = state.report.id;
  const kick = await fetch(`/fhir/Group/${id}/$export`, {
    headers: { authorization: `Bearer ${state.token}`, accept: 'application/fhir+json', prefer: 'respond-async' },
  });
  if (kick.status !== 202) {
    $('bulk-status').textContent = `kick-off failed: HTTP ${kick.status}`;
    return;
  }
  const statusPath = new URL(kick.headers.get('content-location')).pathname;
  for (;;) {
    const res = await fetch(statusPath, { headers: { authorization: `Bearer ${state.token}` } });
    if (res.status === 200) {
      const manifest = await res.json();
      $('bulk-status').textContent = `manifest of ${manifest.transactionTime}: ${manifest.output.length} files`;
      $('bulk-files').replaceChildren(
        ...manifest.output.map((o) =>
          el(
            'li',
            { 'data-type': o.type },
            `${o.type}: ${o.count} resources `,
            el(
              'button',
              {
                class: 'link',
                onclick: async () => el('a', { href: await fetchBlobUrl(new URL(o.url).pathname), download: `${o.type}.ndjson` }).click(),
              },
              'download',
            ),
          ),
        ),
      );
      return;
    }
    $('bulk-status').textContent = res.headers.get('x-progress') || `HTTP ${res.status}`;
    if (res.status !== 202) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn($('token').value);
});
$('signout').addEventListener('click', signOut);
$('study-form').addEventListener('submit', requestStudy);
$('cohort-form').addEventListener('submit', requestCohort);
$('bulk-export').addEventListener('click', () => bulkExport().catch((err) => ($('bulk-status').textContent = err.message)));
if (state.token) signIn(state.token);
