// The statistics page's chart: minutes broadcast per area, from the figures embedded in the page
// (the same as its table), so drawing it asks the hub for nothing more.
(function () {
  "use strict";

  function draw(el) {
    if (typeof uPlot === "undefined") return;
    const data = JSON.parse(el.dataset.reportChart);
    const xs = data.labels.map(function (_, i) { return i; });
    const opts = {
      width: Math.max(260, el.clientWidth), height: 220,
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, xs.length - 0.5)] },
                // bars start from zero, or a small difference would look like a large one
                y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [{ splits: function () { return xs; }, values: function (u, vals) {
                 return vals.map(function (v) { return data.labels[v] === undefined ? "" : data.labels[v]; }); } },
             { size: 50 }],
      series: [{}, { label: el.dataset.yLabel, stroke: "#0b5cad", fill: "rgba(11,92,173,.25)",
                     paths: uPlot.paths.bars({ size: [0.6, 60] }) }],
      legend: { show: false },
    };
    el.uplot = new uPlot(opts, [xs, data.minutes], el);
  }

  function start() { document.querySelectorAll("[data-report-chart]").forEach(draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
