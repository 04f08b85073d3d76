/* GridGuard dashboard: live updates (EventSource, which reconnects with Last-Event-ID by
   itself) and the uPlot charts. Pages work without it; this only enhances them. */
(function () {
  "use strict";
  const LIVE_WINDOW_S = 600;
  const state = { live: null, device: null, points: 0, lags: [] };

  function labels(el) { return JSON.parse(el.dataset.labels || "{}"); }
  function width(el) { return Math.max(320, el.clientWidth - 2); }
  function num(v) { return v === "" || v === undefined ? null : Number(v); }
  function fmt(v) { return v === null || v === undefined ? "—" : v.toLocaleString(undefined, { maximumFractionDigits: 1 }); }
  function dash(stroke) { return { stroke: stroke, width: 2, dash: [8, 6] }; }

  function liveChart(el) {
    const L = labels(el);
    const data = [[], [], [], [], [], [], []];
    const u = new uPlot({
      width: width(el), height: 300, scales: { x: { time: true } },
      series: [{}, { label: L.grid, stroke: "#0b5cad", width: 2 },
        { label: L.a, stroke: "#b35900" }, { label: L.b, stroke: "#2e7d32" }, { label: L.c, stroke: "#7b1fa2" },
        Object.assign({ label: L.baseline }, dash("#a3151b")), Object.assign({ label: L.target }, dash("#4a5361"))],
      axes: [{}, { label: "kW" }],
    }, data, el);
    return { u: u, data: data, baseline: num(el.dataset.baseline), limit: num(el.dataset.limit) };
  }

  function deviceChart(el) {
    const L = labels(el);
    const data = [[], [], [], []];
    const u = new uPlot({
      width: width(el), height: 200, scales: { x: { time: true }, pct: { range: [0, 100] } },
      series: [{}, { label: L.storage, stroke: "#00796b", width: 2 }, { label: L.pv, stroke: "#c98a00", width: 2 },
        { label: L.soc, stroke: "#5d4037", scale: "pct" }],
      axes: [{}, { label: "kW" }, { side: 1, scale: "pct", label: "%", grid: { show: false } }],
    }, data, el);
    return { u: u, data: data };
  }

  function trim(data, now) {
    while (data[0].length && data[0][0] < now - LIVE_WINDOW_S) { data.forEach(function (s) { s.shift(); }); }
  }

  function addPoint(p) {
    const live = state.live, dev = state.device;
    if (!live) return;
    const d = live.data;
    if (d[0].length && p.t <= d[0][d[0].length - 1]) return;
    const target = p.target !== null ? p.target : live.limit;
    [p.t, p.grid, p.a, p.b, p.c, live.baseline, target].forEach(function (v, i) { d[i].push(v); });
    trim(d, p.t);
    live.u.setData(d);
    if (dev) {
      [p.t, p.storage, p.pv, p.soc].forEach(function (v, i) { dev.data[i].push(v); });
      trim(dev.data, p.t);
      dev.u.setData(dev.data);
    }
    const set = function (id, v) { const e = document.getElementById(id); if (e) e.textContent = fmt(v); };
    set("now-grid", p.grid); set("now-storage", p.storage); set("now-soc", p.soc); set("now-pv", p.pv);
    set("now-target", target);
    const dem = document.getElementById("now-demand");
    if (dem) dem.textContent = fmt(p.demand) + " / " + fmt(live.limit);
    state.points += 1;
    document.body.dataset.livePoints = String(state.points);
    document.body.dataset.liveGrid = String(p.grid);
    document.body.dataset.liveAt = String(Date.now());
    if (p.sent_ms) { state.lags.push(Date.now() - p.sent_ms); document.body.dataset.liveLagsMs = state.lags.slice(-200).join(","); }
  }

  function setupLive() {
    const el = document.getElementById("live-chart");
    if (!el || !window.uPlot) return;
    state.live = liveChart(el);
    const dev = document.getElementById("device-chart");
    if (dev) state.device = deviceChart(dev);
    const seed = JSON.parse(document.getElementById("live-data").textContent);
    const d = state.live.data;
    (seed.history || []).forEach(function (h) {
      [h[0], h[1], null, null, null, state.live.baseline, state.live.limit].forEach(function (v, i) { d[i].push(v); });
    });
    state.live.u.setData(d);
    if (seed.latest) addPoint(Object.assign({}, seed.latest, { sent_ms: null }));
  }

  function drawSeries(el, series, data, height, span) {
    el.textContent = "";
    const x = span ? { time: true, range: [span[0], span[1]] } : { time: true };
    return new uPlot({ width: width(el), height: height, scales: { x: x }, series: [{}].concat(series),
      axes: [{}, { label: "kW" }] }, data, el);
  }

  function loadHistory() {
    const el = document.getElementById("history-chart");
    if (!el || !window.uPlot) return;
    const form = document.getElementById("range-form");
    const go = function () {
      const span = form.querySelector("select[name=range]").value;
      fetch(el.dataset.src + "&range=" + encodeURIComponent(span), { credentials: "same-origin" })
        .then(function (r) { return r.json(); }).then(function (h) {
          const L = labels(el);
          drawSeries(el, [{ label: L.avg, stroke: "#0b5cad", width: 2 }, { label: L.min, stroke: "#8aa4c8" }, { label: L.max, stroke: "#8aa4c8" }],
            [h.t, h.avg, h.min, h.max], 260, [h.from, h.to]);
          const dem = document.getElementById("demand-chart");
          const D = labels(dem);
          drawSeries(dem, [{ label: D.demand, stroke: "#00796b", width: 2 }, Object.assign({ label: D.limit }, dash("#a3151b"))],
            [h.demand_t, h.demand, h.demand_t.map(function () { return h.limit; })], 200, [h.from, h.to]);
          el.dataset.points = String(h.t.length);
        });
    };
    form.addEventListener("submit", function (e) { e.preventDefault(); go(); });
    form.querySelector("select[name=range]").addEventListener("change", go);
    go();
  }

  function loadMonthDemand() {
    document.querySelectorAll(".month-demand").forEach(function (el) {
      if (!window.uPlot) return;
      fetch(el.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (h) {
        const L = labels(el);
        drawSeries(el, [{ label: L.demand, stroke: "#00796b", width: 2 }, Object.assign({ label: L.limit }, dash("#a3151b"))],
          [h.t, h.demand, h.t.map(function () { return h.limit; })], 240);
      });
    });
  }

  function alarmBanner(a) {
    const b = document.getElementById("live-alarm");
    if (!b || !a.open || a.acknowledged) return;
    b.hidden = false;
    b.textContent = "";
    const link = document.createElement("a");
    link.href = "/alarms?device=" + encodeURIComponent(a.device_uid);
    link.textContent = a.device_uid + ": " + a.message;
    b.appendChild(link);
  }

  function connect() {
    const url = document.body.dataset.events;
    if (!url || !window.EventSource) return;
    const source = new EventSource(url);
    const fire = function (name, detail) { document.body.dispatchEvent(new CustomEvent(name, { detail: detail })); };
    source.addEventListener("status", function (e) {
      const meters = JSON.parse(e.data).meters;
      const el = document.getElementById("live-chart");
      if (el && meters[el.dataset.meter]) addPoint(meters[el.dataset.meter]);
    });
    source.addEventListener("list", function () { fire("list-changed"); });
    source.addEventListener("command", function (e) { fire("command-changed", JSON.parse(e.data)); });
    source.addEventListener("alarm", function (e) { const a = JSON.parse(e.data); alarmBanner(a); fire("alarm-changed", a); });
    source.addEventListener("open", function () { document.body.dataset.live = "open"; });
    source.addEventListener("error", function () { document.body.dataset.live = "reconnecting"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupLive(); loadHistory(); loadMonthDemand(); connect();
  });
})();
