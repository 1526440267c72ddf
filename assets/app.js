// mlsec-monitor dashboard: plain JavaScript, no build step, nothing fetched
// from outside the appliance. Live values come over /ws/metrics; when the
// socket is down the page polls the REST API and keeps reconnecting.
'use strict';

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const num = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '–');
const POLL_MS = 5000;

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
    refreshAll();
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
      refreshAlerts();
    }
  };
  ws.onclose = () => {
    $('feed').textContent = 'polling (live feed reconnecting)';
    startPolling();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

// ---- chart: a small line chart on a canvas ---------------------------------
async function drawChart() {
  const metric = $('metric').value;
  const range = $('range').value;
  let chart;
  try {
    chart = await api('/charts/system-metrics?time_range=' + range + (metric ? '&metric=' + metric : ''));
  } catch (e) { return; }
  const c = $('chart');
  const w = (c.width = c.clientWidth * devicePixelRatio);
  const h = (c.height = 220 * devicePixelRatio);
  const g = c.getContext('2d');
  g.clearRect(0, 0, w, h);
  const vals = chart.datasets.flatMap((d) => d.data.filter((v) => v !== null));
  const max = Math.max(1, ...vals) * 1.1;
  const n = chart.labels.length;
  const pad = 30 * devicePixelRatio;
  g.strokeStyle = '#262b38';
  g.fillStyle = '#7c8497';
  g.font = 11 * devicePixelRatio + 'px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = h - pad - ((h - 2 * pad) * i) / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke();
    g.fillText(((max * i) / 4).toFixed(0), 2, y - 2);
  }
  for (const d of chart.datasets) {
    g.strokeStyle = d.borderColor;
    g.lineWidth = 1.5 * devicePixelRatio;
    g.beginPath();
    let pen = false;
    d.data.forEach((v, i) => {
      if (v === null) { pen = false; return; } // a gap, not a zero
      const x = pad + ((w - pad) * i) / Math.max(1, n - 1);
      const y = h - pad - ((h - 2 * pad) * v) / max;
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    });
    g.stroke();
    // A point with gaps on both sides would draw nothing: mark it.
    g.fillStyle = d.borderColor;
    d.data.forEach((v, i) => {
      if (v !== null && d.data[i - 1] == null && d.data[i + 1] == null) {
        const x = pad + ((w - pad) * i) / Math.max(1, n - 1);
        const y = h - pad - ((h - 2 * pad) * v) / max;
        g.fillRect(x - 2 * devicePixelRatio, y - 2 * devicePixelRatio, 4 * devicePixelRatio, 4 * devicePixelRatio);
      }
    });
  }
  $('legend').innerHTML = chart.datasets
    .map((d) => `<span><i style="background:${esc(d.borderColor)}"></i>${esc(d.label)}</span>`).join('');
}

// ---- panels ----------------------------------------------------------------
async function refreshServices() {
  try {
    const s = await api('/service-health');
    const names = Object.keys(s.services);
    $('overall').textContent = s.overall_status;
    $('overall').className = 'pill ' + s.overall_status;
    if (!names.length) return;
    $('services').innerHTML = names.map((name) => {
      const v = s.services[name];
      return `<div class="card ${esc(v.status)}"><h3>${esc(name)}</h3>
        <div>${esc(v.status)} · ${num(v.response_time_ms)} ms</div>
        <div>CPU ${num(v.cpu_usage)} % · ${num(v.memory_usage_mb, 0)} MiB</div>
        ${v.error_message ? `<div>${esc(v.error_message)}</div>` : ''}</div>`;
    }).join('');
  } catch (e) { /* keep the last view */ }
}

async function refreshAlerts() {
  try {
    const [active, acked] = await Promise.all([
      api('/alerts?status=active&limit=20'), api('/alerts?status=acknowledged&limit=20')]);
    const all = active.alerts.concat(acked.alerts);
    $('alert-count').textContent = `(${active.active_count} active)`;
    $('active').textContent = active.active_count;
    $('alerts').innerHTML = all.length ? all.map((a) => `
      <div class="alert ${esc(a.severity)}" data-id="${esc(a.alert_id)}">
        <div><b>${esc(a.severity.toUpperCase())}</b> ${esc(a.service)} · ${esc(a.status)}</div>
        <div>${esc(a.message)}</div>
        <div class="meta">${esc(a.timestamp)}${a.acknowledged_by ? ' · acknowledged by ' + esc(a.acknowledged_by) : ''}</div>
        <div class="actions">
          ${session.can_operate && a.status === 'active' ? '<button class="ack">Acknowledge</button>' : ''}
          ${session.can_operate ? '<button class="resolve">Resolve</button>' : ''}
        </div></div>`).join('') : '<p class="muted">No open alerts.</p>';
  } catch (e) { /* keep the last view */ }
}

async function act(kind, id) {
  const who = prompt('Your name', session.name || '');
  if (!who) return;
  const note = prompt(kind === 'ack' ? 'Comment' : 'Resolution notes') || undefined;
  const body = kind === 'ack'
    ? { alert_id: id, acknowledged_by: who, comment: note }
    : { alert_id: id, resolved_by: who, resolution_notes: note };
  try {
    await api(kind === 'ack' ? '/alerts/acknowledge' : '/alerts/resolve', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  } catch (e) { alert('Failed: ' + e.message); }
  refreshAlerts();
}

$('alerts').addEventListener('click', (ev) => {
  const box = ev.target.closest('.alert');
  if (!box) return;
  if (ev.target.classList.contains('ack')) act('ack', box.dataset.id);
  if (ev.target.classList.contains('resolve')) act('resolve', box.dataset.id);
});

async function refreshPlatform() {
  try {
    const m = await api('/model-loading-status');
    if (m.models.length) {
      $('models').innerHTML = `<p class="muted">${m.loaded_models} loaded · ${m.loading_models} loading · ${m.failed_models} failed · ${num(m.total_memory_usage_mb, 0)} MiB</p>
        <table>${m.models.map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.status)}</td>
        <td><div class="bar"><i style="width:${x.progress}%"></i></div></td></tr>`).join('')}</table>`;
    }
    const t = await api('/training-status');
    if (t.jobs.length) {
      const q = t.queue_status;
      $('training').innerHTML = `<p class="muted">${q.running_jobs} running · ${q.pending_jobs} pending · ${q.completed_jobs} done · ${q.failed_jobs} failed</p>
        <table>${t.jobs.map((j) => `<tr><td>${esc(j.job_id)}</td><td>${esc(j.model_name)}</td><td>${esc(j.status)}</td>
        <td><div class="bar"><i style="width:${j.progress}%"></i></div></td></tr>`).join('')}</table>`;
    }
  } catch (e) { /* keep the last view */ }
}

function refreshAll() {
  refreshServices();
  refreshAlerts();
  refreshPlatform();
}

// ---- start: sign in first, then the dashboard ------------------------------
function boot() {
  $('dashboard').hidden = false;
  $('feed').hidden = false;
  $('overall').hidden = false;
  $('whoami').textContent = !session.auth ? 'access control off'
    : session.name ? `signed in as ${session.name} (${session.role})` : 'public, read-only';
  $('signout').hidden = !token;
  $('signin-open').hidden = !(session.auth && !token);
  $('metric').addEventListener('change', drawChart);
  $('range').addEventListener('change', drawChart);
  window.addEventListener('resize', drawChart);
  refreshAll();
  drawChart();
  setInterval(refreshPlatform, POLL_MS);
  setInterval(refreshAlerts, POLL_MS);
  setInterval(drawChart, 30000);
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
