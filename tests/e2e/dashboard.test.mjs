// Browser end-to-end test of the dashboard: the real `serve` binary on small
// generated data, headless Debian Chromium driven by playwright-core.
//
//   make test-e2e            (npm ci here, then this file with node --test)
//
// Needs target/release/{analytics,serve} (or $CARGO_TARGET_DIR/release/...)
// and /usr/bin/chromium (or $CHROMIUM). Writes the screenshots to
// <target>/test-artifacts/dashboard.png and dashboard-mobile.png.

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
const artifacts = path.join(target, 'test-artifacts');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

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

function run(cmd, args, timeoutMs) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  return { ok: r.status === 0, out: (r.stdout || '') + (r.stderr || '') };
}

async function waitReady(url, ms) {
  const until = Date.now() + ms;
  let last = '';
  while (Date.now() < until) {
    if (server.exitCode !== null) throw new Error('serve exited (' + server.exitCode + '):\n' + serverLog);
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = 'HTTP ' + r.status;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('serve not ready after ' + ms + ' ms (' + last + '):\n' + serverLog);
}

async function api(query) {
  const r = await fetch(base + '/api/dashboard' + (query ? '?' + query : ''));
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

// Independent of the page's own code: R$ 1.234,56 and 1.234.
function brl(x) {
  const [i, f] = Math.abs(x).toFixed(2).split('.');
  return (x < 0 ? '-R$ ' : 'R$ ') + i.replace(/\B(?=(\d{3})+(?!\d))/g, '.') + ',' + f;
}
function int(x) {
  return Math.round(x).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.');
}
function pct(x) {
  return (x * 100).toFixed(1).replace('.', ',') + '%';
}

async function cards(page) {
  return page.$$eval('.kpi', (els) => Object.fromEntries(els.map((e) => [
    e.id.replace('kpi-', ''), { value: e.dataset.value, text: e.querySelector('.value').textContent },
  ])));
}

function checkCards(c, d) {
  const k = d.kpis;
  assert.equal(Number(c.revenue.value), k.revenue.value, 'revenue card value');
  assert.equal(c.revenue.text, brl(k.revenue.value), 'revenue card text');
  assert.equal(c.orders.text, int(k.orders.value), 'orders card');
  assert.equal(Number(c.average_ticket.value), k.average_ticket.value, 'ticket card value');
  assert.equal(c.average_ticket.text, brl(k.average_ticket.value), 'ticket card text');
  assert.equal(c.active_customers.text, int(k.active_customers.value), 'customers card');
  if (k.churn_rate.value === null) assert.equal(c.churn_rate.text, 'n/a');
  else assert.equal(c.churn_rate.text, pct(k.churn_rate.value), 'churn card');
}

async function waitRendered(page, query) {
  await page.waitForFunction((q) => document.body.dataset.state === 'ready' && window.dashboardLast && window.dashboardLast.query === q, query, { timeout: 60000 });
}

before(async () => {
  for (const b of ['analytics', 'serve']) {
    assert.ok(fs.existsSync(bin(b)), `${bin(b)} is missing: cargo build --release first`);
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-e2e-'));
  const data = path.join(work, 'curated');
  const models = path.join(work, 'models');
  const g = run(bin('analytics'), ['generate', '--lines', '20k', '--seed', '7', '--out', data], 300000);
  assert.ok(g.ok, 'analytics generate failed:\n' + g.out);
  // A segment model makes the segment filter and the PCA map live; the page
  // must work without one too, so a failing or older `train` is tolerated.
  const t = run(bin('analytics'), ['train', '--data', data, '--models', models], 600000);
  console.log('# analytics train: ' + (t.ok ? 'ok' : 'failed (the dashboard runs without models)'));
  fs.mkdirSync(models, { recursive: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin('serve'), ['--bind', `127.0.0.1:${port}`, '--data', data, '--models', models], {
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', APP_RELOAD_INTERVAL_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (b) => { serverLog += b; });
  server.stderr.on('data', (b) => { serverLog += b; });
  await waitReady(base + '/api/dashboard/options', 180000);
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('dashboard: cards equal the API, filters update the figures, every chart and the map render, nothing leaves the server', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, locale: 'en-US' });
  const page = await context.newPage();
  const outside = [];
  const failed = [];
  const isLocal = (u) => {
    const url = new URL(u);
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.protocol === 'about:') return true;
    return url.origin === base;
  };
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (isLocal(u)) return route.continue();
    outside.push(u);
    return route.abort();
  });
  page.on('request', (r) => { if (!isLocal(r.url())) outside.push(r.url()); });
  page.on('requestfailed', (r) => failed.push(r.url() + ' ' + (r.failure() || {}).errorText));
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

  // First full render: page load until every chart and the map are drawn.
  const t0 = Date.now();
  await page.goto(base + '/');
  await waitRendered(page, '');
  const wallMs = Date.now() - t0;
  const inPageMs = await page.evaluate(() => window.dashboardFirstRenderMs);
  console.log(`# first full render: ${wallMs} ms from navigation (in page: ${Math.round(inPageMs)} ms after script start)`);

  // KPI cards = API.
  const d0 = await api('');
  assert.equal(d0.empty, false);
  checkCards(await cards(page), d0);

  // Every chart is a non-empty plotly SVG; the map has 27 states and bubbles.
  for (const id of ['chart-monthly', 'chart-category', 'chart-cohort']) {
    const n = await page.$$eval(`#${id} svg.main-svg *`, (els) => els.length);
    assert.ok(n > 20, `${id} is empty (${n} SVG elements)`);
  }
  assert.ok(await page.$$eval('#chart-monthly .scatterlayer .trace path', (e) => e.length) > 0, 'monthly line');
  assert.ok(await page.$$eval('#chart-category .barlayer .point', (e) => e.length) >= 3, 'category bars');
  assert.ok(await page.$$eval('#chart-cohort .heatmaplayer image', (e) => e.length) > 0, 'cohort heatmap');
  const options = await (await fetch(base + '/api/dashboard/options')).json();
  if (options.segments.available) {
    const pts = await page.$$eval('#chart-pca .scatterlayer .point', (e) => e.length);
    assert.ok(pts > 10, `PCA map has ${pts} points`);
    console.log(`# segment model ${options.segments.version}: PCA map with ${pts} points`);
  } else {
    const note = await page.textContent('#chart-pca .placeholder');
    assert.match(note, /No segment model/);
    console.log('# no segment model: the PCA map shows its note: ' + note);
  }
  assert.equal(await page.$$eval('#map svg path', (e) => e.length), 27, 'map: 27 states');
  const bubbles = await page.$$eval('#map svg circle', (e) => e.length);
  assert.equal(bubbles, d0.by_state.filter((s) => s.latitude !== null).length, 'one bubble per state with revenue');
  // Bubbles sit at the capitals: São Paulo's inside the SP shape, Manaus in AM.
  for (const uf of ['SP', 'AM', 'MG']) {
    if (!d0.by_state.some((s) => s.state === uf)) continue;
    const inside = await page.evaluate((uf) => {
      const c = document.querySelector(`#map circle[data-state="${uf}"]`);
      const p = document.getElementById('state-' + uf);
      const pt = p.ownerSVGElement.createSVGPoint();
      pt.x = +c.getAttribute('cx');
      pt.y = +c.getAttribute('cy');
      return p.isPointInFill(pt);
    }, uf);
    assert.ok(inside, `the ${uf} bubble is inside ${uf}`);
  }

  // Changing the category filter: revenue becomes the API's for that filter.
  const cat = options.categories[0];
  const f = d0.filter;
  await page.selectOption('#f-category', [cat]);
  const q1 = new URLSearchParams([['from', f.from], ['to', f.to], ['category', cat]]).toString();
  const tChange = Date.now();
  await waitRendered(page, q1);
  console.log(`# category change: ${Date.now() - tChange} ms to re-render (server ${Math.round(await page.evaluate(() => window.dashboardLast.data.compute_ms))} ms)`);
  const d1 = await api(q1);
  assert.ok(d1.kpis.revenue.value < d0.kpis.revenue.value, 'one category makes less revenue than all');
  checkCards(await cards(page), d1);
  assert.ok(page.url().includes('category='), 'the URL keeps the filter: ' + page.url());

  // The URL alone restores the view.
  const shared = page.url();
  const page2 = await context.newPage();
  await page2.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : (outside.push(route.request().url()), route.abort())));
  await page2.goto(shared);
  await waitRendered(page2, q1);
  checkCards(await cards(page2), d1);
  assert.deepEqual(await page2.$eval('#f-category', (s) => Array.from(s.selectedOptions).map((o) => o.value)), [cat]);
  await page2.close();

  // A state filter through the form; then an empty selection shows its message.
  await page.selectOption('#f-state', 'SP');
  const q2 = new URLSearchParams([['from', f.from], ['to', f.to], ['category', cat], ['state', 'SP']]).toString();
  await waitRendered(page, q2);
  checkCards(await cards(page), await api(q2));
  // A month before the data (the API refuses dates more than a year outside it).
  const iso = (d) => d.toISOString().slice(0, 10);
  const br = (d) => `${iso(d).slice(8, 10)}/${iso(d).slice(5, 7)}/${iso(d).slice(0, 4)}`;
  const emptyFrom = new Date(Date.parse(options.min_date + 'T00:00:00Z') - 200 * 86400e3);
  const emptyTo = new Date(emptyFrom.getTime() + 30 * 86400e3);
  await page.fill('#f-from', br(emptyFrom));
  await page.fill('#f-to', br(emptyTo));
  await page.click('#apply');
  const q3 = new URLSearchParams([['from', iso(emptyFrom)], ['to', iso(emptyTo)], ['category', cat], ['state', 'SP']]).toString();
  await waitRendered(page, q3);
  assert.equal(await page.isVisible('#empty'), true, 'the empty-state message is shown');
  assert.match(await page.textContent('#empty'), /No completed order/);
  assert.equal((await cards(page)).revenue.text, 'R$ 0,00');

  // Back to everything, then a full-page screenshot as the artifact.
  await page.click('#reset');
  await waitRendered(page, '');
  checkCards(await cards(page), d0);
  fs.mkdirSync(artifacts, { recursive: true });
  const shot = path.join(artifacts, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('# screenshot: ' + shot);

  // Small screens: one column.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
  const p3 = await phone.newPage();
  await p3.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : (outside.push(route.request().url()), route.abort())));
  await p3.goto(base + '/');
  await waitRendered(p3, '');
  const xs = await p3.$$eval('.kpi, .card', (els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert.equal(new Set(xs).size, 1, 'one column on a small screen: ' + xs.join(','));
  await p3.screenshot({ path: path.join(artifacts, 'dashboard-mobile.png'), fullPage: true });
  await phone.close();

  assert.deepEqual(outside, [], 'requests outside the server');
  assert.deepEqual(failed, [], 'failed requests');
  assert.deepEqual(consoleErrors, [], 'errors in the page');
  await context.close();
});
