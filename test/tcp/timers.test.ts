import { describe, expect, it } from 'vitest';
import { F, LOCAL, REMOTE, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';

/** ICMP fragmentation needed (RFC 1191) for the segment whose first 8 octets are `header`. */
function pathMtuDrop(h: SegmentHarness, header: Uint8Array, nextHopMtu: number): void {
  h.tcp.icmpError({ kind: 'fragmentation-needed', type: 3, code: 4, reporter: REMOTE, originalSource: LOCAL, originalDestination: REMOTE, protocol: 6, originalTransportHeader: header, nextHopMtu });
}

describe('TCP timers on the virtual clock', () => {
  it('RTO (RFC 6298): retransmits after 1 s, backs off ×2, gives up with RST and ETIMEDOUT', () => {
    const h = new SegmentHarness({ ...PLAIN, maxRetransmissions: 3 });
    const { conn, iss, rec } = passiveOpen(h);
    conn.write(bytes(100));
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
    const times: number[] = [];
    for (let t = 0; t < 20_000; t += 100) {
      h.advance(100);
      for (const s of h.take()) {
        times.push(h.clock.now());
        if (s.flags & F.RST) expect(s).toMatchObject({ flags: F.RST | F.ACK, sequence: iss + 101 });
        else expect(s).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
      }
    }
    expect(times).toEqual([1000, 3000, 7000, 15_000]);
    expect(rec.events).toEqual(['error ETIMEDOUT']);
    expect(conn.state).toBe('CLOSED');
  });

  it('by default the RTO floor is 300 ms (options.ts), not RFC 6298’s 1 s: on a LAN-short RTT the first resend leaves at 300 ms', () => {
    const h = new SegmentHarness({ timestamps: false, sack: false, windowScaling: false });
    const { conn, iss } = passiveOpen(h);
    // The handshake gave a 0 ms sample: SRTT + 4·RTTVAR is below the floor.
    expect(conn.rto).toBe(300);
    conn.write(bytes(100));
    h.take();
    h.advance(299);
    expect(h.take()).toEqual([]);
    h.advance(1);
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
    h.advance(599);
    expect(h.take()).toEqual([]);
    h.advance(1);
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
  });

  it('caps the backed-off RTO at maxRto', () => {
    const h = new SegmentHarness({ ...PLAIN, maxRto: 4000, maxRetransmissions: 10 });
    const { conn } = passiveOpen(h);
    conn.write(bytes(1));
    h.take();
    const times: number[] = [];
    for (let t = 0; t < 20_000; t += 100) {
      h.advance(100);
      if (h.take().length) times.push(h.clock.now());
    }
    expect(times).toEqual([1000, 3000, 7000, 11_000, 15_000, 19_000]);
  });

  it('estimates SRTT/RTTVAR from samples (RFC 6298 §2) and ignores retransmitted segments (Karn)', () => {
    const h = new SegmentHarness({ ...PLAIN, minRto: 100 });
    const { conn, iss } = passiveOpen(h);
    expect(conn.srtt).toBe(0);
    conn.write(bytes(10));
    h.take();
    h.advance(80);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 });
    expect([conn.srtt, conn.rttvar, conn.rto]).toEqual([10, 20, 100]);
    conn.write(bytes(10));
    h.take();
    h.advance(80);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 21 });
    // SRTT = 7/8·10 + 1/8·80, RTTVAR = 3/4·20 + 1/4·|10 − 80|, RTO = SRTT + 4·RTTVAR.
    expect([conn.srtt, conn.rttvar, conn.rto]).toEqual([18.75, 32.5, 148.75]);
    // Lose the next one: it is retransmitted, and the ACK that follows yields no sample.
    conn.write(bytes(10));
    h.take();
    h.advance(149);
    expect(h.take()).toHaveLength(1);
    expect(conn.rto).toBe(297.5);
    h.advance(50);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 31 });
    expect(conn.srtt).toBe(18.75);
    expect(conn.retransmits).toBe(0);
  });

  it('Karn after a fast retransmit: the ACK covering the resent segment gives no RTT sample; new data is timed again', () => {
    const MSS = 1460;
    const h = new SegmentHarness({ ...PLAIN, minRto: 100, initialWindowSegments: 10 });
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(10));
    h.take();
    h.advance(40);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 });
    const estimate = [conn.srtt, conn.rttvar, conn.rto];
    expect(estimate).toEqual([5, 10, 100]);
    // Ten segments, the first timed; it is lost, and three duplicate ACKs resend it.
    conn.write(bytes(10 * MSS));
    expect(h.take()).toHaveLength(10);
    h.advance(30);
    for (let k = 0; k < 3; k++) h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 });
    expect(h.takeOne()).toMatchObject({ sequence: iss + 11, payload: bytes(MSS) });
    // 60 ms later everything is ACKed: 90 ms since the first transmission, but which one arrived?
    h.advance(60);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 + 10 * MSS });
    expect(conn.inRecovery).toBe(false);
    expect([conn.srtt, conn.rttvar, conn.rto]).toEqual(estimate);
    expect(h.tcp.stats.retransmitTimeouts).toBe(0);
    // A segment sent once is sampled again: 20 ms.
    conn.write(bytes(10));
    h.take();
    h.advance(20);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 21 + 10 * MSS });
    expect(conn.srtt).toBe(0.875 * 5 + 0.125 * 20);
  });

  it('Karn: a segment resent at once for a smaller path MTU (ICMP fragmentation needed, RFC 1191) gives no RTT sample', () => {
    const h = new SegmentHarness({ ...PLAIN, minRto: 100 });
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(10));
    h.take();
    h.advance(40);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 });
    const estimate = [conn.srtt, conn.rttvar, conn.rto];
    conn.write(bytes(1000));
    const header = h.ip.sent[0]!.bytes.slice(0, 8);
    expect(h.takeOne()).toMatchObject({ sequence: iss + 11, payload: bytes(1000) });
    h.advance(10);
    pathMtuDrop(h, header, 576);
    // the whole flight goes again in the new size (see the next test)
    const again = h.take();
    expect(again.map((seg) => [seg.sequence, seg.payload.length])).toEqual([
      [iss + 11, 536],
      [iss + 11 + 536, 464],
    ]);
    h.advance(50);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 + 536 });
    expect(conn.sndUna).toBe(iss + 11 + 536);
    expect([conn.srtt, conn.rttvar, conn.rto]).toEqual(estimate);
  });

  it('a smaller path MTU (ICMP fragmentation needed) resends the whole flight in the new size at once, not one segment then an RTO', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(3 * 1460)); // the initial window (RFC 3390: 4380 bytes)
    const header = h.ip.sent[0]!.bytes.slice(0, 8);
    const sent = h.take();
    expect(sent.map((s) => s.payload.length)).toEqual([1460, 1460, 1460]);
    h.advance(10);
    const cwndBefore = conn.cc.cwnd;
    pathMtuDrop(h, header, 576);
    // all 4380 bytes again, now in 536-byte segments, from SND.UNA on, before any timer runs
    const again = h.take();
    expect(again.every((s) => s.payload.length <= 536)).toBe(true);
    expect(again[0]!.sequence).toBe(iss + 1);
    for (let i = 1; i < again.length; i++) expect(again[i]!.sequence).toBe(again[i - 1]!.sequence + again[i - 1]!.payload.length);
    expect(again.reduce((n, s) => n + s.payload.length, 0)).toBe(3 * 1460);
    expect(conn.cc.cwnd).toBe(cwndBefore); // not a congestion signal
    expect(h.tcp.stats.retransmitTimeouts).toBe(0);
  });

  it('a go-back resends the FIN with the last data: after a smaller path MTU, and after an RTO', () => {
    // Path MTU: everything goes again at once, the FIN on the last segment.
    {
      const h = new SegmentHarness(PLAIN);
      const { conn, iss } = passiveOpen(h);
      conn.write(bytes(2 * 1460 + 1000));
      conn.shutdown();
      const header = h.ip.sent[0]!.bytes.slice(0, 8);
      const first = h.take();
      expect(first.at(-1)).toMatchObject({ flags: F.FIN | F.PSH | F.ACK, sequence: iss + 1 + 2 * 1460, payload: bytes(1000) });
      pathMtuDrop(h, header, 576);
      const again = h.take();
      expect(again.reduce((n, seg) => n + seg.payload.length, 0)).toBe(2 * 1460 + 1000);
      expect(again.filter((seg) => seg.flags & F.FIN)).toHaveLength(1);
      expect(again.at(-1)!.flags & F.FIN).toBe(F.FIN);
    }
    // RTO: the first segment goes again; once it is acknowledged the rest follow, the FIN with them.
    {
      const h = new SegmentHarness(PLAIN);
      const { conn, iss } = passiveOpen(h);
      conn.write(bytes(2 * 1460));
      conn.shutdown();
      expect(h.take().at(-1)!.flags & F.FIN).toBe(F.FIN);
      h.advance(1000);
      expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(1460) });
      h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 + 1460 });
      const rest = h.take();
      expect(rest.map((seg) => [seg.sequence, seg.payload.length, seg.flags & F.FIN])).toEqual([[iss + 1 + 1460, 1460, F.FIN]]);
    }
  });

  it('delays a lone ACK by 200 ms, and ACKs every second segment at once (RFC 5681 §4.2)', () => {
    const h = new SegmentHarness(PLAIN);
    const { iss } = passiveOpen(h);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(100) });
    expect(h.take()).toEqual([]);
    h.advance(199);
    expect(h.take()).toEqual([]);
    h.advance(1);
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 101 });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 101, acknowledgment: iss + 1, payload: bytes(1460) });
    expect(h.take()).toEqual([]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1561, acknowledgment: iss + 1, payload: bytes(1460) });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 3021 });
    h.advance(500);
    expect(h.take()).toEqual([]);
  });

  it('piggybacks the ACK on data the application sends before the delayed-ACK timer fires', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(100) });
    h.advance(50);
    conn.write(bytes(20, 0x62));
    expect(h.takeOne()).toMatchObject({ flags: F.ACK | F.PSH, acknowledgment: PEER_ISN + 101, payload: bytes(20, 0x62) });
    h.advance(500);
    expect(h.take()).toEqual([]);
  });

  it('persist timer: probes a zero window with one byte, backing off, until it opens', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h, {}, { window: 0 });
    conn.write(bytes(100));
    expect(h.take()).toEqual([]);
    expect(h.tcp.socketTable()[1]).toMatchObject({ timer: 'persist', timerRemaining: 1000 });
    const probes: [number, number, number][] = [];
    for (let t = 0; t < 8000; t += 100) {
      h.advance(100);
      for (const s of h.take()) {
        probes.push([h.clock.now(), s.sequence - iss, s.payload.length]);
        h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, window: 0 });
      }
    }
    expect(probes).toEqual([
      [1000, 1, 1],
      [3000, 1, 1],
      [7000, 1, 1],
    ]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, window: 1000 });
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
    expect(conn.state).toBe('ESTABLISHED');
  });

  it('a probe byte the receiver accepts is acknowledged normally', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h, {}, { window: 0 });
    conn.write(bytes(100));
    h.advance(1000);
    h.takeOne();
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2, window: 500 });
    expect(h.takeOne()).toMatchObject({ sequence: iss + 2, payload: bytes(99) });
    expect(conn.sndUna).toBe(iss + 2);
  });

  it('keepalive (RFC 1122 §4.2.3.6): probes with SEQ = SND.UNA − 1 after idle; unanswered → RST, ETIMEDOUT', () => {
    const h = new SegmentHarness({ ...PLAIN, keepAliveInterval: 1000, keepAliveProbes: 3 });
    const { conn, iss, rec } = passiveOpen(h);
    conn.setKeepAlive(true, 5000);
    h.advance(4999);
    expect(h.take()).toEqual([]);
    h.advance(1);
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss, acknowledgment: PEER_ISN + 1, payload: new Uint8Array(0) });
    // Answered: the connection is alive; the next probe waits a full idle period.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    h.advance(4999);
    expect(h.take()).toEqual([]);
    h.advance(1);
    expect(h.take()).toHaveLength(1);
    h.advance(1000);
    h.advance(1000);
    expect(h.take()).toHaveLength(2);
    h.advance(1000);
    expect(h.takeOne()).toMatchObject({ flags: F.RST | F.ACK });
    expect(rec.events).toEqual(['error ETIMEDOUT']);
  });

  it('SYN-ACK is retransmitted with backoff and the half-open connection dropped after maxSynRetransmissions', () => {
    const h = new SegmentHarness({ ...PLAIN, maxSynRetransmissions: 2 });
    h.tcp.listen({ port: 80 });
    h.inject({ flags: F.SYN, sequence: PEER_ISN });
    h.take();
    const times: number[] = [];
    for (let t = 0; t < 10_000; t += 100) {
      h.advance(100);
      for (const s of h.take()) {
        expect(s.flags).toBe(F.SYN | F.ACK);
        times.push(h.clock.now());
      }
    }
    expect(times).toEqual([1000, 3000]);
    expect(h.tcp.connectionCount).toBe(0);
  });
});
