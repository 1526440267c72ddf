// Drives the /ui dashboard in headless Debian Chromium (playwright-core, no
// downloaded browser). Usage: node dashboard.mjs BASE_URL SCREENSHOT_PATH
// with VIEWER_TOKEN and OPERATOR_TOKEN in the environment. Signs in with a
// bad token, then as a viewer (no alert controls), signs out, signs in as an
// operator and acknowledges an alert. Prints one JSON line with what it
// saw; exits non-zero on a failed check.
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { consoleErrors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => out.consoleErrors.push(String(e)));
  // The dashboard asks for the operator's name, then a comment.
  const answers = ['e2e-operator', 'acknowledged from the browser test'];
  page.on('dialog', (d) => d.accept(answers.shift() ?? ''));
  const started = Date.now();
  await page.goto(base + '/ui', { waitUntil: 'load' });
  out.loadMs = Date.now() - started;
  // Signed out: the sign-in form, and nothing of the dashboard.
  await page.waitForSelector('#signin:not([hidden])', { timeout: 10000 });
  out.signedOut = { dashboardHidden: await page.isHidden('#dashboard') };
  const signIn = async (t) => {
    await page.fill('#token-input', t);
    await page.click('#signin-form button[type=submit]');
  };
  await signIn('mlsec_not_a_token');
  await page.waitForFunction(() => document.getElementById('signin-error').textContent !== '', null, { timeout: 10000 });
  out.signedOut.badTokenError = await page.textContent('#signin-error');
  await page.screenshot({ path: shot.replace(/\.png$/, '-signin.png') });
  // A viewer sees the alerts and no control to change them.
  await signIn(process.env.VIEWER_TOKEN);
  await page.waitForSelector('#dashboard:not([hidden]) .alert', { timeout: 10000 });
  out.viewer = {
    whoami: await page.textContent('#whoami'),
    alerts: await page.$$eval('.alert', (a) => a.length),
    buttons: await page.$$eval('.alert button', (b) => b.length),
  };
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', { timeout: 10000 });
  // The operator.
  await signIn(process.env.OPERATOR_TOKEN);
  await page.waitForSelector('#dashboard:not([hidden])', { timeout: 10000 });
  out.operator = { whoami: await page.textContent('#whoami') };
  await page.waitForFunction(() => document.getElementById('feed').textContent === 'live', null, { timeout: 10000 });
  // Live values change: the CPU tile is filled, then the feed keeps ticking.
  await page.waitForFunction(() => /%/.test(document.getElementById('cpu').textContent), null, { timeout: 10000 });
  const first = await page.textContent('#net');
  const ticks = await page.evaluate(() => new Promise((resolve) => {
    let n = 0;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/metrics';
    const ws = new WebSocket(url, ['bearer', sessionStorage.getItem('mlsec-monitor-token')]);
    ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'metrics' && ++n === 2) { ws.close(); resolve(n); } };
    setTimeout(() => resolve(n), 8000);
  }));
  out.liveMessages = ticks;
  out.netBefore = first;
  // A real alert is on the page: acknowledge it.
  await page.waitForSelector('.alert button.ack', { timeout: 10000 });
  out.alertId = await page.getAttribute('.alert', 'data-id');
  await page.click(`.alert[data-id="${out.alertId}"] button.ack`);
  await page.waitForFunction((id) => {
    const el = document.querySelector(`.alert[data-id="${id}"]`);
    return el && /acknowledged/.test(el.textContent);
  }, out.alertId, { timeout: 10000 });
  out.services = await page.$$eval('#services .card', (cards) => cards.length);
  await page.screenshot({ path: shot, fullPage: true });
  // A phone's width and a wall screen's: how many columns the panels take,
  // and whether anything is wider than the screen.
  for (const [name, width, height] of [['phone', 375, 800], ['wall', 2560, 1440]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    out[name] = await page.evaluate(() => ({
      columns: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length,
      overflowPx: document.documentElement.scrollWidth - window.innerWidth,
    }));
    await page.screenshot({ path: shot.replace(/\.png$/, `-${name}.png`), fullPage: true });
  }
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
