import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/wire/address.js';
import { SeededRandom, randomFill, randomBelow } from '../../src/time/random.js';
import type { TcpConnection } from '../../src/tcp/connection.js';
import { TcpListener, type Tcp } from '../../src/tcp/tcp.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import { TestNetwork, concat, sha256, type NetworkFaults } from './harness.js';

const A = parseIpv4('192.0.2.1');
const B = parseIpv4('192.0.2.2');

interface Endpoint {
  conn: TcpConnection;
  received: Uint8Array[];
  ended: boolean;
  error?: string;
  toSend: Uint8Array;
  offset: number;
  closed: boolean;
}

/** Pump an endpoint: write as much as fits, read everything, shut down when done. */
function attach(conn: TcpConnection, toSend: Uint8Array): Endpoint {
  const ep: Endpoint = { conn, received: [], ended: false, toSend, offset: 0, closed: false };
  const pump = () => {
    while (ep.offset < toSend.length) {
      const n = conn.write(toSend.subarray(ep.offset, Math.min(toSend.length, ep.offset + 5000)));
      if (typeof n !== 'number' || n === 0) break;
      ep.offset += n;
    }
    if (ep.offset === toSend.length && !ep.closed && conn.state !== 'SYN-SENT' && conn.state !== 'SYN-RECEIVED') {
      ep.closed = true;
      conn.shutdown();
    }
  };
  conn.events = {
    onConnect: pump,
    onWritable: pump,
    onReadable: () => {
      for (;;) {
        const d = conn.read();
        if (d.length === 0) break;
        ep.received.push(d);
      }
      if (conn.endOfStream) ep.ended = true;
    },
    onError: (code) => (ep.error = code),
  };
  if (conn.state === 'ESTABLISHED' || conn.state === 'CLOSE-WAIT') pump();
  return ep;
}

export function runTransfer(seed: number, faults: NetworkFaults, sizeA: number, sizeB: number, options: Partial<TcpOptions> = {}, limitMs = 600_000) {
  const net = new TestNetwork(faults, seed);
  const a = net.addHost(A, options, seed * 2 + 1);
  const b = net.addHost(B, options, seed * 2 + 2);
  const rng = new SeededRandom(seed);
  const dataA = randomFill(rng, new Uint8Array(sizeA));
  const dataB = randomFill(rng, new Uint8Array(sizeB));
  const listener = a.listen({ port: 80 }) as TcpListener;
  let server: Endpoint | undefined;
  listener.onConnection = () => {
    const c = listener.accept()!;
    server = attach(c, dataA);
  };
  const conn = b.connect({ remoteAddress: A, remotePort: 80 }) as TcpConnection;
  const client = attach(conn, dataB);
  const start = net.clock.now();
  while (net.clock.now() - start < limitMs) {
    const next = net.clock.nextDeadline();
    if (next === undefined) break;
    net.clock.advanceTo(next);
    if (client.ended && server?.ended && conn.state === 'TIME-WAIT') break;
  }
  return { net, a, b, client, server: server!, dataA, dataB, conn, elapsed: net.clock.now() - start };
}

describe('bulk transfer over a fake network', () => {
  it('given a clean wire, both directions arrive byte-exact and the connection closes', () => {
    const r = runTransfer(1, { delay: 5 }, 200_000, 150_000);
    expect(r.client.error).toBeUndefined();
    expect(sha256(concat(r.client.received))).toBe(sha256(r.dataA));
    expect(sha256(concat(r.server.received))).toBe(sha256(r.dataB));
    expect(r.client.ended && r.server.ended).toBe(true);
    expect(r.conn.state).toBe('TIME-WAIT');
  });

  it('given loss, duplication, reordering and corruption, transfers over many seeds stay byte-exact', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = new SeededRandom(seed * 7919);
      const faults: NetworkFaults = {
        delay: 1 + randomBelow(rng, 20),
        loss: randomBelow(rng, 10) / 100,
        duplicate: randomBelow(rng, 5) / 100,
        reorder: randomBelow(rng, 20) / 100,
        jitter: 30,
        corrupt: randomBelow(rng, 3) / 100,
      };
      const sack = seed % 2 === 0;
      const ts = seed % 3 !== 0;
      const r = runTransfer(seed, faults, 20_000 + randomBelow(rng, 60_000), randomBelow(rng, 40_000), { sack, timestamps: ts, minRto: 200 });
      const ctx = `seed ${seed} ${JSON.stringify(faults)} sack=${sack} ts=${ts}`;
      expect(r.client.error, ctx).toBeUndefined();
      expect(r.server.error, ctx).toBeUndefined();
      expect(sha256(concat(r.client.received)), ctx).toBe(sha256(r.dataA));
      expect(sha256(concat(r.server.received)), ctx).toBe(sha256(r.dataB));
      expect(r.client.ended && r.server.ended, ctx).toBe(true);
    }
  });
});

export type { Tcp };
