/*! captchala-emulator loader: a local stand-in for https://cdn.captcha-cdn.net/captchala-loader.js.
 * Defines window.loadCaptchala(onReady, onError). It loads captchala.js and captchala.css from the
 * origin (and folder) this loader itself came from, calls onReady(Captchala) at most once per call,
 * and onError(Error) when the SDK cannot be loaded or has not arrived after 10 s.
 * Test use only: tokens from this widget are accepted by the emulator, never by CaptchaLa. */
(function (window, document) {
  'use strict';

  // Included twice? The first copy stays in charge, so nothing loads or fires twice.
  if (typeof window.loadCaptchala === 'function' && window.loadCaptchala.emulator) {
    return;
  }

  var TIMEOUT_MS = 10000;
  var current = document.currentScript;
  var base = folderOf(current && current.src ? current.src : window.location.href);
  var loading = false;
  var waiters = [];

  function folderOf(url) {
    return String(url).replace(/[?#].*$/, '').replace(/[^\/]*$/, '');
  }

  function sdkReady() {
    return !!(window.Captchala && typeof window.Captchala.init === 'function');
  }

  function settle(error) {
    loading = false;
    var list = waiters;
    waiters = [];
    for (var i = 0; i < list.length; i++) {
      list[i](error);
    }
  }

  function ensureCss() {
    var href = base + 'captchala.css';
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

  function onScriptDone(script) {
    if (sdkReady()) {
      settle(null);
    } else {
      script.setAttribute('data-captchala-failed', '1');
      settle(new Error('captchala-emulator: could not load ' + (script.src || 'captchala.js')));
    }
  }

  function watch(script) {
    script.addEventListener('load', function () { onScriptDone(script); });
    script.addEventListener('error', function () { onScriptDone(script); });
  }

  function start() {
    if (loading) {
      return;
    }
    loading = true;
    ensureCss();
    // A page (or a React/Vue wrapper) may already have added captchala.js itself.
    var existing = document.querySelector('script[src*="captchala.js"]:not([data-captchala-failed])');
    if (existing) {
      watch(existing);
      return;
    }
    var script = document.createElement('script');
    script.src = base + 'captchala.js';
    script.async = true;
    script.crossOrigin = 'anonymous';
    script.setAttribute('data-captchala-emulator', 'sdk');
    watch(script);
    (document.head || document.documentElement).appendChild(script);
  }

  function loadCaptchala(onReady, onError) {
    var done = false;
    var timer = null;

    function finish(error) {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(timer);
      if (!error) {
        if (typeof onReady === 'function') {
          onReady(window.Captchala);
        }
      } else if (typeof onError === 'function') {
        onError(error);
      } else if (window.console) {
        window.console.error(error);
      }
    }

    if (sdkReady()) {
      Promise.resolve().then(function () { finish(null); });
      return;
    }
    timer = setTimeout(function () {
      finish(new Error('captchala-emulator: captchala.js did not load within ' + TIMEOUT_MS / 1000 + ' s'));
    }, TIMEOUT_MS);
    waiters.push(finish);
    start();
  }

  loadCaptchala.emulator = true;
  loadCaptchala.base = base;
  window.loadCaptchala = loadCaptchala;
})(window, document);
