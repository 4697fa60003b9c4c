import { describe, expect, it } from 'vitest';
import type { TcpListener } from '../../src/tcp/tcp.js';
import { parseIpv4, type Ipv4Address } from '../../src/wire/address.js';
import type { TcpRepr } from '../../src/wire/tcp.js';
import { SeededRandom, randomBelow } from '../../src/time/random.js';
import { F, LOCAL, REMOTE, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';

/** tcp.ts: a cookie's time counter ticks every 64 s. */
const COOKIE_PERIOD = 64_000;

/** The cookie layout tcp.ts documents: ISS = t (5 bits) ‖ MSS index (2 bits) ‖ 25-bit keyed hash. */
function cookieCounter(iss: number): number {
  return iss >>> 27;
}
function cookieMssIndex(iss: number): number {
  return (iss >>> 25) & 3;
}

/** Segments sent to one peer since the harness's last take (leaves the rest in place). */
function takeTo(h: SegmentHarness, address: Ipv4Address, port: number): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let i = 0; i < h.ip.sent.length; ) {
    const s = h.ip.sent[i]!;
    if (s.options.destination === address && s.seg.destinationPort === port) {
      out.push(s.seg);
      h.ip.sent.splice(i, 1);
    } else {
      i++;
    }
  }
  return out;
}

function listenCounting(h: SegmentHarness, backlog?: number): { listener: TcpListener; accepted: () => number } {
  const listener = h.tcp.listen({ port: 80, ...(backlog !== undefined ? { backlog } : {}) }) as TcpListener;
  let n = 0;
  listener.onConnection = () => n++;
  return { listener, accepted: () => n };
}

describe('TCP listen-side defences', () => {
  it('SYN queue bound: SYNs beyond synBacklog get stateless SYN-cookie SYN-ACKs, no SYN-RECEIVED entries', () => {
    const h = new SegmentHarness({ ...PLAIN, synBacklog: 2 });
    const { listener } = listenCounting(h);
    h.advance(3 * COOKIE_PERIOD + 5); // the cookie time counter is now 3
    h.inject({ flags: F.SYN, sourcePort: 40000, sequence: PEER_ISN, maxSegmentSize: 1460 });
    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN, maxSegmentSize: 1460 });
    expect(h.take().map((s) => [s.flags, s.destinationPort])).toEqual([
      [F.SYN | F.ACK, 40000],
      [F.SYN | F.ACK, 40001],
    ]);
    expect(listener.synQueue.size).toBe(2);
    expect(h.tcp.stats.synCookiesSent).toBe(0);

    // The queue is full: three more SYNs, with MSS 1460, 1300 and none (536 assumed).
    h.inject({ flags: F.SYN, sourcePort: 40002, sequence: PEER_ISN, maxSegmentSize: 1460 });
    h.inject({ flags: F.SYN, sourcePort: 40003, sequence: 7777, maxSegmentSize: 1300 });
    h.inject({ flags: F.SYN, sourcePort: 40004, sequence: 7777 });
    const cookies = h.take();
    expect(cookies).toHaveLength(3);
    expect(cookies[0]).toMatchObject({ flags: F.SYN | F.ACK, sourcePort: 80, destinationPort: 40002, acknowledgment: PEER_ISN + 1, window: 65535, maxSegmentSize: 1460 });
    expect(cookies[1]).toMatchObject({ flags: F.SYN | F.ACK, destinationPort: 40003, acknowledgment: 7778 });
    expect(cookies[2]).toMatchObject({ flags: F.SYN | F.ACK, destinationPort: 40004, acknowledgment: 7778 });
    // The ISS encodes the cookie: time counter 3, and the index of the peer's MSS in [536, 1300, 1440, 1460].
    expect(cookies.map((c) => cookieCounter(c.sequence))).toEqual([3, 3, 3]);
    expect(cookies.map((c) => cookieMssIndex(c.sequence))).toEqual([3, 1, 0]);
    expect(h.tcp.stats.synCookiesSent).toBe(3);

    // Nothing was added beyond the bound.
    expect(listener.synQueue.size).toBe(2);
    expect(h.tcp.connectionCount).toBe(2);
    expect(h.tcp.socketTable().map((r) => [r.state, r.remotePort])).toEqual([
      ['LISTEN', 0],
      ['SYN-RECEIVED', 40000],
      ['SYN-RECEIVED', 40001],
    ]);

    // Stateless: a retransmitted SYN gets the very same cookie, and no cookie SYN-ACK is ever retransmitted.
    h.inject({ flags: F.SYN, sourcePort: 40002, sequence: PEER_ISN, maxSegmentSize: 1460 });
    expect(h.takeOne().sequence).toBe(cookies[0]!.sequence);
    h.advance(1000);
    expect(h.take().map((s) => [s.flags, s.destinationPort])).toEqual([
      [F.SYN | F.ACK, 40000],
      [F.SYN | F.ACK, 40001],
    ]);
  });

  it('SYN queue bound without cookies (synCookies: false): SYNs beyond it are dropped unanswered', () => {
    const h = new SegmentHarness({ ...PLAIN, synBacklog: 2, synCookies: false });
    const { listener } = listenCounting(h);
    for (let p = 0; p < 5; p++) h.inject({ flags: F.SYN, sourcePort: 40000 + p, sequence: PEER_ISN });
    expect(h.take().map((s) => s.destinationPort)).toEqual([40000, 40001]);
    expect(listener.synQueue.size).toBe(2);
    expect(h.tcp.connectionCount).toBe(2);
    expect(h.tcp.stats.dropped.synQueueFull).toBe(3);
    expect(h.tcp.stats.synCookiesSent).toBe(0);
  });

  it('a valid ACK to a cookie SYN-ACK establishes the connection in the accept queue with the cookie MSS; data on it flows', () => {
    const h = new SegmentHarness({ ...PLAIN, synBacklog: 0 });
    const { listener, accepted } = listenCounting(h);
    // MSS 1400 is not in the cookie table: the cookie carries the largest entry not above it, 1300.
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1400 });
    const synAck = h.takeOne();
    expect(cookieMssIndex(synAck.sequence)).toBe(1);
    expect(h.tcp.connectionCount).toBe(0);
    const cookie = synAck.sequence;

    h.advance(40);
    // The completing ACK carries data: it is the first segment of the established connection.
    h.inject({ flags: F.ACK | F.PSH, sequence: PEER_ISN + 1, acknowledgment: (cookie + 1) >>> 0, window: 8000, payload: bytes(5, 0x68) });
    expect(h.tcp.stats.synCookiesAccepted).toBe(1);
    expect(accepted()).toBe(1);
    expect(listener.acceptQueue).toHaveLength(1);
    expect(listener.synQueue.size).toBe(0);
    const conn = listener.accept()!;
    expect(conn).toMatchObject({ state: 'ESTABLISHED', remotePort: 40000, iss: cookie, irs: PEER_ISN, rcvNxt: PEER_ISN + 6, sndUna: (cookie + 1) >>> 0, sndWnd: 8000 });
    expect(conn.peerMss).toBe(1300);
    expect(conn.sendMss).toBe(1300);
    expect([conn.sndScale, conn.rcvScale, conn.sackEnabled, conn.timestampsEnabled]).toEqual([0, 0, false, false]);
    expect(conn.read()).toEqual(bytes(5, 0x68));

    // Our data goes out in 1300-byte segments starting at cookie + 1, carrying the ACK of the 5 bytes.
    expect(conn.write(bytes(2600))).toBe(2600);
    const out = h.take();
    expect(out.map((s) => [s.sequence, s.payload.length, s.acknowledgment])).toEqual([
      [(cookie + 1) >>> 0, 1300, PEER_ISN + 6],
      [(cookie + 1301) >>> 0, 1300, PEER_ISN + 6],
    ]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 6, acknowledgment: (cookie + 2601) >>> 0 });
    expect(conn.sendQueueLength).toBe(0);
    expect(conn.state).toBe('ESTABLISHED');
  });

  it('a cookie carries window scale and SACK-permitted in the TSval low bits; the TSecr brings them back', () => {
    const h = new SegmentHarness({ synBacklog: 0 });
    const { listener } = listenCounting(h);
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 555, echo: 0 } });
    const synAck = h.takeOne();
    expect(synAck).toMatchObject({ flags: F.SYN | F.ACK, acknowledgment: PEER_ISN + 1, maxSegmentSize: 1460, windowScale: 1, sackPermitted: true, timestamp: { echo: 555 } });
    expect(synAck.timestamp!.value & 0x3f).toBe(7 | 0x10);
    expect(h.tcp.connectionCount).toBe(0);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: (synAck.sequence + 1) >>> 0, window: 1000, timestamp: { value: 556, echo: synAck.timestamp!.value } });
    const conn = listener.accept()!;
    expect(conn.state).toBe('ESTABLISHED');
    expect([conn.peerMss, conn.sendMss, conn.sndScale, conn.rcvScale, conn.sackEnabled, conn.timestampsEnabled]).toEqual([1460, 1448, 7, 1, true, true]);
    expect(conn.sndWnd).toBe(1000 << 7);

    // A peer that offered neither gets neither back: no window scale, no SACK on the connection.
    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN, maxSegmentSize: 1460, timestamp: { value: 900, echo: 0 } });
    const plain = h.takeOne();
    expect(plain.windowScale).toBeUndefined();
    expect(plain.sackPermitted).toBeFalsy();
    expect(plain.timestamp!.value & 0x3f).toBe(0x0f);
    h.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (plain.sequence + 1) >>> 0, window: 1000, timestamp: { value: 901, echo: plain.timestamp!.value } });
    const conn2 = listener.accept()!;
    expect([conn2.state, conn2.sndScale, conn2.rcvScale, conn2.sackEnabled, conn2.timestampsEnabled]).toEqual(['ESTABLISHED', 0, 0, false, true]);
    expect(conn2.sndWnd).toBe(1000);
  });

  it('a forged ACK to a cookie (wrong ACK number, wrong sequence, wrong port) gets <SEQ=SEG.ACK><CTL=RST> and no connection', () => {
    const h = new SegmentHarness({ ...PLAIN, synBacklog: 0 });
    const { listener, accepted } = listenCounting(h);
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 536 });
    const cookie = h.takeOne().sequence;
    expect(cookieMssIndex(cookie)).toBe(0);

    const forgeries = [
      { sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: (cookie + 2) >>> 0 },
      { sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: ((cookie ^ 0x100) + 1) >>> 0 },
      // Claims MSS index 1 (1300) for a SYN that earned 0 (536): the index is under the hash too.
      { sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: ((cookie ^ (1 << 25)) + 1) >>> 0 },
      { sourcePort: 40000, sequence: PEER_ISN + 101, acknowledgment: (cookie + 1) >>> 0 },
      { sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (cookie + 1) >>> 0 },
    ];
    for (const f of forgeries) {
      h.inject({ flags: F.ACK, ...f });
      expect(h.takeOne()).toMatchObject({ flags: F.RST, sourcePort: 80, destinationPort: f.sourcePort, sequence: f.acknowledgment >>> 0, acknowledgment: 0 });
    }
    expect(h.tcp.stats.synCookiesRejected).toBe(5);
    expect(h.tcp.stats.synCookiesAccepted).toBe(0);
    expect(h.tcp.connectionCount).toBe(0);
    expect(listener.acceptQueue).toHaveLength(0);
    expect(accepted()).toBe(0);

    // The genuine ACK still completes.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: (cookie + 1) >>> 0 });
    expect(h.take()).toEqual([]);
    expect(listener.accept()?.state).toBe('ESTABLISHED');
  });

  it('a cookie is honoured one time-counter tick later and refused two ticks later (RST)', () => {
    const h = new SegmentHarness({ ...PLAIN, synBacklog: 0 });
    const { listener } = listenCounting(h);
    h.inject({ flags: F.SYN, sourcePort: 40000, sequence: PEER_ISN });
    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN });
    const [old, young] = h.take().map((s) => s.sequence);
    h.advance(COOKIE_PERIOD + 1000); // counter 1: age 1
    h.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (young! + 1) >>> 0 });
    expect(h.take()).toEqual([]);
    expect(listener.accept()?.remotePort).toBe(40001);
    h.advance(COOKIE_PERIOD - 1000); // now 128 s: counter 2, age 2
    h.inject({ flags: F.ACK, sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: (old! + 1) >>> 0 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: (old! + 1) >>> 0 });
    expect(h.tcp.stats.synCookiesRejected).toBe(1);
    expect(h.tcp.connectionCount).toBe(1);
  });

  it('accept-queue bound: with the backlog full a new SYN is dropped unanswered; after accept() it is answered', () => {
    const h = new SegmentHarness(PLAIN);
    const { listener } = listenCounting(h, 1);
    h.inject({ flags: F.SYN, sourcePort: 40000, sequence: PEER_ISN });
    const synAck = h.takeOne();
    h.inject({ flags: F.ACK, sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: (synAck.sequence + 1) >>> 0 });
    expect(listener.acceptQueue).toHaveLength(1);

    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN });
    expect(h.take()).toEqual([]);
    expect(h.tcp.stats.dropped.acceptQueueFull).toBe(1);
    expect(h.tcp.stats.synCookiesSent).toBe(0);
    expect(listener.synQueue.size).toBe(0);
    expect(h.tcp.connectionCount).toBe(1);
    expect(h.tcp.socketTable()[0]).toMatchObject({ state: 'LISTEN', receiveQueue: 1 });

    expect(listener.accept()?.remotePort).toBe(40000);
    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN });
    expect(h.takeOne()).toMatchObject({ flags: F.SYN | F.ACK, destinationPort: 40001, acknowledgment: PEER_ISN + 1 });
    expect(listener.synQueue.size).toBe(1);
  });

  it('accept-queue bound: a completing ACK (SYN queue or cookie) is dropped while the queue is full and honoured after accept()', () => {
    // SYN-RECEIVED entries.
    const h = new SegmentHarness(PLAIN);
    const { listener } = listenCounting(h, 1);
    h.inject({ flags: F.SYN, sourcePort: 40000, sequence: PEER_ISN });
    h.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN });
    const [a, b] = h.take();
    h.inject({ flags: F.ACK, sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: (a!.sequence + 1) >>> 0 });
    h.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (b!.sequence + 1) >>> 0 });
    expect(h.take()).toEqual([]);
    expect(listener.acceptQueue.map((c) => c.remotePort)).toEqual([40000]);
    expect(h.tcp.findConnection(LOCAL, 80, REMOTE, 40001)?.state).toBe('SYN-RECEIVED');
    expect(h.tcp.stats.dropped.acceptQueueFull).toBe(1);
    listener.accept();
    h.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (b!.sequence + 1) >>> 0 });
    expect(listener.accept()).toMatchObject({ state: 'ESTABLISHED', remotePort: 40001 });

    // Cookies: the ACK is swallowed (no RST, no connection); the stateless cookie still works later.
    const hc = new SegmentHarness({ ...PLAIN, synBacklog: 0 });
    const lc = listenCounting(hc, 1).listener;
    hc.inject({ flags: F.SYN, sourcePort: 40000, sequence: PEER_ISN });
    hc.inject({ flags: F.SYN, sourcePort: 40001, sequence: PEER_ISN });
    const [ca, cb] = hc.take();
    hc.inject({ flags: F.ACK, sourcePort: 40000, sequence: PEER_ISN + 1, acknowledgment: (ca!.sequence + 1) >>> 0 });
    hc.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (cb!.sequence + 1) >>> 0 });
    expect(hc.take()).toEqual([]);
    expect(hc.tcp.connectionCount).toBe(1);
    expect(lc.acceptQueue.map((c) => c.remotePort)).toEqual([40000]);
    lc.accept();
    hc.inject({ flags: F.ACK, sourcePort: 40001, sequence: PEER_ISN + 1, acknowledgment: (cb!.sequence + 1) >>> 0 });
    expect(lc.accept()).toMatchObject({ state: 'ESTABLISHED', remotePort: 40001 });
  });

  it('a SYN flood (1000 SYNs from random addresses and ports) neither starves an established connection nor grows the table past the bound', () => {
    const synBacklog = 64;
    const h = new SegmentHarness({ ...PLAIN, synBacklog });
    const { conn, iss, listener } = passiveOpen(h);
    const rng = new SeededRandom(42);
    let peerSeq = PEER_ISN + 1;
    let ourSeq = (iss + 1) >>> 0;
    const got: number[] = [];
    conn.events.onReadable = () => got.push(conn.read().length);

    /** One round trip each way on the established connection, checked segment by segment. */
    const exchange = (round: number): void => {
      h.inject({ flags: F.ACK | F.PSH, sequence: peerSeq, acknowledgment: ourSeq, payload: bytes(100, round & 0xff) });
      peerSeq += 100;
      h.advance(200); // delayed ACK
      expect(takeTo(h, REMOTE, 40000).map((s) => [s.flags, s.acknowledgment, s.payload.length])).toEqual([[F.ACK, peerSeq, 0]]);
      expect(conn.write(bytes(50, round & 0xff))).toBe(50);
      expect(takeTo(h, REMOTE, 40000).map((s) => [s.sequence, s.payload.length])).toEqual([[ourSeq, 50]]);
      ourSeq = (ourSeq + 50) >>> 0;
      h.inject({ flags: F.ACK, sequence: peerSeq, acknowledgment: ourSeq });
      expect(conn.sendQueueLength).toBe(0);
    };

    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      let from: Ipv4Address;
      let port: number;
      do {
        from = parseIpv4(`10.1.${randomBelow(rng, 256)}.${1 + randomBelow(rng, 254)}`);
        port = 1024 + randomBelow(rng, 64000);
      } while (seen.has(`${from}:${port}`));
      seen.add(`${from}:${port}`);
      h.inject({ flags: F.SYN, sourcePort: port, sequence: randomBelow(rng, 0x7fffffff), maxSegmentSize: 1460 }, from);
      if (i % 100 === 99) {
        expect(h.tcp.connectionCount).toBeLessThanOrEqual(1 + synBacklog);
        exchange(i);
      }
    }
    expect(listener.synQueue.size).toBe(synBacklog);
    expect(h.tcp.connectionCount).toBe(1 + synBacklog);
    expect(h.tcp.stats.synCookiesSent).toBe(1000 - synBacklog);
    expect(got).toEqual(Array(10).fill(100));

    // The half-open entries give up after their SYN-ACK retransmissions; the established one stays.
    h.advance(200_000);
    expect(listener.synQueue.size).toBe(0);
    expect(h.tcp.connectionCount).toBe(1);
    expect(conn.state).toBe('ESTABLISHED');
    h.ip.sent.length = 0;
    exchange(1000);
    expect(got).toHaveLength(11);
  });

  it('RFC 6528 ISNs: different 4-tuples at the same instant differ by the keyed hash; one tuple advances 250 per ms', () => {
    const h = new SegmentHarness(PLAIN);
    h.tcp.listen({ port: 80 });
    h.advance(12_345);
    const isnFor = (port: number, from: Ipv4Address = REMOTE): number => {
      h.inject({ flags: F.SYN, sourcePort: port, sequence: PEER_ISN }, from);
      const synAck = h.takeOne();
      // Send it back to LISTEN (RFC 9293 §3.10.7.4) so the tuple can be used again.
      h.inject({ flags: F.RST, sourcePort: port, sequence: PEER_ISN + 1 }, from);
      expect(h.tcp.connectionCount).toBe(0);
      return synAck.sequence;
    };
    const tuples: [number, Ipv4Address][] = [
      [40000, REMOTE],
      [40001, REMOTE],
      [40002, REMOTE],
      [40000, parseIpv4('10.0.0.3')],
      [40000, parseIpv4('192.168.7.7')],
    ];
    const first = tuples.map(([p, a]) => isnFor(p, a));
    // Same clock value for all: any difference is the per-tuple hash, and it is far from the
    // clock term (a whole second of clock is 250 000).
    for (let i = 0; i < first.length; i++) {
      for (let j = i + 1; j < first.length; j++) {
        expect(Math.abs((first[i]! - first[j]!) | 0)).toBeGreaterThan(250_000);
      }
    }
    // Same tuple, same secret: the hash is constant and the clock term adds 250 per ms (4 µs ticks).
    h.advance(1000);
    const second = tuples.map(([p, a]) => isnFor(p, a));
    expect(second.map((s, i) => (s - first[i]!) >>> 0)).toEqual(Array(tuples.length).fill(250_000));
    h.advance(3);
    expect((isnFor(40000) - second[0]!) >>> 0).toBe(750);
    // A fractional millisecond counts too (M is a 4 µs timer).
    h.advance(0.5);
    expect((isnFor(40000) - second[0]!) >>> 0).toBe(875);

    // Another stack (another secret) gives the same tuple at the same instant an unrelated ISN.
    const other = new SegmentHarness(PLAIN, 2);
    other.tcp.listen({ port: 80 });
    other.advance(12_345);
    other.inject({ flags: F.SYN, sequence: PEER_ISN });
    expect(Math.abs((other.takeOne().sequence - first[0]!) | 0)).toBeGreaterThan(250_000);
  });
});
