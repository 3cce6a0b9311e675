// The timeline's only script: zooming (the plot's x unit is the simulated millisecond,
// so a time range is one viewBox change) and the time axis and grid for the range shown.
// Without it the page still shows the whole run, unzoomed and without an axis.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var plot = document.getElementById("plot");
  var axis = document.getElementById("axis");
  var grid = document.getElementById("grid");
  var sel = document.getElementById("sel");
  var from = document.getElementById("from");
  var to = document.getElementById("to");
  var end = parseFloat(plot.getAttribute("data-end"));
  var height = plot.viewBox.baseVal.height;
  var view = [0, end];

  // A round step (1, 2 or 5 times a power of ten) that gives about eight ticks.
  function step(span) {
    var raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5];
    for (var i = 0; i < m.length; i++) if (m[i] * p >= raw) return m[i] * p;
    return 10 * p;
  }

  function seconds(ms, decimals) {
    return (ms / 1000).toFixed(decimals) + "s";
  }

  function el(name, attrs) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function drawAxis() {
    var a = view[0], b = view[1], span = b - a;
    var w = axis.getBoundingClientRect().width || 1000;
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    while (grid.firstChild) grid.removeChild(grid.firstChild);
    var s = step(span);
    var decimals = Math.max(0, Math.min(6, Math.ceil(-Math.log10(s / 1000))));
    for (var i = Math.ceil(a / s); i * s <= b; i++) {
      var t = i * s;
      var label = el("text", { x: ((t - a) / span) * w + 2, y: 14, "class": "tick-label" });
      label.textContent = seconds(t, decimals);
      axis.appendChild(label);
      grid.appendChild(el("line", { x1: t, x2: t, y1: 0, y2: height }));
    }
  }

  function zoom(a, b) {
    if (isNaN(a) || isNaN(b)) return;
    if (b < a) { var c = a; a = b; b = c; }
    a = Math.max(0, a);
    b = Math.min(end, b);
    if (!(b - a >= 0.001)) return; // under a microsecond: nothing to show
    view = [a, b];
    plot.setAttribute("viewBox", a + " 0 " + (b - a) + " " + height);
    from.value = parseFloat((a / 1000).toFixed(6));
    to.value = parseFloat((b / 1000).toFixed(6));
    drawAxis();
  }

  // Drag across the plot to zoom to the range dragged over.
  var start = null;
  function timeAt(ev) {
    var r = plot.getBoundingClientRect();
    return view[0] + ((ev.clientX - r.left) / r.width) * (view[1] - view[0]);
  }
  plot.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0) return;
    start = timeAt(ev);
    sel.setAttribute("x", start);
    sel.setAttribute("width", 0);
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (start === null) return;
    var t = timeAt(ev);
    sel.setAttribute("x", Math.min(start, t));
    sel.setAttribute("width", Math.abs(t - start));
  });
  window.addEventListener("mouseup", function (ev) {
    if (start === null) return;
    var a = start, b = timeAt(ev);
    start = null;
    sel.setAttribute("width", 0);
    var pixels = (Math.abs(b - a) / (view[1] - view[0])) * plot.getBoundingClientRect().width;
    if (pixels >= 4) zoom(a, b); // a click is not a drag
  });
  plot.addEventListener("dblclick", function () { zoom(0, end); });

  function applyInputs() { zoom(parseFloat(from.value) * 1000, parseFloat(to.value) * 1000); }
  document.getElementById("apply").addEventListener("click", applyInputs);
  document.getElementById("reset").addEventListener("click", function () { zoom(0, end); });
  [from, to].forEach(function (input) {
    input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") applyInputs(); });
  });

  // The banner's buttons zoom to what a violation names, with a margin either side.
  var buttons = document.querySelectorAll("button.zoom");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      var a = parseFloat(ev.target.getAttribute("data-from"));
      var b = parseFloat(ev.target.getAttribute("data-to"));
      var margin = Math.max((b - a) * 0.1, 1);
      zoom(a - margin, b + margin);
    });
  }

  window.addEventListener("resize", drawAxis);
  zoom(0, end);
})();
