// fieldgate status page: the small plot of every point (uPlot, the last value of each bucket over the last hour)
// and the dialog that enlarges a point or a device into charts (chart.js draws them).
// status.js creates it with what it shares: el, the token, the gateway's clock and the value wording.
'use strict';
(() => {
  const HOUR_S = 3600;

  function create({ el, withToken, now, value, since, pointOf }) {
    const $ = (id) => document.getElementById(id);
    const series = new Map(); // "device\0point" -> { t: [s], v: [], dirty }
    let bucketS = 10;
    let loadedMs = 0; // the width of the hour loaded last (0: none yet)
    let loading = false;

    // ---- small plots
    function extend(key, [tMs, , , last]) {
      const d = series.get(key) || { t: [], v: [] };
      series.set(key, d);
      const t = tMs / 1000;
      const n = d.t.length;
      if (n && d.t[n - 1] === t) { if (d.v[n - 1] === last) return; d.v[n - 1] = last; }
      else if (!n || t > d.t[n - 1]) { d.t.push(t); d.v.push(last); }
      else return;
      const from = now() / 1000 - HOUR_S;
      while (d.t.length && d.t[0] < from) { d.t.shift(); d.v.shift(); }
      d.dirty = true;
    }
    /** [t, v] with a null after each silence longer than two buckets, so the plot breaks instead of bridging. */
    function withGaps(d) {
      const out = [[], []];
      for (let i = 0; i < d.t.length; i++) {
        if (i && d.t[i] - d.t[i - 1] > 2 * bucketS) { out[0].push(d.t[i - 1] + bucketS); out[1].push(null); }
        out[0].push(d.t[i]);
        out[1].push(d.v[i]);
      }
      return out;
    }
    const xRange = () => { const n = now() / 1000; return [n - HOUR_S, n]; };
    /** Draws (or updates) the small plot of row `r` ({ spark, plot }). */
    function draw(key, r) {
      const d = series.get(key);
      if (!d || !window.uPlot) return;
      if (!r.plot) {
        r.plot = new uPlot({ width: 150, height: 34, pxAlign: false, padding: [3, 4, 3, 0], cursor: { show: false }, select: { show: false }, legend: { show: false },
          scales: { x: { time: true, range: xRange } }, axes: [{ show: false }, { show: false }],
          // A few readings (a fresh start) are drawn as dots; a line needs two.
          series: [{}, { stroke: '#2a6fdb', width: 1.5, fill: 'rgba(42,111,219,.12)', points: { show: (u, si, i0, i1) => i1 - i0 < 12, size: 4 } }] }, withGaps(d), r.spark);
        d.dirty = false;
      } else if (d.dirty) {
        r.plot.setData(withGaps(d));
        d.dirty = false;
      }
    }
    /** Every point's hour at once (at start and after a reconnect); `rows` the page's point rows by key. */
    async function loadHistory(rows) {
      if (loading) return;
      loading = true;
      try {
        const res = await fetch(withToken('/api/history'));
        if (!res.ok) return;
        const h = await res.json();
        bucketS = h.bucketMs / 1000;
        loadedMs = h.bucketMs;
        for (const p of h.points) series.set(`${p.device}\u0000${p.point}`, { t: p.t.map((x) => x / 1000), v: p.last.slice(), dirty: true });
        for (const [key, r] of rows) draw(key, r);
      } catch { /* the next snapshot extends what there is */ } finally { loading = false; }
    }

    // ---- the dialog
    let charts = [];
    let zoomed = null; // { device, point } while a point's chart is open
    function clearCharts() { for (const c of charts) c.destroy(); charts = []; }
    function chartSize() {
      const width = Math.max(280, ($('zoom-plot').clientWidth || 600));
      return { width, height: Math.max(220, Math.min(420, Math.round(width * 0.5))) };
    }
    /** One chart per group of points sharing a unit; the words under each. */
    function showCharts(groups, bucketMs) {
      clearCharts();
      const plotBox = $('zoom-plot');
      plotBox.replaceChildren();
      $('zoom-notes').replaceChildren();
      const size = chartSize();
      for (const list of groups) {
        const box = el('div', { class: 'chart', 'data-unit': list[0].unit || '', 'data-points': list.map((c) => c.point).join(',') });
        const title = groups.length > 1 || list.length > 1 ? el('h3', { text: `${list.map((c) => c.point).join(', ')}${list[0].unit ? ` (${list[0].unit})` : ''}` }) : '';
        plotBox.append(el('section', { class: 'chart-group' }, title, box));
        charts.push(window.fieldgateChart.drawChart(box, list, { bucketMs, now: now(), ...size }));
        if (list.length === 1) $('zoom-notes').append(...window.fieldgateChart.describe(list[0]).map((t) => el('li', { text: t })));
      }
    }
    function open(title, current) {
      $('zoom-title').textContent = title;
      zoomed = current;
      updateNow();
      clearCharts();
      $('zoom-plot').replaceChildren();
      $('zoom-notes').replaceChildren();
      $('zoom').showModal();
    }
    /** "Now 3.97 bar · good · 2 s ago" above a point's chart, kept current while it is open. */
    function updateNow() {
      const line = $('zoom-now');
      const p = zoomed && pointOf(zoomed.device, zoomed.point);
      line.hidden = !p;
      if (!p) return;
      const reading = p.value === undefined ? 'no reading yet' : `${value(p.value)}${p.unit && p.value !== null ? ` ${p.unit}` : ''}`;
      line.className = `now ${p.quality || 'none'}`;
      line.textContent = `Now ${reading}${p.quality ? ` · ${p.quality}` : ''}${p.ts ? ` · ${since(p.ts)}` : ''}`;
    }
    async function zoom(device, point, unit) {
      open(`${device} · ${point}${unit ? ` (${unit})` : ''}`, { device, point });
      const res = await fetch(withToken(`/api/history?device=${encodeURIComponent(device)}&point=${encodeURIComponent(point)}`));
      if (!res.ok || !$('zoom').open) return;
      const h = await res.json();
      bucketS = h.bucketMs / 1000;
      showCharts([[h]], h.bucketMs);
    }
    async function zoomDevice(device) {
      open(`${device}: every point, last hour`, null);
      const res = await fetch(withToken(`/api/history?device=${encodeURIComponent(device)}`));
      if (!res.ok || !$('zoom').open) return;
      const h = await res.json();
      // Points that share a unit are overlaid; each other unit gets its own chart.
      const groups = new Map();
      for (const c of h.points) {
        if (!c.t.length) continue;
        const k = c.unit || '';
        groups.set(k, [...(groups.get(k) || []), c]);
      }
      if (!groups.size) return $('zoom-notes').replaceChildren(el('li', { text: 'No reading in the last hour' }));
      showCharts([...groups.values()], h.bucketMs);
    }
    $('zoom-close').addEventListener('click', () => $('zoom').close());
    $('zoom').addEventListener('close', () => { clearCharts(); zoomed = null; });

    return { extend, draw, loadHistory, zoom, zoomDevice, updateNow, loadedBucketMs: () => loadedMs };
  }

  window.fieldgatePlots = { create };
})();
