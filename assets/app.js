// mlsec-monitor dashboard: plain JavaScript, no build step, nothing fetched
// from outside the appliance (Chart.js and its time adapter are served by
// the daemon too). Live values come over /ws/metrics; when the socket is
// down the page polls the REST API and keeps reconnecting. Pages are hash
// routes: #/overview, #/charts, #/alerts, #/alert/ID, #/silences, #/audit.
'use strict';

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const num = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '–');
const when = (t) => (t ? new Date(t).toLocaleString() : '–');
const POLL_MS = 5000;
const CHART_REFRESH_MS = 30000;
const AUDIT_ACTIONS = ['fired', 'acknowledged', 'resolved', 'escalated', 'silenced', 'notified',
  'notification_failed', 'silence_created', 'silence_deleted', 'purged', 'token_created',
  'token_revoked', 'sign_in_blocked', 'config_reloaded', 'config_reload_failed'];

// ---- sign-in: an API token kept for this browser session ------------------
// /auth/session says who the token is and what this page may offer them;
// the page shows a sign-in form until it may read, and only the controls
// the role may use (the API refuses the rest anyway).
const TOKEN_KEY = 'mlsec-monitor-token';
const WHY_KEY = 'mlsec-monitor-signed-out-because';
let token = sessionStorage.getItem(TOKEN_KEY);
let session = { auth: true, can_read: false, can_operate: false, can_admin: false };

async function sessionOf(t) {
  const r = await fetch('/auth/session', { headers: t ? { Authorization: 'Bearer ' + t } : {} });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

function showSignIn(why) {
  $('dashboard').hidden = true;
  $('feed').hidden = true;
  $('nav').hidden = true;
  $('signin-open').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = why || '';
  $('token-input').focus();
}

// Forget the token and start again (a 401: revoked or expired meanwhile).
function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (why) sessionStorage.setItem(WHY_KEY, why);
  location.reload();
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const t = $('token-input').value.trim();
  let r;
  try { r = await sessionOf(t); } catch (e) { $('signin-error').textContent = 'the appliance did not answer'; return; }
  if (r.status !== 200) { $('signin-error').textContent = r.body.error || 'sign-in failed (' + r.status + ')'; return; }
  if (!r.body.can_read) {
    $('signin-error').textContent = `token '${r.body.name}' has role ${r.body.role}: it may push data but not read the dashboard`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, t);
  location.reload();
});
$('signout').addEventListener('click', () => signOut());
$('signin-open').addEventListener('click', () => showSignIn());

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, token ? { Authorization: 'Bearer ' + token } : {});
  const r = await fetch(path, Object.assign({}, options, { headers }));
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) signOut(body.error);
  if (!r.ok) throw new Error(body.error || r.status);
  return body;
}

const post = (path, body, method = 'POST') => api(path, {
  method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

// ---- charts: Chart.js on the chart endpoints' own JSON --------------------
// Colours follow the page's light or dark scheme; a chart is updated in
// place (no flicker), a null is a gap (spanGaps off) and a point with gaps
// on both sides is drawn as a dot so it does not vanish.
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function themeCharts() {
  Chart.defaults.color = css('--muted');
  Chart.defaults.borderColor = css('--line');
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
}

// Anomalies the daemon found (GET /anomalies) are marked on the system
// chart: a dashed line at each event's peak, a triangle on top. A plugin,
// not a dataset, so the chart's datasets stay its endpoint's own.
const CHART_METRICS = {
  'CPU %': 'cpu_usage_percent', 'Memory %': 'memory_usage_percent', 'Disk %': 'disk_usage_percent',
  'Memory used MiB': 'memory_used_mb', 'Received Mbps': 'network_rx_mbps', 'Transmitted Mbps': 'network_tx_mbps',
};

Chart.register({
  id: 'anomalyMarks',
  afterDatasetsDraw(chart) {
    const marks = chart.$marks || [];
    const x = chart.scales.x;
    const a = chart.chartArea;
    if (!marks.length || !x) return;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = ctx.fillStyle = css('--red');
    ctx.setLineDash([4, 3]);
    for (const m of marks) {
      const px = x.getPixelForValue(m.at);
      if (px < a.left || px > a.right) continue;
      ctx.beginPath(); ctx.moveTo(px, a.top); ctx.lineTo(px, a.bottom); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(px - 5, a.top); ctx.lineTo(px + 5, a.top); ctx.lineTo(px, a.top + 7); ctx.closePath(); ctx.fill();
    }
    ctx.restore();
  },
});

// The anomalies of the series a system chart shows (unlabelled, as it
// draws them), within `range`.
async function anomalyMarks(body, range) {
  const shown = new Set(body.datasets.map((d) => CHART_METRICS[d.label]).filter(Boolean));
  if (!shown.size) return [];
  const r = await api(`/anomalies?time_range=${range}&limit=1000`);
  return r.anomalies
    .filter((e) => shown.has(e.metric) && Object.keys(e.labels).length === 0)
    .map((e) => ({ at: Date.parse(e.peak_at), metric: e.metric,
      text: `${e.metric}: ${num(e.value)}, expected ${num(e.expected_low)} to ${num(e.expected_high)}` }));
}

function mark(chart, marks) {
  chart.$marks = marks;
  chart.update('none');
}

const isolated = (ctx) => {
  const d = ctx.dataset.data;
  const i = ctx.dataIndex;
  return d[i] !== null && d[i - 1] == null && d[i + 1] == null;
};

function render(canvas, body, kind = 'line') {
  const datasets = body.datasets.map((d) => Object.assign({}, d, kind === 'bar'
    ? { stack: 'all', borderWidth: 0, backgroundColor: d.borderColor }
    : { spanGaps: false, borderWidth: 1.5, tension: 0, fill: false,
      pointRadius: (ctx) => (isolated(ctx) ? 3 : body.labels.length > 90 ? 0 : 2), pointHoverRadius: 4 }));
  const data = { labels: body.labels, datasets };
  const existing = Chart.getChart(canvas);
  if (existing && existing.config.type === kind) {
    // Keep what the user toggled in the legend.
    const hidden = new Set(existing.data.datasets.filter((d, i) => !existing.isDatasetVisible(i)).map((d) => d.label));
    datasets.forEach((d) => { d.hidden = hidden.has(d.label); });
    existing.data = data;
    existing.update('none');
    return existing;
  }
  if (existing) existing.destroy();
  return new Chart(canvas, {
    type: kind,
    data,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { type: 'time', stacked: kind === 'bar', time: { tooltipFormat: 'yyyy-MM-dd HH:mm' },
          ticks: { maxRotation: 0, autoSkipPadding: 16 } },
        y: { beginAtZero: true, stacked: kind === 'bar' },
      },
      plugins: { legend: { labels: { boxWidth: 12 } } },
    },
  });
}

// ---- live tiles ------------------------------------------------------------
function showLive(m) {
  $('cpu').textContent = num(m.cpu_usage) + ' %';
  $('mem').textContent = typeof m.memory_usage_mb === 'number' ? (m.memory_usage_mb / 1024).toFixed(2) + ' GB' : '–';
  $('disk').textContent = num(m.disk_usage_percent) + ' %';
  $('net').textContent = num(m.network_io_mbps, 2) + ' Mbps';
  $('load').textContent = Array.isArray(m.load_average) ? m.load_average.map((l) => l.toFixed(2)).join(' ') : '–';
  if (m.active_alerts !== undefined) $('active').textContent = m.active_alerts;
}

// ---- live feed with polling fallback --------------------------------------
let ws = null;
let retry = 1000;
let pollTimer = null;

function startPolling() {
  if (pollTimer) return;
  const tick = async () => {
    try {
      const m = await api('/system-metrics');
      const a = await api('/alerts?status=active&limit=1');
      m.active_alerts = a.active_count;
      showLive(m);
    } catch (e) { /* the next tick retries */ }
    refreshServices();
    onAlertChange();
  };
  tick();
  pollTimer = setInterval(tick, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function connect() {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/metrics';
  // A browser cannot set Authorization on a websocket: the token goes as a
  // subprotocol, which the daemon accepts and echoes.
  ws = token ? new WebSocket(url, ['bearer', token]) : new WebSocket(url);
  ws.onopen = () => { $('feed').textContent = 'live'; retry = 1000; stopPolling(); };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'snapshot' || m.type === 'metrics') {
      showLive(m);
      if (m.type === 'metrics') refreshServices();
    } else if (m.type === 'alert') {
      onAlertChange();
    }
  };
  ws.onclose = () => {
    $('feed').textContent = 'polling (live feed reconnecting)';
    startPolling();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

// ---- overview --------------------------------------------------------------
let serviceNames = [];

async function refreshServices() {
  try {
    const s = await api('/service-health');
    serviceNames = Object.keys(s.services);
    $('overall').textContent = s.overall_status;
    $('overall').className = 'pill ' + s.overall_status;
    fillOptions(document.querySelector('[data-filter="service"]'), serviceNames);
    fillOptions(document.querySelector('#alert-filters [name="service"]'), serviceNames);
    if (!serviceNames.length) return;
    $('services').innerHTML = serviceNames.map((name) => {
      const v = s.services[name];
      return `<div class="card ${esc(v.status)}"><h3>${esc(name)}</h3>
        <div>${esc(v.status)} · ${num(v.response_time_ms)} ms</div>
        <div>CPU ${num(v.cpu_usage)} % · ${num(v.memory_usage_mb, 0)} MiB</div>
        ${v.error_message ? `<div>${esc(v.error_message)}</div>` : ''}</div>`;
    }).join('');
  } catch (e) { /* keep the last view */ }
}

// Adds the values a select does not offer yet (keeping the choice made).
function fillOptions(select, values) {
  if (!select) return;
  const have = new Set([...select.options].map((o) => o.value));
  for (const v of values) {
    if (!have.has(v)) select.add(new Option(v, v));
  }
}

async function refreshOpenAlerts() {
  try {
    const [active, acked] = await Promise.all([
      api('/alerts?status=active&limit=20'), api('/alerts?status=acknowledged&limit=20')]);
    const all = active.alerts.concat(acked.alerts);
    $('alert-count').textContent = `(${active.active_count} active)`;
    $('active').textContent = active.active_count;
    $('alerts').innerHTML = all.length ? all.map((a) => `
      <div class="alert ${esc(a.severity)}" data-id="${esc(a.alert_id)}">
        <div><b>${esc(a.severity.toUpperCase())}</b> ${esc(a.service)} · ${esc(a.status)}${a.metadata.silenced ? ' · <span class="tag">silenced</span>' : ''}</div>
        <div><a href="#/alert/${encodeURIComponent(a.alert_id)}">${esc(a.message)}</a></div>
        <div class="meta">${esc(when(a.timestamp))}${a.acknowledged_by ? ' · acknowledged by ' + esc(a.acknowledged_by) : ''}</div>
        <div class="actions">
          ${session.can_operate && a.status === 'active' ? '<button class="ack">Acknowledge…</button>' : ''}
          ${session.can_operate ? '<button class="resolve">Resolve…</button>' : ''}
        </div></div>`).join('') : '<p class="muted">No open alerts.</p>';
  } catch (e) { /* keep the last view */ }
}

// Acknowledge and resolve happen on the alert's page, with a comment box.
$('alerts').addEventListener('click', (ev) => {
  const box = ev.target.closest('.alert');
  if (!box || ev.target.tagName !== 'BUTTON') return;
  location.hash = '#/alert/' + encodeURIComponent(box.dataset.id);
  setTimeout(() => $('act-form').elements.comment.focus(), 200);
});

async function refreshPlatform() {
  try {
    const m = await api('/model-loading-status');
    if (m.models.length) {
      $('models').innerHTML = `<p class="muted">${m.loaded_models} loaded · ${m.loading_models} loading · ${m.failed_models} failed · ${num(m.total_memory_usage_mb, 0)} MiB</p>
        <table>${m.models.map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.status)}</td>
        <td><div class="bar"><i style="width:${Number(x.progress)}%"></i></div></td></tr>`).join('')}</table>`;
    }
    const t = await api('/training-status');
    fillOptions(document.querySelector('[data-filter="model_name"]'), [...new Set(t.jobs.map((j) => j.model_name))]);
    if (t.jobs.length) {
      const q = t.queue_status;
      $('training').innerHTML = `<p class="muted">${q.running_jobs} running · ${q.pending_jobs} pending · ${q.completed_jobs} done · ${q.failed_jobs} failed</p>
        <table>${t.jobs.map((j) => `<tr><td>${esc(j.job_id)}</td><td>${esc(j.model_name)}</td><td>${esc(j.status)}</td>
        <td><div class="bar"><i style="width:${Number(j.progress)}%"></i></div></td></tr>`).join('')}</table>`;
    }
  } catch (e) { /* keep the last view */ }
}

async function drawOverviewChart() {
  try {
    const body = await api('/charts/system-metrics?time_range=6h');
    const chart = render($('chart'), body);
    mark(chart, await anomalyMarks(body, '6h'));
  } catch (e) { /* keep the last chart */ }
}

// ---- charts page -------------------------------------------------------------
let range = localStorage.getItem('mlsec-monitor-range') || '24h';

function summaryOf(name, b) {
  switch (name) {
    case 'system-metrics':
      return b.summary.map((s) => `${s.label}: now ${num(s.current)}, average ${num(s.average)}, max ${num(s.max)} (${s.trend})`).join(' · ');
    case 'service-health':
      return Object.entries(b.uptime_percent).map(([k, v]) => `${k} up ${num(v, 2)} %`).join(' · ') || 'no service checked in this range';
    case 'alerts-timeline':
      return `${b.total_alerts} fired, one bar per ${b.step_seconds < 120 ? b.step_seconds + ' s' : b.step_seconds / 60 + ' min'}`;
    case 'model-loading':
      return `${b.total_models} models · loading ${b.loading_trend}`;
    default:
      return `${b.total_jobs} jobs, ${b.running_jobs} running`;
  }
}

async function drawChartPanel(panel) {
  const name = panel.dataset.chart;
  const q = new URLSearchParams({ time_range: range });
  const filter = panel.querySelector('[data-filter]');
  if (filter && filter.value) q.set(filter.dataset.filter, filter.value);
  try {
    const body = await api(`/charts/${name}?${q}`);
    const chart = render(panel.querySelector('canvas'), body, panel.dataset.kind || 'line');
    let summary = summaryOf(name, body);
    if (name === 'system-metrics') {
      const marks = await anomalyMarks(body, range);
      mark(chart, marks);
      if (marks.length) summary += ` · ${marks.length} anomal${marks.length === 1 ? 'y' : 'ies'} marked: ${marks.map((m) => m.text).join('; ')}`;
    }
    panel.querySelector('.summary').textContent = summary;
  } catch (e) {
    panel.querySelector('.summary').textContent = 'could not load: ' + e.message;
  }
}

function drawCharts() {
  document.querySelectorAll('#ranges button').forEach((b) => {
    b.setAttribute('aria-checked', String(b.dataset.range === range));
  });
  return Promise.all([...document.querySelectorAll('.chart-panel')].map(drawChartPanel));
}

$('ranges').addEventListener('click', (ev) => {
  const r = ev.target.dataset.range;
  if (!r) return;
  range = r;
  localStorage.setItem('mlsec-monitor-range', r);
  drawCharts();
});
document.querySelectorAll('.chart-panel [data-filter]').forEach((s) => {
  s.addEventListener('change', () => drawChartPanel(s.closest('.chart-panel')));
});

// ---- alerts page ---------------------------------------------------------------
async function drawAlertList() {
  const f = new FormData($('alert-filters'));
  const q = new URLSearchParams({ limit: '200' });
  for (const [k, v] of f) if (v) q.set(k, v);
  try {
    const r = await api('/alerts?' + q);
    fillOptions($('alert-filters').elements.service, r.alerts.map((a) => a.service));
    $('alerts-total').textContent = `(${r.alerts.length} shown · ${r.active_count} active)`;
    $('alert-list').innerHTML = r.alerts.length ? `<table class="list"><thead><tr><th>Severity</th><th>Service</th>
      <th>Alert</th><th>Status</th><th>Fired</th></tr></thead><tbody>${r.alerts.map((a) => `
      <tr class="alert-row ${esc(a.severity)}" data-id="${esc(a.alert_id)}"><td><span class="sev ${esc(a.severity)}">${esc(a.severity)}</span></td>
      <td>${esc(a.service)}</td><td><a href="#/alert/${encodeURIComponent(a.alert_id)}">${esc(a.message)}</a></td>
      <td>${esc(a.status)}${a.metadata.silenced ? ' <span class="tag">silenced</span>' : ''}</td><td>${esc(when(a.timestamp))}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted">No alert matches.</p>';
  } catch (e) { $('alert-list').textContent = 'could not load: ' + e.message; }
}
$('alert-filters').addEventListener('change', drawAlertList);

// ---- an alert's page: details, history, acknowledge / resolve, silence -----------
let shownAlert = null;

async function drawAlert(id) {
  let a;
  try { a = await api('/alerts/' + encodeURIComponent(id)); } catch (e) {
    $('alert-detail').innerHTML = `<h2>Alert</h2><p class="error">${esc(e.message)}</p>`;
    $('alert-actions').hidden = true;
    $('alert-history').innerHTML = '';
    return;
  }
  const fresh = !shownAlert || shownAlert.alert_id !== a.alert_id;
  shownAlert = a;
  const m = a.metadata;
  const labels = Object.entries(m.labels || {});
  $('alert-detail').innerHTML = `<h2><span class="sev ${esc(a.severity)}">${esc(a.severity)}</span> ${esc(a.message)}</h2>
    <p>${esc(a.description)}</p>
    <dl class="facts">
      <dt>Status</dt><dd id="alert-status">${esc(a.status)}${m.silenced ? ' <span class="tag" id="alert-silenced">silenced</span>' : ''}</dd>
      <dt>Service</dt><dd>${esc(a.service)}</dd>
      <dt>Rule</dt><dd>${esc(m.rule)}</dd>
      <dt>Value</dt><dd>${m.value === null ? '–' : esc(m.value)} (threshold ${m.threshold === null ? '–' : esc(m.threshold)})</dd>
      <dt>Fired</dt><dd>${esc(when(a.timestamp))}</dd>
      ${a.acknowledged_at ? `<dt>Acknowledged</dt><dd>${esc(when(a.acknowledged_at))} by ${esc(a.acknowledged_by)}</dd>` : ''}
      ${a.resolved_at ? `<dt>Resolved</dt><dd>${esc(when(a.resolved_at))}${m.resolved_by ? ' by ' + esc(m.resolved_by) : ''}</dd>` : ''}
      <dt>Labels</dt><dd>${labels.map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(' ') || '–'}</dd>
    </dl>`;
  $('alert-history').innerHTML = a.history.map((r) => `<li><b>${esc(r.action)}</b> by ${esc(r.actor)}
    <span class="muted">${esc(when(r.timestamp))}</span>${r.comment ? `<div class="comment">${esc(r.comment)}</div>` : ''}
    ${r.details ? `<div class="muted">${Object.entries(r.details).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(' · ')}</div>` : ''}</li>`).join('');
  const open = a.status !== 'resolved';
  $('alert-actions').hidden = !(session.can_operate && open);
  $('do-ack').hidden = a.status !== 'active';
  if (fresh) {
    const act = $('act-form');
    act.reset();
    act.elements.who.value = session.name || '';
    act.querySelector('.error').textContent = '';
    const sil = $('silence-form');
    sil.reset();
    const matchers = labels.length ? labels : [['alertname', m.rule]];
    sil.elements.matchers.value = matchers.map(([k, v]) => `${k}=${v}`).join('\n');
    sil.querySelector('.error').textContent = '';
  }
}

$('act-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const doing = ev.submitter ? ev.submitter.value : 'acknowledge';
  const comment = f.comment.value.trim() || undefined;
  const body = doing === 'acknowledge'
    ? { alert_id: shownAlert.alert_id, acknowledged_by: f.who.value.trim(), comment }
    : { alert_id: shownAlert.alert_id, resolved_by: f.who.value.trim(), resolution_notes: comment };
  try {
    await post(doing === 'acknowledge' ? '/alerts/acknowledge' : '/alerts/resolve', body);
    ev.target.querySelector('.error').textContent = '';
    f.comment.value = '';
  } catch (e) { ev.target.querySelector('.error').textContent = e.message; }
  drawAlert(shownAlert.alert_id);
});

$('silence-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const matchers = {};
  for (const line of f.matchers.value.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) matchers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  const ends = new Date(Date.now() + Number(f.hours.value) * 3600e3).toISOString();
  const who = $('act-form').elements.who.value.trim() || session.name || 'dashboard';
  try {
    await post('/silences', { matchers, ends_at: ends, created_by: who, comment: f.comment.value.trim() });
    ev.target.querySelector('.error').textContent = '';
    f.comment.value = '';
  } catch (e) { ev.target.querySelector('.error').textContent = e.message; }
  drawAlert(shownAlert.alert_id);
});

// ---- silences page -------------------------------------------------------------
async function drawSilences() {
  try {
    const r = await api('/silences');
    $('silence-list').innerHTML = r.silences.length ? `<table class="list"><thead><tr><th>Matchers</th><th>From</th>
      <th>Until</th><th>By</th><th>Why</th><th></th></tr></thead><tbody>${r.silences.map((s) => `
      <tr class="silence" data-id="${esc(s.id)}"><td>${Object.entries(s.matchers).map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(' ')}</td>
      <td>${esc(when(s.starts_at))}</td><td>${esc(when(s.ends_at))}</td><td>${esc(s.created_by)}</td><td>${esc(s.comment)}</td>
      <td>${s.active ? '<span class="tag">active</span>' : '<span class="muted">not active</span>'}
      ${session.can_operate ? '<button class="expire">Expire</button>' : ''}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted">No silences.</p>';
  } catch (e) { $('silence-list').textContent = 'could not load: ' + e.message; }
}

$('silence-list').addEventListener('click', async (ev) => {
  if (!ev.target.classList.contains('expire')) return;
  const id = ev.target.closest('.silence').dataset.id;
  try { await post('/silences/' + encodeURIComponent(id), undefined, 'DELETE'); } catch (e) { /* shown by the reload */ }
  drawSilences();
});

// ---- audit page ------------------------------------------------------------------
for (const a of AUDIT_ACTIONS) $('audit-filters').elements.action.add(new Option(a, a));

async function drawAudit() {
  const q = new URLSearchParams({ limit: '200' });
  for (const [k, v] of new FormData($('audit-filters'))) if (v.trim()) q.set(k, v.trim());
  try {
    const r = await api('/audit?' + q);
    $('audit-list').innerHTML = r.records.length ? `<table class="list"><thead><tr><th>#</th><th>When</th><th>Action</th>
      <th>Actor</th><th>Alert</th><th>Comment</th></tr></thead><tbody>${r.records.map((x) => `<tr><td>${x.seq}</td>
      <td>${esc(when(x.timestamp))}</td><td>${esc(x.action)}</td><td>${esc(x.actor)}</td>
      <td>${x.alert_id ? `<a href="#/alert/${encodeURIComponent(x.alert_id)}">${esc(x.alert_id)}</a>` : ''}</td>
      <td>${esc(x.comment)}</td></tr>`).join('')}</tbody></table>` : '<p class="muted">No record matches.</p>';
  } catch (e) { $('audit-list').textContent = 'could not load: ' + e.message; }
}
$('audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); drawAudit(); });
$('audit-filters').addEventListener('change', drawAudit);

// ---- pages -------------------------------------------------------------------------
let view = 'overview';

function route() {
  const [, page = 'overview', arg] = location.hash.split('/');
  view = document.querySelector(`.view[data-view="${page}"]`) ? page : 'overview';
  document.querySelectorAll('.view').forEach((v) => { v.hidden = v.dataset.view !== view; });
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.dataset.view === view || (view === 'alert' && a.dataset.view === 'alerts')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (view === 'overview') { refreshOpenAlerts(); drawOverviewChart(); }
  if (view === 'charts') drawCharts();
  if (view === 'alerts') drawAlertList();
  if (view === 'alert') { shownAlert = null; drawAlert(decodeURIComponent(arg || '')); }
  if (view === 'silences') drawSilences();
  if (view === 'audit') drawAudit();
}

// An alert changed: whatever shows alerts follows.
function onAlertChange() {
  refreshOpenAlerts();
  if (view === 'alerts') drawAlertList();
  if (view === 'alert' && shownAlert) drawAlert(shownAlert.alert_id);
  if (view === 'charts') drawChartPanel(document.querySelector('[data-chart="alerts-timeline"]'));
}

// ---- start: sign in first, then the dashboard ------------------------------
function boot() {
  $('dashboard').hidden = false;
  $('feed').hidden = false;
  $('nav').hidden = false;
  $('overall').hidden = false;
  $('whoami').textContent = !session.auth ? 'access control off'
    : session.name ? `signed in as ${session.name} (${session.role})` : 'public, read-only';
  $('signout').hidden = !token;
  $('signin-open').hidden = !(session.auth && !token);
  themeCharts();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    themeCharts();
    Object.values(Chart.instances).forEach((c) => c.destroy());
    route();
  });
  window.addEventListener('hashchange', route);
  refreshServices();
  refreshPlatform();
  route();
  setInterval(refreshPlatform, POLL_MS);
  setInterval(onAlertChange, POLL_MS);
  setInterval(() => {
    if (view === 'charts') drawCharts();
    if (view === 'overview') drawOverviewChart();
  }, CHART_REFRESH_MS);
  connect();
}

(async () => {
  const why = sessionStorage.getItem(WHY_KEY);
  sessionStorage.removeItem(WHY_KEY);
  let r;
  try { r = await sessionOf(token); } catch (e) { return showSignIn('the appliance did not answer: reload to try again'); }
  if (r.status === 401 && token) return signOut(r.body.error);
  if (r.status !== 200) return showSignIn(r.body.error || 'sign-in failed (' + r.status + ')');
  session = r.body;
  if (!session.can_read) return showSignIn(why || (token ? `token '${session.name}' has role ${session.role}: it may not read the dashboard` : ''));
  boot();
})();
