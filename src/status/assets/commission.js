// fieldgate status page: the commissioning table of each bus and the alarm journal.
// Every text goes in through textContent (el's `text`), never as HTML: a raw line from a sensor is shown as it came.
'use strict';
(() => {
  const nf = new Intl.NumberFormat('en-US');
  const n = (v) => nf.format(v);
  const ms = (v) => (v === null || v === undefined ? '—' : `${nf.format(Math.round(v))} ms`);
  const hms = (ts) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  /** The commissioning table of one bus (its <details> body), rebuilt from the snapshot's counters. */
  function renderBus(el, box, bus) {
    const c = bus.commissioning;
    const line = bus.transport === 'line';
    const head = line
      ? ['device', 'lines', 'good', 'timeouts', 'bad checksums', 'overlong', 'unparsed', 'likely cause']
      : ['unit', 'requests', 'good replies', 'timeouts', 'CRC errors', 'exceptions', 'last reply', 'p95', 'likely cause'];
    const rows = c.units.map((u) => {
      const cause = u.causes.length ? u.causes.join('; ') : 'answering normally';
      const cells = line
        ? [u.device, n(u.requests), n(u.replies), n(u.timeouts), n(u.checksum), n(u.overlong), n(u.parse)]
        : [`${u.unit ?? '?'} (${u.device})`, n(u.requests), n(u.replies), n(u.timeouts), n(u.crc),
          Object.keys(u.exceptions).length ? Object.entries(u.exceptions).map(([code, k]) => `${code}: ${n(k)}`).join(', ') : '0',
          ms(u.lastResponseMs), ms(u.p95ResponseMs)];
      return el('tr', { class: u.causes.length && u.causes[0] !== 'not asked yet' ? 'trouble' : '', 'data-device': u.device },
        cells.map((t, i) => el('td', { text: t, 'data-col': head[i] })), el('td', { class: 'cause', text: cause, 'data-col': 'likely cause' }));
    });
    const parts = [];
    if (c.cause) parts.push(el('p', { class: 'bad cause-bus', text: `Likely cause: ${c.cause}` }));
    parts.push(el('div', { class: 'scroll' }, el('table', { class: 'commission' },
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))), el('tbody', {}, rows))));
    if (c.line) {
      const errs = Object.entries(c.line.errors).map(([k, v]) => `${k} ${n(v)}`).join(', ');
      parts.push(el('p', { class: 'muted', text: `Lines received on the bus: ${n(c.line.lines)}${errs ? `; not taken by a device: ${errs}` : ''}` }));
      parts.push(el('p', {}, 'Last raw line: ', c.line.lastLine
        ? el('code', { class: 'raw', text: c.line.lastLine.text, title: `received ${hms(c.line.lastLine.ts)}` })
        : el('span', { class: 'muted', text: 'none yet' })));
    }
    parts.push(el('p', { class: 'hint', text: line
      ? 'Good: lines that parsed with a valid checksum. Counters since the bus started.'
      : 'Good replies include exceptions (the unit answered). Response times over the last 64 replies. Counters since the bus started.' }));
    box.replaceChildren(...parts);
  }

  const KIND = { raised: 'RAISED', cleared: 'cleared', returned: 'returned to normal', acknowledged: 'acknowledged', shelved: 'shelved', unshelved: 'unshelved' };

  /** The alarm journal table, newest first. */
  function renderJournal(el, box, journal, units) {
    if (!journal.entries.length) return box.replaceChildren(el('p', { class: 'muted', text: 'No alarm raised or cleared since the gateway started.' }));
    const rows = journal.entries.map((e) => {
      const unit = units(e.device, e.point);
      const u = unit ? ` ${unit}` : '';
      const reading = e.value === null ? '' : `${e.value}${u}${e.limit !== null ? ` (limit ${e.limit}${u})` : ''}`;
      return el('tr', { class: e.kind },
        el('td', { text: `${new Date(e.ts).toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hms(e.ts)}` }),
        el('td', { class: 'kind', text: `${KIND[e.kind] || e.kind}${e.until ? ` until ${hms(e.until)}` : ''}` }),
        el('td', { text: `${e.message || `${e.alarm} (${e.severity})`}, ${e.device} · ${e.point}` }),
        el('td', { text: reading }),
        el('td', { text: `${e.by === 'gateway' ? 'gateway (alarm rules)' : e.by}${e.note ? `: ${e.note}` : ''}` }));
    });
    box.replaceChildren(el('div', { class: 'scroll' }, el('table', { class: 'journal' },
      el('thead', {}, el('tr', {}, ['when', 'what', 'alarm', 'reading', 'who'].map((h) => el('th', { text: h })))), el('tbody', {}, rows))),
    el('p', { class: 'hint', text: `The last ${journal.size} entries are kept, newest first.` }));
  }

  window.fieldgateCommission = { renderBus, renderJournal };
})();
