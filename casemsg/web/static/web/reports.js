// The reports' charts, drawn with the vendored Chart.js (chart.umd.min.js) from the figures the page carries in
// <script type="application/json" id="report-data"> (Django's json_script: escaped data, no inline code):
// {"charts": [{"id": canvas id, "labels": [...], "series": [{"label", "data", "color"}], "stacked", "horizontal"}]}
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("report-data");
    if (!el || typeof Chart === "undefined") return;
    var data = JSON.parse(el.textContent);
    (data.charts || []).forEach(function (c) {
      var canvas = document.getElementById(c.id);
      if (!canvas || !c.labels.length) return;
      var value = { stacked: !!c.stacked, beginAtZero: true, ticks: { precision: 0 } };
      var label = { stacked: !!c.stacked };
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: c.labels,
          datasets: c.series.map(function (s) {
            return { label: s.label, data: s.data, backgroundColor: s.color, stack: c.stacked ? "all" : s.label, maxBarThickness: 32 };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          indexAxis: c.horizontal ? "y" : "x",
          scales: c.horizontal ? { x: value, y: label } : { x: label, y: value },
          plugins: { legend: { position: "bottom" } }
        }
      });
      canvas.setAttribute("data-drawn", "1");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
