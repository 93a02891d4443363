// Console behaviour that needs script. Pages work without it; htmx enhances them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // ---- Charts: every server-built Plotly figure, in the page's colours.
  // <div data-plotly-figure="ID"> + json_script ID. A trace whose meta is "accent", "line"
  // or "good" takes the palette's chart colour, so dark mode's charts match the page;
  // "series-N" and "other" take the series palette's.
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function themed(figure, el) {
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
      // Series of a stacked chart ("series-N", "other"): the palette's colour-blind-safe
      // set, lighter in dark mode (--chart-series-N, --chart-other).
      var series = /^(series-\d+|other)$/.test(trace.meta || "") ? cssVar("--chart-" + trace.meta) : "";
      var colour = series || colours[trace.meta];
      if (!colour) return trace;
      return Object.assign({}, trace, {
        marker: Object.assign({}, trace.marker, { color: colour }),
        line: Object.assign({}, trace.line, { color: colour }),
      });
    });
    // On a phone plotly's legend would squeeze the plot (or scroll): the legend is a
    // list above the chart instead, wrapping like text (legendList).
    var width = el && el.clientWidth;
    layout.__htmlLegend = !!(width && width < 560 && layout.showlegend !== false && data.length > 2);
    if (layout.__htmlLegend) {
      layout.showlegend = false;
      layout.margin = Object.assign({}, layout.margin, { t: 16 });
    }
    return { data: data, layout: layout };
  }
  function legendList(el, traces) {
    var list = el.previousElementSibling;
    if (!list || !list.classList.contains("chart-legend")) {
      if (!traces.length) return;
      list = document.createElement("ul");
      list.className = "chart-legend";
      list.setAttribute("aria-hidden", "true");  // the chart's table or sentence has it
      el.parentNode.insertBefore(list, el);
    }
    list.replaceChildren();
    list.hidden = !traces.length;
    traces.forEach(function (trace) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = (trace.marker && trace.marker.color) || (trace.line && trace.line.color);
      item.append(swatch, document.createTextNode(trace.name));
      list.append(item);
    });
  }
  function drawFigures(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.plotlyFigure);
      if (!source) return;
      var figure = themed(JSON.parse(source.textContent), el);
      // No mode bar: its buttons would be controls inside a picture (the figures are
      // in the table or sentence next to each chart).
      legendList(el, figure.layout.__htmlLegend ? figure.data : []);
      delete figure.layout.__htmlLegend;
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
  // ---- htmx errors are shown where the user acted. A 400 or 422 answer to an htmx
  // request is the form again with its errors beside the fields: swap it in like a
  // success (htmx leaves error answers out by default, which showed nothing).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Results under a form that marks them (data-marks-stale="ID") never pass for the
  // form's: changing a field, or a request that fails, says so over them.
  function markStale(form, text) {
    var results = document.getElementById(form.dataset.marksStale);
    if (!results) return;
    results.classList.add("stale");
    var note = results.querySelector(".stale-note");
    if (note) {
      note.textContent = text;
      note.hidden = false;
    }
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-marks-stale]");
    if (form) markStale(form, "These figures are for the previous settings: press Show to update them.");
  });
  function failed(event) {
    var elt = event.detail.elt;
    var form = elt && elt.closest && elt.closest("[data-marks-stale]");
    if (!form) {
      var target = event.detail.target;
      form = target && target.querySelector && target.querySelector("form[data-marks-stale]");
    }
    if (!form) return;
    var xhr = event.detail.xhr;
    var why = xhr && xhr.status ? "the server answered " + xhr.status : "the server could not be reached";
    markStale(form, "These figures could not be updated (" + why + "): they are for the previous settings. Try again.");
  }
  document.addEventListener("htmx:responseError", failed);
  document.addEventListener("htmx:sendError", failed);
  document.addEventListener("htmx:afterSettle", function (event) {
    drawFigures(event.target);
    announce(event.target);
  });
})();
