// Console behaviour that needs script. Pages work without it; htmx enhances them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // ---- Charts: every server-built Plotly figure, in the page's colours.
  // <div data-plotly-figure="ID"> + json_script ID. A trace whose meta is "accent", "line"
  // or "good" takes the palette's chart colour, so dark mode's charts match the page.
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function themed(figure) {
    var ink = cssVar("--ink"), muted = cssVar("--muted"), grid = cssVar("--chart-grid");
    var layout = Object.assign({}, figure.layout, {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: Object.assign({}, figure.layout.font, { color: ink }),
      hoverlabel: { bgcolor: cssVar("--panel"), bordercolor: cssVar("--line"), font: { color: ink } },
    });
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        layout[key] = Object.assign({}, layout[key], {
          gridcolor: grid, linecolor: muted, zerolinecolor: grid, tickcolor: muted,
        });
      }
    });
    var colours = {
      accent: cssVar("--chart-accent"), line: cssVar("--chart-line"), good: cssVar("--good"),
    };
    var data = figure.data.map(function (trace) {
      var colour = colours[trace.meta];
      if (!colour) return trace;
      return Object.assign({}, trace, {
        marker: Object.assign({}, trace.marker, { color: colour }),
        line: Object.assign({}, trace.line, { color: colour }),
      });
    });
    return { data: data, layout: layout };
  }
  function drawFigures(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.plotlyFigure);
      if (!source) return;
      var figure = themed(JSON.parse(source.textContent));
      // No mode bar: its buttons would be controls inside a picture (the figures are
      // in the table or sentence next to each chart).
      window.Plotly.react(el, figure.data, figure.layout, {
        responsive: true, displaylogo: false, displayModeBar: false,
      });
    });
  }
  // The device switching between light and dark redraws the charts in the new colours.
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      drawFigures(document);
    });
  }

  // ---- Navigation: on narrow screens the links sit behind a Menu button.
  function setupMenu() {
    var nav = document.getElementById("mainnav");
    if (!nav) return;
    var button = nav.querySelector(".nav-toggle");
    button.hidden = false;
    function toggle(open) {
      nav.classList.toggle("open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () {
      toggle(button.getAttribute("aria-expanded") !== "true");
    });
    nav.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.classList.contains("open")) {
        toggle(false);
        button.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (!nav.contains(event.target)) toggle(false);
    });
  }
  // The session chip closes with Escape, and focus goes back to it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var chip = document.getElementById("session-chip");
    if (chip && chip.open && chip.contains(document.activeElement)) {
      chip.open = false;
      chip.querySelector("summary").focus();
    }
  });

  // ---- htmx swaps: say what changed (the swapped part's data-announce) in the page's
  // live region; htmx itself keeps focus on the element with the same id.
  function announce(root) {
    var region = document.getElementById("announcer");
    var source = root.matches && root.matches("[data-announce]")
      ? root : root.querySelector && root.querySelector("[data-announce]");
    if (!region || !source) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = source.dataset.announce; }, 50);
  }

  // A button marked data-once sends its form once; the server charges once regardless.
  document.addEventListener("submit", function (event) {
    var buttons = event.target.querySelectorAll("button[data-once]");
    window.setTimeout(function () {
      buttons.forEach(function (button) { button.disabled = true; });
    }, 0);
  });
  // ---- Confirmations: a destructive action's button fetches its confirmation page's form
  // (htmx) into the shell's <dialog>; Cancel and Escape close it and focus goes back.
  var confirmOpener = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target && event.detail.target.id === "confirm-dialog-body") {
      confirmOpener = event.detail.elt;
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "confirm-dialog-body") return;
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog.open) dialog.showModal();
    var cancel = dialog.querySelector("[data-dialog-cancel]");
    if (cancel) cancel.focus();
  });
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("#confirm-dialog [data-dialog-cancel]");
    if (!cancel) return;
    event.preventDefault();
    document.getElementById("confirm-dialog").close();
  });
  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) return;
    dialog.addEventListener("close", function () {
      document.getElementById("confirm-dialog-body").textContent = "";
      if (confirmOpener && document.contains(confirmOpener)) confirmOpener.focus();
      confirmOpener = null;
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupMenu();
    drawFigures(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    drawFigures(event.target);
    announce(event.target);
  });
})();
