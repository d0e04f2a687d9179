/* Stanch dashboard charts (uPlot, served from /static/vendor/uplot).
 *
 * Overview: a sparkline per series and signal (last hour, 10 s steps) with the expected
 * level dashed and the detector's quiet band shaded. Incident: one chart per affected signal
 * with the band, a red line where each alert started, and shaded spans while each isolation
 * or mitigation action was in force. Both redraw when app.js reports fresh data.
 * Times are the engine's, in UTC, like everything else on the page.
 */
(function () {
  "use strict";

  var sparks = {};   // element id -> uPlot
  var charts = {};   // chart id -> { plot, meta }
  var chartIds = "";
  var extras = { markers: [], spans: [], now: 0 };

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    return {
      line: css("--chart-line"), expected: css("--chart-expected"), band: css("--chart-band"),
      alert: css("--chart-alert"), isolate: css("--chart-isolate"), mitigate: css("--chart-mitigate"),
      grid: css("--chart-grid"), axis: css("--chart-axis"), fg: css("--fg")
    };
  }

  function fmt(unit, v) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    if (unit === "ratio") return (v * 100).toFixed(v < 0.1 ? 2 : 1) + "%";
    if (unit === "seconds") return (v * 1000).toFixed(0) + " ms";
    return (v < 100 ? v.toFixed(1) : v.toFixed(0)) + "/s";
  }

  function utc(ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }

  function zeros(t, hi) {
    return t.map(function (_, i) { return hi[i] === null || hi[i] === undefined ? null : 0; });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  // -- overview sparklines -------------------------------------------------------------------

  var UNIT = { rate: "rps", err: "ratio", p95: "seconds" };

  function sparkData(series, signal) {
    var t = series.t || [];
    var hi = series[signal + "_hi"] || [];
    var lo = signal === "rate" ? (series.rate_lo || []) : zeros(t, hi);
    return [t, series[signal] || [], series[signal + "_exp"] || [], lo, hi];
  }

  function makeSpark(el, data) {
    var p = palette();
    var width = Math.max(80, el.clientWidth || 120);
    var opts = {
      width: width, height: 34, pxAlign: false,
      cursor: { show: false }, legend: { show: false }, select: { show: false },
      scales: { x: { time: false }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.15 : 1]; } } },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        { stroke: p.line, width: 1.5, points: { show: false } },
        { stroke: p.expected, width: 1, dash: [3, 3], points: { show: false } },
        { stroke: "transparent", points: { show: false } },
        { stroke: "transparent", points: { show: false } }
      ],
      bands: [{ series: [4, 3], fill: p.band }]
    };
    return new uPlot(opts, data, el);
  }

  function describeSpark(el, data, signal) {
    var values = data[1].filter(function (v) { return v !== null; });
    var now = values.length ? values[values.length - 1] : null;
    var expected = data[2].filter(function (v) { return v !== null; }).pop();
    var base = el.getAttribute("aria-label").split(":")[0];
    el.setAttribute("aria-label", base + ": now " + fmt(UNIT[signal], now) +
      (expected !== undefined ? ", expected " + fmt(UNIT[signal], expected) : ""));
  }

  function updateSparks() {
    var holder = document.querySelector("[data-sparklines]");
    if (!holder) return;
    getJSON(holder.getAttribute("data-sparklines")).then(function (answer) {
      if (!answer) return;
      document.querySelectorAll(".spark[data-series]").forEach(function (el) {
        var series = answer.series[el.dataset.series];
        if (!series) return;
        var data = sparkData(series, el.dataset.signal);
        var plot = sparks[el.id];
        if (plot && plot.root.isConnected && el.contains(plot.root)) {
          plot.setData(data);
        } else {
          el.textContent = "";
          sparks[el.id] = makeSpark(el, data);
        }
        describeSpark(el, data, el.dataset.signal);
      });
    });
  }

  // -- incident charts -----------------------------------------------------------------------

  function drawSpans(u) {
    // each action: a light wash over the plot while it was in force, and a solid strip of
    // its own along the bottom, so overlapping actions stay apart
    var p = palette();
    var ctx = u.ctx;
    var top = u.bbox.top, height = u.bbox.height;
    var dpr = window.devicePixelRatio || 1;
    var strip = 4 * dpr;
    var xMin = u.scales.x.min, xMax = u.scales.x.max;
    ctx.save();
    extras.spans.forEach(function (s, i) {
      var from = Math.max(s.from, xMin);
      var to = Math.min(s.to === null ? extras.now : s.to, xMax);
      if (to <= from) return;
      var x0 = u.valToPos(from, "x", true), x1 = u.valToPos(to, "x", true);
      var color = s.phase === "isolate" ? p.isolate : p.mitigate;
      ctx.fillStyle = color;
      ctx.globalAlpha = 0.55;
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
      ctx.globalAlpha = 1;
      ctx.fillStyle = color.replace(/[\d.]+\)$/, "0.9)");
      ctx.fillRect(x0, top + height - strip * (i + 1) - i * dpr, Math.max(2, x1 - x0), strip);
    });
    ctx.restore();
  }

  function label(ctx, u, text, x, y, dpr) {
    var width = ctx.measureText(text).width;
    var right = u.bbox.left + u.bbox.width;
    var at = x + 6 * dpr + width > right ? x - 6 * dpr - width : x + 6 * dpr;
    ctx.fillText(text, Math.max(u.bbox.left + 2 * dpr, at), y);
  }

  function drawMarkers(u) {
    var p = palette();
    var ctx = u.ctx;
    var top = u.bbox.top, height = u.bbox.height;
    var dpr = window.devicePixelRatio || 1;
    var xMin = u.scales.x.min, xMax = u.scales.x.max;
    ctx.save();
    ctx.font = (11 * dpr) + "px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    extras.spans.forEach(function (s, i) {
      // a span's name goes inside it when it fits; the legend and the action list say the rest
      var from = Math.max(s.from, xMin);
      var to = Math.min(s.to === null ? extras.now : s.to, xMax);
      if (to <= from) return;
      var x0 = u.valToPos(from, "x", true), x1 = u.valToPos(to, "x", true);
      var width = ctx.measureText(s.label).width;
      if (x1 - x0 < width + 12 * dpr) return;
      ctx.fillStyle = p.fg;
      ctx.globalAlpha = 0.8;
      ctx.fillText(s.label, x0 + 6 * dpr, top + height - (8 * dpr + 5 * dpr * extras.spans.length) - 13 * dpr * (i % 3));
    });
    ctx.globalAlpha = 1;
    extras.markers.forEach(function (m, i) {
      if (m.t < xMin || m.t > xMax) return;
      var x = Math.round(u.valToPos(m.t, "x", true));
      ctx.strokeStyle = p.alert;
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      ctx.fillStyle = p.alert;
      ctx.beginPath(); ctx.moveTo(x - 5 * dpr, top); ctx.lineTo(x + 5 * dpr, top); ctx.lineTo(x, top + 7 * dpr); ctx.fill();
      label(ctx, u, m.label, x, top + (10 + 13 * (i % 3)) * dpr, dpr);
    });
    ctx.restore();
  }

  function timeTicks(u, splits) {
    var f = uPlot.fmtDate(u.scales.x.max - u.scales.x.min > 900 ? "{HH}:{mm}" : "{HH}:{mm}:{ss}");
    return splits.map(function (s) { return f(utc(s)); });
  }

  function chartData(c) {
    var lo = c.lo && c.lo.length ? c.lo : zeros(c.t, c.hi);
    return [c.t, c.value, c.expected, lo, c.hi];
  }

  function makeChart(el, c) {
    var p = palette();
    var axis = { stroke: p.axis, grid: { stroke: p.grid, width: 1 }, ticks: { stroke: p.grid, width: 1 } };
    var opts = {
      width: Math.max(280, el.clientWidth), height: 190,
      tzDate: utc,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.15 : 1]; } } },
      axes: [
        Object.assign({}, axis, { values: timeTicks }),
        Object.assign({}, axis, { size: 64, values: function (u, vals) { return vals.map(function (v) { return fmt(c.unit, v); }); } })
      ],
      series: [
        { value: function (u, v) { return v === null ? "—" : uPlot.fmtDate("{HH}:{mm}:{ss}")(utc(v)) + " UTC"; } },
        { label: "observed", stroke: p.line, width: 2, points: { show: false }, value: function (u, v) { return fmt(c.unit, v); } },
        { label: "expected", stroke: p.expected, width: 1.25, dash: [5, 4], points: { show: false }, value: function (u, v) { return fmt(c.unit, v); } },
        { label: "quiet from", stroke: "transparent", points: { show: false }, value: function (u, v) { return fmt(c.unit, v); } },
        { label: "quiet to", stroke: p.band.replace(/[\d.]+\)$/, "0.6)"), width: 1, points: { show: false }, value: function (u, v) { return fmt(c.unit, v); } }
      ],
      bands: [{ series: [4, 3], fill: p.band }],
      hooks: { drawClear: [drawSpans], draw: [drawMarkers] }
    };
    return new uPlot(opts, chartData(c), el);
  }

  function describeChart(el, c, data) {
    var values = data[1].filter(function (v) { return v !== null; });
    var peak = values.length ? Math.max.apply(null, values) : null;
    var now = values.length ? values[values.length - 1] : null;
    var expected = data[2].filter(function (v) { return v !== null; }).pop();
    el.setAttribute("aria-label", c.title + ": now " + fmt(c.unit, now) + ", peak " + fmt(c.unit, peak) +
      (expected !== undefined ? ", expected " + fmt(c.unit, expected) : "") +
      "; " + extras.markers.length + " alert(s), " + extras.spans.length + " action(s) applied");
  }

  function buildCharts(list, answer) {
    Object.keys(charts).forEach(function (id) { charts[id].plot.destroy(); });
    charts = {};
    list.textContent = "";
    if (!answer.charts.length) {
      var none = document.createElement("p");
      none.className = "muted";
      none.textContent = "No signal history is kept for this incident (it is older than an hour, or the server restarted).";
      list.appendChild(none);
      return;
    }
    answer.charts.forEach(function (c) {
      var figure = document.createElement("figure");
      var caption = document.createElement("figcaption");
      caption.textContent = c.title;
      var el = document.createElement("div");
      el.className = "chart";
      el.id = "chart-" + c.id;
      el.setAttribute("role", "img");
      figure.appendChild(caption);
      figure.appendChild(el);
      list.appendChild(figure);
      charts[c.id] = { plot: makeChart(el, c), meta: c, el: el };
      describeChart(el, c, chartData(c));
    });
  }

  function updateCharts() {
    var holder = document.querySelector("[data-charts]");
    if (!holder) return;
    getJSON(holder.getAttribute("data-charts")).then(function (answer) {
      if (!answer) return;
      extras = { markers: answer.markers, spans: answer.spans, now: answer.now };
      var ids = answer.charts.map(function (c) { return c.id; }).join(",");
      var list = document.getElementById("chart-list");
      if (ids !== chartIds || !list.querySelector(".chart")) {
        chartIds = ids;
        buildCharts(list, answer);
        return;
      }
      answer.charts.forEach(function (c) {
        var entry = charts[c.id];
        if (!entry) return;
        entry.meta = c;
        var data = chartData(c);
        entry.plot.setData(data);
        describeChart(entry.el, c, data);
      });
    });
  }

  function resize() {
    Object.keys(charts).forEach(function (id) {
      var entry = charts[id];
      var w = entry.el.clientWidth;
      if (w && Math.abs(w - entry.plot.width) > 2) entry.plot.setSize({ width: w, height: 190 });
    });
    Object.keys(sparks).forEach(function (id) {
      var plot = sparks[id];
      var el = document.getElementById(id);
      if (el && el.clientWidth && Math.abs(el.clientWidth - plot.width) > 2) plot.setSize({ width: el.clientWidth, height: 34 });
    });
  }

  function rebuildAll() {
    Object.keys(sparks).forEach(function (id) { sparks[id].destroy(); });
    sparks = {};
    chartIds = "";
    updateSparks();
    updateCharts();
  }

  function start() {
    if (typeof uPlot === "undefined") return;
    updateSparks();
    updateCharts();
    document.addEventListener("stanch:refreshed", function () { updateSparks(); updateCharts(); });
    var timer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(resize, 150);
    });
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    if (scheme.addEventListener) scheme.addEventListener("change", rebuildAll);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
