// The spinet operator console in the browser: renders what the host pushes (Server-Sent Events
// from tools/console/server.ts), plots it with uPlot, and shows frames with the path each took
// through the stack. No build step, no network access beyond this page's own origin.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'title' || k === 'role' || k === 'scope') node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
    return node;
  };
  const fill = (tbody, rows) => {
    tbody.replaceChildren(...rows.map((cells) => el('tr', {}, ...cells.map((c) => (c instanceof Node ? c : el('td', { text: c === undefined ? '' : String(c) }))))));
  };
  const num = (value) => el('td', { class: 'num', text: String(value) });
  const bytes = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${Math.round(n)} B`);
  const rate = (n) => `${bytes(n)}/s`;
  const seconds = (s) => {
    if (!Number.isFinite(s)) return '∞';
    const sign = s < 0 ? '−' : '';
    s = Math.abs(s);
    if (s >= 86400) return `${sign}${(s / 86400).toFixed(1)} d`;
    if (s >= 3600) return `${sign}${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    if (s >= 60) return `${sign}${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
    return `${sign}${s.toFixed(s < 10 ? 1 : 0)} s`;
  };
  const ms = (v) => (v === undefined || v === null ? '–' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
  const connectionKey = (c) => `${c.localAddress}:${c.localPort}-${c.remoteAddress}:${c.remotePort}`;

  // ------------------------------------------------------------------ state

  // Sections are rebuilt only when their data changed: cheaper on a phone, and a busy tab keeps up.
  const previous = {};
  const changed = (key, value) => {
    const text = JSON.stringify(value);
    if (previous[key] === text) return false;
    previous[key] = text;
    return true;
  };

  function renderState(s) {
    $('board').textContent = `${s.hostname} · ${s.board} · up ${seconds(s.uptimeS)}`;
    if (changed('interfaces', s.interfaces)) fill($('interfaces').tBodies[0], s.interfaces.map((i) => [i.name, i.mac, num(i.mtu), el('td', { class: i.linkUp ? 'up' : 'down', text: i.linkUp ? 'up' : 'down' }), i.addresses.join(' ') || '–', num(i.rxFrames), num(i.txFrames)]));
    renderDhcp(s);
    if (changed('arp', s.arp.map((e) => [e.address, e.mac, e.state, Math.round((e.ageMs || 0) / 1000), e.queued]))) fill($('arp').tBodies[0], s.arp.map((e) => [e.address, e.mac || '(incomplete)', e.state, e.ageMs === undefined ? '–' : seconds(e.ageMs / 1000), e.expiresInMs === undefined ? '–' : seconds(e.expiresInMs / 1000), num(e.queued)]));
    const name = (index) => (s.interfaces.find((i) => i.index === index) || {}).name || `#${index}`;
    if (changed('routes', s.routes)) fill($('routes').tBodies[0], s.routes.map((r) => [`${r.destination}/${r.prefixLength}`, r.gateway || 'on-link', name(r.interfaceIndex), num(r.metric), r.origin]));
    if (changed('sockets', s.sockets)) fill($('socket-table').tBodies[0], s.sockets.map((r) => [r.protocol, `${r.localAddress}:${r.localPort}`, r.remoteAddress === undefined ? '*:*' : `${r.remoteAddress}:${r.remotePort}`, r.state || '', num(r.receiveQueue || 0), num(r.sendQueue || 0), r.timer === undefined ? '' : r.timer === 'off' ? 'off' : `${r.timer} (${seconds((r.timerRemaining || 0) / 1000)})`]));
    if (changed('tcp', s.tcp)) renderTcp(s);
    if (changed('counters', [s.counters, s.nic.drops, s.nic.rxFrames, s.nic.txFrames, s.tcpCounters])) renderCounters(s);
    if (changed('link', [s.link, s.chip])) renderLink(s);
    renderPlots(s);
  }

  function renderDhcp(s) {
    const dl = $('dhcp');
    const pairs = [];
    if (!s.dhcp) pairs.push(['State', 'static address (no DHCP)']);
    else {
      pairs.push(['State', s.dhcp.state]);
      const l = s.dhcp.lease;
      if (l) {
        pairs.push(['Address', l.address], ['Server', l.server], ['Router', l.routers.join(', ') || '–'], ['DNS', l.dns.join(', ') || '–'], ['Lease', seconds(l.leaseTimeS)]);
        pairs.push(['Renew (T1) in', seconds(l.renewInS)], ['Rebind (T2) in', seconds(l.rebindInS)], ['Expires in', seconds(l.expiresInS)]);
      }
    }
    pairs.push(['DNS servers in use', s.dnsServers.join(', ') || '–']);
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  }

  function renderTcp(s) {
    const box = $('tcp');
    const connections = s.tcp.filter((c) => c.info);
    if (connections.length === 0) {
      box.replaceChildren(el('p', { class: 'muted', text: 'No TCP connection open.' }));
      return;
    }
    box.replaceChildren(
      ...connections.map((c) => {
        const i = c.info;
        const sack = (blocks) => (blocks.length ? blocks.map((b) => `${b.left}–${b.right}`).join(' ') : '–');
        const rows = [
          ['state', i.state],
          ['snd.una / nxt / max', `${i.sndUna} / ${i.sndNxt} / ${i.sndMax}`],
          ['snd.wnd (peer window)', bytes(i.sndWnd)],
          ['rcv.nxt', String(i.rcvNxt)],
          ['rcv.wnd (advertised)', `${bytes(i.rcvWnd)} (${bytes(i.receiveSpace)} free)`],
          ['cwnd / ssthresh', `${i.cwnd} / ${i.ssthresh > 1e9 ? '∞' : i.ssthresh} (${i.congestionControl})`],
          ['in flight', `${i.bytesInFlight} B${i.inRecovery ? ' — in recovery' : ''}`],
          ['srtt / rttvar / rto', `${ms(i.srtt)} / ${ms(i.rttvar)} / ${ms(i.rto)}`],
          ['retransmitted', `${i.retransmittedSegments} segments (backoff ${i.backoff})`],
          ['SACK from peer', sack(i.peerSackBlocks)],
          ['SACK we report', sack(i.ourSackBlocks)],
          ['timers', i.timers.length ? i.timers.map((t) => `${t.name} ${ms(t.remainingMs)}`).join(', ') : 'none'],
          ['mss / wscale', `${i.sendMss} / snd ${i.sndScale} rcv ${i.rcvScale}${i.sack ? ' · sack' : ''}${i.timestamps ? ' · ts' : ''}`],
          ['queues', `send ${bytes(i.sendQueue)} (${bytes(i.unsent)} unsent) · receive ${bytes(i.receiveQueue)}`],
          ['bytes', `${bytes(i.bytesAcked)} acked · ${bytes(i.bytesReceived)} received`],
        ];
        return el(
          'div',
          { class: 'card tcp-card', 'data-connection': connectionKey(c) },
          el('h3', { text: `${c.localAddress}:${c.localPort} ⇄ ${c.remoteAddress}:${c.remotePort}` }),
          el('dl', { class: 'pairs' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { class: k === 'state' ? 'state' : '', text: v, 'data-field': k })])),
        );
      }),
    );
  }

  function renderCounters(s) {
    fill(
      $('counter-table').tBodies[0],
      Object.entries(s.counters).map(([layer, c]) => {
        const reasons = Object.entries(c.dropped).filter(([, n]) => n > 0);
        return [layer, num(c.received), num(c.sent), num(reasons.reduce((n, [, v]) => n + v, 0)), reasons.map(([r, n]) => `${r} ${n}`).join(', ') || '–'];
      }).concat([['nic', num(s.nic.rxFrames), num(s.nic.txFrames), num(Object.values(s.nic.drops).reduce((a, b) => a + b, 0)), Object.entries(s.nic.drops).map(([r, n]) => `${r} ${n}`).join(', ') || '–']]),
    );
    const flat = [];
    const walk = (o, prefix) => {
      for (const [k, v] of Object.entries(o || {})) {
        if (typeof v === 'number') flat.push([prefix + k, v]);
        else walk(v, `${prefix}${k}.`);
      }
    };
    walk(s.tcpCounters, '');
    $('tcp-counters').replaceChildren(...flat.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: String(v), 'data-counter': k }))));
  }

  function meter(value, max, label) {
    const m = el('meter', { class: 'meter', min: 0, max: Math.max(1, max), value: Math.min(value, max), 'aria-label': label });
    return m;
  }

  function renderLink(s) {
    const b = s.link;
    if (b) {
      const st = b.stats;
      const pairs = [
        ['Link', `${b.status.state}${b.status.board ? ` · board ${b.status.board}, protocol v${b.status.protocolVersion}` : ''}`],
        ['Line rate', `${b.status.baudRate} baud = ${rate(b.lineBytesPerSecond)} each way`],
        ['To board', `${rate(b.toBoardBytesPerSecond)} (${Math.round((100 * b.toBoardBytesPerSecond) / b.lineBytesPerSecond)} % of the line)`],
        ['From board', `${rate(b.fromBoardBytesPerSecond)} (${Math.round((100 * b.fromBoardBytesPerSecond) / b.lineBytesPerSecond)} % of the line)`],
        ['Frames', `${st.framesSent} sent, ${st.framesReceived} received`],
        ['CRC errors', `${st.badFrames} frames`],
        ['Retransmits', `${st.retransmittedFrames} frames (${st.naks} NAKs, ${st.timeouts} timeouts)`],
        ['Lost replies', `${st.lostReplies} (${st.retries} retried)`],
        ['Resyncs', String(st.resyncs)],
        ['Reconnects', String(st.reconnects)],
        ['Board resets', String(st.boardResets)],
        ['Credits', `${b.status.creditUsed} of ${b.status.creditWindow} bytes in use (peak ${st.peakCreditUsed})`],
        ['Receive runs', `${st.runsReported} streamed by the board, ${st.runsLost} lost`],
      ];
      $('bridge').replaceChildren(
        el('dl', { class: 'pairs', id: 'bridge-pairs' }, ...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v, 'data-field': k })])),
        el('p', { class: 'small muted', text: 'to board' }),
        meter(b.toBoardBytesPerSecond, b.lineBytesPerSecond, 'to board, share of the line rate'),
        el('p', { class: 'small muted', text: 'from board' }),
        meter(b.fromBoardBytesPerSecond, b.lineBytesPerSecond, 'from board, share of the line rate'),
      );
    }
    const c = s.chip;
    if (c) {
      const pairs = [
        ['Chip', c.chip],
        ['Link', c.linkUp ? `up, ${c.speedMbps} Mbit/s` : 'down'],
        ['Silicon', c.revision || '?'],
        ['Receive filter', c.promiscuous ? 'off (promiscuous)' : 'unicast to us, broadcast, multicast when joined'],
        ['Receive buffer', `${c.ringUsed} of ${c.ringBytes} bytes (${Math.round((100 * c.ringUsed) / c.ringBytes)} %)`],
        // The W5500 counts bytes, not frames, and does not report overflows.
        ['Packets waiting', c.packetsWaiting === undefined ? `not counted by the ${c.chip}` : String(c.packetsWaiting)],
        ['Overflows', c.overflows === undefined ? `not reported by the ${c.chip}` : String(c.overflows)],
        ['Transmit errors', String(c.transmitErrors)],
        ['Transmit queue', `${c.transmitQueue} frames`],
      ];
      $('chip').replaceChildren(
        el('dl', { class: 'pairs', id: 'chip-pairs' }, ...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v, class: k === 'Link' ? (c.linkUp ? 'up' : 'down') : '', 'data-field': k })])),
        meter(c.ringUsed, c.ringBytes, 'receive ring fill'),
      );
    }
  }

  // ------------------------------------------------------------------ plots

  const KEEP = 240; // two minutes at two points a second
  const plots = {};
  const series = { t: [], rx: [], tx: [], line: [], srtt: [], rto: [], cwnd: [], ssthresh: [], flight: [], ring: [] };
  const colors = ['#1f77b4', '#d62728', '#7f7f7f', '#2ca02c'];

  function makePlot(id, labels) {
    const box = $(id);
    const opts = {
      width: Math.max(240, box.clientWidth || 300),
      height: 200,
      legend: { live: false },
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 1.5, points: { show: false } }))],
    };
    const plot = new uPlot(opts, [[], ...labels.map(() => [])], box);
    new ResizeObserver(() => plot.setSize({ width: Math.max(240, box.clientWidth), height: 200 })).observe(box);
    return plot;
  }

  function push(array, value) {
    array.push(value);
    if (array.length > KEEP) array.shift();
  }

  function chosenConnection(s) {
    const select = $('plot-connection');
    const open = s.tcp.filter((c) => c.info);
    const keys = open.map(connectionKey);
    const current = select.value;
    const options = [...select.options].map((o) => o.value);
    if (keys.join('|') !== options.filter(Boolean).join('|')) {
      select.replaceChildren(...(keys.length ? keys.map((k) => el('option', { value: k, text: k.replace('-', ' ⇄ ') })) : [el('option', { value: '', text: '(none yet)' })]));
      // Stay with the chosen connection while it lives; otherwise follow the newest.
      select.value = keys.includes(current) ? current : keys[keys.length - 1] || '';
    }
    return open.find((c) => connectionKey(c) === select.value);
  }

  function renderPlots(s) {
    if (typeof uPlot === 'undefined') return;
    if (!plots.throughput) {
      plots.throughput = makePlot('plot-throughput', ['received', 'sent', 'serial line rate']);
      plots.rtt = makePlot('plot-rtt', ['srtt', 'rto']);
      plots.cwnd = makePlot('plot-cwnd', ['cwnd', 'ssthresh', 'in flight']);
      plots.ring = makePlot('plot-ring', ['ring fill']);
    }
    const c = chosenConnection(s);
    const i = c && c.info;
    push(series.t, s.epochMs / 1000);
    push(series.rx, s.nic.rxBytesPerSecond);
    push(series.tx, s.nic.txBytesPerSecond);
    push(series.line, s.link ? s.link.lineBytesPerSecond : null);
    push(series.srtt, i && i.srtt !== undefined ? i.srtt : null);
    push(series.rto, i ? i.rto : null);
    push(series.cwnd, i ? i.cwnd : null);
    push(series.ssthresh, i && i.ssthresh < 1e9 ? i.ssthresh : null);
    push(series.flight, i ? i.bytesInFlight : null);
    push(series.ring, s.chip ? (100 * s.chip.ringUsed) / s.chip.ringBytes : null);
    const update = (name, data) => {
      plots[name].setData([series.t, ...data]);
      const box = $(`plot-${name}`);
      box.dataset.points = String(series.t.length);
      box.dataset.last = data.map((d) => d[d.length - 1]).join(',');
      box.dataset.max = data.map((d) => Math.max(0, ...d.filter((v) => v !== null))).join(',');
    };
    update('throughput', [series.rx, series.tx, series.line]);
    update('rtt', [series.srtt, series.rto]);
    update('cwnd', [series.cwnd, series.ssthresh, series.flight]);
    update('ring', [series.ring]);
  }

  // ------------------------------------------------------------------ live connection

  function live(state, text) {
    $('live').className = `live ${state}`;
    $('live-text').textContent = text;
  }

  const events = new EventSource('/api/events');
  events.addEventListener('state', (e) => {
    live('up', 'live');
    renderState(JSON.parse(e.data));
  });
  events.addEventListener('error', () => live('down', 'reconnecting…'));

  // ------------------------------------------------------------------ frames

  const MAX_ROWS = 1000;
  const list = $('frame-list');
  let frameSource;
  let paused = false;
  let held = [];
  let selected;

  function frameRow(f) {
    const button = el('button', { type: 'button', class: f.direction, 'data-id': String(f.id), text: `${f.time} ${f.direction.padEnd(3)} ${f.line}`, title: f.line });
    return el('li', {}, button);
  }

  function appendFrames(frames) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(...frames.map(frameRow));
    while (list.children.length > MAX_ROWS) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
    count();
  }

  function count() {
    $('frame-count').textContent = `${list.children.length} shown${paused ? `, ${held.length} waiting (paused)` : ''}`;
  }

  function composeFilter() {
    const typed = $('filter').value.trim();
    const extra = [];
    if ($('filter-protocol').value) extra.push($('filter-protocol').value);
    if ($('filter-host').value.trim()) extra.push(`host ${$('filter-host').value.trim()}`);
    if ($('filter-port').value.trim()) extra.push(`port ${$('filter-port').value.trim()}`);
    return [typed && extra.length ? `(${typed})` : typed, ...extra].filter(Boolean).join(' and ');
  }

  async function subscribe(filter) {
    const response = await fetch(`/api/filter?expr=${encodeURIComponent(filter)}`);
    const answer = await response.json();
    if (answer.error) {
      $('filter-error').textContent = `Filter: ${answer.error}`;
      return;
    }
    $('filter-error').textContent = '';
    if (frameSource) frameSource.close();
    held = [];
    list.replaceChildren();
    frameSource = new EventSource(`/api/frames?filter=${encodeURIComponent(filter)}`);
    frameSource.addEventListener('frames', (e) => appendFrames(JSON.parse(e.data)));
    frameSource.addEventListener('frame', (e) => {
      const f = JSON.parse(e.data);
      if (paused) {
        held.push(f);
        count();
      } else appendFrames([f]);
    });
    list.dataset.filter = filter;
  }

  $('frame-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    void subscribe(composeFilter());
  });

  function setPaused(on) {
    paused = on;
    $('pause').setAttribute('aria-pressed', String(on));
    $('pause').textContent = on ? 'Resume' : 'Pause';
    if (!on && held.length) {
      const batch = held;
      held = [];
      appendFrames(batch);
    }
    count();
  }
  $('pause').addEventListener('click', () => setPaused(!paused));

  async function openFrame(id, button) {
    if (selected) selected.removeAttribute('aria-current');
    selected = button;
    if (button) button.setAttribute('aria-current', 'true');
    const response = await fetch(`/api/frame/${id}`);
    const f = await response.json();
    const detail = $('frame-detail');
    detail.hidden = false;
    detail.dataset.id = String(id);
    document.querySelector('.frames').classList.add('open');
    if (f.error) {
      $('detail-title').textContent = `Frame ${id}`;
      $('detail-line').textContent = f.error;
      for (const id2 of ['detail-did', 'detail-steps', 'detail-layers']) $(id2).replaceChildren();
      $('detail-hex').textContent = '';
      return;
    }
    $('detail-title').textContent = `Frame ${f.id} · ${f.direction === 'out' ? 'sent' : 'received'} · ${f.length} bytes`;
    $('detail-line').textContent = `${f.time} ${f.interface} ${f.direction} ${f.line}`;
    const tcpStep = f.steps.find((s) => s.layer === 'tcp');
    const did = $('detail-did');
    did.replaceChildren();
    if (tcpStep) {
      const retransmission = /RETRANSMISSION/.test(tcpStep.decision);
      did.append(
        el('h4', { text: 'What it did to the connection' }),
        el('p', {}, el('span', { class: `badge${retransmission ? ' bad' : ''}`, text: retransmission ? 'retransmission' : f.direction === 'out' ? 'first transmission' : 'received' }), ' ', el('span', { id: 'detail-tcp', text: tcpStep.decision })),
      );
    }
    $('detail-steps').replaceChildren(
      ...(f.steps.length
        ? f.steps.map((s) => el('li', { 'data-layer': s.layer }, el('span', { class: 'layer', text: s.layer }), el('span', { class: 'at', text: `+${s.atMs.toFixed(3)} ms` }), el('span', { class: 'decision', text: s.decision })))
        : [el('li', { class: 'muted', text: 'Not traced: the layers report only while a console page is open, and this frame passed before.' })]),
    );
    $('detail-layers').replaceChildren(
      ...f.layers.map((l) =>
        el('div', { class: 'scroll' }, el('table', { 'data-layer': l.name }, el('caption', { class: 'sr-only', text: l.name }), el('thead', {}, el('tr', {}, el('th', { colSpan: 2, text: l.name }))), el('tbody', {}, ...l.fields.map(([k, v]) => el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { text: v })))))),
      ),
    );
    $('detail-hex').textContent = f.hex.join('\n');
  }

  function closeFrame() {
    $('frame-detail').hidden = true;
    document.querySelector('.frames').classList.remove('open');
    if (selected) {
      selected.removeAttribute('aria-current');
      selected.focus();
    }
  }
  $('detail-close').addEventListener('click', closeFrame);

  list.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-id]');
    if (button) void openFrame(button.dataset.id, button);
  });
  list.addEventListener('keydown', (e) => {
    const button = e.target.closest('button[data-id]');
    if (!button) return;
    const li = button.parentElement;
    const next = e.key === 'ArrowDown' ? li.nextElementSibling : e.key === 'ArrowUp' ? li.previousElementSibling : e.key === 'Home' ? list.firstElementChild : e.key === 'End' ? list.lastElementChild : undefined;
    if (next) {
      e.preventDefault();
      next.firstElementChild.focus();
    }
  });
  document.addEventListener('keydown', (e) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement && document.activeElement.tagName);
    if (e.key === 'Escape' && !$('frame-detail').hidden) closeFrame();
    else if (!typing && e.key === '/') {
      e.preventDefault();
      $('filter').focus();
    } else if (!typing && e.key === 'p' && !e.ctrlKey && !e.metaKey && !e.altKey) setPaused(!paused);
  });

  void subscribe('');
})();
