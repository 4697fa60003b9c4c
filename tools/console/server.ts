/**
 * The operator console: the host's own page about the board it drives, served by the host's
 * node:http on 127.0.0.1 — never by the board's stack, so nothing on the board's LAN can reach it.
 * Read-only: it shows, it changes nothing.
 *
 *   /                     the page (assets/index.html, console.js, console.css; uPlot from node_modules)
 *   /api/state            one snapshot (state.ts) as JSON
 *   /api/events           Server-Sent Events: a snapshot every half second ("state")
 *   /api/frames?filter=F  Server-Sent Events: recent frames, then each new one ("frame"), through
 *                         spinet log's filter language (400 with the reason if F does not parse)
 *   /api/filter?expr=F    does F parse ({ ok } or { error })
 *   /api/frame/ID         one frame layer by layer, in hex, and the path it took ("follow a packet")
 *
 * While a page is open the layers report to the trace hook (follow a packet); when the last one
 * closes the hook is off again, so an unwatched console costs the stack nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { SpinetNode } from '../node.js';
import { ConsoleStateSource } from './state.js';
import type { PacketTraceRecorder, TracedFrame } from '../../src/capture/packet-trace.js';
import { decodeFrame, formatHex, formatSummary, frameLayers, type FrameSummary } from '../../src/capture/decode.js';
import { formatCaptureTime } from '../../src/capture/text-log.js';
import { compileFilter, FilterError, type FramePredicate } from '../../src/capture/filter.js';

/** How often the state is pushed. */
const STATE_INTERVAL_MS = 500;
/** Frames sent to a page when it (re)subscribes. */
const BACKLOG_FRAMES = 300;

export interface ConsoleServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const ASSETS: Record<string, { readonly path: string; readonly type: string }> = {
  '/': { path: fileURLToPath(new URL('./assets/index.html', import.meta.url)), type: 'text/html; charset=utf-8' },
  '/console.js': { path: fileURLToPath(new URL('./assets/console.js', import.meta.url)), type: 'text/javascript; charset=utf-8' },
  '/console.css': { path: fileURLToPath(new URL('./assets/console.css', import.meta.url)), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { path: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { path: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** What a page's frame log gets per frame: enough to show and filter it, not its bytes. */
function frameLine(frame: TracedFrame, summary: FrameSummary = decodeFrame(frame.bytes)) {
  return {
    id: frame.id,
    time: formatCaptureTime(frame.timestampMs),
    direction: frame.direction,
    interface: frame.interfaceName,
    protocol: summary.tcp ? 'tcp' : summary.udp ? 'udp' : summary.icmp ? 'icmp' : summary.arp ? 'arp' : summary.ipv4 ? 'ip' : 'other',
    line: formatSummary(summary),
    traced: frame.steps.length > 0,
  };
}

/** The whole frame for the detail view: layers, bytes, and what each layer decided, in time order. */
function frameDetail(frame: TracedFrame) {
  const summary = decodeFrame(frame.bytes);
  const first = frame.steps[0]?.timeMs ?? 0;
  return {
    ...frameLine(frame, summary),
    length: frame.bytes.length,
    layers: frameLayers(summary),
    hex: formatHex(frame.bytes).split('\n').map((l) => l.trim()),
    steps: frame.steps.map((s) => ({ layer: s.layer, direction: s.direction, decision: s.decision, atMs: s.timeMs - first })),
  };
}

/** Host headers a page on this console can come with: a DNS-rebinding page cannot. */
function allowedHost(host: string | undefined, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
}

export async function startConsole(node: SpinetNode, recorder: PacketTraceRecorder, options: { port: number }): Promise<ConsoleServer> {
  const states = new ConsoleStateSource(node);
  const stateClients = new Set<ServerResponse>();
  const frameClients = new Map<ServerResponse, FramePredicate>();
  let latest = states.snapshot();
  let port = options.port;

  const watching = () => {
    recorder.attach(node.trace, stateClients.size + frameClients.size > 0);
  };
  const send = (response: ServerResponse, event: string, data: unknown) => response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const timer = setInterval(() => {
    latest = states.snapshot();
    for (const client of stateClients) send(client, 'state', latest);
  }, STATE_INTERVAL_MS);
  const unsubscribe = recorder.onFrame((frame) => {
    if (frameClients.size === 0) return;
    const summary = decodeFrame(frame.bytes);
    for (const [client, predicate] of frameClients) if (predicate(summary)) send(client, 'frame', frameLine(frame, summary));
  });

  const eventStream = (request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    response.write('retry: 1000\n\n');
    request.on('close', () => {
      stateClients.delete(response);
      frameClients.delete(response);
      watching();
    });
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://console');
    if (!allowedHost(request.headers.host, port)) {
      response.writeHead(421, { 'content-type': 'text/plain' });
      response.end('this console answers only as 127.0.0.1 or localhost\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain' });
      response.end('read-only\n');
      return;
    }
    const asset = ASSETS[url.pathname === '/index.html' ? '/' : url.pathname];
    if (asset) {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type });
      response.end(readFileSync(asset.path));
      return;
    }
    if (url.pathname === '/api/state') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
      response.end(JSON.stringify(states.snapshot()));
      return;
    }
    if (url.pathname === '/api/events') {
      eventStream(request, response);
      stateClients.add(response);
      watching();
      send(response, 'state', latest);
      return;
    }
    if (url.pathname === '/api/filter') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
      try {
        compileFilter(url.searchParams.get('expr') ?? '');
        response.end(JSON.stringify({ ok: true }));
      } catch (error) {
        response.end(JSON.stringify({ error: error instanceof FilterError ? `${error.message} (at character ${error.position + 1})` : String(error) }));
      }
      return;
    }
    if (url.pathname === '/api/frames') {
      let predicate: FramePredicate;
      try {
        predicate = compileFilter(url.searchParams.get('filter') ?? '');
      } catch (error) {
        const message = error instanceof FilterError ? `${error.message} (at character ${error.position + 1})` : String(error);
        response.writeHead(400, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: message }));
        return;
      }
      eventStream(request, response);
      const backlog = recorder
        .frames()
        .filter((f) => predicate(decodeFrame(f.bytes)))
        .slice(-BACKLOG_FRAMES)
        .map((f) => frameLine(f));
      send(response, 'frames', backlog);
      frameClients.set(response, predicate);
      watching();
      return;
    }
    const frameMatch = /^\/api\/frame\/(\d+)$/.exec(url.pathname);
    if (frameMatch) {
      const frame = recorder.frame(Number(frameMatch[1]));
      response.writeHead(frame ? 200 : 404, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
      response.end(JSON.stringify(frame ? frameDetail(frame) : { error: 'that frame is no longer kept' }));
      return;
    }
    response.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain' });
    response.end('not found\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Loopback only: the board's LAN reaches the board's stack, never this host's sockets.
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: async () => {
      clearInterval(timer);
      unsubscribe();
      recorder.attach(node.trace, false);
      for (const client of [...stateClients, ...frameClients.keys()]) client.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
