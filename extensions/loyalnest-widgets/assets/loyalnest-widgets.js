/* LoyalNest storefront widgets. One deferred script for every block: Liquid has already rendered
   a readable first state; this refreshes it through the app proxy when a widget comes into view,
   runs placement A/B tests and counts impressions and clicks. It never blocks the page: nothing
   runs before the browser is idle, every request has a timeout, and any failure keeps the
   Liquid state (RELIABILITY E7). */
(function () {
  'use strict';
  if (window.LoyalNestWidgets) return;
  var BASE = (window.LoyalNestProxyBase || '/apps/loyalnest') + '/v1/api/widgets';
  var TIMEOUT_MS = 3000;
  var VISITOR_KEY = 'loyalnest_vid';

  // FNV-1a (32 bit) of an ASCII key; apps/theme_extensions/experiments.py computes the same.
  function fnv1a(key) {
    var hash = 0x811c9dc5;
    for (var i = 0; i < key.length; i++) {
      hash ^= key.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash >>> 0;
  }

  // The variant a visitor sees: a bucket 0..99 from the hash, walked through the weights.
  function assign(widget, visitor, variants) {
    var bucket = fnv1a(widget + ':' + visitor) % 100;
    var upto = 0;
    for (var i = 0; i < variants.length; i++) {
      upto += variants[i].weight;
      if (bucket < upto) return variants[i];
    }
    return variants[variants.length - 1];
  }

  function visitorId() {
    try {
      var id = window.localStorage.getItem(VISITOR_KEY);
      if (id && /^[A-Za-z0-9_-]{8,64}$/.test(id)) return id;
      var bytes = new Uint8Array(12);
      window.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
      window.localStorage.setItem(VISITOR_KEY, id);
      return id;
    } catch (e) {
      return 'anonymous';
    }
  }

  function request(url, options, timeout) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, timeout || TIMEOUT_MS);
    options = options || {};
    options.credentials = 'same-origin';
    options.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    if (controller) options.signal = controller.signal;
    return fetch(url, options).then(function (response) {
      clearTimeout(timer);
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }, function (error) {
      clearTimeout(timer);
      throw error;
    });
  }

  function parseVariants(el) {
    try {
      var variants = JSON.parse(el.getAttribute('data-variants') || '[]');
      return Array.isArray(variants) ? variants : [];
    } catch (e) {
      return [];
    }
  }

  var widgets = Array.prototype.slice.call(document.querySelectorAll('[data-loyalnest-widget]'));
  if (!widgets.length) return;
  var first = widgets[0];
  var locale = first.getAttribute('data-locale') || document.documentElement.lang || 'en';
  var customer = first.getAttribute('data-customer') || '';
  var loggedIn = first.getAttribute('data-logged-in') === 'true';
  var visitor = customer || visitorId();
  var pending = [];
  var flushTimer = null;

  function record(el, kind) {
    pending.push({
      widget: el.getAttribute('data-loyalnest-widget'),
      variant: el.getAttribute('data-variant') || 'default',
      placement: el.getAttribute('data-placement') || '',
      kind: kind
    });
    if (kind === 'click') return flush();
    if (!flushTimer) flushTimer = setTimeout(flush, 1000);
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = null;
    if (!pending.length) return;
    var body = JSON.stringify({ visitor_id: visitor, events: pending.splice(0, 20) });
    // keepalive: a click that navigates away still delivers its event; failures are dropped.
    request(BASE + '/events?locale=' + encodeURIComponent(locale), { method: 'POST', body: body, keepalive: true })
      .catch(function () {});
  }

  function setText(root, selector, text) {
    var nodes = root.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) {
      if (text) {
        nodes[i].textContent = text;
        nodes[i].hidden = false;
      }
    }
  }

  function render(el, data) {
    var shopper = data.shopper;
    var text = data.text || {};
    if (shopper) {
      setText(el, '[data-ln-balance]', String(shopper.points_balance));
      if (text.tier) {
        setText(el, '[data-ln-tier]', text.tier);
        var wrap = el.querySelector('[data-ln-tier-wrap]');
        if (wrap) wrap.hidden = false;
      }
      var bar = el.querySelector('[data-ln-progress]');
      if (bar && shopper.next_tier) {
        var percent = Math.max(0, Math.min(100, shopper.next_tier.progress_percent));
        bar.setAttribute('aria-valuenow', String(percent));
        bar.firstElementChild.style.inlineSize = percent + '%';
        setText(el, '[data-ln-next-tier]', text.next_tier);
        bar.parentNode.hidden = false;
      }
    }
    setText(el, '[data-ln-next-reward]', text.next_reward);
    var list = el.querySelector('[data-ln-rewards]');
    var rewards = (data.content && data.content.rewards) || [];
    if (list && rewards.length) {
      list.textContent = '';
      rewards.slice(0, 5).forEach(function (reward) {
        var item = document.createElement('li');
        var name = document.createElement('span');
        var cost = document.createElement('span');
        name.textContent = reward.name;
        cost.textContent = reward.cost_text;
        cost.className = 'loyalnest__cost';
        item.appendChild(name);
        item.appendChild(cost);
        list.appendChild(item);
      });
      list.hidden = false;
    }
    renderWallet(el, data.contributions && data.contributions.wallet);
    el.setAttribute('data-state', 'live');
  }

  // "Add to Apple Wallet" / "Save to Google Wallet": shown only for the wallets the answer lists;
  // a click exports through the app proxy and opens the returned short-lived pass_url.
  var WALLET_PATH = /^\/apps\/[\w-]+\/v1\/api\/wallet\/export$/;
  function renderWallet(el, wallet) {
    var box = el.querySelector('[data-ln-wallet]');
    if (!box) return;
    var path = wallet && wallet.export_path;
    var items = (path && WALLET_PATH.test(path) && wallet.buttons) || [];
    var shown = 0;
    Array.prototype.forEach.call(box.querySelectorAll('[data-ln-wallet-type]'), function (button) {
      var type = button.getAttribute('data-ln-wallet-type');
      var item = items.filter(function (b) { return b && b.wallet_type === type; })[0];
      button.hidden = !item;
      if (!item) return;
      shown++;
      if (!button.textContent.trim() && item.aria_label) button.textContent = item.aria_label;
      if (!button.getAttribute('aria-label') && item.aria_label) button.setAttribute('aria-label', item.aria_label);
      button.onclick = function () { exportPass(box, button, path, type); };
    });
    box.hidden = !shown;
  }

  function exportPass(box, button, path, type) {
    if (button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    var status = box.parentNode.querySelector('[data-ln-status]');
    if (status) status.textContent = '';
    var body = JSON.stringify({ wallet_type: type });
    request(path + '?locale=' + encodeURIComponent(locale), { method: 'POST', body: body }, 10000).then(function (answer) {
      var url = answer && answer.pass_url;
      if (!/^https?:\/\//.test(url || '')) throw new Error('no pass_url');
      window.location.assign(url);
    }).catch(function () {
      if (status) status.textContent = box.getAttribute('data-ln-wallet-failed') || '';
    }).then(function () {
      button.removeAttribute('aria-busy');
    });
  }

  var loaded = null;
  function load() {
    if (!loaded) {
      var query = '?locale=' + encodeURIComponent(locale) + '&visitor_id=' + encodeURIComponent(visitor);
      loaded = request(BASE + (loggedIn ? '' : '/content') + query);
    }
    return loaded;
  }

  function show(el) {
    load().then(function (data) { render(el, data); }, function () {
      el.setAttribute('data-state', 'stale');
    });
    record(el, 'impression');
  }

  function start() {
    widgets.forEach(function (el) {
      var variants = parseVariants(el);
      if (variants.length > 1) {
        var variant = assign(el.getAttribute('data-loyalnest-widget'), visitor, variants);
        el.setAttribute('data-variant', variant.id);
        if (variant.placement !== el.getAttribute('data-placement')) return;
        el.hidden = false;
      }
      el.addEventListener('click', function (event) {
        if (event.target.closest && event.target.closest('[data-ln-cta]')) record(el, 'click');
      });
      if (!window.IntersectionObserver) return show(el);
      var observer = new IntersectionObserver(function (entries) {
        if (entries[0].isIntersecting) {
          observer.disconnect();
          show(el);
        }
      }, { rootMargin: '200px' });
      observer.observe(el);
    });
    window.addEventListener('pagehide', flush);
  }

  window.LoyalNestWidgets = { assign: assign, fnv1a: fnv1a };
  if (window.requestIdleCallback) window.requestIdleCallback(start, { timeout: 2000 });
  else setTimeout(start, 200);
})();
