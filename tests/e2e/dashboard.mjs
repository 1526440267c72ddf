// Drives the /ui dashboard in headless Debian Chromium (playwright-core, no
// downloaded browser). Usage: node dashboard.mjs BASE_URL SCREENSHOT_PATH
// with VIEWER_TOKEN and OPERATOR_TOKEN in the environment. Signs in with a
// bad token, then as a viewer (no alert controls), signs out, signs in as an
// operator; reads every chart back from its Chart.js instance, acknowledges
// an alert with a comment on its page, silences it from there, and looks at
// the silences and the audit trail. Prints one JSON line with what it saw;
// the Rust test (tests/dashboard_e2e.rs) judges it.
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
const origin = new URL(base);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { consoleErrors: [], foreignRequests: [], firstLoadBytes: 0 };
const T = { timeout: 10000 };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => out.consoleErrors.push(String(e)));
  // Nothing may leave the appliance's origin (the websocket included).
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.host !== origin.host) out.foreignRequests.push(r.url());
  });
  // What a load transfers, compressed: the first one until the sign-in
  // form shows, and a signed-in one until the overview has its data.
  let counting = 'firstLoadBytes';
  page.on('requestfinished', async (r) => {
    if (!counting) return;
    const key = counting;
    const s = await r.sizes().catch(() => null);
    if (s) out[key] = (out[key] || 0) + s.responseBodySize + s.responseHeadersSize;
  });
  const started = Date.now();
  await page.goto(base + '/ui', { waitUntil: 'load' });
  out.loadMs = Date.now() - started;
  // Signed out: the sign-in form, and nothing of the dashboard.
  await page.waitForSelector('#signin:not([hidden])', T);
  await page.waitForLoadState('networkidle');
  counting = null;
  out.signedOut = { dashboardHidden: await page.isHidden('#dashboard') };
  const signIn = async (t) => {
    await page.fill('#token-input', t);
    await page.click('#signin-form button[type=submit]');
  };
  await signIn('mlsec_not_a_token');
  await page.waitForFunction(() => document.getElementById('signin-error').textContent !== '', null, T);
  out.signedOut.badTokenError = await page.textContent('#signin-error');
  await page.screenshot({ path: shot.replace(/\.png$/, '-signin.png') });
  // A viewer sees the alerts and no control to change them.
  await signIn(process.env.VIEWER_TOKEN);
  await page.waitForSelector('#dashboard:not([hidden]) .alert', T);
  out.viewer = {
    whoami: await page.textContent('#whoami'),
    alerts: await page.$$eval('.alert', (a) => a.length),
    buttons: await page.$$eval('.alert button', (b) => b.length),
  };
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', T);
  // The operator.
  await signIn(process.env.OPERATOR_TOKEN);
  await page.waitForSelector('#dashboard:not([hidden])', T);
  out.operator = { whoami: await page.textContent('#whoami') };
  await page.waitForFunction(() => document.getElementById('feed').textContent === 'live', null, T);
  // Live values change: the CPU tile is filled, then the feed keeps ticking.
  await page.waitForFunction(() => /%/.test(document.getElementById('cpu').textContent), null, T);
  out.liveMessages = await page.evaluate(() => new Promise((resolve) => {
    let n = 0;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/metrics';
    const ws = new WebSocket(url, ['bearer', sessionStorage.getItem('mlsec-monitor-token')]);
    ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'metrics' && ++n === 2) { ws.close(); resolve(n); } };
    setTimeout(() => resolve(n), 8000);
  }));
  await page.waitForSelector('#services .card', T);
  out.services = await page.$$eval('#services .card', (cards) => cards.length);
  await page.waitForFunction(() => Chart.getChart(document.getElementById('chart')), null, T);
  out.overviewChartPoints = await page.evaluate(() => Chart.getChart(document.getElementById('chart')).data.labels.length);
  await page.waitForFunction(() => (Chart.getChart(document.getElementById('chart')).$marks || []).length > 0, null, T);
  out.overviewMarks = await page.evaluate(() => Chart.getChart(document.getElementById('chart')).$marks.map((m) => m.metric));
  await page.screenshot({ path: shot, fullPage: true });
  counting = 'signedInLoadBytes';
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => Chart.getChart(document.getElementById('chart')), null, T);
  // (Never network-idle: the live feed refreshes the services every tick.)
  await page.waitForTimeout(1500);
  counting = null;

  // Every chart, read back from its Chart.js instance and compared with
  // what its endpoint answers for the same range and filter.
  const readCharts = () => page.evaluate(async () => {
    const t = sessionStorage.getItem('mlsec-monitor-token');
    const range = document.querySelector('#ranges [aria-checked="true"]').dataset.range;
    const seen = {};
    for (const panel of document.querySelectorAll('.chart-panel')) {
      const c = Chart.getChart(panel.querySelector('canvas'));
      const q = new URLSearchParams({ time_range: range });
      const f = panel.querySelector('[data-filter]');
      if (f && f.value) q.set(f.dataset.filter, f.value);
      const api = await (await fetch(`/charts/${panel.dataset.chart}?${q}`, { headers: { Authorization: 'Bearer ' + t } })).json();
      // A gap: every null point is skipped by the line, none drawn as 0.
      let nulls = 0; let skipped = 0;
      c.data.datasets.forEach((d, i) => d.data.forEach((v, j) => {
        if (v === null) { nulls++; if (c.getDatasetMeta(i).data[j].skip) skipped++; }
      }));
      seen[panel.dataset.chart] = {
        type: c.config.type, xScale: c.options.scales.x.type, points: c.data.labels.length,
        apiPoints: api.labels.length, datasets: c.data.datasets.map((d) => d.data.length),
        apiDatasets: api.datasets.length, nulls, skipped, spanGaps: c.data.datasets.every((d) => !d.spanGaps),
        summary: panel.querySelector('.summary').textContent,
      };
    }
    return { range, charts: seen };
  });
  await page.click('#nav a[data-view="charts"]');
  await page.waitForFunction(() => [...document.querySelectorAll('.chart-panel canvas')].every((c) => Chart.getChart(c)), null, T);
  out.charts24h = await readCharts();
  await page.click('#ranges button[data-range="1h"]');
  await page.waitForFunction(() => Chart.getChart(document.querySelector('[data-chart="system-metrics"] canvas')).data.labels.length !== 288 &&
    document.querySelector('#ranges [aria-checked="true"]').dataset.range === '1h', null, T);
  await page.waitForTimeout(500);
  out.charts1h = await readCharts();
  out.chartsMarks = await page.evaluate(() =>
    (Chart.getChart(document.querySelector('[data-chart="system-metrics"] canvas')).$marks || []).map((m) => m.metric));
  // A legend click hides a line (Chart.js's own legend).
  out.legendToggle = await page.evaluate(() => {
    const c = Chart.getChart(document.querySelector('[data-chart="system-metrics"] canvas'));
    const item = c.legend.legendItems[0];
    c.options.plugins.legend.onClick.call(c.legend, new MouseEvent('click'), item, c.legend);
    return c.isDatasetVisible(0) === false;
  });
  await page.screenshot({ path: shot.replace(/\.png$/, '-charts.png'), fullPage: true });

  // The alerts page, filtered, then one alert's page.
  await page.click('#nav a[data-view="alerts"]');
  await page.selectOption('#alert-filters select[name="status"]', 'active');
  await page.waitForSelector('#alert-list .alert-row', T);
  out.alertRows = await page.$$eval('#alert-list .alert-row', (r) => r.length);
  // The test's own alert (built-in rules may fire on a busy machine too).
  out.alertId = await page.locator('#alert-list .alert-row', { hasText: 'queue_depth' }).first().getAttribute('data-id');
  await page.click(`#alert-list .alert-row[data-id="${out.alertId}"] a`);
  await page.waitForSelector('#alert-history li', T);
  // Acknowledge with a comment: it shows in the alert's history.
  await page.fill('#act-form input[name="who"]', 'e2e-operator');
  await page.fill('#act-form textarea[name="comment"]', 'acknowledged from the browser test');
  await page.click('#do-ack');
  await page.waitForFunction(() => [...document.querySelectorAll('#alert-history li')]
    .some((li) => /acknowledged/.test(li.textContent) && /from the browser test/.test(li.textContent)), null, T);
  out.status = await page.textContent('#alert-status');
  // Its delivery to the webhook is in its history too, with the channel.
  await page.waitForFunction(() => [...document.querySelectorAll('#alert-history li')]
    .some((li) => /^\s*notified/.test(li.textContent)), null, T);
  out.history = await page.$$eval('#alert-history li', (l) => l.map((x) => x.textContent.trim().replace(/\s+/g, ' ')));
  // Silence it from its page: matchers prefilled from its labels.
  out.prefilledMatchers = await page.inputValue('#silence-form textarea[name="matchers"]');
  await page.fill('#silence-form input[name="comment"]', 'maintenance window');
  await page.click('#silence-form button[type=submit]');
  await page.waitForSelector('#alert-silenced', T);
  await page.screenshot({ path: shot.replace(/\.png$/, '-alert.png'), fullPage: true });
  await page.click('#nav a[data-view="silences"]');
  await page.waitForSelector('#silence-list .silence', T);
  out.silences = await page.$$eval('#silence-list .silence', (s) => s.map((x) => x.textContent));
  await page.click('#nav a[data-view="audit"]');
  await page.selectOption('#audit-filters select[name="action"]', 'acknowledged');
  // The unfiltered list may still be showing: wait for the filtered one
  // (the Rust side asserts it holds only acknowledgements).
  await page.waitForFunction(() => {
    const actions = [...document.querySelectorAll('#audit-list tbody tr td:nth-child(3)')].map((c) => c.textContent);
    return actions.length > 0 && !actions.includes('fired');
  }, null, T);
  out.auditActions = await page.$$eval('#audit-list tbody tr td:nth-child(3)', (c) => c.map((x) => x.textContent));

  // A phone's width and a wall screen's: how many columns the panels take,
  // and whether anything is wider than the screen.
  await page.click('#nav a[data-view="overview"]');
  for (const [name, width, height] of [['phone', 375, 800], ['wall', 2560, 1440]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    out[name] = await page.evaluate(() => ({
      columns: getComputedStyle(document.querySelector('.view:not([hidden])')).gridTemplateColumns.split(' ').length,
      overflowPx: document.documentElement.scrollWidth - window.innerWidth,
    }));
    await page.screenshot({ path: shot.replace(/\.png$/, `-${name}.png`), fullPage: true });
  }
  // Dark and light follow the system setting.
  out.background = {};
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    out.background[scheme] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  }
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
