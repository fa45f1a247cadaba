// Widgets page: save a widget's configuration with PUT /v1/api/theme-extensions (App Bridge
// session token) and show the preview the API renders for the chosen language.
(function () {
  'use strict';
  function collect(form) {
    var config = {
      widget: form.getAttribute('data-widget-form'),
      placement: form.elements.placement.value,
      enabled: form.elements.enabled.checked,
      texts: {},
      colors: {}
    };
    var locale = form.getAttribute('data-locale');
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name.indexOf('text-') === 0 && field.value.trim()) {
        config.texts[field.name.slice(5)] = {};
        config.texts[field.name.slice(5)][locale] = field.value.trim();
      }
      if (field.name.indexOf('color-') === 0) config.colors[field.name.slice(6)] = field.value;
    });
    var ids = form.querySelectorAll('[name=variant-id]');
    var places = form.querySelectorAll('[name=variant-placement]');
    var weights = form.querySelectorAll('[name=variant-weight]');
    var variants = [];
    for (var i = 0; i < ids.length; i++) {
      if (ids[i].value.trim()) {
        variants.push({ id: ids[i].value.trim(), placement: places[i].value, weight: parseInt(weights[i].value || '0', 10) });
      }
    }
    if (variants.length) config.variants = variants;
    return config;
  }

  function token() {
    return window.shopify && window.shopify.idToken ? window.shopify.idToken() : Promise.resolve('');
  }

  document.querySelectorAll('[data-widget-form]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var status = form.querySelector('[data-status]');
      var locale = form.getAttribute('data-locale');
      token().then(function (idToken) {
        return fetch('/v1/api/theme-extensions', {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + idToken },
          body: JSON.stringify({ theme_extension_config: collect(form), locale: locale })
        });
      }).then(function (response) { return response.json(); }).then(function (body) {
        if (body.status === 'ok') {
          form.parentNode.querySelector('[data-preview]').innerHTML = body.preview.html;
          status.textContent = form.getAttribute('data-saved') || '✓';
        } else {
          status.textContent = body.error.message + (body.error.fields ? " " + JSON.stringify(body.error.fields) : '');
        }
      }).catch(function () { status.textContent = '…'; });
    });
  });
})();
