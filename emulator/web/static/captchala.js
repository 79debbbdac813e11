/*! captchala-emulator SDK: a local stand-in for https://cdn.captcha-cdn.net/captchala.js.
 * window.Captchala.init(options) returns a chainable instance (onReady, onSuccess, onError, onClose,
 * appendTo, bindTo, verify, showCaptcha, reset, destroy, setLang). The widget talks to the emulator
 * it was loaded from: POST /v1/challenge/init and /v1/challenge/solve, and, when those are down
 * (network error or HTTP >= 500), the emulator's bypass worker /v1/challenge/offline.
 * Test use only: it is labelled as an emulator and its tokens never pass the real CaptchaLa. */
(function (window, document) {
  'use strict';

  if (window.Captchala && window.Captchala.emulator) {
    return; // included twice: keep the first copy (and its instances)
  }

  var VERSION = '1.0.0-emulator';
  var REQUEST_TIMEOUT_MS = 10000;
  var PRODUCTS = ['popup', 'float', 'embed', 'bind'];
  var BASE = scriptFolder();
  var dialogCount = 0;

  var I18N = {
    'en': {note: 'Test mode \u2014 not a real CAPTCHA', verify: 'Click to verify', verifying: 'Verifying\u2026',
      verified: 'Verified', failed: 'Verification failed', retry: 'Try again', close: 'Close',
      title: 'Security check', offline: 'Offline mode (backup service)'},
    'zh-CN': {note: '\u6d4b\u8bd5\u6a21\u5f0f \u2014 \u4e0d\u662f\u771f\u6b63\u7684\u9a8c\u8bc1\u7801', verify: '\u70b9\u51fb\u9a8c\u8bc1',
      verifying: '\u9a8c\u8bc1\u4e2d\u2026', verified: '\u9a8c\u8bc1\u6210\u529f', failed: '\u9a8c\u8bc1\u5931\u8d25',
      retry: '\u91cd\u8bd5', close: '\u5173\u95ed', title: '\u5b89\u5168\u9a8c\u8bc1', offline: '\u79bb\u7ebf\u6a21\u5f0f\uff08\u5907\u7528\u670d\u52a1\uff09'},
    'zh-TW': {note: '\u6e2c\u8a66\u6a21\u5f0f \u2014 \u4e0d\u662f\u771f\u6b63\u7684\u9a57\u8b49\u78bc', verify: '\u9ede\u64ca\u9a57\u8b49',
      verifying: '\u9a57\u8b49\u4e2d\u2026', verified: '\u9a57\u8b49\u6210\u529f', failed: '\u9a57\u8b49\u5931\u6557',
      retry: '\u91cd\u8a66', close: '\u95dc\u9589', title: '\u5b89\u5168\u9a57\u8b49', offline: '\u96e2\u7dda\u6a21\u5f0f\uff08\u5099\u7528\u670d\u52d9\uff09'},
    'ja': {note: '\u30c6\u30b9\u30c8\u30e2\u30fc\u30c9 \u2014 \u672c\u7269\u306e CAPTCHA \u3067\u306f\u3042\u308a\u307e\u305b\u3093',
      verify: '\u30af\u30ea\u30c3\u30af\u3057\u3066\u8a8d\u8a3c', verifying: '\u8a8d\u8a3c\u4e2d\u2026', verified: '\u8a8d\u8a3c\u5b8c\u4e86',
      failed: '\u8a8d\u8a3c\u306b\u5931\u6557\u3057\u307e\u3057\u305f', retry: '\u518d\u8a66\u884c', close: '\u9589\u3058\u308b',
      title: '\u30bb\u30ad\u30e5\u30ea\u30c6\u30a3\u30c1\u30a7\u30c3\u30af', offline: '\u30aa\u30d5\u30e9\u30a4\u30f3\u30e2\u30fc\u30c9\uff08\u30d0\u30c3\u30af\u30a2\u30c3\u30d7\uff09'},
    'ko': {note: '\ud14c\uc2a4\ud2b8 \ubaa8\ub4dc \u2014 \uc2e4\uc81c CAPTCHA\uac00 \uc544\ub2d9\ub2c8\ub2e4', verify: '\ud074\ub9ad\ud558\uc5ec \uc778\uc99d',
      verifying: '\uc778\uc99d \uc911\u2026', verified: '\uc778\uc99d \uc644\ub8cc', failed: '\uc778\uc99d \uc2e4\ud328',
      retry: '\ub2e4\uc2dc \uc2dc\ub3c4', close: '\ub2eb\uae30', title: '\ubcf4\uc548 \ud655\uc778', offline: '\uc624\ud504\ub77c\uc778 \ubaa8\ub4dc(\ubc31\uc5c5 \uc11c\ube44\uc2a4)'},
    'es': {note: 'Modo de prueba: no es un CAPTCHA real', verify: 'Haz clic para verificar', verifying: 'Verificando\u2026',
      verified: 'Verificado', failed: 'La verificaci\u00f3n fall\u00f3', retry: 'Reintentar', close: 'Cerrar',
      title: 'Comprobaci\u00f3n de seguridad', offline: 'Modo sin conexi\u00f3n (servicio de respaldo)'},
    'fr': {note: 'Mode test : ce n\u2019est pas un vrai CAPTCHA', verify: 'Cliquez pour v\u00e9rifier', verifying: 'V\u00e9rification\u2026',
      verified: 'V\u00e9rifi\u00e9', failed: '\u00c9chec de la v\u00e9rification', retry: 'R\u00e9essayer', close: 'Fermer',
      title: 'V\u00e9rification de s\u00e9curit\u00e9', offline: 'Mode hors ligne (service de secours)'},
    'de': {note: 'Testmodus \u2013 kein echtes CAPTCHA', verify: 'Zum Best\u00e4tigen klicken', verifying: 'Wird gepr\u00fcft\u2026',
      verified: 'Best\u00e4tigt', failed: 'Pr\u00fcfung fehlgeschlagen', retry: 'Erneut versuchen', close: 'Schlie\u00dfen',
      title: 'Sicherheitspr\u00fcfung', offline: 'Offline-Modus (Ersatzdienst)'},
    'pt-BR': {note: 'Modo de teste \u2014 n\u00e3o \u00e9 um CAPTCHA real', verify: 'Clique para verificar', verifying: 'Verificando\u2026',
      verified: 'Verificado', failed: 'Falha na verifica\u00e7\u00e3o', retry: 'Tentar novamente', close: 'Fechar',
      title: 'Verifica\u00e7\u00e3o de seguran\u00e7a', offline: 'Modo offline (servi\u00e7o reserva)'},
    'ru': {note: '\u0422\u0435\u0441\u0442\u043e\u0432\u044b\u0439 \u0440\u0435\u0436\u0438\u043c \u2014 \u044d\u0442\u043e \u043d\u0435 \u043d\u0430\u0441\u0442\u043e\u044f\u0449\u0430\u044f CAPTCHA',
      verify: '\u041d\u0430\u0436\u043c\u0438\u0442\u0435 \u0434\u043b\u044f \u043f\u0440\u043e\u0432\u0435\u0440\u043a\u0438', verifying: '\u041f\u0440\u043e\u0432\u0435\u0440\u043a\u0430\u2026',
      verified: '\u041f\u0440\u043e\u0432\u0435\u0440\u0435\u043d\u043e', failed: '\u041f\u0440\u043e\u0432\u0435\u0440\u043a\u0430 \u043d\u0435 \u043f\u0440\u043e\u0439\u0434\u0435\u043d\u0430',
      retry: '\u041f\u043e\u0432\u0442\u043e\u0440\u0438\u0442\u044c', close: '\u0417\u0430\u043a\u0440\u044b\u0442\u044c',
      title: '\u041f\u0440\u043e\u0432\u0435\u0440\u043a\u0430 \u0431\u0435\u0437\u043e\u043f\u0430\u0441\u043d\u043e\u0441\u0442\u0438', offline: '\u0410\u0432\u0442\u043e\u043d\u043e\u043c\u043d\u044b\u0439 \u0440\u0435\u0436\u0438\u043c (\u0440\u0435\u0437\u0435\u0440\u0432)'},
    'vi': {note: 'Ch\u1ebf \u0111\u1ed9 th\u1eed nghi\u1ec7m \u2014 kh\u00f4ng ph\u1ea3i CAPTCHA th\u1eadt', verify: 'Nh\u1ea5p \u0111\u1ec3 x\u00e1c minh',
      verifying: '\u0110ang x\u00e1c minh\u2026', verified: '\u0110\u00e3 x\u00e1c minh', failed: 'X\u00e1c minh th\u1ea5t b\u1ea1i',
      retry: 'Th\u1eed l\u1ea1i', close: '\u0110\u00f3ng', title: 'Ki\u1ec3m tra b\u1ea3o m\u1eadt', offline: 'Ch\u1ebf \u0111\u1ed9 ngo\u1ea1i tuy\u1ebfn (d\u1ef1 ph\u00f2ng)'}
  };
  var BRAND = 'CaptchaLa Emulator';

  // --- helpers ------------------------------------------------------------------------------

  function scriptFolder() {
    var script = document.currentScript;
    var src = script && script.src;
    if (!src) {
      var found = document.querySelector('script[src*="captchala.js"]');
      src = found ? found.src : window.location.href;
    }
    return folderOf(src);
  }

  function folderOf(url) {
    return String(url).replace(/[?#].*$/, '').replace(/[^\/]*$/, '');
  }

  function matchLang(tag) {
    if (typeof tag !== 'string' || !tag) {
      return null;
    }
    var wanted = tag.replace(/_/g, '-').toLowerCase();
    for (var key in I18N) {
      if (key.toLowerCase() === wanted) {
        return key;
      }
    }
    if (/^zh-(tw|hk|mo|hant)/.test(wanted)) {
      return 'zh-TW';
    }
    var primary = wanted.split('-')[0];
    if (primary === 'zh') {
      return 'zh-CN';
    }
    if (primary === 'pt') {
      return 'pt-BR';
    }
    return I18N[primary] ? primary : null;
  }

  /** `auto` (or nothing) follows the browser's languages; anything unknown falls back to English. */
  function resolveLang(tag) {
    if (!tag || tag === 'auto') {
      var nav = window.navigator || {};
      var list = nav.languages && nav.languages.length ? nav.languages : [nav.language];
      for (var i = 0; i < list.length; i++) {
        var hit = matchLang(list[i]);
        if (hit) {
          return hit;
        }
      }
      return 'en';
    }
    return matchLang(tag) || 'en';
  }

  function text(lang, key) {
    return (I18N[lang] && I18N[lang][key]) || I18N.en[key];
  }

  function ensureCss() {
    var href = BASE + 'captchala.css';
    var links = document.querySelectorAll('link[href*="captchala.css"]');
    for (var i = 0; i < links.length; i++) {
      if (links[i].href === href) {
        return; // ours is there (a wrapper's link to the real CDN does not count)
      }
    }
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.crossOrigin = 'anonymous';
    (document.head || document.documentElement).appendChild(link);
  }

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    for (var name in attrs || {}) {
      node.setAttribute(name, attrs[name]);
    }
    return node;
  }

  function resolveTarget(target) {
    if (!target) {
      return null;
    }
    if (typeof target === 'string') {
      try {
        return document.querySelector(target);
      } catch (e) {
        return null;
      }
    }
    return target.nodeType === 1 ? target : null;
  }

  /** The status line of a failure: "Verification failed: <message> (<code>)", or only
   * "Verification failed (<code>)" when the message already says that verification failed. */
  function failedText(label, failure) {
    if (!failure) {
      return label;
    }
    if (failure instanceof Failure && /verification/i.test(failure.message)) {
      return label + ' (' + failure.code + ')';
    }
    return label + ': ' + String(failure);
  }

  /** A failure the page sees through onError: "<message> (<code>)". */
  function Failure(code, message) {
    this.code = code;
    this.message = message || code.replace(/_/g, ' ');
  }
  Failure.prototype.toString = function () {
    return this.message + ' (' + this.code + ')';
  };

  /** The main service could not be reached (network error, timeout, HTTP >= 500). */
  function Unavailable(reason) {
    this.unavailable = true;
    this.reason = reason;
  }

  function callApi(base, path, body) {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var request = {
      method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
      signal: controller ? controller.signal : undefined
    };
    return fetch(base + path, request).then(function (response) {
      if (response.status >= 500) {
        throw new Unavailable('HTTP ' + response.status);
      }
      return response.text().then(function (raw) {
        var answer;
        try {
          answer = JSON.parse(raw);
        } catch (e) {
          throw new Failure('request_failed', 'unreadable answer from ' + path);
        }
        if (!answer || typeof answer !== 'object') {
          throw new Failure('request_failed', 'unreadable answer from ' + path);
        }
        var data = answer.data && typeof answer.data === 'object' ? answer.data : {};
        if (answer.code === 0) {
          return data;
        }
        var code = data.error || answer.error || 'unknown_error';
        throw new Failure(String(code), answer.msg || answer.message);
      });
    }).then(function (data) {
      clearTimeout(timer);
      return data;
    }, function (error) {
      clearTimeout(timer);
      if (error instanceof Failure || error instanceof Unavailable) {
        throw error;
      }
      throw new Unavailable(error && error.name === 'AbortError' ? 'timed out' : 'network error');
    });
  }

  // --- the instance -------------------------------------------------------------------------

  function Instance(options) {
    options = options || {};
    this.options = options;
    this.product = options.product || 'popup';
    this.serverToken = options.serverToken || null;
    this.lang = resolveLang(options.lang);
    this.apiBase = options.apiBase ? String(options.apiBase).replace(/\/?$/, '/') : BASE;
    this._callbacks = {};
    this._state = 'idle';   // idle | loading | ready | verifying | verified | failed | destroyed
    this._generation = 0;   // bumped by reset/destroy: late answers of older generations are ignored
    this._challenge = null; // the preloaded, not yet used challenge
    this._pending = null;   // the init in flight
    this._timers = [];
    this._readyFired = false;
    this._mounted = false;
    this._nodes = [];
    this._widget = null;
    this._trigger = null;
    this._overlay = null;
    this._bound = null;
    var names = ['Ready', 'Success', 'Error', 'Close'];
    for (var i = 0; i < names.length; i++) {
      if (typeof options['on' + names[i]] === 'function') {
        this._callbacks[names[i].toLowerCase()] = options['on' + names[i]];
      }
    }
    ensureCss();
    var self = this;
    if (options.bindTo) {
      self.bindTo(options.bindTo);
    } else if (options.container) {
      self.appendTo(options.container);
    }
  }

  var P = Instance.prototype;

  // Registering a callback replaces the previous one: one event, one call.
  P.onReady = function (cb) { this._callbacks.ready = cb; return this; };
  P.onSuccess = function (cb) { this._callbacks.success = cb; return this; };
  P.onError = function (cb) { this._callbacks.error = cb; return this; };
  P.onClose = function (cb) { this._callbacks.close = cb; return this; };

  P._emit = function (name, value) {
    var cb = this._callbacks[name];
    if (this._state === 'destroyed' || typeof cb !== 'function') {
      if (name === 'error' && this._state !== 'destroyed' && window.console) {
        window.console.error('[captchala-emulator] ' + value);
      }
      return;
    }
    try {
      cb(value);
    } catch (e) {
      setTimeout(function () { throw e; }, 0); // a throwing page callback must not break the widget
    }
  };

  P._later = function (ms, fn) {
    var self = this;
    var handle = setTimeout(function () {
      self._timers = self._timers.filter(function (t) { return t !== handle; });
      fn();
    }, ms);
    this._timers.push(handle);
  };

  P._clearTimers = function () {
    for (var i = 0; i < this._timers.length; i++) {
      clearTimeout(this._timers[i]);
    }
    this._timers = [];
  };

  // --- mounting -----------------------------------------------------------------------------

  P.appendTo = function (target) {
    if (this._state === 'destroyed') {
      return this;
    }
    var host = resolveTarget(target);
    if (!host) {
      return this._missingTarget('appendTo', target);
    }
    if (this.product === 'embed' || this.product === 'float') {
      this._widget = this._buildWidget('cle-inline');
      host.appendChild(this._widget);
      this._nodes.push(this._widget);
    } else {
      this._trigger = this._buildTrigger();
      host.appendChild(this._trigger);
      this._nodes.push(this._trigger);
      this._ensureDialog();
    }
    this._mount();
    return this;
  };

  P.bindTo = function (target) {
    if (this._state === 'destroyed') {
      return this;
    }
    var button = resolveTarget(target);
    if (!button) {
      return this._missingTarget('bindTo', target);
    }
    this._unbind();
    var self = this;
    var handler = function (event) {
      if (self._state === 'verified') {
        return; // solved: let the page's own click (submit) through
      }
      event.preventDefault();
      event.stopImmediatePropagation();
      self.showCaptcha();
    };
    button.addEventListener('click', handler, true);
    button.setAttribute('data-captchala-emulator-bound', '');
    this._bound = {element: button, handler: handler};
    this._ensureDialog();
    this._mount();
    return this;
  };

  P._missingTarget = function (method, target) {
    var self = this;
    Promise.resolve().then(function () {
      self._emit('error', new Failure('invalid_container', method + '(): no element matches ' + String(target)).toString());
    });
    return this;
  };

  P._mount = function () {
    if (!this._mounted) {
      this._mounted = true;
      this._preload();
    }
    this._render();
  };

  P._unbind = function () {
    if (this._bound) {
      this._bound.element.removeEventListener('click', this._bound.handler, true);
      this._bound.element.removeAttribute('data-captchala-emulator-bound');
      this._bound = null;
    }
  };

  P._themeClasses = function () {
    var theme = this.options.theme;
    var classes = '';
    if (theme === 'dark' || (theme && theme.custom && theme.custom.brightness === 'dark')) {
      classes += ' cle--dark';
    }
    if (theme === 'stereoscopic') {
      classes += ' cle--stereoscopic';
    }
    return classes;
  };

  P._applyTheme = function (node) {
    var custom = this.options.theme && this.options.theme.custom;
    if (!custom) {
      return;
    }
    if (custom.color) {
      node.style.setProperty('--cle-accent', custom.color);
    }
    if (custom.radius !== undefined) {
      node.style.setProperty('--cle-radius', typeof custom.radius === 'number' ? custom.radius + 'px' : custom.radius);
    }
  };

  P._buildWidget = function (placement) {
    var widget = el('div', 'cle cle--' + this.product + ' ' + placement + this._themeClasses(), {
      'data-testid': 'captchala-emulator-widget', 'data-captchala-emulator': VERSION,
      'data-product': this.product, 'role': 'group'
    });
    this._applyTheme(widget);
    var header = el('div', 'cle-header');
    var brand = el('div', 'cle-brand');
    brand.textContent = 'CaptchaLa ';
    var badge = el('span', 'cle-badge');
    badge.textContent = 'Emulator';
    brand.appendChild(badge);
    var note = el('span', 'cle-note');
    header.appendChild(brand);
    header.appendChild(note);
    var solve = el('button', 'cle-solve', {type: 'button', 'data-testid': 'captchala-emulator-solve'});
    solve.appendChild(el('span', 'cle-box', {'aria-hidden': 'true'}));
    solve.appendChild(el('span', 'cle-solve-label'));
    var status = el('div', 'cle-status', {role: 'status', 'aria-live': 'polite'});
    var self = this;
    solve.addEventListener('click', function () { self._solveClicked(); });
    widget.appendChild(header);
    widget.appendChild(solve);
    widget.appendChild(status);
    widget._cle = {note: note, solve: solve, label: solve.lastChild, status: status};
    return widget;
  };

  P._buildTrigger = function () {
    var trigger = el('button', 'cle-trigger' + this._themeClasses(),
      {type: 'button', 'aria-haspopup': 'dialog', 'data-testid': 'captchala-emulator-trigger'});
    this._applyTheme(trigger);
    trigger.appendChild(el('span', 'cle-box', {'aria-hidden': 'true'}));
    trigger.appendChild(el('span', 'cle-trigger-label'));
    var badge = el('span', 'cle-badge');
    badge.textContent = BRAND;
    trigger.appendChild(badge);
    var self = this;
    trigger.addEventListener('click', function () { self.showCaptcha(); });
    return trigger;
  };

  P._ensureDialog = function () {
    if (this._overlay) {
      return;
    }
    var self = this;
    var overlay = el('div', 'cle-overlay');
    overlay.hidden = true;
    var widget = this._buildWidget('cle-dialog');
    widget.setAttribute('role', 'dialog');
    widget.setAttribute('aria-modal', 'true');
    var title = el('div', 'cle-title', {id: 'cle-title-' + (++dialogCount)});
    widget.setAttribute('aria-labelledby', title.id);
    var close = el('button', 'cle-close', {type: 'button', 'data-testid': 'captchala-emulator-close'});
    close.textContent = '\u00d7';
    close.addEventListener('click', function () { self._dismiss(); });
    widget.insertBefore(title, widget.firstChild);
    widget.insertBefore(close, widget.firstChild);
    widget._cle.title = title;
    widget._cle.close = close;
    overlay.appendChild(widget);
    overlay.addEventListener('click', function (event) {
      if (event.target === overlay) {
        self._dismiss();
      }
    });
    overlay.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') {
        self._dismiss();
      }
    });
    document.body.appendChild(overlay);
    this._nodes.push(overlay);
    this._overlay = overlay;
    this._widget = widget;
  };

  P._openDialog = function () {
    if (!this._overlay) {
      return;
    }
    this._returnFocus = document.activeElement;
    this._overlay.hidden = false;
    this._widget._cle.solve.focus();
  };

  P._closeDialog = function () {
    if (!this._overlay || this._overlay.hidden) {
      return false;
    }
    this._overlay.hidden = true;
    if (this._returnFocus && typeof this._returnFocus.focus === 'function') {
      this._returnFocus.focus();
    }
    return true;
  };

  P._dismiss = function () {
    if (this._closeDialog()) {
      this._emit('close');
    }
  };

  // --- rendering ----------------------------------------------------------------------------

  P._setState = function (state, detail) {
    this._state = state;
    this._detail = detail || '';
    this._render();
  };

  P._render = function () {
    var lang = this.lang;
    var state = this._state;
    var label = state === 'verifying' ? 'verifying' : state === 'verified' ? 'verified'
      : state === 'failed' ? 'retry' : 'verify';
    if (this._widget) {
      var parts = this._widget._cle;
      this._widget.setAttribute('lang', lang);
      this._widget.setAttribute('data-state', state);
      this._widget.setAttribute('aria-label', BRAND + ' \u2014 ' + text(lang, 'note'));
      parts.note.textContent = text(lang, 'note');
      parts.label.textContent = text(lang, label);
      parts.solve.disabled = state === 'verifying' || state === 'verified';
      parts.solve.setAttribute('aria-busy', state === 'verifying' ? 'true' : 'false');
      var status = state === 'failed' ? failedText(text(lang, 'failed'), this._detail)
        : this._offline ? text(lang, 'offline') : '';
      parts.status.textContent = status;
      if (parts.title) {
        parts.title.textContent = text(lang, 'title');
        parts.close.setAttribute('aria-label', text(lang, 'close'));
        parts.close.title = text(lang, 'close');
      }
    }
    if (this._trigger) {
      this._trigger.setAttribute('lang', lang);
      this._trigger.setAttribute('data-state', state);
      this._trigger.querySelector('.cle-trigger-label').textContent = text(lang, label === 'retry' ? 'verify' : label);
      this._trigger.disabled = state === 'verified';
    }
  };

  // --- the challenge ------------------------------------------------------------------------

  P._preload = function () {
    var self = this;
    var generation = this._generation;
    this._setState('loading');
    this._ensureChallenge().then(function (challenge) {
      if (generation !== self._generation) {
        return;
      }
      if (self._state === 'loading') {
        self._setState('ready');
      }
      if (!self._readyFired) {
        self._readyFired = true;
        self._emit('ready');
      }
      if (challenge.mode === 'auto') {
        self._startSolve();
      }
    }, function (error) {
      if (generation === self._generation && self._state === 'loading') {
        self._fail(error);
      }
    });
  };

  P._ensureChallenge = function () {
    if (this._challenge) {
      return Promise.resolve(this._challenge);
    }
    if (!this._pending) {
      var self = this;
      var generation = this._generation;
      this._pending = this._init(this.serverToken, false).then(function (challenge) {
        if (generation === self._generation) {
          self._pending = null;
          self._challenge = challenge;
        }
        return challenge;
      }, function (error) {
        if (generation === self._generation) {
          self._pending = null;
        }
        throw error;
      });
    }
    return this._pending;
  };

  P._init = function (serverToken, askedForFresh) {
    var self = this;
    var body = {
      app_key: this.options.appKey, action: this.options.action || 'default', product: this.product,
      lang: this.lang, referer: window.location.href
    };
    if (serverToken) {
      body.server_token = serverToken;
    }
    return callApi(this.apiBase, 'v1/challenge/init', body).then(function (data) {
      self._offline = false;
      return {id: data.challenge_id, mode: data.mode, delay: data.delay_ms || 0, action: data.action};
    }, function (error) {
      if (error instanceof Unavailable) {
        return self._bypass();
      }
      var ask = self.options.onServerTokenExpired;
      if (error.code === 'server_token_expired' && !askedForFresh && typeof ask === 'function') {
        return Promise.resolve().then(function () { return ask(); }).then(function (fresh) {
          if (typeof fresh !== 'string' || !fresh) {
            throw error;
          }
          self.serverToken = fresh;
          return self._init(fresh, true);
        }, function () {
          throw error;
        });
      }
      throw error;
    });
  };

  /** The main service is down: the bypass worker hands out an offline_ token right away. */
  P._bypass = function () {
    var self = this;
    var body = {app_key: this.options.appKey, action: this.options.action || 'default', referer: window.location.href};
    if (this.serverToken) {
      body.server_token = this.serverToken;
    }
    return callApi(this.apiBase, 'v1/challenge/offline', body).then(function (data) {
      self._offline = true;
      return {id: data.challenge_id, mode: data.mode, delay: data.delay_ms || 0, action: data.action,
        result: {token: data.pass_token, type: data.type, action: data.action, challengeId: data.challenge_id}};
    }, function (error) {
      if (error instanceof Unavailable) {
        throw new Failure('request_failed', 'service temporarily unavailable');
      }
      throw error;
    });
  };

  P._solveClicked = function () {
    this._startSolve();
  };

  P._startSolve = function () {
    if (this._state === 'verifying' || this._state === 'verified' || this._state === 'destroyed') {
      return; // a double click, or an auto-solve racing a click: one token only
    }
    var self = this;
    var generation = this._generation;
    this._setState('verifying');
    this._ensureChallenge().then(function (challenge) {
      if (generation !== self._generation || challenge.mode === 'never') {
        return; // "never": the widget keeps spinning, as a stuck challenge would
      }
      self._later(challenge.delay, function () {
        self._challenge = null; // a challenge is used once, whatever the answer
        self._solve(challenge).then(function (result) {
          if (generation === self._generation) {
            self._succeed(result);
          }
        }, function (error) {
          if (generation === self._generation) {
            self._fail(error);
          }
        });
      });
    }, function (error) {
      if (generation === self._generation && self._state === 'verifying') {
        self._fail(error);
      }
    });
  };

  P._solve = function (challenge) {
    if (challenge.result) {
      return Promise.resolve(challenge.result);
    }
    var self = this;
    var body = {challenge_id: challenge.id, answer: {clicked: true}, referer: window.location.href};
    return callApi(this.apiBase, 'v1/challenge/solve', body).then(function (data) {
      return {token: data.pass_token, type: data.type, action: data.action, challengeId: data.challenge_id};
    }, function (error) {
      if (error instanceof Unavailable) {
        return self._bypass().then(function (offline) { return offline.result; });
      }
      throw error;
    });
  };

  P._succeed = function (result) {
    this._setState('verified');
    this._closeDialog();
    this._emit('success', result);
  };

  P._fail = function (error) {
    var failure = error instanceof Failure ? error : new Failure('unknown_error', String(error));
    this._challenge = null;
    this._setState('failed', failure);
    this._emit('error', failure.toString());
  };

  // --- the public methods -------------------------------------------------------------------

  P.showCaptcha = function () {
    if (this._state === 'destroyed') {
      return this;
    }
    if (!this._widget) {
      this._ensureDialog(); // never mounted: open as a popup
    }
    if (!this._mounted) {
      this._mounted = true;
      this._preload();
    }
    if (this._overlay) {
      this._openDialog();
    } else if (this._widget) {
      this._widget.scrollIntoView({block: 'nearest'});
      this._widget._cle.solve.focus();
    }
    return this;
  };

  P.verify = function () {
    return this.showCaptcha();
  };

  P.reset = function () {
    if (this._state === 'destroyed') {
      return this;
    }
    this._generation++;
    this._clearTimers();
    this._challenge = null;
    this._pending = null;
    this._offline = false;
    this._closeDialog();
    this._setState('idle');
    if (this._mounted) {
      this._preload();
    }
    return this;
  };

  P.setLang = function (lang) {
    if (this._state !== 'destroyed') {
      this.lang = resolveLang(lang);
      this._render();
    }
    return this;
  };

  P.destroy = function () {
    if (this._state === 'destroyed') {
      return;
    }
    this._generation++;
    this._clearTimers();
    this._unbind();
    this._state = 'destroyed';
    for (var i = 0; i < this._nodes.length; i++) {
      if (this._nodes[i].parentNode) {
        this._nodes[i].parentNode.removeChild(this._nodes[i]);
      }
    }
    this._nodes = [];
    this._widget = this._trigger = this._overlay = null;
    this._challenge = this._pending = null;
    this._callbacks = {};
  };

  window.Captchala = {
    init: function (options) {
      return new Instance(options);
    },
    version: VERSION,
    emulator: true,
    apiBase: BASE,
    products: PRODUCTS.slice(),
    languages: Object.keys(I18N)
  };
})(window, document);
