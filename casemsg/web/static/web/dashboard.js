// The project dashboard's charts, drawn with the vendored Chart.js (chart.umd.min.js) from the figures the
// page carries in <script type="application/json" id="dashboard-data"> (Django's json_script: escaped data,
// no inline code).
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("dashboard-data");
    if (!el || typeof Chart === "undefined") return;
    var data = JSON.parse(el.textContent);
    var common = { responsive: true, maintainAspectRatio: false, animation: false };
    var perDay = document.getElementById("chart-per-day");
    if (perDay) {
      new Chart(perDay, {
        type: "bar",
        data: {
          labels: data.days.map(function (d) { return d.slice(5); }),
          datasets: data.series.map(function (s) {
            return { label: s.label, data: s.data, backgroundColor: s.color, stack: "messages" };
          })
        },
        options: Object.assign({}, common, {
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" } }
        })
      });
    }
    var failures = document.getElementById("chart-failures");
    if (failures && data.failures.labels.length) {
      new Chart(failures, {
        type: "bar",
        data: { labels: data.failures.labels, datasets: [{ label: "failed", data: data.failures.data, backgroundColor: "#b42318", maxBarThickness: 28 }] },
        options: Object.assign({}, common, {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { display: false } }
        })
      });
    }
    var directions = document.getElementById("chart-directions");
    if (directions) {
      new Chart(directions, {
        type: "doughnut",
        data: { labels: data.directions.labels, datasets: [{ data: data.directions.data, backgroundColor: ["#7a5af8", "#2e90fa"] }] },
        options: Object.assign({}, common, { plugins: { legend: { position: "bottom" } } })
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
