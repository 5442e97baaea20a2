// Browser end-to-end tests of the dashboard: the real `serve` binary on small
// generated data, headless Debian Chromium driven by playwright-core.
//
//   make test-e2e            (npm ci here, then this file with node --test)
//
// Needs target/release/{analytics,serve} (or $CARGO_TARGET_DIR/release/...)
// and /usr/bin/chromium (or $CHROMIUM). One test per interaction: the
// figures on screen against the API, the URL round trip and back/forward,
// the comparison switch, each cross-filter (category, state, segment,
// month) and its chip, the drill-down's paging and sorting, CSV downloads
// against the API's figures, the layout at 1440 and 390 px. Screenshots go
// to <target>/test-artifacts/dashboard-1440.png and dashboard-390.png.

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
let options;

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

async function api(route, query) {
  const r = await fetch(base + route + (query ? '?' + query : ''));
  assert.equal(r.status, 200, route + '?' + query + ': ' + (await r.clone().text()));
  return r.json();
}
const figures = (query) => api('/api/dashboard', query);

// Independent of the page's own code: R$ 1.234,56, 1.234 and 12,3%.
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
const br = (iso) => iso.slice(8, 10) + '/' + iso.slice(5, 7) + '/' + iso.slice(0, 4);

// A CSV file (RFC 4180) as rows of cells.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r') { /* CRLF */ } else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; } else cell += c;
  }
  assert.equal(row.length + cell.length, 0, 'the CSV ends with a line end');
  return rows;
}

// Every CSV cell equals the JSON row's field of the same name.
function sameAsJson(rows, jsonRows, what) {
  const [header, ...body] = rows;
  assert.equal(body.length, jsonRows.length, what + ': rows');
  body.forEach((r, i) => {
    header.forEach((name, k) => {
      if (name === 'period') return;
      const v = jsonRows[i][name];
      assert.ok(name in jsonRows[i], `${what}: the JSON row has no ${name}`);
      if (v === null) assert.equal(r[k], '', `${what} row ${i} ${name}`);
      else if (typeof v === 'number') assert.equal(Number(r[k]), v, `${what} row ${i} ${name}: CSV ${r[k]} vs JSON ${v}`);
      else if (Array.isArray(v)) assert.equal(r[k], v.join('|'), `${what} row ${i} ${name}`);
      else assert.equal(r[k], String(v), `${what} row ${i} ${name}`);
    });
  });
}

// A page on a new context: requests outside this server are refused and
// recorded, page errors collected; `done()` checks both.
async function open(viewport = { width: 1440, height: 1000 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: 'en-US', acceptDownloads: true });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  const isLocal = (u) => {
    const url = new URL(u);
    if (['data:', 'blob:', 'about:'].includes(url.protocol)) return true;
    return url.origin === base;
  };
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (isLocal(u)) return route.continue();
    outside.push(u);
    return route.abort();
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('requestfailed', (r) => { if (!r.url().includes('export.csv')) errors.push(r.url() + ' ' + (r.failure() || {}).errorText); });
  return {
    page,
    context,
    async done() {
      assert.deepEqual(outside, [], 'requests outside the server');
      assert.deepEqual(errors, [], 'errors in the page');
      await context.close();
    },
  };
}

// The view in the URL is drawn: figures and drill-down.
async function shown(page) {
  await page.waitForFunction(() => document.body.dataset.state === 'ready' && document.body.dataset.drill === 'ready' &&
    window.dashboardShown === location.search.slice(1), null, { timeout: 60000 });
}

const pageParams = (page) => new URL(page.url()).searchParams;
const apiQuery = (page) => page.evaluate(() => window.dashboardLast.query);

async function cards(page) {
  return page.$$eval('.kpi', (els) => Object.fromEntries(els.map((e) => [
    e.id.replace('kpi-', ''), {
      value: e.dataset.value, previous: e.dataset.previous,
      text: e.querySelector('.value').textContent, previousText: e.querySelector('.previous').textContent,
    },
  ])));
}

function checkCards(c, d) {
  const k = d.kpis;
  assert.equal(Number(c.revenue.value), k.revenue.value, 'revenue card value');
  assert.equal(c.revenue.text, brl(k.revenue.value), 'revenue card text');
  assert.equal(c.orders.text, int(k.orders.value), 'orders card');
  assert.equal(c.average_ticket.text, k.average_ticket.value === null ? 'n/a' : brl(k.average_ticket.value), 'ticket card');
  assert.equal(c.active_customers.text, int(k.active_customers.value), 'customers card');
  if (k.churn_rate.value === null) assert.equal(c.churn_rate.text, 'n/a');
  else assert.equal(c.churn_rate.text, pct(k.churn_rate.value), 'churn card');
  // Every card carries its comparison value and period.
  const period = br(d.comparison.from) + '–' + br(d.comparison.to);
  for (const [id, fmt] of [['revenue', brl], ['orders', int], ['active_customers', int]]) {
    assert.equal(Number(c[id].previous), k[id].previous, id + ' comparison value');
    assert.ok(c[id].previousText.startsWith('vs ' + fmt(k[id].previous)), id + ': ' + c[id].previousText);
    assert.ok(c[id].previousText.includes(period), id + ': ' + c[id].previousText);
  }
  if (k.churn_rate.previous !== null) assert.ok(c.churn_rate.previousText.startsWith('vs ' + pct(k.churn_rate.previous)));
}

// A click at the centre of an element, as a person makes it: plotly
// listens on its drag layer and finds the point under the pointer when the
// pointer moves there (so the pointer comes from elsewhere first).
async function clickAt(page, selector) {
  await page.locator(selector).scrollIntoViewIfNeeded();
  const box = await page.locator(selector).boundingBox();
  assert.ok(box, selector + ' is not on the page');
  await page.mouse.move(1, 1);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 4 });
  await page.mouse.down();
  await page.mouse.up();
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
  // A segment model makes the segment filter, its cross-filter and the
  // PCA map live.
  const t = run(bin('analytics'), ['train', '--data', data, '--models', models], 600000);
  assert.ok(t.ok, 'analytics train failed:\n' + t.out);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin('serve'), ['--bind', `127.0.0.1:${port}`, '--data', data, '--models', models], {
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', APP_RELOAD_INTERVAL_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (b) => { serverLog += b; });
  server.stderr.on('data', (b) => { serverLog += b; });
  await waitReady(base + '/api/dashboard/options', 180000);
  options = await api('/api/dashboard/options');
  assert.ok(options.segments.available, 'a live segment model');
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  fs.mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('first view: cards, charts, map, tables and drill-down equal the API; nothing leaves the server', async () => {
  const { page, done } = await open();
  const t0 = Date.now();
  await page.goto(base + '/');
  await shown(page);
  const inPageMs = await page.evaluate(() => window.dashboardFirstRenderMs);
  console.log(`# first full render: ${Date.now() - t0} ms from navigation (in page: ${Math.round(inPageMs)} ms)`);
  const d = await figures('');
  assert.equal(d.empty, false);
  assert.equal(d.comparison.mode, 'yoy', 'the last 365 days are compared year over year');
  checkCards(await cards(page), d);
  for (const id of ['chart-monthly', 'chart-category', 'chart-cohort', 'chart-pca']) {
    const n = await page.$$eval(`#${id} svg.main-svg *`, (els) => els.length);
    assert.ok(n > 20, `${id} is empty (${n} SVG elements)`);
  }
  assert.ok(await page.$$eval('#chart-category .barlayer .point', (e) => e.length) >= 3, 'category bars');
  assert.ok(await page.$$eval('#chart-cohort .heatmaplayer image', (e) => e.length) > 0, 'cohort heatmap');
  assert.equal(await page.$$eval('#map svg path', (e) => e.length), 27, 'map: 27 states');
  assert.equal(await page.$$eval('#map svg circle', (e) => e.length),
    d.by_state.filter((s) => s.orders > 0 && s.latitude !== null).length, 'one bubble per state with revenue');
  // Bubbles sit at the capitals: São Paulo's inside the SP shape.
  const inside = await page.evaluate(() => {
    const c = document.querySelector('#map circle[data-state="SP"]');
    const p = document.getElementById('state-SP');
    const pt = p.ownerSVGElement.createSVGPoint();
    pt.x = +c.getAttribute('cx');
    pt.y = +c.getAttribute('cy');
    return p.isPointInFill(pt);
  });
  assert.ok(inside, 'the SP bubble is inside SP');
  // Leaderboards: the API's rows, Brazilian formats.
  const products = await page.$$eval('#table-products tbody tr', (rows) => rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
  assert.equal(products.length, d.top_products.length);
  d.top_products.forEach((p, i) => assert.deepEqual(products[i].slice(0, 5), [String(p.rank), p.product_id, p.category, brl(p.revenue), pct(p.revenue_share)]));
  const customers = await page.$$eval('#table-customers tbody tr', (rows) => rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
  d.top_customers.forEach((c, i) => assert.deepEqual(customers[i].slice(0, 2), [String(c.rank), c.customer_id]));
  const segs = await page.$$eval('#table-segments tbody tr', (rows) => rows.length);
  assert.equal(segs, d.by_segment.length);
  // The drill-down's first page: the API's, dates dd/mm/aaaa.
  const o = await api('/api/dashboard/orders', 'period=current&sort=date&dir=desc&page=1&page_size=25');
  const orders = await page.$$eval('#table-orders tbody tr', (rows) => rows.map((r) => [r.dataset.order, r.cells[1].textContent, r.cells[r.cells.length - 1].textContent]));
  assert.deepEqual(orders, o.rows.map((r) => [r.order_id, br(r.date), brl(r.revenue)]));
  assert.match(await page.textContent('#orders-note'), new RegExp('^' + int(o.total) + ' completed orders'));
  await done();
});

test('URL round trip: the copied URL reproduces the view; back and forward walk through the changes', async () => {
  const { page, context, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const d0 = await figures('');
  const [cat1, cat2] = options.categories;
  await page.selectOption('#f-category', [cat1, cat2]);
  await shown(page);
  await page.selectOption('#f-compare', 'previous');
  await shown(page);
  await page.selectOption('#f-channel', options.channels[0]);
  await shown(page);
  await page.click('#o-next');
  await shown(page);
  const url = page.url();
  const p = pageParams(page);
  assert.deepEqual(p.getAll('category'), [cat1, cat2]);
  assert.equal(p.get('compare'), 'previous');
  assert.equal(p.get('channel'), options.channels[0]);
  assert.equal(p.get('page'), '2');
  const d3 = await figures(await apiQuery(page));
  assert.equal(d3.comparison.mode, 'previous');
  checkCards(await cards(page), d3);
  const drill = await page.evaluate(() => window.dashboardDrill.data.rows.map((r) => r.order_id));

  // The same URL in another tab: the same figures, form, chips and page.
  const other = await context.newPage();
  await other.goto(url);
  await shown(other);
  checkCards(await cards(other), d3);
  assert.deepEqual(await other.$eval('#f-category', (s) => Array.from(s.selectedOptions).map((o) => o.value)), [cat1, cat2]);
  assert.equal(await other.$eval('#f-compare', (s) => s.value), 'previous');
  assert.deepEqual(await other.$$eval('.chip', (c) => c.map((x) => x.dataset.kind)), ['category', 'category', 'channel']);
  assert.deepEqual(await other.evaluate(() => window.dashboardDrill.data.rows.map((r) => r.order_id)), drill);
  assert.equal(other.url(), url);
  await other.close();

  // Back: page 1, then without the channel, then the default comparison, …
  await page.goBack();
  await shown(page);
  assert.equal(pageParams(page).get('page'), null);
  await page.goBack();
  await shown(page);
  assert.equal(pageParams(page).get('channel'), null);
  checkCards(await cards(page), await figures(await apiQuery(page)));
  assert.equal(await page.$eval('#f-channel', (s) => s.value), '');
  await page.goBack();
  await shown(page);
  assert.equal(pageParams(page).get('compare'), null);
  assert.equal(await page.$eval('#f-compare', (s) => s.value), '');
  await page.goBack();
  await shown(page);
  assert.equal(new URL(page.url()).search, '');
  checkCards(await cards(page), d0);
  // … and forward again to the end.
  for (let i = 0; i < 4; i++) {
    await page.goForward();
    await shown(page);
  }
  assert.equal(page.url(), url);
  checkCards(await cards(page), d3);
  await done();
});

test('comparison switch: every card and the dotted monthly line follow previous period / same period last year', async () => {
  const { page, done } = await open();
  // A whole calendar year: year over year by default.
  const year = Number(options.max_date.slice(0, 4)) - 1;
  await page.goto(`${base}/?from=${year}-01-01&to=${year}-12-31`);
  await shown(page);
  const trace = (name) => page.evaluate((n) => {
    const t = document.getElementById('chart-monthly').data.find((x) => x.meta === n);
    return t ? { x: t.x, y: t.y, dash: t.line.dash } : null;
  }, name);
  for (const [choice, mode] of [['', 'yoy'], ['previous', 'previous'], ['yoy', 'yoy']]) {
    if (choice) {
      await page.selectOption('#f-compare', choice);
      await shown(page);
      assert.equal(pageParams(page).get('compare'), choice);
    }
    const d = await figures(await apiQuery(page));
    assert.equal(d.comparison.mode, mode);
    assert.equal(d.comparison.asked, choice !== '');
    checkCards(await cards(page), d);
    const t = await trace('comparison');
    assert.ok(t, 'the comparison line is drawn');
    assert.equal(t.dash, 'dot');
    assert.deepEqual(t.x, d.monthly.comparison.map((m) => m.month));
    assert.deepEqual(t.y, d.monthly.comparison.map((m) => m.revenue));
    assert.equal(t.x.length, 12, 'one comparison point per month of the year');
    assert.ok(await page.$$eval('#chart-monthly .scatterlayer .trace path.js-line', (p) => p.some((e) => /dot|[0-9]px, ?[0-9]/.test(e.style.strokeDasharray))), 'a dotted line in the SVG');
    const label = mode === 'yoy' ? 'same period last year' : 'previous period';
    assert.ok((await page.textContent('#period-label')).includes('vs ' + label), 'the header names the comparison');
  }
  // yoy: the compared months are a year earlier; previous of a leap year: 366 days.
  const d = await figures(`from=${year}-01-01&to=${year}-12-31&compare=yoy`);
  assert.equal(d.monthly.comparison[0].compared_month, `${year - 1}-01`);
  await done();
});

test('cross-filter by category: a bar click filters the page, a chip shows it, a second click clears', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const d0 = await figures('');
  // The bars are drawn bottom-up; the selected period's trace is the second.
  const rows = d0.by_category.filter((r) => r.orders > 0 || r.comparison_orders > 0).slice().reverse();
  const k = rows.length - 1; // the top bar: the largest category
  const cat = rows[k].category;
  const bar = `#chart-category .barlayer .trace:nth-of-type(2) .point:nth-of-type(${k + 1}) path`;
  await clickAt(page, bar);
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('category'), [cat]);
  const d1 = await figures(await apiQuery(page));
  assert.deepEqual(d1.filter.categories, [cat]);
  checkCards(await cards(page), d1);
  assert.deepEqual(await page.$$eval('.chip', (c) => c.map((x) => x.textContent)), [`Category: ${cat}×`]);
  // The top bar is now the only one with revenue: click it again to clear.
  const rows1 = d1.by_category.filter((r) => r.orders > 0 || r.comparison_orders > 0).slice().reverse();
  const k1 = rows1.findIndex((r) => r.category === cat);
  await clickAt(page, `#chart-category .barlayer .trace:nth-of-type(2) .point:nth-of-type(${k1 + 1}) path`);
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('category'), []);
  checkCards(await cards(page), d0);
  assert.equal(await page.isVisible('#chips'), false, 'no chips without filters');
  await done();
});

test('cross-filter by state: a map click filters, the chip removes it, a second click clears', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const d0 = await figures('');
  await page.click('#state-SP');
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('state'), ['SP']);
  const d1 = await figures(await apiQuery(page));
  checkCards(await cards(page), d1);
  assert.ok(d1.kpis.revenue.value < d0.kpis.revenue.value);
  assert.equal(await page.getAttribute('#state-SP', 'class'), 'selected');
  // Ctrl-click adds a second state; the chips list both.
  await page.click('#state-RJ', { modifiers: ['Control'] });
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('state'), ['SP', 'RJ']);
  assert.deepEqual(await page.$$eval('.chip', (c) => c.map((x) => x.dataset.kind)), ['state', 'state']);
  checkCards(await cards(page), await figures(await apiQuery(page)));
  // Remove RJ by its chip, then SP by a second click.
  await page.click('.chip:nth-of-type(2) button');
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('state'), ['SP']);
  checkCards(await cards(page), d1);
  await page.click('#state-SP');
  await shown(page);
  assert.deepEqual(pageParams(page).getAll('state'), []);
  checkCards(await cards(page), d0);
  await done();
});

test('cross-filter by segment: a row, a PCA point or its legend filters; the chip clears it', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const d0 = await figures('');
  const seg = d0.by_segment.find((r) => r.segment_id !== null);
  await page.click(`#table-segments tr[data-segment="${seg.segment_id}"]`);
  await shown(page);
  assert.equal(pageParams(page).get('segment'), String(seg.segment_id));
  const d1 = await figures(await apiQuery(page));
  checkCards(await cards(page), d1);
  assert.equal(d1.kpis.revenue.value, seg.revenue, 'the segment row\'s revenue is the filtered revenue');
  assert.equal(await page.$eval('#f-segment', (s) => s.value), String(seg.segment_id));
  assert.match(await page.textContent('.chip'), new RegExp('Segment: ' + seg.segment));
  // Again: cleared.
  await page.click(`#table-segments tr[data-segment="${seg.segment_id}"]`);
  await shown(page);
  assert.equal(pageParams(page).get('segment'), null);
  checkCards(await cards(page), d0);
  // A legend entry of the PCA map filters by its segment; the chip clears it.
  const other = options.segments.segments[1];
  await page.click(`#chart-pca .legend .traces:nth-of-type(2) .legendtoggle`);
  await shown(page);
  assert.equal(pageParams(page).get('segment'), String(other.id));
  checkCards(await cards(page), await figures(await apiQuery(page)));
  await page.click('.chip[data-kind="segment"] button');
  await shown(page);
  assert.equal(pageParams(page).get('segment'), null);
  await done();
});

test('CLV by segment and segment migration cards: the API\'s figures; a CLV row filters by its segment', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const c = await api('/api/dashboard/clv');
  assert.equal(c.available, true, c.note);
  assert.ok(c.rows.length >= options.segments.segments.length, 'a row per segment');
  const rows = await page.$$eval('#table-clv tbody tr', (trs) => trs.map((r) => Array.from(r.cells).map((x) => x.textContent)));
  assert.deepEqual(rows, c.rows.map((r) => [r.segment, int(r.customers), brl(r.total_clv), pct(r.share_of_clv),
    r.mean_clv === null ? 'n/a' : brl(r.mean_clv), r.mean_p_alive === null ? 'n/a' : pct(r.mean_p_alive),
    r.mean_expected_purchases === null ? 'n/a' : r.mean_expected_purchases.toFixed(2).replace('.', ',')]));
  assert.match(await page.textContent('#clv-note'), new RegExp('next ' + c.horizon_days + ' days'));
  // The migration heatmap: one cell per pair of segments, the shares as text.
  const m = options.segments.migration;
  assert.ok(m, 'a migration matrix');
  assert.equal(m.segments.length, options.segments.segments.length);
  const texts = await page.$$eval('#chart-migration .heatmaplayer text', (ts) => ts.map((t) => t.textContent));
  assert.deepEqual(texts, m.row_shares.flat().map(pct), 'one share per cell, row by row');
  const note = await page.textContent('#migration-note');
  assert.ok(note.startsWith(pct(m.stayed_share) + ' of the customers of ' + br(m.from)), note);
  // A CLV row filters the page by its segment (and marks the row).
  const seg = c.rows.find((r) => r.segment_id !== null);
  await page.click(`#table-clv tr[data-segment="${seg.segment_id}"]`);
  await shown(page);
  assert.equal(pageParams(page).get('segment'), String(seg.segment_id));
  assert.equal(await page.$eval(`#table-clv tr[data-segment="${seg.segment_id}"]`, (tr) => tr.classList.contains('selected')), true);
  checkCards(await cards(page), await figures(await apiQuery(page)));
  await done();
});

test('cross-filter by month: a click on the monthly chart narrows the page to that month; again restores the period', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const d0 = await figures('');
  // The actual line's markers, one per month of data.
  const months = d0.monthly.actual.map((m) => m.month);
  const i = months.length - 3;
  const point = `#chart-monthly .scatterlayer .trace:first-of-type .points path:nth-of-type(${i + 1})`;
  await clickAt(page, point);
  await shown(page);
  const month = months[i];
  assert.equal(pageParams(page).get('month'), month);
  const d1 = await figures(await apiQuery(page));
  assert.equal(d1.filter.from, month + '-01');
  assert.equal(d1.filter.from.slice(0, 7), d1.filter.to.slice(0, 7));
  assert.equal(d1.comparison.mode, 'yoy', 'a whole month is compared year over year');
  assert.equal(d1.kpis.revenue.value, d0.monthly.actual[i].revenue, 'the month\'s revenue');
  checkCards(await cards(page), d1);
  assert.match(await page.textContent('.chip[data-kind="month"]'), new RegExp('Month: ' + month.slice(5) + '/' + month.slice(0, 4)));
  // The same point again clears the month.
  await clickAt(page, point);
  await shown(page);
  assert.equal(pageParams(page).get('month'), null);
  checkCards(await cards(page), d0);
  await done();
});

test('drill-down: server-side pages, sorting by a header, page size, comparison period; back returns to the page before', async () => {
  const { page, done } = await open();
  await page.goto(base + '/');
  await shown(page);
  const rowsOnScreen = () => page.$$eval('#table-orders tbody tr', (rows) => rows.map((r) => r.dataset.order));
  const o1 = await api('/api/dashboard/orders', 'page=1&page_size=25');
  assert.ok(o1.pages > 3, 'several pages');
  assert.deepEqual(await rowsOnScreen(), o1.rows.map((r) => r.order_id));
  await page.click('#o-next');
  await shown(page);
  const o2 = await api('/api/dashboard/orders', 'page=2&page_size=25');
  assert.deepEqual(await rowsOnScreen(), o2.rows.map((r) => r.order_id));
  assert.equal(await page.textContent('#o-page'), `Page 2 of ${o1.pages}`);
  await page.click('#o-last');
  await shown(page);
  const oLast = await api('/api/dashboard/orders', `page=${o1.pages}&page_size=25`);
  assert.deepEqual(await rowsOnScreen(), oLast.rows.map((r) => r.order_id));
  assert.equal(await page.isDisabled('#o-next'), true);
  await page.goBack();
  await shown(page);
  assert.deepEqual(await rowsOnScreen(), o2.rows.map((r) => r.order_id), 'back: page 2 again');
  // Sort by revenue (descending first, then ascending): page 1 of that order.
  await page.click('#table-orders th button[data-sort="revenue"]');
  await shown(page);
  assert.equal(pageParams(page).get('sort'), 'revenue');
  assert.equal(pageParams(page).get('page'), null, 'a new sort starts at page 1');
  const byRev = await api('/api/dashboard/orders', 'sort=revenue&dir=desc&page=1&page_size=25');
  assert.deepEqual(await rowsOnScreen(), byRev.rows.map((r) => r.order_id));
  assert.equal(await page.getAttribute('#table-orders th:has(button[data-sort="revenue"])', 'aria-sort'), 'descending');
  await page.click('#table-orders th button[data-sort="revenue"]');
  await shown(page);
  const asc = await api('/api/dashboard/orders', 'sort=revenue&dir=asc&page=1&page_size=25');
  assert.deepEqual(await rowsOnScreen(), asc.rows.map((r) => r.order_id));
  const rev = asc.rows.map((r) => r.revenue);
  assert.deepEqual(rev, rev.slice().sort((a, b) => a - b));
  // 100 rows a page; the comparison period's orders.
  await page.selectOption('#o-size', '100');
  await shown(page);
  assert.equal((await rowsOnScreen()).length, 100);
  await page.selectOption('#o-period', 'comparison');
  await shown(page);
  const cmp = await api('/api/dashboard/orders', 'period=comparison&sort=revenue&dir=asc&page=1&page_size=100');
  assert.deepEqual(await rowsOnScreen(), cmp.rows.map((r) => r.order_id));
  assert.match(await page.textContent('#orders-note'), /comparison period/);
  const d = await figures('');
  assert.equal(cmp.total, d.kpis.orders.previous, 'the comparison period\'s orders');
  await done();
});

test('CSV downloads: every table and the drill-down hold the API\'s figures', async () => {
  const { page, done } = await open();
  const cat = options.categories[1];
  await page.goto(`${base}/?category=${encodeURIComponent(cat)}&compare=previous&sort=revenue`);
  await shown(page);
  const q = await apiQuery(page);
  const d = await figures(q);
  const download = async (id) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#csv-' + id)]);
    assert.match(dl.suggestedFilename(), new RegExp(`^dashboard-${id}-\\d{4}-\\d{2}-\\d{2}-\\d{4}-\\d{2}-\\d{2}\\.csv$`));
    return parseCsv(fs.readFileSync(await dl.path(), 'utf8'));
  };
  sameAsJson(await download('categories'), d.by_category, 'categories');
  sameAsJson(await download('states'), d.by_state, 'states');
  sameAsJson(await download('segments'), d.by_segment, 'segments');
  const products = await download('products');
  sameAsJson([products[0], ...products.slice(1, 1 + d.top_products.length)], d.top_products, 'products');
  const customers = await download('customers');
  sameAsJson([customers[0], ...customers.slice(1, 1 + d.top_customers.length)], d.top_customers, 'customers');
  // Products add up to the revenue; every row has the comparison columns.
  const ri = products[0].indexOf('revenue');
  const sum = products.slice(1).reduce((a, r) => a + Number(r[ri]), 0);
  assert.ok(Math.abs(sum - d.kpis.revenue.value) < 1e-6 * d.kpis.revenue.value, `products add up: ${sum} vs ${d.kpis.revenue.value}`);
  for (const t of [products, customers]) for (const c of ['comparison_revenue', 'comparison_orders', 'revenue_change']) assert.ok(t[0].includes(c));
  // Orders: every page of the drill-down, in its order (by revenue here).
  const orders = await download('orders');
  const all = [];
  for (let p = 1; ; p++) {
    const o = await api('/api/dashboard/orders', q + `&period=current&sort=revenue&dir=desc&page=${p}&page_size=200`);
    if (!o.rows.length) break;
    all.push(...o.rows);
  }
  assert.equal(orders.length - 1, d.kpis.orders.value, 'one row per order');
  sameAsJson(orders, all, 'orders');
  assert.ok(orders.slice(1).every((r) => /^\d{4}-\d{2}-\d{2}$/.test(r[2]) && r[0] === 'current'), 'ISO dates');
  await done();
});

// Layout: no figure breaks in its card, nothing overflows the page, the
// chart toolbars (if any) never cover a plot; screenshots kept.
async function checkLayout(page, width) {
  const problems = await page.evaluate(() => {
    const out = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth + 1) out.push(`the page scrolls sideways: ${doc.scrollWidth} > ${window.innerWidth}`);
    document.querySelectorAll('.kpi').forEach((k) => {
      const v = k.querySelector('.value');
      const lh = parseFloat(getComputedStyle(v).lineHeight) || parseFloat(getComputedStyle(v).fontSize) * 1.3;
      if (v.getBoundingClientRect().height > lh * 1.5) out.push(`${k.id}: the figure takes two lines`);
      if (v.scrollWidth > v.clientWidth + 1) out.push(`${k.id}: the figure is cut (${v.scrollWidth} > ${v.clientWidth})`);
      const kr = k.getBoundingClientRect();
      k.querySelectorAll('*').forEach((e) => {
        const r = e.getBoundingClientRect();
        if (r.width && (r.right > kr.right + 1 || r.left < kr.left - 1)) out.push(`${k.id}: ${e.className || e.tagName} leaves its card`);
      });
    });
    document.querySelectorAll('.card').forEach((c) => {
      const cr = c.getBoundingClientRect();
      c.querySelectorAll('.chart, .table-wrap, .chart svg.main-svg, .map svg, .card-head').forEach((e) => {
        const r = e.getBoundingClientRect();
        if (r.right > cr.right + 1 || r.left < cr.left - 1) out.push(`${c.querySelector('h2').textContent}: ${e.className.baseVal || e.className} is wider than its card (${r.right} > ${cr.right})`);
      });
    });
    // A toolbar must not overlap any plot area.
    document.querySelectorAll('.modebar').forEach((m) => {
      const mr = m.getBoundingClientRect();
      if (!mr.width) return;
      document.querySelectorAll('.nsewdrag').forEach((p) => {
        const pr = p.getBoundingClientRect();
        if (mr.left < pr.right && mr.right > pr.left && mr.top < pr.bottom && mr.bottom > pr.top) out.push('a chart toolbar covers a plot');
      });
    });
    return out;
  });
  assert.deepEqual(problems, [], `layout at ${width} px`);
}

test('layout holds at 1440 px and 390 px (phone), with the largest figures; screenshots kept', async () => {
  for (const [width, height, name] of [[1440, 1000, 'dashboard-1440.png'], [390, 844, 'dashboard-390.png']]) {
    const { page, done } = await open({ width, height });
    // All the data: the largest revenue figure the data has.
    await page.goto(`${base}/?from=${options.min_date}&to=${options.max_date}`);
    await shown(page);
    await checkLayout(page, width);
    if (width < 700) {
      const xs = await page.$$eval('.kpi, .card', (els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
      assert.equal(new Set(xs).size, 1, 'one column on a phone: ' + xs.join(','));
    } else {
      const ys = await page.$$eval('.kpi', (els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
      assert.equal(new Set(ys).size, 1, 'the five cards on one row at 1440 px');
    }
    // Hovering the charts shows no toolbar over the data either.
    await page.hover('#chart-monthly .nsewdrag');
    await checkLayout(page, width);
    // A filtered view with chips, then the default view for the picture.
    await page.click('#state-SP');
    await shown(page);
    await checkLayout(page, width);
    await page.goto(base + '/');
    await shown(page);
    await checkLayout(page, width);
    const shot = path.join(artifacts, name);
    await page.screenshot({ path: shot, fullPage: true });
    console.log('# screenshot: ' + shot);
    await done();
  }
});
