// Console behaviour that needs script. Pages work without it; htmx enhances them.
(function () {
  "use strict";
  // Draw every server-built Plotly figure: <div data-plotly-figure="ID"> + json_script ID.
  function drawFigures(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.plotlyFigure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.react(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
    });
  }
  // A button marked data-once sends its form once; the server charges once regardless.
  document.addEventListener("submit", function (event) {
    var buttons = event.target.querySelectorAll("button[data-once]");
    window.setTimeout(function () {
      buttons.forEach(function (button) { button.disabled = true; });
    }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawFigures(event.target); });
})();
