// The emulator dashboard: polls the control plane, switches profiles, explains tokens.
// Plain JS, no build step. Every value from the server is inserted with textContent.
(function () {
  "use strict";
  const { api, el, clockTime } = window.captchalaDashboard;
  const $ = (id) => document.getElementById(id);
  const seen = new Set();
  const MAX_ROWS = 500;
  let newest = 0;

  // --- request log ----------------------------------------------------------------
  function outcomeClass(entry) {
    if (entry.outcome === "valid" || entry.outcome === "ok" || entry.outcome === "minted") return "ok";
    if (entry.outcome === "degraded") return "warn";
    return "bad";
  }

  function addRow(entry) {
    if (seen.has(entry.id)) return;
    seen.add(entry.id);
    const row = el("tr");
    row.dataset.id = entry.id;
    row.setAttribute("data-testid", "request-row");
    row.append(el("td", entry.id), el("td", clockTime(entry.virtual_ts)), el("td", entry.endpoint),
      el("td", entry.app_key || ""), el("td", entry.caller_ip || ""),
      el("td", entry.outcome + (entry.code ? " " + entry.code : ""), "outcome " + outcomeClass(entry)),
      el("td", entry.reason || ""), el("td", entry.fault || ""));
    const body = $("requests-body");
    const before = Array.from(body.rows).find((r) => Number(r.dataset.id) < entry.id);
    body.insertBefore(row, before || null);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function clearLog() {
    seen.clear();
    newest = 0;
    $("requests-body").replaceChildren();
  }

  async function pollRequests() {
    try {
      // ids are reserved before a request runs, so a slow request may land late: look back a little
      const after = Math.max(0, newest - 100);
      const answer = await api("GET", "/requests?limit=200" + (after ? "&after=" + after : ""));
      if (answer.latest_id < newest) clearLog(); // the journal was reset: ids restart at 1
      answer.requests.forEach(addRow);
      answer.requests.forEach((e) => { newest = Math.max(newest, e.id); });
      $("log-status").textContent = "live";
    } catch (err) {
      $("log-status").textContent = "cannot read the journal: " + err.message;
    } finally {
      setTimeout(pollRequests, 1000);
    }
  }

  // --- profile and clock --------------------------------------------------------------
  function profileName(answer) {
    if (!answer) return null;
    if (typeof answer.name === "string") return answer.name;
    if (answer.profile && typeof answer.profile.name === "string") return answer.profile.name;
    return null;
  }

  async function refreshProfile() {
    try {
      const answer = await api("GET", "/profile");
      const name = profileName(answer);
      $("active-profile").textContent = name ? name + (answer.active === false ? " (expired)" : "") : "none";
      $("profile-select").value = Array.from($("profile-select").options).some((o) => o.value === name) ? name : "";
    } catch (err) {
      $("active-profile").textContent = "unknown (" + err.message + ")";
    }
  }

  async function applyProfile() {
    const name = $("profile-select").value;
    $("profile-status").textContent = "…";
    try {
      if (name) await api("PUT", "/profile", { name });
      else await api("DELETE", "/profile");
      $("profile-status").textContent = name ? "activated " + name : "faults off";
    } catch (err) {
      $("profile-status").textContent = "refused: " + err.message;
    }
    await refreshProfile();
  }

  function showClock(answer) {
    $("clock-now").textContent = answer.now_iso;
    $("clock-offset").textContent = String(Math.round(answer.offset * 1000) / 1000);
  }

  async function refreshClock() {
    try { showClock(await api("GET", "/clock")); } catch (err) { $("clock-now").textContent = err.message; }
  }

  // --- explain ----------------------------------------------------------------------
  function definitionList(pairs) {
    const dl = el("dl");
    pairs.forEach(([key, value]) => {
      if (value === undefined || value === null || value === "") return;
      dl.append(el("dt", key), el("dd", typeof value === "object" ? JSON.stringify(value) : value));
    });
    return dl;
  }

  function verdictText(verdict) {
    if (!verdict) return null;
    if (verdict.valid) return "valid — " + verdict.reason;
    if (verdict.degraded) return "degraded — " + verdict.reason;
    return verdict.error + " — " + verdict.reason;
  }

  function renderExplanation(x) {
    const box = $("explanation");
    box.replaceChildren();
    const head = el("p");
    head.append(el("span", x.state, "state state-" + x.state), document.createTextNode(" " + x.reason));
    head.setAttribute("data-testid", "explanation-state");
    box.append(head);
    if (window.captchalaTimeline) box.append(window.captchalaTimeline(x.timeline)); // diagnosis.js
    box.append(definitionList([
      ["kind", x.kind], ["signature", x.signature_valid ? "valid" : "invalid"],
      ["app", x.app_key], ["issued", x.issued_at], ["expires", x.expires_at],
      ["/v1/validate would answer", verdictText(x.validate)],
      ["/api/validate would answer", verdictText(x.backup_validate)],
      ["server token", x.server_token],
    ]));
    if (x.claims) {
      box.append(el("h3", x.claims_verified ? "Claims" : "Claims (unverified: do not trust)"));
      box.append(definitionList(Object.entries(x.claims)));
    }
    box.append(el("h3", "History"));
    const list = el("ol");
    list.setAttribute("data-testid", "explanation-history");
    if (!x.history.length) list.append(el("li", "no request with this token in the journal"));
    x.history.forEach((h) => list.append(el("li", h.text)));
    box.append(list);
  }

  async function explain(event) {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    try {
      renderExplanation(await api("GET", "/tokens/" + encodeURIComponent(token)));
    } catch (err) {
      $("explanation").replaceChildren(el("p", "cannot explain: " + err.message, "bad"));
    }
  }

  // --- wiring ------------------------------------------------------------------------
  $("profile-apply").addEventListener("click", applyProfile);
  $("explain-form").addEventListener("submit", explain);
  document.querySelectorAll("[data-advance]").forEach((button) => {
    button.addEventListener("click", async () => showClock(await api("POST", "/clock/advance", { seconds: Number(button.dataset.advance) })));
  });
  $("clock-zero").addEventListener("click", async () => showClock(await api("PUT", "/clock", { offset: 0 })));
  $("reset").addEventListener("click", async () => { await api("POST", "/reset"); clearLog(); refreshClock(); });
  refreshProfile();
  refreshClock();
  setInterval(refreshClock, 5000);
  pollRequests();
})();
