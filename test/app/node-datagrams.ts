import dgram from 'node:dgram';
import { formatIpv4, parseIpv4 } from '../../src/wire/address.js';
import type { DatagramFactory, DatagramSocket, SocketError } from '../../src/app/transport.js';

/**
 * The app seams over the host's own UDP (node:dgram), for interop tests against real tools on
 * 127.0.0.1. Bind errors arrive through onError (node binds asynchronously).
 */
export const nodeDatagrams: DatagramFactory = {
  open(options): DatagramSocket {
    const socket = dgram.createSocket('udp4');
    const errorListeners: ((e: SocketError) => void)[] = [];
    socket.on('error', (e) => errorListeners.forEach((l) => l(e)));
    socket.bind(options.port ?? 0, options.address !== undefined ? formatIpv4(options.address) : '127.0.0.1');
    const peer = options.peer;
    // node:dgram connects asynchronously: sends made meanwhile wait for it.
    let waiting: Uint8Array[] | undefined;
    if (peer) {
      waiting = [];
      socket.connect(peer.port, formatIpv4(peer.address), () => {
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
      // each message is a fresh Buffer: viewed, not copied
      onMessage: (listener) => socket.on('message', (msg, rinfo) => listener(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), { address: addressOf(rinfo.address), port: rinfo.port })),
      onError: (listener) => errorListeners.push(listener),
      close: () => {
        if (closed) return;
        closed = true;
        socket.close();
      },
    };
  },
};

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
