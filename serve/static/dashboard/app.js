// Sales dashboard: reads the filters from the URL, asks /api/dashboard for
// the figures and draws them (plotly.js for charts, an SVG map of Brazil).
// Plain script, no build step; every request goes to this server.
'use strict';

(function () {
  // ---------------------------------------------------------------- formatting
  // Brazilian formats, as analytics_lib::locale: R$ 1.234,56 and 31/12/2024.
  function number(x, decimals) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    const neg = x < 0;
    const fixed = Math.abs(x).toFixed(decimals);
    const [int, frac] = fixed.split('.');
    const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, '.');
    const s = frac ? grouped + ',' + frac : grouped;
    return neg && /[1-9]/.test(s) ? '-' + s : s;
  }
  function brl(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    const n = number(Math.abs(x), 2);
    return (x < 0 && n !== '0,00' ? '-R$ ' : 'R$ ') + n;
  }
  function percent(x, decimals) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    return number(x * 100, decimals === undefined ? 1 : decimals) + '%';
  }
  function isoToBr(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
    return m ? m[3] + '/' + m[2] + '/' + m[1] : '';
  }
  function brToIso(br) {
    const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec((br || '').trim());
    return m ? m[3] + '-' + m[2] + '-' + m[1] : null;
  }
  function monthLabel(ym) {
    const m = /^(\d{4})-(\d{2})$/.exec(ym || '');
    return m ? m[2] + '/' + m[1] : ym;
  }
  window.dashboardFormat = { number, brl, percent, isoToBr, brToIso, monthLabel };

  // -------------------------------------------------------------------- state
  const $ = (id) => document.getElementById(id);
  let options = null;
  let generation = 0;
  let firstRender = true;
  const started = performance.now();

  function readUrl() {
    const q = new URLSearchParams(location.search);
    return {
      from: q.get('from') || '',
      to: q.get('to') || '',
      category: q.getAll('category').filter(Boolean),
      segment: q.get('segment') || '',
      state: q.get('state') || '',
      channel: q.get('channel') || '',
    };
  }

  function readForm() {
    return {
      from: brToIso($('f-from').value) || '',
      to: brToIso($('f-to').value) || '',
      category: Array.from($('f-category').selectedOptions).map((o) => o.value),
      segment: $('f-segment').value,
      state: $('f-state').value,
      channel: $('f-channel').value,
    };
  }

  function toQuery(f) {
    const q = new URLSearchParams();
    if (f.from) q.append('from', f.from);
    if (f.to) q.append('to', f.to);
    f.category.forEach((c) => q.append('category', c));
    if (f.segment) q.append('segment', f.segment);
    if (f.state) q.append('state', f.state);
    if (f.channel) q.append('channel', f.channel);
    return q.toString();
  }

  function fillSelect(sel, values, keepFirst) {
    const first = keepFirst ? sel.options[0] : null;
    sel.innerHTML = '';
    if (first) sel.appendChild(first);
    values.forEach(([value, label]) => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = label;
      sel.appendChild(o);
    });
  }

  function writeForm(f) {
    $('f-from').value = isoToBr(f.from || options.default_from);
    $('f-to').value = isoToBr(f.to || options.default_to);
    Array.from($('f-category').options).forEach((o) => { o.selected = f.category.includes(o.value); });
    $('f-segment').value = f.segment;
    $('f-state').value = f.state;
    $('f-channel').value = f.channel;
  }

  function setupFilters() {
    fillSelect($('f-category'), options.categories.map((c) => [c, c]), false);
    fillSelect($('f-state'), options.states.map((s) => [s.code, s.code + ' – ' + s.name]), true);
    fillSelect($('f-channel'), options.channels.map((c) => [c, c]), true);
    const seg = options.segments;
    if (seg.available) {
      fillSelect($('f-segment'), seg.segments.map((s) => [String(s.id), s.name + ' (' + number(s.customers, 0) + ')']), true);
    } else {
      $('f-segment').disabled = true;
    }
    $('segment-note').textContent = seg.available ? '' : 'No segment model: ' + seg.note;
    $('f-from').title = 'Data from ' + isoToBr(options.min_date) + ' to ' + isoToBr(options.max_date);
    $('f-to').title = $('f-from').title;
  }

  // --------------------------------------------------------------- rendering
  const plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ['toImage', 'sendDataToCloud'] };
  const baseLayout = () => ({
    separators: ',.',
    margin: { l: 70, r: 20, t: 10, b: 70 },
    font: { family: 'system-ui, sans-serif', size: 12 },
    paper_bgcolor: '#fff',
    plot_bgcolor: '#fff',
    showlegend: true,
    legend: { orientation: 'h', x: 0, y: -0.32, yanchor: 'top' },
  });

  function setKpi(id, value, text, changeText, cls) {
    const card = $('kpi-' + id);
    card.dataset.value = value === null || value === undefined ? '' : String(value);
    card.querySelector('.value').textContent = text;
    const ch = card.querySelector('.change');
    ch.textContent = changeText;
    ch.className = 'change' + (cls ? ' ' + cls : '');
  }

  function renderKpis(d) {
    const prev = d.previous_period ? isoToBr(d.previous_period.from) + '–' + isoToBr(d.previous_period.to) : '';
    const rel = (k, higherIsGood) => {
      if (k.change === null || k.change === undefined) return ['no previous value to compare', ''];
      const arrow = k.change > 0 ? '▲ +' : k.change < 0 ? '▼ ' : '= ';
      const good = k.change === 0 ? '' : (k.change > 0) === higherIsGood ? 'good' : 'bad';
      return [arrow + percent(k.change) + ' vs ' + prev, good];
    };
    const k = d.kpis;
    let c = rel(k.revenue, true);
    setKpi('revenue', k.revenue.value, brl(k.revenue.value), c[0], c[1]);
    c = rel(k.orders, true);
    setKpi('orders', k.orders.value, number(k.orders.value, 0), c[0], c[1]);
    c = rel(k.average_ticket, true);
    setKpi('average_ticket', k.average_ticket.value, brl(k.average_ticket.value), c[0], c[1]);
    c = rel(k.active_customers, true);
    setKpi('active_customers', k.active_customers.value, number(k.active_customers.value, 0), c[0], c[1]);
    const ch = k.churn_rate;
    let churnText = 'no previous value to compare';
    let churnCls = '';
    if (ch.change !== null && ch.change !== undefined) {
      churnText = (ch.change > 0 ? '▲ +' : ch.change < 0 ? '▼ ' : '= ') + number(ch.change * 100, 1) + ' p.p. vs ' + prev;
      churnCls = ch.change === 0 ? '' : ch.change > 0 ? 'bad' : 'good';
    }
    setKpi('churn_rate', ch.value, ch.value === null ? 'n/a' : percent(ch.value), churnText, churnCls);
    $('churn-window').textContent = '(' + k.churn_window_days + ' days, at ' + isoToBr(k.as_of) + ')';
  }

  function placeholder(el, text) {
    Plotly.purge(el);
    el.innerHTML = '';
    const div = document.createElement('div');
    div.className = 'placeholder';
    div.textContent = text;
    el.appendChild(div);
    return Promise.resolve();
  }

  function renderMonthly(d) {
    const el = $('chart-monthly');
    const m = d.monthly;
    $('forecast-note').textContent = m.note;
    if (!m.actual.length) return placeholder(el, 'No revenue in this selection.');
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const traces = [{
      x: m.actual.map((p) => p.month), y: m.actual.map((p) => p.revenue),
      customdata: m.actual.map((p) => [monthLabel(p.month), brl(p.revenue)]),
      hovertemplate: '%{customdata[0]}: %{customdata[1]}<extra>actual</extra>',
      name: 'Actual', mode: 'lines+markers', line: { color: '#1f5fbf' }, marker: { size: 4 },
    }];
    if (m.backtest.length) {
      traces.push({
        x: m.backtest.map((p) => p.month), y: m.backtest.map((p) => p.forecast),
        customdata: m.backtest.map((p) => [monthLabel(p.month), brl(p.forecast), brl(p.actual)]),
        hovertemplate: '%{customdata[0]}: forecast %{customdata[1]}, actual %{customdata[2]}<extra>backtest</extra>',
        name: 'Backtest (1 month ahead)', mode: 'markers', marker: { symbol: 'x', size: 8, color: '#e67e22' },
      });
    }
    if (m.forecast.length) {
      const x = m.forecast.map((p) => p.month);
      traces.push({ x, y: m.forecast.map((p) => p.upper), mode: 'lines', line: { width: 0 }, showlegend: false, hoverinfo: 'skip' });
      traces.push({
        x, y: m.forecast.map((p) => p.lower), mode: 'lines', line: { width: 0 }, fill: 'tonexty',
        fillcolor: 'rgba(230,126,34,.2)', name: 'Forecast interval', hoverinfo: 'skip',
      });
      traces.push({
        x, y: m.forecast.map((p) => p.forecast),
        customdata: m.forecast.map((p) => [monthLabel(p.month), brl(p.forecast), brl(p.lower), brl(p.upper)]),
        hovertemplate: '%{customdata[0]}: %{customdata[1]} (%{customdata[2]} – %{customdata[3]})<extra>forecast</extra>',
        name: 'Forecast', mode: 'lines+markers', line: { color: '#e67e22', dash: 'dash' },
      });
    }
    const months = Array.from(new Set(traces.flatMap((t) => t.x))).sort();
    const step = Math.max(1, Math.ceil(months.length / 12));
    const ticks = months.filter((_, i) => i % step === 0);
    const from = d.filter.from.slice(0, 7);
    const to = d.filter.to.slice(0, 7);
    const layout = Object.assign(baseLayout(), {
      xaxis: { type: 'category', categoryorder: 'array', categoryarray: months, tickvals: ticks, ticktext: ticks.map(monthLabel), title: { text: 'Month (mm/yyyy)' } },
      yaxis: { title: { text: 'Revenue (R$)' }, tickprefix: 'R$ ', exponentformat: 'none', separatethousands: true, rangemode: 'tozero', automargin: true },
      shapes: months.includes(from) && months.includes(to) ? [{
        type: 'rect', xref: 'x', yref: 'paper', x0: from, x1: to, y0: 0, y1: 1,
        fillcolor: 'rgba(31,95,191,.07)', line: { width: 0 }, layer: 'below',
      }] : [],
    });
    return Plotly.react(el, traces, layout, plotConfig);
  }

  function renderCategories(d) {
    const el = $('chart-category');
    if (!d.by_category.length) return placeholder(el, 'No revenue in this selection.');
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const rows = d.by_category.slice().reverse();
    const layout = Object.assign(baseLayout(), {
      showlegend: false,
      margin: { l: 130, r: 20, t: 10, b: 50 },
      xaxis: { title: { text: 'Revenue (R$)' }, tickprefix: 'R$ ', exponentformat: 'none', separatethousands: true },
      yaxis: { automargin: true },
      height: Math.max(340, 22 * rows.length + 80),
    });
    return Plotly.react(el, [{
      type: 'bar', orientation: 'h', y: rows.map((r) => r.category), x: rows.map((r) => r.revenue),
      customdata: rows.map((r) => [brl(r.revenue), percent(r.revenue_share), number(r.orders, 0)]),
      hovertemplate: '%{y}: %{customdata[0]} (%{customdata[1]} of revenue, %{customdata[2]} orders)<extra></extra>',
      marker: { color: '#1f5fbf' },
    }], layout, plotConfig);
  }

  const SEGMENT_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  function renderPca(d) {
    const el = $('chart-pca');
    const seg = options.segments;
    if (!seg.available || !seg.pca) {
      $('pca-note').textContent = '';
      return placeholder(el, 'No segment model: ' + seg.note);
    }
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const p = seg.pca;
    const selected = d.filter.segment;
    const traces = seg.segments.map((s, i) => {
      const idx = [];
      p.segment.forEach((v, j) => { if (v === s.id) idx.push(j); });
      const dim = selected !== null && selected !== undefined && selected !== s.id;
      return {
        type: 'scatter', mode: 'markers', name: s.name,
        x: idx.map((j) => p.x[j]), y: idx.map((j) => p.y[j]),
        marker: { size: 5, color: SEGMENT_COLOURS[i % SEGMENT_COLOURS.length], opacity: dim ? 0.1 : 0.75 },
        hovertemplate: s.name + '<extra></extra>',
      };
    });
    const ev = p.explained_variance_ratio;
    $('pca-note').textContent = seg.note + '; ' + number(p.x.length, 0) + ' of ' + number(p.customers, 0) +
      ' customers shown (stratified sample)' + (selected !== null && selected !== undefined ? '; selected segment highlighted' : '') + '.';
    const layout = Object.assign(baseLayout(), {
      xaxis: { title: { text: 'PC1 (' + percent(ev[0]) + ' of variance, std. units)' }, zeroline: false },
      yaxis: { title: { text: 'PC2 (' + percent(ev[1]) + ' of variance, std. units)' }, zeroline: false },
    });
    return Plotly.react(el, traces, layout, plotConfig);
  }

  function renderCohorts(d) {
    const el = $('chart-cohort');
    const c = d.cohorts;
    if (!c.cohorts.length) return placeholder(el, 'No customers in this selection.');
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const z = c.retention.map((row) => row.map((v) => (v === null ? null : v * 100)));
    const text = c.retention.map((row) => row.map((v) => (v === null ? '' : percent(v))));
    const y = c.cohorts.map(monthLabel);
    const layout = Object.assign(baseLayout(), {
      showlegend: false,
      margin: { l: 80, r: 20, t: 10, b: 50 },
      xaxis: { title: { text: 'Months since first order' }, dtick: 1 },
      yaxis: { title: { text: 'Cohort (mm/yyyy)' }, autorange: 'reversed', type: 'category' },
      height: Math.max(340, 16 * y.length + 90),
    });
    return Plotly.react(el, [{
      type: 'heatmap', x: c.offsets, y, z, text,
      customdata: c.retention.map((row, i) => row.map(() => number(c.sizes[i], 0))),
      hovertemplate: 'cohort %{y}, month %{x}: %{text} of %{customdata} customers<extra></extra>',
      colorscale: 'Blues', reversescale: true, zmin: 0, zmax: 100,
      colorbar: { title: { text: '% retained' }, ticksuffix: '%' },
    }], layout, plotConfig);
  }

  // ---------------------------------------------------------------- the map
  // brazil.svg (npm @svg-maps/brazil) is a Mercator-like map in a 613 × 639
  // box; lon is linear in x, Mercator(lat) linear in y. Fitted on Brazil's
  // extreme points against the map's bounding box (see vendor/README.md).
  const merc = (lat) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
  const projection = {
    west: -73.9855, east: -34.7929, north: 5.2719, south: -33.7507,
    x0: 0.2626, x1: 612.2626, y0: 0.2611, y1: 638.7911,
    x(lon) { return this.x0 + ((lon - this.west) / (this.east - this.west)) * (this.x1 - this.x0); },
    y(lat) { return this.y0 + ((merc(this.north) - merc(lat)) / (merc(this.north) - merc(this.south))) * (this.y1 - this.y0); },
  };
  window.dashboardProjection = projection;
  let mapShapes = null;
  const SVG = 'http://www.w3.org/2000/svg';

  function loadMap() {
    return fetch('/dashboard/assets/brazil.svg').then((r) => {
      if (!r.ok) throw new Error('map shapes: HTTP ' + r.status);
      return r.text();
    }).then((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      mapShapes = {
        viewBox: doc.documentElement.getAttribute('viewBox'),
        paths: Array.from(doc.querySelectorAll('path')).map((p) => ({
          id: p.getAttribute('id').toUpperCase(), name: p.getAttribute('aria-label'), d: p.getAttribute('d'),
        })),
      };
    });
  }

  function shade(t) {
    // light grey-blue (no revenue) to dark blue (most revenue)
    const a = [226, 232, 240], b = [31, 95, 191];
    const c = a.map((v, i) => Math.round(v + (b[i] - v) * t));
    return 'rgb(' + c.join(',') + ')';
  }

  function renderMap(d) {
    const el = $('map');
    el.innerHTML = '';
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', mapShapes.viewBox);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'Map of Brazil: revenue by state');
    const byState = new Map(d.by_state.map((r) => [r.state, r]));
    const max = Math.max(0, ...d.by_state.map((r) => r.revenue));
    const selected = new Set(d.filter.states);
    mapShapes.paths.forEach((p) => {
      const r = byState.get(p.id);
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', p.d);
      path.setAttribute('id', 'state-' + p.id);
      path.setAttribute('fill', shade(r && max > 0 ? Math.sqrt(r.revenue / max) : 0));
      if (selected.has(p.id)) path.setAttribute('class', 'selected');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = p.name + ' (' + p.id + '): ' + (r ? brl(r.revenue) + ', ' + number(r.orders, 0) + ' orders' : 'no revenue');
      path.appendChild(title);
      path.addEventListener('click', () => {
        $('f-state').value = $('f-state').value === p.id ? '' : p.id;
        onChange();
      });
      svg.appendChild(path);
    });
    const rmax = 28;
    d.by_state.slice().sort((a, b) => b.revenue - a.revenue).forEach((r) => {
      if (!(max > 0) || typeof r.latitude !== 'number' || typeof r.longitude !== 'number') return;
      const c = document.createElementNS(SVG, 'circle');
      c.setAttribute('cx', projection.x(r.longitude).toFixed(1));
      c.setAttribute('cy', projection.y(r.latitude).toFixed(1));
      c.setAttribute('r', (rmax * Math.sqrt(r.revenue / max)).toFixed(1));
      c.setAttribute('data-state', r.state);
      svg.appendChild(c);
      if (r.revenue / max > 0.08) {
        const t = document.createElementNS(SVG, 'text');
        t.setAttribute('x', (projection.x(r.longitude) + 3).toFixed(1));
        t.setAttribute('y', (projection.y(r.latitude) - 3).toFixed(1));
        t.textContent = r.state;
        svg.appendChild(t);
      }
    });
    el.appendChild(svg);
    $('map-note').textContent = d.by_state.length
      ? 'Bubble area and colour ∝ revenue (R$) at the state capital; largest: ' + d.by_state[0].state + ' ' + brl(d.by_state[0].revenue) + '. Click a state to filter.'
      : 'No revenue in this selection.';
  }

  // ---------------------------------------------------------------- loading
  function showError(text) {
    const e = $('error');
    e.textContent = text;
    e.hidden = !text;
  }

  function apiError(r) {
    return r.json().then((b) => {
      const parts = [b.error];
      if (b.field) parts.push('field `' + b.field + '`');
      if (b.expected) parts.push('expected ' + b.expected);
      if (b.found) parts.push('found ' + b.found);
      throw new Error(parts.join('; '));
    }, () => { throw new Error('HTTP ' + r.status); });
  }

  function render(d) {
    $('period-label').textContent = isoToBr(d.filter.from) + ' – ' + isoToBr(d.filter.to) +
      ' · data ' + isoToBr(options.min_date) + ' – ' + isoToBr(options.max_date);
    const empty = $('empty');
    empty.hidden = !d.empty;
    empty.textContent = d.empty ? d.message : '';
    renderKpis(d);
    renderMap(d);
    return Promise.all([renderMonthly(d), renderCategories(d), renderPca(d), renderCohorts(d)]);
  }

  function load(filters, push) {
    const my = ++generation;
    const query = toQuery(filters);
    const url = query ? '?' + query : location.pathname;
    if (push) history.pushState(null, '', url);
    document.body.dataset.state = 'loading';
    const t0 = performance.now();
    return apiKey.fetch('/api/dashboard' + (query ? '?' + query : ''))
      .then((r) => (r.ok ? r.json() : apiError(r)))
      .then((d) => {
        if (my !== generation) return;
        showError('');
        const net = performance.now() - t0;
        return render(d).then(() => {
          if (my !== generation) return;
          $('timing').textContent = 'server ' + number(d.compute_ms, 1) + ' ms · request + render ' + number(performance.now() - t0, 0) + ' ms';
          window.dashboardLast = { query, data: d, requestMs: net, totalMs: performance.now() - t0 };
          if (firstRender) {
            firstRender = false;
            window.dashboardFirstRenderMs = performance.now() - started;
          }
          document.body.dataset.state = 'ready';
        });
      })
      .catch((e) => {
        if (my !== generation) return;
        showError('Could not load the dashboard: ' + e.message);
        document.body.dataset.state = 'error';
      });
  }

  function onChange() {
    load(readForm(), true);
  }

  function init() {
    Promise.all([
      apiKey.fetch('/api/dashboard/options').then((r) => (r.ok ? r.json() : apiError(r))),
      loadMap(),
    ]).then(([o]) => {
      options = o;
      setupFilters();
      const f = readUrl();
      writeForm(f);
      ['f-category', 'f-segment', 'f-state', 'f-channel'].forEach((id) => $(id).addEventListener('change', onChange));
      ['f-from', 'f-to'].forEach((id) => $(id).addEventListener('change', () => {
        if ($('f-from').checkValidity() && $('f-to').checkValidity()) onChange();
      }));
      $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); onChange(); });
      $('reset').addEventListener('click', () => {
        writeForm({ from: '', to: '', category: [], segment: '', state: '', channel: '' });
        load({ from: '', to: '', category: [], segment: '', state: '', channel: '' }, true);
      });
      window.addEventListener('popstate', () => { const g = readUrl(); writeForm(g); load(g, false); });
      return load(f, false);
    }).catch((e) => {
      showError('Could not load the dashboard: ' + e.message);
      document.body.dataset.state = 'error';
    });
  }

  init();
})();
