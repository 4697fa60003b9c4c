import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Clock } from '../../time/clock.js';
import type { Net, Server } from '../../socket/net.js';
import type { LayerCountersSnapshot, NamedCounters } from '../../stats/counters.js';
import type { StackTables } from '../../stats/rows.js';

/**
 * The board's own page on its LAN (`--serve http:80`): Node's http.Server, fed connections
 * accepted by spinet's TCP. Small and read-only: what the board is, how long it has been up, its
 * address and link, and its counters. Nothing about the computer running the stack and nothing
 * to change: the operator console (on the host's 127.0.0.1) is where everything else is.
 * `/` is the page, `/status.json` the same as data.
 */
export interface StatusSource {
  readonly hostname: string;
  readonly clock: Clock;
  tables(): StackTables;
  counters(): Readonly<Record<string, LayerCountersSnapshot>>;
  /** Counters of transports plugged into the stack (TCP), shown with the layers' own. */
  transportCounters?(): { readonly tcp?: NamedCounters };
}

export interface BoardStatus {
  readonly hostname: string;
  readonly uptimeS: number;
  readonly interfaces: readonly { readonly name: string; readonly mac: string; readonly addresses: readonly string[]; readonly linkUp: boolean; readonly rxFrames: number; readonly txFrames: number }[];
  /** Every layer's counters, then each transport's (`tcp`). */
  readonly counters: Readonly<Record<string, LayerCountersSnapshot | NamedCounters | undefined>>;
}

export function boardStatus(source: StatusSource, startedAt: number): BoardStatus {
  return {
    hostname: source.hostname,
    uptimeS: Math.floor((source.clock.now() - startedAt) / 1000),
    interfaces: source.tables().interfaces.map((i) => ({ name: i.name, mac: i.mac, addresses: i.addresses, linkUp: i.linkUp, rxFrames: i.rxFrames, txFrames: i.txFrames })),
    counters: { ...source.counters(), ...source.transportCounters?.() },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d ? `${d} d` : '', d || h ? `${h} h` : '', d || h || m ? `${m} min` : '', `${s} s`].filter(Boolean).join(' ');
}

function isLayer(value: LayerCountersSnapshot | NamedCounters | undefined): value is LayerCountersSnapshot {
  return value !== undefined && typeof value.received === 'number' && typeof value.sent === 'number' && typeof value.dropped === 'object';
}

export function renderStatusPage(status: BoardStatus): string {
  const rows = Object.entries(status.counters)
    .filter((entry): entry is [string, LayerCountersSnapshot] => isLayer(entry[1]))
    .map(([layer, c]) => {
      const dropped = Object.values(c.dropped).reduce((n, v) => n + v, 0);
      return `<tr><th scope="row">${escapeHtml(layer)}</th><td>${c.received}</td><td>${c.sent}</td><td>${dropped}</td></tr>`;
    })
    .join('');
  const tcp = status.counters.tcp as NamedCounters | undefined;
  const tcpRow = tcp && typeof tcp.segmentsReceived === 'number' ? `<tr><th scope="row">tcp</th><td>${tcp.segmentsReceived}</td><td>${tcp.segmentsSent}</td><td>${tcp.retransmittedSegments} retransmitted</td></tr>` : '';
  const interfaces = status.interfaces
    .map(
      (i) =>
        `<dt>Address</dt><dd>${escapeHtml(i.addresses.join(', ') || 'none yet')}</dd>` +
        `<dt>Link</dt><dd class="${i.linkUp ? 'up' : 'down'}">${i.linkUp ? 'up' : 'down'}</dd>` +
        `<dt>MAC</dt><dd>${escapeHtml(i.mac)}</dd>` +
        `<dt>Frames</dt><dd>${i.rxFrames} in, ${i.txFrames} out</dd>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>spinet — ${escapeHtml(status.hostname)}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:40rem;color:#1d2430;background:#fafbfc}
h1{font-size:1.5rem;margin:.2rem 0}p{margin:.4rem 0 1rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{color:#5b6472}dd{margin:0;font-variant-numeric:tabular-nums}.up{color:#17803d}.down{color:#b42318}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{text-align:right;padding:.25rem .5rem;border-bottom:1px solid #e3e6ea}
th[scope=row],thead th:first-child{text-align:left}footer{margin-top:1rem;color:#5b6472;font-size:.9rem}
@media (prefers-color-scheme:dark){body{color:#e6e9ee;background:#14171c}th,td{border-color:#2b3038}dt,footer{color:#9aa3b0}}
</style></head><body>
<h1>spinet on ${escapeHtml(status.hostname)}</h1>
<p>This board's network stack is spinet: TCP/IP written in TypeScript, running on a computer the board is connected to.
The board's Ethernet chip sends and receives the frames; this page came over the stack's own TCP.</p>
<dl><dt>Up for</dt><dd>${duration(status.uptimeS)}</dd>${interfaces}</dl>
<h2>Counters</h2>
<table><thead><tr><th>Layer</th><th>Received</th><th>Sent</th><th>Dropped</th></tr></thead><tbody>${rows}${tcpRow}</tbody></table>
<footer>Read-only. The same as data: <a href="/status.json">status.json</a>.</footer>
</body></html>
`;
}

export function startStatusPage(net: Net, port: number, source: StatusSource): Promise<Server> {
  const startedAt = source.clock.now();
  const http = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain' });
      response.end('read-only\n');
    } else if (path === '/status.json') {
      response.writeHead(200, { ...headers, 'content-type': 'application/json' });
      response.end(JSON.stringify(boardStatus(source, startedAt), null, 2));
    } else if (path === '/' || path === '/index.html') {
      response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
      response.end(renderStatusPage(boardStatus(source, startedAt)));
    } else {
      response.writeHead(404, { ...headers, 'content-type': 'text/plain' });
      response.end('not found\n');
    }
  });
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    http.emit('connection', socket);
  });
  server.on('close', () => http.close());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
