// The hub's console: the live delivery table (server-sent events) and the dashboard's chart.
// Every word shown comes from the page (data- attributes rendered from the message catalogues).
(function () {
  "use strict";

  function replaceRow(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const row = tpl.content.firstElementChild;
    if (!row || !row.id) return;
    const old = document.getElementById(row.id);
    if (old) old.replaceWith(row); else document.getElementById("delivery-rows").appendChild(row);
  }

  function watch(box) {
    const source = new EventSource(box.dataset.events);
    const status = document.getElementById("live-status");
    source.addEventListener("delivery", function (e) { replaceRow(JSON.parse(e.data).html); });
    source.addEventListener("summary", function (e) {
      const data = JSON.parse(e.data);
      document.getElementById("summary").innerHTML = data.html;
    });
    source.addEventListener("done", function () {
      source.close();
      box.dataset.state = "done";
      if (status) status.textContent = box.dataset.doneText;
    });
    source.onerror = function () {
      if (box.dataset.state === "done") return;
      if (status) status.textContent = box.dataset.lostText;  // EventSource reconnects by itself
    };
  }

  function chart(el) {
    if (typeof uPlot === "undefined") return;
    const data = JSON.parse(el.dataset.series);
    const opts = {
      width: Math.max(280, el.clientWidth), height: 180,
      scales: { x: { time: false } },
      axes: [{ values: function (u, vals) { return vals.map(function (v) { return v + "h"; }); } }, {}],
      series: [{ label: el.dataset.xLabel }, { label: el.dataset.yLabel, stroke: "#0b5cad", fill: "rgba(11,92,173,.15)",
                  paths: uPlot.paths.bars({ size: [0.8, 40] }) }],
      legend: { show: false },
    };
    new uPlot(opts, data, el);
  }

  function start() {
    document.querySelectorAll("[data-events]").forEach(watch);
    document.querySelectorAll("[data-series]").forEach(chart);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
