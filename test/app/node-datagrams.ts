import dgram from 'node:dgram';
import { formatIpv4, parseIpv4 } from '../../src/wire/address.js';
import type { DatagramFactory, DatagramSocket, SocketError } from '../../src/app/transport.js';

/**
 * The app seams over the host's own UDP (node:dgram), for interop tests against real tools on
 * 127.0.0.1 and the loopback benchmarks.
 *
 * Every address handed to node:dgram here is a literal, so the socket's `lookup` answers at once
 * instead of going through dns.lookup (which defers even a literal to the next tick). That makes
 * `bind` synchronous — `open` throws EADDRINUSE as the DatagramFactory contract says — and an
 * unconnected send costs no extra tick.
 */
export const nodeDatagrams: DatagramFactory = {
  open(options): DatagramSocket {
    const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
    let bindError: SocketError | undefined;
    const errorListeners: ((e: SocketError) => void)[] = [];
    socket.on('error', (e) => {
      if (errorListeners.length === 0) bindError ??= e;
      for (const listener of errorListeners) listener(e);
    });
    socket.bind(options.port ?? 0, options.address !== undefined ? textOf(options.address) : '127.0.0.1');
    if (bindError) {
      socket.close();
      throw bindError;
    }
    const peer = options.peer;
    // node:dgram reports a connect in the next tick: sends made until then wait for it.
    let waiting: Uint8Array[] | undefined;
    if (peer) {
      waiting = [];
      socket.connect(peer.port, textOf(peer.address), () => {
        const queued = waiting ?? [];
        waiting = undefined;
        if (!closed) for (const data of queued) socket.send(data);
      });
    }
    let closed = false;
    return {
      get localPort() {
        return socket.address().port;
      },
      send: (data, port, address) => {
        if (closed) return;
        if (!peer) socket.send(data, port, textOf(address));
        else if (waiting) waiting.push(data);
        else socket.send(data);
      },
      // Each message is a fresh Buffer: viewed, not copied. A connected socket hears only its peer
      // (connect(2)), so its one peer object serves every message.
      onMessage: (listener) =>
        socket.on('message', (msg, rinfo) => listener(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), peer ?? { address: addressOf(rinfo.address), port: rinfo.port })),
      onError: (listener) => errorListeners.push(listener),
      close: () => {
        if (closed) return;
        closed = true;
        socket.close();
      },
    };
  },
};

/** dns.lookup's shape for the literal IPv4 addresses this module passes: answered synchronously. */
function literalLookup(address: string, _options: unknown, callback: (error: Error | null, address: string, family: number) => void): void {
  callback(null, address, 4);
}

// The peers are few (loopback): their text and numeric forms are parsed once.
const numeric = new Map<string, number>();
const text = new Map<number, string>();
function addressOf(address: string): number {
  let n = numeric.get(address);
  if (n === undefined) numeric.set(address, (n = parseIpv4(address)));
  return n;
}
function textOf(address: number): string {
  let t = text.get(address);
  if (t === undefined) text.set(address, (t = formatIpv4(address)));
  return t;
}
