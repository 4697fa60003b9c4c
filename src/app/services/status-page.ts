import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Net, Server } from '../../socket/net.js';

/**
 * The board's status page: Node's own http.Server, fed connections accepted by spinet's TCP.
 * `/` is HTML (counters, interfaces, ARP, routes, sockets), `/status.json` the same as data,
 * `/tables.txt` the netstat/arp/route text.
 */
export interface StatusSource {
  readonly hostname: string;
  tables(): unknown;
  counters(): object;
  /** Counters of transports plugged into the stack (TCP), shown with the layers' own. */
  transportCounters?(): object;
  formatTables(): string;
}

/** Every counter the source has: the stack's layers, then its transports (`tcp`). */
function allCounters(source: StatusSource): object {
  return { ...source.counters(), ...source.transportCounters?.() };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function renderStatusPage(source: StatusSource, extra: Record<string, string> = {}): string {
  const counters = JSON.stringify(allCounters(source), null, 2);
  const extraRows = Object.entries(extra)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>spinet — ${escapeHtml(source.hostname)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}pre{background:#f4f4f4;padding:1em;overflow:auto}th{text-align:left;padding-right:1em}</style>
</head><body>
<h1>spinet on ${escapeHtml(source.hostname)}</h1>
<p>A TCP/IP stack running on the host, driving the board's Ethernet chip over SPI. This page is Node's own
<code>http.Server</code> on spinet's TCP.</p>
<table>${extraRows}</table>
<h2>Interfaces, ARP, routes, sockets</h2>
<pre>${escapeHtml(source.formatTables())}</pre>
<h2>Counters</h2>
<pre>${escapeHtml(counters)}</pre>
<p><a href="/status.json">status.json</a> · <a href="/tables.txt">tables.txt</a></p>
</body></html>
`;
}

export function startStatusPage(net: Net, port: number, source: StatusSource, extra: () => Record<string, string> = () => ({})): Promise<Server> {
  const http = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/status.json') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ hostname: source.hostname, ...extra(), tables: source.tables(), counters: allCounters(source) }, null, 2));
    } else if (path === '/tables.txt') {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(source.formatTables() + '\n');
    } else if (path === '/' || path === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(renderStatusPage(source, extra()));
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
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
