// Switchboard back office behaviours. Loaded from a file (the CSP forbids inline scripts).
(function () {
  "use strict";

  // Forms with data-confirm ask before submitting.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  function width(el) {
    return Math.max(280, el.clientWidth || 600);
  }

  function plot(el, series, data) {
    el.innerHTML = "";
    if (!window.uPlot) { return; }
    new window.uPlot({ width: width(el), height: 220, series: series, scales: { x: { time: true } } }, data, el);
  }

  function draw(el, points) {
    var kind = el.getAttribute("data-chart");
    if (!points.length) {
      el.textContent = "No data in this range.";
      el.className += " empty";
      return;
    }
    if (kind === "bars") {
      var bars = window.uPlot && window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.7] }) : undefined;
      plot(el, [{}, { label: el.getAttribute("data-label") || "value", stroke: "#1f5fbf", fill: "rgba(31,95,191,.35)", paths: bars, points: { show: false } }],
        [points.map(function (p) { return p[0]; }), points.map(function (p) { return p[1]; })]);
    } else if (kind === "calls") {
      plot(el, [{}, { label: "calls", stroke: "#1f5fbf" }, { label: "errors", stroke: "#b42318" }],
        [points.map(function (p) { return p.at_ms / 1000; }), points.map(function (p) { return p.calls; }),
         points.map(function (p) { return p.errors; })]);
    } else if (kind === "latency") {
      plot(el, [{}, { label: "p95 ms", stroke: "#b54708" }],
        [points.map(function (p) { return p.at_ms / 1000; }), points.map(function (p) { return p.p95_ms; })]);
    }
  }

  function charts(root) {
    var els = (root || document).querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(els, function (el) {
      var inline = el.getAttribute("data-series");
      if (inline) {
        try { draw(el, JSON.parse(inline)); } catch (err) { el.textContent = "The chart could not be drawn."; }
        return;
      }
      var src = el.getAttribute("data-src");
      if (!src) { return; }
      fetch(src, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (points) { draw(el, points); })
        .catch(function () { el.textContent = "The chart data could not be loaded."; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { charts(document); });
  document.addEventListener("htmx:afterSettle", function (e) { charts(e.target); });
})();
