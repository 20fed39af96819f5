// fieldgate status page: the full-width chart of a point's (or a device's) last hour, on uPlot.
// The line is the last value of each bucket (20 s, wider with many points: docs/status.md), the band its lowest and highest; uncertain and bad stretches
// are shaded, alarm limits drawn as lines and alarm raises and clears as marks. A touch reads the value.
'use strict';
(() => {
  const HOUR_S = 3600;
  const COLORS = ['#2a6fdb', '#c2185b', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f'];
  const SEV = { critical: '#b71c1c', major: '#c62828', minor: '#a15c00', warning: '#a15c00' };
  const nf = [0, 1, 2, 3, 4].map((d) => new Intl.NumberFormat('en-US', { maximumFractionDigits: d }));
  const num = (v) => {
    if (v === null || v === undefined) return '—';
    const a = Math.abs(v);
    return nf[a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 3 : 4].format(v);
  };
  const hm = (ts) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  /** One x axis for every series (seconds), each y with a null where its bucket is missing or a silence breaks it. */
  function align(list, bucketS) {
    const xs = [...new Set(list.flatMap((c) => c.t.map((t) => t / 1000)))].sort((a, b) => a - b);
    // A silence longer than two buckets breaks the line instead of bridging it.
    const x = [];
    for (let i = 0; i < xs.length; i++) {
      if (i && xs[i] - xs[i - 1] > 2 * bucketS) x.push(xs[i - 1] + bucketS);
      x.push(xs[i]);
    }
    const pos = new Map(x.map((t, i) => [t, i]));
    const col = (c, key) => {
      const out = new Array(x.length).fill(null);
      c.t.forEach((t, i) => { out[pos.get(t / 1000)] = c[key][i]; });
      return out;
    };
    return { x, col };
  }

  /** Touch: move the cursor to the finger, so a phone reads values as a mouse does. */
  function touchPlugin() {
    return {
      hooks: {
        init: (u) => {
          const move = (e) => {
            const t = e.touches[0];
            if (!t) return;
            const r = u.over.getBoundingClientRect();
            u.setCursor({ left: t.clientX - r.left, top: t.clientY - r.top });
            e.preventDefault();
          };
          u.over.addEventListener('touchstart', move, { passive: false });
          u.over.addEventListener('touchmove', move, { passive: false });
        },
      },
    };
  }

  /**
   * Draws into `box` a chart of one or more points sharing a unit. Returns { plot, destroy }.
   * `points`: the /api/history charts ({point, unit, t, min, max, last, mean, quality, bad, stats, limits, marks}).
   */
  function drawChart(box, points, { bucketMs, now, width, height }) {
    const bucketS = bucketMs / 1000;
    const single = points.length === 1;
    const { x, col } = align(points, bucketS);
    const unit = points[0].unit || '';
    const data = [x];
    const series = [{ value: (u, v) => (v === null ? '—' : hm(v * 1000)) }];
    const bands = [];
    points.forEach((c, i) => {
      const color = COLORS[i % COLORS.length];
      if (single) {
        data.push(col(c, 'max'), col(c, 'min'));
        series.push({ label: 'highest', stroke: 'rgba(42,111,219,.35)', width: 1, value: (u, v) => num(v) },
          { label: 'lowest', stroke: 'rgba(42,111,219,.35)', width: 1, value: (u, v) => num(v) });
        bands.push({ series: [1, 2], fill: 'rgba(42,111,219,.12)' });
      }
      data.push(col(c, 'last'));
      series.push({ label: single ? `value${unit ? ` (${unit})` : ''}` : c.point, stroke: color, width: 2, value: (u, v) => (v === null ? '—' : `${num(v)}${unit ? ` ${unit}` : ''}`),
        points: { show: (u, si, i0, i1) => i1 - i0 < 40, size: 5 } });
    });
    const limits = single ? points[0].limits : [];
    const marks = single ? points[0].marks : [];
    const shades = []; // [fromS, toS, colour]
    for (const c of points) {
      c.t.forEach((t, i) => { if (c.quality[i]) shades.push([t / 1000, t / 1000 + bucketS, c.quality[i] === 2 ? 'rgba(198,40,40,.14)' : 'rgba(161,92,0,.14)']); });
      for (const t of c.bad) shades.push([t / 1000, t / 1000 + bucketS, 'rgba(198,40,40,.28)']);
    }
    const nowS = now / 1000;
    let drawn = { limits: 0, marks: 0, shades: 0 };
    const opts = {
      width, height,
      plugins: [touchPlugin()],
      cursor: { drag: { x: false, y: false }, points: { size: 8 } },
      select: { show: false },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [nowS - HOUR_S, nowS] },
        // The limits stay in view even while the value is far from them.
        y: { range: (u, lo, hi) => {
          const ys = [lo, hi, ...limits.map((l) => l.limit)].filter((v) => v !== null && Number.isFinite(v));
          let a = Math.min(...ys); let b = Math.max(...ys);
          if (!Number.isFinite(a)) { a = 0; b = 1; }
          const pad = (b - a) * 0.08 || Math.abs(a) * 0.1 || 1;
          return [a - pad, b + pad];
        } },
      },
      axes: [{}, { label: unit, size: 60 }],
      series,
      bands,
      hooks: {
        drawClear: [(u) => {
          // Quality under the lines: amber uncertain, red where readings were bad.
          const { ctx, bbox } = u;
          ctx.save();
          drawn.shades = 0;
          for (const [a, b, fill] of shades) {
            const x0 = u.valToPos(a, 'x', true); const x1 = u.valToPos(b, 'x', true);
            if (x1 < bbox.left || x0 > bbox.left + bbox.width) continue;
            ctx.fillStyle = fill;
            ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
            drawn.shades++;
          }
          ctx.restore();
        }],
        draw: [(u) => {
          const { ctx, bbox } = u;
          const dpr = devicePixelRatio || 1;
          ctx.save();
          ctx.font = `${11 * dpr}px system-ui, sans-serif`;
          // uPlot leaves the axes' alignment on the context: the limit labels start inside the plot.
          ctx.textAlign = 'left';
          ctx.textBaseline = 'alphabetic';
          drawn.limits = 0; drawn.marks = 0;
          for (const l of limits) {
            const y = u.valToPos(l.limit, 'y', true);
            ctx.strokeStyle = SEV[l.severity] || '#c62828';
            ctx.setLineDash([6 * dpr, 4 * dpr]);
            ctx.lineWidth = 1.5 * dpr;
            ctx.beginPath(); ctx.moveTo(bbox.left, y); ctx.lineTo(bbox.left + bbox.width, y); ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle;
            ctx.fillText(`${l.type} ${num(l.limit)}${unit ? ` ${unit}` : ''}`, bbox.left + 4 * dpr, y - 4 * dpr);
            drawn.limits++;
          }
          ctx.setLineDash([]);
          for (const m of marks) {
            const xp = u.valToPos(m.ts / 1000, 'x', true);
            if (xp < bbox.left || xp > bbox.left + bbox.width) continue;
            const raise = m.kind === 'raised';
            ctx.strokeStyle = raise ? (SEV[m.severity] || '#c62828') : '#1a7f37';
            ctx.lineWidth = 2 * dpr;
            ctx.beginPath(); ctx.moveTo(xp, bbox.top); ctx.lineTo(xp, bbox.top + bbox.height); ctx.stroke();
            // A flag at the top: ▼ raised, ▲ cleared.
            ctx.fillStyle = ctx.strokeStyle;
            ctx.beginPath();
            const s = 6 * dpr;
            if (raise) { ctx.moveTo(xp - s, bbox.top); ctx.lineTo(xp + s, bbox.top); ctx.lineTo(xp, bbox.top + s * 1.4); }
            else { ctx.moveTo(xp - s, bbox.top + s * 1.4); ctx.lineTo(xp + s, bbox.top + s * 1.4); ctx.lineTo(xp, bbox.top); }
            ctx.fill();
            drawn.marks++;
          }
          ctx.restore();
          box.dataset.limits = String(drawn.limits);
          box.dataset.marks = String(drawn.marks);
          box.dataset.shades = String(drawn.shades);
          box.dataset.from = String(Math.round(u.scales.x.min));
          box.dataset.to = String(Math.round(u.scales.x.max));
        }],
      },
    };
    const plot = new uPlot(opts, data, box);
    return { plot, destroy: () => plot.destroy() };
  }

  /** The words under a chart: the window's figures, its limits and its alarm marks. */
  function describe(c) {
    const u = c.unit ? ` ${c.unit}` : '';
    const out = [];
    out.push(c.stats ? `Last hour: lowest ${num(c.stats.min)}${u}, highest ${num(c.stats.max)}${u}, mean ${num(c.stats.mean)}${u} (${c.stats.readings} readings)` : 'No reading in the last hour');
    if (c.limits.length) out.push(`Limits: ${c.limits.map((l) => `${l.type} ${num(l.limit)}${u} (${l.severity})`).join(', ')}`);
    if (c.marks.length) out.push(`Alarms: ${c.marks.map((m) => `${m.kind === 'raised' ? 'raised' : m.kind} ${m.alarm} at ${hm(m.ts)}`).join(', ')}`);
    const bad = c.bad.length + c.quality.filter((q) => q === 2).length;
    const unsure = c.quality.filter((q) => q === 1).length;
    const b = `${c.bucketMs / 1000} s`;
    if (bad || unsure) out.push(`Shaded: ${bad ? `${bad} × ${b} with bad readings` : ''}${bad && unsure ? ', ' : ''}${unsure ? `${unsure} × ${b} uncertain` : ''}`);
    return out;
  }

  window.fieldgateChart = { drawChart, describe };
})();
