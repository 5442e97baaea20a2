// The API key of this browser tab, for the pages of `serve` (the dashboard,
// Swagger UI). A browser cannot send a bearer header when it opens a page, so
// the pages themselves are served to anybody (they hold no data) and every
// data request they make carries `Authorization: Bearer <key>`.
//
// Where the key comes from: the URL fragment (`/#key=…` or `/docs#key=…`,
// never sent to the server nor written in its logs; removed from the address
// bar at once), else this tab's sessionStorage (gone when the tab closes),
// else a form this script shows when the service answers 401 or 403.
(function () {
  'use strict';
  var STORE = 'sales-analytics.api-key';

  function fromFragment() {
    var m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
    if (!m) return '';
    var key = decodeURIComponent(m[1]);
    try { sessionStorage.setItem(STORE, key); } catch (e) { /* storage off: this page only */ }
    history.replaceState(history.state, '', location.pathname + location.search);
    return key;
  }

  var current = fromFragment();

  var apiKey = {
    get: function () {
      if (current) return current;
      try { return sessionStorage.getItem(STORE) || ''; } catch (e) { return ''; }
    },
    set: function (key) {
      current = key;
      try {
        if (key) sessionStorage.setItem(STORE, key); else sessionStorage.removeItem(STORE);
      } catch (e) { /* this page only */ }
    },
    // `headers` with the bearer header added (when a key is known).
    headers: function (headers) {
      var h = Object.assign({}, headers || {});
      var key = apiKey.get();
      if (key && !h.Authorization) h.Authorization = 'Bearer ' + key;
      return h;
    },
    // fetch() with the key; a 401/403 answer also shows the key form.
    fetch: function (url, options) {
      var o = Object.assign({}, options || {});
      o.headers = apiKey.headers(o.headers);
      return fetch(url, o).then(function (r) {
        if (r.status === 401 || r.status === 403) {
          r.clone().json().then(function (b) { apiKey.ask(b.error); }, function () { apiKey.ask('HTTP ' + r.status); });
        }
        return r;
      });
    },
    // Download what `url` answers (e.g. a CSV export) as a file, with the key
    // (a plain link could not send it).
    download: function (url, filename) {
      return apiKey.fetch(url).then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.blob();
      }).then(function (blob) {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = filename;
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
      });
    },
    // Ask for a key (once on screen); the page reloads with it.
    ask: function (why) {
      if (document.getElementById('api-key-form')) return;
      var form = document.createElement('form');
      form.id = 'api-key-form';
      form.setAttribute('role', 'dialog');
      form.setAttribute('aria-label', 'API key');
      form.style.cssText = 'position:fixed;top:1rem;right:1rem;z-index:10000;background:#fff;' +
        'border:1px solid #c00;border-radius:6px;padding:1rem;box-shadow:0 2px 12px rgba(0,0,0,.2);' +
        'font:14px sans-serif;max-width:24rem';
      var p = document.createElement('p');
      p.style.margin = '0 0 .5rem';
      p.textContent = 'This service needs an API key' + (why ? ' (' + why + ')' : '') + '.';
      var input = document.createElement('input');
      input.type = 'password';
      input.id = 'api-key-input';
      input.autocomplete = 'off';
      input.placeholder = 'API key';
      input.style.cssText = 'width:100%;box-sizing:border-box;margin-bottom:.5rem';
      var ok = document.createElement('button');
      ok.type = 'submit';
      ok.textContent = 'Use this key';
      form.appendChild(p);
      form.appendChild(input);
      form.appendChild(ok);
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        apiKey.set(input.value.trim());
        location.reload();
      });
      document.body.appendChild(form);
      input.focus();
    },
  };
  window.apiKey = apiKey;
})();
