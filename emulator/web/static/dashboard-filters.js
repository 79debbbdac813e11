// The dashboard's journal filters (endpoint, app, outcome, free text, hide control-plane mints)
// and the active profile's rules with how often each fired, plus a refused reload of its file.
// Plain JS, no build step; it only reads the rows dashboard.js renders, and the control plane.
(function () {
  "use strict";
  const { api } = window.captchalaDashboard;
  const $ = (id) => document.getElementById(id);
  const CELL = { endpoint: 2, app: 3, outcome: 5 };

  // --- journal filters ------------------------------------------------------------
  function wanted() {
    return {
      endpoint: $("filter-endpoint").value,
      app: $("filter-app").value,
      outcome: $("filter-outcome").value,
      text: $("filter-text").value.trim().toLowerCase(),
      hideMints: $("filter-hide-mints").checked,
    };
  }

  function cell(row, index) {
    return row.cells[index] ? row.cells[index].textContent.trim() : "";
  }

  function shows(row, f) {
    const endpoint = cell(row, CELL.endpoint);
    if (f.hideMints && endpoint === "mint") return false;
    if (f.endpoint && endpoint !== f.endpoint) return false;
    if (f.app && cell(row, CELL.app) !== f.app) return false;
    if (f.outcome && cell(row, CELL.outcome).split(" ")[0] !== f.outcome) return false;
    return !f.text || row.textContent.toLowerCase().includes(f.text);
  }

  function applyFilters() {
    const f = wanted();
    const rows = Array.from($("requests-body").rows);
    let shown = 0;
    rows.forEach((row) => {
      const on = shows(row, f);
      row.hidden = !on;
      if (on) shown += 1;
    });
    const filtering = f.endpoint || f.app || f.outcome || f.text || f.hideMints;
    $("filter-count").textContent = filtering ? "showing " + shown + " of " + rows.length : "";
  }

  // --- profile rules ------------------------------------------------------------------
  function td(text, className) {
    const node = document.createElement("td");
    node.textContent = text === undefined || text === null ? "" : String(text);
    if (className) node.className = className;
    return node;
  }

  function renderRules(profile) {
    const rules = profile && profile.name ? profile.rules || [] : [];
    const table = document.querySelector('[data-testid="profile-rules-table"]');
    table.hidden = !rules.length;
    $("profile-rules-none").hidden = Boolean(rules.length);
    $("profile-rules-body").replaceChildren(...rules.map((rule) => {
      const row = document.createElement("tr");
      row.dataset.rule = rule.name;
      row.append(td(rule.name), td((rule.endpoints || []).join(", ") || "any"), td(rule.effect),
        td(rule.matched, "matched"), td(rule.fired, "fired"));
      return row;
    }));
    const refused = profile && profile.reload_refused;
    $("profile-reload-refused").hidden = !refused;
    $("profile-reload-refused").textContent = refused
      ? "The edited profile file " + refused.file + " was refused; the profile above stays active.\n" + refused.problem
      : "";
  }

  async function pollProfile() {
    try {
      renderRules(await api("GET", "/profile"));
    } catch (err) {
      $("profile-rules-none").textContent = "cannot read the profile: " + err.message;
    } finally {
      setTimeout(pollProfile, 2000);
    }
  }

  // --- wiring ------------------------------------------------------------------------
  ["filter-endpoint", "filter-app", "filter-outcome", "filter-hide-mints"].forEach((id) => {
    $(id).addEventListener("change", applyFilters);
  });
  $("filter-text").addEventListener("input", applyFilters);
  new MutationObserver(applyFilters).observe($("requests-body"), { childList: true });
  pollProfile();
})();
