// fieldgate status page: a live snapshot over server-sent events; the small plots and the chart dialog are plots.js
// (chart.js draws the charts), the commissioning tables and the alarm journal commission.js.
// No framework and no build step; every text goes in through textContent, never as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token') || '';
  const withToken = (path) => (token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false && c !== '') e.append(c);
    return e;
  }

  // ---- words and numbers
  const nf = new Intl.NumberFormat('en-US');
  const nfDigits = [0, 1, 2, 3, 4].map((d) => new Intl.NumberFormat('en-US', { maximumFractionDigits: d }));
  const count = (n) => nf.format(n);
  function value(v) {
    if (v === undefined) return '…';
    if (v === null) return '—';
    if (typeof v === 'boolean') return v ? 'on' : 'off';
    if (typeof v !== 'number') return String(v);
    const a = Math.abs(v);
    return nfDigits[a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 3 : 4].format(v);
  }
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return `${Math.floor(h / 24)} days`;
  }
  /** "just now" or "3 min ago". */
  const since = (ts) => (now() - ts < 2000 ? 'just now' : `${ago(now() - ts)} ago`);
  function clock(ts) {
    const d = new Date(ts);
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '?';
    const units = ['bytes', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${nfDigits[i === 0 ? 0 : 1].format(n)} ${units[i]}`;
  }
  const TRANSPORT = { rtu: 'Modbus RTU', tcp: 'Modbus TCP', 'rtu-over-tcp': 'Modbus RTU over TCP', line: 'ASCII line' };
  const DROP = { maxBytes: 'storage full', maxAge: 'too old', memoryQueueFull: 'memory queue full' };

  // ---- state
  let snap = null;
  let skew = 0; // gateway clock minus browser clock
  const now = () => Date.now() + skew;
  const plots = window.fieldgatePlots.create({ el, withToken, now, value, since, pointOf });
  const tools = window.fieldgateTools.create({ el, withToken, value });

  // ---- alarms and attention
  function alarmDetail(a) {
    const u = a.unit ? ` ${a.unit}` : '';
    if (a.value === null) return 'reading not known yet';
    if (a.type === 'low') return `reading ${value(a.value)}${u}, low limit ${value(a.limit)}${u}`;
    if (a.type === 'high') return `reading ${value(a.value)}${u}, high limit ${value(a.limit)}${u}`;
    if (a.type === 'rateOfChange') return `changing by ${value(a.value)}${u}, limit ${value(a.limit)}${u}`;
    if (a.type === 'stale') return `no good reading for ${value(a.value)} s (limit ${value(a.limit)} s)`;
    return `value ${value(a.value)}${u}`;
  }
  // Alarm boxes are rebuilt only when the list changes, so a reader's selection or focus survives the ticks.
  // With the gateway's ISA-18.2 states: an unacknowledged alarm is filled in its colour, an acknowledged one light,
  // one that returned to normal unacknowledged light with a dashed border, a shelved one grey with the shelve's end.
  let alarmKey = null;
  const sinceText = (ts) => `Since ${clock(ts)} (${since(ts)})`;
  const untilText = (ts) => `Shelved until ${clock(ts)} (${ts > now() ? `in ${ago(ts - now())}` : 'ending'})`;
  function alarmBox(a) {
    const returned = a.state !== 'raised';
    const shelved = a.shelvedUntil !== undefined;
    const unack = !shelved && (a.isa === 'unacknowledged' || a.isa === 'returned-unacknowledged');
    const cls = `alarm ${a.severity}${unack && !returned ? ' unack' : ''}${returned ? ' returned' : ''}${shelved ? ' shelved' : ''}`;
    const badge = shelved ? 'shelved' : a.isa === 'unacknowledged' ? 'UNACKNOWLEDGED' : a.isa === 'returned-unacknowledged' ? 'returned to normal, not acknowledged' : a.isa === 'acknowledged' ? 'acknowledged' : '';
    const when = returned
      ? el('p', { class: 'muted', text: a.ts ? `Back to normal since ${clock(a.ts)} (${since(a.ts)}): waiting to be acknowledged` : 'Back to normal: waiting to be acknowledged' })
      : el('p', { class: 'muted', 'data-ts': a.ts ?? undefined, text: a.ts ? sinceText(a.ts) : 'Active since before the gateway last started' });
    return el('div', { class: cls, role: unack ? 'alert' : undefined },
      el('h2', {}, el('span', { class: 'sev', text: a.severity }), a.message || `${a.type} alarm on ${a.point}`, badge && el('span', { class: 'ack', text: badge })),
      el('p', {}, `${a.device} · ${a.point}: ${alarmDetail(a)}`),
      when,
      shelved && el('p', { class: 'until', 'data-until': a.shelvedUntil, text: untilText(a.shelvedUntil) }));
  }
  function renderAlarms(s) {
    const box = $('alarms');
    const list = s.alarms.active;
    const key = JSON.stringify(list.map((a) => [a.device, a.point, a.alarm, a.state, a.message, alarmDetail(a), a.ts, a.isa, a.shelvedUntil]));
    if (key === alarmKey) {
      box.querySelectorAll('[data-ts]').forEach((e) => { e.textContent = sinceText(+e.dataset.ts); });
      box.querySelectorAll('[data-until]').forEach((e) => { e.textContent = untilText(+e.dataset.until); });
      return;
    }
    alarmKey = key;
    if (list.length === 0) return box.replaceChildren(el('p', { class: 'no-alarms', text: 'No active alarms' }));
    box.replaceChildren(...list.map(alarmBox));
  }
  function renderAttention(s) {
    const box = $('attention');
    const { failing, warnings } = s.health;
    box.hidden = failing.length + warnings.length === 0;
    box.className = failing.length ? 'failing' : '';
    box.replaceChildren(el('h2', { text: failing.length ? 'Not working: needs attention' : 'Worth a look' }),
      el('ul', {}, [...failing, ...warnings].map((w) => el('li', { text: w }))));
  }
  // The journal is fetched when it is opened, and again when the snapshot shows a new alarm event.
  let journalKey = null;
  function pointOf(device, point) {
    for (const b of snap?.buses || []) for (const d of b.devices) if (d.id === device) for (const p of d.points) if (p.id === point) return p;
    return undefined;
  }
  const unitOf = (device, point) => pointOf(device, point)?.unit;
  async function loadJournal() {
    try {
      const res = await fetch(withToken('/api/alarms'));
      if (!res.ok) return;
      window.fieldgateCommission.renderJournal(el, $('journal-body'), await res.json(), unitOf);
    } catch { /* the next change tries again */ }
  }
  function renderRecent(s) {
    const r = s.alarms.recent;
    const key = `${r.length}:${r[0] ? `${r[0].ts}${r[0].state}${r[0].alarm}` : ''}`;
    const box = $('journal');
    $('journal-count').textContent = r.length ? ` (${r.length}${r.length >= 50 ? '+' : ''})` : '';
    if (key === journalKey || !box.open) return;
    journalKey = key;
    loadJournal();
  }
  $('journal').addEventListener('toggle', () => { if ($('journal').open) { journalKey = null; if (snap) renderRecent(snap); } });

  // ---- link and outbox
  function renderUplink(s) {
    const u = s.uplink;
    const out = [el('h2', { text: 'Sending data' })];
    if (!u.configured) {
      out.push(el('p', { class: 'state none dot big', text: 'Link to broker: none configured' }),
        el('p', { class: 'muted', text: 'Readings stay on the gateway (fieldgate buffer export).' }));
    } else {
      if (u.state === 'connected') out.push(el('p', { class: 'state ok dot big', text: `Link to broker: connected since ${clock(u.connectedSince)} (${ago(now() - u.connectedSince)})` }));
      else if (u.downSince !== null) {
        out.push(el('p', { class: 'state bad dot big', text: `Link to broker: DOWN for ${ago(now() - u.downSince)}${u.state === 'connecting' ? ', trying now' : ''}` }),
          u.lastError && el('p', { class: 'bad', text: u.lastError }),
          el('p', { class: 'muted', text: 'Readings are kept on the gateway and sent when the link is back.' }));
      } else out.push(el('p', { class: 'state warn dot big', text: 'Link to broker: connecting…' }));
      out.push(el('p', {}, 'Last delivery confirmed by the broker: ',
        u.lastPubackAt ? `${since(u.lastPubackAt)} (answered in ${count(u.lastPubackMs)} ms)` : 'none yet'));
      const b = u.broker;
      const which = b && b.count > 1 ? ` (${b.index === 0 ? 'the primary' : `broker ${b.index + 1} of ${b.count}, not the primary`}${b.switches ? `, ${count(b.switches)} moves between brokers` : ''})` : '';
      out.push(el('p', { class: 'muted', text: `Broker ${b ? b.url : u.url}${which} · reconnects since start: ${count(u.reconnects)}` }));
      if (u.bytes) out.push(monthBytes(u.bytes));
    }
    $('uplink').replaceChildren(...out);
  }
  // The month's bytes on the link (a metered link is paid by the megabyte) and where the month is heading.
  function monthBytes(m) {
    const sum = (o) => Object.values(o).reduce((a, n) => a + n, 0);
    const over = m.monthlyBytes !== null && m.projected > m.monthlyBytes;
    const text = `This month (${m.month}): ${bytes(m.total)} on the link (${bytes(sum(m.sent))} sent, ${bytes(sum(m.received))} received), `
      + `about ${bytes(m.projected)} by the month's end${m.monthlyBytes !== null ? ` of a ${bytes(m.monthlyBytes)} budget` : ''}`
      + (m.stretch > 1 ? `: over budget, telemetry batches wait ${m.stretch} times longer` : '');
    return el('p', { class: over ? 'warn' : '', 'data-month-bytes': '' }, text);
  }
  function renderOutbox(s) {
    const o = s.outbox;
    const out = [el('h2', { text: 'Stored on the gateway' })];
    const oldest = o.oldestTs !== null ? now() - o.oldestTs : 0;
    out.push(el('p', { class: `big ${oldest > 5 * 60_000 ? 'warn' : ''}`, text: o.samples === 0
      ? 'Waiting to send: nothing, every reading delivered'
      : `Waiting to send: ${count(o.samples)} samples, oldest ${ago(oldest)}` }));
    if (o.drainPerS && s.uplink.state === 'connected') out.push(el('p', { text: `Sending ${count(Math.round(o.drainPerS))} samples/s${o.etaS > 5 ? `, empty in about ${ago(o.etaS * 1000)}` : ''}` }));
    if (o.events > 0) out.push(el('p', { class: 'muted', text: `plus ${count(o.events)} events (alarms, notices), sent first` }));
    if (o.state !== 'ok') out.push(el('p', { class: 'bad state', text: `Storage refuses writes (${o.state}): ${count(o.pending)} readings held in memory` }));
    if (o.maxBytes) {
      const pct = Math.min(100, (100 * o.bytes) / o.maxBytes);
      out.push(el('p', { text: `Storage used: ${bytes(o.bytes)} of ${bytes(o.maxBytes)} (${Math.round(pct)}%)` }));
      const bar = el('div', { class: `bar ${pct > 90 ? 'bad' : pct > 70 ? 'warn' : ''}` }, el('span'));
      bar.firstChild.style.width = `${pct}%`;
      out.push(bar);
    }
    if (o.droppedTotal > 0) {
      const why = Object.entries(o.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${DROP[r] || r}: ${count(n)}`).join(', ');
      out.push(el('p', { class: 'bad', text: `Dropped before sending: ${count(o.droppedTotal)} samples (${why})` }));
    } else out.push(el('p', { class: 'muted', text: 'Nothing dropped' }));
    $('outbox').replaceChildren(...out);
  }

  // ---- buses, devices, points
  let shape = '';
  const rows = new Map(); // "device\0point" -> { row, val, age, why, spark, plot, drawn }
  const devs = new Map();
  const busHeads = new Map(); // bus id -> { link, det, body }
  const openBuses = new Set();
  function renderCommissioning(s) {
    for (const b of s.buses) {
      const h = busHeads.get(b.id);
      if (h && h.det.open) window.fieldgateCommission.renderBus(el, h.body, b);
    }
  }
  function build(s) {
    for (const r of rows.values()) r.plot?.destroy();
    rows.clear(); devs.clear(); busHeads.clear();
    $('buses').replaceChildren(...s.buses.map((b) => {
      const link = el('span');
      const body = el('div', { class: 'cbody' });
      const det = el('details', { class: 'commissioning', 'data-bus': b.id, open: openBuses.has(b.id) }, el('summary', { text: 'Commissioning: what each unit was asked, what came back, the likely cause' }), body);
      det.addEventListener('toggle', () => { if (det.open) { openBuses.add(b.id); if (snap) renderCommissioning(snap); } else openBuses.delete(b.id); });
      busHeads.set(b.id, { link, det, body });
      return el('section', { class: 'bus' },
        el('h2', {}, `Bus ${b.id}`, el('span', { class: 'muted', text: `${TRANSPORT[b.transport] || b.transport} · ${b.target}` }), link), det,
        el('div', { class: 'devices' }, b.devices.map((d) => {
          const refs = { pill: el('span', { class: 'pill' }), info: el('p', { class: 'muted' }), errs: el('p', { class: 'muted' }), last: el('p') };
          const plotAll = el('button', { type: 'button', class: 'plot-all', text: 'Plot', title: `${d.id}: its points over the last hour, overlaid by unit` });
          plotAll.addEventListener('click', () => plots.zoomDevice(d.id));
          const card = el('article', { class: 'card device' }, el('div', { class: 'head' }, el('h3', { text: d.id }), el('span', { class: 'head-right' }, plotAll, refs.pill)), refs.info, refs.errs, refs.last,
            el('div', { class: 'points' }, d.points.map((p) => pointRow(d.id, p))));
          devs.set(d.id, { card, ...refs });
          return card;
        })));
    }));
  }
  function pointRow(device, p) {
    const key = `${device}\u0000${p.id}`;
    const r = { val: el('span', { class: 'val' }), age: el('span', { class: 'age' }), why: el('p', { class: 'why', hidden: true }),
      spark: el('div', { class: 'spark', tabindex: '0', role: 'button', 'aria-label': `plot of ${p.id}, last hour`, title: 'Last hour (click to enlarge)' }) };
    r.row = el('div', { class: 'pt' }, el('span', { class: 'name', title: p.description, text: p.id }), r.val, r.age, r.spark, r.why);
    const open = () => plots.zoom(device, p.id, p.unit);
    r.spark.addEventListener('click', open);
    r.spark.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') open(); });
    rows.set(key, r);
    return r.row;
  }
  function updateDevices(s) {
    for (const b of s.buses) {
      const { link } = busHeads.get(b.id);
      const cls = { connected: 'ok', connecting: 'warn', disconnected: 'bad' }[b.link] || 'none';
      link.className = `state dot ${cls}`;
      link.textContent = b.link === 'disconnected' ? 'DISCONNECTED' : b.link;
      for (const d of b.devices) {
        const r = devs.get(d.id);
        const failing = d.state === 'failing' || d.stale;
        r.card.classList.toggle('failing', failing);
        r.pill.className = `pill ${failing ? 'bad' : d.state === 'unknown' ? 'none' : ''}`;
        r.pill.textContent = d.state === 'failing' ? 'NOT ANSWERING' : d.stale ? 'NO GOOD READING' : d.state === 'unknown' ? 'not polled yet' : 'answering';
        r.info.textContent = `Last good reply: ${d.lastGoodTs ? since(d.lastGoodTs) : 'none yet'} · read every ${ago(d.pollIntervalMs)}`;
        const errs = Object.entries(d.errors).map(([k, n]) => `${k} ${count(n)}`).join(', ');
        r.errs.textContent = `${count(d.requests)} requests, ${d.errorCount ? `${count(d.errorCount)} failed (${errs})` : 'no errors'}`;
        r.last.className = d.state === 'failing' ? 'bad' : 'muted';
        r.last.hidden = !d.lastError;
        r.last.textContent = d.lastError ? `Last error: ${d.lastError}${d.state === 'failing' && d.backoffMs ? `; next try within ${ago(d.backoffMs)}` : ''}` : '';
        for (const p of d.points) updatePoint(d.id, p);
      }
    }
  }
  function updatePoint(device, p) {
    const key = `${device}\u0000${p.id}`;
    const r = rows.get(key);
    r.row.className = `pt ${p.quality || 'none'}${p.alarm ? ' alarmed' : ''}`;
    r.val.replaceChildren(value(p.value), p.unit && p.value !== null && p.value !== undefined ? el('small', { text: p.unit }) : '');
    r.age.textContent = p.ts ? ago(now() - p.ts) : 'no reading';
    const why = p.quality && p.quality !== 'good'
      ? `${p.quality === 'bad' ? 'Bad reading' : 'Uncertain'}${p.reason ? `: ${p.reason}` : ''}${p.lastGood ? ` (last good ${value(p.lastGood.value)}${p.unit ? ` ${p.unit}` : ''}, ${since(p.lastGood.ts)})` : ''}`
      : '';
    r.why.hidden = !why;
    r.why.textContent = why;
    if (p.bucket) plots.extend(key, p.bucket);
    plots.draw(key, r);
  }

  // ---- render and live feed
  function render(s) {
    snap = s;
    $('gw').textContent = s.gateway.id;
    $('version').textContent = `fieldgate ${s.gateway.version}`;
    const announced = s.alarms.active.filter((a) => a.shelvedUntil === undefined).length;
    document.title = `${announced ? `(${announced} alarm${announced > 1 ? 's' : ''}) ` : ''}${s.gateway.id}: fieldgate status`;
    renderAlarms(s); renderAttention(s); renderUplink(s); renderOutbox(s); renderRecent(s);
    const next = JSON.stringify(s.buses.map((b) => [b.id, b.devices.map((d) => [d.id, d.points.map((p) => p.id)])]));
    if (next !== shape) { build(s); shape = next; }
    updateDevices(s);
    renderCommissioning(s);
    tools.update(s);
    plots.updateNow();
  }
  let lastMessage = 0;
  function setLive(ok, text) {
    const live = $('live');
    live.classList.toggle('off', !ok);
    live.textContent = text;
    $('main').classList.toggle('stale', !ok && snap !== null);
  }
  function connect() {
    const es = new EventSource(withToken('/events'));
    es.onopen = () => plots.loadHistory(rows);
    es.onmessage = (m) => {
      const s = JSON.parse(m.data);
      skew = s.now - Date.now();
      lastMessage = Date.now();
      // The gateway widened its plot buckets (many points): reload the hour at the new width.
      if (plots.loadedBucketMs() && s.plotBucketMs !== plots.loadedBucketMs()) void plots.loadHistory(rows);
      render(s);
      setLive(true, `Live · updated ${new Date(s.now).toLocaleTimeString()}`);
    };
    es.onerror = () => {
      setLive(false, 'Connection to the gateway lost, retrying…');
      // A refused stream (wrong token, too many pages) is not retried by the browser itself.
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }
  setInterval(() => {
    if (snap && Date.now() - lastMessage > 15_000) setLive(false, `No news from the gateway for ${ago(Date.now() - lastMessage)}, retrying…`);
    else if (snap) { renderAlarms(snap); renderUplink(snap); renderOutbox(snap); updateDevices(snap); plots.updateNow(); }
  }, 1000);
  $('api-link').href = withToken('/api/status');
  $('metrics-link').href = withToken('/metrics');
  connect();
})();
