// Browser end-to-end test of the pages with API keys on (issue 16): the
// real `serve` binary with APP_API_KEYS on small generated data, headless
// Debian Chromium driven by playwright-core.
//
// * `/#key=KEY`: the dashboard renders, every data request carried the bearer
//   key, the key left the address bar and reached no URL or log line;
// * no key: the page asks for one (its form), and with a read-only key typed
//   in, it renders;
// * Swagger UI `/docs#key=KEY`: the document loads, the bearer scheme is
//   pre-authorized, and "Try it out" on GET /ready sends the key (200).
//
//   make test-e2e

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const target = path.resolve(root, process.env.CARGO_TARGET_DIR || 'target');
const bin = (name) => path.join(target, 'release', name);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const KEY = 'e2e-all-scopes-key-0123456789';
const READ_KEY = 'e2e-read-only-key-0123456789';

let work;
let server;
let serverLog = '';
let base;
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  for (const b of ['analytics', 'serve']) {
    assert.ok(fs.existsSync(bin(b)), `${bin(b)} is missing: cargo build --release first`);
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-e2e-'));
  const data = path.join(work, 'curated');
  const models = path.join(work, 'models');
  const g = spawnSync(bin('analytics'), ['generate', '--lines', '20k', '--seed', '7', '--out', data], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  const t = spawnSync(bin('analytics'), ['train', '--data', data, '--models', models], {
    encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
  assert.equal(t.status, 0, t.stderr);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin('serve'), ['--bind', `127.0.0.1:${port}`, '--data', data, '--models', models], {
    env: {
      ...process.env, OMP_WAIT_POLICY: 'PASSIVE', APP_RELOAD_INTERVAL_MS: '0',
      APP_API_KEYS: `${KEY},${READ_KEY}:read`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (b) => { serverLog += b; });
  server.stderr.on('data', (b) => { serverLog += b; });
  const until = Date.now() + 180000;
  for (;;) {
    try {
      const r = await fetch(base + '/ready', { headers: { Authorization: 'Bearer ' + KEY } });
      if (r.ok) break;
    } catch (e) { /* not yet */ }
    if (server.exitCode !== null || Date.now() > until) throw new Error('serve not ready:\n' + serverLog);
    await new Promise((r) => setTimeout(r, 250));
  }
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/// A page that records every request to the server (with its headers).
async function page() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const p = await context.newPage();
  const requests = [];
  await p.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin === base || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
    return route.abort();
  });
  p.on('request', (r) => requests.push({ url: r.url(), auth: r.headers().authorization || '' }));
  return { p, requests };
}

test('dashboard with a key in the URL fragment: data requests carry it, the URL and the logs do not', async () => {
  const { p, requests } = await page();
  await p.goto(base + '/#key=' + KEY);
  await p.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 60000 });
  assert.ok(!p.url().includes(KEY), 'the key stayed in the address bar: ' + p.url());
  const data = requests.filter((r) => new URL(r.url).pathname.startsWith('/api/'));
  assert.ok(data.length >= 2, JSON.stringify(requests));
  for (const r of data) assert.equal(r.auth, 'Bearer ' + KEY, r.url);
  for (const r of requests) assert.ok(!r.url.includes(KEY), 'key in a URL: ' + r.url);
  assert.equal(await p.locator('#api-key-form').count(), 0);
  assert.ok(!serverLog.includes(KEY), 'the key is in the server log');
  await p.context().close();
});

test('dashboard without a key asks for one, and renders with the key typed in', async () => {
  const { p } = await page();
  await p.goto(base + '/');
  await p.waitForSelector('#api-key-form', { timeout: 30000 });
  await p.fill('#api-key-input', READ_KEY);
  await Promise.all([p.waitForNavigation(), p.click('#api-key-form button')]);
  await p.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 60000 });
  assert.equal(await p.locator('#api-key-form').count(), 0);
  await p.context().close();
});

test('Swagger UI: the document loads with the key, Authorize is set, and Try it out sends the key', async () => {
  const { p, requests } = await page();
  await p.goto(base + '/docs#key=' + KEY);
  await p.waitForSelector('.opblock-summary-path[data-path="/ready"]', { timeout: 60000 });
  await p.waitForSelector('.btn.authorize.locked', { timeout: 30000 });
  const op = p.locator('#operations-health-ready');
  await op.locator('.opblock-summary').click();
  await op.locator('.try-out__btn').click();
  await op.locator('.execute').click();
  const status = op.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor({ timeout: 30000 });
  assert.equal((await status.textContent()).trim(), '200');
  const ready = requests.filter((r) => new URL(r.url).pathname === '/ready');
  assert.ok(ready.length >= 1 && ready.every((r) => r.auth === 'Bearer ' + KEY), JSON.stringify(ready));
  await p.context().close();
});
