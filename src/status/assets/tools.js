// fieldgate status page: the tools behind the token. Writing a writable point and acknowledging, shelving or
// unshelving an alarm go through the gateway's command guard and audit (as the cloud's commands do); reading a
// register and scanning a bus run on the live bus between its polls. Offered only when status.token is configured,
// and only after a person typed it here: it is kept in this tab's sessionStorage and sent in the Authorization
// header, never in a URL. Every text goes in through textContent.
'use strict';
(() => {
  const KEY = 'fieldgate.tools.token';
  const NAME = 'fieldgate.tools.by';
  const TYPES = ['uint16', 'int16', 'uint32', 'int32', 'float32', 'uint64', 'int64', 'float64', 'string'];
  const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
  const FCS = [['3', '3 holding registers'], ['4', '4 input registers'], ['1', '1 coils'], ['2', '2 discrete inputs']];
  const SHELVE = [[900, '15 min'], [3600, '1 h'], [8 * 3600, '8 h']];

  function create({ el, withToken, value }) {
    const box = document.getElementById('tools');
    let info = null;
    let token = sessionStorage.getItem(KEY) || '';
    let alarmKey = null;
    let alarmList = null;

    const by = () => sessionStorage.getItem(NAME) || undefined;
    async function call(method, path, body) {
      const res = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const data = await res.json().catch(() => ({ message: `answered ${res.status}` }));
      if (res.status === 401) lock('The token was not accepted: type it again.');
      return { ok: res.ok, status: res.status, data };
    }
    /** A command's result in words: done with what was read back, or the guard's reason. */
    function said(out, r, unit) {
      const u = unit ? ` ${unit}` : '';
      if (!r.ok) { out.className = 'result bad'; out.textContent = r.data.message || `refused (${r.status})`; return; }
      const c = r.data;
      out.className = `result ${c.status === 'done' ? 'ok' : 'bad'}`;
      out.textContent = c.status === 'done'
        ? `Done${c.value !== undefined ? `: wrote ${value(c.value)}${u}` : ''}${c.readBack !== undefined ? `, read back ${value(c.readBack)}${u}` : ''}`
        : `${c.status === 'rejected' ? 'Refused' : c.status === 'expired' ? 'Expired' : 'Failed'}: ${c.reason || ''}`;
    }
    const field = (label, input) => el('label', { class: 'field' }, el('span', { text: label }), input);
    const select = (name, options, selected) => el('select', { name }, options.map(([v, t]) => el('option', { value: v, text: t ?? v, selected: String(v) === String(selected) })));
    const num = (name, v, min, max) => el('input', { name, type: 'number', inputmode: 'numeric', value: v, min, max, required: true });

    function lock(why) {
      token = '';
      sessionStorage.removeItem(KEY);
      render(why);
    }

    function unlockForm(why) {
      const tok = el('input', { id: 'tools-token', type: 'password', autocomplete: 'current-password', required: true });
      const name = el('input', { id: 'tools-by', type: 'text', maxlength: '64', autocomplete: 'name', placeholder: 'status-page', value: by() });
      const out = el('p', { class: `result ${why ? 'bad' : ''}`, text: why || '' });
      const form = el('form', { class: 'unlock' },
        el('p', { text: 'Writing a point, acknowledging or shelving an alarm, reading registers and scanning a bus need the access token (status.token), typed here. It is kept in this tab only.' }),
        field('Access token', tok), field('Your name, for the audit', name), el('button', { type: 'submit', text: 'Unlock the tools' }), out);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        token = tok.value.trim();
        if (name.value.trim()) sessionStorage.setItem(NAME, name.value.trim()); else sessionStorage.removeItem(NAME);
        const r = await call('POST', '/api/tools/unlock', {});
        if (!r.ok) return;
        sessionStorage.setItem(KEY, token);
        render();
      });
      return form;
    }

    function writeRow(w) {
      const limits = [w.min !== undefined && `min ${value(w.min)}`, w.max !== undefined && `max ${value(w.max)}`, w.step !== undefined && `step ${value(w.step)}`].filter(Boolean).join(', ');
      const input = w.type === 'bool'
        ? select('value', [['true', 'on (true)'], ['false', 'off (false)']])
        : w.values
          ? select('value', w.values.map((v) => [JSON.stringify(v), String(v)]))
          : el('input', { name: 'value', type: w.type === 'string' ? 'text' : 'number', step: 'any', min: w.min, max: w.max, required: true, inputmode: 'decimal' });
      const out = el('p', { class: 'result', 'aria-live': 'polite' });
      const form = el('form', { class: 'write', 'data-point': `${w.device}.${w.point}` },
        el('span', { class: 'what' }, el('b', { text: `${w.device} · ${w.point}` }), el('span', { class: 'muted', text: ` ${w.type}${w.unit ? `, ${w.unit}` : ''}${limits ? ` (${limits})` : ''}` })),
        input, el('button', { type: 'submit', text: 'Write' }), out);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const raw = input.value;
        const v = w.type === 'bool' ? raw === 'true' : w.values ? JSON.parse(raw) : w.type === 'string' ? raw : Number(raw);
        out.className = 'result'; out.textContent = 'Writing…';
        said(out, await call('POST', '/api/tools/write', { device: w.device, point: w.point, value: v, by: by() }), w.unit);
      });
      return form;
    }

    function alarmRow(a) {
      const out = el('p', { class: 'result', 'aria-live': 'polite' });
      const act = (action, extra) => async () => {
        out.className = 'result'; out.textContent = '…';
        said(out, await call('POST', '/api/tools/alarm', { action, device: a.device, point: a.point, alarm: a.alarm, by: by(), ...extra }));
      };
      const note = el('input', { type: 'text', maxlength: '200', placeholder: 'note (optional)', 'aria-label': 'note' });
      const dur = select('duration', SHELVE, 3600);
      const btn = (text, fn) => { const b = el('button', { type: 'button', text }); b.addEventListener('click', fn); return b; };
      const withNote = () => (note.value.trim() ? { note: note.value.trim() } : {});
      const state = el('span', { class: 'muted' });
      const row = el('div', { class: 'alarm-act', 'data-alarm': `${a.device}.${a.point}.${a.alarm}` },
        el('span', { class: 'what' }, el('b', { text: a.message || `${a.type} alarm on ${a.point}` }), state),
        note,
        el('span', { class: 'buttons' },
          btn('Acknowledge', () => act('ack', withNote())()),
          dur, btn('Shelve', () => act('shelve', { durationS: Number(dur.value), ...withNote() })()),
          btn('Unshelve', () => act('unshelve', withNote())())),
        out);
      const show = (x) => { state.textContent = ` ${x.device} · ${x.point} · ${x.isa || x.state}${x.shelvedUntil ? ', shelved' : ''}`; };
      show(a);
      return { row, show };
    }

    function readForm(buses) {
      const f = { bus: select('bus', buses.map((b) => [b.id])), unit: num('unit', 1, 1, 247), fc: select('fc', FCS, '3'), address: num('address', 0, 0, 65535),
        type: select('type', TYPES.map((t) => [t]), 'float32'), order: select('order', ORDERS.map((o) => [o]), 'ABCD'), count: num('count', 1, 1, 125) };
      const out = el('div', { class: 'result', 'aria-live': 'polite' });
      const form = el('form', { class: 'read grid' }, field('Bus', f.bus), field('Unit', f.unit), field('Function', f.fc), field('Address (0-based)', f.address),
        field('Type', f.type), field('Word order', f.order), field('How many', f.count), el('button', { type: 'submit', text: 'Read' }), out);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        out.className = 'result'; out.textContent = 'Reading…';
        const body = { bus: f.bus.value, unit: +f.unit.value, fc: +f.fc.value, address: +f.address.value, type: f.type.value, order: f.order.value, count: +f.count.value };
        const r = await call('POST', '/api/tools/read', body);
        if (!r.ok || r.data.status !== 'done') { out.className = 'result bad'; out.textContent = r.data.reason || r.data.message || 'failed'; return; }
        const res = r.data.result;
        const bits = res.fc === 1 || res.fc === 2;
        const width = res.values.length ? res.registers.length / res.values.length : 1;
        out.className = 'result ok';
        out.replaceChildren(el('p', { text: `Unit ${res.unit} answered in ${Math.round(res.ms)} ms` }), el('table', { class: 'readout' },
          el('thead', {}, el('tr', {}, ['address', 'value', bits ? '' : 'registers'].map((h) => el('th', { text: h })))),
          el('tbody', {}, res.values.map((v, i) => el('tr', {},
            el('td', { text: String(res.address + i * width) }), el('td', { class: 'val', text: JSON.stringify(v) }),
            el('td', { text: bits ? '' : res.registers.slice(i * width, (i + 1) * width).map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ') }))))));
      });
      return form;
    }

    function scanForm(buses) {
      const f = { bus: select('bus', buses.map((b) => [b.id])), from: num('from', 1, 1, 247), to: num('to', 247, 1, 247), fc: select('fc', FCS, '3'), address: num('address', 0, 0, 65535), timeoutMs: num('timeoutMs', 200, 20, 1000) };
      const progress = el('div', { class: 'scan-progress', 'aria-live': 'polite' });
      const cancel = el('button', { type: 'button', text: 'Cancel', hidden: true });
      const form = el('form', { class: 'scan grid' }, field('Bus', f.bus), field('From unit', f.from), field('To unit', f.to), field('Function', f.fc), field('Address', f.address),
        field('Timeout per unit (ms)', f.timeoutMs), el('span', { class: 'buttons' }, el('button', { type: 'submit', text: 'Scan' }), cancel), progress);
      let timer = null;
      const show = (job) => {
        const running = job.state === 'running';
        cancel.hidden = !running;
        const found = job.found || [];
        const pct = job.total ? Math.round((100 * job.tried) / job.total) : 0;
        const bar = el('div', { class: 'bar' }, el('span'));
        bar.firstChild.style.width = `${pct}%`;
        const head = running ? `Scanning unit ${job.unit ?? job.from} (${job.tried} of ${job.total}), ${found.length} found`
          : job.state === 'none' ? '' : `${job.state === 'cancelled' ? 'Cancelled' : job.state === 'failed' ? 'Stopped' : 'Done'}: ${job.tried} of ${job.total} units asked, ${found.length} answered${job.reason ? `. ${job.reason}` : ''}`;
        progress.replaceChildren(el('p', { class: job.state === 'failed' ? 'bad' : '', text: head }), job.state !== 'none' ? bar : '',
          el('ul', { class: 'found' }, found.map((h) => el('li', { text: `unit ${h.unit}: ${h.message} (${Math.round(h.ms)} ms)` }))));
        if (!running && timer) { clearInterval(timer); timer = null; }
      };
      const follow = () => {
        if (timer) return;
        timer = setInterval(async () => {
          const r = await call('GET', `/api/tools/scan?bus=${encodeURIComponent(f.bus.value)}`);
          if (r.ok) show(r.data); else { clearInterval(timer); timer = null; }
        }, 500);
      };
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const r = await call('POST', '/api/tools/scan', { bus: f.bus.value, from: +f.from.value, to: +f.to.value, fc: +f.fc.value, address: +f.address.value, timeoutMs: +f.timeoutMs.value });
        if (!r.ok) { progress.replaceChildren(el('p', { class: 'bad', text: r.data.message })); return; }
        show(r.data);
        follow();
      });
      cancel.addEventListener('click', () => call('POST', '/api/tools/scan/cancel', { bus: f.bus.value }));
      return form;
    }

    function render(why) {
      alarmKey = null;
      if (!info) return;
      if (!info.enabled) {
        box.replaceChildren(el('h2', { text: 'Tools' }), el('p', { class: 'muted', id: 'tools-off', text: 'Writing points, acknowledging or shelving alarms, reading registers and scanning buses are offered only when the gateway has an access token: set status.token in its configuration.' }));
        return;
      }
      if (!token) { box.replaceChildren(el('h2', { text: 'Tools' }), unlockForm(why)); return; }
      const lockBtn = el('button', { type: 'button', class: 'lock', text: 'Lock' });
      lockBtn.addEventListener('click', () => lock());
      alarmList = el('div', { class: 'alarm-acts' });
      alarmRows.clear();
      const parts = [el('h2', {}, 'Tools', lockBtn),
        el('p', { class: 'hint', text: `Writes and alarm actions go through the gateway's command guard, as the cloud's do: judged against the configuration, audited, valid for ${info.ttlS} s. Signed ${by() || 'status-page'}.` })];
      if (info.commands) {
        parts.push(el('h3', { text: 'Write a point' }), info.writable.length
          ? el('div', { class: 'writes' }, info.writable.map(writeRow))
          : el('p', { class: 'muted', text: 'No point is writable: a point needs write: in the configuration.' }));
        parts.push(el('h3', { text: 'Alarms: acknowledge, shelve, unshelve' }), alarmList);
      } else parts.push(el('p', { class: 'muted', text: 'This gateway takes no commands: no writes or alarm actions here.' }));
      if (info.buses.length) {
        parts.push(el('h3', { text: 'Read registers' }), readForm(info.buses),
          el('h3', { text: 'Scan a bus for answering units' }), scanForm(info.buses),
          el('p', { class: 'hint', text: 'Reads and scans share the live bus with its polls, one request at a time: polling slows down while a scan runs, it does not stop. A unit answering with an exception is there (it lacks that register).' }));
      }
      box.replaceChildren(...parts);
      if (lastSnap) renderAlarmActs(lastSnap);
    }

    let lastSnap = null;
    /** Rows by alarm, kept while the alarm is listed: a result stays readable when its state changes. */
    const alarmRows = new Map();
    /** The alarm actions follow the active alarms of the snapshot. */
    function renderAlarmActs(s) {
      const list = s.alarms.active;
      const key = JSON.stringify(list.map((a) => [a.device, a.point, a.alarm, a.isa, a.state, a.shelvedUntil]));
      if (key === alarmKey) return;
      alarmKey = key;
      const next = new Map();
      for (const a of list) {
        const id = `${a.device}\u0000${a.point}\u0000${a.alarm}`;
        const r = alarmRows.get(id) || alarmRow(a);
        r.show(a);
        next.set(id, r);
      }
      alarmRows.clear();
      for (const [id, r] of next) alarmRows.set(id, r);
      alarmList.replaceChildren(...(list.length ? [...next.values()].map((r) => r.row) : [el('p', { class: 'muted', text: 'No active alarm to act on.' })]));
    }

    async function load() {
      try {
        const res = await fetch(withToken('/api/tools'));
        if (!res.ok) return;
        info = await res.json();
        render();
      } catch { /* the next snapshot tries again */ }
    }
    load();
    return {
      update(s) {
        lastSnap = s;
        if (alarmList && box.contains(alarmList)) renderAlarmActs(s);
      },
      refresh: load,
    };
  }

  window.fieldgateTools = { create };
})();
