// What the dashboard's scripts share, loaded before them: the control-plane request (with the
// admin token when the page has one), a text-only element builder and the clock format.
// Plain JS, no build step; the other scripts read window.captchalaDashboard.
(function () {
  "use strict";
  const base = document.body.dataset.base;
  const adminToken = document.body.dataset.adminToken;

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (adminToken) headers.Authorization = "Bearer " + adminToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.message || answer.error || "HTTP " + response.status);
    return answer;
  }

  // Every server value goes in through textContent, never as HTML.
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clockTime(ts) {
    return typeof ts === "number" ? new Date(ts * 1000).toISOString().slice(11, 19) : "";
  }

  window.captchalaDashboard = Object.freeze({ api, el, clockTime });
})();
