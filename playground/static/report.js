// The run report's only behaviour: the time slider replays the run second by second.
// Everything is drawn in the page already; this script recolours it from the per-host series.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var slider = document.getElementById("time");
  if (!slider) { return; }
  var label = document.getElementById("time-label");
  var cols = data.columns;  // names of the numbers in each row of data.series[host]
  var C = {};
  cols.forEach(function (name, i) { C[name] = i; });

  function colour(util) {  // green when idle, yellow near 70%, red when saturated
    var u = Math.max(0, Math.min(1, util));
    var hue = u < 0.7 ? 120 - (u / 0.7) * 65 : 55 - ((u - 0.7) / 0.3) * 55;
    return "hsl(" + hue.toFixed(0) + ", 70%, " + (u > 0.9 ? 55 : 62) + "%)";
  }

  function rowAt(rows, t) {
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (r[C.t_s] <= t && t < r[C.t_s] + r[C.dt_s]) { return r; }
    }
    return rows.length ? rows[rows.length - 1] : null;
  }

  function fmt(x, digits) { return x.toFixed(digits); }

  function show(t) {
    label.textContent = "t = " + fmt(t, 0) + " s of " + fmt(data.duration_s, 0) + " s";
    data.hosts.forEach(function (host, i) {
      var r = rowAt(data.series[host] || [], t);
      var node = document.getElementById("node-" + i);
      var line = document.getElementById("row-" + i);
      if (!r) { return; }
      var down = !r[C.up] || r[C.crashes] > 0;
      var state = down ? "DOWN" : (r[C.utilisation] >= 0.95 ? "saturated" : "up");
      if (node) {
        node.setAttribute("data-state", down ? "down" : "up");
        node.querySelector("rect").style.fill = colour(r[C.utilisation]);
        node.querySelector(".state").textContent = state;
        node.querySelector(".util").textContent = down ? "" : fmt(r[C.utilisation] * 100, 0) + "%";
      }
      if (line) {
        line.className = down ? "down" : "";
        var cells = line.querySelectorAll("td");
        cells[1].textContent = state;
        cells[2].textContent = fmt(r[C.utilisation] * 100, 0) + "%";
        cells[3].textContent = fmt(r[C.queue], 1);
        cells[4].textContent = fmt(r[C.in_flight], 1);
        cells[5].textContent = r[C.served];
        cells[6].textContent = r[C.errors];
        cells[7].textContent = fmt(r[C.p50_s] * 1000, 1);
        cells[8].textContent = fmt(r[C.p99_s] * 1000, 1);
      }
    });
    var cursors = document.querySelectorAll(".cursor");
    for (var k = 0; k < cursors.length; k++) {
      var c = cursors[k];
      var x0 = parseFloat(c.getAttribute("data-x0")), w = parseFloat(c.getAttribute("data-w"));
      var x = x0 + w * (t + 0.5) / Math.max(data.duration_s, 1e-9);
      c.setAttribute("x1", x); c.setAttribute("x2", x);
    }
  }

  slider.addEventListener("input", function () { show(parseFloat(slider.value)); });
  show(parseFloat(slider.value));
  window.playgroundShow = show;  // for a console: playgroundShow(12)
})();
