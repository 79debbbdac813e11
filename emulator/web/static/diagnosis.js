// Dashboard panels for "captcha incomplete or invalid": the diagnosis findings, outcomes over
// time and latency per endpoint (inline SVG, no library), and the token timeline the
// explanation draws (window.captchalaTimeline). Every server value goes in through textContent.
(function () {
  "use strict";
  const { api, el, clockTime } = window.captchalaDashboard;
  const get = (path) => api("GET", path);
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const BUCKETS = 24;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, String(v)));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // --- diagnosis -----------------------------------------------------------------------
  function renderFindings(findings) {
    const list = $("diagnosis-list");
    const open = new Set(Array.from(list.querySelectorAll("details[open]")).map((d) => d.dataset.findingId));
    list.dataset.refreshes = String(Number(list.dataset.refreshes || 0) + 1); // tests wait on it
    list.replaceChildren();
    $("diagnosis-count").textContent = findings.length ? findings.length + " finding(s)" : "";
    if (!findings.length) {
      list.append(el("p", "No findings: nothing looks like \u201ccaptcha incomplete or invalid\u201d.", "quiet"));
      return;
    }
    findings.forEach((f) => {
      const box = el("details", undefined, "finding");
      box.dataset.findingId = f.id;
      box.open = open.has(f.id); // a finding the reader opened stays open across refreshes
      box.setAttribute("data-testid", "finding");
      const summary = el("summary");
      summary.append(el("code", f.id), el("span", " \u00d7" + f.count, "count"), el("span", " " + f.title));
      box.append(summary);
      const dl = el("dl");
      [["cause", f.cause], ["inspect", f.inspect], ["fix", f.fix]].forEach(([k, v]) => dl.append(el("dt", k), el("dd", v)));
      box.append(dl);
      const examples = el("ul");
      f.examples.forEach((e) => examples.append(el("li", "#" + e.journal_id + " " + (e.at || "").slice(11, 19) + " " + e.note)));
      box.append(examples);
      list.append(box);
    });
  }

  async function refreshDiagnosis() {
    try {
      renderFindings((await get("/diagnosis")).findings);
      $("diagnosis-status").textContent = "live";
    } catch (err) {
      $("diagnosis-status").textContent = "cannot diagnose: " + err.message;
    }
  }

  // --- charts --------------------------------------------------------------------------
  function outcomeClass(entry) {
    if (entry.outcome === "valid" || entry.outcome === "ok" || entry.outcome === "minted") return "ok";
    if (entry.outcome === "degraded") return "warn";
    return "bad";
  }

  function outcomesChart(entries) {
    const width = 560, height = 150, top = 10, bottom = 24;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "outcomes over time" });
    if (!entries.length) { chart.append(svg("text", { x: 10, y: 40 }, "no requests yet")); return chart; }
    const t0 = entries[0].virtual_ts, t1 = entries[entries.length - 1].virtual_ts;
    const span = Math.max(t1 - t0, 1e-3);
    const buckets = Array.from({ length: BUCKETS }, () => ({ ok: 0, warn: 0, bad: 0 }));
    entries.forEach((e) => {
      const i = Math.min(BUCKETS - 1, Math.floor(((e.virtual_ts - t0) / span) * BUCKETS));
      buckets[i][outcomeClass(e)] += 1;
    });
    const most = Math.max(...buckets.map((b) => b.ok + b.warn + b.bad), 1);
    const barW = width / BUCKETS, plotH = height - top - bottom;
    buckets.forEach((b, i) => {
      let y = height - bottom;
      ["ok", "warn", "bad"].forEach((kind) => {
        if (!b[kind]) return;
        const h = (b[kind] / most) * plotH;
        y -= h;
        const rect = svg("rect", { x: i * barW + 1, y, width: barW - 2, height: h, class: "bar " + kind });
        rect.append(svg("title", {}, `${b[kind]} ${kind}`));
        chart.append(rect);
      });
    });
    chart.append(svg("text", { x: 0, y: height - 6 }, clockTime(t0)));
    chart.append(svg("text", { x: width, y: height - 6, "text-anchor": "end" }, clockTime(t1)));
    chart.append(svg("text", { x: width / 2, y: height - 6, "text-anchor": "middle" }, `max ${most} per bar`));
    return chart;
  }

  function quantile(sorted, q) {
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  function latencyChart(entries) {
    const groups = {};
    entries.forEach((e) => { if (typeof e.duration_ms === "number") (groups[e.endpoint] = groups[e.endpoint] || []).push(e.duration_ms); });
    const names = Object.keys(groups).sort();
    const rowH = 22, left = 130, right = 240, width = 600, height = Math.max(names.length, 1) * rowH + 22;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "latency per endpoint" });
    if (!names.length) { chart.append(svg("text", { x: 10, y: 16 }, "no requests yet")); return chart; }
    const hi = Math.max(...names.map((n) => Math.max(...groups[n])), 1);
    const lo = 0.05, plotW = width - left - right;
    const x = (ms) => left + (Math.log10(Math.max(ms, lo) / lo) / Math.log10(Math.max(hi, lo * 10) / lo)) * plotW;
    names.forEach((name, i) => {
      const values = groups[name].slice().sort((a, b) => a - b);
      const p50 = quantile(values, 0.5), p90 = quantile(values, 0.9), p99 = quantile(values, 0.99);
      const y = i * rowH + 12;
      const row = svg("g", { class: "latency-row", "data-endpoint": name });
      row.append(svg("text", { x: 0, y: y + 4 }, name));
      row.append(svg("line", { x1: x(values[0]), x2: x(values[values.length - 1]), y1: y, y2: y, class: "whisker" }));
      row.append(svg("rect", { x: x(p50), y: y - 6, width: Math.max(x(p90) - x(p50), 2), height: 12, class: "box" }));
      row.append(svg("line", { x1: x(p99), x2: x(p99), y1: y - 7, y2: y + 7, class: "p99" }));
      row.append(svg("text", { x: width - right + 8, y: y + 4 },
        `p50 ${p50.toFixed(1)} · p90 ${p90.toFixed(1)} · p99 ${p99.toFixed(1)} ms · n ${values.length}`));
      chart.append(row);
    });
    chart.append(svg("text", { x: left, y: height - 4 }, `${lo} ms`));
    chart.append(svg("text", { x: width - right, y: height - 4, "text-anchor": "end" }, `${hi.toFixed(0)} ms (log scale)`));
    return chart;
  }

  async function refreshCharts() {
    try {
      const entries = (await get("/requests?limit=1000")).requests;
      $("outcomes-chart").replaceChildren(outcomesChart(entries));
      $("latency-chart").replaceChildren(latencyChart(entries));
    } catch (err) {
      $("outcomes-chart").replaceChildren(el("p", "cannot read the journal: " + err.message, "bad"));
    }
  }

  // --- token timeline (drawn inside the explanation by dashboard.js) ----------------------
  window.captchalaTimeline = function (stages) {
    const wrap = el("div", undefined, "timeline-wrap");
    wrap.append(el("h3", "Timeline"));
    const list = el("ol", undefined, "timeline");
    list.setAttribute("data-testid", "timeline");
    if (!stages || !stages.length) list.append(el("li", "no stage of this token in the journal"));
    (stages || []).forEach((s) => {
      const item = el("li", undefined, "stage" + (s.failing ? " failing" : "") + (s.slow ? " slow" : ""));
      item.setAttribute("data-testid", "timeline-stage");
      item.dataset.stage = s.stage;
      if (s.since_previous_s !== null && s.since_previous_s !== undefined) {
        item.append(el("span", "+" + s.since_previous_s + " s" + (s.slow ? " (slow)" : ""), "gap"));
      }
      item.append(el("strong", s.stage), el("span", " " + (s.at || "").slice(11, 19) + " ", "at"),
        el("span", s.outcome, "outcome " + (s.failing ? "bad" : "ok")), el("div", s.detail, "detail"));
      list.append(item);
    });
    wrap.append(list);
    return wrap;
  };

  function tick() {
    refreshDiagnosis();
    refreshCharts();
  }

  tick();
  setInterval(tick, 3000);
})();
