/**
 * The report page's script: a read-out under the pointer on the chart, and click-to-zoom on the flame graph.
 * The page is complete without it (everything is drawn as SVG); it only adds these.
 */
export const SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  function fmtBytes(v) {
    if (v === null || v === undefined) return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0, x = Math.abs(v);
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (v < 0 ? '-' : '') + (i === 0 ? x : x.toFixed(x >= 100 ? 0 : 1)) + ' ' + u[i];
  }
  function fmtTime(ms) { return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(2) + ' s'; }

  // ---- chart read-out
  var svg = document.getElementById('memory-chart');
  var overlay = document.getElementById('chart-overlay');
  var hover = document.getElementById('chart-hover');
  var tip = document.getElementById('chart-tip');
  var samples = data.timeline || [];
  if (svg && overlay && hover && tip && samples.length) {
    var x0 = +overlay.getAttribute('x'), w = +overlay.getAttribute('width'), end = +overlay.getAttribute('data-end');
    var line = hover.querySelector('line');
    overlay.addEventListener('mousemove', function (ev) {
      var pt = svg.createSVGPoint(); pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(svg.getScreenCTM().inverse());
      var t = ((p.x - x0) / w) * end, best = samples[0];
      for (var i = 1; i < samples.length; i++) if (Math.abs(samples[i].t - t) < Math.abs(best.t - t)) best = samples[i];
      var px = x0 + (best.t / end) * w;
      line.setAttribute('x1', px); line.setAttribute('x2', px);
      hover.setAttribute('visibility', 'visible');
      tip.textContent = (data.xLabel ? data.xLabel + ' ' + best.t : fmtTime(best.t)) + '\\nRSS      ' + fmtBytes(best.rss) + (best.traced === null ? '' : '\\ntraced   ' + fmtBytes(best.traced)) + (data.xLabel ? '' : '\\ngc runs  ' + best.gc);
      tip.style.display = 'block';
      tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px';
    });
    overlay.addEventListener('mouseleave', function () { hover.setAttribute('visibility', 'hidden'); tip.style.display = 'none'; });
  }

  // ---- flame graph zoom
  var flame = document.getElementById('flame-graph');
  var reset = document.getElementById('flame-reset');
  var focusLabel = document.getElementById('flame-focus');
  if (flame) {
    var frames = Array.prototype.slice.call(flame.querySelectorAll('g.frame'));
    var byId = {};
    frames.forEach(function (g) { byId[g.getAttribute('data-id')] = g; });
    var full = +flame.getAttribute('width'), CH = 6.6;
    function ancestors(g) { var out = {}; while (g) { out[g.getAttribute('data-id')] = true; g = byId[g.getAttribute('data-parent')]; } return out; }
    function zoom(target) {
      var tx = +target.getAttribute('data-x'), tw = +target.getAttribute('data-w'), td = +target.getAttribute('data-depth');
      var up = ancestors(target);
      frames.forEach(function (g) {
        var x = +g.getAttribute('data-x'), wd = +g.getAttribute('data-w'), d = +g.getAttribute('data-depth');
        var nx, nw;
        if (d <= td) { if (!up[g.getAttribute('data-id')]) { g.style.display = 'none'; return; } nx = 0; nw = full; }
        else {
          if (x + wd <= tx + 0.01 || x >= tx + tw - 0.01) { g.style.display = 'none'; return; }
          nx = ((x - tx) / tw) * full; nw = (wd / tw) * full;
          if (nw < 0.6) { g.style.display = 'none'; return; }
        }
        g.style.display = '';
        g.setAttribute('transform', 'translate(' + nx + ' ' + g.getAttribute('transform').split(' ')[1]);
        g.querySelector('rect').setAttribute('width', Math.max(0.5, nw - 1));
        var text = g.getAttribute('data-label'), fits = Math.floor((nw - 8) / CH);
        g.querySelector('text').textContent = fits < 3 ? '' : text.length <= fits ? text : text.slice(0, fits - 1) + '…';
      });
      if (focusLabel) focusLabel.textContent = td === 0 ? '' : 'zoomed into ' + target.getAttribute('data-label');
      if (reset) reset.disabled = td === 0;
    }
    flame.addEventListener('click', function (ev) {
      var g = ev.target.closest ? ev.target.closest('g.frame') : null;
      if (g) zoom(g);
    });
    if (reset) reset.addEventListener('click', function () { zoom(byId['0']); });
  }
})();
`;
