// Sales dashboard: the whole view lives in the URL (filters, comparison,
// the month picked on the chart, the drill-down's sort and page), so a
// copied link reproduces it and back/forward walk through the changes.
// Figures come from /api/dashboard, the drill-down from
// /api/dashboard/orders, the CSV files from /api/dashboard/export.csv.
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
  function signedPercent(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    return (x > 0 ? '+' : '') + percent(x);
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
  function monthEnd(ym) {
    const [y, m] = ym.split('-').map(Number);
    const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
    return ym + '-' + String(last).padStart(2, '0');
  }
  window.dashboardFormat = { number, brl, percent, isoToBr, brToIso, monthLabel };

  // -------------------------------------------------------------------- state
  const $ = (id) => document.getElementById(id);
  let options = null;
  let clv = null; // the CLV by segment card (/api/dashboard/clv)
  let clvError = '';
  let migrationShown = false; // the migration heatmap does not change with the filters
  let generation = 0;
  let drillGeneration = 0;
  let firstRender = true;
  let view = null; // the view on screen (see readUrl)
  let last = null; // the last /api/dashboard answer
  const started = performance.now();
  const SIZES = ['25', '50', '100', '200'];

  // The view: API filters, the month picked on the chart, the drill-down.
  function emptyView() {
    return {
      from: '', to: '', category: [], state: [], segment: '', channel: '', compare: '', month: '',
      sort: 'date', dir: 'desc', page: 1, size: '25', period: 'current',
    };
  }

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const v = emptyView();
    v.from = q.get('from') || '';
    v.to = q.get('to') || '';
    v.category = q.getAll('category').filter(Boolean);
    v.state = q.getAll('state').filter(Boolean);
    v.segment = q.get('segment') || '';
    v.channel = q.get('channel') || '';
    v.compare = ['yoy', 'previous'].includes(q.get('compare')) ? q.get('compare') : '';
    v.month = /^\d{4}-\d{2}$/.test(q.get('month') || '') ? q.get('month') : '';
    v.sort = ['date', 'revenue', 'items'].includes(q.get('sort')) ? q.get('sort') : 'date';
    v.dir = q.get('dir') === 'asc' ? 'asc' : 'desc';
    v.page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
    v.size = SIZES.includes(q.get('page_size')) ? q.get('page_size') : '25';
    v.period = q.get('period') === 'comparison' ? 'comparison' : 'current';
    return v;
  }

  // The page's own URL: everything, defaults left out.
  function pageQuery(v) {
    const q = new URLSearchParams();
    if (v.from) q.append('from', v.from);
    if (v.to) q.append('to', v.to);
    v.category.forEach((c) => q.append('category', c));
    v.state.forEach((s) => q.append('state', s));
    if (v.segment) q.append('segment', v.segment);
    if (v.channel) q.append('channel', v.channel);
    if (v.compare) q.append('compare', v.compare);
    if (v.month) q.append('month', v.month);
    if (v.sort !== 'date') q.append('sort', v.sort);
    if (v.dir !== 'desc') q.append('dir', v.dir);
    if (v.page > 1) q.append('page', String(v.page));
    if (v.size !== '25') q.append('page_size', v.size);
    if (v.period !== 'current') q.append('period', v.period);
    return q.toString();
  }

  // The API's filters: a picked month replaces the period.
  function filterQuery(v) {
    const q = new URLSearchParams();
    const from = v.month ? v.month + '-01' : v.from;
    const to = v.month ? monthEnd(v.month) : v.to;
    if (from) q.append('from', from);
    if (to) q.append('to', to);
    v.category.forEach((c) => q.append('category', c));
    v.state.forEach((s) => q.append('state', s));
    if (v.segment) q.append('segment', v.segment);
    if (v.channel) q.append('channel', v.channel);
    if (v.compare) q.append('compare', v.compare);
    return q;
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

  function writeForm(v) {
    $('f-from').value = isoToBr(v.from || options.default_from);
    $('f-to').value = isoToBr(v.to || options.default_to);
    $('f-compare').value = v.compare;
    Array.from($('f-category').options).forEach((o) => { o.selected = v.category.includes(o.value); });
    $('f-segment').value = v.segment;
    $('f-state').value = v.state.length === 1 ? v.state[0] : '';
    $('f-channel').value = v.channel;
    $('o-period').value = v.period;
    $('o-size').value = v.size;
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

  // Go to a new view: into the URL (a history entry), then load it.
  function go(v, what) {
    const q = pageQuery(v);
    history.pushState(null, '', q ? '?' + q : location.pathname);
    view = v;
    writeForm(v);
    return what === 'drill' ? loadDrill(v, true) : load(v);
  }

  function change(mutate, what) {
    const v = JSON.parse(JSON.stringify(view));
    mutate(v);
    if (what !== 'drill') v.page = 1;
    return go(v, what);
  }

  function toggle(list, value, add) {
    if (add) return list.includes(value) ? list.filter((x) => x !== value) : list.concat([value]);
    return list.length === 1 && list[0] === value ? [] : [value];
  }

  // Cross-filters: a click filters the page; again clears.
  const crossFilter = {
    category: (c, add) => change((v) => { v.category = toggle(v.category, c, add); }),
    state: (s, add) => change((v) => { v.state = toggle(v.state, s, add); }),
    segment: (id) => change((v) => { v.segment = v.segment === String(id) ? '' : String(id); }),
    month: (m) => change((v) => { v.month = v.month === m ? '' : m; }),
  };
  window.dashboardCrossFilter = crossFilter;

  // ------------------------------------------------------------------- chips
  function renderChips(v) {
    const box = $('chips');
    box.innerHTML = '';
    const chips = [];
    const segName = (id) => {
      const s = options.segments.segments.find((x) => String(x.id) === String(id));
      return s ? s.name : 'segment ' + id;
    };
    if (v.month) chips.push(['month', 'Month: ' + monthLabel(v.month), (w) => { w.month = ''; }]);
    v.category.forEach((c) => chips.push(['category', 'Category: ' + c, (w) => { w.category = w.category.filter((x) => x !== c); }]));
    v.state.forEach((s) => chips.push(['state', 'State: ' + s, (w) => { w.state = w.state.filter((x) => x !== s); }]));
    if (v.segment) chips.push(['segment', 'Segment: ' + segName(v.segment), (w) => { w.segment = ''; }]);
    if (v.channel) chips.push(['channel', 'Channel: ' + v.channel, (w) => { w.channel = ''; }]);
    chips.forEach(([kind, label, remove]) => {
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.dataset.kind = kind;
      chip.appendChild(document.createTextNode(label));
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = '×';
      b.setAttribute('aria-label', 'Remove ' + label);
      b.addEventListener('click', () => change(remove));
      chip.appendChild(b);
      box.appendChild(chip);
    });
    box.hidden = chips.length === 0;
  }

  // --------------------------------------------------------------- rendering
  const plotConfig = { displaylogo: false, responsive: true, displayModeBar: false };
  const baseLayout = () => ({
    separators: ',.',
    margin: { l: 70, r: 20, t: 10, b: 70 },
    font: { family: 'system-ui, sans-serif', size: 12 },
    paper_bgcolor: '#fff',
    plot_bgcolor: '#fff',
    showlegend: true,
    legend: { orientation: 'h', x: 0, y: -0.32, yanchor: 'top' },
  });

  function changeText(k, points, higherIsGood) {
    if (k.change === null || k.change === undefined) return ['no comparison value', ''];
    const arrow = k.change > 0 ? '▲ +' : k.change < 0 ? '▼ ' : '= ';
    const good = k.change === 0 ? '' : (k.change > 0) === higherIsGood ? 'good' : 'bad';
    const amount = points ? number(Math.abs(k.change) * 100, 1) + ' p.p.' : percent(Math.abs(k.change));
    return [arrow + amount, good];
  }

  function setKpi(id, k, fmt, points, higherIsGood, cmpLabel) {
    const card = $('kpi-' + id);
    card.dataset.value = k.value === null || k.value === undefined ? '' : String(k.value);
    card.dataset.previous = k.previous === null || k.previous === undefined ? '' : String(k.previous);
    const text = k.value === null || k.value === undefined ? 'n/a' : fmt(k.value);
    const v = card.querySelector('.value');
    v.textContent = text;
    v.title = text;
    card.querySelector('.previous').textContent = 'vs ' + (k.previous === null || k.previous === undefined ? 'n/a' : fmt(k.previous)) + ' · ' + cmpLabel;
    const [t, cls] = changeText(k, points, higherIsGood);
    const ch = card.querySelector('.change');
    ch.textContent = t;
    ch.className = 'change' + (cls ? ' ' + cls : '');
  }

  function renderKpis(d) {
    const c = d.comparison;
    const cmpLabel = isoToBr(c.from) + '–' + isoToBr(c.to);
    const k = d.kpis;
    const int = (x) => number(x, 0);
    setKpi('revenue', k.revenue, brl, false, true, cmpLabel);
    setKpi('orders', k.orders, int, false, true, cmpLabel);
    setKpi('average_ticket', k.average_ticket, brl, false, true, cmpLabel);
    setKpi('active_customers', k.active_customers, int, false, true, cmpLabel);
    setKpi('churn_rate', k.churn_rate, percent, true, false, cmpLabel);
    $('churn-window').textContent = '(' + k.churn_window_days + ' days, at ' + isoToBr(k.as_of) + ')';
    $('compare-note').textContent = c.asked ? '' : 'Now: ' + (c.mode === 'yoy' ? 'same period last year' : 'previous period');
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

  function bindClick(el, handler) {
    if (el.dataset.bound) return;
    el.dataset.bound = '1';
    el.on('plotly_click', handler);
  }

  function renderMonthly(d, v) {
    const el = $('chart-monthly');
    const m = d.monthly;
    $('forecast-note').textContent = m.note + '.';
    if (!m.actual.length) return placeholder(el, 'No revenue in this selection.');
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const traces = [{
      x: m.actual.map((p) => p.month), y: m.actual.map((p) => p.revenue),
      customdata: m.actual.map((p) => [monthLabel(p.month), brl(p.revenue)]),
      hovertemplate: '%{customdata[0]}: %{customdata[1]}<extra>actual (click to filter)</extra>',
      name: 'Actual', mode: 'lines+markers', line: { color: '#1f5fbf' },
      marker: { size: m.actual.map((p) => (p.month === v.month ? 11 : 5)), color: '#1f5fbf' },
      meta: 'actual',
    }];
    if (m.comparison.length) {
      const label = d.comparison.mode === 'yoy' ? 'Same month last year' : 'Comparison period';
      traces.push({
        x: m.comparison.map((p) => p.month), y: m.comparison.map((p) => p.revenue),
        customdata: m.comparison.map((p) => [monthLabel(p.compared_month), brl(p.revenue)]),
        hovertemplate: '%{customdata[0]}: %{customdata[1]}<extra>comparison</extra>',
        name: label, mode: 'lines', line: { color: '#6b7785', dash: 'dot', width: 2 }, meta: 'comparison',
      });
    }
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
    const narrow = el.clientWidth < 600;
    const step = Math.max(1, Math.ceil(months.length / (narrow ? 6 : 12)));
    const ticks = months.filter((_, i) => i % step === 0);
    const from = d.filter.from.slice(0, 7);
    const to = d.filter.to.slice(0, 7);
    const layout = Object.assign(baseLayout(), {
      margin: { l: narrow ? 60 : 80, r: 10, t: 10, b: 70 },
      legend: { orientation: 'h', x: 0, y: narrow ? -0.45 : -0.32, yanchor: 'top' },
      height: narrow ? 420 : 380,
      xaxis: { type: 'category', categoryorder: 'array', categoryarray: months, tickvals: ticks, ticktext: ticks.map(monthLabel), title: { text: 'Month (mm/aaaa)' } },
      yaxis: { title: { text: narrow ? '' : 'Revenue (R$)' }, tickprefix: 'R$ ', exponentformat: 'none', separatethousands: true, rangemode: 'tozero', automargin: true },
      shapes: months.includes(from) && months.includes(to) ? [{
        type: 'rect', xref: 'x', yref: 'paper', x0: from, x1: to, y0: 0, y1: 1,
        fillcolor: 'rgba(31,95,191,.07)', line: { width: 0 }, layer: 'below',
      }] : [],
    });
    return Plotly.react(el, traces, layout, plotConfig).then(() => {
      bindClick(el, (ev) => {
        const p = ev.points && ev.points[0];
        if (p && /^\d{4}-\d{2}$/.test(p.x) && last && last.monthly.actual.some((a) => a.month === p.x)) crossFilter.month(p.x);
      });
    });
  }

  function renderCategories(d, v) {
    const el = $('chart-category');
    const rows = d.by_category.filter((r) => r.orders > 0 || r.comparison_orders > 0).slice().reverse();
    if (!rows.length) return placeholder(el, 'No revenue in this selection.');
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const narrow = el.clientWidth < 500;
    const layout = Object.assign(baseLayout(), {
      showlegend: true,
      legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
      margin: { l: 10, r: 20, t: 30, b: 50 },
      xaxis: { title: { text: 'Revenue (R$)' }, tickprefix: 'R$ ', exponentformat: 'none', separatethousands: true, nticks: narrow ? 3 : 7, tickangle: 0, automargin: true },
      yaxis: { automargin: true },
      barmode: 'group',
      height: Math.max(340, 34 * rows.length + 110),
    });
    const selected = new Set(v.category);
    const custom = rows.map((r) => [brl(r.revenue), percent(r.revenue_share), number(r.orders, 0), brl(r.comparison_revenue), signedPercent(r.revenue_change)]);
    return Plotly.react(el, [{
      type: 'bar', orientation: 'h', y: rows.map((r) => r.category), x: rows.map((r) => r.comparison_revenue),
      name: d.comparison.mode === 'yoy' ? 'Same period last year' : 'Previous period',
      customdata: custom, hovertemplate: '%{y}: %{customdata[3]} in the comparison period<extra></extra>',
      marker: { color: '#c3ccd6' },
    }, {
      type: 'bar', orientation: 'h', y: rows.map((r) => r.category), x: rows.map((r) => r.revenue),
      name: 'Selected period',
      customdata: custom,
      hovertemplate: '%{y}: %{customdata[0]} (%{customdata[1]} of revenue, %{customdata[2]} orders; %{customdata[4]} vs %{customdata[3]})<extra>click to filter</extra>',
      marker: { color: rows.map((r) => (selected.size && !selected.has(r.category) ? '#9db7e0' : '#1f5fbf')) },
    }], layout, plotConfig).then(() => {
      bindClick(el, (ev) => {
        const p = ev.points && ev.points[0];
        const e = ev.event || {};
        if (p && options.categories.includes(p.y)) crossFilter.category(p.y, e.ctrlKey || e.metaKey || e.shiftKey);
      });
    });
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
        customdata: idx.map(() => s.id),
        marker: { size: 5, color: SEGMENT_COLOURS[i % SEGMENT_COLOURS.length], opacity: dim ? 0.1 : 0.75 },
        hovertemplate: s.name + ' (click to filter)<extra></extra>',
      };
    });
    const ev = p.explained_variance_ratio;
    $('pca-note').textContent = seg.note + '; ' + number(p.x.length, 0) + ' of ' + number(p.customers, 0) +
      ' customers on the PCA map (stratified sample). Click a segment (point, legend or row) to filter by it.';
    const layout = Object.assign(baseLayout(), {
      margin: { l: 60, r: 10, t: 10, b: 60 },
      legend: { orientation: 'h', x: 0, y: -0.25, yanchor: 'top' },
      xaxis: { title: { text: 'PC1 (' + percent(ev[0]) + ' of variance)' }, zeroline: false },
      yaxis: { title: { text: 'PC2 (' + percent(ev[1]) + ')' }, zeroline: false },
    });
    return Plotly.react(el, traces, layout, plotConfig).then(() => {
      if (el.dataset.bound) return;
      el.dataset.bound = '1';
      el.on('plotly_click', (e) => {
        const pt = e.points && e.points[0];
        if (pt && pt.customdata !== undefined) crossFilter.segment(pt.customdata);
      });
      el.on('plotly_legendclick', (e) => {
        const s = options.segments.segments[e.curveNumber];
        if (s) crossFilter.segment(s.id);
        return false;
      });
    });
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
      margin: { l: 80, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: 'Months since first order' }, dtick: 1 },
      yaxis: { title: { text: 'Cohort (mm/aaaa)' }, autorange: 'reversed', type: 'category' },
      height: Math.max(340, 16 * y.length + 90),
    });
    return Plotly.react(el, [{
      type: 'heatmap', x: c.offsets, y, z, text,
      customdata: c.retention.map((row, i) => row.map(() => number(c.sizes[i], 0))),
      hovertemplate: 'cohort %{y}, month %{x}: %{text} of %{customdata} customers<extra></extra>',
      colorscale: 'Blues', reversescale: true, zmin: 0, zmax: 100,
      colorbar: { title: { text: '%' }, ticksuffix: '%', thickness: 12 },
    }], layout, plotConfig);
  }

  // ---------------------------------------------------------------- tables
  function cell(tr, text, cls, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function head(table, columns) {
    table.innerHTML = '';
    const thead = document.createElement('thead');
    const tr = document.createElement('tr');
    columns.forEach(([label, cls]) => {
      const th = document.createElement('th');
      th.textContent = label;
      if (cls) th.className = cls;
      th.scope = 'col';
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
    const tbody = document.createElement('tbody');
    table.appendChild(tbody);
    return tbody;
  }

  function changeCell(tr, x) {
    cell(tr, signedPercent(x), 'num ' + (x > 0 ? 'up' : x < 0 ? 'down' : ''));
  }

  function emptyRow(tbody, n, text) {
    const tr = document.createElement('tr');
    const td = cell(tr, text);
    td.colSpan = n;
    tbody.appendChild(tr);
  }

  // A table row of a segment (null: customers without one) that filters the
  // page by it when clicked, marked when it is the segment filtered by.
  function segmentRow(id, v) {
    const tr = document.createElement('tr');
    if (id !== null) {
      tr.className = 'clickable' + (String(id) === v.segment ? ' selected' : '');
      tr.dataset.segment = String(id);
      tr.title = 'Click to filter by this segment';
      tr.addEventListener('click', () => crossFilter.segment(id));
    }
    return tr;
  }

  function renderSegments(d, v) {
    const table = $('table-segments');
    if (!options.segments.available) { table.innerHTML = ''; return; }
    const cols = [['Segment'], ['Revenue', 'num'], ['Share', 'num'], ['Customers', 'num'], ['vs comparison', 'num']];
    const tbody = head(table, cols);
    d.by_segment.forEach((r) => {
      const tr = segmentRow(r.segment_id, v);
      cell(tr, r.segment);
      cell(tr, brl(r.revenue), 'num');
      cell(tr, percent(r.revenue_share), 'num');
      cell(tr, number(r.customers, 0), 'num');
      changeCell(tr, r.revenue_change);
      tbody.appendChild(tr);
    });
    if (!d.by_segment.length) emptyRow(tbody, cols.length, 'No revenue in this selection.');
  }

  // CLV by segment (/api/dashboard/clv, read with the options): the live
  // spend model's CLV of every customer, summed per segment. A row filters
  // the page by its segment, like the segments table.
  function renderClv(v) {
    const table = $('table-clv');
    const c = clv;
    if (!c || !c.available) {
      table.innerHTML = '';
      $('clv-note').textContent = c ? 'Not available: ' + c.note : 'Not available: ' + clvError;
      return;
    }
    const cols = [['Segment'], ['Customers', 'num'], ['Total CLV', 'num'], ['Share', 'num'], ['Mean CLV', 'num'], ['P(alive)', 'num'], ['Purchases', 'num opt']];
    const tbody = head(table, cols);
    c.rows.forEach((r) => {
      const tr = segmentRow(r.segment_id, v);
      cell(tr, r.segment);
      cell(tr, number(r.customers, 0), 'num');
      cell(tr, brl(r.total_clv), 'num');
      cell(tr, percent(r.share_of_clv), 'num');
      cell(tr, r.mean_clv === null ? 'n/a' : brl(r.mean_clv), 'num');
      cell(tr, r.mean_p_alive === null ? 'n/a' : percent(r.mean_p_alive), 'num');
      cell(tr, r.mean_expected_purchases === null ? 'n/a' : number(r.mean_expected_purchases, 2), 'num opt');
      tbody.appendChild(tr);
    });
    $('clv-note').textContent = 'Expected revenue of each segment\'s customers over the next ' + number(c.horizon_days, 0) +
      ' days (discounted); P(alive): mean probability of still being a customer; purchases: expected purchase days. ' + c.note + '.';
  }

  // Segment migration (options.segments.migration): where the customers of
  // each segment 90 days ago are now, as shares of the row.
  function renderMigration() {
    const el = $('chart-migration');
    const m = options.segments.available ? options.segments.migration : null;
    if (!m) {
      $('migration-note').textContent = '';
      return placeholder(el, options.segments.available
        ? 'No customer had ordered 90 days before the last order: no migration to show.'
        : 'No segment model: ' + options.segments.note);
    }
    if (el.querySelector('.placeholder')) el.innerHTML = '';
    const z = m.row_shares.map((row) => row.map((x) => x * 100));
    const text = m.counts.map((row, i) => row.map((n, j) => percent(m.row_shares[i][j])));
    const custom = m.counts.map((row) => row.map((n) => number(n, 0)));
    const layout = Object.assign(baseLayout(), {
      showlegend: false,
      margin: { l: 130, r: 10, t: 10, b: 90 },
      xaxis: { title: { text: 'Segment on ' + isoToBr(m.to) }, type: 'category', automargin: true },
      yaxis: { title: { text: 'Segment on ' + isoToBr(m.from) }, autorange: 'reversed', type: 'category', automargin: true },
      height: Math.max(300, 40 * m.segments.length + 140),
    });
    $('migration-note').textContent = percent(m.stayed_share) + ' of the customers of ' + isoToBr(m.from) +
      ' are in the same segment on ' + isoToBr(m.to) + '; ' +
      number(m.new_customers.reduce((a, b) => a + b, 0), 0) + ' customers are new since then. Each row adds up to 100%.';
    return Plotly.react(el, [{
      type: 'heatmap', x: m.segments, y: m.segments, z, text, customdata: custom,
      texttemplate: '%{text}',
      hovertemplate: '%{customdata} customers from %{y} to %{x} (%{text} of the row)<extra></extra>',
      colorscale: 'Blues', reversescale: true, zmin: 0, zmax: 100,
      colorbar: { title: { text: '%' }, ticksuffix: '%', thickness: 12 },
    }], layout, plotConfig);
  }

  function renderLeaders(d) {
    let tbody = head($('table-products'), [['#', 'num'], ['Product'], ['Category', 'opt'], ['Revenue', 'num'], ['Share', 'num opt'], ['Comparison', 'num opt'], ['Change', 'num']]);
    d.top_products.forEach((r) => {
      const tr = document.createElement('tr');
      cell(tr, String(r.rank), 'num');
      cell(tr, r.product_id);
      cell(tr, r.category, 'opt');
      cell(tr, brl(r.revenue), 'num');
      cell(tr, percent(r.revenue_share), 'num opt');
      cell(tr, brl(r.comparison_revenue), 'num opt');
      changeCell(tr, r.revenue_change);
      tbody.appendChild(tr);
    });
    if (!d.top_products.length) emptyRow(tbody, 7, 'No products in this selection.');
    const segments = options.segments.available;
    const cols = [['#', 'num']].concat(d.customer_ids ? [['Customer']] : []).concat([['State', 'opt']])
      .concat(segments ? [['Segment', 'opt']] : []).concat([['Orders', 'num opt'], ['Revenue', 'num'], ['Share', 'num opt'], ['Change', 'num']]);
    tbody = head($('table-customers'), cols);
    d.top_customers.forEach((r) => {
      const tr = document.createElement('tr');
      cell(tr, String(r.rank), 'num');
      if (d.customer_ids) cell(tr, r.customer_id);
      cell(tr, r.state || '–', 'opt');
      if (segments) cell(tr, r.segment, 'opt');
      cell(tr, number(r.orders, 0), 'num opt');
      cell(tr, brl(r.revenue), 'num', 'comparison: ' + brl(r.comparison_revenue));
      cell(tr, percent(r.revenue_share), 'num opt');
      changeCell(tr, r.revenue_change);
      tbody.appendChild(tr);
    });
    if (!d.top_customers.length) emptyRow(tbody, cols.length, 'No customers in this selection.');
    $('customers-note').textContent = d.customer_ids ? '' : 'Customer ids are hidden: this key may not see them.';
  }

  function exportLinks(v) {
    const q = filterQuery(v);
    ['categories', 'states', 'segments', 'products', 'customers', 'orders'].forEach((t) => {
      const p = new URLSearchParams(q);
      p.set('table', t);
      if (t === 'orders') {
        p.set('sort', v.sort);
        p.set('dir', v.dir);
        p.set('period', v.period);
      }
      $('csv-' + t).href = '/api/dashboard/export.csv?' + p.toString();
    });
  }

  // With an API key a plain link cannot send it: the CSV links then fetch
  // with the key and save what they get.
  function csvClick(e) {
    const a = e.currentTarget;
    if (!apiKey.get()) return;
    e.preventDefault();
    const table = new URLSearchParams(a.href.split('?')[1] || '').get('table') || 'table';
    apiKey.download(a.href, 'dashboard-' + table + '.csv').catch((err) => showError('Could not export: ' + err.message));
  }

  // ------------------------------------------------------------- drill-down
  function renderDrill(o, v) {
    const sortable = { date: 'Date', items: 'Items', revenue: 'Revenue' };
    const cols = [['Order', ''], ['Date', 'date'], ['Customer', ''], ['State', ''], ['Segment', ''], ['Channel', ''], ['Categories', ''], ['Items', 'items'], ['Revenue', 'revenue']]
      .filter(([label]) => (label !== 'Customer' || o.customer_ids) && (label !== 'Segment' || options.segments.available));
    const optional = new Set(['Customer', 'State', 'Segment', 'Channel', 'Categories']);
    const table = $('table-orders');
    table.innerHTML = '';
    const thead = document.createElement('thead');
    const htr = document.createElement('tr');
    cols.forEach(([label, key]) => {
      const th = document.createElement('th');
      th.scope = 'col';
      th.className = [key === 'items' || key === 'revenue' ? 'num' : '', optional.has(label) ? 'opt' : ''].join(' ').trim();
      if (sortable[key]) {
        th.setAttribute('aria-sort', v.sort === key ? (v.dir === 'asc' ? 'ascending' : 'descending') : 'none');
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = label;
        b.dataset.sort = key;
        b.addEventListener('click', () => change((w) => {
          if (w.sort === key) w.dir = w.dir === 'asc' ? 'desc' : 'asc';
          else { w.sort = key; w.dir = 'desc'; }
          w.page = 1;
        }, 'drill'));
        th.appendChild(b);
      } else {
        th.textContent = label;
      }
      htr.appendChild(th);
    });
    thead.appendChild(htr);
    table.appendChild(thead);
    const tbody = document.createElement('tbody');
    o.rows.forEach((r) => {
      const tr = document.createElement('tr');
      tr.dataset.order = r.order_id;
      cell(tr, r.order_id);
      cell(tr, isoToBr(r.date));
      if (o.customer_ids) cell(tr, r.customer_id, 'opt');
      cell(tr, r.state || '–', 'opt');
      if (options.segments.available) cell(tr, r.segment, 'opt');
      cell(tr, r.channel, 'opt');
      cell(tr, r.categories.join(', '), 'opt');
      cell(tr, number(r.items, 0), 'num');
      cell(tr, brl(r.revenue), 'num');
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    if (!o.rows.length) emptyRow(tbody, cols.length, o.total ? 'No orders on this page.' : 'No orders in this selection.');
    const pages = Math.max(1, o.pages);
    $('o-page').textContent = 'Page ' + number(o.page, 0) + ' of ' + number(pages, 0);
    $('o-first').disabled = $('o-prev').disabled = o.page <= 1;
    $('o-next').disabled = $('o-last').disabled = o.page >= pages;
    $('orders-note').textContent = number(o.total, 0) + ' completed orders from ' + isoToBr(o.period_from) + ' to ' + isoToBr(o.period_to) +
      (o.period === 'comparison' ? ' (comparison period)' : '') + '; revenue and items count the lines in the selected categories.';
    window.dashboardDrill = { query: drillQuery(v), data: o };
  }

  function drillQuery(v) {
    const q = filterQuery(v);
    q.set('period', v.period);
    q.set('sort', v.sort);
    q.set('dir', v.dir);
    q.set('page', String(v.page));
    q.set('page_size', v.size);
    return q.toString();
  }

  // A page of the drill-down; `alone`: nothing else changed (the view is
  // shown once it is drawn).
  function loadDrill(v, alone) {
    const my = ++drillGeneration;
    document.body.dataset.drill = 'loading';
    const query = drillQuery(v);
    return apiKey.fetch('/api/dashboard/orders?' + query)
      .then((r) => (r.ok ? r.json() : apiError(r)))
      .then((o) => {
        if (my !== drillGeneration) return;
        renderDrill(o, v);
        exportLinks(v);
        if (alone) window.dashboardShown = pageQuery(v);
        document.body.dataset.drill = 'ready';
      })
      .catch((e) => {
        if (my !== drillGeneration) return;
        showError('Could not load the orders: ' + e.message);
        document.body.dataset.drill = 'error';
      });
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
    const selling = d.by_state.filter((r) => r.orders > 0);
    const byState = new Map(d.by_state.map((r) => [r.state, r]));
    const max = Math.max(0, ...selling.map((r) => r.revenue));
    const selected = new Set(d.filter.states);
    mapShapes.paths.forEach((p) => {
      const r = byState.get(p.id);
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', p.d);
      path.setAttribute('id', 'state-' + p.id);
      path.setAttribute('fill', shade(r && max > 0 ? Math.sqrt(r.revenue / max) : 0));
      if (selected.has(p.id)) path.setAttribute('class', 'selected');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = p.name + ' (' + p.id + '): ' + (r
        ? brl(r.revenue) + ', ' + number(r.orders, 0) + ' orders; ' + signedPercent(r.revenue_change) + ' vs ' + brl(r.comparison_revenue)
        : 'no revenue');
      path.appendChild(title);
      path.addEventListener('click', (e) => crossFilter.state(p.id, e.ctrlKey || e.metaKey || e.shiftKey));
      svg.appendChild(path);
    });
    const rmax = 28;
    selling.slice().sort((a, b) => b.revenue - a.revenue).forEach((r) => {
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
    $('map-note').textContent = selling.length
      ? 'Bubble area and colour ∝ revenue (R$) at the state capital; largest: ' + selling[0].state + ' ' + brl(selling[0].revenue) + '. Click a state to filter (Ctrl/⌘-click adds it); again to clear.'
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

  function render(d, v) {
    $('period-label').textContent = isoToBr(d.filter.from) + ' – ' + isoToBr(d.filter.to) +
      ' vs ' + d.comparison.label + ' (' + isoToBr(d.comparison.from) + ' – ' + isoToBr(d.comparison.to) + ')' +
      ' · data ' + isoToBr(options.min_date) + ' – ' + isoToBr(options.max_date);
    const empty = $('empty');
    empty.hidden = !d.empty;
    empty.textContent = d.empty ? d.message : '';
    renderChips(v);
    renderKpis(d);
    renderMap(d);
    renderSegments(d, v);
    renderClv(v);
    renderLeaders(d);
    exportLinks(v);
    return Promise.all([renderMonthly(d, v), renderCategories(d, v), renderPca(d), renderCohorts(d), migrationShown || renderMigration()])
      .then(() => { migrationShown = true; });
  }

  function load(v) {
    const my = ++generation;
    const query = filterQuery(v).toString();
    document.body.dataset.state = 'loading';
    const t0 = performance.now();
    const drill = loadDrill(v, false);
    return apiKey.fetch('/api/dashboard' + (query ? '?' + query : ''))
      .then((r) => (r.ok ? r.json() : apiError(r)))
      .then((d) => {
        if (my !== generation) return;
        showError('');
        last = d;
        const net = performance.now() - t0;
        return Promise.all([render(d, v), drill]).then(() => {
          if (my !== generation) return;
          $('timing').textContent = 'server ' + number(d.compute_ms, 1) + ' ms · request + render ' + number(performance.now() - t0, 0) + ' ms';
          window.dashboardLast = { query, page: pageQuery(v), data: d, requestMs: net, totalMs: performance.now() - t0 };
          window.dashboardShown = pageQuery(v);
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

  function fromForm() {
    return change((v) => {
      v.from = brToIso($('f-from').value) || '';
      v.to = brToIso($('f-to').value) || '';
      v.compare = $('f-compare').value;
      v.category = Array.from($('f-category').selectedOptions).map((o) => o.value);
      v.segment = $('f-segment').value;
      v.state = $('f-state').value ? [$('f-state').value] : [];
      v.channel = $('f-channel').value;
      v.month = '';
    });
  }

  function init() {
    Promise.all([
      apiKey.fetch('/api/dashboard/options').then((r) => (r.ok ? r.json() : apiError(r))),
      loadMap(),
      // The CLV card is not worth a broken page: its failure shows in the card.
      apiKey.fetch('/api/dashboard/clv').then((r) => (r.ok ? r.json() : apiError(r)))
        .catch((e) => { clvError = e.message; return null; }),
    ]).then(([o, , c]) => {
      options = o;
      clv = c;
      setupFilters();
      view = readUrl();
      // The URL in its one spelling (what `dashboardShown` compares with).
      const canonical = pageQuery(view);
      history.replaceState(null, '', canonical ? '?' + canonical : location.pathname);
      writeForm(view);
      ['f-category', 'f-segment', 'f-state', 'f-channel', 'f-compare'].forEach((id) => $(id).addEventListener('change', fromForm));
      ['f-from', 'f-to'].forEach((id) => $(id).addEventListener('change', () => {
        if ($('f-from').checkValidity() && $('f-to').checkValidity()) fromForm();
      }));
      $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); fromForm(); });
      $('reset').addEventListener('click', () => go(emptyView()));
      ['categories', 'states', 'segments', 'products', 'customers', 'orders'].forEach((t) => $('csv-' + t).addEventListener('click', csvClick));
      $('o-period').addEventListener('change', () => change((w) => { w.period = $('o-period').value; w.page = 1; }, 'drill'));
      $('o-size').addEventListener('change', () => change((w) => { w.size = $('o-size').value; w.page = 1; }, 'drill'));
      const pages = () => (window.dashboardDrill ? Math.max(1, window.dashboardDrill.data.pages) : 1);
      $('o-first').addEventListener('click', () => change((w) => { w.page = 1; }, 'drill'));
      $('o-prev').addEventListener('click', () => change((w) => { w.page = Math.max(1, w.page - 1); }, 'drill'));
      $('o-next').addEventListener('click', () => change((w) => { w.page = Math.min(pages(), w.page + 1); }, 'drill'));
      $('o-last').addEventListener('click', () => change((w) => { w.page = pages(); }, 'drill'));
      window.addEventListener('popstate', () => {
        const v = readUrl();
        const old = view;
        view = v;
        writeForm(v);
        // Only the drill-down changed: reload it alone.
        if (old && filterQuery(old).toString() === filterQuery(v).toString()) return loadDrill(v, true);
        return load(v);
      });
      return load(view);
    }).catch((e) => {
      showError('Could not load the dashboard: ' + e.message);
      document.body.dataset.state = 'error';
    });
  }

  init();
})();
