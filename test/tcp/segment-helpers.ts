import type { TcpConnection } from '../../src/tcp/connection.js';
import type { TcpListener } from '../../src/tcp/tcp.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import { F, REMOTE, SegmentHarness, type SegmentSpec } from './harness.js';

/**
 * Options off, so segments are easy to state exactly; tests of options turn them on. The timer
 * figures in these tests are worked out with RFC 6298's 1 s minimum RTO (spinet's default is
 * lower: see options.ts and the test of the default in timers.test.ts).
 */
export const PLAIN: Partial<TcpOptions> = { timestamps: false, sack: false, windowScaling: false, minRto: 1000 };
export const PEER_ISN = 1000;

export interface Recorded {
  events: string[];
}

export function record(conn: TcpConnection): Recorded {
  const r: Recorded = { events: [] };
  conn.events = {
    onConnect: () => r.events.push('connect'),
    onReadable: () => r.events.push('readable'),
    onWritable: () => r.events.push('writable'),
    onError: (code) => r.events.push(`error ${code}`),
    onClosed: () => r.events.push('closed'),
  };
  return r;
}

/** LISTEN on port 80, three-way handshake from REMOTE:40000. */
export function passiveOpen(h: SegmentHarness, syn: Partial<SegmentSpec> = {}, ack: Partial<SegmentSpec> = {}) {
  const listener = h.tcp.listen({ port: 80 }) as TcpListener;
  h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1460, ...syn });
  const synAck = h.takeOne();
  h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: synAck.sequence + 1, ...ack });
  const conn = listener.accept()!;
  const rec = record(conn);
  return { listener, conn, rec, iss: synAck.sequence, synAck };
}

/** connect() from local port 80 to REMOTE:40000 (so injected defaults match), SYN-ACK answered. */
export function activeOpen(h: SegmentHarness, iss?: number, synAck: Partial<SegmentSpec> = {}) {
  const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80, initialSequenceNumber: iss }) as TcpConnection;
  const rec = record(conn);
  const syn = h.takeOne();
  h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 1460, ...synAck });
  const ack = h.takeOne();
  return { conn, rec, iss: syn.sequence, syn, ack };
}

export function bytes(n: number, fill = 0x61): Uint8Array {
  return new Uint8Array(n).fill(fill);
}
